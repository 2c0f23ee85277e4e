//! The cross-AZ surcharge (docs/contracts.md §1.1.2): with the VPC's subnets known, a byte
//! between a source and a NAT gateway in different AZs is priced at the inter-AZ rate on top
//! of NAT processing, in the report (totals, sources, gateways) and the metrics; a source
//! outside every subnet, or a gateway without an AZ, is never guessed to cross.

use natmeter_core::config::Config;
use natmeter_core::engine::Attributor;
use natmeter_core::metrics::{datums, MetricOptions};
use natmeter_core::price::INTER_AZ_USD_PER_GB;
use natmeter_core::report::Report;
use natmeter_core::sources::{Input, Reader, Text};

const GATEWAYS: &str = r#"[{"id":"nat-a","eni":"eni-0a1b2c3d4e5f60001","private_ips":["10.0.0.220"],"az_id":"use1-az1"},{"id":"nat-b","eni":"eni-0a1b2c3d4e5f60002","private_ips":["10.0.32.9"],"az_id":"use1-az2"}]"#;
const SUBNETS: &str =
    r#"[{"cidr":"10.0.0.0/19","az_id":"use1-az1"},{"cidr":"10.0.32.0/19","az_id":"use1-az2"}]"#;
const FORMAT: &str = "${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${bytes} ${packets} ${start} ${end} ${action} ${log-status}";

fn config(subnets: Option<&str>) -> Result<Config, natmeter_core::config::ConfigError> {
    Config::from_lookup(|k| match k {
        "NATMETER_NAT_GATEWAYS" => Some(GATEWAYS.into()),
        "NATMETER_LOG_FORMAT" => Some(FORMAT.into()),
        "AWS_REGION" => Some("us-east-1".into()),
        "NATMETER_SUBNETS" => subnets.map(str::to_string),
        _ => None,
    })
}

/// (A) outbound from `ip` through `eni`/`nat`, or (D) inbound to it.
fn rec(eni: &str, nat: &str, ip: &str, bytes: u64, inbound: bool) -> String {
    let (s, e) = (1_764_547_200, 1_764_547_260);
    if inbound {
        format!("{eni} {nat} {ip} 203.0.113.5 {ip} {bytes} 1 {s} {e} ACCEPT OK")
    } else {
        format!("{eni} {ip} {nat} {ip} 203.0.113.5 {bytes} 1 {s} {e} ACCEPT OK")
    }
}

fn run(cfg: &Config) -> (Report, Vec<natmeter_core::metrics::Datum>) {
    let (a, b) = ("eni-0a1b2c3d4e5f60001", "eni-0a1b2c3d4e5f60002");
    let lines = [
        rec(a, "10.0.0.220", "10.0.1.5", 1000, false), // az1 -> az1: same AZ
        rec(a, "10.0.0.220", "10.0.33.7", 3000, false), // az2 -> az1: crosses
        rec(a, "10.0.0.220", "10.0.33.7", 500, true),  // back: crosses too
        rec(b, "10.0.32.9", "10.0.1.5", 2000, true),   // az1 <- az2: crosses
        rec(a, "10.0.0.220", "10.0.99.1", 7, false),   // in no subnet: unknown, not counted
    ]
    .join("\n")
        + "\n";
    let attributor = Attributor::new(&cfg.topology, cfg.format.clone());
    let mut results = attributor.results();
    let input = Input::Text(Text {
        bytes: lines.as_bytes(),
        format: None,
        origin: "flows.log",
        first_line: 1,
        fallback_time: 0,
    });
    attributor
        .ingest(input, &mut Reader::default(), &mut results)
        .unwrap();
    let opts = MetricOptions {
        max_sources: 20,
        min_source_share: 0.0,
        price_per_gb: cfg.price_per_gb,
        now: 1_764_547_300,
    };
    (
        Report::build(&results, &cfg.topology, cfg.price_per_gb),
        datums(&results, &cfg.topology, &opts),
    )
}

fn gb(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

#[test]
fn bytes_between_azs_are_priced_at_the_inter_az_rate() {
    let (report, d) = run(&config(Some(SUBNETS)).unwrap());
    assert_eq!(report.totals.bytes, 6507);
    assert_eq!(report.totals.cross_az_bytes, Some(5500));
    let cost = report.totals.cross_az_cost_usd.unwrap();
    assert!(
        (cost - gb(5500) * INTER_AZ_USD_PER_GB).abs() < 1e-15,
        "{cost}"
    );
    let by_source: Vec<(&str, Option<u64>)> = report
        .sources
        .iter()
        .map(|r| (r.source.as_str(), r.cross_az_bytes))
        .collect();
    assert_eq!(
        by_source,
        vec![
            ("10.0.33.7", Some(3500)),
            ("10.0.1.5", Some(2000)),
            ("10.0.99.1", Some(0))
        ]
    );
    let by_gateway: Vec<(&str, Option<u64>)> = report
        .nat_gateways
        .iter()
        .map(|g| (g.nat_gateway.as_str(), g.cross_az_bytes))
        .collect();
    assert_eq!(
        by_gateway,
        vec![("nat-a", Some(3500)), ("nat-b", Some(2000))]
    );
    let table = report.to_table(10);
    assert!(table.contains("CROSS-AZ"), "{table}");
    // Metrics: the same split, by [] and [NatGatewayId].
    let sum = |metric: &str, gw: Option<&str>| -> f64 {
        d.iter()
            .filter(|x| x.metric == metric)
            .filter(|x| match gw {
                None => x.dimensions.is_empty(),
                Some(g) => x.dimensions == vec![("NatGatewayId", g.to_string())],
            })
            .map(|x| x.value)
            .sum()
    };
    assert_eq!(sum("NatCrossAzBytes", None), 5500.0);
    assert_eq!(sum("NatCrossAzBytes", Some("nat-a")), 3500.0);
    assert_eq!(sum("NatCrossAzBytes", Some("nat-b")), 2000.0);
    assert!((sum("NatCrossAzCost", None) - gb(5500) * INTER_AZ_USD_PER_GB).abs() < 1e-15);
}

#[test]
fn without_subnets_nothing_is_said_about_azs() {
    let (report, d) = run(&config(None).unwrap());
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["totals"].get("cross_az_bytes").is_none());
    assert!(json["sources"][0].get("cross_az_bytes").is_none());
    assert!(json["nat_gateways"][0].get("cross_az_cost_usd").is_none());
    assert!(d.iter().all(|x| !x.metric.starts_with("NatCrossAz")));
    assert!(!report.to_table(10).contains("CROSS-AZ"));
}

#[test]
fn a_bad_subnet_list_stops_start_up_naming_the_variable() {
    for bad in [
        "[{\"cidr\":\"10.0.0.0/40\",\"az_id\":\"use1-az1\"}]",
        "[{\"cidr\":\"10.0.0.0/16\"}]",
        "not json",
    ] {
        let e = config(Some(bad)).unwrap_err();
        assert_eq!(e.variable, "NATMETER_SUBNETS", "{bad}: {e}");
    }
}
