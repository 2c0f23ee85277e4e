//! Reports merged (crates/core/src/merge.rs): the reports of parts of the simulator's batches,
//! through JSON as results objects are read back, sum to the report of all of them (the built
//! report of the whole is what the merge must reproduce).

use natmeter_core::engine::Attributor;
use natmeter_core::merge::{merge, parse};
use natmeter_core::report::Report;
use natmeter_core::sources::{Input, Reader};
use natmeter_core::topology::Topology;

/// Reports of parts of some records, merged, equal the report of all of them (the built
/// report is the reference: it is what the merge must reproduce, not natmeter's truth).
#[test]
fn merged_parts_equal_the_whole() {
    let sim = natmeter_sim::simulate(&natmeter_sim::SimConfig {
        seed: 7,
        pods: 30,
        nodes: 3,
        nat_gateways: 2,
        minutes: 4,
        ..natmeter_sim::SimConfig::default()
    });
    let topo = Topology::new(sim.gateways.clone(), Vec::new()).unwrap();
    let format = flowlog::Format::parse(&sim.log_format).unwrap();
    let a = Attributor::new(&topo, format);
    let mut reader = Reader::default();
    let run = |part: &[natmeter_sim::SimEvent], reader: &mut Reader| {
        let mut r = a.results();
        for e in part {
            let input = Input::Event {
                bytes: e.json.as_bytes(),
                origin: &e.file_name,
            };
            a.ingest(input, reader, &mut r).unwrap();
        }
        Report::build(&r, &topo, 0.045)
    };
    let whole = run(&sim.events, &mut reader);
    assert!(whole.totals.bytes > 0 && whole.sources.len() > 3);
    // Round-trip through JSON, as the results objects are read back.
    let parts: Vec<Report> = sim
        .events
        .chunks(sim.events.len() / 3 + 1)
        .map(|c| run(c, &mut reader))
        .map(|r| parse(&serde_json::to_vec(&r).unwrap()).unwrap())
        .collect();
    assert!(parts.len() >= 2);
    let merged = merge(parts).unwrap().unwrap();
    let strip = |mut r: Report| {
        r.diagnostics.clear();
        serde_json::to_value(r).unwrap()
    };
    assert_eq!(strip(merged), strip(whole));
}
