//! natmeter's view of the VPC from the EC2 API: the NAT gateways to meter (zonal and regional,
//! with every ENI and private IP) and the subnets' AZs (docs/topology.md §2).
//!
//! Two halves: [`parse`] and [`discovered`] are pure (recorded responses in, topology parts out,
//! tested without a network); [`client`] signs and sends the two read-only calls.

pub mod client;
pub mod parse;
pub mod s3;

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;
use natmeter_core::topology::{Connectivity, NatGateway};

use crate::parse::{AvailabilityMode, Gateway, Subnet};

/// What to describe: `NATMETER_VPC_IDS` and `NATMETER_NAT_GATEWAY_IDS` (either, or both: EC2
/// then returns the gateways that match both).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    pub vpc_ids: Vec<String>,
    pub nat_gateway_ids: Vec<String>,
}

/// The topology parts the API described.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Discovered {
    /// One entry per NAT ENI: a zonal gateway has one; a regional gateway one per AZ it serves,
    /// all under the gateway's id, each with its own AZ.
    pub gateways: Vec<NatGateway>,
    /// Each subnet CIDR (IPv4 and IPv6) with its AZ id.
    pub subnets: Vec<(IpNet, String)>,
    /// Gateways described but not metered, each with the reason (deleted, no ENI yet...).
    pub passed_over: Vec<String>,
    /// The VPCs the gateways are in (the subnets to describe when no VPC id was given).
    pub vpc_ids: Vec<String>,
}

/// The VPCs of `gateways`, in the order EC2 lists them, each once.
pub fn gateway_vpcs(gateways: &[Gateway]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in gateways.iter().filter_map(|g| g.vpc_id.as_ref()) {
        if !out.contains(v) {
            out.push(v.clone());
        }
    }
    out
}

/// States whose ENIs no longer carry traffic: EC2 keeps listing a deleted gateway for about an
/// hour.
const GONE: [&str; 3] = ["deleting", "deleted", "failed"];

/// Turns described gateways and subnets into topology parts. A zonal gateway's AZ is its
/// subnet's; a regional gateway's ENIs each take the AZ of their own address.
pub fn discovered(gateways: &[Gateway], subnets: &[Subnet]) -> Discovered {
    let az_of_subnet: HashMap<&str, &str> = subnets
        .iter()
        .filter_map(|s| Some((s.id.as_str(), s.availability_zone_id.as_deref()?)))
        .collect();
    let mut out = Discovered {
        vpc_ids: gateway_vpcs(gateways),
        ..Discovered::default()
    };
    for g in gateways {
        if let Some(state) = g.state.as_deref().filter(|s| GONE.contains(s)) {
            out.passed_over.push(format!("{}: state {state}", g.id));
            continue;
        }
        let connectivity_type = match g.connectivity_type.as_deref() {
            Some("private") => Connectivity::Private,
            _ => Connectivity::Public,
        };
        let zonal_az = g
            .subnet_id
            .as_deref()
            .and_then(|s| az_of_subnet.get(s))
            .map(|az| az.to_string());
        // ENIs in the order EC2 lists them, each with its addresses (a zonal gateway's secondary
        // private IPs are on its one ENI).
        let mut enis: Vec<(String, Vec<IpAddr>, Option<String>)> = Vec::new();
        for a in &g.addresses {
            if a.status.as_deref() == Some("failed") {
                continue;
            }
            let (Some(eni), Some(ip)) = (&a.network_interface_id, a.private_ip) else {
                continue;
            };
            let az = match g.availability_mode {
                AvailabilityMode::Regional => a.availability_zone_id.clone(),
                AvailabilityMode::Zonal => zonal_az.clone(),
            };
            match enis.iter_mut().find(|(e, _, _)| e == eni) {
                Some((_, ips, eni_az)) => {
                    if !ips.contains(&ip) {
                        ips.push(ip);
                    }
                    if eni_az.is_none() {
                        *eni_az = az;
                    }
                }
                None => enis.push((eni.clone(), vec![ip], az)),
            }
        }
        if enis.is_empty() {
            out.passed_over.push(format!(
                "{}: no network interface with a private IP yet (state {})",
                g.id,
                g.state.as_deref().unwrap_or("unknown")
            ));
            continue;
        }
        for (eni, private_ips, az_id) in enis {
            out.gateways.push(NatGateway {
                id: g.id.clone(),
                eni,
                private_ips,
                az_id,
                connectivity_type,
            });
        }
    }
    for s in subnets {
        if let Some(az) = &s.availability_zone_id {
            out.subnets.extend(s.cidrs.iter().map(|c| (*c, az.clone())));
        }
    }
    out
}
