//! The engine's report of any simulated cluster equals the simulator's ground truth, for both
//! scopes and both SNAT modes; and the metric model sums to the same totals.

use natmeter_core::engine::{Attributor, Results};
use natmeter_core::metrics::{datums, source_details, MetricOptions, NAT_BYTES};
use natmeter_core::report::Report;
use natmeter_core::sources::{Input, Reader, Text};
use natmeter_core::topology::Topology;
use natmeter_sim::{simulate, Scope, SimConfig, Simulation};
use proptest::prelude::*;
use serde_json::Value;

fn run(sim: &Simulation) -> Report {
    let topo = sim.topology();
    let format = sim.format();
    let attributor = Attributor::new(&topo, format);
    let mut engine = attributor.results();
    let mut reader = Reader::default();
    for e in &sim.events {
        assert!(
            e.decoded_bytes <= 1_000_000,
            "{} decodes to {}",
            e.file_name,
            e.decoded_bytes
        );
        let input = Input::Event {
            bytes: e.json.as_bytes(),
            origin: &e.file_name,
        };
        attributor.ingest(input, &mut reader, &mut engine).unwrap();
    }
    let report = Report::build(&engine, &topo, sim.truth.price_per_gb_usd);
    // The metric projections of the same engine sum to the same total.
    let opts = MetricOptions {
        max_sources: 3,
        min_source_share: 0.0,
        price_per_gb: 0.045,
        now: 2_000_000_000,
    };
    let ds = datums(&engine, &topo, &opts);
    for set in [0usize, 1, 3, 4] {
        let sum: f64 = ds
            .iter()
            .filter(|d| d.metric == NAT_BYTES && d.dimensions.len() == usize::from(set > 0))
            .filter(|d| match set {
                0 => d.dimensions.is_empty(),
                1 => d.dimensions[0].0 == "NatGatewayId",
                3 => d.dimensions[0].0 == "Destination",
                _ => d.dimensions[0].0 == "SourceIp",
            })
            .map(|d| d.value)
            .sum();
        assert_eq!(sum as u64, sim.truth.totals.bytes, "dimension set {set}");
    }
    let distinct_sources: std::collections::BTreeSet<_> = ds
        .iter()
        .filter(|d| {
            d.metric == NAT_BYTES && d.dimensions.first().is_some_and(|x| x.0 == "SourceIp")
        })
        .map(|d| d.dimensions[0].1.clone())
        .collect();
    assert!(distinct_sources.len() <= 4, "{distinct_sources:?}");
    let detail_sum: u64 = source_details(&engine, &topo, 0.045)
        .iter()
        .map(|d| d.bytes)
        .sum();
    assert_eq!(detail_sum, sim.truth.totals.bytes);
    report
}

/// Every simulated event through one attributor and reader.
fn ingest_all(topo: &Topology, sim: &Simulation) -> Results {
    let attributor = Attributor::new(topo, sim.format());
    let mut engine = attributor.results();
    let mut reader = Reader::default();
    for e in &sim.events {
        let input = Input::Event {
            bytes: e.json.as_bytes(),
            origin: "x",
        };
        attributor.ingest(input, &mut reader, &mut engine).unwrap();
    }
    engine
}

/// The keys of the report that truth.json pins down.
fn comparable(v: &Value) -> Value {
    let strip = |rows: &Value, keep: &[&str]| -> Value {
        Value::Array(
            rows.as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    let o = r.as_object().unwrap();
                    Value::Object(
                        keep.iter()
                            .map(|k| (k.to_string(), o[*k].clone()))
                            .collect(),
                    )
                })
                .collect(),
        )
    };
    let t = &v["totals"];
    serde_json::json!({
        "totals": {"bytes": t["bytes"], "outbound_bytes": t["outbound_bytes"], "inbound_bytes": t["inbound_bytes"], "packets": t["packets"]},
        "batches": v["batches"],
        "records": v["records"],
        "sources": strip(&v["sources"], &["source", "outbound_bytes", "inbound_bytes", "bytes", "packets", "destinations"]),
        "nat_gateways": strip(&v["nat_gateways"], &["nat_gateway", "eni", "outbound_bytes", "inbound_bytes", "bytes"]),
        "destinations": v["destinations"],
    })
}

/// The report equals the truth. The fixed configurations carry NAT traffic (`check`); a random
/// tiny one may carry none (one pod for one minute need not talk through a gateway: seed
/// 682836488189493856 with 1 pod, 5 nodes, 2 gateways, 1 minute, node SNAT, NAT ENIs), and then
/// the report must say zero exactly as the truth does (`check_any`).
fn check(cfg: SimConfig) {
    let bytes = check_any(cfg);
    assert!(
        bytes > 0,
        "a fixed configuration with no NAT traffic tests nothing"
    );
}

fn check_any(cfg: SimConfig) -> u64 {
    let sim = simulate(&cfg);
    let report = run(&sim);
    let got = comparable(&serde_json::to_value(&report).unwrap());
    let want = comparable(&serde_json::to_value(&sim.truth).unwrap());
    assert_eq!(got, want, "config {cfg:?}");
    assert_eq!(
        report.totals.cost_usd,
        report.totals.bytes as f64 / (1u64 << 30) as f64 * 0.045
    );
    sim.truth.totals.bytes
}

#[test]
fn default_simulation_matches_truth() {
    check(SimConfig::default());
}

#[test]
fn node_snat_attributes_to_node_ips() {
    let cfg = SimConfig {
        external_snat: false,
        ..SimConfig::default()
    };
    let sim = simulate(&cfg);
    assert!(sim
        .truth
        .sources
        .iter()
        .all(|s| s.source.starts_with("10.0.64.")));
    check(cfg);
}

#[test]
fn multi_batch_streams_split_under_one_megabyte() {
    let cfg = SimConfig {
        pods: 300,
        minutes: 6,
        nat_gateways: 1,
        max_batch_bytes: 200_000,
        ..SimConfig::default()
    };
    let sim = simulate(&cfg);
    assert!(sim.truth.batches.read > 1, "{:?}", sim.truth.batches);
    check(cfg);
}

/// The case proptest found: a cluster with no NAT traffic at all is reported as exactly zero.
#[test]
fn a_cluster_without_nat_traffic_reports_zero() {
    let bytes = check_any(SimConfig {
        seed: 682836488189493856,
        pods: 1,
        nodes: 5,
        nat_gateways: 2,
        minutes: 1,
        external_snat: false,
        scope: Scope::NatEnis,
        ..SimConfig::default()
    });
    assert_eq!(bytes, 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn any_simulated_cluster_matches_truth(
        seed in any::<u64>(),
        pods in 1usize..120,
        nodes in 1usize..8,
        gws in 1usize..4,
        minutes in 1usize..6,
        external_snat in any::<bool>(),
        vpc in any::<bool>(),
        shuffle in any::<bool>(),
    ) {
        check_any(SimConfig {
            seed, pods, nodes, nat_gateways: gws, minutes, external_snat,
            scope: if vpc { Scope::Vpc } else { Scope::NatEnis },
            shuffle_format: shuffle,
            ..SimConfig::default()
        });
    }
}

#[test]
fn source_series_need_a_share_of_the_invocation() {
    use natmeter_core::metrics::kept_sources;
    let sim = simulate(&SimConfig {
        pods: 300,
        nat_gateways: 1,
        scope: Scope::NatEnis,
        ..SimConfig::default()
    });
    let topo = sim.topology();
    let engine = ingest_all(&topo, &sim);
    let total = sim.truth.totals.bytes as f64;
    let bytes_of = |s: &natmeter_core::identity::Identity| {
        sim.truth
            .sources
            .iter()
            .find(|t| t.source == s.to_string())
            .unwrap()
            .bytes as f64
    };
    let plain = kept_sources(&engine, 20, 0.0);
    assert_eq!(plain.len(), 20);
    let floored = kept_sources(&engine, 20, 0.05);
    assert!(
        !floored.is_empty() && floored.len() < 20,
        "{}",
        floored.len()
    );
    assert!(floored.iter().all(|s| bytes_of(s) >= 0.05 * total));
    assert_eq!(
        &plain[..floored.len()],
        &floored[..],
        "the floor keeps a prefix of the top-N"
    );
}

/// A private NAT gateway (both sides private) with pkt-* fields: every byte once, as the truth.
#[test]
fn private_nat_gateway_with_pkt_fields_matches_truth() {
    let cfg = SimConfig {
        private_nat: true,
        nat_gateways: 2,
        pods: 60,
        ..SimConfig::default()
    };
    check(cfg.clone());
    let sim = simulate(&cfg);
    let private = sim
        .truth
        .destinations
        .iter()
        .find(|d| d.destination == "PRIVATE")
        .map_or(0, |d| d.bytes);
    assert!(private > 0, "the private gateway carried traffic");
}

/// The same traffic without pkt-srcaddr/pkt-dstaddr: the private gateway's records are refused
/// (counted as `ambiguous`, explained by a diagnostic) instead of counted twice, and the public
/// gateway's bytes still match the truth through the fallback rule.
#[test]
fn private_nat_gateway_without_pkt_fields_is_refused_not_double_counted() {
    use natmeter_core::flowlog::{Field, Format};
    use natmeter_core::sources::subscription::{Decoder, Payload};
    use natmeter_core::topology::Connectivity;

    let sim = simulate(&SimConfig {
        private_nat: true,
        nat_gateways: 2,
        pods: 60,
        ..SimConfig::default()
    });
    let full = sim.format();
    let drop: Vec<usize> = [Field::PktSrcAddr, Field::PktDstAddr]
        .iter()
        .map(|f| full.position(*f).unwrap())
        .collect();
    let names: Vec<&str> = sim.truth.log_format.split_whitespace().collect();
    let reduced: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| !drop.contains(i))
        .map(|(_, n)| *n)
        .collect();
    let format = Format::from_aws_syntax(&reduced.join(" ")).unwrap();
    let mut text = String::new();
    let (mut decoder, mut buf) = (Decoder::default(), Vec::new());
    for e in &sim.events {
        let data = natmeter_core::sources::subscription::event_data(e.json.as_bytes()).unwrap();
        decoder.decode(&data, &mut buf).unwrap();
        let payload = Payload::parse(&buf).unwrap();
        for ev in &payload.log_events {
            let kept: Vec<&str> = ev
                .message
                .split_whitespace()
                .enumerate()
                .filter(|(i, _)| !drop.contains(i))
                .map(|(_, t)| t)
                .collect();
            text.push_str(&kept.join(" "));
            text.push('\n');
        }
    }
    let run = |topo: &Topology| {
        let attributor = Attributor::new(topo, format.clone());
        let mut engine = attributor.results();
        let input = Input::Text(Text {
            bytes: text.as_bytes(),
            format: None,
            origin: "reduced",
            first_line: 1,
            fallback_time: 0,
        });
        attributor
            .ingest(input, &mut Reader::default(), &mut engine)
            .unwrap();
        Report::build(&engine, topo, 0.045)
    };
    let topo = sim.topology();
    assert!(topo.is_private_gateway(0) && !topo.is_private_gateway(1));
    let report = run(&topo);
    let truth_gw = |i: usize| {
        sim.truth
            .nat_gateways
            .iter()
            .find(|g| g.eni == sim.gateways[i].eni)
            .map_or(0, |g| g.bytes)
    };
    let got_gw = |r: &Report, i: usize| {
        r.nat_gateways
            .iter()
            .find(|g| g.eni == sim.gateways[i].eni)
            .map_or(0, |g| g.bytes)
    };
    assert!(truth_gw(0) > 0 && truth_gw(1) > 0);
    assert_eq!(
        got_gw(&report, 0),
        0,
        "the private gateway's bytes are refused"
    );
    assert_eq!(
        got_gw(&report, 1),
        truth_gw(1),
        "the public gateway still counts"
    );
    assert!(report.records.ambiguous > 0);
    assert!(report
        .diagnostics
        .iter()
        .any(|d| d.code == "private_nat_no_pkt_fields"));

    // Why the rule exists: treated as a public gateway, the fallback counts its four records
    // as two traversals each way, twice the bytes the gateway processed.
    let mut gateways = sim.gateways.clone();
    gateways[0].connectivity_type = Connectivity::Public;
    let naive = Topology::new(gateways, topo_private_cidrs()).unwrap();
    assert_eq!(got_gw(&run(&naive), 0), 2 * truth_gw(0));
}

fn topo_private_cidrs() -> Vec<ipnet::IpNet> {
    natmeter_core::topology::Topology::cidrs_from_list(
        natmeter_core::topology::DEFAULT_PRIVATE_CIDRS,
    )
    .unwrap()
}
