//! `natmeter cost`: what the whole solution costs to run at a given scale, measured on simulated
//! traffic rather than estimated by hand.
//!
//! One simulated hour of NAT-ENI-only flow logs at 1-minute aggregation (the module's
//! `create_nat_flow_logs`, the reference) is delivered the way CloudWatch Logs delivers it (one
//! batch per NAT ENI log stream per minute) to the function itself: `Function::invoke` of the
//! lambda crate, with the real engine, metric model, PutMetricData request split, EMF and detail
//! line writers and the function's own structured log line, in process. What the bill needs is
//! then read off that run: the bytes of every line the function writes, the PutMetricData
//! requests it makes, the time it spends, and the flow-log records' own sizes for delivery.
//! Only the PutMetricData round trip cannot be measured here; it is a labelled assumption.
//!
//! The same records are then delivered the S3 way (docs/operations.md §3.3): 5-minute gzip text
//! objects per NAT ENI, an S3 notification per object through SQS, one invocation per SQS
//! batch. That path's function is not in this build, so its time is measured on the same
//! library calls it makes (gunzip, header line, the engine over the text, `publish`), and the
//! GetObject round trip is the second labelled assumption.
//!
//! Prices are us-east-1 list prices, each with its source next to it (docs/operations.md §3.1).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::{Read as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natmeter_cloudwatch::batch;
use natmeter_cloudwatch::put::{SendError, SendReport, Sender};
use natmeter_core::config::Config;
use natmeter_core::engine::{Attributor, Results};
use natmeter_core::metrics::{datums, Datum, MetricOptions};
use natmeter_core::price::cost;
use natmeter_core::sources::detect::split_header;
use natmeter_core::sources::subscription::{event_data_serde, Decoder, Payload};
use natmeter_core::sources::{Input, Reader, Text};
use natmeter_core::topology::Topology;
use natmeter_lambda::{Function, Invocation};
use natmeter_sim::{simulate, Scope, SimConfig, Simulation};
use tracing_subscriber::util::SubscriberInitExt as _;

const GIB: f64 = (1u64 << 30) as f64;
const HOURS_PER_MONTH: f64 = 730.0;

// Prices, us-east-1.
/// Custom metrics, first 10,000: $0.30 per metric-month, prorated by the hour; PutMetricData
/// $0.01 per 1,000 requests (aws.amazon.com/cloudwatch/pricing, "Metrics" and "API").
const CUSTOM_METRIC_MONTH: f64 = 0.30;
const PUT_METRIC_DATA_PER_1000: f64 = 0.01;
/// Lambda: $0.20 per 1M requests; arm64 $0.0000133334 per GB-second, billed in 1 ms increments
/// (aws.amazon.com/lambda/pricing).
const LAMBDA_PER_MILLION: f64 = 0.20;
const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
/// "At 1,769 MB, a function has the equivalent of one vCPU": CPU is in proportion to memory
/// (docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html).
const LAMBDA_MB_PER_VCPU: f64 = 1769.0;
/// CloudWatch Logs ingestion of the function's own log group (custom logs, Standard class):
/// $0.50 per GB (aws.amazon.com/cloudwatch/pricing, "Logs", Collect).
const LOG_INGEST_PER_GB: f64 = 0.50;
/// Flow logs are vended logs, priced per GB delivered, tiered by monthly volume (upper bound of
/// each tier in GB, USD per GB). To CloudWatch Logs: $0.50 for the first 10 TB, $0.25 the next
/// 20 TB, $0.10 the next 20 TB, $0.05 beyond; to S3: $0.25, $0.15, $0.075, $0.05
/// (aws.amazon.com/cloudwatch/pricing, "Logs", Vended Logs; the same tiers are in AWS's own
/// cost tool, github.com/aws-samples/sample-cfm-tips-mcp, services/cloudwatch_service_vended_log.py).
const VENDED_TO_LOGS: [(f64, f64); 4] = [
    (10_240.0, 0.50),
    (30_720.0, 0.25),
    (51_200.0, 0.10),
    (f64::INFINITY, 0.05),
];
const VENDED_TO_S3: [(f64, f64); 4] = [
    (10_240.0, 0.25),
    (30_720.0, 0.15),
    (51_200.0, 0.075),
    (f64::INFINITY, 0.05),
];
/// Delivery to S3 as Apache Parquet costs a conversion charge on top: $0.035 per GB
/// (aws.amazon.com/cloudwatch/pricing, Vended Logs, "Apache Parquet conversion"; the Tokyo rate,
/// $0.056, is quoted at zenn.dev/team_delta/articles/0b581e29f87e7b next to its $0.38 delivery).
const PARQUET_PER_GB: f64 = 0.035;
/// NAT gateway: $0.045 per hour (aws.amazon.com/vpc/pricing); processing is priced per region
/// by `natmeter_core::price`.
const NAT_GATEWAY_HOUR: f64 = 0.045;

// The delivery paths' own prices and the facts they rest on, each with its AWS source in
// docs/operations.md §3.1 ("Flow-log delivery paths").
/// CloudWatch Logs storage: per GB-month of archived data, which is the events compressed with
/// gzip level 6 plus 26 bytes of metadata per event.
const LOGS_STORE_GB_MONTH: f64 = 0.03;
const LOGS_ARCHIVE_EVENT_METADATA: u64 = 26;
/// S3 Standard storage (first 50 TB) per GB-month, and PUT and GET per 1,000 requests, billed
/// to the bucket owner.
const S3_STANDARD_GB_MONTH: f64 = 0.023;
const S3_PUT_PER_1000: f64 = 0.005;
const S3_GET_PER_1000: f64 = 0.0004;
/// SQS standard queue, per million requests; an S3 notification is one request (under 64 KB).
const SQS_PER_MILLION: f64 = 0.40;
/// Lambda long-polls an idle queue with as many as five pollers; each empty poll is assumed to
/// wait 20 s, SQS's longest.
const SQS_IDLE_POLLERS: f64 = 5.0;
const SQS_LONG_POLL_SECONDS: f64 = 20.0;
/// Flow logs publish a file to S3 every 5 minutes per flow log, and the module creates one flow
/// log per NAT ENI.
const S3_OBJECT_SECONDS: i64 = 300;

/// The module's format for its NAT flow logs (`nat_flow_log_format`, infra/modules/natmeter/
/// main.tf): delivery is priced on these records' sizes, not on the simulator's longer format.
const MODULE_FIELDS: [&str; 23] = [
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "az-id",
    "flow-direction",
    "traffic-path",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
];

#[derive(clap::Args)]
pub struct CostArgs {
    #[arg(long, default_value_t = 2000)]
    pods: usize,
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    #[arg(long, default_value_t = 3)]
    nat_gateways: usize,
    #[arg(long, default_value_t = 20)]
    max_sources: usize,
    #[arg(long, default_value_t = natmeter_core::metrics::DEFAULT_MIN_SOURCE_SHARE)]
    min_source_share: f64,
    /// NATMETER_SINK: cloudwatch (the module's default), emf or both.
    #[arg(long, default_value = "cloudwatch")]
    sink: String,
    /// Lambda memory, MB (the module's default).
    #[arg(long, default_value_t = 256)]
    memory_mb: u32,
    /// Round trip of the PutMetricData requests of one invocation, ms (sent concurrently). The
    /// one number not measured here: it depends on the network to CloudWatch.
    #[arg(long, default_value_t = 20.0)]
    put_round_trip_ms: f64,
    /// Region whose NAT processing price applies (natmeter's price table).
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Days the flow logs are kept: the log group's retention (the module's log_retention_days)
    /// or the S3 bucket's expiration.
    #[arg(long, default_value_t = 30)]
    retention_days: u32,
    /// S3 path: messages per SQS batch, the event source mapping's BatchSize (AWS's default).
    /// 1 shows the other bound: every object its own invocation.
    #[arg(long, default_value_t = 10)]
    sqs_batch_size: usize,
    /// S3 path: round trip of GetObject, ms, once per invocation (a batch's objects are fetched
    /// concurrently). Not measured here, like --put-round-trip-ms.
    #[arg(long, default_value_t = 20.0)]
    get_round_trip_ms: f64,
}

/// A PutMetricData sender that answers at once: the requests are split exactly as the SDK
/// sender splits them ([`batch::requests`]), counted and not sent.
#[derive(Default)]
struct CountingSender {
    requests: Mutex<usize>,
}

impl Sender for CountingSender {
    async fn send(
        &self,
        _namespace: &str,
        datums: &[Datum],
        _deadline: tokio::time::Instant,
        already: &HashSet<u64>,
    ) -> Result<SendReport, SendError> {
        let requests = batch::requests(batch::to_wire(datums));
        let mut report = SendReport::default();
        for r in &requests {
            let digest = batch::digest(r);
            if already.contains(&digest) {
                report.already_delivered += 1;
                continue;
            }
            report.requests += 1;
            report.datums += r.len();
            report.delivered.push(digest);
        }
        *self.requests.lock().unwrap_or_else(|p| p.into_inner()) += report.requests;
        Ok(report)
    }
}

/// Where the function's structured log lines go during the run (its stderr in Lambda).
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What the function did over the simulated hour, as measured.
struct Hour {
    invocations: u64,
    records: u64,
    nat_bytes: u64,
    requests: u64,
    /// Bytes of the lines the function wrote: its structured log (summary lines and warnings)
    /// and stdout (detail lines, EMF lines).
    log_bytes: u64,
    log_lines: u64,
    /// Of those, the invocation summaries (one per invocation, by the function's contract).
    summaries: u64,
    summary_bytes: u64,
    stdout_bytes: u64,
    stdout_lines: u64,
    /// Lambda's own START/END/REPORT lines, at their documented shape.
    platform_bytes: u64,
    /// Wall time of `Function::invoke`, summed: CPU on this machine, one core.
    compute: Duration,
    /// Invocations that sent PutMetricData requests (each pays one round trip).
    sending_invocations: u64,
    /// Flow-log records delivered (the NAT ENIs' only) and their bytes in the module's format.
    flow_records: u64,
    flow_bytes: u64,
    /// What CloudWatch Logs archives of them (gzip level 6 and metadata).
    archived_bytes: u64,
    /// The same records as S3 delivery writes them.
    objects: Vec<S3Object>,
    sim: Simulation,
    start: i64,
}

fn simulated_hour(a: &CostArgs) -> Simulation {
    simulate(&SimConfig {
        seed: a.seed,
        pods: a.pods,
        nodes: a.nodes,
        nat_gateways: a.nat_gateways,
        minutes: 60,
        scope: Scope::NatEnis,
        batch_per_minute: true,
        ..SimConfig::default()
    })
}

fn config(a: &CostArgs, sim: &Simulation) -> anyhow::Result<Config> {
    let mut env: HashMap<&str, String> = HashMap::from([
        ("NATMETER_LOG_FORMAT", sim.log_format.clone()),
        (
            "NATMETER_NAT_GATEWAYS",
            serde_json::to_string(&sim.gateways)?,
        ),
        ("AWS_REGION", a.region.clone()),
        ("NATMETER_SINK", a.sink.clone()),
        ("NATMETER_MAX_SOURCES", a.max_sources.to_string()),
        ("NATMETER_MIN_SOURCE_SHARE", a.min_source_share.to_string()),
    ]);
    if a.sink == "both" {
        env.insert("NATMETER_EMF_NAMESPACE", "NatMeter/emf".into());
    }
    Config::from_lookup(|k| env.get(k).cloned()).map_err(|e| anyhow::anyhow!("{e}"))
}

/// One subscription batch's records in the module's format: one NAT ENI's log stream over a
/// minute, each record with its log event's timestamp (ms), one line as the flow log writes it.
struct ModuleBatch {
    log_stream: String,
    lines: Vec<(i64, String)>,
}

/// The simulated batches with their records re-written in the module's format: delivery is
/// priced on these records' sizes, not on the simulator's longer format.
fn module_batches(sim: &Simulation) -> anyhow::Result<Vec<ModuleBatch>> {
    let names: Vec<&str> = sim
        .log_format
        .split_ascii_whitespace()
        .map(|t| t.trim_start_matches("${").trim_end_matches('}'))
        .collect();
    let pick: Vec<usize> = MODULE_FIELDS
        .iter()
        .filter_map(|f| names.iter().position(|n| n == f))
        .collect();
    anyhow::ensure!(
        pick.len() == MODULE_FIELDS.len(),
        "the simulator's format lacks a field of the module's"
    );
    let (mut decoder, mut buf) = (Decoder::default(), Vec::new());
    let mut batches = Vec::with_capacity(sim.events.len());
    for e in &sim.events {
        let data = event_data_serde(e.json.as_bytes())?;
        decoder.decode(&data, &mut buf)?;
        let payload = Payload::parse_serde(&buf)?;
        let lines = payload
            .log_events
            .iter()
            .map(|ev| {
                let tokens: Vec<&str> = ev.message.split(' ').collect();
                let line = if tokens.len() == names.len() {
                    pick.iter()
                        .map(|&k| tokens[k])
                        .collect::<Vec<_>>()
                        .join(" ")
                } else {
                    ev.message.to_string()
                };
                (ev.timestamp, line)
            })
            .collect();
        batches.push(ModuleBatch {
            log_stream: payload.log_stream.into_owned(),
            lines,
        });
    }
    Ok(batches)
}

/// Records and their bytes as CloudWatch Logs ingests them: each event's message, no newline.
fn flow_log_sizes(batches: &[ModuleBatch]) -> (u64, u64) {
    let lines = batches.iter().flat_map(|b| &b.lines);
    lines.fold((0, 0), |(n, bytes), (_, l)| (n + 1, bytes + l.len() as u64))
}

fn gzip(body: &[u8]) -> std::io::Result<Vec<u8>> {
    // Level 6: CloudWatch Logs archives at that level (docs/operations.md §3.1); AWS does not
    // say which level its S3 delivery uses.
    let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    z.write_all(body)?;
    z.finish()
}

/// What CloudWatch Logs bills as archived: each batch's events gzipped (level 6) plus 26 bytes
/// of metadata per event (docs/operations.md §3.1).
fn archived_bytes(batches: &[ModuleBatch]) -> std::io::Result<u64> {
    let mut total = 0u64;
    let mut body = Vec::new();
    for b in batches {
        body.clear();
        for (_, l) in &b.lines {
            body.extend_from_slice(l.as_bytes());
            body.push(b'\n');
        }
        total += gzip(&body)?.len() as u64 + LOGS_ARCHIVE_EVENT_METADATA * b.lines.len() as u64;
    }
    Ok(total)
}

/// A flow-log object as S3 delivery writes it: one NAT ENI's records of one 5-minute window,
/// a header line naming the fields first, gzip-compressed.
struct S3Object {
    log_stream: String,
    /// Unix seconds of the window's start.
    window: i64,
    /// Uncompressed: the header line and the records, each ending in a newline.
    text_bytes: u64,
    gzip: Vec<u8>,
}

/// The hour's records as 5-minute objects per NAT ENI, in window order, then by log stream.
fn s3_objects(batches: &[ModuleBatch]) -> std::io::Result<Vec<S3Object>> {
    let header = MODULE_FIELDS.join(" ");
    let mut bodies: BTreeMap<(i64, &str), Vec<u8>> = BTreeMap::new();
    for b in batches {
        for (ts, line) in &b.lines {
            let window = ts.div_euclid(1000).div_euclid(S3_OBJECT_SECONDS) * S3_OBJECT_SECONDS;
            let body = bodies
                .entry((window, b.log_stream.as_str()))
                .or_insert_with(|| format!("{header}\n").into_bytes());
            body.extend_from_slice(line.as_bytes());
            body.push(b'\n');
        }
    }
    bodies
        .into_iter()
        .map(|((window, log_stream), body)| {
            Ok(S3Object {
                log_stream: log_stream.to_string(),
                window,
                text_bytes: body.len() as u64,
                gzip: gzip(&body)?,
            })
        })
        .collect()
}

/// Lambda's platform lines for one invocation in the Text log format (the module's), at the
/// shape the Lambda developer guide shows, with this invocation's numbers.
fn platform_lines(request_id: &str, ms: f64, memory_mb: u32) -> usize {
    format!(
        "START RequestId: {request_id} Version: $LATEST\nEND RequestId: {request_id}\n\
         REPORT RequestId: {request_id}\tDuration: {ms:.2} ms\tBilled Duration: {} ms\t\
         Memory Size: {memory_mb} MB\tMax Memory Used: 16 MB\t\n",
        ms.ceil()
    )
    .len()
}

fn run_hour(a: &CostArgs) -> anyhow::Result<Hour> {
    let sim = simulated_hour(a);
    let start = SimConfig::default().start;
    let cfg = config(a, &sim)?;
    let function = Function::new(cfg, Some(CountingSender::default()), None);
    let captured = Captured::default();
    let sink = captured.clone();
    // The function's log line exactly as crates/lambda/src/main.rs configures it.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_ansi(false)
        .with_writer(move || sink.clone())
        .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
        .finish();
    let log_guard = subscriber.set_default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut stdout = Vec::new();
    let (mut invocations, mut records, mut sending_invocations) = (0u64, 0u64, 0u64);
    let (mut platform_bytes, mut compute) = (0u64, Duration::ZERO);
    let requests_so_far = |f: &Function<CountingSender>| {
        f.sender()
            .map_or(0, |s| *s.requests.lock().unwrap_or_else(|p| p.into_inner()))
    };
    for (i, e) in sim.events.iter().enumerate() {
        // A Lambda request id is a UUID: 36 characters.
        let request_id = format!("8f507cfc-0000-4697-b07a-{i:012}");
        let before = requests_so_far(&function);
        let inv = Invocation {
            request_id: &request_id,
            deadline: tokio::time::Instant::now() + Duration::from_secs(60),
            // The simulated hour's clock: its datapoints are inside CloudWatch's window.
            now: start + 3900,
        };
        let t = Instant::now();
        let response = rt.block_on(function.invoke(e.json.as_bytes(), &inv, &mut stdout));
        let took = t.elapsed();
        let response = response.map_err(|f| anyhow::anyhow!("{}: {}", f.kind, f.message))?;
        compute += took;
        invocations += 1;
        records += response["records_read"].as_u64().unwrap_or(0);
        sending_invocations += u64::from(requests_so_far(&function) > before);
        platform_bytes += platform_lines(&request_id, took.as_secs_f64() * 1e3, a.memory_mb) as u64;
    }
    drop(log_guard);
    let log = captured.0.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let batches = module_batches(&sim)?;
    let (flow_records, flow_bytes) = flow_log_sizes(&batches);
    let summaries: Vec<&[u8]> = log
        .split(|&b| b == b'\n')
        .filter(|l| {
            serde_json::from_slice::<serde_json::Value>(l)
                .is_ok_and(|v| v["message"] == "natmeter invocation")
        })
        .collect();
    Ok(Hour {
        invocations,
        records,
        nat_bytes: sim.truth.totals.bytes,
        requests: requests_so_far(&function) as u64,
        log_bytes: log.len() as u64,
        log_lines: log.iter().filter(|&&b| b == b'\n').count() as u64,
        summaries: summaries.len() as u64,
        summary_bytes: summaries.iter().map(|l| l.len() as u64 + 1).sum(),
        stdout_bytes: stdout.len() as u64,
        stdout_lines: stdout.iter().filter(|&&b| b == b'\n').count() as u64,
        platform_bytes,
        compute,
        sending_invocations,
        flow_records,
        flow_bytes,
        archived_bytes: archived_bytes(&batches)?,
        objects: s3_objects(&batches)?,
        sim,
        start,
    })
}

/// What the function would do over the same hour on the S3 path, measured in process.
struct S3Hour {
    /// One per SQS batch: a window's objects, at most `--sqs-batch-size` of them.
    invocations: u64,
    records: u64,
    nat_bytes: u64,
    requests: u64,
    sending_invocations: u64,
    /// Wall time of the function's work per batch, summed: gunzip and header line of each
    /// object, the engine over the text, `publish` (metrics, request split, detail lines).
    compute: Duration,
    stdout_bytes: u64,
    platform_bytes: u64,
    /// Each invocation's results, for the custom metrics they make.
    engines: Vec<Results>,
}

/// Runs the S3 path's invocations over the hour's objects: what the function does after
/// GetObject, with the same library calls (the SQS and S3 event parsing are not timed).
fn run_s3_hour(a: &CostArgs, h: &Hour) -> anyhow::Result<S3Hour> {
    let cfg = config(a, &h.sim)?;
    let sender = CountingSender::default();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let mut reader = Reader::default();
    let (mut inflated, mut stdout) = (Vec::new(), Vec::new());
    let mut s = S3Hour {
        invocations: 0,
        records: 0,
        nat_bytes: 0,
        requests: 0,
        sending_invocations: 0,
        compute: Duration::ZERO,
        stdout_bytes: 0,
        platform_bytes: 0,
        engines: Vec::new(),
    };
    let requests_so_far = || *sender.requests.lock().unwrap_or_else(|p| p.into_inner());
    let mut windows: BTreeMap<i64, Vec<&S3Object>> = BTreeMap::new();
    for o in &h.objects {
        windows.entry(o.window).or_default().push(o);
    }
    let batches = windows
        .values()
        .flat_map(|w| w.chunks(a.sqs_batch_size.max(1)));
    for (i, batch) in batches.enumerate() {
        let request_id = format!("5a3c0e2d-0000-4697-b07a-{i:012}");
        let before = requests_so_far();
        let t = Instant::now();
        let attributor = Attributor::new(&cfg.topology, cfg.format.clone());
        let mut engine = attributor.results();
        for o in batch {
            inflated.clear();
            flate2::read::GzDecoder::new(&o.gzip[..]).read_to_end(&mut inflated)?;
            let (header, rest, first_line) = split_header(&inflated);
            let format = header
                .transpose()
                .map_err(|e| anyhow::anyhow!("{}: header line: {e}", o.log_stream))?;
            let text = Text {
                bytes: rest,
                format: format.as_ref(),
                origin: &o.log_stream,
                first_line,
                fallback_time: o.window,
            };
            attributor.ingest(Input::Text(text), &mut reader, &mut engine)?;
        }
        rt.block_on(natmeter_cloudwatch::publish::publish(
            &engine,
            &cfg,
            Some(&sender),
            tokio::time::Instant::now() + Duration::from_secs(60),
            h.start + 3900,
            &HashSet::new(),
            &mut stdout,
        ))?;
        let took = t.elapsed();
        s.compute += took;
        s.invocations += 1;
        s.records += engine.records().read;
        s.nat_bytes += engine.ledger().total_bytes();
        s.sending_invocations += u64::from(requests_so_far() > before);
        s.platform_bytes +=
            platform_lines(&request_id, took.as_secs_f64() * 1e3, a.memory_mb) as u64;
        s.engines.push(engine);
    }
    s.requests = requests_so_far() as u64;
    s.stdout_bytes = stdout.len() as u64;
    Ok(s)
}

/// Distinct metric identities (name and dimension values) of the hour's datums: what custom
/// metrics bill, prorated by the hour.
fn metric_ids(engines: &[Results], topo: &Topology, opts: &MetricOptions) -> (usize, usize) {
    let mut ids: BTreeSet<(&'static str, Vec<(&'static str, String)>)> = BTreeSet::new();
    for e in engines {
        let (ds, _) = batch::within_window(datums(e, topo, opts), opts.now);
        let (ds, _) = batch::admissible(ds);
        for d in ds {
            ids.insert((d.metric, d.dimensions));
        }
    }
    let source_ip = ids
        .iter()
        .filter(|(_, d)| d.first().is_some_and(|x| x.0 == "SourceIp"))
        .count();
    (ids.len(), source_ip)
}

/// Tiered price of `gb` in a month.
fn tiered(gb: f64, tiers: &[(f64, f64)]) -> f64 {
    let mut lower = 0.0;
    let mut usd = 0.0;
    for &(upper, price) in tiers {
        if gb > lower {
            usd += (gb.min(upper) - lower) * price;
        }
        lower = upper;
    }
    usd
}

/// The ways the flow logs reach the function (docs/operations.md §3.1, §3.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Path {
    /// Delivered to the log group, pushed to the function by its subscription filter.
    Subscription,
    /// Delivered to S3 as gzip text, announced through SQS.
    S3Text,
    /// Delivered to S3 as Parquet, announced through SQS.
    S3Parquet,
}

impl Path {
    fn name(self) -> &'static str {
        match self {
            Path::Subscription => "CloudWatch Logs subscription",
            Path::S3Text => "S3 text",
            Path::S3Parquet => "S3 Parquet",
        }
    }
}

/// A month of one path's flow-log handling, in the units each part is billed in.
#[derive(Clone, Copy, Debug, Default)]
struct FlowLogUse {
    /// Uncompressed GB delivered: what vended logs, and Parquet conversion, are billed on.
    delivered_gb: f64,
    /// GB-months kept: the stored (compressed) size over the retention.
    stored_gb_month: f64,
    /// S3 objects: each written once (PUT), read once (GET) and announced once (SendMessage).
    objects: f64,
    /// SQS batches: each one ReceiveMessage that returns it and one DeleteMessageBatch.
    batches: f64,
    /// ReceiveMessage calls that come back empty while the queue is idle.
    idle_polls: f64,
}

/// What a path's flow-log handling costs a month, by line, USD.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct FlowLogBill {
    delivery: f64,
    conversion: f64,
    storage: f64,
    s3_put: f64,
    s3_get: f64,
    sqs_send: f64,
    sqs_batches: f64,
    sqs_idle: f64,
}

impl FlowLogBill {
    fn total(&self) -> f64 {
        self.delivery
            + self.conversion
            + self.storage
            + self.s3_put
            + self.s3_get
            + self.sqs_send
            + self.sqs_batches
            + self.sqs_idle
    }
}

/// The path's prices applied to its use. A subscription has no per-request charge of its own:
/// CloudWatch Logs bills ingestion and storage, and the invocations are the function's.
fn price_flow_logs(path: Path, u: &FlowLogUse) -> FlowLogBill {
    let sqs = |requests: f64| requests / 1e6 * SQS_PER_MILLION;
    match path {
        Path::Subscription => FlowLogBill {
            delivery: tiered(u.delivered_gb, &VENDED_TO_LOGS),
            storage: u.stored_gb_month * LOGS_STORE_GB_MONTH,
            ..FlowLogBill::default()
        },
        Path::S3Text | Path::S3Parquet => FlowLogBill {
            delivery: tiered(u.delivered_gb, &VENDED_TO_S3),
            conversion: if path == Path::S3Parquet {
                u.delivered_gb * PARQUET_PER_GB
            } else {
                0.0
            },
            storage: u.stored_gb_month * S3_STANDARD_GB_MONTH,
            s3_put: u.objects / 1000.0 * S3_PUT_PER_1000,
            s3_get: u.objects / 1000.0 * S3_GET_PER_1000,
            sqs_send: sqs(u.objects),
            sqs_batches: sqs(2.0 * u.batches),
            sqs_idle: sqs(u.idle_polls),
        },
    }
}

/// GB-months held at steady state when `monthly_gb` arrive each month and each is kept
/// `retention_days`.
fn stored_gb_month(monthly_gb: f64, retention_days: u32) -> f64 {
    monthly_gb * f64::from(retention_days) * 24.0 / HOURS_PER_MONTH
}

/// Lambda's pollers keep long-polling the queue; the polls that return a batch are counted
/// with the batches.
fn idle_polls(batches_per_month: f64) -> f64 {
    let polls = SQS_IDLE_POLLERS * HOURS_PER_MONTH * 3600.0 / SQS_LONG_POLL_SECONDS;
    (polls - batches_per_month).max(0.0)
}

/// Lambda's bill for a month of invocations of `ms` each, rounded up to the millisecond it is
/// billed in.
#[derive(Clone, Copy, Debug)]
struct LambdaBill {
    invocations: f64,
    billed_ms: f64,
    gb_seconds: f64,
}

impl LambdaBill {
    fn of(invocations: f64, ms: f64, memory_mb: u32) -> LambdaBill {
        let billed_ms = ms.ceil();
        LambdaBill {
            invocations,
            billed_ms,
            gb_seconds: invocations * billed_ms / 1000.0 * f64::from(memory_mb) / 1024.0,
        }
    }
    fn requests_usd(&self) -> f64 {
        self.invocations / 1e6 * LAMBDA_PER_MILLION
    }
    fn compute_usd(&self) -> f64 {
        self.gb_seconds * LAMBDA_ARM_GB_SECOND
    }
    fn usd(&self) -> f64 {
        self.requests_usd() + self.compute_usd()
    }
}

/// What the function itself costs a month on one path.
struct FunctionBill {
    lambda: LambdaBill,
    /// Custom metrics (each namespace's copy counted).
    metrics: usize,
    put_requests: f64,
    /// Its log group's ingestion: summaries, warnings, detail and EMF lines, platform lines.
    log_gb: f64,
}

impl FunctionBill {
    fn metrics_usd(&self) -> f64 {
        self.metrics as f64 * CUSTOM_METRIC_MONTH
    }
    fn put_usd(&self) -> f64 {
        self.put_requests / 1000.0 * PUT_METRIC_DATA_PER_1000
    }
    fn logs_usd(&self) -> f64 {
        self.log_gb * LOG_INGEST_PER_GB
    }
    fn total(&self) -> f64 {
        self.metrics_usd() + self.put_usd() + self.lambda.usd() + self.logs_usd()
    }
}

/// A unit price as the pricing pages write it: at least two decimals, no trailing zeros.
fn usd(p: f64) -> String {
    let s = format!("{p:.10}");
    let s = s.trim_end_matches('0');
    let decimals = s.len() - s.find('.').map_or(s.len(), |i| i + 1);
    format!("${s}{}", "0".repeat(2usize.saturating_sub(decimals)))
}

/// The first tier's price, marked when the volume reaches past it.
fn tier_price(gb: f64, tiers: &[(f64, f64)]) -> String {
    let (first_upper, first) = tiers[0];
    if gb > first_upper {
        format!("{}/GB tiered", usd(first))
    } else {
        format!("{}/GB", usd(first))
    }
}

/// The delivery paths' table: each line's quantity, unit price and USD a month, per path.
fn paths_table(
    out: &mut dyn std::io::Write,
    paths: &[(Path, &FlowLogUse, &FunctionBill)],
    a: &CostArgs,
) -> std::io::Result<()> {
    type Cell = Option<(String, f64)>;
    let names: Vec<&str> = paths.iter().map(|p| p.0.name()).collect();
    writeln!(out, "| item | {} |", names.join(" | "))?;
    writeln!(out, "|---|{}", "--:|".repeat(paths.len()))?;
    let mut totals = vec![0.0; paths.len()];
    let mut row = |item: &str, cell: &dyn Fn(Path, &FlowLogUse, &FunctionBill) -> Cell| {
        let cells: Vec<String> = paths
            .iter()
            .zip(&mut totals)
            .map(|((p, u, f), total)| match cell(*p, u, f) {
                Some((what, usd)) => {
                    *total += usd;
                    format!("{what} = {usd:.2}")
                }
                None => "–".into(),
            })
            .collect();
        writeln!(out, "| {item} | {} |", cells.join(" | "))
    };
    let s3 = |p: Path| p != Path::Subscription;
    row(
        "flow-log delivery (vended logs, on the uncompressed GB)",
        &|p, u, _| {
            let tiers = if s3(p) {
                &VENDED_TO_S3
            } else {
                &VENDED_TO_LOGS
            };
            let what = format!(
                "{:.2} GB × {}",
                u.delivered_gb,
                tier_price(u.delivered_gb, tiers)
            );
            Some((what, price_flow_logs(p, u).delivery))
        },
    )?;
    row("Parquet conversion (on the same GB)", &|p, u, _| {
        (p == Path::S3Parquet).then(|| {
            let what = format!("{:.2} GB × {}/GB", u.delivered_gb, usd(PARQUET_PER_GB));
            (what, price_flow_logs(p, u).conversion)
        })
    })?;
    row(
        &format!(
            "flow-log storage, {} days (compressed GB kept)",
            a.retention_days
        ),
        &|p, u, _| {
            let rate = if s3(p) {
                S3_STANDARD_GB_MONTH
            } else {
                LOGS_STORE_GB_MONTH
            };
            let what = format!("{:.2} GB-month × {}", u.stored_gb_month, usd(rate));
            Some((what, price_flow_logs(p, u).storage))
        },
    )?;
    let requests = |n: f64, price: &str, usd: f64| (format!("{n:.0} × {price}"), usd);
    let per_1000 = |p: f64| format!("{} per 1,000", usd(p));
    let sqs_price = format!("{} per 1M", usd(SQS_PER_MILLION));
    row("S3 PUT (delivery writes each object)", &|p, u, _| {
        s3(p).then(|| {
            requests(
                u.objects,
                &per_1000(S3_PUT_PER_1000),
                price_flow_logs(p, u).s3_put,
            )
        })
    })?;
    row(
        "S3 GET (the function reads each object once)",
        &|p, u, _| {
            s3(p).then(|| {
                requests(
                    u.objects,
                    &per_1000(S3_GET_PER_1000),
                    price_flow_logs(p, u).s3_get,
                )
            })
        },
    )?;
    row(
        "SQS SendMessage (an S3 notification per object)",
        &|p, u, _| s3(p).then(|| requests(u.objects, &sqs_price, price_flow_logs(p, u).sqs_send)),
    )?;
    row(
        "SQS ReceiveMessage and DeleteMessageBatch (one each per batch)",
        &|p, u, _| {
            s3(p).then(|| {
                requests(
                    2.0 * u.batches,
                    &sqs_price,
                    price_flow_logs(p, u).sqs_batches,
                )
            })
        },
    )?;
    row(
        &format!(
            "SQS empty long polls ({SQS_IDLE_POLLERS} pollers, {SQS_LONG_POLL_SECONDS} s each)"
        ),
        &|p, u, _| {
            s3(p).then(|| requests(u.idle_polls, &sqs_price, price_flow_logs(p, u).sqs_idle))
        },
    )?;
    row("Lambda requests", &|_, _, f| {
        let price = format!("{} per 1M", usd(LAMBDA_PER_MILLION));
        Some(requests(
            f.lambda.invocations,
            &price,
            f.lambda.requests_usd(),
        ))
    })?;
    row(
        &format!("Lambda compute ({} MB arm64)", a.memory_mb),
        &|_, _, f| {
            let what = format!(
                "{:.0} GB-s ({:.0} ms billed each) × {}",
                f.lambda.gb_seconds,
                f.lambda.billed_ms,
                usd(LAMBDA_ARM_GB_SECOND)
            );
            Some((what, f.lambda.compute_usd()))
        },
    )?;
    row("custom metrics", &|_, _, f| {
        let what = format!("{} × {}", f.metrics, usd(CUSTOM_METRIC_MONTH));
        Some((what, f.metrics_usd()))
    })?;
    row("PutMetricData requests", &|_, _, f| {
        Some(requests(
            f.put_requests,
            &per_1000(PUT_METRIC_DATA_PER_1000),
            f.put_usd(),
        ))
    })?;
    row("the function's log ingestion", &|_, _, f| {
        let what = format!("{:.2} GB × {}/GB", f.log_gb, usd(LOG_INGEST_PER_GB));
        Some((what, f.logs_usd()))
    })?;
    let totals: Vec<String> = totals.iter().map(|t| format!("**{t:.2}**")).collect();
    writeln!(out, "| **total** | {} |", totals.join(" | "))
}

pub fn run(a: CostArgs) -> anyhow::Result<()> {
    let h = run_hour(&a)?;
    let s3 = run_s3_hour(&a, &h)?;
    report(&a, &h, &s3, &mut std::io::stdout().lock())
}

/// The bill of the measured hour, as markdown.
fn report(a: &CostArgs, h: &Hour, s3: &S3Hour, out: &mut dyn std::io::Write) -> anyhow::Result<()> {
    let cfg = config(a, &h.sim)?;
    let topo = h.sim.topology();
    let format = h.sim.format();
    let attributor = Attributor::new(&topo, format);
    let mut reader = Reader::default();
    let mut engines = Vec::new();
    for e in &h.sim.events {
        let mut engine = attributor.results();
        let input = Input::Event {
            bytes: e.json.as_bytes(),
            origin: &e.file_name,
        };
        attributor.ingest(input, &mut reader, &mut engine)?;
        engines.push(engine);
    }
    let opts = |max_sources: usize, min_source_share: f64| MetricOptions {
        max_sources,
        min_source_share,
        price_per_gb: cfg.price_per_gb,
        now: h.start + 3900,
    };
    // Each namespace a sink writes holds its own copy of every metric (NATMETER_SINK=both).
    let namespaces =
        usize::from(cfg.sinks.put_metric_data().is_some()) + usize::from(cfg.sinks.emf().is_some());
    let (ids, source_ids) = metric_ids(&engines, &topo, &opts(a.max_sources, a.min_source_share));
    let (ids, source_ids) = (ids * namespaces, source_ids * namespaces);

    let m = HOURS_PER_MONTH;
    let inv = h.invocations as f64;
    let metrics_usd = ids as f64 * CUSTOM_METRIC_MONTH;
    let put_usd = h.requests as f64 * m / 1000.0 * PUT_METRIC_DATA_PER_1000;
    // Duration on Lambda: this machine's compute scaled to the function's share of a vCPU, plus
    // one round trip for an invocation that sends, rounded up to the millisecond it is billed in.
    let compute_ms = h.compute.as_secs_f64() * 1e3 / inv.max(1.0);
    let cpu_share = (f64::from(a.memory_mb) / LAMBDA_MB_PER_VCPU).min(1.0);
    let lambda_ms =
        compute_ms / cpu_share + a.put_round_trip_ms * h.sending_invocations as f64 / inv.max(1.0);
    let lambda = LambdaBill::of(inv * m, lambda_ms, a.memory_mb);
    let (billed_ms, gb_seconds, lambda_usd) = (lambda.billed_ms, lambda.gb_seconds, lambda.usd());
    let function_log_bytes = (h.log_bytes + h.stdout_bytes + h.platform_bytes) as f64 * m;
    let logs_usd = function_log_bytes / GIB * LOG_INGEST_PER_GB;
    let natmeter_usd = metrics_usd + put_usd + lambda_usd + logs_usd;
    let flow_gb = h.flow_bytes as f64 * m / GIB;
    let flow_logs_usd = tiered(flow_gb, &VENDED_TO_LOGS);
    // S3 delivery bills the objects' uncompressed text: the records, their newlines and one
    // header line per object (docs/operations.md §3.1).
    let s3_gb = h.objects.iter().map(|o| o.text_bytes).sum::<u64>() as f64 * m / GIB;
    let flow_s3_usd = tiered(s3_gb, &VENDED_TO_S3);
    let parquet_usd = s3_gb * PARQUET_PER_GB;
    let nat_gb = h.nat_bytes as f64 * m / GIB;
    let nat_usd = cost(h.nat_bytes, cfg.price_per_gb) * m;
    let nat_hours_usd = a.nat_gateways as f64 * m * NAT_GATEWAY_HOUR;
    let solution_usd = natmeter_usd + flow_logs_usd;

    let command: Vec<String> = std::env::args().collect();
    writeln!(out, "### `natmeter cost`: an example run\n")?;
    writeln!(
        out,
        "{}, `{}` (natmeter {}). {} pods, {} nodes, {} NAT gateways, NATMETER_SINK={}, \
         NATMETER_MAX_SOURCES={}, NATMETER_MIN_SOURCE_SHARE={}, {} MB arm64, {} list prices.\n",
        crate::bench::utc_now(),
        command.join(" "),
        env!("CARGO_PKG_VERSION"),
        a.pods,
        a.nodes,
        a.nat_gateways,
        a.sink,
        a.max_sources,
        a.min_source_share,
        a.memory_mb,
        a.region
    )?;
    writeln!(
        out,
        "One simulated hour of NAT-ENI-only flow logs at 1-minute aggregation ({} records, \
         {:.1} GB a month through NAT), delivered as 1-minute batches to the function in process: \
         {} invocations, {} records read, {} PutMetricData requests.\n",
        h.flow_records, nat_gb, h.invocations, h.records, h.requests
    )?;
    writeln!(
        out,
        "What the function wrote and spent, measured in the run:\n"
    )?;
    writeln!(
        out,
        "| output | lines per invocation | bytes per line | bytes per invocation |"
    )?;
    writeln!(out, "|---|--:|--:|--:|")?;
    let structured = format!(
        "structured log ({} invocation summaries, {} other lines: skipped records' warnings)",
        h.summaries,
        h.log_lines - h.summaries
    );
    for (what, lines, bytes) in [
        (structured.as_str(), h.log_lines, h.log_bytes),
        (
            "stdout (source detail lines, EMF lines)",
            h.stdout_lines,
            h.stdout_bytes,
        ),
        (
            "Lambda START/END/REPORT (Text format)",
            3 * h.invocations,
            h.platform_bytes,
        ),
    ] {
        writeln!(
            out,
            "| {what} | {:.1} | {:.0} | {:.0} |",
            lines as f64 / inv.max(1.0),
            bytes as f64 / (lines as f64).max(1.0),
            bytes as f64 / inv.max(1.0)
        )?;
    }
    writeln!(
        out,
        "\nCompute: {compute_ms:.2} ms per invocation here (one core of this machine), {:.1} ms \
         on {} MB ({:.3} of a vCPU), plus {} ms PutMetricData round trip (assumed: \
         --put-round-trip-ms) for the {:.0}% of invocations that send: billed {billed_ms:.0} ms.\n",
        compute_ms / cpu_share,
        a.memory_mb,
        cpu_share,
        a.put_round_trip_ms,
        h.sending_invocations as f64 * 100.0 / inv.max(1.0)
    )?;
    writeln!(out, "| item | quantity per month | USD per month |")?;
    writeln!(out, "|---|--:|--:|")?;
    writeln!(
        out,
        "| custom metrics (distinct metric + dimension values in an hour, billed prorated hourly; {source_ids} of them SourceIp) | {ids} | {metrics_usd:.2} |"
    )?;
    writeln!(
        out,
        "| PutMetricData requests | {:.0} | {put_usd:.2} |",
        h.requests as f64 * m
    )?;
    writeln!(
        out,
        "| Lambda ({} MB arm64, {billed_ms:.0} ms billed per invocation) | {:.0} invocations, {gb_seconds:.0} GB-s | {lambda_usd:.2} |",
        a.memory_mb,
        inv * m
    )?;
    writeln!(
        out,
        "| the function's log ingestion (the lines above) | {:.2} GB | {logs_usd:.2} |",
        function_log_bytes / GIB
    )?;
    writeln!(out, "| **natmeter** | | **{natmeter_usd:.2}** |")?;
    writeln!(
        out,
        "| flow logs it needs, delivered to CloudWatch Logs (NAT ENIs only, 1-minute aggregation, {:.0} bytes per record; vended-logs tiers) | {flow_gb:.2} GB | {flow_logs_usd:.2} |",
        h.flow_bytes as f64 / (h.flow_records as f64).max(1.0)
    )?;
    writeln!(
        out,
        "| **natmeter with its flow logs** | | **{solution_usd:.2}** |"
    )?;
    writeln!(
        out,
        "| for comparison: the same flow logs delivered to S3 as text (for `natmeter report`) | {s3_gb:.2} GB | {flow_s3_usd:.2} |"
    )?;
    writeln!(
        out,
        "| for comparison: to S3 as Parquet (conversion on top) | {s3_gb:.2} GB | {:.2} |",
        flow_s3_usd + parquet_usd
    )?;
    writeln!(
        out,
        "| NAT gateway data processing of the simulated traffic | {nat_gb:.0} GB | {nat_usd:.2} |"
    )?;
    writeln!(
        out,
        "| NAT gateway hours (for scale) | {:.0} h | {nat_hours_usd:.2} |",
        a.nat_gateways as f64 * m
    )?;
    writeln!(
        out,
        "\nnatmeter costs {:.1}% of the NAT processing charge of the traffic it meters; with the \
         flow logs it needs, {:.1}% ({:.1}% of the whole NAT bill). Not included: log storage \
         after ingestion (CloudWatch Logs $0.03 per GB-month compressed, per the retention you \
         set) and the dashboard.",
        natmeter_usd / nat_usd * 100.0,
        solution_usd / nat_usd * 100.0,
        solution_usd / (nat_usd + nat_hours_usd) * 100.0
    )?;

    // The S3 path's function, priced the way the subscription path's is above.
    let s3_inv = s3.invocations as f64;
    let s3_compute_ms = s3.compute.as_secs_f64() * 1e3 / s3_inv.max(1.0);
    let s3_lambda_ms = s3_compute_ms / cpu_share
        + a.get_round_trip_ms
        + a.put_round_trip_ms * s3.sending_invocations as f64 / s3_inv.max(1.0);
    let (s3_ids, s3_source_ids) =
        metric_ids(&s3.engines, &topo, &opts(a.max_sources, a.min_source_share));
    // The summary line is the function's; on this path it is written once per batch, at the
    // size it has on the subscription path. The skipped records' warnings stay as they were.
    let summary = h.summary_bytes as f64 / (h.summaries as f64).max(1.0);
    let s3_structured = s3_inv * summary + h.log_bytes.saturating_sub(h.summary_bytes) as f64;
    let s3_function = FunctionBill {
        lambda: LambdaBill::of(s3_inv * m, s3_lambda_ms, a.memory_mb),
        metrics: s3_ids * namespaces,
        put_requests: s3.requests as f64 * m,
        log_gb: (s3_structured + (s3.stdout_bytes + s3.platform_bytes) as f64) * m / GIB,
    };
    let subscription_function = FunctionBill {
        lambda,
        metrics: ids,
        put_requests: h.requests as f64 * m,
        log_gb: function_log_bytes / GIB,
    };
    let objects = h.objects.len() as f64;
    let gzip_bytes = h.objects.iter().map(|o| o.gzip.len() as u64).sum::<u64>();
    let subscription_use = FlowLogUse {
        delivered_gb: flow_gb,
        stored_gb_month: stored_gb_month(h.archived_bytes as f64 * m / GIB, a.retention_days),
        ..FlowLogUse::default()
    };
    let s3_use = FlowLogUse {
        delivered_gb: s3_gb,
        stored_gb_month: stored_gb_month(gzip_bytes as f64 * m / GIB, a.retention_days),
        objects: objects * m,
        batches: s3_inv * m,
        idle_polls: idle_polls(s3_inv * m),
    };
    let paths = [
        (
            Path::Subscription,
            &subscription_use,
            &subscription_function,
        ),
        (Path::S3Text, &s3_use, &s3_function),
        (Path::S3Parquet, &s3_use, &s3_function),
    ];
    writeln!(
        out,
        "\n### Delivery paths side by side\n\nThe same hour's records in the module's format, \
         delivered three ways. CloudWatch Logs: {} events, archived as {:.0} bytes each (gzip \
         level 6 of each 1-minute batch, plus {LOGS_ARCHIVE_EVENT_METADATA} bytes of metadata per \
         event). S3: {objects:.0} objects in the hour (one per NAT ENI per 5 minutes: a header \
         line and the records, {:.1} KB on average, {:.1} KB gzipped with flate2 at level 6), read \
         in {s3_inv:.0} SQS batches of at most {} objects. Every quantity is per month.\n",
        h.flow_records,
        h.archived_bytes as f64 / (h.flow_records as f64).max(1.0),
        s3_gb * GIB / m / objects.max(1.0) / 1024.0,
        gzip_bytes as f64 / objects.max(1.0) / 1024.0,
        a.sqs_batch_size.max(1),
    )?;
    writeln!(
        out,
        "S3 path compute: {s3_compute_ms:.2} ms per invocation here (gunzip, header line, the \
         engine over the text and publishing, one core of this machine), {:.1} ms on {} MB, plus \
         {} ms GetObject round trip (assumed: --get-round-trip-ms) and {} ms PutMetricData round \
         trip for the {:.0}% of invocations that send: billed {:.0} ms.\n",
        s3_compute_ms / cpu_share,
        a.memory_mb,
        a.get_round_trip_ms,
        a.put_round_trip_ms,
        s3.sending_invocations as f64 * 100.0 / s3_inv.max(1.0),
        s3_function.lambda.billed_ms,
    )?;
    paths_table(out, &paths, a)?;
    let total =
        |(p, u, f): &(Path, &FlowLogUse, &FunctionBill)| price_flow_logs(*p, u).total() + f.total();
    writeln!(
        out,
        "\nWith its flow logs, natmeter costs {:.1}% of the NAT processing charge on the \
         CloudWatch Logs subscription, {:.1}% on S3 text, {:.1}% on S3 Parquet ({} of the S3 \
         path's custom metrics are SourceIp). Delivery and Parquet conversion are billed on the \
         uncompressed log volume, so Parquet's smaller objects do not lower them; storage is \
         billed on the compressed bytes. The Parquet column stores and reads the text objects, \
         since `natmeter cost` writes no Parquet (AWS: gzip Parquet takes about 20% less than \
         gzip text above 100 KB per file, possibly more below). S3 delivers every 5 minutes, so the \
         per-minute metrics arrive up to 5 minutes later than by subscription. A batch holds \
         what one poll returns: --sqs-batch-size 1 prices an invocation per object. Not \
         included: free tiers, the function's own log storage, the dashboard.",
        total(&paths[0]) / nat_usd * 100.0,
        total(&paths[1]) / nat_usd * 100.0,
        total(&paths[2]) / nat_usd * 100.0,
        s3_source_ids * namespaces,
    )?;

    writeln!(
        out,
        "\nSourceIp metrics by cap (the cap is per invocation; distinct values accumulate over the hour):\n"
    )?;
    writeln!(out, "| NATMETER_MAX_SOURCES | NATMETER_MIN_SOURCE_SHARE | SourceIp metrics | all custom metrics | USD per month |")?;
    writeln!(out, "|--:|--:|--:|--:|--:|")?;
    for (cap, share) in [
        (0usize, 0.0),
        (5, 0.0),
        (20, 0.0),
        (20, 0.01),
        (20, 0.05),
        (20, 0.10),
    ] {
        let (ids, source_ids) = metric_ids(&engines, &topo, &opts(cap, share));
        let (ids, source_ids) = (ids * namespaces, source_ids * namespaces);
        writeln!(
            out,
            "| {cap} | {share} | {source_ids} | {ids} | {:.2} |",
            ids as f64 * CUSTOM_METRIC_MONTH
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiers_price_each_slice_at_its_rate() {
        assert_eq!(tiered(0.0, &VENDED_TO_LOGS), 0.0);
        assert!((tiered(100.0, &VENDED_TO_LOGS) - 50.0).abs() < 1e-9);
        // 10 TB at $0.50, then 1,024 GB at $0.25.
        let gb = 11.0 * 1024.0;
        assert!((tiered(gb, &VENDED_TO_LOGS) - (10_240.0 * 0.50 + 1024.0 * 0.25)).abs() < 1e-6);
        let all = 60.0 * 1024.0;
        let want = 10_240.0 * 0.25 + 20_480.0 * 0.15 + 20_480.0 * 0.075 + 10_240.0 * 0.05;
        assert!((tiered(all, &VENDED_TO_S3) - want).abs() < 1e-6);
    }

    fn args(sink: &str) -> CostArgs {
        CostArgs {
            pods: 60,
            nodes: 4,
            nat_gateways: 2,
            max_sources: 20,
            min_source_share: 0.05,
            sink: sink.into(),
            memory_mb: 256,
            put_round_trip_ms: 20.0,
            region: "us-east-1".into(),
            seed: 3,
            retention_days: 30,
            sqs_batch_size: 10,
            get_round_trip_ms: 20.0,
        }
    }

    /// The hour is measured on the function's own output: one summary line per invocation in
    /// its log, stdout holding exactly the detail lines the metric model writes, the records
    /// the simulation delivered.
    #[test]
    fn the_hour_is_the_functions_own_output() {
        let a = args("cloudwatch");
        let h = run_hour(&a).unwrap();
        assert_eq!(h.invocations, h.sim.events.len() as u64);
        assert!(h.invocations > 60, "{}", h.invocations);
        assert_eq!(h.records, h.sim.truth.records.read);
        assert_eq!(h.flow_records, h.sim.truth.records.read);
        assert!(h.requests >= h.sending_invocations && h.sending_invocations > 0);
        let cfg = config(&a, &h.sim).unwrap();
        let topo = h.sim.topology();
        let attributor = Attributor::new(&topo, h.sim.format());
        let mut reader = Reader::default();
        let mut details = 0u64;
        for e in &h.sim.events {
            let mut engine = attributor.results();
            let input = Input::Event {
                bytes: e.json.as_bytes(),
                origin: "t",
            };
            attributor.ingest(input, &mut reader, &mut engine).unwrap();
            details += natmeter_core::metrics::source_details(&engine, &topo, cfg.price_per_gb)
                .iter()
                .map(|d| d.to_json_line().len() as u64 + 1)
                .sum::<u64>();
        }
        assert_eq!(h.stdout_bytes, details);
        assert_eq!(h.summaries, h.invocations);
        assert!(h.log_lines >= h.invocations);
        // The module's format is shorter than the simulator's: delivery is priced on its lines.
        let sim_bytes: u64 = h.sim.events.iter().map(|e| e.decoded_bytes as u64).sum();
        assert!(h.flow_bytes > 0 && h.flow_bytes < sim_bytes);
    }

    fn close(got: f64, want: f64) -> bool {
        (got - want).abs() < 1e-9 * want.abs().max(1.0)
    }

    /// Each path's lines at the prices docs/operations.md §3.1 lists, computed by hand.
    #[test]
    fn each_path_is_priced_at_its_documented_rates() {
        let u = FlowLogUse {
            delivered_gb: 100.0,
            stored_gb_month: 10.0,
            objects: 26_280.0,
            batches: 8_760.0,
            idle_polls: 648_240.0,
        };
        let logs = price_flow_logs(Path::Subscription, &u);
        // $0.50/GB delivered, $0.03/GB-month stored, no request of its own.
        assert!(close(logs.delivery, 50.0));
        assert!(close(logs.storage, 0.30));
        assert!(close(logs.total(), 50.30));
        let text = price_flow_logs(Path::S3Text, &u);
        assert!(close(text.delivery, 25.0));
        assert_eq!(text.conversion, 0.0);
        assert!(close(text.storage, 0.23));
        assert!(close(text.s3_put, 26.28 * 0.005));
        assert!(close(text.s3_get, 26.28 * 0.0004));
        assert!(close(text.sqs_send, 0.026_28 * 0.40));
        // A ReceiveMessage and a DeleteMessageBatch per batch.
        assert!(close(text.sqs_batches, 0.017_52 * 0.40));
        assert!(close(text.sqs_idle, 0.648_24 * 0.40));
        let parquet = price_flow_logs(Path::S3Parquet, &u);
        // Conversion on the same uncompressed GB as delivery: $0.035 on 100 GB.
        assert!(close(parquet.conversion, 3.5));
        assert!(close(parquet.total(), text.total() + 3.5));

        // Past the first 10 TB: 10,240 GB at the first rate, the rest at the second.
        let big = FlowLogUse {
            delivered_gb: 11.0 * 1024.0,
            ..FlowLogUse::default()
        };
        let big_logs = price_flow_logs(Path::Subscription, &big);
        assert!(close(big_logs.delivery, 10_240.0 * 0.50 + 1024.0 * 0.25));
        let big_parquet = price_flow_logs(Path::S3Parquet, &big);
        assert!(close(big_parquet.delivery, 10_240.0 * 0.25 + 1024.0 * 0.15));
        assert!(close(big_parquet.conversion, 11_264.0 * 0.035));

        // 30 days of a 730-hour month's volume held at once.
        assert!(close(stored_gb_month(73.0, 30), 72.0));
        // Five pollers, one 20 s poll each: 657,000 polls a month, of which these returned batches.
        assert!(close(idle_polls(8_760.0), 657_000.0 - 8_760.0));
        assert_eq!(idle_polls(1e9), 0.0);
    }

    #[test]
    fn lambda_is_billed_per_started_millisecond() {
        let l = LambdaBill::of(8_760.0, 99.2, 256);
        assert_eq!(l.billed_ms, 100.0);
        // 8,760 × 0.1 s × 0.25 GB.
        assert!(close(l.gb_seconds, 219.0));
        assert!(close(
            l.usd(),
            8_760.0 / 1e6 * 0.20 + 219.0 * 0.000_013_333_4
        ));
    }

    /// The table's cells name quantity, unit price and USD, and its totals add every line.
    #[test]
    fn the_paths_table_adds_its_lines() {
        let u = FlowLogUse {
            delivered_gb: 100.0,
            stored_gb_month: 10.0,
            objects: 26_280.0,
            batches: 8_760.0,
            idle_polls: 648_240.0,
        };
        let f = FunctionBill {
            lambda: LambdaBill::of(8_760.0, 99.2, 256),
            metrics: 44,
            put_requests: 8_760.0,
            log_gb: 10.0,
        };
        let paths = [
            (Path::Subscription, &u, &f),
            (Path::S3Text, &u, &f),
            (Path::S3Parquet, &u, &f),
        ];
        let mut out = Vec::new();
        paths_table(&mut out, &paths, &args("cloudwatch")).unwrap();
        let table = String::from_utf8(out).unwrap();
        let row = |item: &str| {
            table
                .lines()
                .find(|l| l.starts_with(&format!("| {item}")))
                .unwrap_or_else(|| panic!("no {item} in\n{table}"))
                .to_string()
        };
        assert_eq!(
            row("flow-log delivery"),
            "| flow-log delivery (vended logs, on the uncompressed GB) | 100.00 GB × $0.50/GB = 50.00 \
             | 100.00 GB × $0.25/GB = 25.00 | 100.00 GB × $0.25/GB = 25.00 |"
        );
        assert_eq!(
            row("Parquet conversion"),
            "| Parquet conversion (on the same GB) | – | – | 100.00 GB × $0.035/GB = 3.50 |"
        );
        assert!(row("S3 GET").ends_with(
            "| – | 26280 × $0.0004 per 1,000 = 0.01 | 26280 × $0.0004 per 1,000 = 0.01 |"
        ));
        assert!(
            row("Lambda compute").contains("219 GB-s (100 ms billed each) × $0.0000133334 = 0.00")
        );
        // Function: 13.20 metrics + 0.0876 PutMetricData + 0.001752 + 0.00292 Lambda + 5.00 logs.
        let function = 13.2 + 0.0876 + 0.001752 + 219.0 * 0.000_013_333_4 + 5.0;
        let s3_requests = 0.1314 + 0.010_512 + 0.010_512 + 0.007_008 + 0.259_296;
        assert_eq!(
            row("**total**"),
            format!(
                "| **total** | **{:.2}** | **{:.2}** | **{:.2}** |",
                50.0 + 0.30 + function,
                25.0 + 0.23 + s3_requests + function,
                25.0 + 3.5 + 0.23 + s3_requests + function
            )
        );
        assert_eq!(
            row("**total**"),
            "| **total** | **68.59** | **43.94** | **47.44** |"
        );
    }

    /// The S3 objects are the simulated records themselves: one per NAT ENI per 5 minutes, a
    /// header line and the module-format lines, gzip that inflates back to exactly that.
    #[test]
    fn s3_objects_are_the_simulated_records() {
        let small = run_hour(&args("cloudwatch")).unwrap();
        let enis = small.sim.gateways.len();
        assert_eq!(small.objects.len(), enis * 12);
        let header = MODULE_FIELDS.join(" ");
        let (mut records, mut odd) = (0u64, 0u64);
        for o in &small.objects {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&o.gzip[..])
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text.len() as u64, o.text_bytes);
            let mut lines = text.lines();
            assert_eq!(lines.next(), Some(header.as_str()));
            for l in lines {
                // The simulator's deliberately corrupt records stay as they were written.
                odd += u64::from(l.split(' ').count() != MODULE_FIELDS.len());
                records += 1;
            }
            assert!(
                o.gzip.len() as u64 * 4 < o.text_bytes,
                "flow-log text compresses well"
            );
        }
        assert_eq!(records, small.flow_records);
        assert!(odd <= small.sim.truth.records.parse_errors, "{odd}");
        // Lines and their newlines, plus one header line per object.
        let text: u64 = small.objects.iter().map(|o| o.text_bytes).sum();
        let headers = small.objects.len() as u64 * (header.len() as u64 + 1);
        assert_eq!(text, small.flow_bytes + small.flow_records + headers);
        // CloudWatch Logs' archive: compressed events plus 26 bytes each.
        assert!(small.archived_bytes > 26 * small.flow_records);
        assert!(small.archived_bytes < small.flow_bytes);

        // Twice the pods and another gateway: more records, more bytes, more objects.
        let mut a = args("cloudwatch");
        a.pods *= 2;
        a.nat_gateways += 1;
        let big = run_hour(&a).unwrap();
        assert_eq!(big.objects.len(), (enis + 1) * 12);
        assert!(big.flow_records > small.flow_records);
        assert!(big.flow_bytes > small.flow_bytes);
        assert!(big.archived_bytes > small.archived_bytes);
        let gz = |h: &Hour| h.objects.iter().map(|o| o.gzip.len()).sum::<usize>();
        assert!(gz(&big) > gz(&small));
    }

    /// The S3 path's invocations count what the subscription path counts: every record, every
    /// NAT byte of the simulation's truth; one invocation per SQS batch.
    #[test]
    fn the_s3_path_counts_the_same_traffic() {
        let a = args("cloudwatch");
        let h = run_hour(&a).unwrap();
        let s3 = run_s3_hour(&a, &h).unwrap();
        assert_eq!(s3.records, h.sim.truth.records.read);
        assert_eq!(s3.nat_bytes, h.sim.truth.totals.bytes);
        // Two ENIs' objects per window fit one batch of ten.
        assert_eq!(s3.invocations, 12);
        assert!(s3.requests >= s3.sending_invocations && s3.sending_invocations > 0);
        assert!(s3.compute > Duration::ZERO && s3.stdout_bytes > 0);
        let one = CostArgs {
            sqs_batch_size: 1,
            ..args("cloudwatch")
        };
        let per_object = run_s3_hour(&one, &h).unwrap();
        assert_eq!(per_object.invocations, h.objects.len() as u64);
        assert_eq!(per_object.nat_bytes, h.sim.truth.totals.bytes);
    }

    /// The report's existing lines are what they were before the delivery paths were added:
    /// the same rows, in the same order, from the same formulas (the two S3 comparison rows
    /// now price the objects' text, header lines included, as the paths table does).
    #[test]
    fn the_existing_rows_are_unchanged() {
        let a = args("cloudwatch");
        let h = run_hour(&a).unwrap();
        let s3 = run_s3_hour(&a, &h).unwrap();
        let mut out = Vec::new();
        report(&a, &h, &s3, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();

        // The formulas of the report before the delivery paths, written out again.
        let cfg = config(&a, &h.sim).unwrap();
        let topo = h.sim.topology();
        let attributor = Attributor::new(&topo, h.sim.format());
        let mut reader = Reader::default();
        let engines: Vec<Results> = h
            .sim
            .events
            .iter()
            .map(|e| {
                let mut engine = attributor.results();
                let input = Input::Event {
                    bytes: e.json.as_bytes(),
                    origin: "t",
                };
                attributor.ingest(input, &mut reader, &mut engine).unwrap();
                engine
            })
            .collect();
        let opts = MetricOptions {
            max_sources: a.max_sources,
            min_source_share: a.min_source_share,
            price_per_gb: cfg.price_per_gb,
            now: h.start + 3900,
        };
        let (ids, source_ids) = metric_ids(&engines, &topo, &opts);
        let m = 730.0;
        let inv = h.invocations as f64;
        let compute_ms = h.compute.as_secs_f64() * 1e3 / inv;
        let cpu_share = 256.0 / 1769.0;
        let lambda_ms = compute_ms / cpu_share + 20.0 * h.sending_invocations as f64 / inv;
        let billed_ms = lambda_ms.ceil();
        let gb_seconds = inv * m * billed_ms / 1000.0 * 256.0 / 1024.0;
        let lambda_usd = inv * m / 1e6 * 0.20 + gb_seconds * 0.000_013_333_4;
        let log_gb = (h.log_bytes + h.stdout_bytes + h.platform_bytes) as f64 * m / GIB;
        let metrics_usd = ids as f64 * 0.30;
        let put_usd = h.requests as f64 * m / 1000.0 * 0.01;
        let natmeter_usd = metrics_usd + put_usd + lambda_usd + log_gb * 0.50;
        let flow_gb = h.flow_bytes as f64 * m / GIB;
        let nat_usd = cost(h.nat_bytes, cfg.price_per_gb) * m;
        let want = [
            "### `natmeter cost`: an example run".to_string(),
            "What the function wrote and spent, measured in the run:".into(),
            "| output | lines per invocation | bytes per line | bytes per invocation |".into(),
            "| item | quantity per month | USD per month |".into(),
            format!("| custom metrics (distinct metric + dimension values in an hour, billed prorated hourly; {source_ids} of them SourceIp) | {ids} | {metrics_usd:.2} |"),
            format!("| PutMetricData requests | {:.0} | {put_usd:.2} |", h.requests as f64 * m),
            format!("| Lambda (256 MB arm64, {billed_ms:.0} ms billed per invocation) | {:.0} invocations, {gb_seconds:.0} GB-s | {lambda_usd:.2} |", inv * m),
            format!("| the function's log ingestion (the lines above) | {log_gb:.2} GB | {:.2} |", log_gb * 0.50),
            format!("| **natmeter** | | **{natmeter_usd:.2}** |"),
            format!("| flow logs it needs, delivered to CloudWatch Logs (NAT ENIs only, 1-minute aggregation, {:.0} bytes per record; vended-logs tiers) | {flow_gb:.2} GB | {:.2} |", h.flow_bytes as f64 / h.flow_records as f64, flow_gb * 0.50),
            format!("| **natmeter with its flow logs** | | **{:.2}** |", natmeter_usd + flow_gb * 0.50),
            "| for comparison: the same flow logs delivered to S3 as text (for `natmeter report`) |".into(),
            "| for comparison: to S3 as Parquet (conversion on top) |".into(),
            format!("| NAT gateway data processing of the simulated traffic | {:.0} GB | {nat_usd:.2} |", h.nat_bytes as f64 * m / GIB),
            format!("| NAT gateway hours (for scale) | {:.0} h | {:.2} |", 2.0 * m, 2.0 * m * 0.045),
            format!("natmeter costs {:.1}% of the NAT processing charge", natmeter_usd / nat_usd * 100.0),
            "### Delivery paths side by side".into(),
            "| item | CloudWatch Logs subscription | S3 text | S3 Parquet |".into(),
            "SourceIp metrics by cap (the cap is per invocation; distinct values accumulate over the hour):".into(),
            "| NATMETER_MAX_SOURCES | NATMETER_MIN_SOURCE_SHARE | SourceIp metrics | all custom metrics | USD per month |".into(),
        ];
        let mut lines = text.lines();
        for w in &want {
            assert!(
                lines.any(|l| l.starts_with(w.as_str())),
                "missing, or out of order: {w}\n{text}"
            );
        }
        // The flow logs' CloudWatch Logs delivery is the same number in both tables.
        assert!(text.contains(&format!(
            "| {flow_gb:.2} GB × $0.50/GB = {:.2} |",
            flow_gb * 0.50
        )));
    }

    #[test]
    fn emf_lines_are_output_too() {
        let plain = run_hour(&args("cloudwatch")).unwrap();
        let emf = run_hour(&args("emf")).unwrap();
        assert_eq!(emf.requests, 0);
        assert!(emf.stdout_lines > plain.stdout_lines);
    }
}
