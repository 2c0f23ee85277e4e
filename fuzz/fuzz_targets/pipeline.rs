//! The whole report pipeline on arbitrary bytes: as an event, as a payload and as flow-log text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use natmeter_core::attribution::SkipReason;
use natmeter_core::engine::Attributor;
use natmeter_core::flowlog::Format;
use natmeter_core::metrics::{datums, source_details, MetricOptions};
use natmeter_core::report::Report;
use natmeter_core::sources::subscription::Decoder;
use natmeter_core::sources::{Input, Reader, Text};
use natmeter_core::topology::{NatGateway, Topology, DEFAULT_PRIVATE_CIDRS};

fuzz_target!(|data: &[u8]| {
    let topo = Topology::new(
        vec![NatGateway {
            id: "nat-1".into(),
            eni: "eni-1235b8ca123456789".into(),
            private_ips: vec!["10.0.0.220".parse().unwrap()],
            az_id: None,
            connectivity_type: Default::default(),
        }],
        Topology::cidrs_from_list(DEFAULT_PRIVATE_CIDRS).unwrap(),
    )
    .unwrap();
    let format = Format::parse("${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${pkt-src-aws-service} ${pkt-dst-aws-service} ${bytes} ${packets} ${start} ${end} ${action} ${log-status}").unwrap();
    let attributor = Attributor::new(&topo, format);
    let mut engine = attributor.results();
    let mut reader = Reader::new(Decoder::new(1 << 20));
    let _ = attributor.ingest(Input::Event { bytes: data, origin: "fuzz" }, &mut reader, &mut engine);
    let _ = attributor.ingest(Input::Payload { json: data, origin: "fuzz" }, &mut reader, &mut engine);
    let text = Text { bytes: data, format: None, origin: "fuzz", first_line: 1, fallback_time: 0 };
    let _ = attributor.ingest(Input::Text(text), &mut reader, &mut engine);
    let report = Report::build(&engine, &topo, 0.045);
    let _ = report.to_table(5);
    let _ = report.to_csv();

    // Every record read lands in exactly one bucket: counted, a skip reason, or a parse error.
    let r = &report.records;
    let skipped: u64 = SkipReason::ALL.iter().map(|s| r.skipped(*s)).sum();
    assert_eq!(r.read, r.counted + skipped + r.parse_errors, "{r:?}");

    // The views agree with the totals, unless a sum saturated (hostile byte counts near u64::MAX:
    // the ledger saturates rather than wraps, so a saturated view is only ever larger).
    let t = &report.totals;
    let exact = |xs: &mut dyn Iterator<Item = u64>| xs.map(u128::from).sum::<u128>();
    let saturated = t.bytes == u64::MAX || t.outbound_bytes == u64::MAX || t.inbound_bytes == u64::MAX;
    if !saturated {
        assert_eq!(u128::from(t.bytes), u128::from(t.outbound_bytes) + u128::from(t.inbound_bytes));
        assert_eq!(exact(&mut report.sources.iter().map(|s| s.bytes)), u128::from(t.bytes));
        assert_eq!(exact(&mut report.nat_gateways.iter().map(|g| g.bytes)), u128::from(t.bytes));
        assert_eq!(exact(&mut report.destinations.iter().map(|d| d.bytes)), u128::from(t.bytes));
        for s in &report.sources {
            assert_eq!(s.bytes, s.outbound_bytes + s.inbound_bytes);
            assert_eq!(exact(&mut s.destinations.iter().map(|d| d.bytes)), u128::from(s.bytes));
        }
    }
    if r.counted == 0 {
        assert_eq!(t.bytes, 0);
        assert!(report.sources.is_empty());
    }

    // The JSON report is valid JSON with the contract's schema.
    let json: serde_json::Value = serde_json::to_value(&report).expect("report serializes");
    assert_eq!(json["schema"], "natmeter.report/v1");

    let opts = MetricOptions { max_sources: 2, min_source_share: 0.05, price_per_gb: 0.045, now: 0 };
    let ds = datums(&engine, &topo, &opts);
    for d in &ds {
        assert!(d.value.is_finite());
    }
    // The capped SourceIp series still sum to the dimensionless total, minute by minute.
    if !saturated {
        let mut by_minute: std::collections::BTreeMap<i64, (f64, f64)> = Default::default();
        for d in ds.iter().filter(|d| d.metric == "NatBytes") {
            let e = by_minute.entry(d.timestamp).or_default();
            match d.dimensions.as_slice() {
                [] => e.0 += d.value,
                [("SourceIp", _)] => e.1 += d.value,
                _ => {}
            }
        }
        for (minute, (total, per_source)) in by_minute {
            assert!((total - per_source).abs() <= total.abs() * 1e-9, "minute {minute}: {total} != {per_source}");
        }
    }
    for d in source_details(&engine, &topo, 0.045) {
        let line = d.to_json_line();
        // Detail lines are JSON objects carrying their source and bytes.
        let v: serde_json::Value = serde_json::from_str(&line).expect("detail line is JSON");
        assert!(v["SourceIp"].is_string() && v["NatBytes"].is_u64(), "{line}");
    }
});
