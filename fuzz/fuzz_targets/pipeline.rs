//! The whole report pipeline on arbitrary bytes: as an event, as a payload and as flow-log text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use natmeter_core::engine::{Engine, Origin};
use natmeter_core::flowlog::Format;
use natmeter_core::metrics::{datums, source_details, MetricOptions};
use natmeter_core::report::Report;
use natmeter_core::subscription::{Decoder, Payload};
use natmeter_core::topology::{NatGateway, Topology, DEFAULT_PRIVATE_CIDRS};

fuzz_target!(|data: &[u8]| {
    let topo = Topology::new(
        vec![NatGateway {
            id: "nat-1".into(),
            eni: "eni-1235b8ca123456789".into(),
            private_ips: vec!["10.0.0.220".parse().unwrap()],
            az_id: None,
        }],
        Topology::cidrs_from_list(DEFAULT_PRIVATE_CIDRS).unwrap(),
    )
    .unwrap();
    let format = Format::parse("${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${pkt-src-aws-service} ${pkt-dst-aws-service} ${bytes} ${packets} ${start} ${end} ${action} ${log-status}").unwrap();
    let mut engine = Engine::new(&topo, format);
    let (mut decoder, mut buf) = (Decoder::new(1 << 20), Vec::new());
    let _ = engine.ingest_event(data, &mut decoder, &mut buf, "fuzz");
    if let Ok(p) = Payload::parse(data) {
        engine.ingest_payload(&p, "fuzz");
    }
    engine.ingest_lines(data, None, Origin::Lines { origin: "fuzz", first_line: 1 }, 0);
    let report = Report::build(&engine, 0.045);
    let _ = report.to_table(5);
    let _ = report.to_csv();
    let total: u64 = report.sources.iter().map(|s| s.bytes).fold(0, u64::saturating_add);
    assert!(total >= report.totals.bytes.min(total));
    let opts = MetricOptions { max_sources: 2, min_source_share: 0.05, price_per_gb: 0.045, now: 0 };
    for d in datums(&engine, &opts) {
        assert!(d.value.is_finite());
    }
    for d in source_details(&engine, 0.045) {
        let line = d.to_json_line();
        serde_json_check(&line);
    }
});

fn serde_json_check(line: &str) {
    // Detail lines must always be valid JSON objects.
    assert!(line.starts_with('{') && line.ends_with('}'));
}
