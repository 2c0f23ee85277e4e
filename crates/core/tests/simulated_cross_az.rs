//! The cross-AZ surcharge of any simulated cluster equals the simulator's own account of it:
//! with the simulator's subnets (`Simulation::subnets_json`), the report's cross-AZ bytes in
//! total, per source and per gateway are what the address plan says crossed an AZ
//! (`Simulation::cross_az_truth`), and each cost is bytes / 2^30 × the inter-AZ price.

use natmeter_core::engine::Attributor;
use natmeter_core::price::INTER_AZ_USD_PER_GB;
use natmeter_core::report::Report;
use natmeter_core::sources::{Input, Reader};
use natmeter_core::topology::Topology;
use natmeter_sim::{simulate, Scope, SimConfig, Simulation, TruthCrossAz};
use proptest::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The most parts a report's ledger was shared out in (`report`): a test of several threads
/// means something only when there was more than one.
static PARTS: AtomicUsize = AtomicUsize::new(0);

fn cost(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64 * INTER_AZ_USD_PER_GB
}

fn report(sim: &Simulation) -> Report {
    let subnets = Topology::subnets_from_json(&sim.subnets_json()).unwrap();
    let topo = sim.topology().with_subnets(subnets);
    let attributor = Attributor::new(&topo, sim.format());
    let mut engine = attributor.results();
    let mut reader = Reader::default();
    for e in &sim.events {
        let input = Input::Event {
            bytes: e.json.as_bytes(),
            origin: &e.file_name,
        };
        attributor.ingest(input, &mut reader, &mut engine).unwrap();
    }
    let r = Report::build(&engine, &topo, sim.truth.price_per_gb_usd);
    // Summed on several threads, the ledger gives the same report, cross-AZ figures included.
    let one = serde_json::to_value(&r).unwrap();
    PARTS.fetch_max(engine.ledger().parts(3).len(), Ordering::Relaxed);
    for threads in [2, 3, 5] {
        let price = sim.truth.price_per_gb_usd;
        let on = Report::build_on(&engine, &topo, price, false, threads);
        assert_eq!(serde_json::to_value(&on).unwrap(), one, "{threads} threads");
    }
    r
}

/// The report's cross-AZ figures equal the truth's; returns the truth.
fn check(cfg: &SimConfig) -> TruthCrossAz {
    let sim = simulate(cfg);
    let want = sim.cross_az_truth().clone();
    let r = report(&sim);
    let t = &r.totals;
    assert_eq!(t.cross_az_bytes, Some(want.bytes), "totals, config {cfg:?}");
    assert_eq!(t.cross_az_cost_usd, Some(cost(want.bytes)), "{cfg:?}");
    assert!(want.bytes <= t.bytes);
    // Every source the report names, and every source the truth names, agree (the truth has
    // an entry for every NAT-processed source, 0 when none of its bytes crossed).
    assert_eq!(r.sources.len(), want.by_source.len(), "{cfg:?}");
    for s in &r.sources {
        let w = *want
            .by_source
            .get(&s.source)
            .unwrap_or_else(|| panic!("source {} not in the truth, {cfg:?}", s.source));
        assert_eq!(s.cross_az_bytes, Some(w), "source {}, {cfg:?}", s.source);
        assert_eq!(s.cross_az_cost_usd, Some(cost(w)), "source {}", s.source);
    }
    for (gw, w) in &want.by_gateway {
        match r.nat_gateways.iter().find(|g| &g.nat_gateway == gw) {
            Some(g) => {
                assert_eq!(g.cross_az_bytes, Some(*w), "gateway {gw}, {cfg:?}");
                assert_eq!(g.cross_az_cost_usd, Some(cost(*w)), "gateway {gw}");
            }
            None => assert_eq!(*w, 0, "gateway {gw} missing from the report, {cfg:?}"),
        }
    }
    for g in &r.nat_gateways {
        assert!(
            want.by_gateway.contains_key(&g.nat_gateway),
            "{}",
            g.nat_gateway
        );
    }
    let sum_src: u64 = want.by_source.values().sum();
    let sum_gw: u64 = want.by_gateway.values().sum();
    assert_eq!((sum_src, sum_gw), (want.bytes, want.bytes));
    want
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn cross_az_bytes_match_the_address_plan(
        seed in any::<u64>(),
        pods in 10usize..100,
        nodes in 2usize..8,
        nat_gateways in 1usize..3,
        minutes in 1usize..4,
        external_snat in any::<bool>(),
        nat_enis in any::<bool>(),
    ) {
        check(&SimConfig {
            seed,
            pods,
            nodes,
            nat_gateways,
            minutes,
            external_snat,
            scope: if nat_enis { Scope::NatEnis } else { Scope::Vpc },
            ..SimConfig::default()
        });
    }
}

/// Nodes in three AZs, gateways in two: use1-az4 has no gateway of its own and its nodes'
/// traffic goes to use1-az1's, crossing; the other nodes' stays in their AZ.
#[test]
fn three_azs_two_gateways_some_bytes_cross() {
    for external_snat in [true, false] {
        let cfg = SimConfig {
            nat_gateways: 2,
            nodes: 6,
            external_snat,
            ..SimConfig::default()
        };
        let want = check(&cfg);
        assert!(
            PARTS.load(Ordering::Relaxed) > 1,
            "one part only: nothing shared out"
        );
        let total = simulate(&cfg).truth.totals.bytes;
        assert!(want.bytes > 0, "no cross-AZ bytes: {cfg:?}");
        assert!(want.bytes < total, "every byte crossed: {cfg:?}");
        assert!(
            want.by_source.values().any(|&b| b == 0),
            "no same-AZ source"
        );
        eprintln!(
            "external_snat {external_snat}: cross-AZ {} of {} bytes ({:.1}%)",
            want.bytes,
            total,
            100.0 * want.bytes as f64 / total as f64
        );
    }
}

/// A gateway in each AZ (nat_gateways 3, nodes 6): the simulator routes every node to its own
/// AZ's gateway, so nothing crosses, and the report must say 0 exactly.
#[test]
fn three_azs_three_gateways_nothing_crosses() {
    let cfg = SimConfig {
        nat_gateways: 3,
        nodes: 6,
        ..SimConfig::default()
    };
    let want = check(&cfg);
    assert_eq!(want.bytes, 0);
    assert!(simulate(&cfg).truth.totals.bytes > 0);
}

/// A cluster's instances outside it (unknown sources) are in no subnet: their NAT bytes are
/// never counted as crossing, though one gateway serves three AZs.
#[test]
fn sources_outside_every_subnet_never_cross() {
    let cfg = SimConfig {
        nat_gateways: 1,
        nodes: 6,
        minutes: 3,
        cluster: Some(natmeter_sim::ClusterConfig {
            unknown_sources: true,
            ..natmeter_sim::ClusterConfig::default()
        }),
        ..SimConfig::default()
    };
    let want = check(&cfg);
    assert!(want.bytes > 0);
    for ip in ["10.0.63.200", "10.0.63.201"] {
        assert_eq!(want.by_source.get(ip).copied().unwrap_or(0), 0, "{ip}");
    }
    let sim = simulate(&cfg);
    assert!(sim
        .subnets()
        .iter()
        .all(|s| !s.cidr.starts_with("10.0.63.20")));
    assert!(
        sim.truth
            .sources
            .iter()
            .any(|s| s.source.starts_with("10.0.63.20")),
        "the outsider talked through the gateway"
    );
}
