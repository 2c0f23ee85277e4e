//! The simulated cluster against itself: its audit log is shaped as EKS writes it, its plan
//! keeps to the identity rule (an address has one holder at a time, and is reused quickly), its
//! traffic starts only inside a holder's tenancy, and its truth per identity adds up. Whether the
//! engine reports that truth is crates/core's test; these check only the simulator.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::net::{IpAddr, Ipv4Addr};

use base64::Engine as _;
use natmeter_core::inventory::rfc3339_micros;
use natmeter_sim::{simulate, ClusterConfig, Scope, SimConfig, Simulation, Truth, SIM_FIELDS};
use serde_json::Value;

fn with_cluster(seed: u64, external_snat: bool) -> SimConfig {
    SimConfig {
        seed,
        external_snat,
        cluster: Some(ClusterConfig::default()),
        ..SimConfig::default()
    }
}

fn lines(sim: &Simulation) -> Vec<Value> {
    sim.audit
        .iter()
        .map(|l| serde_json::from_str(&l.json).expect("an audit line is JSON"))
        .collect()
}

fn micros(v: &Value, key: &str) -> i64 {
    let s = v[key].as_str().unwrap_or_default();
    rfc3339_micros(s).unwrap_or_else(|| panic!("{key} {s:?} is not RFC 3339"))
}

fn ok(v: &Value) -> bool {
    v["responseStatus"]["code"]
        .as_i64()
        .is_some_and(|c| (200..300).contains(&c))
}

fn is_pod_ip(ip: &str) -> bool {
    ip.parse::<Ipv4Addr>()
        .is_ok_and(|a| a.octets()[..2] == [10, 0] && a.octets()[2] >= 128)
}

/// Who claimed which pod address when, read back from the audit lines: claims per address
/// (time, uid) in time order, and each pod's end (final delete or terminal phase).
struct Claims {
    by_ip: BTreeMap<String, Vec<(i64, String)>>,
    end: BTreeMap<String, i64>,
}

impl Claims {
    fn of(sim: &Simulation) -> Claims {
        let mut c = Claims {
            by_ip: BTreeMap::new(),
            end: BTreeMap::new(),
        };
        for v in lines(sim).iter().filter(|v| ok(v)) {
            let t = micros(v, "stageTimestamp");
            let r = &v["requestObject"];
            let pods = v["objectRef"]["resource"] == "pods";
            if pods && v["objectRef"]["subresource"] == "status" {
                let uid = r["metadata"]["uid"].as_str().unwrap().to_string();
                if let Some(ip) = r["status"]["podIP"].as_str().filter(|ip| is_pod_ip(ip)) {
                    c.by_ip.entry(ip.into()).or_default().push((t, uid.clone()));
                }
                if matches!(r["status"]["phase"].as_str(), Some("Succeeded" | "Failed")) {
                    let e = c.end.entry(uid).or_insert(t);
                    *e = (*e).min(t);
                }
            } else if pods && v["verb"] == "delete" && r["gracePeriodSeconds"] == 0 {
                let uid = r["preconditions"]["uid"].as_str().unwrap().to_string();
                let e = c.end.entry(uid).or_insert(t);
                *e = (*e).min(t);
            }
        }
        for v in c.by_ip.values_mut() {
            v.sort();
        }
        c
    }

    /// The tenancies of an address: (from, until, uid), until the pod's end or the next claim.
    fn tenancies(&self, ip: &str) -> Vec<(i64, i64, &str)> {
        let v = self.by_ip.get(ip).map(Vec::as_slice).unwrap_or_default();
        v.iter()
            .enumerate()
            .map(|(i, (from, uid))| {
                let next = v.get(i + 1).map_or(i64::MAX, |n| n.0);
                let end = self.end.get(uid).copied().unwrap_or(i64::MAX);
                (*from, end.min(next), uid.as_str())
            })
            .collect()
    }
}

fn decode(event_json: &str) -> Value {
    let v: Value = serde_json::from_str(event_json).unwrap();
    let data = base64::engine::general_purpose::STANDARD
        .decode(v["awslogs"]["data"].as_str().unwrap())
        .unwrap();
    let mut s = String::new();
    flate2::read::GzDecoder::new(&data[..])
        .read_to_string(&mut s)
        .unwrap();
    serde_json::from_str(&s).unwrap()
}

/// The NAT-processed records, (A) and (D): (local address, start, bytes).
fn nat_records(sim: &Simulation) -> Vec<(IpAddr, i64, u64)> {
    let nat_ips: Vec<IpAddr> = sim
        .gateways
        .iter()
        .flat_map(|g| g.private_ips.clone())
        .collect();
    let field = |f: &str| SIM_FIELDS.iter().position(|x| *x == f).unwrap();
    let mut out = Vec::new();
    for e in &sim.events {
        if !sim
            .gateways
            .iter()
            .any(|g| e.log_stream.starts_with(&g.eni))
        {
            continue;
        }
        for le in decode(&e.json)["logEvents"].as_array().unwrap() {
            let f: Vec<&str> = le["message"].as_str().unwrap().split(' ').collect();
            if f.len() != SIM_FIELDS.len() || f[field("action")] != "ACCEPT" {
                continue;
            }
            let addr = |name| f[field(name)].parse::<IpAddr>();
            let (Ok(src), Ok(dst), Ok(ps), Ok(pd)) = (
                addr("srcaddr"),
                addr("dstaddr"),
                addr("pkt-srcaddr"),
                addr("pkt-dstaddr"),
            ) else {
                continue;
            };
            let Ok(bytes) = f[field("bytes")].parse::<u64>() else {
                continue;
            };
            let start: i64 = f[field("start")].parse().unwrap();
            let local = if nat_ips.contains(&dst) && pd != dst {
                ps
            } else if nat_ips.contains(&src) && ps != src {
                pd
            } else {
                continue;
            };
            if bytes > 0 {
                out.push((local, start, bytes));
            }
        }
    }
    out
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    let run = |seed| {
        let sim = simulate(&with_cluster(seed, true));
        let events: Vec<String> = sim.events.iter().map(|e| e.json.clone()).collect();
        let audit: Vec<String> = sim
            .audit_events(100_000)
            .iter()
            .map(|e| format!("{} {}", e.file_name, e.json))
            .collect();
        (
            sim.audit_jsonl(),
            audit,
            events,
            serde_json::to_string(&sim.truth).unwrap(),
        )
    };
    let a = run(5);
    assert!(!a.0.is_empty());
    assert_eq!(a, run(5));
    let b = run(6);
    assert_ne!(a.0, b.0, "another seed, another audit log");
    assert_ne!(a.3, b.3, "another seed, another truth");
}

#[test]
fn identities_add_up_to_the_totals() {
    for seed in 1..=4 {
        for snat in [true, false] {
            for (pods, nodes, minutes) in [(40, 4, 5), (1, 1, 1), (120, 6, 12)] {
                let cfg = SimConfig {
                    pods,
                    nodes,
                    minutes,
                    scope: if seed % 2 == 0 {
                        Scope::NatEnis
                    } else {
                        Scope::Vpc
                    },
                    ..with_cluster(seed, snat)
                };
                let t = simulate(&cfg).truth;
                let ids = &t.identities;
                let sum =
                    |f: fn(&natmeter_sim::TruthIdentity) -> u64| ids.iter().map(f).sum::<u64>();
                assert_eq!(
                    sum(|i| i.outbound_bytes),
                    t.totals.outbound_bytes,
                    "{cfg:?}"
                );
                assert_eq!(sum(|i| i.inbound_bytes), t.totals.inbound_bytes, "{cfg:?}");
                assert_eq!(sum(|i| i.bytes), t.totals.bytes, "{cfg:?}");
                for i in ids {
                    assert_eq!(i.bytes, i.outbound_bytes + i.inbound_bytes);
                }
                let keys: BTreeSet<_> = ids
                    .iter()
                    .map(|i| (&i.namespace, &i.kind, &i.name))
                    .collect();
                assert_eq!(keys.len(), ids.len(), "one entry per identity");
                let sorted = ids.windows(2).all(|w| {
                    (
                        std::cmp::Reverse(w[0].bytes),
                        &w[0].namespace,
                        &w[0].kind,
                        &w[0].name,
                    ) <= (
                        std::cmp::Reverse(w[1].bytes),
                        &w[1].namespace,
                        &w[1].kind,
                        &w[1].name,
                    )
                });
                assert!(sorted, "biggest first, then by name: {ids:?}");
            }
        }
    }
}

#[test]
fn audit_lines_are_eks_audit_events() {
    let cfg = with_cluster(3, true);
    let max_delay_ms = cfg.cluster.as_ref().unwrap().max_audit_delay_secs * 1000;
    let sim = simulate(&cfg);
    assert!(sim.audit.len() > 100, "{} lines", sim.audit.len());
    let mut ids = BTreeSet::new();
    for (l, v) in sim.audit.iter().zip(lines(&sim)) {
        assert!(!l.json.contains('\n'));
        assert_eq!(v["kind"], "Event", "{}", l.json);
        assert_eq!(v["apiVersion"], "audit.k8s.io/v1");
        assert_eq!(v["stage"], "ResponseComplete");
        assert!(matches!(
            v["level"].as_str(),
            Some("Metadata" | "Request" | "RequestResponse")
        ));
        let id = v["auditID"].as_str().unwrap();
        assert_eq!(id.len(), 36);
        assert!(ids.insert(id.to_string()), "auditID {id} twice");
        assert!(v["requestURI"].as_str().unwrap().starts_with("/api"));
        assert!(!v["verb"].as_str().unwrap().is_empty());
        assert!(!v["user"]["username"].as_str().unwrap().is_empty());
        assert!(v["user"]["groups"].is_array() && v["sourceIPs"].is_array());
        assert!(v["userAgent"].is_string());
        let r = &v["objectRef"];
        assert!(r["resource"].is_string() && r["apiVersion"] == "v1", "{r}");
        assert!(v["responseStatus"]["code"].is_i64());
        let stage = v["stageTimestamp"].as_str().unwrap();
        assert_eq!(stage.len(), "2025-12-01T00:03:12.351234Z".len(), "{stage}");
        let t = micros(&v, "stageTimestamp");
        assert!(micros(&v, "requestReceivedTimestamp") <= t);
        assert_eq!(t.div_euclid(1000), l.stage_time_ms);
        assert!((l.stage_time_ms..=l.stage_time_ms + max_delay_ms).contains(&l.delivered_at_ms));
        let hex = l.log_stream.strip_prefix("kube-apiserver-audit-").unwrap();
        assert!(
            hex.len() == 32
                && hex
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        );
        if v["verb"] == "create" && r["subresource"].is_null() {
            // A controller's pod is named by generateName: only its response has the name.
            let generated = v["responseObject"]["metadata"]["generateName"].is_string();
            assert_eq!(r["name"] == "", generated, "{}", l.json);
        }
    }
    assert!(sim
        .audit
        .windows(2)
        .all(|w| w[0].delivered_at_ms <= w[1].delivered_at_ms));
    let jsonl = sim.audit_jsonl();
    assert_eq!(jsonl.lines().count(), sim.audit.len());
    assert!(jsonl.ends_with('\n'));
    assert_eq!(jsonl.lines().next(), Some(sim.audit[0].json.as_str()));
}

#[test]
fn the_log_has_requests_the_rule_must_pass_over() {
    let sim = simulate(&with_cluster(1, true));
    let kinds: BTreeSet<String> = lines(&sim)
        .iter()
        .map(|v| {
            format!(
                "{} {}/{} {}",
                v["verb"].as_str().unwrap(),
                v["objectRef"]["resource"].as_str().unwrap(),
                v["objectRef"]["subresource"].as_str().unwrap_or(""),
                v["responseStatus"]["code"]
            )
        })
        .collect();
    for want in [
        "get pods/ 200",
        "list pods/ 200",
        "get pods/log 200",
        "update configmaps/ 200",
        "update leases/ 200",
        "create pods/binding 201",
        "patch pods/ 200",
        "delete pods/ 409",
        "patch nodes/status 200",
    ] {
        assert!(kinds.contains(want), "no {want:?} in {kinds:?}");
    }
}

#[test]
fn a_released_address_is_claimed_again_within_a_minute() {
    let sim = simulate(&with_cluster(1, true));
    let c = Claims::of(&sim);
    let mut reuses = Vec::new();
    for (ip, claims) in &c.by_ip {
        for w in claims.windows(2) {
            let ((_, a), (next, b)) = (&w[0], &w[1]);
            if a == b {
                continue;
            }
            let released = *c.end.get(a).expect("a claim is followed only after an end");
            if *next - released <= 60_000_000 {
                reuses.push((ip.clone(), *next - released));
            }
        }
    }
    assert!(
        reuses.len() >= 3,
        "released addresses are handed on within 60 s: {reuses:?}"
    );
}

#[test]
fn an_address_has_one_holder_at_a_time() {
    for seed in 1..=3 {
        for (pods, nodes) in [(40, 4), (150, 3), (5, 1)] {
            let sim = simulate(&SimConfig {
                pods,
                nodes,
                minutes: 8,
                ..with_cluster(seed, true)
            });
            let c = Claims::of(&sim);
            for (ip, claims) in &c.by_ip {
                for w in claims.windows(2) {
                    let ((_, a), (next, b)) = (&w[0], &w[1]);
                    assert_ne!(a, b, "{ip}: one pod reports its address once");
                    let end = c.end.get(a).copied();
                    assert!(
                        end.is_some_and(|e| e < *next),
                        "{ip}: claimed by {b} at {next} while {a} held it (ended {end:?})"
                    );
                }
            }
        }
    }
}

#[test]
fn pod_traffic_starts_inside_a_tenancy() {
    for seed in 1..=3 {
        let sim = simulate(&with_cluster(seed, true));
        let c = Claims::of(&sim);
        let mut pods = 0;
        for (local, start, _) in nat_records(&sim) {
            let ip = local.to_string();
            if !is_pod_ip(&ip) {
                continue;
            }
            pods += 1;
            // The whole second of the start lies in one tenancy: no hand-over within it.
            let (s, e) = (start * 1_000_000, start * 1_000_000 + 999_999);
            let inside = c
                .tenancies(&ip)
                .iter()
                .any(|&(from, until, _)| from <= s && e < until);
            assert!(inside, "{ip} at {start}: {:?}", c.tenancies(&ip));
        }
        assert!(pods > 100, "{pods} pod records");
    }
}

#[test]
fn lost_creates_leave_their_deletes() {
    let sim = simulate(&with_cluster(1, true));
    let v = lines(&sim);
    let uid_of = |v: &Value| -> Option<String> {
        v["responseObject"]["metadata"]["uid"]
            .as_str()
            .or(v["requestObject"]["metadata"]["uid"].as_str())
            .map(str::to_string)
    };
    let created: BTreeSet<String> = v
        .iter()
        .filter(|v| v["verb"] == "create" && v["objectRef"]["subresource"].is_null())
        .filter_map(uid_of)
        .collect();
    let patched: BTreeSet<String> = v
        .iter()
        .filter(|v| {
            v["objectRef"]["subresource"] == "status" && v["objectRef"]["resource"] == "pods"
        })
        .filter_map(uid_of)
        .collect();
    let lost: Vec<&String> = patched.difference(&created).collect();
    assert!(!lost.is_empty(), "the default drops some creates");
    for uid in lost {
        let deletes: Vec<&Value> = v
            .iter()
            .filter(|v| v["verb"] == "delete" && ok(v))
            .filter(|v| v["responseObject"]["metadata"]["uid"] == uid.as_str())
            .collect();
        let graceful = deletes
            .iter()
            .find(|d| d["requestObject"]["gracePeriodSeconds"] != 0);
        let graceful = graceful.unwrap_or_else(|| panic!("{uid}: no graceful delete"));
        let meta = &graceful["responseObject"]["metadata"];
        assert!(meta["name"].is_string() && meta["namespace"].is_string());
        assert!(deletes
            .iter()
            .any(|d| d["requestObject"]["gracePeriodSeconds"] == 0));
    }
}

#[test]
fn delivery_is_late_and_out_of_order() {
    let sim = simulate(&with_cluster(1, true));
    let stage: Vec<i64> = sim.audit.iter().map(|l| l.stage_time_ms).collect();
    let inversions = stage.windows(2).filter(|w| w[0] > w[1]).count();
    assert!(
        inversions > stage.len() / 4,
        "{inversions} of {}",
        stage.len()
    );
    let late = sim
        .audit
        .iter()
        .filter(|l| l.delivered_at_ms - l.stage_time_ms > 60_000)
        .count();
    assert!(late > sim.audit.len() / 2);
    let streams: BTreeSet<&str> = sim.audit.iter().map(|l| l.log_stream.as_str()).collect();
    assert!(streams.len() >= 2, "{streams:?}");
    // Without a delay each line is delivered at its stage time.
    let mut cfg = with_cluster(1, true);
    cfg.cluster.as_mut().unwrap().max_audit_delay_secs = 0;
    let prompt = simulate(&cfg);
    assert!(prompt
        .audit
        .iter()
        .all(|l| l.delivered_at_ms == l.stage_time_ms));
}

#[test]
fn rolled_out_deployments_have_two_template_hashes() {
    let sim = simulate(&with_cluster(1, true));
    let mut hashes: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for v in lines(&sim) {
        let pod = &v["responseObject"];
        if pod["kind"] != "Pod" {
            continue;
        }
        let Some(owner) = pod["metadata"]["ownerReferences"]
            .as_array()
            .and_then(|o| o.iter().find(|o| o["controller"] == true))
        else {
            continue;
        };
        let Some(hash) = pod["metadata"]["labels"]["pod-template-hash"].as_str() else {
            continue;
        };
        assert_eq!(owner["kind"], "ReplicaSet");
        let rs = owner["name"].as_str().unwrap();
        let deployment = rs
            .strip_suffix(hash)
            .and_then(|d| d.strip_suffix('-'))
            .unwrap_or_else(|| panic!("ReplicaSet {rs} is not <deployment>-{hash}"));
        let name = pod["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with(&format!("{rs}-")), "{name}");
        hashes
            .entry(deployment.into())
            .or_default()
            .insert(hash.into());
    }
    for d in ["web", "api"] {
        assert_eq!(hashes[d].len(), 2, "{d}: {hashes:?}");
    }
    assert_eq!(hashes["coredns"].len(), 1, "coredns does not roll out");
}

#[test]
fn the_default_cluster_has_every_kind() {
    let sim = simulate(&with_cluster(1, true));
    let kinds: BTreeSet<&str> = sim
        .truth
        .identities
        .iter()
        .map(|i| i.kind.as_str())
        .collect();
    for k in [
        "Deployment",
        "StatefulSet",
        "CronJob",
        "Job",
        "ReplicaSet",
        "Pod",
        "Node",
        "Unresolved",
    ] {
        assert!(kinds.contains(k), "no {k} in {kinds:?}");
    }
    let v = lines(&sim);
    // The DaemonSet is hostNetwork: its pods report the node's address as their own.
    let host_network = v.iter().any(|v| {
        let s = &v["requestObject"]["status"];
        v["objectRef"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("node-agent-"))
            && s["podIP"].is_string()
            && s["podIP"] == s["hostIP"]
    });
    assert!(host_network);
    // A StatefulSet pod comes back under its name with a new uid.
    let mut sts: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for v in &v {
        if v["objectRef"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("db-"))
            && v["objectRef"]["subresource"] == "status"
        {
            sts.entry(v["objectRef"]["name"].as_str().unwrap())
                .or_default()
                .insert(v["requestObject"]["metadata"]["uid"].as_str().unwrap());
        }
    }
    assert!(sts.values().any(|uids| uids.len() == 2), "{sts:?}");
    // CronJob pods: Jobs named by their scheduled minute, ending with phase Succeeded.
    let start_minute = SimConfig::default().start / 60;
    let mut succeeded = 0;
    for v in &v {
        let name = v["objectRef"]["name"].as_str().unwrap_or_default();
        if let Some(rest) = name.strip_prefix("report-") {
            let minute: i64 = rest.split('-').next().unwrap().parse().unwrap();
            assert!(
                (start_minute - 3..start_minute + 5).contains(&minute),
                "{name}"
            );
            succeeded += usize::from(v["requestObject"]["status"]["phase"] == "Succeeded");
        }
    }
    assert!(succeeded >= 5, "{succeeded} report pods succeeded");
}

#[test]
fn with_node_snat_every_byte_is_a_nodes_or_unresolved() {
    for seed in 1..=3 {
        let sim = simulate(&with_cluster(seed, false));
        let nodes: BTreeSet<String> = lines(&sim)
            .iter()
            .filter(|v| v["objectRef"]["resource"] == "nodes")
            .map(|v| v["objectRef"]["name"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(nodes.len(), 4);
        let ids = &sim.truth.identities;
        assert!(ids.iter().any(|i| i.kind == "Node"));
        for i in ids {
            match i.kind.as_str() {
                "Node" => assert!(nodes.contains(&i.name) && i.namespace.is_empty(), "{i:?}"),
                "Unresolved" => assert!(i.name.is_empty() && i.namespace.is_empty()),
                _ => panic!("{i:?} under node SNAT"),
            }
        }
        // The nodes' addresses are theirs from before the first record.
        let first = nat_records(&sim).iter().map(|r| r.1).min().unwrap();
        for v in lines(&sim)
            .iter()
            .filter(|v| v["objectRef"]["resource"] == "nodes")
        {
            if v["requestObject"]["status"]["addresses"].is_array() {
                assert!(micros(v, "stageTimestamp") < first * 1_000_000);
            }
        }
    }
    let mut cfg = with_cluster(1, false);
    cfg.cluster.as_mut().unwrap().unknown_sources = false;
    let sim = simulate(&cfg);
    assert!(sim.truth.identities.iter().all(|i| i.kind == "Node"));
}

#[test]
fn without_a_cluster_there_is_no_audit_and_no_identity() {
    let sim = simulate(&SimConfig::default());
    assert!(sim.audit.is_empty() && sim.truth.identities.is_empty());
    assert_eq!(sim.audit_jsonl(), "");
    assert!(sim.audit_events(1_000_000).is_empty());
    let json = serde_json::to_string(&sim.truth).unwrap();
    assert!(!json.contains("identities"), "truth.json is as it was");
    let back: Truth = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sim.truth);
    assert!(SimConfig::default().cluster.is_none());
}

#[test]
fn audit_events_carry_the_lines_per_stream() {
    let sim = simulate(&with_cluster(2, true));
    let max = 20_000;
    let events = sim.audit_events(max);
    assert!(events.len() > 10);
    let mut got: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for e in &events {
        assert!(
            e.decoded_bytes <= max,
            "{} decodes to {}",
            e.file_name,
            e.decoded_bytes
        );
        let p = decode(&e.json);
        assert_eq!(p["messageType"], "DATA_MESSAGE");
        assert_eq!(p["owner"], "123456789012");
        assert_eq!(p["logGroup"], "/aws/eks/sim/cluster");
        assert_eq!(p["logStream"], e.log_stream.as_str());
        assert_eq!(sim.audit_log_group(), "/aws/eks/sim/cluster");
        for le in p["logEvents"].as_array().unwrap() {
            got.entry(e.log_stream.clone()).or_default().push((
                le["timestamp"].as_i64().unwrap(),
                le["message"].as_str().unwrap().to_string(),
            ));
        }
    }
    let mut want: BTreeMap<String, Vec<(i64, String)>> = BTreeMap::new();
    for l in &sim.audit {
        want.entry(l.log_stream.clone())
            .or_default()
            .push((l.stage_time_ms, l.json.clone()));
    }
    assert_eq!(
        got, want,
        "every line once, in delivery order within its stream"
    );
}
