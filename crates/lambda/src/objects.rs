//! Flow-log objects delivered to S3, read and metered by the function (docs/s3.md): each object
//! is streamed from S3 (gzip text inflated piece by piece; Parquet spilled to the function's
//! `/tmp`, which it needs whole for its footer), claimed so that a repeated delivery counts
//! once, metered by the same engine as subscription batches, and published. Records older than
//! CloudWatch accepts become `natmeter.report/v1` objects under the results prefix instead, one
//! per hour and gateway.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::sync::Mutex;

use natmeter_cloudwatch::publish::PublishError;
use natmeter_cloudwatch::put::Sender;
use natmeter_core::civil::{civil_from_days, days_from_civil};
use natmeter_core::config::Config;
use natmeter_core::engine::{Attributor, Results};
use natmeter_core::report::Report;
use natmeter_core::sources::object::ObjectText;
use natmeter_core::sources::{Input, Reader, Text};
use natmeter_dynamodb::objects::{Claim, Objects};
use natmeter_ec2::s3::{S3Error, S3};
use serde_json::{json, Value};

use crate::s3event::{ObjectRef, ResultCode};
use crate::{lock, Function, Invocation};

/// Rows of a Parquet object turned into text lines per engine call.
const PARQUET_ROWS: usize = 8192;
/// Objects this container remembers without a table (their claims, for repeated deliveries).
const LOCAL_CLAIMS: usize = 4096;

/// What reading one object came to.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDone {
    pub duplicate: bool,
    pub records_read: u64,
    pub records_counted: u64,
    pub parse_errors: u64,
    pub bytes: u64,
    pub datums_sent: usize,
    /// Result objects written for records older than CloudWatch's window.
    pub results_objects: usize,
    /// Datums older than the window that no results bucket keeps (counted, not kept).
    pub out_of_window: usize,
}

impl ObjectDone {
    pub fn summary(&self) -> String {
        if self.duplicate {
            return "already counted (a repeated delivery)".into();
        }
        format!(
            "{} records read, {} counted, {} unparseable, {} NAT bytes, {} datums sent, {} result objects",
            self.records_read,
            self.records_counted,
            self.parse_errors,
            self.bytes,
            self.datums_sent,
            self.results_objects
        )
    }
}

/// Why an object failed: the message names it; `code` says whether a retry can help.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectFailed {
    pub code: ResultCode,
    pub message: String,
}

fn failed(o: &ObjectRef, code: ResultCode, what: impl std::fmt::Display) -> ObjectFailed {
    ObjectFailed {
        code,
        message: format!("{o}: {what}"),
    }
}

fn s3_failed(o: &ObjectRef, e: &S3Error) -> ObjectFailed {
    let code = if e.retryable() {
        ResultCode::TemporaryFailure
    } else {
        ResultCode::PermanentFailure
    };
    // The S3 error names the object already.
    ObjectFailed {
        code,
        message: match e {
            S3Error::Setup(_) => format!("{o}: {e}"),
            _ => e.to_string(),
        },
    }
}

/// Claims without a table: this container's memory (a repeated delivery to another container
/// counts again; docs/s3.md §3 gives the bound).
#[derive(Debug, Default)]
pub struct LocalClaims {
    map: HashMap<String, Claim>,
}

impl LocalClaims {
    fn id(bucket: &str, key: &str, etag: &str) -> String {
        format!("{bucket}\n{key}\n{etag}")
    }
}

/// Where claims are kept.
pub enum Claims {
    Table(Objects),
    Local(Mutex<LocalClaims>),
}

impl Claims {
    async fn claim(
        &self,
        o: &ObjectRef,
        etag: &str,
        now: i64,
        lease: i64,
    ) -> Result<Claim, String> {
        match self {
            Claims::Table(t) => t
                .claim(&o.bucket, &o.key, etag, now, lease)
                .await
                .map_err(|e| e.to_string()),
            Claims::Local(m) => {
                let mut m = lock(m);
                let id = LocalClaims::id(&o.bucket, &o.key, etag);
                Ok(match m.map.get(&id) {
                    Some(Claim::Done) => Claim::Done,
                    Some(r @ Claim::Resumed { .. }) => r.clone(),
                    _ => {
                        if m.map.len() >= LOCAL_CLAIMS {
                            m.map.clear();
                        }
                        m.map.insert(id, Claim::New);
                        Claim::New
                    }
                })
            }
        }
    }

    async fn done(&self, o: &ObjectRef, etag: &str, now: i64) -> Result<(), String> {
        match self {
            Claims::Table(t) => t
                .done(&o.bucket, &o.key, etag, now)
                .await
                .map_err(|e| e.to_string()),
            Claims::Local(m) => {
                lock(m)
                    .map
                    .insert(LocalClaims::id(&o.bucket, &o.key, etag), Claim::Done);
                Ok(())
            }
        }
    }

    async fn partial(
        &self,
        o: &ObjectRef,
        etag: &str,
        clock: i64,
        delivered: &HashSet<u64>,
    ) -> Result<(), String> {
        match self {
            Claims::Table(t) => t
                .partial(&o.bucket, &o.key, etag, clock, delivered)
                .await
                .map_err(|e| e.to_string()),
            Claims::Local(m) => {
                lock(m).map.insert(
                    LocalClaims::id(&o.bucket, &o.key, etag),
                    Claim::Resumed {
                        now: clock,
                        delivered: delivered.clone(),
                    },
                );
                Ok(())
            }
        }
    }

    async fn release(&self, o: &ObjectRef, etag: &str) -> Result<(), String> {
        match self {
            Claims::Table(t) => t
                .release(&o.bucket, &o.key, etag)
                .await
                .map_err(|e| e.to_string()),
            Claims::Local(m) => {
                let mut m = lock(m);
                let id = LocalClaims::id(&o.bucket, &o.key, etag);
                if matches!(m.map.get(&id), Some(Claim::New)) {
                    m.map.remove(&id);
                }
                Ok(())
            }
        }
    }
}

/// The time in a flow-log object's name (`…_20261130T1205Z_hash.log.gz`): what records are
/// bucketed by when the format has no `start`.
pub fn key_time(key: &str) -> Option<i64> {
    let name = key.rsplit('/').next()?;
    name.split('_').find_map(|part| {
        let b = part.as_bytes();
        if b.len() != 14 || b[8] != b'T' || b[13] != b'Z' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| std::str::from_utf8(&b[r]).ok()?.parse::<i64>().ok();
        let (y, m, d, hh, mm) = (
            num(0..4)?,
            num(4..6)?,
            num(6..8)?,
            num(9..11)?,
            num(11..13)?,
        );
        if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 {
            return None;
        }
        Some(days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60)
    })
}

/// `YYYY-MM-DDTHH` of an hour since the epoch.
pub fn hour_label(hour: i64) -> String {
    let days = hour.div_euclid(24);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}", hour.rem_euclid(24))
}

/// A stable short digest of the object a result came from: its results objects' names, so a
/// retry rewrites the same objects instead of adding copies.
fn object_digest(o: &ObjectRef, etag: &str) -> String {
    // FNV-1a, 64 bits: stable across builds and platforms (std's hasher is not).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in o
        .bucket
        .bytes()
        .chain([0])
        .chain(o.key.bytes())
        .chain([0])
        .chain(etag.bytes())
    {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The key of a results object: `<prefix>hour=YYYY-MM-DDTHH/nat_gateway=<id>/<digest>.json`.
pub fn results_key(prefix: &str, hour: i64, gateway: &str, digest: &str) -> String {
    format!(
        "{prefix}hour={}/nat_gateway={gateway}/{digest}.json",
        hour_label(hour)
    )
}

/// Reads `o`'s body into `engine` as text (gzip or plain) or Parquet.
async fn read_into(
    o: &ObjectRef,
    body: &mut natmeter_ec2::s3::Body,
    attributor: &Attributor<'_>,
    engine: &mut Results,
    fallback_time: i64,
) -> Result<u64, ObjectFailed> {
    let origin = o.to_string();
    let mut reader = Reader::default();
    let mut text = ObjectText::new();
    let mut ingest = |t: Text<'_>| {
        // Text inputs are never undecodable: records are parsed (and counted) one by one.
        let _ = attributor.ingest(Input::Text(t), &mut reader, engine);
    };
    let mut spill: Option<(std::path::PathBuf, std::fs::File)> = None;
    let mut size = 0u64;
    let mut first = true;
    while let Some(piece) = body.next().await.map_err(|e| s3_failed(o, &e))? {
        size += piece.len() as u64;
        if first && piece.starts_with(natmeter_parquet::MAGIC) {
            let path = std::env::temp_dir().join(format!(
                "natmeter-{}-{}.parquet",
                std::process::id(),
                object_digest(o, "")
            ));
            let f = std::fs::File::create(&path).map_err(|e| {
                failed(
                    o,
                    ResultCode::TemporaryFailure,
                    format!("cannot spill to {}: {e}", path.display()),
                )
            })?;
            spill = Some((path, f));
        }
        first = false;
        match &mut spill {
            Some((path, f)) => f.write_all(&piece).map_err(|e| {
                failed(
                    o,
                    ResultCode::TemporaryFailure,
                    format!(
                        "writing {}: {e} (the object is larger than the function's /tmp?)",
                        path.display()
                    ),
                )
            })?,
            None => text
                .push(&piece, &origin, fallback_time, &mut ingest)
                .map_err(|e| failed(o, ResultCode::PermanentFailure, e))?,
        }
    }
    match spill {
        None => text
            .finish(&origin, fallback_time, &mut ingest)
            .map_err(|e| failed(o, ResultCode::PermanentFailure, e))?,
        Some((path, f)) => {
            drop(f);
            let res = read_parquet(&path, &origin, fallback_time, &mut ingest);
            let _ = std::fs::remove_file(&path);
            res.map_err(|e| failed(o, ResultCode::PermanentFailure, e))?;
        }
    }
    Ok(size)
}

fn read_parquet(
    path: &std::path::Path,
    origin: &str,
    fallback_time: i64,
    ingest: &mut dyn FnMut(Text<'_>),
) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut p = natmeter_parquet::FlowLogParquet::open(file).map_err(|e| e.to_string())?;
    let format = p.format().clone();
    let mut buf = Vec::with_capacity(1 << 20);
    let mut row = 1u64;
    loop {
        buf.clear();
        let n = p
            .next_lines(&mut buf, PARQUET_ROWS)
            .map_err(|e| e.to_string())?;
        if n == 0 {
            return Ok(());
        }
        ingest(Text {
            bytes: &buf,
            format: Some(&format),
            origin,
            first_line: row,
            fallback_time,
        });
        row += n as u64;
    }
}

impl<S: Sender> Function<S> {
    /// Reads, meters and publishes one object.
    pub(crate) async fn object(
        &self,
        o: &ObjectRef,
        inv: &Invocation<'_>,
        out: &mut dyn Write,
    ) -> Result<ObjectDone, ObjectFailed> {
        let s3 = self
            .s3_client()
            .await
            .map_err(|e| failed(o, ResultCode::TemporaryFailure, e))?;
        let mut body = s3
            .get(&o.bucket, &o.key)
            .await
            .map_err(|e| s3_failed(o, &e))?;
        let etag = body
            .etag
            .clone()
            .or_else(|| o.etag.clone())
            .unwrap_or_default();
        // The claim lasts past the invocation's deadline: a container that dies holding it
        // leaves the object to a retry once the lease ran out.
        let left = inv
            .deadline
            .saturating_duration_since(tokio::time::Instant::now())
            .as_secs() as i64;
        let claim = self
            .claims
            .claim(o, &etag, inv.now, left + 60)
            .await
            .map_err(|e| {
                failed(
                    o,
                    ResultCode::TemporaryFailure,
                    format!("claiming the object: {e}"),
                )
            })?;
        let (now, already) = match claim {
            Claim::Done => {
                tracing::info!(request_id = %inv.request_id, object = %o, etag, "object already counted (a repeated delivery); skipped");
                return Ok(ObjectDone {
                    duplicate: true,
                    records_read: 0,
                    records_counted: 0,
                    parse_errors: 0,
                    bytes: 0,
                    datums_sent: 0,
                    results_objects: 0,
                    out_of_window: 0,
                });
            }
            Claim::Busy { lease } => {
                return Err(failed(
                    o,
                    ResultCode::TemporaryFailure,
                    format!(
                        "another invocation is reading it (claimed until {lease}); retry later"
                    ),
                ))
            }
            Claim::New => (inv.now, HashSet::new()),
            Claim::Resumed { now, delivered } => (now, delivered),
        };
        let res = self
            .meter(&s3, o, &etag, &mut body, inv, now, &already, out)
            .await;
        match &res {
            Ok(_) => {
                if let Err(e) = self.claims.done(o, &etag, inv.now).await {
                    // Counted and published: a failure here only risks a recount on a
                    // redelivery, so the object is not failed for it.
                    tracing::error!(request_id = %inv.request_id, object = %o, error = %e, "could not mark the object counted; a repeated delivery would count it again");
                }
            }
            Err((_, delivered)) if !delivered.is_empty() => {
                let mut all = already.clone();
                all.extend(delivered.iter().copied());
                if let Err(e) = self.claims.partial(o, &etag, now, &all).await {
                    tracing::error!(request_id = %inv.request_id, object = %o, error = %e, "could not record the partly delivered metrics; a retry may send them twice");
                }
            }
            Err(_) if already.is_empty() => {
                if let Err(e) = self.claims.release(o, &etag).await {
                    tracing::warn!(request_id = %inv.request_id, object = %o, error = %e, "could not release the claim; a retry waits for its lease");
                }
            }
            Err(_) => {
                // A resumed attempt that delivered nothing new: the claim stays partial.
                if let Err(e) = self.claims.partial(o, &etag, now, &already).await {
                    tracing::warn!(request_id = %inv.request_id, object = %o, error = %e, "could not keep the partial claim");
                }
            }
        }
        res.map_err(|(f, _)| f)
    }

    #[allow(clippy::too_many_arguments)]
    async fn meter(
        &self,
        s3: &S3,
        o: &ObjectRef,
        etag: &str,
        body: &mut natmeter_ec2::s3::Body,
        inv: &Invocation<'_>,
        now: i64,
        already: &HashSet<u64>,
        out: &mut dyn Write,
    ) -> Result<ObjectDone, (ObjectFailed, HashSet<u64>)> {
        let none = HashSet::new;
        let cfg = self.config();
        let names = match &self.names {
            Some(n) => Some(
                n.fresh(inv)
                    .await
                    .map_err(|f| (failed(o, ResultCode::TemporaryFailure, f.message), none()))?,
            ),
            None => None,
        };
        let attributor = self.attributor(&cfg, names.as_ref().map(|n| n.inventory()));
        let mut engine = attributor.results();
        let fallback = key_time(&o.key).unwrap_or(inv.now);
        let started = std::time::Instant::now();
        let size = read_into(o, body, &attributor, &mut engine, fallback)
            .await
            .map_err(|f| (f, none()))?;
        let r = engine.records();
        if r.parse_errors > 0 {
            for s in &engine.observed().parse_error_samples {
                tracing::warn!(request_id = %inv.request_id, location = %s.location, error = %s.error, "flow-log record skipped");
            }
        }
        let bytes = engine.ledger().total_bytes();
        let results_objects = self
            .write_history(s3, o, etag, &cfg, &mut engine, now, names.is_some())
            .await
            .map_err(|f| (f, none()))?;
        let published = natmeter_cloudwatch::publish::publish(
            &engine,
            &cfg,
            self.sender(),
            inv.deadline,
            now,
            already,
            out,
        )
        .await;
        match published {
            Ok(p) => {
                let sent = p.sent.as_ref().map_or(0, |s| s.datums);
                tracing::info!(
                    request_id = %inv.request_id,
                    object = %o,
                    etag,
                    object_bytes = size,
                    records_read = r.read,
                    records_counted = r.counted,
                    parse_errors = r.parse_errors,
                    records_skip_data = r.skip_data,
                    bytes,
                    datums = p.datums,
                    datums_out_of_window = p.out_of_window,
                    datums_sent = sent,
                    results_objects,
                    ms = started.elapsed().as_millis() as u64,
                    "natmeter object"
                );
                if p.out_of_window > 0 && self.config().s3.results_bucket.is_none() {
                    tracing::warn!(request_id = %inv.request_id, object = %o, datums = p.out_of_window, "records older than CloudWatch accepts (14 days) and no NATMETER_RESULTS_BUCKET: their datums are counted here and not kept");
                }
                Ok(ObjectDone {
                    duplicate: false,
                    records_read: r.read,
                    records_counted: r.counted,
                    parse_errors: r.parse_errors,
                    bytes,
                    datums_sent: sent,
                    results_objects,
                    out_of_window: p.out_of_window,
                })
            }
            Err(e) => {
                let delivered = match &e {
                    PublishError::Send(s) => s.delivered.delivered.iter().copied().collect(),
                    _ => HashSet::new(),
                };
                tracing::error!(request_id = %inv.request_id, object = %o, error = %e, "metrics not delivered; the object is failed so it is delivered again");
                Err((
                    failed(
                        o,
                        ResultCode::TemporaryFailure,
                        format!("metrics not delivered: {e}"),
                    ),
                    delivered,
                ))
            }
        }
    }

    /// Moves the entries older than CloudWatch accepts out of `engine` into results objects
    /// (one per hour and gateway) when a results bucket is set; returns how many were written.
    #[allow(clippy::too_many_arguments)]
    async fn write_history(
        &self,
        s3: &S3,
        o: &ObjectRef,
        etag: &str,
        cfg: &Config,
        engine: &mut Results,
        now: i64,
        named: bool,
    ) -> Result<usize, ObjectFailed> {
        let Some(bucket) = &cfg.s3.results_bucket else {
            return Ok(0);
        };
        let oldest = natmeter_cloudwatch::batch::oldest_sendable(now);
        // A ledger minute is the Unix second it starts at.
        let mut parts = engine.split_off(|minute, gateway| {
            (minute < oldest).then_some((minute.div_euclid(3600), gateway))
        });
        if parts.is_empty() {
            return Ok(0);
        }
        // The object's record counters go with its metrics when some are still in the window,
        // else with its first results object: summed over everything, each is counted once.
        if engine.ledger().is_empty() {
            parts[0].1.take_counters(engine);
        }
        let digest = object_digest(o, etag);
        let gateways = cfg.topology.gateways();
        let gateway_id = |g: u16| {
            let canonical = cfg.topology.canonical_gateway(usize::from(g));
            gateways.get(canonical).map(|g| {
                if g.id.is_empty() {
                    g.eni.clone()
                } else {
                    g.id.clone()
                }
            })
        };
        for ((hour, gateway), part) in &parts {
            let report = if named {
                Report::build_named(part, &cfg.topology, cfg.price_per_gb)
            } else {
                Report::build(part, &cfg.topology, cfg.price_per_gb)
            };
            let id = gateway_id(*gateway).unwrap_or_else(|| format!("gateway-{gateway}"));
            // The report as `--output json` writes it (`schema` first, which is how a reader
            // recognises the document), with the window it covers added at the end.
            let mut body = serde_json::to_vec(&report)
                .map_err(|e| failed(o, ResultCode::PermanentFailure, format!("results: {e}")))?;
            let window = json!({
                "hour": hour_label(*hour),
                "start": hour * 3600,
                "end": (hour + 1) * 3600,
                "nat_gateway": id,
                "object": o.to_string(),
                "etag": etag,
            });
            body.pop();
            body.extend_from_slice(b",\"window\":");
            body.extend_from_slice(window.to_string().as_bytes());
            body.push(b'}');
            let key = results_key(&cfg.s3.results_prefix, *hour, &id, &digest);
            s3.put(bucket, &key, body, "application/json")
                .await
                .map_err(|e| ObjectFailed {
                    code: if e.retryable() {
                        ResultCode::TemporaryFailure
                    } else {
                        ResultCode::PermanentFailure
                    },
                    message: format!("{o}: writing its results to s3://{bucket}/{key}: {e}"),
                })?;
        }
        Ok(parts.len())
    }

    /// Handles an S3-shaped event: every object is tried; each shape answers as its caller
    /// expects (docs/s3.md §1).
    pub(crate) async fn invoke_s3(
        &self,
        ev: crate::s3event::S3Event,
        inv: &Invocation<'_>,
        out: &mut dyn Write,
    ) -> Result<Value, crate::Failure> {
        use crate::s3event::{batch_response, sqs_response, S3Event};
        let fail_all = |errors: Vec<String>| crate::Failure {
            kind: "natmeter.ObjectFailed",
            message: errors.join("; "),
        };
        match ev {
            S3Event::Test => {
                tracing::info!(request_id = %inv.request_id, "s3:TestEvent (S3 checking the notification's destination); nothing to read");
                Ok(json!({"s3": "test_event"}))
            }
            S3Event::Notification(objects) => {
                let mut errors = Vec::new();
                let mut done = Vec::new();
                for o in &objects {
                    match self.object(o, inv, out).await {
                        Ok(d) => done.push(json!({"object": o.to_string(), "result": d.summary()})),
                        Err(f) => {
                            tracing::error!(request_id = %inv.request_id, object = %o, error = %f.message, "object not counted; failing the invocation so it is retried");
                            errors.push(f.message)
                        }
                    }
                }
                if errors.is_empty() {
                    Ok(json!({"objects": done}))
                } else {
                    Err(fail_all(errors))
                }
            }
            S3Event::EventBridge(o) => match self.object(&o, inv, out).await {
                Ok(d) => Ok(json!({"objects": [{"object": o.to_string(), "result": d.summary()}]})),
                Err(f) => {
                    tracing::error!(request_id = %inv.request_id, object = %o, error = %f.message, "object not counted; failing the invocation so it is retried");
                    Err(fail_all(vec![f.message]))
                }
            },
            S3Event::Sqs(messages) => {
                let mut failed_ids: Vec<&str> = Vec::new();
                for m in &messages {
                    let objects = match &m.objects {
                        Ok(o) => o,
                        Err(e) => {
                            tracing::error!(request_id = %inv.request_id, message_id = %m.message_id, error = %e, "queue message is not an S3 event; reported as failed (it goes to the dead-letter queue after its receives)");
                            failed_ids.push(&m.message_id);
                            continue;
                        }
                    };
                    if objects.is_empty() {
                        tracing::info!(request_id = %inv.request_id, message_id = %m.message_id, "queue message names no object to read (s3:TestEvent, or not an object creation)");
                    }
                    for o in objects {
                        if let Err(f) = self.object(o, inv, out).await {
                            tracing::error!(request_id = %inv.request_id, message_id = %m.message_id, object = %o, error = %f.message, "object not counted; its message is reported as failed");
                            failed_ids.push(&m.message_id);
                            break;
                        }
                    }
                }
                Ok(sqs_response(&failed_ids))
            }
            S3Event::Batch(job) => {
                let mut results = Vec::with_capacity(job.tasks.len());
                for t in &job.tasks {
                    let r = match &t.object {
                        Err(e) => (ResultCode::PermanentFailure, e.clone()),
                        Ok(o) => match self.object(o, inv, out).await {
                            Ok(d) => (ResultCode::Succeeded, d.summary()),
                            Err(f) => {
                                tracing::error!(request_id = %inv.request_id, task_id = %t.task_id, object = %o, error = %f.message, "object not counted");
                                (f.code, f.message)
                            }
                        },
                    };
                    results.push(r);
                }
                Ok(batch_response(&job, &results))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_in_an_object_name() {
        let k = "p/AWSLogs/123456789012/vpcflowlogs/us-east-1/2026/11/30/12/123456789012_vpcflowlogs_us-east-1_fl-0123_20261130T1205Z_ab12cd34.log.gz";
        assert_eq!(
            key_time(k),
            Some(days_from_civil(2026, 11, 30) * 86_400 + 12 * 3600 + 5 * 60)
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(key_time("x/no_time_here.log.gz"), None);
        assert_eq!(hour_label(0), "1970-01-01T00");
        assert_eq!(
            hour_label(days_from_civil(2024, 2, 29) * 24 + 23),
            "2024-02-29T23"
        );
    }

    #[test]
    fn results_keys_are_stable() {
        let o = ObjectRef {
            bucket: "b".into(),
            key: "k".into(),
            etag: None,
            size: None,
        };
        let d = object_digest(&o, "e");
        assert_eq!(d, object_digest(&o, "e"));
        assert_ne!(d, object_digest(&o, "f"));
        assert_eq!(
            results_key("natmeter/results/", 0, "nat-1", &d),
            format!("natmeter/results/hour=1970-01-01T00/nat_gateway=nat-1/{d}.json")
        );
    }
}
