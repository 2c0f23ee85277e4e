//! `IpRanges::from_json` on arbitrary input never panics, and whatever it accepts answers every
//! lookup as a plain longest-prefix scan over the same file does (docs/attribution.md §5.1):
//! the flattening into disjoint ranges loses and invents nothing.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use natmeter_core::ipranges::IpRanges;

fn rank(service: &str) -> u8 {
    match service {
        "AMAZON" => 0,
        "EC2" => 1,
        _ => 2,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(r) = IpRanges::from_json(data) else {
        return;
    };
    // The reader skips fields it does not use without validating them (serde's IgnoredAny): a
    // file can be accepted that a full JSON value parse refuses. Compare only what both read.
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let mut prefixes: Vec<(ipnet::IpNet, String, String)> = Vec::new();
    for (list, key) in [("prefixes", "ip_prefix"), ("ipv6_prefixes", "ipv6_prefix")] {
        for p in v[list].as_array().into_iter().flatten() {
            let net: ipnet::IpNet = p[key].as_str().unwrap().parse().unwrap();
            prefixes.push((
                net.trunc(),
                p["service"].as_str().unwrap().to_string(),
                p["region"].as_str().unwrap().to_string(),
            ));
        }
    }
    // Probe every prefix's edges and their neighbours.
    let mut probes: Vec<IpAddr> = Vec::new();
    for (n, _, _) in &prefixes {
        probes.push(n.network());
        probes.push(n.broadcast());
        match (n.network(), n.broadcast()) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                probes.push(IpAddr::V4(u32::from(a).wrapping_sub(1).into()));
                probes.push(IpAddr::V4(u32::from(b).wrapping_add(1).into()));
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                probes.push(IpAddr::V6(u128::from(a).wrapping_sub(1).into()));
                probes.push(IpAddr::V6(u128::from(b).wrapping_add(1).into()));
            }
            _ => unreachable!(),
        }
    }
    for ip in probes {
        let want = prefixes
            .iter()
            .filter(|(n, _, _)| n.contains(&ip))
            .max_by(|a, b| {
                (a.0.prefix_len(), rank(&a.1), &a.1, &a.2).cmp(&(b.0.prefix_len(), rank(&b.1), &b.1, &b.2))
            })
            .map(|(_, s, g)| (s.as_str(), g.as_str()));
        let got = r.lookup(ip).map(|p| (p.service, p.region));
        assert_eq!(got, want, "{ip}");
    }
});
