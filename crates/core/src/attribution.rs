//! The attribution rules: which flow records are NAT-processed bytes, and whose.
//!
//! A conversation through a NAT gateway appears four times on the gateway's ENI (docs/attribution.md §2):
//!
//! ```text
//!   pod 10.0.1.5 ──(A)──► NAT 10.0.0.220 ──(B)──► 203.0.113.5
//!   pod 10.0.1.5 ◄──(D)── NAT 10.0.0.220 ◄──(C)── 203.0.113.5
//! ```
//!
//! The gateway bills the bytes it processes in both directions, and those are exactly the
//! private-side records (A) and (D). (B) and (C) are the same bytes seen on the public side and
//! client-ENI records are the same bytes again, so counting only (A) and (D) counts every
//! processed byte once.

use std::net::IpAddr;

use flowlog::{Action, Field, Format, LogStatus, Record, RecordError};

use crate::topology::Topology;

/// Direction of processed bytes, from the VPC's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Direction {
    /// Pod → NAT → remote: record (A), the NAT's `BytesInFromSource`.
    Outbound,
    /// Remote → NAT → pod: record (D), the NAT's `BytesOutToSource`.
    Inbound,
}

impl Direction {
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Outbound => "outbound",
            Direction::Inbound => "inbound",
        }
    }
}

/// Why a record adds no NAT cost. Each is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SkipReason {
    /// (B) or (C), or any NAT-ENI record that is not a private-side traversal.
    PublicSide,
    /// A record of an ENI that is not a configured NAT gateway.
    NotNat,
    /// `action` REJECT: dropped traffic is not processed.
    Rejected,
    /// `log-status` NODATA: no traffic in the capture window.
    NoData,
    /// `log-status` SKIPDATA: the flow log dropped records for capacity. Unlike NODATA this is lost
    /// traffic, so natmeter undercounts the window (docs/attribution.md, skip reasons).
    SkipData,
    /// A traversal record without bytes.
    ZeroBytes,
    /// A private NAT gateway's record under a format without pkt-srcaddr/pkt-dstaddr. Both sides
    /// of a private gateway are private addresses, so its public-side records (B)/(C) look exactly
    /// like (A)/(D) to the fallback rule and counting them would count every byte twice
    /// (docs/attribution.md, the fallback). Refused, counted, and explained by a diagnostic.
    Ambiguous,
}

impl SkipReason {
    pub const ALL: [SkipReason; 7] = [
        SkipReason::PublicSide,
        SkipReason::NotNat,
        SkipReason::Rejected,
        SkipReason::NoData,
        SkipReason::SkipData,
        SkipReason::ZeroBytes,
        SkipReason::Ambiguous,
    ];

    /// The `Reason` dimension value and report key.
    pub const fn as_str(self) -> &'static str {
        match self {
            SkipReason::PublicSide => "public_side",
            SkipReason::NotNat => "not_nat",
            SkipReason::Rejected => "rejected",
            SkipReason::NoData => "no_data",
            SkipReason::SkipData => "skip_data",
            SkipReason::ZeroBytes => "zero_bytes",
            SkipReason::Ambiguous => "ambiguous",
        }
    }
}

/// Where counted bytes went (outbound) or came from (inbound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination<'a> {
    /// An AWS service named by `pkt-*-aws-service` (S3, DYNAMODB, ...: an open list).
    Service(&'a str),
    /// A public address no AWS service claims.
    Internet,
    /// The far side of a private NAT gateway: another private network.
    Private,
    /// The format has no `pkt-*-aws-service` fields.
    Unknown,
}

impl Destination<'_> {
    pub fn as_str(&self) -> &str {
        match self {
            Destination::Service(s) => s,
            Destination::Internet => "INTERNET",
            Destination::Private => "PRIVATE",
            Destination::Unknown => "UNKNOWN",
        }
    }
}

/// One counted NAT traversal: processed bytes of one record, tagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traversal<'a> {
    pub gateway: usize,
    pub direction: Direction,
    /// The pod (or node, under default EKS SNAT) inside the VPC.
    pub source: IpAddr,
    /// The party outside; `None` without pkt-* fields.
    pub remote: Option<IpAddr>,
    pub destination: Destination<'a>,
    /// The remote's region by AWS's ranges (docs/attribution.md §5.1); `None` without them.
    pub region: Option<&'a str>,
    /// The remote's /24 (IPv6: /48) when remote prefixes are on and no AWS service owns it
    /// (docs/attribution.md §5.3).
    pub prefix: Option<ipnet::IpNet>,
    pub bytes: u64,
    pub packets: u64,
    /// Start of the flow's minute, Unix seconds.
    pub minute: i64,
    /// The record's own `start`, or the context's fallback time (the log event's timestamp):
    /// the time a source's identity is decided at.
    pub time: i64,
    /// `end` of the capture window, when the format has it (freshness).
    pub end: Option<u64>,
}

/// Result of applying the rules to one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome<'a> {
    Counted(Traversal<'a>),
    Skipped(SkipReason),
}

/// What the format offers, computed once per format rather than per record.
#[derive(Debug, Clone, Copy)]
pub struct Capabilities {
    pub interface_id: bool,
    pub pkt_addrs: bool,
    pub aws_service: bool,
}

impl Capabilities {
    pub fn of(format: &Format) -> Capabilities {
        Capabilities {
            interface_id: format.has(Field::InterfaceId),
            pkt_addrs: format.has(Field::PktSrcAddr) && format.has(Field::PktDstAddr),
            aws_service: format.has(Field::PktSrcAwsService) || format.has(Field::PktDstAwsService),
        }
    }
}

/// Per-batch context of the rules.
#[derive(Debug, Clone, Copy)]
pub struct Context<'t> {
    pub topology: &'t Topology,
    pub caps: Capabilities,
    /// The gateway named by the batch's log stream, when the stream is a NAT ENI's.
    pub stream_gateway: Option<usize>,
    /// Time to bucket by when the record has no `start`: the log event timestamp, or the time
    /// the caller was given, in Unix seconds.
    pub fallback_time: i64,
}

/// Applies docs/attribution.md §2-§3 to one record. Precedence of skip reasons: NODATA, SKIPDATA, then not a
/// NAT ENI, then REJECT, then a private gateway without pkt-* fields (ambiguous), then public
/// side, then zero bytes.
pub fn attribute<'a>(rec: &Record<'a>, ctx: &Context<'_>) -> Result<Outcome<'a>, RecordError> {
    use Outcome::Skipped;
    match rec.log_status()? {
        Some(LogStatus::NoData) => return Ok(Skipped(SkipReason::NoData)),
        Some(LogStatus::SkipData) => return Ok(Skipped(SkipReason::SkipData)),
        _ => {}
    }
    let topo = ctx.topology;
    let src = rec.ip(Field::SrcAddr)?;
    let dst = rec.ip(Field::DstAddr)?;

    let gateway = if ctx.caps.interface_id {
        match rec.interface_id() {
            Some(eni) => topo.gateway_by_eni(eni),
            None => return Err(RecordError::missing(Field::InterfaceId)),
        }
    } else {
        // Without interface-id, a NAT IP in the addresses is the only evidence of the ENI.
        ctx.stream_gateway.or_else(|| {
            dst.and_then(|d| topo.gateway_by_ip(d))
                .or_else(|| src.and_then(|s| topo.gateway_by_ip(s)))
        })
    };
    let Some(gateway) = gateway else {
        return Ok(Skipped(SkipReason::NotNat));
    };
    if rec.action()? == Some(Action::Reject) {
        return Ok(Skipped(SkipReason::Rejected));
    }
    let src = src.ok_or_else(|| RecordError::missing(Field::SrcAddr))?;
    let dst = dst.ok_or_else(|| RecordError::missing(Field::DstAddr))?;

    let pkt = if ctx.caps.pkt_addrs {
        match (rec.ip(Field::PktSrcAddr)?, rec.ip(Field::PktDstAddr)?) {
            (Some(s), Some(d)) => Some((s, d)),
            _ => None,
        }
    } else {
        None
    };
    let traversal = match pkt {
        Some((pkt_src, pkt_dst)) => classify_with_pkt(topo, gateway, src, dst, pkt_src, pkt_dst),
        None if topo.is_private_gateway(gateway) => return Ok(Skipped(SkipReason::Ambiguous)),
        None => classify_without_pkt(topo, gateway, src, dst),
    };
    let Some((direction, source, remote)) = traversal else {
        return Ok(Skipped(SkipReason::PublicSide));
    };
    let bytes = rec.bytes()?.unwrap_or(0);
    if bytes == 0 {
        return Ok(Skipped(SkipReason::ZeroBytes));
    }
    let destination = if !ctx.caps.aws_service {
        Destination::Unknown
    } else {
        let service = match direction {
            Direction::Outbound => rec.pkt_dst_aws_service()?,
            Direction::Inbound => rec.pkt_src_aws_service()?,
        };
        let far_side = if topo.is_private_gateway(gateway) {
            Destination::Private
        } else {
            Destination::Internet
        };
        service.map_or(far_side, Destination::Service)
    };
    let time = match rec.start()? {
        Some(s) => i64::try_from(s).unwrap_or(i64::MAX),
        None => ctx.fallback_time,
    };
    Ok(Outcome::Counted(Traversal {
        gateway,
        direction,
        source,
        remote,
        destination,
        region: None,
        prefix: None,
        bytes,
        packets: rec.packets()?.unwrap_or(0),
        minute: time - time.rem_euclid(60),
        time,
        end: rec.end()?,
    }))
}

/// Rules (A) and (D) with the packet's own addresses.
///
/// (A) outbound: `dstaddr` is a NAT IP and `pkt-dstaddr` differs from it: the packet was headed
/// past the gateway. The local party is `pkt-srcaddr` (the pod, or its node under SNAT).
/// (D) inbound: `srcaddr` is a NAT IP and `pkt-srcaddr` differs from it: the gateway is handing
/// a remote party's packet to `pkt-dstaddr`.
/// (B) has `pkt-srcaddr == srcaddr == NAT IP`, (C) has `pkt-dstaddr == dstaddr == NAT IP`: both
/// fall through as public side.
#[inline]
fn classify_with_pkt(
    topo: &Topology,
    gw: usize,
    src: IpAddr,
    dst: IpAddr,
    pkt_src: IpAddr,
    pkt_dst: IpAddr,
) -> Option<(Direction, IpAddr, Option<IpAddr>)> {
    if topo.is_nat_ip(gw, dst) && pkt_dst != dst {
        Some((Direction::Outbound, pkt_src, Some(pkt_dst)))
    } else if topo.is_nat_ip(gw, src) && pkt_src != src {
        Some((Direction::Inbound, pkt_dst, Some(pkt_src)))
    } else {
        None
    }
}

/// The fallback without pkt-* fields (e.g. the default format): only the private CIDR list tells
/// the private side from the public side. (A): `dstaddr` is a NAT IP and `srcaddr` is private.
/// (D): `srcaddr` is a NAT IP and `dstaddr` is private. The remote party is unknown.
#[inline]
fn classify_without_pkt(
    topo: &Topology,
    gw: usize,
    src: IpAddr,
    dst: IpAddr,
) -> Option<(Direction, IpAddr, Option<IpAddr>)> {
    if topo.is_nat_ip(gw, dst) && topo.is_private(src) && !topo.is_nat_ip(gw, src) {
        Some((Direction::Outbound, src, None))
    } else if topo.is_nat_ip(gw, src) && topo.is_private(dst) && !topo.is_nat_ip(gw, dst) {
        Some((Direction::Inbound, dst, None))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topology::{NatGateway, DEFAULT_PRIVATE_CIDRS};

    const NAT_EXAMPLE: &str = include_str!("../tests/data/aws-docs-nat-gateway.log");

    fn topology() -> Topology {
        Topology::new(
            vec![NatGateway {
                id: "nat-example".into(),
                eni: "eni-1235b8ca123456789".into(),
                private_ips: vec!["10.0.0.220".parse().unwrap()],
                az_id: None,
                connectivity_type: Default::default(),
            }],
            Topology::cidrs_from_list(DEFAULT_PRIVATE_CIDRS).unwrap(),
        )
        .unwrap()
    }

    /// The AWS example has no bytes field; append one so the rules can count.
    fn with_bytes(format: &str, line: &str, bytes: u64) -> (Format, String) {
        (
            Format::parse(&format!("{format} bytes")).unwrap(),
            format!("{line} {bytes}"),
        )
    }

    fn run(format: &Format, line: &str, topo: &Topology) -> Outcome<'static> {
        let line: &'static str = Box::leak(line.to_string().into_boxed_str());
        let ctx = Context {
            topology: topo,
            caps: Capabilities::of(format),
            stream_gateway: None,
            fallback_time: 90,
        };
        attribute(&format.parse_line(line).unwrap(), &ctx).unwrap()
    }

    fn example(i: usize) -> (Format, String) {
        let mut lines = NAT_EXAMPLE.lines();
        let header = lines.next().unwrap();
        with_bytes(header, lines.nth(i).unwrap(), 1000)
    }

    #[test]
    fn rule_a_outbound_counts_the_private_side_upload() {
        let (f, l) = example(0);
        let Outcome::Counted(t) = run(&f, &l, &topology()) else {
            panic!()
        };
        assert_eq!(t.direction, Direction::Outbound);
        assert_eq!(t.source, "10.0.1.5".parse::<IpAddr>().unwrap());
        assert_eq!(t.remote, Some("203.0.113.5".parse().unwrap()));
        assert_eq!(t.destination, Destination::Unknown);
        assert_eq!((t.bytes, t.minute), (1000, 60));
    }

    #[test]
    fn rules_b_and_c_are_the_public_side() {
        for i in [1, 2] {
            let (f, l) = example(i);
            assert_eq!(
                run(&f, &l, &topology()),
                Outcome::Skipped(SkipReason::PublicSide),
                "line {i}"
            );
        }
    }

    #[test]
    fn rule_d_inbound_counts_the_private_side_download() {
        let (f, l) = example(3);
        let Outcome::Counted(t) = run(&f, &l, &topology()) else {
            panic!()
        };
        assert_eq!(t.direction, Direction::Inbound);
        assert_eq!(t.source, "10.0.1.5".parse::<IpAddr>().unwrap());
        assert_eq!(t.remote, Some("203.0.113.5".parse().unwrap()));
    }

    #[test]
    fn client_eni_records_are_not_nat() {
        for i in [4, 5] {
            let (f, l) = example(i);
            assert_eq!(
                run(&f, &l, &topology()),
                Outcome::Skipped(SkipReason::NotNat)
            );
        }
    }

    #[test]
    fn fallback_without_pkt_fields_uses_private_ranges() {
        let f = Format::parse("interface-id srcaddr dstaddr bytes").unwrap();
        let t = topology();
        let eni = "eni-1235b8ca123456789";
        let out = run(&f, &format!("{eni} 10.0.1.5 10.0.0.220 10"), &t);
        assert!(matches!(
            out,
            Outcome::Counted(Traversal {
                direction: Direction::Outbound,
                remote: None,
                ..
            })
        ));
        assert_eq!(
            run(&f, &format!("{eni} 10.0.0.220 203.0.113.5 10"), &t),
            Outcome::Skipped(SkipReason::PublicSide)
        );
        assert_eq!(
            run(&f, &format!("{eni} 203.0.113.5 10.0.0.220 10"), &t),
            Outcome::Skipped(SkipReason::PublicSide)
        );
        let out = run(&f, &format!("{eni} 10.0.0.220 10.0.1.5 10"), &t);
        assert!(matches!(
            out,
            Outcome::Counted(Traversal {
                direction: Direction::Inbound,
                ..
            })
        ));
    }

    #[test]
    fn default_format_fixture_skips() {
        let text = include_str!("../tests/data/aws-docs-default-format.log");
        let mut lines = text.lines();
        let f = Format::from_header(lines.next().unwrap()).unwrap();
        // Pretend the example ENI is a NAT gateway with IP 172.31.16.139 to exercise the skips.
        let t = Topology::new(
            vec![NatGateway {
                id: String::new(),
                eni: "eni-1235b8ca123456789".into(),
                private_ips: vec!["172.31.16.21".parse().unwrap()],
                az_id: None,
                connectivity_type: Default::default(),
            }],
            Topology::cidrs_from_list(DEFAULT_PRIVATE_CIDRS).unwrap(),
        )
        .unwrap();
        let outcomes: Vec<_> = lines.map(|l| run(&f, l, &t)).collect();
        assert!(matches!(
            outcomes[0],
            Outcome::Counted(Traversal {
                direction: Direction::Outbound,
                bytes: 4249,
                minute: 1418529960,
                ..
            })
        ));
        assert_eq!(outcomes[1], Outcome::Skipped(SkipReason::Rejected));
        assert_eq!(outcomes[2], Outcome::Skipped(SkipReason::NoData));
        assert_eq!(outcomes[3], Outcome::Skipped(SkipReason::SkipData));
        assert_eq!(outcomes[4], Outcome::Skipped(SkipReason::PublicSide));
        assert_eq!(outcomes[5], Outcome::Skipped(SkipReason::Rejected));
        assert_eq!(outcomes[6], Outcome::Skipped(SkipReason::PublicSide));
    }

    #[test]
    fn aws_service_names_the_destination() {
        let text = include_str!("../tests/data/aws-docs-v5-service.log");
        let mut lines = text.lines();
        let f = Format::from_header(lines.next().unwrap()).unwrap();
        // Treat the example instance ENI as a NAT whose IP is 10.0.0.71 to see both services.
        let t = Topology::new(
            vec![NatGateway {
                id: String::new(),
                eni: "eni-1235b8ca123456789".into(),
                private_ips: vec!["10.0.0.71".parse().unwrap()],
                az_id: None,
                connectivity_type: Default::default(),
            }],
            vec![],
        )
        .unwrap();
        // Line 1: S3 → 10.0.0.71 with pkt addresses equal: public side (C) from the NAT's view.
        assert_eq!(
            run(&f, lines.next().unwrap(), &t),
            Outcome::Skipped(SkipReason::PublicSide)
        );
        let line = "5 10.0.1.9 10.0.0.71 34210 80 6 1616729292 1616729349 IPv4 7 471 123456789012 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 - eni-1235b8ca123456789 ap-southeast-2 apse2-az3 - - ACCEPT 3 10.0.1.9 52.95.128.179 - S3 - ingress OK";
        let Outcome::Counted(tr) = run(&f, line, &t) else {
            panic!()
        };
        assert_eq!(tr.destination, Destination::Service("S3"));
        assert_eq!(tr.minute, 1616729280);
        let line = "5 10.0.1.9 10.0.0.71 34210 80 6 1616729292 1616729349 IPv4 7 471 123456789012 vpc-abcdefab012345678 subnet-aaaaaaaa012345678 - eni-1235b8ca123456789 ap-southeast-2 apse2-az3 - - ACCEPT 3 10.0.1.9 52.95.128.179 - - - ingress OK";
        let Outcome::Counted(tr) = run(&f, line, &t) else {
            panic!()
        };
        assert_eq!(tr.destination, Destination::Internet);
    }

    #[test]
    fn secondary_nat_ip_counts() {
        let (f, _) = example(0);
        let t = Topology::new(
            vec![NatGateway {
                id: String::new(),
                eni: "eni-1235b8ca123456789".into(),
                private_ips: vec!["10.0.0.220".parse().unwrap(), "10.0.0.221".parse().unwrap()],
                az_id: None,
                connectivity_type: Default::default(),
            }],
            vec![],
        )
        .unwrap();
        let out = run(
            &f,
            "- eni-1235b8ca123456789 10.0.1.5 10.0.0.221 10.0.1.5 203.0.113.5 7",
            &t,
        );
        assert!(matches!(out, Outcome::Counted(Traversal { bytes: 7, .. })));
    }
}
