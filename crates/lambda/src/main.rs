//! `bootstrap`: natmeter's Lambda function, triggered by a CloudWatch Logs subscription filter on
//! a VPC flow-log group. It attributes NAT Gateway bytes to pod IPs and publishes metrics.
//!
//! Set-up happens once in `main` (configuration, tracing, the CloudWatch client); the handler is
//! a thin shell over the pure core. Try it locally against the Runtime API emulator:
//!   cargo lambda watch    &&    cargo lambda invoke --data-file events/<file>.json

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use natmeter_cloudwatch::publish::PublishError;
use natmeter_core::config::Config;
use natmeter_core::dedup::{BatchKey, RecentBatches};
use natmeter_core::engine::{BatchKind, Engine};
use natmeter_core::price::cost;
use natmeter_core::subscription::{event_data, Decoder};
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// lambda_runtime sets `_X_AMZN_TRACE_ID` with `setenv` on every invocation, and glibc never
/// frees a replaced value. On glibc's heap those leftovers sat between each invocation's
/// temporaries and pinned their pages: a warm container grew ~2-16 KB per invocation (the e2e
/// memory test; `mallopt` and `malloc_trim` only reduced it). mimalloc keeps Rust's allocations
/// in its own heap, so only setenv's ~150 bytes per invocation remain (an upstream leak).
///
/// mimalloc is built with `no_thp`: otherwise it asks for transparent huge pages on its arenas
/// (`madvise(MADV_HUGEPAGE)`, honoured under the common `madvise` THP setting), and the first few
/// small allocations made before `main` pinned 6 MB of huge pages: 16 MB resident while idle
/// instead of 9 MB (measured with /proc/<pid>/smaps_rollup, AnonHugePages).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn tune_mimalloc() {
    // mimalloc option indices (mimalloc.h, the same in v2 and v3): commit on demand and purge
    // freed pages at once, trading a little speed for a small resident set in a 128 MB function.
    // These apply from here on; the arena reserved before `main` keeps its defaults.
    const EAGER_COMMIT: i32 = 3;
    const ARENA_EAGER_COMMIT: i32 = 4;
    const PURGE_DELAY: i32 = 15;
    // SAFETY: setting options is allowed at any time; called first thing in main.
    unsafe {
        libmimalloc_sys::mi_option_set(EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(PURGE_DELAY, 0);
    }
}

/// Time kept back from the deadline to post the response (or the error) to the Runtime API.
const DEADLINE_MARGIN: Duration = Duration::from_millis(750);

struct Shared {
    cfg: Config,
    client: Option<aws_sdk_cloudwatch::Client>,
    /// Decode buffers kept across invocations of a warm container (no re-allocation).
    scratch: Mutex<(Decoder, Vec<u8>)>,
    /// Batches this container published (duplicate delivery), and those partly delivered before
    /// their invocation failed (retries send only the rest).
    recent: Mutex<RecentBatches>,
}

/// Batches remembered per warm container: about 20 minutes at one batch per second.
const RECENT_BATCHES: usize = 1024;
/// Partly delivered batches remembered: Lambda retries a failed event twice, within minutes.
const PARTIAL_BATCHES: usize = 64;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    tune_mimalloc();
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();

    let cfg = match Config::from_lookup(|k| std::env::var(k).ok()) {
        Ok(c) => c,
        Err(e) => {
            // Lambda reports the exit as Runtime.ExitError with this line in the function's log.
            tracing::error!(variable = e.variable, error = %e, "invalid configuration; fix the variable and redeploy");
            eprintln!("natmeter: invalid configuration: {e}");
            std::process::exit(2);
        }
    };
    let client = match cfg.sinks.put_metric_data() {
        Some(_) => Some(natmeter_cloudwatch::put::client(None).await),
        None => None,
    };
    let shared = Arc::new(Shared {
        cfg,
        client,
        scratch: Mutex::new((Decoder::default(), Vec::new())),
        recent: Mutex::new(RecentBatches::new(RECENT_BATCHES, PARTIAL_BATCHES)),
    });
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Box<RawValue>>| {
        let shared = Arc::clone(&shared);
        async move { handle(&shared, ev).await }
    }))
    .await
}

/// An invocation failure, with an error type a person can act on (instead of a Rust type name).
#[derive(Debug)]
struct Failure {
    kind: &'static str,
    message: String,
}

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Diagnostic {
        Diagnostic {
            error_type: f.kind.to_string(),
            error_message: f.message,
        }
    }
}

async fn handle(shared: &Shared, ev: LambdaEvent<Box<RawValue>>) -> Result<Value, Failure> {
    let started = std::time::Instant::now();
    let cfg = &shared.cfg;
    let request_id = ev.context.request_id.clone();
    let remaining = Duration::from_millis(ev.context.deadline.saturating_sub(now_ms()));
    let deadline = tokio::time::Instant::now() + remaining.saturating_sub(DEADLINE_MARGIN);

    let bad_event = |e: natmeter_core::subscription::DecodeError| {
        tracing::error!(request_id = %request_id, error = %e, "event could not be decoded; failing the invocation so Lambda retries it and the on-failure destination keeps it");
        Failure {
            kind: "natmeter.BadEvent",
            message: e.to_string(),
        }
    };
    // The envelope is parsed once: its data feeds both the duplicate check and the engine.
    let data = event_data(ev.payload.get().as_bytes()).map_err(bad_event)?;
    let key = BatchKey::of(&data);
    if shared
        .recent
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&key)
    {
        tracing::warn!(request_id = %request_id, "duplicate delivery of a batch this container already published; skipped");
        return Ok(json!({"batch": "duplicate"}));
    }

    let mut engine = Engine::new(&cfg.topology, cfg.format.clone());
    let kind = {
        let mut guard = shared.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let (decoder, buf) = &mut *guard;
        let res = engine.ingest_data(&data, decoder, buf, &request_id);
        // A gzip bomb or a huge batch must not pin memory in a warm container.
        if buf.capacity() > 4 << 20 {
            *buf = Vec::new();
        }
        res
    };
    let kind = kind.map_err(bad_event)?;
    if engine.records.parse_errors > 0 {
        for s in &engine.observed.parse_error_samples {
            tracing::warn!(request_id = %request_id, location = %s.location, error = %s.error, "flow-log record skipped");
        }
    }
    // A retry of a batch whose earlier attempt here delivered part of its metrics: same clock,
    // so the same requests, and the delivered ones are skipped.
    let (now, already) = shared
        .recent
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .partial(&key)
        .map(|p| (p.now, p.delivered.clone()))
        .unwrap_or_else(|| ((now_ms() / 1000) as i64, HashSet::new()));
    if !already.is_empty() {
        tracing::info!(request_id = %request_id, already_delivered = already.len(), "retry of a partly delivered batch: sending only the requests that failed");
    }
    let mut stdout = std::io::stdout().lock();
    let published = natmeter_cloudwatch::publish::publish(
        &engine,
        cfg,
        shared.client.as_ref(),
        deadline,
        now,
        &already,
        &mut stdout,
    )
    .await;
    drop(stdout);
    {
        let mut recent = shared.recent.lock().unwrap_or_else(|p| p.into_inner());
        match &published {
            Ok(_) => recent.published(key, kind == BatchKind::Data),
            Err(PublishError::Send(e)) if !e.delivered.delivered.is_empty() => {
                recent.partly_delivered(key, now, e.delivered.delivered.iter().copied());
            }
            Err(_) => {}
        }
    }
    let bytes = engine.ledger.total_bytes();
    let kind_str = match kind {
        BatchKind::Data => "data",
        BatchKind::Control => "control",
        BatchKind::SkippedNotNat => "skipped_not_nat",
    };
    let log_stream = engine.observed.log_stream.clone().unwrap_or_default();
    let r = &engine.records;
    match published {
        Ok(p) => {
            let sent = p.sent.as_ref().map_or(0, |s| s.datums);
            tracing::info!(
                request_id = %request_id,
                log_stream = %log_stream,
                batch = kind_str,
                records_read = r.read,
                records_counted = r.counted,
                parse_errors = r.parse_errors,
                bytes,
                cost_usd = cost(bytes, cfg.price_per_gb),
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
                duration_ms = started.elapsed().as_millis() as u64,
                "natmeter invocation"
            );
            Ok(json!({
                "batch": kind_str,
                "log_stream": log_stream,
                "records_read": r.read,
                "records_counted": r.counted,
                "parse_errors": r.parse_errors,
                "bytes": bytes,
                "datums_sent": sent,
            }))
        }
        Err(e) => {
            tracing::error!(
                request_id = %request_id,
                log_stream = %log_stream,
                records_counted = r.counted,
                bytes,
                duration_ms = started.elapsed().as_millis() as u64,
                error = %e,
                "metrics not delivered; failing the invocation so Lambda retries the event"
            );
            Err(Failure {
                kind: "natmeter.MetricsNotDelivered",
                message: e.to_string(),
            })
        }
    }
}
