//! natmeter's function policy, apart from the Lambda runtime: what one invocation does with its
//! event (decode, skip a duplicate, meter, publish, remember what was delivered) and how it
//! answers. `main.rs` only sets up tracing, configuration and the CloudWatch client and hands
//! events to [`Function::invoke`], so this policy is tested without the runtime.
//!
//! It owns the function's per-container memory (recent batches and partial deliveries, in
//! [`recent`]); it must never hold results across invocations or read the environment itself.

pub mod discovery;
pub mod names;
pub mod objects;
pub mod recent;
pub mod s3event;

/// The events the integration tests use, for the unit tests too.
#[cfg(test)]
#[path = "../tests/common/mod.rs"]
#[allow(dead_code)]
mod testdata;

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex, RwLock};

use natmeter_cloudwatch::publish::{Publication, PublishError};
use natmeter_cloudwatch::put::Sender;
use natmeter_core::config::Config;
use natmeter_core::engine::{Attributor, BatchKind, Results};
use natmeter_core::inventory::AUDIT_STREAM_PREFIX;
use natmeter_core::price::cost;
use natmeter_core::sources::subscription::{event_data, stream_eni, DecodeError};
use natmeter_core::sources::{Input, Reader};
use serde_json::{json, Value};

use crate::recent::{BatchKey, RecentBatches};

/// Batches remembered per warm container: about 20 minutes at one batch per second.
pub const RECENT_BATCHES: usize = 1024;
/// Partly delivered batches remembered: Lambda retries a failed event twice, within minutes.
pub const PARTIAL_BATCHES: usize = 64;

/// An invocation failure, with an error type a person can act on (instead of a Rust type name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub kind: &'static str,
    pub message: String,
}

impl From<Failure> for lambda_runtime::Diagnostic {
    fn from(f: Failure) -> lambda_runtime::Diagnostic {
        lambda_runtime::Diagnostic {
            error_type: f.kind.to_string(),
            error_message: f.message,
        }
    }
}

/// The function of one container: configuration, the metric sender, and what it remembers.
pub struct Function<S> {
    /// The configuration, its topology as last described when discovery is on (replaced, never
    /// edited, so an invocation keeps the one it started with).
    cfg: RwLock<Arc<Config>>,
    /// NAT gateways and subnets from the EC2 API (`NATMETER_VPC_IDS`...).
    discovery: Option<discovery::Discoverer>,
    /// AWS's ip-ranges.json, read at cold start (`NATMETER_IP_RANGES_URL`): remotes named by
    /// service and region.
    ranges: Option<natmeter_core::ipranges::IpRanges>,
    sender: Option<S>,
    /// Decode buffers kept across invocations of a warm container (no re-allocation).
    scratch: Mutex<Reader>,
    /// Batches this container published (duplicate delivery), and those partly delivered before
    /// their invocation failed (retries send only the rest).
    recent: Mutex<RecentBatches>,
    /// Names from the EKS audit log (`NATMETER_INVENTORY_TABLE`): the table and this container's
    /// cache of it.
    names: Option<names::Names>,
    /// Fault injection for the packaged-artifact test (`NATMETER_TEST_PANIC_ON`): an event holding
    /// this text panics the handler, which shows whether the shipped build unwinds into an error
    /// response or aborts the process.
    panic_on: Option<String>,
    /// S3 delivery: the client, made on the first S3 event (subscription-only functions never
    /// pay for it), and the claims that make a repeated object count once.
    s3: tokio::sync::OnceCell<Result<natmeter_ec2::s3::S3, String>>,
    claims: objects::Claims,
}

/// One invocation's inputs besides the event.
pub struct Invocation<'a> {
    pub request_id: &'a str,
    /// The deadline for sending metrics (the invocation's deadline less the response margin).
    pub deadline: tokio::time::Instant,
    /// The clock, Unix seconds: datapoint timestamps and CloudWatch's 14-day window.
    pub now: i64,
}

impl<S: Sender> Function<S> {
    /// `sender` is required when the configuration includes PutMetricData.
    pub fn new(cfg: Config, sender: Option<S>, panic_on: Option<String>) -> Function<S> {
        Function {
            cfg: RwLock::new(Arc::new(cfg)),
            discovery: None,
            ranges: None,
            sender,
            scratch: Mutex::new(Reader::default()),
            recent: Mutex::new(RecentBatches::new(RECENT_BATCHES, PARTIAL_BATCHES)),
            names: None,
            panic_on: panic_on.filter(|m| !m.is_empty()),
            s3: tokio::sync::OnceCell::new(),
            claims: objects::Claims::Local(Mutex::default()),
        }
    }

    /// The same function claiming S3 objects in a DynamoDB table (`NATMETER_OBJECTS_TABLE`)
    /// instead of this container's memory.
    pub fn with_object_claims(mut self, table: natmeter_dynamodb::objects::Objects) -> Function<S> {
        self.claims = objects::Claims::Table(table);
        self
    }

    /// The same function reading S3 with `s3` (tests; otherwise made from the environment on
    /// the first S3 event).
    pub fn with_s3(self, s3: natmeter_ec2::s3::S3) -> Function<S> {
        let _ = self.s3.set(Ok(s3));
        self
    }

    async fn s3_client(&self) -> Result<natmeter_ec2::s3::S3, String> {
        self.s3
            .get_or_init(|| async {
                natmeter_ec2::s3::S3::from_env(self.config().region.as_deref())
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
            .clone()
    }

    /// The same function naming sources from the inventory in `table`, and storing the EKS
    /// audit batches it receives there.
    pub fn with_inventory(
        mut self,
        table: natmeter_dynamodb::Table,
        retention_hours: u32,
    ) -> Function<S> {
        self.names = Some(names::Names::new(table, retention_hours));
        self
    }

    /// The same function describing its topology with `d`: `initial` is the configuration
    /// the cold start's describe produced ([`discovery::Discoverer::initial`]).
    pub fn with_discovery(mut self, d: discovery::Discoverer, initial: Config) -> Function<S> {
        self.cfg = RwLock::new(Arc::new(initial));
        self.discovery = Some(d);
        self
    }

    /// The same function naming remotes by AWS's ranges.
    pub fn with_ranges(mut self, ranges: natmeter_core::ipranges::IpRanges) -> Function<S> {
        self.ranges = Some(ranges);
        self
    }

    /// The attributor of one invocation: the configuration's topology and format, names from
    /// the inventory when there is one, AWS's ranges when they were read.
    pub(crate) fn attributor<'a>(
        &'a self,
        cfg: &'a Config,
        inventory: Option<&'a natmeter_core::inventory::Inventory>,
    ) -> Attributor<'a> {
        let mut a = Attributor::new(&cfg.topology, cfg.format.clone());
        if let Some(i) = inventory {
            a = a.with_resolver(i);
        }
        if let Some(r) = &self.ranges {
            a = a.with_ranges(r, cfg.region.as_deref());
        }
        a.with_remote_prefixes(cfg.remote_prefixes)
    }

    /// The configuration in force (its topology as last described).
    pub fn config(&self) -> Arc<Config> {
        Arc::clone(&self.cfg.read().unwrap_or_else(|p| p.into_inner()))
    }

    pub fn sender(&self) -> Option<&S> {
        self.sender.as_ref()
    }

    /// Handles one event. `out` receives the EMF and source detail lines (stdout in Lambda).
    ///
    /// The policy: an undecodable event fails (Lambda retries it and the on-failure destination
    /// keeps it); an exact repeat of a batch this container published is acknowledged without
    /// publishing again; a retry of a batch whose earlier attempt here delivered part of its
    /// metrics reuses that attempt's clock, so the requests come out identical, and sends only
    /// those that failed; metrics that cannot be delivered fail the invocation.
    pub async fn invoke(
        &self,
        event: &[u8],
        inv: &Invocation<'_>,
        out: &mut dyn Write,
    ) -> Result<Value, Failure> {
        let started = std::time::Instant::now();
        let mut cfg_now = self.config();
        let request_id = inv.request_id;
        if let Some(m) = &self.panic_on {
            if event.windows(m.len()).any(|w| w == m.as_bytes()) {
                panic!("NATMETER_TEST_PANIC_ON: injected panic for request {request_id}");
            }
        }
        let bad_event = |e: DecodeError| {
            tracing::error!(request_id = %request_id, error = %e, "event could not be decoded; failing the invocation so Lambda retries it and the on-failure destination keeps it");
            Failure {
                kind: "natmeter.BadEvent",
                message: e.to_string(),
            }
        };
        // The envelope is parsed once: its data feeds both the duplicate check and the engine.
        // An event that is not a subscription event may be one of S3's shapes (docs/s3.md §1);
        // only then is it parsed again, so subscription batches pay nothing for them.
        let data = match event_data(event) {
            Ok(d) => d,
            Err(e) => {
                return match s3event::parse(event) {
                    // Boxed: the S3 path's futures nest deep enough to overflow the layout
                    // query of the runtime's handler future otherwise.
                    Some(ev) => Box::pin(self.invoke_s3(ev, inv, out)).await,
                    None => Err(bad_event(e)),
                };
            }
        };
        let key = BatchKey::of(&data);
        if lock(&self.recent).contains(&key) {
            tracing::warn!(request_id = %request_id, "duplicate delivery of a batch this container already published; skipped");
            return Ok(json!({"batch": "duplicate"}));
        }

        // With an inventory: an EKS audit batch is stored, not metered; a flow batch is named
        // from a cache of the table, refreshed first (a failure fails the invocation, so the
        // retry names it rather than publishing it unnamed). Only a refresh needs to know the
        // batch's kind beforehand (an audit batch must not wait on, or fail for, reading the
        // table), so only then is its head peeked; otherwise the reader's own peek refuses an
        // audit stream as foreign, below, and no batch's head is inflated twice.
        let names = match &self.names {
            Some(n) => {
                if n.due(inv.now).await && n.is_audit(&data) {
                    return n.store(&data, inv).await;
                }
                Some(n.fresh(inv).await?)
            }
            None => None,
        };
        // At most twice: again when the batch's unknown ENI turned out to be a NAT ENI.
        let mut described = false;
        let (engine, kind) = loop {
            let cfg = &*cfg_now;
            let attributor = self.attributor(cfg, names.as_ref().map(|n| n.inventory()));
            let mut engine = attributor.results();
            let kind = {
                let mut reader = lock(&self.scratch);
                let input = Input::Data {
                    data: &data,
                    origin: request_id,
                };
                let res = attributor.ingest(input, &mut reader, &mut engine);
                reader.release_above(4 << 20);
                res
            };
            let kind = kind.map_err(bad_event)?;
            if kind != BatchKind::SkippedNotNat {
                break (engine, kind);
            }
            let stream = engine.observed().log_stream.clone().unwrap_or_default();
            if let Some(n) = &self.names {
                if stream.starts_with(AUDIT_STREAM_PREFIX) {
                    // The cache is released first: storing adds the batch's facts to it.
                    drop(attributor);
                    drop(names);
                    return n.store(&data, inv).await;
                }
            }
            let (Some(d), Some(eni), false) = (&self.discovery, stream_eni(&stream), described)
            else {
                break (engine, kind);
            };
            described = true;
            let found = d.on_unknown(cfg, eni, inv.now).await.map_err(|message| {
                tracing::error!(request_id = %request_id, log_stream = %stream, error = %message, "could not tell whether the batch's ENI is a NAT ENI; failing the invocation so Lambda retries it");
                Failure {
                    kind: "natmeter.DiscoveryUnavailable",
                    message,
                }
            })?;
            let Some(new_cfg) = found else {
                break (engine, kind);
            };
            *self.cfg.write().unwrap_or_else(|p| p.into_inner()) = Arc::clone(&new_cfg);
            let known = new_cfg.topology.gateway_by_eni(eni).is_some();
            cfg_now = new_cfg;
            if !known {
                break (engine, kind);
            }
        };
        let cfg = &*cfg_now;
        if engine.records().parse_errors > 0 {
            for s in &engine.observed().parse_error_samples {
                tracing::warn!(request_id = %request_id, location = %s.location, error = %s.error, "flow-log record skipped");
            }
        }
        let (now, already) = lock(&self.recent)
            .partial(&key)
            .map(|p| (p.now, p.delivered.clone()))
            .unwrap_or_else(|| (inv.now, HashSet::new()));
        if !already.is_empty() {
            tracing::info!(request_id = %request_id, already_delivered = already.len(), "retry of a partly delivered batch: sending only the requests that failed");
        }
        let published = natmeter_cloudwatch::publish::publish(
            &engine,
            cfg,
            self.sender.as_ref(),
            inv.deadline,
            now,
            &already,
            out,
        )
        .await;
        {
            let mut recent = lock(&self.recent);
            match &published {
                Ok(_) => recent.published(key, kind == BatchKind::Data),
                Err(PublishError::Send(e)) if !e.delivered.delivered.is_empty() => {
                    recent.partly_delivered(key, now, e.delivered.delivered.iter().copied());
                }
                Err(_) => {}
            }
        }
        let summary = Summary {
            request_id,
            kind,
            named: names.is_some(),
            engine: &engine,
            price_per_gb: cfg.price_per_gb,
            duration_ms: started.elapsed().as_millis() as u64,
        };
        match published {
            Ok(p) => Ok(summary.response(&p)),
            Err(e) => {
                summary.log_failure(&e);
                Err(Failure {
                    kind: "natmeter.MetricsNotDelivered",
                    message: e.to_string(),
                })
            }
        }
    }
}

/// A poisoned lock only means an earlier invocation panicked; the data it guards stays valid.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The invocation's one structured log line and its response.
struct Summary<'a> {
    request_id: &'a str,
    kind: BatchKind,
    /// Sources were named from the inventory.
    named: bool,
    engine: &'a Results,
    price_per_gb: f64,
    duration_ms: u64,
}

impl Summary<'_> {
    fn kind_str(&self) -> &'static str {
        match self.kind {
            BatchKind::Data => "data",
            BatchKind::Control => "control",
            BatchKind::SkippedNotNat => "skipped_not_nat",
            // Subscription events are never text; named anyway rather than assumed.
            BatchKind::Text => "text",
        }
    }

    fn log_stream(&self) -> &str {
        self.engine
            .observed()
            .log_stream
            .as_deref()
            .unwrap_or_default()
    }

    fn response(&self, p: &Publication) -> Value {
        let r = &self.engine.records();
        let bytes = self.engine.ledger().total_bytes();
        let sent = p.sent.as_ref().map_or(0, |s| s.datums);
        tracing::info!(
            request_id = %self.request_id,
            log_stream = %self.log_stream(),
            batch = self.kind_str(),
            records_read = r.read,
            records_counted = r.counted,
            parse_errors = r.parse_errors,
            records_skip_data = r.skip_data,
            records_ambiguous = r.ambiguous,
            bytes,
            cost_usd = cost(bytes, self.price_per_gb),
            datums = p.datums,
            datums_out_of_window = p.out_of_window,
            datums_non_finite = p.rejected.non_finite,
            datums_too_many_dimensions = p.rejected.too_many_dimensions,
            datums_emf_oversized = p.emf_oversized,
            datums_sent = sent,
            retries = p.sent.as_ref().map_or(0, |s| s.retries),
            requests_already_delivered = p.sent.as_ref().map_or(0, |s| s.already_delivered),
            emf_lines = p.emf_lines,
            detail_lines = p.detail_lines,
            duration_ms = self.duration_ms,
            "natmeter invocation"
        );
        let mut response = json!({
            "batch": self.kind_str(),
            "log_stream": self.log_stream(),
            "records_read": r.read,
            "records_counted": r.counted,
            "parse_errors": r.parse_errors,
            "bytes": bytes,
            "datums_sent": sent,
        });
        if self.named {
            let i = natmeter_core::report::IdentityTotals::of(self.engine);
            tracing::info!(
                request_id = %self.request_id,
                resolved_bytes = i.resolved_bytes,
                node_bytes = i.node_bytes,
                unresolved_bytes = i.unresolved_bytes,
                "natmeter names"
            );
            response["identity"] = json!({
                "resolved_bytes": i.resolved_bytes,
                "node_bytes": i.node_bytes,
                "unresolved_bytes": i.unresolved_bytes,
            });
        }
        response
    }

    fn log_failure(&self, e: &PublishError) {
        tracing::error!(
            request_id = %self.request_id,
            log_stream = %self.log_stream(),
            records_counted = self.engine.records().counted,
            bytes = self.engine.ledger().total_bytes(),
            duration_ms = self.duration_ms,
            error = %e,
            "metrics not delivered; failing the invocation so Lambda retries the event"
        );
    }
}
