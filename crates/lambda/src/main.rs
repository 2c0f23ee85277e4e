//! `bootstrap`: natmeter's Lambda function, triggered by a CloudWatch Logs subscription filter on
//! a VPC flow-log group. It attributes NAT Gateway bytes to pod IPs and publishes metrics.
//!
//! Set-up happens once in `main` (configuration, tracing, the CloudWatch client); the handler is
//! a thin shell over the pure core. Try it locally against the Runtime API emulator:
//!   cargo lambda watch    &&    cargo lambda invoke --data-file events/<file>.json

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_runtime::{service_fn, Error, LambdaEvent};
use natmeter_core::config::{Config, Sink};
use natmeter_core::dedup::{BatchKey, RecentBatches};
use natmeter_core::engine::{BatchKind, Engine};
use natmeter_core::price::cost;
use natmeter_core::subscription::{event_data, Decoder};
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// Time kept back from the deadline to post the response (or the error) to the Runtime API.
const DEADLINE_MARGIN: Duration = Duration::from_millis(750);

struct Shared {
    cfg: Config,
    client: Option<aws_sdk_cloudwatch::Client>,
    /// Decode buffers kept across invocations of a warm container (no re-allocation).
    scratch: Mutex<(Decoder, Vec<u8>)>,
    /// Keys of batches this container already published (duplicate delivery).
    recent: Mutex<RecentBatches>,
}

/// Batches remembered per warm container: about 20 minutes at one batch per second.
const RECENT_BATCHES: usize = 1024;

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
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
    let client = match cfg.sink {
        Sink::CloudWatch | Sink::Both => Some(natmeter_cloudwatch::put::client(None).await),
        Sink::Emf => None,
    };
    let shared = Arc::new(Shared {
        cfg,
        client,
        scratch: Mutex::new((Decoder::default(), Vec::new())),
        recent: Mutex::new(RecentBatches::new(RECENT_BATCHES)),
    });
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Box<RawValue>>| {
        let shared = Arc::clone(&shared);
        async move { handle(&shared, ev).await }
    }))
    .await
}

async fn handle(shared: &Shared, ev: LambdaEvent<Box<RawValue>>) -> Result<Value, Error> {
    let started = std::time::Instant::now();
    let cfg = &shared.cfg;
    let request_id = ev.context.request_id.clone();
    let remaining = Duration::from_millis(ev.context.deadline.saturating_sub(now_ms()));
    let deadline = tokio::time::Instant::now() + remaining.saturating_sub(DEADLINE_MARGIN);

    let key = event_data(ev.payload.get().as_bytes())
        .ok()
        .map(|d| BatchKey::of(&d));
    if let Some(k) = &key {
        if shared
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(k)
        {
            tracing::warn!(request_id = %request_id, "duplicate delivery of a batch this container already published; skipped");
            return Ok(json!({"batch": "duplicate"}));
        }
    }

    let mut engine = Engine::new(&cfg.topology, cfg.format.clone());
    let kind = {
        let mut guard = shared.scratch.lock().unwrap_or_else(|p| p.into_inner());
        let (decoder, buf) = &mut *guard;
        let res = engine.ingest_event(ev.payload.get().as_bytes(), decoder, buf, &request_id);
        // A gzip bomb or a huge batch must not pin memory in a warm container.
        if buf.capacity() > 4 << 20 {
            *buf = Vec::new();
        }
        res
    };
    let kind = match kind {
        Ok(k) => k,
        Err(e) => {
            tracing::error!(request_id = %request_id, error = %e, "event could not be decoded; failing the invocation so Lambda retries it and the on-failure destination keeps it");
            return Err(e.into());
        }
    };
    if engine.records.parse_errors > 0 {
        for s in &engine.observed.parse_error_samples {
            tracing::warn!(request_id = %request_id, location = %s.location, error = %s.error, "flow-log record skipped");
        }
    }
    let mut stdout = std::io::stdout().lock();
    let published = natmeter_cloudwatch::publish::publish(
        &engine,
        cfg,
        shared.client.as_ref(),
        deadline,
        (now_ms() / 1000) as i64,
        &mut stdout,
    )
    .await;
    drop(stdout);
    let bytes: u64 = engine.ledger.iter().map(|(_, t)| t.bytes).sum();
    let kind_str = match kind {
        BatchKind::Data => "data",
        BatchKind::Control => "control",
        BatchKind::SkippedNotNat => "skipped_not_nat",
    };
    let log_stream = engine.observed.log_stream.clone().unwrap_or_default();
    let r = &engine.records;
    match published {
        Ok(p) => {
            if let (Some(k), BatchKind::Data) = (key, kind) {
                shared
                    .recent
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(k);
            }
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
                datums_sent = sent,
                retries = p.sent.as_ref().map_or(0, |s| s.retries),
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
            Err(e.into())
        }
    }
}
