//! AWS's published address ranges (`ip-ranges.json`): which service and region an address
//! belongs to (docs/attribution.md §5.1).
//!
//! The file lists CIDRs, nested and repeated: `AMAZON` covers every AWS address, and a service's
//! prefix (`S3`, `EC2`, `DYNAMODB`...) repeats part of it. The most specific answer wins: the
//! longest prefix, and for one prefix listed twice a named service over `EC2` over `AMAZON`. The
//! lists are flattened once into sorted, disjoint ranges, so a lookup is one binary search.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Deserialize;

/// What an address is, by the ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsPrefix<'a> {
    pub service: &'a str,
    pub region: &'a str,
}

/// The ranges, flattened.
#[derive(Debug, Clone, Default)]
pub struct IpRanges {
    /// Interned (service, region) pairs; ranges point into it.
    pairs: Vec<(Box<str>, Box<str>)>,
    v4: Vec<(u32, u32, u32)>,
    v6: Vec<(u128, u128, u32)>,
    /// `createDate` of the file, for the log.
    pub create_date: String,
    /// Prefixes read (IPv4 and IPv6).
    pub prefixes: usize,
}

#[derive(Deserialize)]
struct File<'a> {
    #[serde(rename = "createDate", default)]
    create_date: String,
    #[serde(borrow, default)]
    prefixes: Vec<V4<'a>>,
    #[serde(borrow, default)]
    ipv6_prefixes: Vec<V6<'a>>,
}

#[derive(Deserialize)]
struct V4<'a> {
    ip_prefix: &'a str,
    region: &'a str,
    service: &'a str,
}

#[derive(Deserialize)]
struct V6<'a> {
    ipv6_prefix: &'a str,
    region: &'a str,
    service: &'a str,
}

/// Which of two services listed for one prefix is the more specific.
fn rank(service: &str) -> u8 {
    match service {
        "AMAZON" => 0,
        "EC2" => 1,
        _ => 2,
    }
}

/// Paints `[start, end]` with `v` over what is there (later paints are more specific).
fn paint<T: Copy + Ord + num::Step>(map: &mut BTreeMap<T, (T, u32)>, start: T, end: T, v: u32) {
    // Split an interval that straddles `start`, and one that straddles `end`.
    if let Some((&s, &(e, old))) = map.range(..start).next_back() {
        if e >= start {
            map.insert(s, (T::before(start), old));
            map.insert(start, (e, old));
        }
    }
    if let Some((&s, &(e, old))) = map.range(..=end).next_back() {
        if e > end {
            map.insert(s, (end, old));
            map.insert(T::after(end), (e, old));
        }
    }
    let covered: Vec<T> = map.range(start..=end).map(|(s, _)| *s).collect();
    for s in covered {
        map.remove(&s);
    }
    map.insert(start, (end, v));
}

/// Integer address arithmetic for [`paint`].
mod num {
    pub trait Step: Copy {
        fn before(self) -> Self;
        fn after(self) -> Self;
    }
    impl Step for u32 {
        fn before(self) -> Self {
            self - 1
        }
        fn after(self) -> Self {
            self + 1
        }
    }
    impl Step for u128 {
        fn before(self) -> Self {
            self - 1
        }
        fn after(self) -> Self {
            self + 1
        }
    }
}

impl IpRanges {
    /// Reads an `ip-ranges.json`. A prefix that does not parse is an error naming it: a file
    /// that is not AWS's is refused rather than half used.
    pub fn from_json(bytes: &[u8]) -> Result<IpRanges, String> {
        let file: File<'_> = serde_json::from_slice(bytes).map_err(|e| {
            format!("not an ip-ranges.json ({{\"prefixes\":[{{\"ip_prefix\",\"region\",\"service\"}}...]}}): {e}")
        })?;
        if file.prefixes.is_empty() && file.ipv6_prefixes.is_empty() {
            return Err("ip-ranges.json lists no prefix".into());
        }
        let mut out = IpRanges {
            create_date: file.create_date.clone(),
            prefixes: file.prefixes.len() + file.ipv6_prefixes.len(),
            ..IpRanges::default()
        };
        let mut pair_index: BTreeMap<(&str, &str), u32> = BTreeMap::new();
        let mut entries: Vec<(IpNet, u8, u32)> = Vec::with_capacity(out.prefixes);
        let all = file
            .prefixes
            .iter()
            .map(|p| (p.ip_prefix, p.region, p.service))
            .chain(
                file.ipv6_prefixes
                    .iter()
                    .map(|p| (p.ipv6_prefix, p.region, p.service)),
            );
        for (prefix, region, service) in all {
            let net: IpNet = prefix
                .parse()
                .map_err(|_| format!("ip-ranges.json: {prefix:?} is not a CIDR"))?;
            let next = pair_index.len() as u32;
            let id = *pair_index.entry((service, region)).or_insert_with(|| {
                out.pairs.push((service.into(), region.into()));
                next
            });
            entries.push((net.trunc(), rank(service), id));
        }
        // Least specific first: each paint overrides what it covers.
        entries.sort_by(|a, b| {
            (a.0.prefix_len(), a.1, &out.pairs[a.2 as usize]).cmp(&(
                b.0.prefix_len(),
                b.1,
                &out.pairs[b.2 as usize],
            ))
        });
        let (mut m4, mut m6) = (BTreeMap::new(), BTreeMap::new());
        for (net, _, id) in entries {
            match net {
                IpNet::V4(n) => paint(
                    &mut m4,
                    u32::from(n.network()),
                    u32::from(n.broadcast()),
                    id,
                ),
                IpNet::V6(n) => paint(
                    &mut m6,
                    u128::from(n.network()),
                    u128::from(n.broadcast()),
                    id,
                ),
            }
        }
        out.v4 = m4.into_iter().map(|(s, (e, v))| (s, e, v)).collect();
        out.v6 = m6.into_iter().map(|(s, (e, v))| (s, e, v)).collect();
        Ok(out)
    }

    /// The service and region of `ip`, when it is an AWS address.
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<AwsPrefix<'_>> {
        let id = match ip {
            IpAddr::V4(a) => find(&self.v4, u32::from(a)),
            IpAddr::V6(a) => find(&self.v6, u128::from(a)),
        }?;
        let (service, region) = &self.pairs[id as usize];
        Some(AwsPrefix { service, region })
    }

    /// Disjoint ranges after flattening (IPv4, IPv6).
    pub fn ranges(&self) -> (usize, usize) {
        (self.v4.len(), self.v6.len())
    }
}

fn find<T: Copy + Ord>(ranges: &[(T, T, u32)], a: T) -> Option<u32> {
    let i = ranges.partition_point(|r| r.0 <= a);
    let r = ranges.get(i.checked_sub(1)?)?;
    (a <= r.1).then_some(r.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"syncToken":"1","createDate":"2026-11-30-21-13-07","prefixes":[
        {"ip_prefix":"52.216.0.0/15","region":"us-east-1","service":"AMAZON","network_border_group":"us-east-1"},
        {"ip_prefix":"52.216.0.0/15","region":"us-east-1","service":"S3","network_border_group":"us-east-1"},
        {"ip_prefix":"52.216.8.0/24","region":"us-east-1","service":"EC2","network_border_group":"us-east-1"},
        {"ip_prefix":"3.5.0.0/19","region":"eu-west-1","service":"S3","network_border_group":"eu-west-1"},
        {"ip_prefix":"3.0.0.0/9","region":"GLOBAL","service":"AMAZON","network_border_group":"GLOBAL"}],
      "ipv6_prefixes":[
        {"ipv6_prefix":"2600:1f18::/33","region":"us-east-1","service":"AMAZON","network_border_group":"us-east-1"},
        {"ipv6_prefix":"2600:1f18:2000::/40","region":"us-east-1","service":"DYNAMODB","network_border_group":"us-east-1"}]}"#;

    fn at(r: &IpRanges, ip: &str) -> Option<(String, String)> {
        r.lookup(ip.parse().unwrap())
            .map(|p| (p.service.to_string(), p.region.to_string()))
    }

    #[test]
    fn the_most_specific_prefix_wins() {
        let r = IpRanges::from_json(SAMPLE.as_bytes()).unwrap();
        let p = |s: &str, g: &str| Some((s.to_string(), g.to_string()));
        assert_eq!(
            at(&r, "52.216.1.1"),
            p("S3", "us-east-1"),
            "S3 over AMAZON on one prefix"
        );
        assert_eq!(
            at(&r, "52.216.8.7"),
            p("EC2", "us-east-1"),
            "the longer prefix"
        );
        assert_eq!(at(&r, "52.217.255.255"), p("S3", "us-east-1"));
        assert_eq!(at(&r, "52.218.0.0"), None);
        assert_eq!(at(&r, "3.5.31.255"), p("S3", "eu-west-1"));
        assert_eq!(at(&r, "3.5.32.0"), p("AMAZON", "GLOBAL"));
        assert_eq!(at(&r, "3.0.0.0"), p("AMAZON", "GLOBAL"));
        assert_eq!(at(&r, "2.255.255.255"), None);
        assert_eq!(at(&r, "2600:1f18:20ff::1"), p("DYNAMODB", "us-east-1"));
        assert_eq!(at(&r, "2600:1f18:2100::1"), p("AMAZON", "us-east-1"));
        assert_eq!(r.prefixes, 7);
        assert_eq!(r.create_date, "2026-11-30-21-13-07");
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        assert!(IpRanges::from_json(b"{}")
            .unwrap_err()
            .contains("no prefix"));
        assert!(IpRanges::from_json(b"[1]")
            .unwrap_err()
            .contains("ip-ranges.json"));
        let bad = r#"{"prefixes":[{"ip_prefix":"52.216.0.0/33","region":"r","service":"S3"}]}"#;
        assert!(IpRanges::from_json(bad.as_bytes())
            .unwrap_err()
            .contains("52.216.0.0/33"));
    }

    /// The flattened ranges answer what a plain longest-prefix scan over the file answers, on
    /// random nested prefixes and random addresses (including every prefix's edges).
    #[test]
    fn flattening_agrees_with_a_longest_prefix_scan() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let services = ["AMAZON", "EC2", "S3", "DYNAMODB"];
        for round in 0..40 {
            let mut prefixes = Vec::new();
            for _ in 0..(5 + round) {
                let len = 8 + (next() % 17) as u8;
                // Few distinct networks, so that prefixes nest and repeat.
                let addr = ((next() % 4) as u32) << 28 | ((next() % 8) as u32) << 20;
                let net = ipnet::Ipv4Net::new(addr.into(), len).unwrap().trunc();
                let service = services[(next() % 4) as usize];
                let region = ["us-east-1", "eu-west-1"][(next() % 2) as usize];
                prefixes.push((net, service, region));
            }
            let json = serde_json::json!({"prefixes": prefixes.iter().map(|(n, s, r)| serde_json::json!({
                "ip_prefix": n.to_string(), "service": s, "region": r})).collect::<Vec<_>>()});
            let r = IpRanges::from_json(json.to_string().as_bytes()).unwrap();
            let naive = |ip: u32| {
                prefixes
                    .iter()
                    .filter(|(n, _, _)| n.contains(&std::net::Ipv4Addr::from(ip)))
                    .max_by(|a, b| {
                        (a.0.prefix_len(), rank(a.1), a.1, a.2).cmp(&(
                            b.0.prefix_len(),
                            rank(b.1),
                            b.1,
                            b.2,
                        ))
                    })
                    .map(|(_, s, g)| (s.to_string(), g.to_string()))
            };
            let mut probes: Vec<u32> = (0..200).map(|_| next() as u32 & 0x3fff_ffff).collect();
            for (n, _, _) in &prefixes {
                let (a, b) = (u32::from(n.network()), u32::from(n.broadcast()));
                probes.extend([a, b, a.wrapping_sub(1), b.wrapping_add(1)]);
            }
            for ip in probes {
                let got = at(&r, &std::net::Ipv4Addr::from(ip).to_string());
                assert_eq!(
                    got,
                    naive(ip),
                    "round {round}, {}",
                    std::net::Ipv4Addr::from(ip)
                );
            }
        }
    }
}
