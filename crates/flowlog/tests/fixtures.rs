//! Every public AWS example file parses with the format its own header line gives.

use std::net::IpAddr;

use flowlog::{Action, Field, Format, LogStatus};

fn load(name: &str) -> (Format, Vec<String>) {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    let format = Format::from_header(lines.next().unwrap()).unwrap();
    (format, lines.map(str::to_string).collect())
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn every_fixture_parses_completely() {
    for entry in std::fs::read_dir(format!("{}/tests/data", env!("CARGO_MANIFEST_DIR"))).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let (format, lines) = load(&name);
        assert_eq!(format.unknown_fields().count(), 0, "{name}");
        for (i, line) in lines.iter().enumerate() {
            let r = format
                .parse_line(line)
                .unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 2));
            for f in Field::ALL {
                if matches!(
                    f,
                    Field::SrcAddr | Field::DstAddr | Field::PktSrcAddr | Field::PktDstAddr
                ) {
                    r.ip(*f).unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 2));
                }
            }
            r.bytes().unwrap();
            r.packets().unwrap();
            r.action().unwrap();
            r.log_status().unwrap();
            r.flow_direction().unwrap();
            r.traffic_path().unwrap();
            r.protocol().unwrap();
        }
    }
}

#[test]
fn default_format_nodata_skipdata_icmp_and_ipv6() {
    let (format, lines) = load("aws-docs-default-format.log");
    assert_eq!(format, Format::default());
    let recs: Vec<_> = lines
        .iter()
        .map(|l| format.parse_line(l).unwrap())
        .collect();
    assert_eq!(recs[0].bytes().unwrap(), Some(4249));
    assert_eq!(recs[1].action().unwrap(), Some(Action::Reject));
    assert_eq!(recs[2].log_status().unwrap(), Some(LogStatus::NoData));
    assert_eq!(recs[2].ip(Field::SrcAddr).unwrap(), None);
    assert_eq!(recs[2].bytes().unwrap(), None);
    assert_eq!(recs[2].start().unwrap(), Some(1431280876));
    assert_eq!(recs[3].log_status().unwrap(), Some(LogStatus::SkipData));
    assert_eq!(recs[4].protocol().unwrap(), Some(1));
    assert_eq!(
        recs[6].ip(Field::DstAddr).unwrap(),
        ip("2001:db8:1234:a102:3304:8879:34cf:4071")
    );
}

#[test]
fn bytes_before_packets_and_double_space() {
    let (format, lines) = load("aws-docs-tcp-flags-v3.log");
    assert!(format.position(Field::Bytes) < format.position(Field::Packets));
    let first = format.parse_line(&lines[0]).unwrap();
    assert_eq!(first.bytes().unwrap(), Some(568));
    assert_eq!(first.packets().unwrap(), Some(8));
    let last_line = lines.last().unwrap();
    assert!(
        last_line.contains("  "),
        "the docs' double space is kept in the fixture"
    );
    let last = format.parse_line(last_line).unwrap();
    assert_eq!(last.port(Field::DstPort).unwrap(), Some(43638));
    assert_eq!(last.ip(Field::PktSrcAddr).unwrap(), ip("10.0.0.62"));
    assert_eq!(last.bytes().unwrap(), Some(967));
    assert_eq!(last.packets().unwrap(), Some(14));
    assert_eq!(last.u64(Field::TcpFlags).unwrap(), Some(19));
}

#[test]
fn v5_service_fields() {
    let (format, lines) = load("aws-docs-v5-service.log");
    let ingress = format.parse_line(&lines[0]).unwrap();
    assert_eq!(ingress.pkt_src_aws_service().unwrap(), Some("S3"));
    assert_eq!(ingress.pkt_dst_aws_service().unwrap(), None);
    assert_eq!(ingress.traffic_path().unwrap(), None);
    assert_eq!(
        ingress.flow_direction().unwrap(),
        Some(flowlog::FlowDirection::Ingress)
    );
    let egress = format.parse_line(&lines[1]).unwrap();
    assert_eq!(egress.pkt_dst_aws_service().unwrap(), Some("S3"));
    assert_eq!(egress.traffic_path().unwrap(), Some(8));
    assert_eq!(egress.get(Field::AzId), Some("apse2-az3"));
}

#[test]
fn nat_gateway_example_has_instance_id_dash_on_the_nat_eni() {
    let (format, lines) = load("aws-docs-nat-gateway.log");
    let a = format.parse_line(&lines[0]).unwrap();
    assert_eq!(a.get(Field::InstanceId), None);
    assert_eq!(a.interface_id(), Some("eni-1235b8ca123456789"));
    assert_eq!(a.ip(Field::PktDstAddr).unwrap(), ip("203.0.113.5"));
    let client = format.parse_line(&lines[4]).unwrap();
    assert_eq!(client.get(Field::InstanceId), Some("i-01234567890123456"));
}
