//! `natmeter`: NAT Gateway cost attribution from VPC Flow Logs, on your machine.
//!
//!   natmeter simulate --seed 7 --out /tmp/sim
//!   natmeter report --nat-gateways @/tmp/sim/nat-gateways.json \
//!       --log-format "$(cat /tmp/sim/log-format.txt)" /tmp/sim/events
//!
//! The same core as the Lambda function; this shell only reads files, prints and sends.
//!
//! Owns: files and directories (walking them, reading big ones in pieces on many threads, with
//! the kinds told apart by the core's `sources::detect`), output formats, progress, and the
//! `bench` and `cost` measurements. Must never: attribute or decode differently from the function
//! (both go through `Attributor::ingest`).

mod athena;
mod audit;
mod backfill;
mod bench;
mod cost;
mod emit;
mod input;
mod settings;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use natmeter_core::metrics;
use natmeter_core::report::{By, Report};
use natmeter_sim::{simulate, Scope, SimConfig};

use settings::EngineArgs;

#[derive(Parser)]
#[command(
    name = "natmeter",
    version,
    about = "Which pod is spending our NAT Gateway money? Attribution from VPC Flow Logs."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Attribute NAT Gateway bytes in local inputs and print a report.
    Report(ReportArgs),
    /// Write a synthetic cluster's flow logs as Lambda events, with the exact expected answer.
    Simulate(SimulateArgs),
    /// Print the metric model (names, units, dimension sets) the function emits.
    Metrics(MetricsArgs),
    /// Send the metrics of local inputs to CloudWatch exactly as the Lambda function would.
    Emit(emit::EmitArgs),
    /// Measure throughput against a Python handler and the inflate+JSON floor (make bench).
    Bench(bench::BenchArgs),
    /// What natmeter costs to run at a given scale, from the metric model on simulated traffic.
    Cost(cost::CostArgs),
    /// Describe the NAT gateways and subnets from the EC2 API, as NATMETER_NAT_GATEWAYS and
    /// NATMETER_SUBNETS take them.
    Discover(DiscoverArgs),
    /// Print the Athena table and the query that counts what natmeter counts (flow logs in S3).
    AthenaSql(athena::AthenaArgs),
    /// Print the built-in price table: each region's NAT and inter-AZ rates, with their sources.
    Prices(PricesArgs),
    /// Print the `aws s3control create-job` command of the S3 Batch Operations job that runs the
    /// function over flow-log objects already in S3, from one day to another (docs/s3.md §5).
    Backfill(backfill::BackfillArgs),
}

#[derive(clap::Args)]
struct DiscoverArgs {
    /// VPCs whose NAT gateways (and subnets) to describe.
    #[arg(long = "vpc-id", value_name = "vpc-...")]
    vpc_ids: Vec<String>,
    /// NAT gateways to describe (with --vpc-id: those in both).
    #[arg(long = "nat-gateway-id", value_name = "nat-...")]
    nat_gateway_ids: Vec<String>,
    /// The region (default: the SDK's, e.g. AWS_REGION). The endpoint is AWS_ENDPOINT_URL_EC2,
    /// AWS_ENDPOINT_URL or EC2's own.
    #[arg(long)]
    region: Option<String>,
}

#[derive(clap::Args)]
struct PricesArgs {
    /// Print the table as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum Output {
    Table,
    Json,
    Csv,
}

#[derive(clap::Args)]
struct ReportArgs {
    /// Files or directories (walked, sorted): Lambda events, JSON arrays or lines of them,
    /// decoded payloads, S3 flow-log files (optionally .gz), or plain flow-log lines.
    #[arg(required = true, value_name = "INPUT")]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    engine: EngineArgs,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    output: Output,
    /// Sources shown in the table.
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Worker threads (files are processed in parallel; the output does not depend on this).
    #[arg(long)]
    threads: Option<usize>,
    /// EKS audit events that name sources (pod, workload, namespace, node) at each record's own
    /// time: JSON lines of audit events, an export of the /aws/eks/<cluster>/cluster log group,
    /// its subscription events, or `kubectl get pods -A -o json` (not time-aware). Files or
    /// directories, optionally .gz.
    #[arg(long, value_name = "PATH", num_args = 1..)]
    inventory: Vec<PathBuf>,
    /// What the table and CSV rows are: workload (the default with --inventory), namespace, pod
    /// or ip (the default without).
    #[arg(long, value_name = "workload|namespace|pod|ip")]
    by: Option<natmeter_core::report::By>,
    /// AWS's ip-ranges.json (https://ip-ranges.amazonaws.com/ip-ranges.json, optionally .gz):
    /// names each remote by service and region, fills in the service where the record has
    /// none, and counts as avoidable only S3 and DynamoDB in --region.
    #[arg(long, value_name = "FILE")]
    ip_ranges: Option<PathBuf>,
    /// Name internet destinations by the remote's /24 (IPv6 /48): each source's top
    /// destinations then say where its internet bytes went (at most 4,096 networks; past
    /// that, plain INTERNET, counted).
    #[arg(long)]
    remote_prefixes: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum ScopeArg {
    Vpc,
    NatEnis,
}

#[derive(clap::Args)]
struct SimulateArgs {
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, default_value_t = 40)]
    pods: usize,
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    #[arg(long, default_value_t = 2)]
    nat_gateways: usize,
    /// Simulated minutes (at most two weeks' worth).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=20_160))]
    minutes: u64,
    /// AWS_VPC_K8S_CNI_EXTERNALSNAT: false makes nodes SNAT pod traffic to the node IP.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    external_snat: bool,
    #[arg(long, value_enum, default_value = "vpc")]
    scope: ScopeArg,
    /// Unix seconds of the first simulated minute.
    #[arg(long, default_value_t = SimConfig::default().start)]
    start: i64,
    /// Shuffle the format's field order.
    #[arg(long)]
    shuffle_format: bool,
    /// Make the first NAT gateway a private NAT gateway (traffic to other private networks).
    #[arg(long)]
    private_nat: bool,
    /// Largest decoded payload per event file.
    #[arg(long, default_value_t = 1_000_000)]
    max_batch_bytes: usize,
    /// An EKS cluster with workloads (Deployments rolling out, CronJobs, a StatefulSet, a
    /// hostNetwork DaemonSet, bare pods) whose audit log names the sources: also writes
    /// audit.jsonl, audit-events/ (its subscription events) and the truth by workload.
    #[arg(long)]
    cluster: bool,
    /// AWS destinations in two regions, some without pkt-*-aws-service: a third of the S3
    /// traffic to eu-west-1, a quarter of the S3 and DynamoDB records with `-`; the truth by
    /// service and region is aws-truth.json (ip-ranges.json names the remotes either way).
    #[arg(long)]
    aws_regions: bool,
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

#[derive(clap::Args)]
struct MetricsArgs {
    /// Print the model as JSON (the contract the Terraform module is tested against).
    #[arg(long)]
    json: bool,
    #[arg(long, env = "NATMETER_NAMESPACE", default_value = metrics::DEFAULT_NAMESPACE)]
    namespace: String,
}

fn discover(a: DiscoverArgs) -> anyhow::Result<()> {
    if a.vpc_ids.is_empty() && a.nat_gateway_ids.is_empty() {
        anyhow::bail!("discover: give --vpc-id or --nat-gateway-id (describing every NAT gateway of the account is not what a metered topology is)");
    }
    let scope = natmeter_ec2::Scope {
        vpc_ids: a.vpc_ids,
        nat_gateway_ids: a.nat_gateway_ids,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let d = rt.block_on(async {
        let c = natmeter_ec2::client::Client::from_env(a.region.as_deref()).await?;
        c.discover(&scope).await
    })?;
    for p in &d.passed_over {
        eprintln!("natmeter: not metered: {p}");
    }
    let subnets: Vec<natmeter_core::topology::Subnet> = d
        .subnets
        .iter()
        .map(|(cidr, az)| natmeter_core::topology::Subnet {
            cidr: cidr.to_string(),
            az_id: az.clone(),
        })
        .collect();
    let out = serde_json::json!({
        "nat_gateways": d.gateways,
        "subnets": subnets,
        "passed_over": d.passed_over,
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", serde_json::to_string_pretty(&out)?)?;
    Ok(stdout.flush()?)
}

fn print_prices(a: PricesArgs) -> anyhow::Result<()> {
    use natmeter_core::price::{INTER_AZ_SOURCE, PRICES};
    let mut out = String::new();
    if a.json {
        let rows: Vec<_> = PRICES
            .iter()
            .map(|p| {
                serde_json::json!({
                    "region": p.region,
                    "usage_type_bytes": p.usage_type("NatGateway-Bytes"),
                    "usage_type_hours": p.usage_type("NatGateway-Hours"),
                    "nat_usd_per_gb": p.usd_per_gb,
                    "nat_usd_per_hour": p.usd_per_hour,
                    "inter_az_usd_per_gb": p.inter_az_usd_per_gb,
                    "source": p.source,
                    "inter_az_source": INTER_AZ_SOURCE,
                })
            })
            .collect();
        out = serde_json::to_string_pretty(&rows)? + "\n";
    } else {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "{:<16} {:<26} {:>9} {:>10} {:>10}",
            "REGION", "USAGE TYPE", "$/GB", "$/HOUR", "INTER-AZ"
        );
        for p in PRICES {
            let _ = writeln!(
                out,
                "{:<16} {:<26} {:>9} {:>10} {:>10}",
                p.region,
                p.usage_type("NatGateway-Bytes"),
                p.usd_per_gb,
                p.usd_per_hour,
                p.inter_az_usd_per_gb
            );
        }
        if let Some(p) = PRICES.first() {
            let _ = writeln!(
                out,
                "\nNAT rates: {}\nInter-AZ: {INTER_AZ_SOURCE}",
                p.source
            );
        }
        out.push_str("Any other region: --price-per-gb / NATMETER_PRICE_PER_GB.\n");
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(out.as_bytes())?;
    Ok(stdout.flush()?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Report(a) => report(a),
        Command::Simulate(a) => run_simulate(a).map(|()| ExitCode::SUCCESS),
        Command::Metrics(a) => print_metrics(a).map(|()| ExitCode::SUCCESS),
        Command::Emit(a) => emit::run(a),
        Command::Bench(a) => bench::run(a).map(|()| ExitCode::SUCCESS),
        Command::Cost(a) => cost::run(a).map(|()| ExitCode::SUCCESS),
        Command::Prices(a) => print_prices(a).map(|()| ExitCode::SUCCESS),
        Command::Discover(a) => discover(a).map(|()| ExitCode::SUCCESS),
        Command::AthenaSql(a) => athena::run(a).map(|()| ExitCode::SUCCESS),
        Command::Backfill(a) => backfill::run(a).map(|()| ExitCode::SUCCESS),
    };
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("natmeter: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What [`run_inputs`] read: the engine's results over the flow-log inputs, the report documents
/// among the inputs (in order), and how many inputs were not documents.
pub(crate) struct Ran {
    pub engine: natmeter_core::engine::Results,
    pub documents: Vec<input::Document>,
    pub flow_inputs: usize,
    /// The threads the inputs were read on (`--threads`, or every core).
    pub threads: usize,
}

/// Runs the engine over inputs, printing per-file errors; `None` when none of the inputs that are
/// not report documents could be read (and there were some).
pub(crate) fn run_inputs(
    inputs: &[PathBuf],
    cfg: &settings::Settings,
    threads: Option<usize>,
    resolver: Option<&dyn natmeter_core::identity::Resolver>,
    ranges: Option<&natmeter_core::ipranges::IpRanges>,
    remote_prefixes: bool,
) -> Option<Ran> {
    let files = input::expand(inputs);
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let bar = (std::io::stderr().is_terminal() && files.len() > 20).then(|| {
        let b = indicatif::ProgressBar::new(files.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} files {elapsed}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let tick = || {
        if let Some(b) = &bar {
            b.inc(1);
        }
    };
    let mut attributor = natmeter_core::engine::Attributor::new(&cfg.topology, cfg.format.clone());
    if let Some(r) = resolver {
        attributor = attributor.with_resolver(r);
    }
    if let Some(r) = ranges {
        attributor = attributor.with_ranges(r, cfg.region.as_deref());
    }
    attributor = attributor.with_remote_prefixes(remote_prefixes);
    let p = input::process_all(&files, &attributor, now(), threads, &tick);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    for e in &p.errors {
        eprintln!("natmeter: {e}");
    }
    let flow_inputs = files.len() - p.documents.len();
    if p.readable == 0 && (flow_inputs > 0 || p.documents.is_empty()) {
        eprintln!("natmeter: no input could be read ({flow_inputs} given)");
        return None;
    }
    Some(Ran {
        engine: p.results,
        documents: p.documents,
        flow_inputs,
        threads,
    })
}

/// The inputs that are `natmeter.report/v1` documents (the function's results objects, or a
/// saved `--output json`), read and parsed, and the rest (docs/s3.md §4). Only for when there
/// are no settings (or no inventory for `--by`): every input is opened once more for this, and
/// otherwise the workers recognise documents as they read them.
fn report_documents(inputs: &[PathBuf]) -> anyhow::Result<(Vec<Report>, Vec<PathBuf>)> {
    let mut reports = Vec::new();
    let mut rest = Vec::new();
    for path in input::expand(inputs) {
        let mut head = [0u8; 128];
        let n = std::fs::File::open(&path)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        if natmeter_core::merge::looks_like_report(&head[..n]) {
            let bytes =
                std::fs::read(&path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let r = natmeter_core::merge::parse(&bytes)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            reports.push(r);
        } else {
            rest.push(path);
        }
    }
    Ok((reports, rest))
}

/// The report built from the flow-log inputs (`None` when there were none: results objects
/// alone carry their gateways and prices, no settings needed) with the report documents summed
/// into it (docs/s3.md §4).
fn merged(built: Option<Report>, documents: Vec<Report>) -> anyhow::Result<Report> {
    if documents.is_empty() {
        return built.context("no input to report on");
    }
    eprintln!(
        "natmeter: {} report documents (results objects) merged",
        documents.len()
    );
    natmeter_core::merge::merge(built.into_iter().chain(documents).collect())
        .map_err(anyhow::Error::msg)?
        .context("no report documents")
}

fn report(a: ReportArgs) -> anyhow::Result<ExitCode> {
    let settings = a.engine.settings();
    let no_inventory_for_by = a.inventory.is_empty() && a.by.is_some_and(|b| b != By::Ip);
    if settings.is_err() || no_inventory_for_by {
        // What results objects alone need neither: only then is every input looked at first.
        let (documents, rest) = report_documents(&a.inputs)?;
        if rest.is_empty() && !documents.is_empty() {
            return print_report(&a, &merged(None, documents)?);
        }
    }
    let cfg = settings?;
    let ranges = match &a.ip_ranges {
        None => None,
        Some(p) => {
            let bytes = audit::read_maybe_gzip(p, 256 << 20, "--ip-ranges")?;
            let r = natmeter_core::ipranges::IpRanges::from_json(&bytes)
                .map_err(|e| anyhow::anyhow!("--ip-ranges {}: {e}", p.display()))?;
            let (v4, v6) = r.ranges();
            eprintln!(
                "natmeter: ip-ranges: {} prefixes ({} IPv4 and {} IPv6 ranges), created {}",
                r.prefixes, v4, v6, r.create_date
            );
            Some(r)
        }
    };
    let loaded = if a.inventory.is_empty() {
        if a.by.is_some_and(|b| b != By::Ip) {
            anyhow::bail!("--by workload, namespace or pod needs --inventory (the EKS audit events that name sources)");
        }
        None
    } else {
        let l = audit::load(&a.inventory)?;
        eprintln!("natmeter: {}", l.summary());
        for e in &l.errors {
            eprintln!("natmeter: --inventory: {e}");
        }
        if l.error_count > l.errors.len() as u64 {
            eprintln!(
                "natmeter: --inventory: ... and {} more refused",
                l.error_count - l.errors.len() as u64
            );
        }
        for (f, n) in &l.snapshots {
            eprintln!(
                "natmeter: warning: {} is a kubectl snapshot ({n} pods): its names hold for the whole report, not at each record's time; an address reused within the report is named after the pod that held it when the snapshot was taken",
                f.display()
            );
        }
        Some(l)
    };
    let resolver = loaded
        .as_ref()
        .map(|l| &l.inventory as &dyn natmeter_core::identity::Resolver);
    let Some(Ran {
        engine,
        documents,
        flow_inputs,
        threads,
    }) = run_inputs(
        &a.inputs,
        &cfg,
        a.threads,
        resolver,
        ranges.as_ref(),
        a.remote_prefixes,
    )
    else {
        return Ok(ExitCode::from(1));
    };
    // A report document that does not parse fails the run (docs/s3.md §4).
    let documents = documents
        .into_iter()
        .map(|d| d.report)
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    let built = (flow_inputs > 0).then(|| {
        let named = loaded.is_some();
        Report::build_on(&engine, &cfg.topology, cfg.price_per_gb, named, threads)
    });
    print_report(&a, &merged(built, documents)?)
}

fn print_report(a: &ReportArgs, report: &Report) -> anyhow::Result<ExitCode> {
    let by = a.by.unwrap_or(if report.workloads.is_some() {
        By::Workload
    } else {
        By::Ip
    });
    // Stdout is line-buffered: without a buffer, pretty JSON is one write per line (a report of
    // 2,000 sources was 8% of a whole run).
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    match a.output {
        Output::Json => {
            serde_json::to_writer_pretty(&mut out, report)?;
            writeln!(out)?;
        }
        Output::Csv => out.write_all(report.to_csv_by(by).as_bytes())?,
        Output::Table => out.write_all(report.to_table_by(a.top, by).as_bytes())?,
    }
    out.flush()?;
    for d in &report.diagnostics {
        if a.output != Output::Table {
            eprintln!("natmeter: {}: {}", d.code, d.message);
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_simulate(a: SimulateArgs) -> anyhow::Result<()> {
    let cfg = SimConfig {
        seed: a.seed,
        pods: a.pods,
        nodes: a.nodes,
        nat_gateways: a.nat_gateways,
        minutes: a.minutes as usize,
        external_snat: a.external_snat,
        scope: match a.scope {
            ScopeArg::Vpc => Scope::Vpc,
            ScopeArg::NatEnis => Scope::NatEnis,
        },
        start: a.start,
        shuffle_format: a.shuffle_format,
        max_batch_bytes: a.max_batch_bytes,
        batch_per_minute: false,
        private_nat: a.private_nat,
        cluster: a.cluster.then(natmeter_sim::ClusterConfig::default),
        aws_regions: a.aws_regions,
    };
    if let Err(e) = cfg.check() {
        anyhow::bail!(e);
    }
    let sim = simulate(&cfg);
    let events = a.out.join("events");
    std::fs::create_dir_all(&events).with_context(|| format!("creating {}", events.display()))?;
    let write = |p: PathBuf, s: &[u8]| {
        std::fs::write(&p, s).with_context(|| format!("writing {}", p.display()))
    };
    for e in &sim.events {
        write(events.join(&e.file_name), e.json.as_bytes())?;
    }
    write(
        a.out.join("nat-gateways.json"),
        &serde_json::to_vec_pretty(&sim.gateways)?,
    )?;
    write(a.out.join("log-format.txt"), sim.log_format.as_bytes())?;
    write(a.out.join("subnets.json"), sim.subnets_json().as_bytes())?;
    write(
        a.out.join("ip-ranges.json"),
        natmeter_sim::Simulation::ip_ranges_json().as_bytes(),
    )?;
    write(
        a.out.join("aws-truth.json"),
        &serde_json::to_vec_pretty(sim.aws_truth())?,
    )?;
    write(
        a.out.join("truth.json"),
        &serde_json::to_vec_pretty(&sim.truth)?,
    )?;
    if a.cluster {
        write(a.out.join("audit.jsonl"), sim.audit_jsonl().as_bytes())?;
        let dir = a.out.join("audit-events");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        for e in sim.audit_events(a.max_batch_bytes) {
            write(dir.join(&e.file_name), e.json.as_bytes())?;
        }
    }
    let decoded: usize = sim.events.iter().map(|e| e.decoded_bytes).sum();
    eprintln!(
        "natmeter: wrote {} events ({:.1} MB decoded), nat-gateways.json, log-format.txt, subnets.json, ip-ranges.json, truth.json and aws-truth.json to {}",
        sim.events.len(),
        decoded as f64 / 1e6,
        a.out.display()
    );
    Ok(())
}

fn print_metrics(a: MetricsArgs) -> anyhow::Result<()> {
    // writeln!, not println!: a reader that goes away (`| head`) is an error to end on quietly
    // (see `main`), where println! panics.
    let mut out = std::io::stdout().lock();
    if a.json {
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&metrics::model_json(&a.namespace))?
        )?;
        return Ok(());
    }
    writeln!(out, "namespace {}", a.namespace)?;
    for m in metrics::METRICS {
        let sets: Vec<String> = m
            .dimension_sets
            .iter()
            .map(|s| format!("[{}]", s.join(", ")))
            .collect();
        writeln!(
            out,
            "{:<16} {:<8} {}",
            m.name,
            m.unit.as_str(),
            sets.join(" ")
        )?;
    }
    Ok(())
}

/// Whether an error is stdout's reader having gone away (`natmeter report ... | head`): the
/// output was not wanted any more, which is not a failure to report.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    use std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || c.downcast_ref::<serde_json::Error>()
                .and_then(|j| j.io_error_kind())
                == Some(BrokenPipe)
    })
}
