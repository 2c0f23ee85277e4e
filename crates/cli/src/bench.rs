//! `natmeter bench`: throughput on simulator-generated input, as ratios to two baselines measured
//! in the same run: the Python handler users write today (`bench/handler.py`) and the floor
//! (base64 + inflate + borrowed JSON of the same bytes, which any correct handler must do).
//!
//! Cases: one ~1 MB NAT-ENI batch, one ~1 MB non-NAT batch, and a whole-VPC corpus of Lambda
//! events (200 MB decoded by default) run as whole processes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use natmeter_core::engine::Engine;
use natmeter_core::simulate::{simulate, Scope, SimConfig, SimEvent, Simulation};
use natmeter_core::subscription::{event_data_serde, Decoder, Payload};

#[derive(clap::Args)]
pub struct BenchArgs {
    /// Decoded size of the whole-VPC corpus, MB.
    #[arg(long, default_value_t = 200)]
    corpus_mb: usize,
    /// Minimum measuring time per in-process case, seconds.
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    /// Python interpreter for the reference handler.
    #[arg(long, default_value = "python3")]
    python: String,
    /// The reference handler.
    #[arg(long, default_value = "bench/handler.py")]
    handler: PathBuf,
    /// Where to write the generated inputs (kept for re-runs).
    #[arg(long, default_value = "target/bench")]
    dir: PathBuf,
}

struct Case {
    name: &'static str,
    decoded: usize,
    records: u64,
    natmeter: f64,
    floor: f64,
    python: f64,
}

/// Runs `f` repeatedly for at least `min`, returning seconds per run.
fn time_per_run(min: Duration, mut f: impl FnMut()) -> f64 {
    f(); // warm-up: buffers sized, caches hot, as in a warm Lambda container
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < min || n < 3 {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() / f64::from(n)
}

/// The floor: what any handler must do to see the records.
fn floor_once(event: &[u8], decoder: &mut Decoder, buf: &mut Vec<u8>) -> usize {
    let Ok(data) = event_data_serde(event) else {
        return 0;
    };
    if decoder.decode(&data, buf).is_err() {
        return 0;
    }
    Payload::parse_serde(buf).map_or(0, |p| p.log_events.len())
}

fn write_sim(sim: &Simulation, events: &[&SimEvent], dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir.join("events"))
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("log-format.txt"), &sim.log_format)?;
    std::fs::write(
        dir.join("nat-gateways.json"),
        serde_json::to_vec(&sim.gateways)?,
    )?;
    let mut paths = Vec::new();
    for e in events {
        let p = dir.join("events").join(&e.file_name);
        let mut f = std::fs::File::create(&p)?;
        std::io::Write::write_all(&mut f, e.json.as_bytes())?;
        // On disk before anything is timed: write-back of fresh files otherwise competes with
        // the timed `natmeter report` (the corpus case varied 1.1-1.9 GB/s without this).
        f.sync_all()?;
        paths.push(p);
    }
    Ok(paths)
}

#[derive(serde::Deserialize)]
struct PyResult {
    seconds: f64,
    decoded_bytes: f64,
}

/// Runs a command to completion, failing with its stderr when it fails.
fn run_ok(cmd: &mut Command, what: &str) -> anyhow::Result<std::process::Output> {
    let out = cmd.output().with_context(|| format!("running {what}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out)
}

/// The Python reference handler over `files` of the simulation in `dir`.
fn python(a: &BenchArgs, dir: &Path, files: &[PathBuf]) -> Command {
    let mut cmd = Command::new(&a.python);
    cmd.arg(&a.handler)
        .arg("--format-file")
        .arg(dir.join("log-format.txt"))
        .arg("--nat-gateways-file")
        .arg(dir.join("nat-gateways.json"))
        .args(files);
    cmd
}

/// The median wall time of three runs: one run is a fraction of a second, so a single scheduler
/// hiccup would otherwise be the result.
fn median_of_three(mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let mut runs = [0.0; 3];
    for r in &mut runs {
        let start = Instant::now();
        f()?;
        *r = start.elapsed().as_secs_f64();
    }
    runs.sort_by(f64::total_cmp);
    Ok(runs[1])
}

fn python_mbps(a: &BenchArgs, dir: &Path, files: &[PathBuf], repeat: usize) -> anyhow::Result<f64> {
    let out = run_ok(
        python(a, dir, files).args(["--repeat", &repeat.to_string()]),
        "the Python handler",
    )?;
    let r: PyResult = serde_json::from_slice(&out.stdout)?;
    Ok(r.decoded_bytes / r.seconds / 1e6)
}

fn in_process_case(
    a: &BenchArgs,
    name: &'static str,
    sim: &Simulation,
    event: &SimEvent,
    dir: &Path,
) -> anyhow::Result<Case> {
    let topo = sim.topology();
    let format = sim.format();
    let bytes = event.json.as_bytes();
    let min = Duration::from_secs_f64(a.seconds);
    let (mut decoder, mut buf) = (Decoder::default(), Vec::new());
    let records = floor_once(bytes, &mut decoder, &mut buf) as u64;
    let floor = time_per_run(min, || {
        std::hint::black_box(floor_once(bytes, &mut decoder, &mut buf));
    });
    let mut engine = Engine::new(&topo, format);
    let natmeter = time_per_run(min, || {
        engine.clear();
        let _ = std::hint::black_box(engine.ingest_event(bytes, &mut decoder, &mut buf, "bench"));
    });
    let files = write_sim(sim, &[event], dir)?;
    let python = python_mbps(a, dir, &files, 20)?;
    let mb = event.decoded_bytes as f64 / 1e6;
    Ok(Case {
        name,
        decoded: event.decoded_bytes,
        records,
        natmeter: mb / natmeter,
        floor: mb / floor,
        python,
    })
}

pub fn run(a: BenchArgs) -> anyhow::Result<()> {
    let base = SimConfig {
        seed: 2024,
        nodes: 6,
        nat_gateways: 1,
        minutes: 30,
        ..SimConfig::default()
    };
    eprintln!("natmeter bench: generating inputs with the simulator...");
    // One NAT gateway, many pods: NAT-ENI batches fill to 1 MB.
    let nat_sim = simulate(&SimConfig {
        pods: 400,
        scope: Scope::NatEnis,
        ..base.clone()
    });
    let nat_eni = nat_sim.gateways[0].eni.clone();
    let nat_event = nat_sim
        .events
        .iter()
        .filter(|e| e.log_stream.starts_with(&nat_eni))
        .max_by_key(|e| e.decoded_bytes)
        .context("no NAT batch simulated")?;
    let vpc_sim = simulate(&SimConfig {
        pods: 400,
        scope: Scope::Vpc,
        ..base.clone()
    });
    let node_event = vpc_sim
        .events
        .iter()
        .filter(|e| {
            !vpc_sim
                .gateways
                .iter()
                .any(|g| e.log_stream.starts_with(&g.eni))
        })
        .max_by_key(|e| e.decoded_bytes)
        .context("no node batch simulated")?;

    let mut cases = vec![
        in_process_case(
            &a,
            "1 MB NAT-ENI batch",
            &nat_sim,
            nat_event,
            &a.dir.join("nat"),
        )?,
        in_process_case(
            &a,
            "1 MB non-NAT batch",
            &vpc_sim,
            node_event,
            &a.dir.join("non-nat"),
        )?,
    ];

    // The corpus: whole processes, natmeter report vs the Python handler over the same files.
    // ~0.4 MB of decoded events per simulated minute at 600 pods (whole VPC).
    let minutes = (a.corpus_mb * 5 / 2).max(1);
    let corpus = simulate(&SimConfig {
        pods: 600,
        nodes: 20,
        nat_gateways: 3,
        minutes,
        scope: Scope::Vpc,
        ..base
    });
    let decoded: usize = corpus.events.iter().map(|e| e.decoded_bytes).sum();
    let dir = a.dir.join("corpus");
    let refs: Vec<&SimEvent> = corpus.events.iter().collect();
    let files = write_sim(&corpus, &refs, &dir)?;
    let exe = std::env::current_exe()?;
    let report_secs = median_of_three(|| {
        run_ok(
            Command::new(&exe)
                .arg("report")
                .arg("--output")
                .arg("json")
                .arg("--nat-gateways")
                .arg(format!("@{}", dir.join("nat-gateways.json").display()))
                .arg("--log-format")
                .arg(&corpus.log_format)
                .arg(dir.join("events")),
            "natmeter report",
        )
        .map(drop)
    })?;
    let start = Instant::now();
    run_ok(&mut python(&a, &dir, &files), "the Python handler")?;
    let python_secs = start.elapsed().as_secs_f64();
    // Floor over the corpus, in process, one thread.
    let (mut decoder, mut buf) = (Decoder::default(), Vec::new());
    let bodies: Vec<Vec<u8>> = files.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let mut records = 0u64;
    let floor_secs = median_of_three(|| {
        records = bodies
            .iter()
            .map(|b| floor_once(b, &mut decoder, &mut buf) as u64)
            .sum();
        Ok(())
    })?;
    let mb = decoded as f64 / 1e6;
    cases.push(Case {
        name: "whole-VPC corpus, whole process",
        decoded,
        records,
        natmeter: mb / report_secs,
        floor: mb / floor_secs,
        python: mb / python_secs,
    });

    println!(
        "{:<34} {:>10} {:>10} {:>12} {:>14} {:>11} {:>11} {:>9} {:>9}",
        "case",
        "decoded MB",
        "records",
        "natmeter MB/s",
        "records/s",
        "floor MB/s",
        "python MB/s",
        "vs floor",
        "vs python"
    );
    for c in &cases {
        let mb = c.decoded as f64 / 1e6;
        println!(
            "{:<34} {:>10.2} {:>10} {:>12.0} {:>14.0} {:>11.0} {:>11.1} {:>8.2}x {:>8.1}x",
            c.name,
            mb,
            c.records,
            c.natmeter,
            c.records as f64 / (mb / c.natmeter),
            c.floor,
            c.python,
            c.natmeter / c.floor,
            c.natmeter / c.python
        );
    }
    println!(
        "(MB = 10^6 decoded payload bytes. In-process cases: warm, one thread. The corpus: `natmeter report` \
         wall time over {} event files (median of 3 runs) vs the Python handler's wall time; the floor is \
         base64+inflate+borrowed JSON of the same files in one thread (median of 3).)",
        files.len()
    );
    Ok(())
}
