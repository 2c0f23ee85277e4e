//! The EC2 answers natmeter reads, parsed from recorded shapes (tests/data/README.md), and the
//! topology parts made of them: zonal and regional gateways, secondary IPs, private gateways,
//! deleted and pending ones, subnets with IPv6.

use std::net::IpAddr;

use natmeter_core::topology::{Connectivity, Topology};
use natmeter_ec2::parse::{self, AvailabilityMode, ParseError};
use natmeter_ec2::{discovered, Discovered};

fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn zonal_gateways_with_secondary_ips_private_deleted_and_pending() {
    let page = parse::nat_gateways(&data("describe-nat-gateways-zonal.xml")).unwrap();
    assert_eq!(page.next_token.as_deref(), Some("page-2-token"));
    assert_eq!(page.items.len(), 4);
    let g = &page.items[0];
    assert_eq!(g.id, "nat-04e77a5e9c34432f9");
    assert_eq!(g.subnet_id.as_deref(), Some("subnet-1a2a3a4a"));
    assert_eq!(g.availability_mode, AvailabilityMode::Zonal);
    assert_eq!(g.addresses.len(), 2);
    assert_eq!(g.addresses[1].private_ip, Some(ip("10.0.2.148")));
    assert_eq!(g.addresses[1].is_primary, Some(false));

    let subnets = parse::subnets(&data("describe-subnets.xml")).unwrap().items;
    let d = discovered(&page.items, &subnets);
    assert_eq!(d.gateways.len(), 2, "{d:?}");
    let public = &d.gateways[0];
    assert_eq!(public.eni, "eni-00e37850");
    assert_eq!(public.private_ips, [ip("10.0.2.147"), ip("10.0.2.148")]);
    assert_eq!(
        public.az_id.as_deref(),
        Some("use1-az1"),
        "the AZ of its subnet"
    );
    assert_eq!(public.connectivity_type, Connectivity::Public);
    let private = &d.gateways[1];
    assert_eq!(private.connectivity_type, Connectivity::Private);
    assert_eq!(private.az_id.as_deref(), Some("use1-az2"));
    assert_eq!(
        d.passed_over,
        [
            "nat-0deleted00000000: state deleted",
            "nat-0pending0000000: no network interface with a private IP yet (state pending)"
        ]
    );
    assert_eq!(d.vpc_ids, ["vpc-4e20d42b"]);
    // What was described is a valid topology.
    Topology::new(d.gateways.clone(), vec![]).unwrap();
}

#[test]
fn a_regional_gateway_is_one_entry_per_eni_each_in_its_own_az() {
    let page = parse::nat_gateways(&data("describe-nat-gateways-regional.xml")).unwrap();
    assert_eq!(page.next_token, None);
    let g = &page.items[0];
    assert_eq!(g.availability_mode, AvailabilityMode::Regional);
    assert_eq!(g.subnet_id, None, "a regional gateway is in no subnet");
    assert_eq!(g.addresses.len(), 4);
    assert_eq!(g.addresses[3].status.as_deref(), Some("failed"));

    let d: Discovered = discovered(&page.items, &[]);
    let got: Vec<_> = d
        .gateways
        .iter()
        .map(|g| {
            (
                g.id.as_str(),
                g.eni.as_str(),
                g.private_ips.clone(),
                g.az_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "nat-0regional1234567",
                "eni-0aaaa1111bbbb2222",
                vec![ip("10.0.1.201")],
                Some("use1-az1")
            ),
            (
                "nat-0regional1234567",
                "eni-0cccc3333dddd4444",
                vec![ip("10.0.33.17"), ip("10.0.33.18")],
                Some("use1-az2")
            ),
        ],
        "the failed address in use1-az4 carries no traffic"
    );
    assert!(d.passed_over.is_empty());
    // Two ENIs under one gateway id: the topology takes them (the report and the metrics sum
    // them under the id).
    let topo = Topology::new(d.gateways, vec![]).unwrap();
    assert_eq!(topo.gateway_by_eni("eni-0cccc3333dddd4444"), Some(1));
}

#[test]
fn subnets_with_ipv6_blocks() {
    let page = parse::subnets(&data("describe-subnets.xml")).unwrap();
    let d = discovered(&[], &page.items);
    let got: Vec<_> = d
        .subnets
        .iter()
        .map(|(n, az)| (n.to_string(), az.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("10.0.0.0/19".to_string(), "use1-az1"),
            ("2001:db8:1234:1a00::/64".to_string(), "use1-az1"),
            ("10.0.64.0/19".to_string(), "use1-az2"),
        ],
        "the disassociated IPv6 block is not the subnet's"
    );
}

#[test]
fn errors_are_named() {
    let e = parse::nat_gateways(&data("error-unauthorized.xml")).unwrap_err();
    match &e {
        ParseError::Api { code, message } => {
            assert_eq!(code, "UnauthorizedOperation");
            assert!(message.contains("ec2:DescribeNatGateways"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let e = parse::subnets(&data("describe-nat-gateways-zonal.xml")).unwrap_err();
    assert!(e.to_string().contains("DescribeNatGatewaysResponse"), "{e}");
    assert!(parse::nat_gateways("not xml at all").is_err());
    let bad_ip = data("describe-nat-gateways-zonal.xml").replace("10.0.2.148", "10.0.2.999");
    let e = parse::nat_gateways(&bad_ip).unwrap_err();
    assert!(e.to_string().contains("10.0.2.999"), "{e}");
}
