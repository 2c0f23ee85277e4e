//! `natmeter cost`: what natmeter itself costs to run at a given scale, computed from the metric
//! model on simulated traffic (not from a hand-kept estimate).
//!
//! One simulated hour is split into invocations the way CloudWatch Logs delivers them (one batch
//! per NAT ENI log stream per minute, with 1-minute flow-log aggregation); each invocation goes
//! through the same engine and metric projection as the function. Custom metrics are billed
//! prorated by the hour, so the distinct metric identities of the hour are what costs money.

use std::collections::BTreeSet;

use natmeter_core::engine::Engine;
use natmeter_core::metrics::{datums, source_details, MetricOptions};
use natmeter_core::simulate::{simulate, Scope, SimConfig};
use natmeter_core::subscription::Decoder;

/// List prices, us-east-1 (docs/operations.md §3.1).
const CUSTOM_METRIC_MONTH: f64 = 0.30;
const PUT_METRIC_DATA_PER_1000: f64 = 0.01;
const LAMBDA_PER_MILLION: f64 = 0.20;
const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
const LOG_INGEST_PER_GB: f64 = 0.50;
const HOURS_PER_MONTH: f64 = 730.0;
const NAT_GATEWAY_HOUR: f64 = 0.045;

#[derive(clap::Args)]
pub struct CostArgs {
    #[arg(long, default_value_t = 2000)]
    pods: usize,
    #[arg(long, default_value_t = 100)]
    nodes: usize,
    #[arg(long, default_value_t = 3)]
    nat_gateways: usize,
    /// NAT-processed traffic per month, TB (2^40 bytes), for the NAT bill next to it.
    #[arg(long, default_value_t = 1.0)]
    tb_per_month: f64,
    #[arg(long, default_value_t = 20)]
    max_sources: usize,
    #[arg(long, default_value_t = natmeter_core::metrics::DEFAULT_MIN_SOURCE_SHARE)]
    min_source_share: f64,
    /// Lambda memory, MB.
    #[arg(long, default_value_t = 128)]
    memory_mb: u32,
    /// Assumed billed duration per invocation, ms (dominated by the PutMetricData round trip).
    #[arg(long, default_value_t = 60.0)]
    duration_ms: f64,
    #[arg(long, default_value_t = 0.045)]
    price_per_gb: f64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

struct Hour {
    metric_ids: usize,
    source_ip_metrics: usize,
    invocations: u64,
    requests: u64,
    datums: u64,
    detail_bytes: u64,
    detail_lines: u64,
    records: u64,
}

fn simulate_hour(a: &CostArgs, max_sources: usize, min_source_share: f64) -> anyhow::Result<Hour> {
    let mut metric_ids: BTreeSet<(String, Vec<(String, String)>)> = BTreeSet::new();
    let mut h = Hour {
        metric_ids: 0,
        source_ip_metrics: 0,
        invocations: 0,
        requests: 0,
        datums: 0,
        detail_bytes: 0,
        detail_lines: 0,
        records: 0,
    };
    let start = 1_764_547_200;
    let sim = simulate(&SimConfig {
        seed: a.seed,
        pods: a.pods,
        nodes: a.nodes,
        nat_gateways: a.nat_gateways,
        minutes: 60,
        scope: Scope::NatEnis,
        start,
        max_batch_bytes: 1_000_000,
        batch_per_minute: true,
        ..SimConfig::default()
    });
    let topo = sim.topology();
    let format = sim.format();
    let (mut decoder, mut buf) = (Decoder::default(), Vec::new());
    for e in &sim.events {
        let mut engine = Engine::new(&topo, format.clone());
        engine.ingest_event(e.json.as_bytes(), &mut decoder, &mut buf, &e.file_name)?;
        h.invocations += 1;
        h.records += engine.records.read;
        let opts = MetricOptions {
            max_sources,
            min_source_share,
            price_per_gb: a.price_per_gb,
            now: start + 3900,
        };
        let ds = datums(&engine, &opts);
        h.datums += ds.len() as u64;
        h.requests += ds.len().div_ceil(1000) as u64;
        for d in ds {
            metric_ids.insert((
                d.metric.to_string(),
                d.dimensions
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ));
        }
        for l in source_details(&engine, a.price_per_gb) {
            h.detail_bytes += l.to_json_line().len() as u64 + 1;
            h.detail_lines += 1;
        }
    }
    h.metric_ids = metric_ids.len();
    h.source_ip_metrics = metric_ids
        .iter()
        .filter(|(_, d)| d.first().is_some_and(|x| x.0 == "SourceIp"))
        .count();
    Ok(h)
}

pub fn run(a: CostArgs) -> anyhow::Result<()> {
    let h = simulate_hour(&a, a.max_sources, a.min_source_share)?;
    let months = HOURS_PER_MONTH;
    let metrics_usd = h.metric_ids as f64 * CUSTOM_METRIC_MONTH;
    let put_usd = h.requests as f64 * months / 1000.0 * PUT_METRIC_DATA_PER_1000;
    let inv_month = h.invocations as f64 * months;
    let lambda_usd = inv_month / 1e6 * LAMBDA_PER_MILLION
        + inv_month * a.duration_ms / 1000.0 * f64::from(a.memory_mb) / 1024.0
            * LAMBDA_ARM_GB_SECOND;
    // Each invocation also logs one summary line (~400 bytes) and Lambda's START/END/REPORT lines.
    let log_bytes_month = (h.detail_bytes as f64 + h.invocations as f64 * 700.0) * months;
    let logs_usd = log_bytes_month / (1u64 << 30) as f64 * LOG_INGEST_PER_GB;
    let nat_usd = a.tb_per_month * 1024.0 * a.price_per_gb;
    let total = metrics_usd + put_usd + lambda_usd + logs_usd;
    println!("natmeter cost to run: {} pods, {} NAT gateways, {} TB/month through NAT, NATMETER_MAX_SOURCES={}, NATMETER_MIN_SOURCE_SHARE={}", a.pods, a.nat_gateways, a.tb_per_month, a.max_sources, a.min_source_share);
    println!("(one simulated hour with 1-minute flow-log batches: {} invocations, {} records, {} datums, {} source detail lines)\n", h.invocations, h.records, h.datums, h.detail_lines);
    println!("| item | quantity per month | USD per month |");
    println!("|---|---|---|");
    println!("| custom metrics (distinct metric+dimensions in an hour, billed prorated hourly; {} of them SourceIp) | {} | {:.2} |", h.source_ip_metrics, h.metric_ids, metrics_usd);
    println!(
        "| PutMetricData requests | {:.0} | {:.2} |",
        h.requests as f64 * months,
        put_usd
    );
    println!(
        "| Lambda invocations ({} MB arm64, {} ms each) | {:.0} | {:.2} |",
        a.memory_mb, a.duration_ms, inv_month, lambda_usd
    );
    println!(
        "| log ingestion (source detail lines + summaries) | {:.2} GB | {:.2} |",
        log_bytes_month / (1u64 << 30) as f64,
        logs_usd
    );
    println!("| **natmeter total** | | **{total:.2}** |");
    let hours_usd = a.nat_gateways as f64 * HOURS_PER_MONTH * NAT_GATEWAY_HOUR;
    println!(
        "| NAT gateway processing it meters | {:.0} GB | {:.2} |",
        a.tb_per_month * 1024.0,
        nat_usd
    );
    println!(
        "| NAT gateway hours (for scale) | {:.0} h | {:.2} |",
        a.nat_gateways as f64 * HOURS_PER_MONTH,
        hours_usd
    );
    println!(
        "\nnatmeter costs {:.1}% of the NAT processing charge it explains ({:.1}% of the whole NAT bill). \
         Flow-log ingestion itself is not included: it exists whether natmeter runs or not.",
        total / nat_usd * 100.0,
        total / (nat_usd + hours_usd) * 100.0
    );
    println!("\nSourceIp metrics by cap (the cap is per invocation; distinct values accumulate over the hour):");
    println!("| NATMETER_MAX_SOURCES | NATMETER_MIN_SOURCE_SHARE | SourceIp metrics | all custom metrics | USD per month |");
    println!("|---|---|---|---|---|");
    for (cap, share) in [
        (0usize, 0.0),
        (5, 0.0),
        (20, 0.0),
        (20, 0.01),
        (20, 0.05),
        (20, 0.10),
    ] {
        let h = simulate_hour(&a, cap, share)?;
        println!(
            "| {cap} | {share} | {} | {} | {:.2} |",
            h.source_ip_metrics,
            h.metric_ids,
            h.metric_ids as f64 * CUSTOM_METRIC_MONTH
        );
    }
    Ok(())
}
