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
//! Prices are us-east-1 list prices, each with its source next to it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use natmeter_cloudwatch::batch;
use natmeter_cloudwatch::put::{SendError, SendReport, Sender};
use natmeter_core::config::Config;
use natmeter_core::engine::{Attributor, Results};
use natmeter_core::metrics::{datums, Datum, MetricOptions};
use natmeter_core::price::cost;
use natmeter_core::sources::subscription::{event_data_serde, Decoder, Payload};
use natmeter_core::sources::{Input, Reader};
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

/// The records' sizes in the module's format, one line each as the flow log writes them.
fn flow_log_sizes(sim: &Simulation) -> anyhow::Result<(u64, u64)> {
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
    let (mut records, mut bytes) = (0u64, 0u64);
    for e in &sim.events {
        let data = event_data_serde(e.json.as_bytes())?;
        decoder.decode(&data, &mut buf)?;
        for ev in Payload::parse_serde(&buf)?.log_events {
            let tokens: Vec<&str> = ev.message.split(' ').collect();
            records += 1;
            bytes += if tokens.len() == names.len() {
                // 23 tokens and the 22 spaces between them.
                pick.iter().map(|&k| tokens[k].len() as u64).sum::<u64>() + pick.len() as u64 - 1
            } else {
                ev.message.len() as u64
            };
        }
    }
    Ok((records, bytes))
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
    let (flow_records, flow_bytes) = flow_log_sizes(&sim)?;
    Ok(Hour {
        invocations,
        records,
        nat_bytes: sim.truth.totals.bytes,
        requests: requests_so_far(&function) as u64,
        log_bytes: log.len() as u64,
        log_lines: log.iter().filter(|&&b| b == b'\n').count() as u64,
        summaries: log
            .split(|&b| b == b'\n')
            .filter(|l| {
                serde_json::from_slice::<serde_json::Value>(l)
                    .is_ok_and(|v| v["message"] == "natmeter invocation")
            })
            .count() as u64,
        stdout_bytes: stdout.len() as u64,
        stdout_lines: stdout.iter().filter(|&&b| b == b'\n').count() as u64,
        platform_bytes,
        compute,
        sending_invocations,
        flow_records,
        flow_bytes,
        sim,
        start,
    })
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

pub fn run(a: CostArgs) -> anyhow::Result<()> {
    let h = run_hour(&a)?;
    let cfg = config(&a, &h.sim)?;
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
    let billed_ms = lambda_ms.ceil();
    let gb_seconds = inv * m * billed_ms / 1000.0 * f64::from(a.memory_mb) / 1024.0;
    let lambda_usd = inv * m / 1e6 * LAMBDA_PER_MILLION + gb_seconds * LAMBDA_ARM_GB_SECOND;
    let function_log_bytes = (h.log_bytes + h.stdout_bytes + h.platform_bytes) as f64 * m;
    let logs_usd = function_log_bytes / GIB * LOG_INGEST_PER_GB;
    let natmeter_usd = metrics_usd + put_usd + lambda_usd + logs_usd;
    let flow_gb = h.flow_bytes as f64 * m / GIB;
    let flow_logs_usd = tiered(flow_gb, &VENDED_TO_LOGS);
    let flow_s3_usd = tiered(flow_gb, &VENDED_TO_S3);
    let parquet_usd = flow_gb * PARQUET_PER_GB;
    let nat_gb = h.nat_bytes as f64 * m / GIB;
    let nat_usd = cost(h.nat_bytes, cfg.price_per_gb) * m;
    let nat_hours_usd = a.nat_gateways as f64 * m * NAT_GATEWAY_HOUR;
    let solution_usd = natmeter_usd + flow_logs_usd;

    let command: Vec<String> = std::env::args().collect();
    let mut out = std::io::stdout().lock();
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
        "| for comparison: the same flow logs delivered to S3 as text (for `natmeter report`) | {flow_gb:.2} GB | {flow_s3_usd:.2} |"
    )?;
    writeln!(
        out,
        "| for comparison: to S3 as Parquet (conversion on top) | {flow_gb:.2} GB | {:.2} |",
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

    #[test]
    fn emf_lines_are_output_too() {
        let plain = run_hour(&args("cloudwatch")).unwrap();
        let emf = run_hour(&args("emf")).unwrap();
        assert_eq!(emf.requests, 0);
        assert!(emf.stdout_lines > plain.stdout_lines);
    }
}
