//! Profiling harness for the hot path: ingests one simulated ~1 MB NAT-ENI batch in a loop.
//!   cargo build --release --example hot -p natmeter-core && perf record target/release/examples/hot

use natmeter_core::engine::Engine;
use natmeter_core::flowlog::Format;
use natmeter_core::simulate::{simulate, Scope, SimConfig};
use natmeter_core::subscription::{event_data, Decoder, Payload};
use natmeter_core::topology::{Topology, DEFAULT_PRIVATE_CIDRS};

fn main() {
    let floor_only = std::env::args().any(|a| a == "--floor");
    let sim = simulate(&SimConfig {
        seed: 2024,
        pods: 400,
        nodes: 6,
        nat_gateways: 1,
        minutes: 30,
        scope: Scope::NatEnis,
        ..SimConfig::default()
    });
    let ev = sim.events.iter().max_by_key(|e| e.decoded_bytes).unwrap();
    let topo = Topology::new(
        sim.gateways.clone(),
        Topology::cidrs_from_list(DEFAULT_PRIVATE_CIDRS).unwrap(),
    )
    .unwrap();
    let mut engine = Engine::new(&topo, Format::parse(&sim.log_format).unwrap());
    let (mut decoder, mut buf) = (Decoder::default(), Vec::new());
    let start = std::time::Instant::now();
    let n = 3000;
    for _ in 0..n {
        if floor_only {
            let d = event_data(ev.json.as_bytes()).unwrap();
            decoder.decode(&d, &mut buf).unwrap();
            std::hint::black_box(Payload::parse(&buf).unwrap().log_events.len());
        } else {
            engine.clear();
            engine
                .ingest_event(ev.json.as_bytes(), &mut decoder, &mut buf, "x")
                .unwrap();
        }
    }
    let s = start.elapsed().as_secs_f64();
    println!("{:.0} MB/s", ev.decoded_bytes as f64 * n as f64 / s / 1e6);
}
