//! The engine names a simulated EKS cluster's NAT bytes exactly as the simulator's truth does
//! (docs/attribution.md §4.2): the inventory built from the cluster's audit log, in delivery
//! order or backwards, as JSON lines or as subscription events of the cluster log group, and the
//! flow events split between two results that are merged, give `workloads` equal to
//! `truth.identities` row for row, and identity totals that add up.
//!
//! Both lists are sorted the same way (bytes descending, then namespace, kind and name
//! ascending: crates/core/src/report.rs `workloads` and crates/sim/src/lib.rs), so they are
//! compared in order.

use natmeter_core::engine::{Attributor, Results};
use natmeter_core::inventory::{is_audit_batch, Inventory};
use natmeter_core::report::{IdentityTotals, Report};
use natmeter_core::sources::subscription::event_data;
use natmeter_core::sources::{Decoder, Input, Payload, Reader};
use natmeter_sim::{simulate, ClusterConfig, SimConfig, Simulation, TruthIdentity};
use proptest::prelude::*;

/// A workload row as the truth has it: (namespace, kind, name, outbound, inbound, bytes).
type Row = (String, String, String, u64, u64, u64);

fn truth_rows(ids: &[TruthIdentity]) -> Vec<Row> {
    ids.iter()
        .map(|i| {
            (
                i.namespace.clone(),
                i.kind.clone(),
                i.name.clone(),
                i.outbound_bytes,
                i.inbound_bytes,
                i.bytes,
            )
        })
        .collect()
}

fn report_rows(r: &Report) -> Vec<Row> {
    r.workloads
        .as_ref()
        .expect("a named report has workloads")
        .iter()
        .map(|w| {
            (
                w.namespace.clone(),
                w.kind.clone(),
                w.name.clone(),
                w.outbound_bytes,
                w.inbound_bytes,
                w.bytes,
            )
        })
        .collect()
}

/// The inventory from the audit lines, in the given order.
fn inventory_of<'a>(lines: impl Iterator<Item = &'a str>) -> Inventory {
    let mut inv = Inventory::default();
    for l in lines {
        inv.add_line(l.as_bytes())
            .unwrap_or_else(|e| panic!("an audit line is refused: {e}: {l}"));
    }
    inv
}

/// The inventory from the subscription events of the cluster log group.
fn inventory_of_events(sim: &Simulation, max_batch_bytes: usize) -> Inventory {
    let events = sim.audit_events(max_batch_bytes);
    assert!(!events.is_empty());
    let (mut decoder, mut buf) = (Decoder::default(), Vec::new());
    let mut inv = Inventory::default();
    let mut read = 0;
    for e in &events {
        let data = event_data(e.json.as_bytes()).unwrap();
        decoder.decode(&data, &mut buf).unwrap();
        let p = Payload::parse(&buf).unwrap();
        assert!(
            is_audit_batch(&p.log_group, &p.log_stream),
            "{} {}",
            p.log_group,
            p.log_stream
        );
        read += p.log_events.len();
        let errors = inv.add_payload(&p);
        assert!(errors.is_empty(), "{}: {errors:?}", e.file_name);
    }
    assert_eq!(read, sim.audit.len(), "every audit line once");
    inv
}

/// Every flow event through the named engine: the events before `split` into one result, the
/// rest into another, merged (second into first) as the CLI's threads are.
fn named_report(sim: &Simulation, inv: &Inventory, split: usize) -> Report {
    let topo = sim.topology();
    let attributor = Attributor::new(&topo, sim.format()).with_resolver(inv);
    let (mut first, mut second): (Results, Results) = (attributor.results(), attributor.results());
    let split = split.min(sim.events.len());
    for (i, e) in sim.events.iter().enumerate() {
        let into = if i < split { &mut first } else { &mut second };
        let input = Input::Event {
            bytes: e.json.as_bytes(),
            origin: &e.file_name,
        };
        attributor
            .ingest(input, &mut Reader::default(), into)
            .unwrap();
    }
    second.merge(&first);
    Report::build_named(&second, &topo, sim.truth.price_per_gb_usd)
}

/// The truth's bytes of one kind.
fn truth_bytes(sim: &Simulation, kind: &str) -> u64 {
    sim.truth
        .identities
        .iter()
        .filter(|i| i.kind == kind)
        .map(|i| i.bytes)
        .sum()
}

/// The named report equals the truth: workloads row for row, identity totals that add up to the
/// totals and to the truth's sums by kind, totals unchanged by naming.
fn assert_named_matches_truth(sim: &Simulation, inv: &Inventory, report: &Report, what: &str) {
    let cfg = format!(
        "{what} (seed {}, {} audit lines)",
        sim.truth.seed,
        sim.audit.len()
    );
    assert_eq!(inv.stats.errors, 0, "{cfg}: {:?}", inv.stats);
    assert_eq!(
        inv.stats.events,
        sim.audit.len() as u64,
        "{cfg}: every line read"
    );
    assert_eq!(
        report_rows(report),
        truth_rows(&sim.truth.identities),
        "{cfg}: workloads"
    );
    let t = &sim.truth.totals;
    assert_eq!(
        (
            report.totals.bytes,
            report.totals.outbound_bytes,
            report.totals.inbound_bytes,
            report.totals.packets
        ),
        (t.bytes, t.outbound_bytes, t.inbound_bytes, t.packets),
        "{cfg}: totals"
    );
    let id: IdentityTotals = report
        .identity
        .clone()
        .expect("a named report has identity");
    assert_eq!(
        id.resolved_bytes + id.node_bytes + id.unresolved_bytes,
        report.totals.bytes,
        "{cfg}: {id:?}"
    );
    assert_eq!(id.node_bytes, truth_bytes(sim, "Node"), "{cfg}: node bytes");
    assert_eq!(
        id.unresolved_bytes,
        truth_bytes(sim, "Unresolved"),
        "{cfg}: unresolved bytes"
    );
    let sum: u64 = sim.truth.identities.iter().map(|i| i.bytes).sum();
    assert_eq!(sum, t.bytes, "{cfg}: the truth's identities add up");
    // Each source row says who held it, consistently with the identity totals.
    let by_holder = |h: &str| -> u64 {
        report
            .sources
            .iter()
            .filter(|s| s.holder == Some(h))
            .map(|s| s.bytes)
            .sum()
    };
    assert_eq!(
        (by_holder("pod"), by_holder("node"), by_holder("unresolved")),
        (id.resolved_bytes, id.node_bytes, id.unresolved_bytes),
        "{cfg}: source holders"
    );
}

/// The report as JSON, with each diagnostic's message left out: the parse-error samples it
/// quotes follow the order results were merged in (observations are merged "in input order",
/// crates/core/src/engine.rs), which the split changes on purpose. The codes stay.
fn without_samples(r: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap();
    for d in v["diagnostics"].as_array_mut().unwrap() {
        d.as_object_mut().unwrap().remove("message");
    }
    v
}

/// One configuration: both delivery orders, the flow events split at `split` (a share of them,
/// 0 to 1) and the other way round for the reversed log; returns the report of the
/// delivery-order run.
fn check(cfg: &SimConfig, split: f64) -> (Simulation, Report) {
    let sim = simulate(cfg);
    let split = ((sim.events.len() as f64 * split) as usize).min(sim.events.len());
    let forward = inventory_of(sim.audit.iter().map(|l| l.json.as_str()));
    let report = named_report(&sim, &forward, split);
    assert_named_matches_truth(&sim, &forward, &report, &format!("{cfg:?} delivery order"));
    let backward = inventory_of(sim.audit.iter().rev().map(|l| l.json.as_str()));
    let back = named_report(&sim, &backward, sim.events.len() - split);
    assert_named_matches_truth(&sim, &backward, &back, &format!("{cfg:?} reversed"));
    assert_eq!(
        without_samples(&report),
        without_samples(&back),
        "{cfg:?}: the order of the audit lines and the split change nothing"
    );
    (sim, report)
}

fn cluster(seed: u64, external_snat: bool) -> SimConfig {
    SimConfig {
        seed,
        external_snat,
        cluster: Some(ClusterConfig::default()),
        ..SimConfig::default()
    }
}

fn kinds(r: &Report, kind: &str) -> usize {
    r.workloads
        .as_ref()
        .unwrap()
        .iter()
        .filter(|w| w.kind == kind)
        .count()
}

#[test]
fn default_cluster_with_external_snat_names_every_workload() {
    let cfg = cluster(1, true);
    let (sim, report) = check(&cfg, 0.5);
    assert!(kinds(&report, "Deployment") >= 2, "{:?}", report.workloads);
    assert!(kinds(&report, "CronJob") >= 1, "{:?}", report.workloads);
    assert!(kinds(&report, "StatefulSet") >= 1, "{:?}", report.workloads);
    assert!(kinds(&report, "Node") >= 1, "{:?}", report.workloads);
    let unresolved = report
        .workloads
        .as_ref()
        .unwrap()
        .iter()
        .find(|w| w.kind == "Unresolved")
        .expect("unknown_sources: an Unresolved row");
    assert!(unresolved.bytes > 0);
    let id = report.identity.as_ref().unwrap();
    assert!(id.resolved_bytes > 0 && id.node_bytes > 0 && id.unresolved_bytes > 0);
    assert!(sim.truth.totals.bytes > 0);
    // Pod counts: every named workload had at least one pod.
    for w in report.workloads.as_ref().unwrap() {
        match w.kind.as_str() {
            "Node" | "Unresolved" => assert_eq!(w.pods, 0, "{w:?}"),
            _ => assert!(w.pods >= 1, "{w:?}"),
        }
    }
}

#[test]
fn default_cluster_with_node_snat_names_nodes_only() {
    let cfg = cluster(1, false);
    let (_, report) = check(&cfg, 0.5);
    assert!(kinds(&report, "Node") >= 2, "{:?}", report.workloads);
    let rows = report.workloads.as_ref().unwrap();
    assert!(rows
        .iter()
        .all(|w| w.kind == "Node" || w.kind == "Unresolved"));
    assert!(rows.iter().any(|w| w.kind == "Unresolved" && w.bytes > 0));
    assert_eq!(report.identity.as_ref().unwrap().resolved_bytes, 0);
}

#[test]
fn without_unknown_sources_nothing_is_unresolved() {
    let mut cfg = cluster(2, true);
    cfg.cluster.as_mut().unwrap().unknown_sources = false;
    let (sim, report) = check(&cfg, 0.0);
    assert!(sim.truth.identities.iter().all(|i| i.kind != "Unresolved"));
    assert_eq!(report.identity.as_ref().unwrap().unresolved_bytes, 0);
}

/// The subscription events of the cluster log group name exactly what the JSON lines do, at
/// any batch size.
#[test]
fn audit_subscription_events_name_as_the_lines_do() {
    for external_snat in [true, false] {
        let cfg = cluster(3, external_snat);
        let (sim, want) = check(&cfg, 0.25);
        for max in [1_000_000, 20_000] {
            let inv = inventory_of_events(&sim, max);
            let got = named_report(&sim, &inv, 1);
            assert_named_matches_truth(&sim, &inv, &got, &format!("{cfg:?} events of {max}"));
            assert_eq!(
                without_samples(&got),
                without_samples(&want),
                "{cfg:?}: events of {max}"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]
    #[test]
    fn any_simulated_cluster_names_as_the_truth(
        seed in any::<u64>(),
        pods in 10usize..80,
        nodes in 2usize..6,
        minutes in 2usize..6,
        external_snat in any::<bool>(),
        shuffle_format in any::<bool>(),
        split in 0.0f64..=1.0,
    ) {
        let cfg = SimConfig {
            seed, pods, nodes, minutes, external_snat, shuffle_format,
            cluster: Some(ClusterConfig::default()),
            ..SimConfig::default()
        };
        check(&cfg, split);
    }
}
