//! Names from the EKS audit log, end to end through the engine (docs/attribution.md §4.2,
//! docs/contracts.md §1): audit events shaped as EKS writes them, delivered backwards, name the
//! flow records of one NAT gateway at each record's own time; the report's `workloads`,
//! `identity` and per-source names are exactly what the identity rule says, whatever the
//! delivery order and however the work was split between threads.

use natmeter_core::engine::{Attributor, Results};
use natmeter_core::flowlog::Format;
use natmeter_core::inventory::Inventory;
use natmeter_core::report::{By, Report};
use natmeter_core::sources::{Input, Reader, Text};
use natmeter_core::topology::{NatGateway, Topology, DEFAULT_PRIVATE_CIDRS};
use serde_json::{json, Value};

const ENI: &str = "eni-0a1b2c3d4e5f60001";
const NAT_IP: &str = "10.0.0.220";
const NODE: &str = "ip-10-0-1-5.ec2.internal";
/// 2025-12-01T01:00:00Z
const T0: i64 = 1_764_550_800;

fn topology() -> Topology {
    Topology::new(
        vec![NatGateway {
            id: "nat-a".into(),
            eni: ENI.into(),
            private_ips: vec![NAT_IP.parse().unwrap()],
            az_id: None,
            connectivity_type: Default::default(),
        }],
        Topology::cidrs_from_list(DEFAULT_PRIVATE_CIDRS).unwrap(),
    )
    .unwrap()
}

fn format() -> Format {
    Format::from_aws_syntax(
        "${interface-id} ${srcaddr} ${dstaddr} ${pkt-srcaddr} ${pkt-dstaddr} ${bytes} ${packets} \
         ${start} ${end} ${action} ${log-status}",
    )
    .unwrap()
}

/// `T0 + secs` (with a fraction) as an audit timestamp.
fn stamp(secs: f64) -> String {
    let micros = (T0 as f64 * 1e6 + secs * 1e6).round() as i64;
    let s = micros.div_euclid(1_000_000);
    let us = micros.rem_euclid(1_000_000);
    let (day, rem) = (s.div_euclid(86_400), s.rem_euclid(86_400));
    assert_eq!(day, T0 / 86_400, "tests stay within 2025-12-01");
    format!(
        "2025-12-01T{:02}:{:02}:{:02}.{us:06}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn event(secs: f64, verb: &str, user: &str, object_ref: Value, extra: Value) -> String {
    let mut e = json!({
        "kind": "Event",
        "apiVersion": "audit.k8s.io/v1",
        "level": "Request",
        "auditID": format!("a-{secs}-{verb}"),
        "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/x/pods",
        "verb": verb,
        "user": {"username": user, "groups": ["system:authenticated"]},
        "sourceIPs": ["10.0.1.5"],
        "userAgent": "kubelet/v1.31.2-eks-7f9249a (linux/amd64) kubernetes/7f9249a",
        "objectRef": object_ref,
        "responseStatus": {"metadata": {}, "code": 200},
        "requestReceivedTimestamp": stamp(secs - 0.004),
        "stageTimestamp": stamp(secs),
    });
    for (k, v) in extra.as_object().unwrap() {
        e[k] = v.clone();
    }
    e.to_string()
}

/// A Pod object as a create's or delete's `responseObject`.
fn pod_object(
    ns: &str,
    name: &str,
    uid: &str,
    owner: Option<(&str, &str)>,
    hash: Option<&str>,
    host_network: bool,
) -> Value {
    let mut labels = json!({"app": "x"});
    if let Some(h) = hash {
        labels["pod-template-hash"] = json!(h);
    }
    let owners: Vec<Value> = owner
        .iter()
        .map(|(kind, name)| json!({"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": "owner-uid", "controller": true, "blockOwnerDeletion": true}))
        .collect();
    json!({
        "kind": "Pod", "apiVersion": "v1",
        "metadata": {"name": name, "generateName": format!("{name}-"), "namespace": ns, "uid": uid, "labels": labels, "ownerReferences": owners},
        "spec": {"nodeName": NODE, "hostNetwork": host_network, "containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Pending", "qosClass": "BestEffort"}
    })
}

fn create(secs: f64, object: Value) -> String {
    let ns = object["metadata"]["namespace"]
        .as_str()
        .unwrap()
        .to_string();
    event(
        secs,
        "create",
        "system:serviceaccount:kube-system:replicaset-controller",
        // A controller's create uses generateName: the name is only in the response.
        json!({"resource": "pods", "namespace": ns, "name": "", "apiVersion": "v1"}),
        json!({"level": "RequestResponse", "requestObject": {"kind": "Pod"}, "responseObject": object, "responseStatus": {"metadata": {}, "code": 201}}),
    )
}

fn status(secs: f64, ns: &str, name: &str, uid: &str, status: Value) -> String {
    event(
        secs,
        "patch",
        &format!("system:node:{NODE}"),
        json!({"resource": "pods", "namespace": ns, "name": name, "apiVersion": "v1", "subresource": "status"}),
        json!({"requestObject": {"metadata": {"uid": uid}, "status": status}}),
    )
}

fn delete(secs: f64, ns: &str, name: &str, uid: &str, grace: i64, object: Value) -> String {
    let user = if grace == 0 {
        format!("system:node:{NODE}")
    } else {
        "system:serviceaccount:kube-system:replicaset-controller".to_string()
    };
    event(
        secs,
        "delete",
        &user,
        json!({"resource": "pods", "namespace": ns, "name": name, "apiVersion": "v1"}),
        json!({"level": "RequestResponse", "requestObject": {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": grace, "preconditions": {"uid": uid}}, "responseObject": object}),
    )
}

fn running(ip: &str, host_ip: &str) -> Value {
    json!({"hostIP": host_ip, "podIP": ip, "podIPs": [{"ip": ip}], "phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]})
}

/// The audit log of the scenario, in the order it happened.
fn audit() -> Vec<String> {
    let web = pod_object(
        "shop",
        "web-7d4b9c8f6d-x2x9k",
        "u-web",
        Some(("ReplicaSet", "web-7d4b9c8f6d")),
        Some("7d4b9c8f6d"),
        false,
    );
    let report = pod_object(
        "batch",
        "report-29410560-q8zvl",
        "u-report",
        Some(("Job", "report-29410560")),
        None,
        false,
    );
    let agent = pod_object(
        "kube-system",
        "fluent-bit-5x7kq",
        "u-agent",
        Some(("DaemonSet", "fluent-bit")),
        None,
        true,
    );
    vec![
        event(
            -600.0,
            "patch",
            &format!("system:node:{NODE}"),
            json!({"resource": "nodes", "name": NODE, "apiVersion": "v1", "subresource": "status"}),
            json!({"requestObject": {"status": {"addresses": [{"type": "InternalIP", "address": "10.0.1.5"}, {"type": "InternalDNS", "address": NODE}, {"type": "Hostname", "address": NODE}]}}}),
        ),
        create(-120.0, web.clone()),
        status(
            -119.0,
            "shop",
            "web-7d4b9c8f6d-x2x9k",
            "u-web",
            json!({"hostIP": "10.0.1.5", "phase": "Pending"}),
        ),
        // The address is the pod's from 10.4 s: a record whose start is second 10 is its.
        status(
            10.4,
            "shop",
            "web-7d4b9c8f6d-x2x9k",
            "u-web",
            running("10.0.1.23", "10.0.1.5"),
        ),
        create(20.0, agent),
        status(
            21.0,
            "kube-system",
            "fluent-bit-5x7kq",
            "u-agent",
            running("10.0.1.5", "10.0.1.5"),
        ),
        // A graceful delete does not end it; the kubelet's final one does.
        delete(
            300.0,
            "shop",
            "web-7d4b9c8f6d-x2x9k",
            "u-web",
            30,
            web.clone(),
        ),
        delete(330.0, "shop", "web-7d4b9c8f6d-x2x9k", "u-web", 0, web),
        // The address again, 15 s after its release, for a CronJob's pod whose create was lost.
        status(
            345.0,
            "batch",
            "report-29410560-q8zvl",
            "u-report",
            running("10.0.1.23", "10.0.1.5"),
        ),
        status(
            400.0,
            "batch",
            "report-29410560-q8zvl",
            "u-report",
            json!({"phase": "Succeeded"}),
        ),
        delete(
            460.0,
            "batch",
            "report-29410560-q8zvl",
            "u-report",
            0,
            report,
        ),
        // The kubelet's final delete, retried after it succeeded: refused (409), its response a
        // Status whose `status` is a string. Changes nothing.
        event(
            331.0,
            "delete",
            &format!("system:node:{NODE}"),
            json!({"resource": "pods", "namespace": "shop", "name": "web-7d4b9c8f6d-x2x9k", "apiVersion": "v1"}),
            json!({"level": "RequestResponse", "requestObject": {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0, "preconditions": {"uid": "u-web"}},
                   "responseStatus": {"metadata": {}, "status": "Failure", "reason": "Conflict", "code": 409},
                   "responseObject": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "Conflict", "code": 409}}),
        ),
        // Said nothing about addresses: ignored.
        event(
            50.0,
            "get",
            "system:node:x",
            json!({"resource": "pods", "namespace": "shop", "name": "web-7d4b9c8f6d-x2x9k", "apiVersion": "v1"}),
            json!({}),
        ),
        event(
            51.0,
            "create",
            "admin",
            json!({"resource": "pods", "namespace": "shop", "name": "web-7d4b9c8f6d-x2x9k", "apiVersion": "v1", "subresource": "exec"}),
            json!({}),
        ),
    ]
}

/// Flow records through the gateway: (A) outbound from `ip`, or (D) inbound to it.
fn flows() -> Vec<String> {
    let rec = |ip: &str, bytes: u64, start: i64, inbound: bool| {
        let (s, e) = (T0 + start, T0 + start + 50);
        if inbound {
            format!("{ENI} {NAT_IP} {ip} 203.0.113.5 {ip} {bytes} 1 {s} {e} ACCEPT OK")
        } else {
            format!("{ENI} {ip} {NAT_IP} {ip} 203.0.113.5 {bytes} 1 {s} {e} ACCEPT OK")
        }
    };
    vec![
        rec("10.0.1.23", 7, 9, false),      // before the claim: unresolved
        rec("10.0.1.23", 1000, 10, false),  // the claim's own second: web
        rec("10.0.1.23", 2100, 320, true),  // gracefully deleted, still running: web
        rec("10.0.1.23", 5, 335, false),    // after the final delete: unresolved
        rec("10.0.1.23", 3000, 350, false), // the reused address: the CronJob's pod
        rec("10.0.1.23", 13, 400, false),   // the Job's pod Succeeded at 400: unresolved
        rec("10.0.1.5", 500, 100, false),   // the node itself
        rec("10.0.9.9", 11, 100, false),    // never claimed: unresolved
    ]
}

fn run(
    inventory: &Inventory,
    lines: &[String],
    results: &mut Results,
    attributor: &Attributor<'_>,
) {
    let text = lines.join("\n") + "\n";
    let input = Input::Text(Text {
        bytes: text.as_bytes(),
        format: None,
        origin: "flows.log",
        first_line: 1,
        fallback_time: 0,
    });
    let _ = inventory;
    attributor
        .ingest(input, &mut Reader::default(), results)
        .unwrap();
}

fn inventory_of(lines: &[String]) -> Inventory {
    let mut inv = Inventory::default();
    for l in lines {
        inv.add_line(l.as_bytes()).unwrap();
    }
    inv
}

#[test]
fn the_report_names_workloads_at_each_records_time() {
    let topo = topology();
    let mut lines = audit();
    lines.reverse();
    let inv = inventory_of(&lines);
    let attributor = Attributor::new(&topo, format()).with_resolver(&inv);
    let mut results = attributor.results();
    run(&inv, &flows(), &mut results, &attributor);
    let report = Report::build_named(&results, &topo, 0.045);

    let workloads: Vec<(&str, &str, &str, u64, u64, u64)> = report
        .workloads
        .as_ref()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w.namespace.as_str(),
                w.kind.as_str(),
                w.name.as_str(),
                w.outbound_bytes,
                w.inbound_bytes,
                w.pods,
            )
        })
        .collect();
    assert_eq!(
        workloads,
        vec![
            ("shop", "Deployment", "web", 1000, 2100, 1),
            ("batch", "CronJob", "report", 3000, 0, 1),
            ("", "Node", NODE, 500, 0, 0),
            ("", "Unresolved", "", 7 + 5 + 13 + 11, 0, 0),
        ]
    );
    let id = report.identity.as_ref().unwrap();
    assert_eq!(
        (id.resolved_bytes, id.node_bytes, id.unresolved_bytes),
        (6100, 500, 36)
    );
    assert_eq!(
        id.resolved_bytes + id.node_bytes + id.unresolved_bytes,
        report.totals.bytes
    );

    // One address, three holders over time: three rows, each with its names.
    type Held<'a> = (Option<&'a str>, Option<&'a str>, Option<&'a str>, u64);
    let reused: Vec<Held<'_>> = report
        .sources
        .iter()
        .filter(|r| r.source == "10.0.1.23")
        .map(|r| (r.holder, r.workload.as_deref(), r.pod.as_deref(), r.bytes))
        .collect();
    assert_eq!(
        reused,
        vec![
            (
                Some("pod"),
                Some("Deployment/web"),
                Some("web-7d4b9c8f6d-x2x9k"),
                3100
            ),
            (
                Some("pod"),
                Some("CronJob/report"),
                Some("report-29410560-q8zvl"),
                3000
            ),
            (Some("unresolved"), None, None, 25),
        ]
    );
    let web = report
        .sources
        .iter()
        .find(|r| r.pod.as_deref() == Some("web-7d4b9c8f6d-x2x9k"))
        .unwrap();
    assert_eq!(
        (web.namespace.as_deref(), web.node.as_deref()),
        (Some("shop"), Some(NODE))
    );
    let node = report
        .sources
        .iter()
        .find(|r| r.source == "10.0.1.5")
        .unwrap();
    assert_eq!(
        (node.holder, node.node.as_deref(), node.pod.as_deref()),
        (Some("node"), Some(NODE), None)
    );

    // The by-namespace rows and CSV.
    let ns: Vec<(String, u64)> = report
        .groups(By::Namespace)
        .into_iter()
        .map(|g| (g.label, g.bytes))
        .collect();
    assert_eq!(
        ns,
        vec![
            ("shop".into(), 3100),
            ("batch".into(), 3000),
            ("(nodes)".into(), 500),
            ("(unresolved)".into(), 36)
        ]
    );
    assert_eq!(
        report
            .to_csv_by(By::Workload)
            .lines()
            .take(2)
            .collect::<Vec<_>>(),
        vec![
            "namespace,kind,name,outbound_bytes,inbound_bytes,bytes,cost_usd,pods",
            "shop,Deployment,web,1000,2100,3100,0.000000,1",
        ]
    );
    let table = report.to_table(10);
    assert!(
        table.starts_with("NAT Gateway processed bytes by workload"),
        "{table}"
    );
    assert!(table.contains("shop/Deployment/web"), "{table}");
    assert!(
        table.contains("went through nodes"),
        "the SNAT explanation: {table}"
    );
}

#[test]
fn delivery_order_and_threads_do_not_change_the_names() {
    let topo = topology();
    let flows = flows();
    let in_order = inventory_of(&audit());
    let want = {
        let a = Attributor::new(&topo, format()).with_resolver(&in_order);
        let mut r = a.results();
        run(&in_order, &flows, &mut r, &a);
        serde_json::to_string(&Report::build_named(&r, &topo, 0.045)).unwrap()
    };
    // Every rotation of the audit log, and the records split between two "threads" whose
    // results merge the other way round.
    let lines = audit();
    for k in 0..lines.len() {
        let mut rotated = lines.clone();
        rotated.rotate_left(k);
        let inv = inventory_of(&rotated);
        let a = Attributor::new(&topo, format()).with_resolver(&inv);
        let (mut first, mut second) = (a.results(), a.results());
        run(&inv, &flows[k % flows.len()..], &mut first, &a);
        run(&inv, &flows[..k % flows.len()], &mut second, &a);
        second.merge(&first);
        let got = serde_json::to_string(&Report::build_named(&second, &topo, 0.045)).unwrap();
        assert_eq!(got, want, "rotation {k}");
    }
}

#[test]
fn snat_hides_pods_behind_their_node() {
    // Under the CNI's default SNAT the gateway sees the node's address: the node is the source,
    // even while pods run on it.
    let topo = topology();
    let inv = inventory_of(&audit());
    let a = Attributor::new(&topo, format()).with_resolver(&inv);
    let mut r = a.results();
    let rec = format!(
        "{ENI} 10.0.1.5 {NAT_IP} 10.0.1.5 203.0.113.5 4096 1 {} {} ACCEPT OK",
        T0 + 200,
        T0 + 250
    );
    run(&inv, &[rec], &mut r, &a);
    let report = Report::build_named(&r, &topo, 0.045);
    let id = report.identity.unwrap();
    assert_eq!(
        (id.resolved_bytes, id.node_bytes, id.unresolved_bytes),
        (0, 4096, 0)
    );
}

#[test]
fn a_kubectl_snapshot_names_for_the_whole_window() {
    let topo = topology();
    let snapshot = json!({
        "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
        "items": [
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "api-5f6d8c7b9-abcde", "namespace": "shop", "uid": "u-api", "labels": {"pod-template-hash": "5f6d8c7b9"},
                          "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "api-5f6d8c7b9", "uid": "rs", "controller": true}]},
             "spec": {"nodeName": NODE},
             "status": {"phase": "Running", "hostIP": "10.0.1.5", "podIP": "10.0.1.40", "podIPs": [{"ip": "10.0.1.40"}]}},
            // A finished pod's address may already be someone else's: it names nothing.
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "old", "namespace": "shop", "uid": "u-old"},
             "spec": {"nodeName": NODE},
             "status": {"phase": "Succeeded", "hostIP": "10.0.1.5", "podIP": "10.0.1.41"}}
        ]
    });
    let mut inv = Inventory::default();
    assert_eq!(
        inv.add_snapshot(snapshot.to_string().as_bytes()).unwrap(),
        2
    );
    let a = Attributor::new(&topo, format()).with_resolver(&inv);
    let mut r = a.results();
    let rec = |ip: &str, start: i64| {
        format!(
            "{ENI} {ip} {NAT_IP} {ip} 203.0.113.5 100 1 {start} {} ACCEPT OK",
            start + 10
        )
    };
    run(
        &inv,
        &[
            rec("10.0.1.40", 1_000_000_000),
            rec("10.0.1.40", T0 + 86_400 * 30),
            rec("10.0.1.41", T0),
            rec("10.0.1.5", T0),
        ],
        &mut r,
        &a,
    );
    let report = Report::build_named(&r, &topo, 0.045);
    let w: Vec<(&str, &str, u64)> = report
        .workloads
        .as_ref()
        .unwrap()
        .iter()
        .map(|w| (w.kind.as_str(), w.name.as_str(), w.bytes))
        .collect();
    assert_eq!(
        w,
        vec![
            ("Deployment", "api", 200),
            ("Node", NODE, 100),
            ("Unresolved", "", 100)
        ]
    );
}

#[test]
fn metrics_by_namespace_and_workload_are_capped_and_sum_exactly() {
    use natmeter_core::metrics::{datums, source_details, MetricOptions};
    let topo = topology();
    let inv = inventory_of(&audit());
    let a = Attributor::new(&topo, format()).with_resolver(&inv);
    let mut r = a.results();
    run(&inv, &flows(), &mut r, &a);
    let opts = MetricOptions {
        max_sources: 1,
        min_source_share: 0.0,
        price_per_gb: 0.045,
        now: T0 + 600,
    };
    let d = datums(&r, &topo, &opts);
    let sum = |metric: &str, dims: &[&str]| -> Vec<(Vec<String>, f64)> {
        let mut v: std::collections::BTreeMap<Vec<String>, f64> = Default::default();
        for x in d.iter().filter(|x| x.metric == metric) {
            let names: Vec<&str> = x.dimensions.iter().map(|(n, _)| *n).collect();
            if names == dims {
                *v.entry(x.dimensions.iter().map(|(_, v)| v.clone()).collect())
                    .or_default() += x.value;
            }
        }
        v.into_iter().collect()
    };
    // One series kept (the largest), the rest as `other`; the sum is the total either way.
    assert_eq!(
        sum("NatBytes", &["Namespace", "Workload"]),
        vec![
            (vec!["other".to_string(), "other".to_string()], 3536.0),
            (
                vec!["shop".to_string(), "Deployment/web".to_string()],
                3100.0
            ),
        ]
    );
    assert_eq!(
        sum("NatBytes", &["Namespace"]),
        vec![
            (vec!["other".to_string()], 3536.0),
            (vec!["shop".to_string()], 3100.0)
        ]
    );
    assert_eq!(sum("NatNodeBytes", &[]), vec![(vec![], 500.0)]);
    assert_eq!(sum("NatUnresolvedBytes", &[]), vec![(vec![], 36.0)]);
    // Uncapped detail lines carry every name.
    let lines: Vec<String> = source_details(&r, &topo, 0.045)
        .iter()
        .map(|l| l.to_json_line())
        .collect();
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let report_line = parsed
        .iter()
        .find(|l| l["Workload"] == "CronJob/report")
        .unwrap();
    assert_eq!(report_line["Namespace"], "batch");
    assert_eq!(report_line["Pod"], "report-29410560-q8zvl");
    assert_eq!(report_line["Node"], NODE);
    assert_eq!(report_line["SourceIp"], "10.0.1.23");
    let node_line = parsed.iter().find(|l| l["Namespace"] == "(node)").unwrap();
    assert_eq!(node_line["Workload"], format!("Node/{NODE}"));
    assert!(node_line.get("Pod").is_none());
    let unresolved: f64 = parsed
        .iter()
        .filter(|l| l["Workload"] == "Unresolved")
        .map(|l| l["NatBytes"].as_f64().unwrap())
        .sum();
    assert_eq!(unresolved, 36.0);
}

#[test]
fn without_an_inventory_metrics_and_lines_are_unchanged() {
    use natmeter_core::metrics::{datums, source_details, MetricOptions};
    let topo = topology();
    let a = Attributor::new(&topo, format());
    let mut r = a.results();
    run(&Inventory::default(), &flows(), &mut r, &a);
    let opts = MetricOptions {
        max_sources: 20,
        min_source_share: 0.0,
        price_per_gb: 0.045,
        now: T0 + 600,
    };
    let d = datums(&r, &topo, &opts);
    assert!(d.iter().all(|x| x
        .dimensions
        .iter()
        .all(|(n, _)| *n != "Namespace" && *n != "Workload")));
    assert!(d
        .iter()
        .all(|x| x.metric != "NatNodeBytes" && x.metric != "NatUnresolvedBytes"));
    assert!(source_details(&r, &topo, 0.045)
        .iter()
        .all(|l| !l.to_json_line().contains("Namespace")));
    let report = serde_json::to_value(Report::build(&r, &topo, 0.045)).unwrap();
    assert!(report.get("workloads").is_none() && report.get("identity").is_none());
    assert!(report["sources"][0].get("holder").is_none());
}

#[test]
fn stored_facts_read_back_as_the_events_they_came_from() {
    use natmeter_core::inventory::StoredFact;
    let lines = audit();
    let direct = inventory_of(&lines);
    let mut stored = Inventory::default();
    let mut ids = std::collections::BTreeSet::new();
    for l in &lines {
        if let Some(f) = StoredFact::of_line(l.as_bytes()).unwrap() {
            assert!(f.json.len() < l.len(), "a fact is smaller than its event");
            assert!(ids.insert(f.id.clone()), "ids are unique per event");
            // Twice, as a retried batch would store and a refresh would read it.
            stored.add_stored(&f.json).unwrap();
            stored.add_stored(&f.json).unwrap();
        }
    }
    // The get, the exec and the refused delete say nothing: not stored.
    assert_eq!(ids.len(), lines.len() - 3);
    for ip in ["10.0.1.23", "10.0.1.5", "10.0.9.9"] {
        for t in (-700..600).step_by(1) {
            let (a, b) = (
                direct.resolve(ip.parse().unwrap(), T0 + t),
                stored.resolve(ip.parse().unwrap(), T0 + t),
            );
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{ip} at T0{t:+}");
        }
    }
    assert!(stored.add_stored("{\"f\":\"nonsense\"}").is_err());
}

#[test]
fn an_answers_span_holds_at_every_second_in_it() {
    use natmeter_core::identity::{Resolver, Sighting, Sources};
    let inv = inventory_of(&audit());
    let mut sources = Sources::default();
    let seen = |ip: &str, t: i64| Sighting {
        address: ip.parse().unwrap(),
        time: t,
        gateway: 0,
        account: None,
        vpc: None,
    };
    let mut spans = 0;
    for ip in ["10.0.1.23", "10.0.1.5", "10.0.9.9"] {
        for t in T0 - 700..T0 + 600 {
            let (id, from, until) = inv.resolve_span(&seen(ip, t), &mut sources);
            assert!(
                from <= t && t < until,
                "{ip} at T0{:+}: span [{from}, {until})",
                t - T0
            );
            assert_eq!(Resolver::resolve(&inv, &seen(ip, t), &mut sources), id);
            // Every second of the span (within the scenario) has the same answer, and the
            // seconds just outside it a different one.
            for t2 in from.max(T0 - 800)..until.min(T0 + 700) {
                assert_eq!(
                    Resolver::resolve(&inv, &seen(ip, t2), &mut sources),
                    id,
                    "{ip} at T0{:+}",
                    t2 - T0
                );
            }
            for edge in [from.checked_sub(1), Some(until)].into_iter().flatten() {
                if (T0 - 800..T0 + 700).contains(&edge) {
                    assert_ne!(
                        Resolver::resolve(&inv, &seen(ip, edge), &mut sources),
                        id,
                        "{ip}: span [{from}, {until}) is not the widest"
                    );
                }
            }
            spans += 1;
        }
    }
    assert!(spans > 0);
}
