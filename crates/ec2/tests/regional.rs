//! A regional NAT gateway, as EC2 describes it, metered: its ENIs are one gateway in the report's
//! NatGatewayId metrics, and each record's cross-AZ charge follows the AZ of the ENI that saw it
//! (docs/topology.md §2, docs/contracts.md §1.1.2).

use natmeter_core::config::Config;
use natmeter_core::engine::Attributor;
use natmeter_core::metrics::{datums, MetricOptions};
use natmeter_core::report::Report;
use natmeter_core::sources::{Input, Reader, Text};
use natmeter_ec2::{discovered, parse};

const FORMAT: &str = "${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${bytes} ${packets} ${start} ${end} ${action} ${log-status}";

#[test]
fn a_regional_gateway_is_one_series_and_charges_cross_az_by_the_eni_that_saw_the_record() {
    let xml = std::fs::read_to_string(format!(
        "{}/tests/data/describe-nat-gateways-regional.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let gws = parse::nat_gateways(&xml).unwrap().items;
    let subnets = vec![
        parse::Subnet {
            id: "subnet-a".into(),
            vpc_id: None,
            availability_zone_id: Some("use1-az1".into()),
            cidrs: vec!["10.0.0.0/19".parse().unwrap()],
        },
        parse::Subnet {
            id: "subnet-b".into(),
            vpc_id: None,
            availability_zone_id: Some("use1-az2".into()),
            cidrs: vec!["10.0.32.0/19".parse().unwrap()],
        },
    ];
    let d = discovered(&gws, &subnets);
    let base = Config::from_lookup(|k| match k {
        "NATMETER_VPC_IDS" => Some("vpc-0123456789abcdef0".into()),
        "NATMETER_LOG_FORMAT" => Some(FORMAT.into()),
        "AWS_REGION" => Some("us-east-1".into()),
        _ => None,
    })
    .unwrap();
    let topo = base
        .topology
        .with_gateways(d.gateways)
        .unwrap()
        .with_subnets(d.subnets);
    let (az1_eni, az2_eni) = ("eni-0aaaa1111bbbb2222", "eni-0cccc3333dddd4444");
    let (s, e) = (1_764_547_200, 1_764_547_260);
    let lines = [
        // A pod in az1 through the az1 ENI: no crossing.
        format!("{az1_eni} 10.0.1.5 10.0.1.201 10.0.1.5 203.0.113.5 1000 1 {s} {e} ACCEPT OK"),
        // A pod in az2 through the az1 ENI: crosses.
        format!("{az1_eni} 10.0.40.7 10.0.1.201 10.0.40.7 203.0.113.5 300 1 {s} {e} ACCEPT OK"),
        // A pod in az2 through the az2 ENI, to its secondary IP: no crossing.
        format!("{az2_eni} 10.0.40.7 10.0.33.18 10.0.40.7 203.0.113.5 2000 1 {s} {e} ACCEPT OK"),
    ]
    .join("\n")
        + "\n";
    let attributor = Attributor::new(&topo, base.format.clone());
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
    let report = Report::build(&results, &topo, 0.045);
    assert_eq!(report.totals.bytes, 3300);
    assert_eq!(report.totals.cross_az_bytes, Some(300));
    // The report keeps a row per ENI (each is where its AZ's traffic went).
    let rows: Vec<_> = report
        .nat_gateways
        .iter()
        .map(|g| (g.nat_gateway.as_str(), g.eni.as_str(), g.bytes))
        .collect();
    assert_eq!(
        rows,
        [
            ("nat-0regional1234567", az1_eni, 1300),
            ("nat-0regional1234567", az2_eni, 2000)
        ]
    );
    let opts = MetricOptions {
        max_sources: 20,
        min_source_share: 0.0,
        price_per_gb: 0.045,
        now: 1_764_547_300,
    };
    let series: Vec<_> = datums(&results, &topo, &opts)
        .into_iter()
        .filter(|d| {
            d.metric == "NatBytes" && d.dimensions.len() == 1 && d.dimensions[0].0 == "NatGatewayId"
        })
        .map(|d| (d.dimensions[0].1.clone(), d.value))
        .collect();
    assert_eq!(
        series,
        [("nat-0regional1234567".to_string(), 3300.0)],
        "one NatGatewayId series for the gateway's two ENIs"
    );
}
