//! The NAT gateways being metered (their ENIs and private IPs) and the VPC's private ranges.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// The default private ranges: RFC 1918 plus the shared address space EKS custom networking
/// often uses.
pub const DEFAULT_PRIVATE_CIDRS: &str = "10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,100.64.0.0/10";

/// A gateway's `ConnectivityType`, as EC2 names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Connectivity {
    /// Translates to the internet: the far side of its traffic is public.
    #[default]
    Public,
    /// Translates to other private networks (peered VPCs, transit gateways, on premises): both
    /// sides of its traffic are private addresses.
    Private,
}

impl Connectivity {
    fn is_public(&self) -> bool {
        *self == Connectivity::Public
    }
}

/// One NAT gateway: the ENI whose flow records carry its traffic and every private IP it owns
/// (secondary IPs included: each is a NAT IP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatGateway {
    /// `nat-...`; the ENI id when none was configured (`--nat ENI=IP`).
    #[serde(default)]
    pub id: String,
    pub eni: String,
    pub private_ips: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub az_id: Option<String>,
    /// `public` (the default) or `private`.
    #[serde(default, skip_serializing_if = "Connectivity::is_public")]
    pub connectivity_type: Connectivity,
}

/// A configuration error, phrased for the person who wrote the configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TopologyError(pub String);

/// Gateways plus private CIDRs: everything attribution needs to know about the network.
#[derive(Debug, Clone)]
pub struct Topology {
    gateways: Vec<NatGateway>,
    private: Vec<IpNet>,
    /// The VPC's subnets and their AZs (`NATMETER_SUBNETS`), longest prefix first: where a
    /// source is, for the cross-AZ surcharge. Empty when not configured.
    subnets: Vec<(IpNet, String)>,
}

/// One subnet of `NATMETER_SUBNETS` / `--subnets`: `{"cidr":"10.0.32.0/19","az_id":"use1-az1"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subnet {
    pub cidr: String,
    pub az_id: String,
}

impl Topology {
    pub fn new(gateways: Vec<NatGateway>, private: Vec<IpNet>) -> Result<Topology, TopologyError> {
        let mut gateways = gateways;
        for (i, g) in gateways.iter_mut().enumerate() {
            let valid_eni = g
                .eni
                .strip_prefix("eni-")
                .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit()));
            if !valid_eni {
                return Err(TopologyError(format!(
                    "NAT gateway {}: eni {:?} is not an ENI id (expected eni- followed by hex digits)",
                    i + 1,
                    g.eni
                )));
            }
            if g.private_ips.is_empty() {
                return Err(TopologyError(format!(
                    "NAT gateway {} ({}): private_ips is empty; give at least the gateway's primary private IP",
                    i + 1,
                    g.eni
                )));
            }
            // The id becomes the NatGatewayId dimension value: CloudWatch takes 1-1024 printable
            // ASCII characters, and an id that is only spaces would be an invisible series.
            let valid_id = g.id.is_empty()
                || (g.id.len() <= 255 && g.id.bytes().all(|b| (0x21..0x7f).contains(&b)));
            if !valid_id {
                return Err(TopologyError(format!(
                    "NAT gateway {} ({}): id {:?} must be 1-255 printable ASCII characters without spaces, like nat-0a1b2c3d4e5f60718",
                    i + 1,
                    g.eni,
                    g.id.chars().take(64).collect::<String>()
                )));
            }
            if g.id.is_empty() {
                g.id = g.eni.clone();
            }
        }
        for (i, g) in gateways.iter().enumerate() {
            if gateways[..i].iter().any(|o| o.eni == g.eni) {
                return Err(TopologyError(format!(
                    "NAT gateway ENI {} is configured twice",
                    g.eni
                )));
            }
        }
        Ok(Topology {
            gateways,
            private,
            subnets: Vec::new(),
        })
    }

    /// Parses `NATMETER_SUBNETS`: a JSON list of subnets with their AZ ids.
    pub fn subnets_from_json(json: &str) -> Result<Vec<(IpNet, String)>, TopologyError> {
        let list: Vec<Subnet> = serde_json::from_str(json).map_err(|e| {
            TopologyError(format!(
                "not a JSON list of subnets like [{{\"cidr\":\"10.0.32.0/19\",\"az_id\":\"use1-az1\"}}]: {e}"
            ))
        })?;
        list.into_iter()
            .map(|s| {
                let net = s
                    .cidr
                    .parse::<IpNet>()
                    .map_err(|_| TopologyError(format!("subnet {:?} is not a CIDR", s.cidr)))?;
                if s.az_id.is_empty()
                    || !s
                        .az_id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                {
                    return Err(TopologyError(format!(
                        "subnet {}: az_id {:?} is not an AZ id like use1-az1",
                        s.cidr, s.az_id
                    )));
                }
                Ok((net.trunc(), s.az_id))
            })
            .collect()
    }

    /// The same topology knowing the VPC's subnets (longest prefix wins).
    pub fn with_subnets(mut self, mut subnets: Vec<(IpNet, String)>) -> Topology {
        subnets.sort_by(|a, b| {
            b.0.prefix_len()
                .cmp(&a.0.prefix_len())
                .then_with(|| a.0.cmp(&b.0))
        });
        self.subnets = subnets;
        self
    }

    /// The same private ranges and subnets with other gateways (discovered ones, docs/topology.md
    /// §2), validated as [`Topology::new`] validates them.
    pub fn with_gateways(&self, gateways: Vec<NatGateway>) -> Result<Topology, TopologyError> {
        let mut t = Topology::new(gateways, self.private.clone())?;
        t.subnets = self.subnets.clone();
        Ok(t)
    }

    /// The configured subnets, longest prefix first.
    pub fn subnets(&self) -> &[(IpNet, String)] {
        &self.subnets
    }

    /// The first gateway entry with gateway `gw`'s id: a regional gateway is one entry per ENI
    /// (each with its AZ), reported and published as one gateway.
    pub fn canonical_gateway(&self, gw: usize) -> usize {
        match self.gateways.get(gw) {
            Some(g) => self.gateways[..gw]
                .iter()
                .position(|o| o.id == g.id)
                .unwrap_or(gw),
            None => gw,
        }
    }

    /// Whether subnets were configured (cross-AZ is then known where both ends' AZs are).
    pub fn has_subnets(&self) -> bool {
        !self.subnets.is_empty()
    }

    /// The AZ id of the subnet holding `ip`.
    pub fn az_of(&self, ip: IpAddr) -> Option<&str> {
        self.subnets
            .iter()
            .find(|(n, _)| n.contains(&ip))
            .map(|(_, az)| az.as_str())
    }

    /// Whether `source`'s traffic through gateway `gw` crosses AZs: `None` when either AZ is
    /// unknown (the source outside every subnet, or the gateway without `az_id`).
    pub fn crosses_az(&self, source: IpAddr, gw: usize) -> Option<bool> {
        let from = self.az_of(source)?;
        let to = self.gateways.get(gw)?.az_id.as_deref()?;
        Some(from != to)
    }

    /// Parses the `NATMETER_NAT_GATEWAYS` JSON list.
    pub fn gateways_from_json(json: &str) -> Result<Vec<NatGateway>, TopologyError> {
        serde_json::from_str(json).map_err(|e| {
            TopologyError(format!(
                "not a JSON list of NAT gateways like [{{\"id\":\"nat-0a1b2c\",\"eni\":\"eni-0352f8c82da6aa229\",\"private_ips\":[\"10.0.5.175\"],\"az_id\":\"use1-az1\"}}]: {e}"
            ))
        })
    }

    /// Parses one `--nat ENI=IP[,IP...]` value.
    pub fn gateway_from_flag(flag: &str) -> Result<NatGateway, TopologyError> {
        let (eni, ips) = flag
            .split_once('=')
            .ok_or_else(|| TopologyError(format!("--nat {flag:?}: expected ENI=IP[,IP...]")))?;
        let private_ips = ips
            .split(',')
            .map(|ip| {
                ip.trim().parse::<IpAddr>().map_err(|_| {
                    TopologyError(format!("--nat {flag:?}: {ip:?} is not an IP address"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(NatGateway {
            id: String::new(),
            eni: eni.trim().to_string(),
            private_ips,
            az_id: None,
            connectivity_type: Connectivity::Public,
        })
    }

    /// Parses a comma list of CIDRs (`NATMETER_PRIVATE_CIDRS`).
    pub fn cidrs_from_list(list: &str) -> Result<Vec<IpNet>, TopologyError> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>().map_err(|_| {
                    TopologyError(format!(
                        "{s:?} is not a CIDR (expected a comma list like {DEFAULT_PRIVATE_CIDRS})"
                    ))
                })
            })
            .collect()
    }

    pub fn gateways(&self) -> &[NatGateway] {
        &self.gateways
    }

    /// The gateway whose ENI is `eni`. A linear scan: deployments have a handful of gateways,
    /// and comparing a few short strings beats hashing one.
    #[inline]
    pub fn gateway_by_eni(&self, eni: &str) -> Option<usize> {
        self.gateways.iter().position(|g| g.eni == eni)
    }

    /// True when `ip` is one of gateway `gw`'s private IPs.
    #[inline]
    pub fn is_nat_ip(&self, gw: usize, ip: IpAddr) -> bool {
        self.gateways[gw].private_ips.contains(&ip)
    }

    /// True when gateway `gw` is a private NAT gateway.
    #[inline]
    pub fn is_private_gateway(&self, gw: usize) -> bool {
        self.gateways[gw].connectivity_type == Connectivity::Private
    }

    /// The gateway owning private IP `ip`, if any.
    pub fn gateway_by_ip(&self, ip: IpAddr) -> Option<usize> {
        self.gateways
            .iter()
            .position(|g| g.private_ips.contains(&ip))
    }

    /// True when `ip` is in one of the private ranges.
    #[inline]
    pub fn is_private(&self, ip: IpAddr) -> bool {
        self.private.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets_place_addresses_in_azs() {
        let gws = Topology::gateways_from_json(
            r#"[{"id":"nat-a","eni":"eni-0a","private_ips":["10.0.0.5"],"az_id":"use1-az1"},{"id":"nat-b","eni":"eni-0b","private_ips":["10.0.32.5"]}]"#,
        )
        .unwrap();
        let subnets = Topology::subnets_from_json(
            r#"[{"cidr":"10.0.0.0/16","az_id":"use1-az9"},{"cidr":"10.0.32.0/19","az_id":"use1-az2"},{"cidr":"10.0.0.0/19","az_id":"use1-az1"}]"#,
        )
        .unwrap();
        let t = Topology::new(
            gws,
            Topology::cidrs_from_list(DEFAULT_PRIVATE_CIDRS).unwrap(),
        )
        .unwrap()
        .with_subnets(subnets);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // Longest prefix first, whatever the order given.
        assert_eq!(t.az_of(ip("10.0.33.7")), Some("use1-az2"));
        assert_eq!(t.az_of(ip("10.0.1.7")), Some("use1-az1"));
        assert_eq!(t.az_of(ip("10.0.200.7")), Some("use1-az9"));
        assert_eq!(t.az_of(ip("192.168.0.1")), None);
        assert_eq!(t.crosses_az(ip("10.0.33.7"), 0), Some(true));
        assert_eq!(t.crosses_az(ip("10.0.1.7"), 0), Some(false));
        assert_eq!(
            t.crosses_az(ip("10.0.1.7"), 1),
            None,
            "gateway without az_id"
        );
        assert_eq!(
            t.crosses_az(ip("192.168.0.1"), 0),
            None,
            "outside every subnet"
        );
        for bad in [
            r#"[{"cidr":"10.0.0.0/33","az_id":"use1-az1"}]"#,
            r#"[{"cidr":"10.0.0.0/16","az_id":""}]"#,
            r#"[{"cidr":"10.0.0.0/16","az":"use1-az1"}]"#,
            r#"{"cidr":"10.0.0.0/16"}"#,
        ] {
            assert!(Topology::subnets_from_json(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn json_and_flags() {
        let gws = Topology::gateways_from_json(
            r#"[{"id":"nat-0a1b2c","eni":"eni-0352f8c82da6aa229","private_ips":["10.0.5.175","10.0.5.176"],"az_id":"use1-az1"}]"#,
        )
        .unwrap();
        let t = Topology::new(
            gws,
            Topology::cidrs_from_list(DEFAULT_PRIVATE_CIDRS).unwrap(),
        )
        .unwrap();
        assert_eq!(t.gateway_by_eni("eni-0352f8c82da6aa229"), Some(0));
        assert!(t.is_nat_ip(0, "10.0.5.176".parse().unwrap()));
        assert!(t.is_private("100.64.3.4".parse().unwrap()));
        assert!(!t.is_private("203.0.113.5".parse().unwrap()));

        let g = Topology::gateway_from_flag("eni-1235b8ca123456789=10.0.0.220").unwrap();
        let t = Topology::new(vec![g], vec![]).unwrap();
        assert_eq!(t.gateways()[0].id, "eni-1235b8ca123456789");
        assert!(!t.is_private_gateway(0));

        let gws = Topology::gateways_from_json(
            r#"[{"eni":"eni-0a","private_ips":["10.0.5.9"],"connectivity_type":"private"}]"#,
        )
        .unwrap();
        assert_eq!(gws[0].connectivity_type, Connectivity::Private);
        assert!(Topology::gateways_from_json(
            r#"[{"eni":"eni-0a","private_ips":["10.0.5.9"],"connectivity_type":"secret"}]"#,
        )
        .is_err());
    }

    #[test]
    fn bad_configuration_is_explained() {
        assert!(Topology::gateways_from_json("{}")
            .unwrap_err()
            .0
            .starts_with("not a JSON list"));
        let bad = NatGateway {
            id: String::new(),
            eni: "nat-1".into(),
            private_ips: vec![],
            az_id: None,
            connectivity_type: Connectivity::Public,
        };
        assert!(Topology::new(vec![bad], vec![])
            .unwrap_err()
            .0
            .contains("not an ENI id"));
        assert!(Topology::gateway_from_flag("eni-1=10.0.0.x")
            .unwrap_err()
            .0
            .contains("not an IP address"));
        assert!(Topology::cidrs_from_list("10.0.0.0/8,nope")
            .unwrap_err()
            .0
            .contains("\"nope\" is not a CIDR"));
    }
}
