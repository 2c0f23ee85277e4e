//! Destinations by service and region (docs/attribution.md §5.1-§5.2): with the simulator's
//! ip-ranges.json, the report's destinations of any simulated cluster (S3 in two regions,
//! DynamoDB, records that say `-` for the service) and its avoidable bytes (S3 and DynamoDB in
//! the gateways' own region only) equal the simulator's own account (`Simulation::aws_truth`);
//! the ranges move no byte, and with the traffic split between two readers the merge agrees.

use natmeter_core::engine::Attributor;
use natmeter_core::ipranges::IpRanges;
use natmeter_core::metrics::{datums, Datum, MetricOptions};
use natmeter_core::report::Report;
use natmeter_core::sources::{Input, Reader};
use natmeter_sim::{simulate, Scope, SimConfig, Simulation};
use proptest::prelude::*;

fn report(sim: &Simulation, ranges: &IpRanges, split: bool, prefixes: bool) -> Report {
    report_and_datums(sim, ranges, split, prefixes).0
}

fn report_and_datums(
    sim: &Simulation,
    ranges: &IpRanges,
    split: bool,
    prefixes: bool,
) -> (Report, Vec<Datum>) {
    let topo = sim.topology();
    let attributor = Attributor::new(&topo, sim.format())
        .with_ranges(ranges, Some(&sim.truth.region))
        .with_remote_prefixes(prefixes);
    let (mut a, mut b) = (attributor.results(), attributor.results());
    let mut reader = Reader::default();
    for (i, e) in sim.events.iter().enumerate() {
        let input = Input::Event {
            bytes: e.json.as_bytes(),
            origin: &e.file_name,
        };
        let into = if split && i % 2 == 1 { &mut b } else { &mut a };
        attributor.ingest(input, &mut reader, into).unwrap();
    }
    a.merge(&b);
    let opts = MetricOptions {
        max_sources: 20,
        min_source_share: 0.0,
        price_per_gb: sim.truth.price_per_gb_usd,
        now: sim.truth.minutes.keys().next().copied().unwrap_or(0) + 600,
    };
    (
        Report::build(&a, &topo, sim.truth.price_per_gb_usd),
        datums(&a, &topo, &opts),
    )
}

fn check(cfg: &SimConfig, split: bool) {
    let sim = simulate(cfg);
    let ranges = IpRanges::from_json(Simulation::ip_ranges_json().as_bytes()).unwrap();
    let want = sim.aws_truth();
    let (r, d) = report_and_datums(&sim, &ranges, split, false);
    // The function's NatAvoidableBytes: the same same-region bytes, per minute.
    let avoidable: f64 = d
        .iter()
        .filter(|x| x.metric == "NatAvoidableBytes")
        .map(|x| x.value)
        .sum();
    assert_eq!(avoidable, want.avoidable_bytes as f64, "{cfg:?}");
    let got: Vec<_> = r
        .destinations
        .iter()
        .map(|d| (d.destination.as_str(), d.region.as_deref(), d.bytes))
        .collect();
    let wanted: Vec<_> = want
        .destinations
        .iter()
        .map(|d| (d.destination.as_str(), d.region.as_deref(), d.bytes))
        .collect();
    assert_eq!(got, wanted, "{cfg:?}");
    assert_eq!(
        r.totals.avoidable_bytes,
        Some(want.avoidable_bytes),
        "{cfg:?}"
    );
    assert_eq!(r.totals.bytes, sim.truth.totals.bytes, "{cfg:?}");

    // With remote prefixes, INTERNET is split by /24 exactly as the simulator sent it, and the
    // rest is unchanged.
    let p = report(&sim, &ranges, split, true);
    let by_prefix: Vec<_> = p
        .destinations
        .iter()
        .filter_map(|d| Some((d.remote.clone()?, d.bytes)))
        .collect();
    let wanted: Vec<_> = want
        .remote_prefixes
        .iter()
        .map(|t| (t.prefix.clone(), t.bytes))
        .collect();
    let mut got_sorted = by_prefix.clone();
    got_sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    assert_eq!(got_sorted, wanted, "{cfg:?}");
    assert!(p
        .destinations
        .iter()
        .all(|d| d.remote.is_none() || (d.destination == "INTERNET" && d.region.is_none())));
    assert_eq!(p.totals, r.totals, "prefixes move no byte");
    for s in &p.sources {
        let sum: u64 = s.destinations.iter().map(|d| d.bytes).sum();
        assert_eq!(sum, s.bytes, "source {}", s.source);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn destinations_by_region_and_avoidable_match_the_simulator(
        seed in any::<u64>(),
        pods in 10usize..80,
        nat_gateways in 1usize..3,
        minutes in 1usize..4,
        external_snat in any::<bool>(),
        nat_enis in any::<bool>(),
        split in any::<bool>(),
    ) {
        check(&SimConfig {
            seed,
            pods,
            nat_gateways,
            minutes,
            external_snat,
            scope: if nat_enis { Scope::NatEnis } else { Scope::Vpc },
            aws_regions: true,
            ..SimConfig::default()
        }, split);
    }
}

/// The default simulation (no second region, every record names its service) agrees too: the
/// ranges only add the region.
#[test]
fn without_aws_regions_the_ranges_only_add_regions() {
    check(&SimConfig::default(), false);
}
