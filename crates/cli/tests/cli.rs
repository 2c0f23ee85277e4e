//! `natmeter report` on good and bad inputs: messages, exit codes, and that one bad file never
//! stops the others from being processed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_natmeter");

struct Sim {
    _dir: tempfile::TempDir,
    root: PathBuf,
}

fn simulate(args: &[&str]) -> Sim {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sim");
    let out = Command::new(BIN)
        .args(["simulate", "--out"])
        .arg(&root)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Sim { _dir: dir, root }
}

fn report(sim: &Sim, extra_inputs: &[&Path], flags: &[&str]) -> Output {
    let format = std::fs::read_to_string(sim.root.join("log-format.txt")).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("report")
        .arg("--nat-gateways")
        .arg(format!("@{}", sim.root.join("nat-gateways.json").display()))
        .args(["--log-format", &format])
        .args(flags)
        .arg(sim.root.join("events"));
    for p in extra_inputs {
        cmd.arg(p);
    }
    cmd.env_remove("AWS_REGION").output().unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn truth(sim: &Sim) -> Value {
    serde_json::from_slice(&std::fs::read(sim.root.join("truth.json")).unwrap()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn gzip(b: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b).unwrap();
    gz.finish().unwrap()
}

fn event_of(payload: &[u8]) -> String {
    format!(
        r#"{{"awslogs":{{"data":"{}"}}}}"#,
        base64::engine::general_purpose::STANDARD.encode(gzip(payload))
    )
}

fn assert_matches_truth(out: &Output, sim: &Sim) {
    let r = json(out);
    let t = truth(sim);
    for k in ["bytes", "outbound_bytes", "inbound_bytes", "packets"] {
        assert_eq!(r["totals"][k], t["totals"][k], "totals.{k}");
    }
    assert_eq!(r["records"], t["records"]);
    assert_eq!(r["batches"], t["batches"]);
    let (rs, ts) = (
        r["sources"].as_array().unwrap(),
        t["sources"].as_array().unwrap(),
    );
    assert_eq!(rs.len(), ts.len());
    for (a, b) in rs.iter().zip(ts) {
        for k in [
            "source",
            "outbound_bytes",
            "inbound_bytes",
            "bytes",
            "packets",
            "destinations",
        ] {
            assert_eq!(a[k], b[k], "source {} {k}", b["source"]);
        }
    }
    assert_eq!(r["destinations"], t["destinations"]);
}

#[test]
fn report_json_equals_truth_for_both_snat_modes_and_scopes() {
    for (snat, scope) in [
        ("true", "vpc"),
        ("false", "vpc"),
        ("true", "nat-enis"),
        ("false", "nat-enis"),
    ] {
        let sim = simulate(&[
            "--seed",
            "11",
            "--pods",
            "60",
            "--minutes",
            "4",
            "--external-snat",
            snat,
            "--scope",
            scope,
        ]);
        let out = report(&sim, &[], &["--output", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_matches_truth(&out, &sim);
        let r = json(&out);
        assert_eq!(r["schema"], "natmeter.report/v1");
        assert_eq!(r["price_per_gb_usd"], 0.045);
    }
}

#[test]
fn single_threaded_output_is_identical() {
    let sim = simulate(&[
        "--seed",
        "5",
        "--pods",
        "80",
        "--minutes",
        "3",
        "--max-batch-bytes",
        "50000",
    ]);
    let a = report(&sim, &[], &["--output", "json", "--threads", "1"]);
    let b = report(&sim, &[], &["--output", "json", "--threads", "2"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert_eq!(a.stderr, b.stderr);
}

/// Each bad file is reported with its path and reason, exit status stays 0 because the good
/// inputs were read, and the good inputs' numbers are exactly the truth.
#[test]
fn bad_inputs_are_reported_and_the_rest_processed() {
    let sim = simulate(&["--seed", "3", "--minutes", "2"]);
    let dir = tempfile::tempdir().unwrap();
    let first = std::fs::read_dir(sim.root.join("events"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let data: Value = serde_json::from_str(&std::fs::read_to_string(first).unwrap()).unwrap();
    let raw = base64::engine::general_purpose::STANDARD
        .decode(data["awslogs"]["data"].as_str().unwrap())
        .unwrap();
    let truncated = format!(
        r#"{{"awslogs":{{"data":"{}"}}}}"#,
        base64::engine::general_purpose::STANDARD.encode(&raw[..raw.len() / 2])
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "not-json.json",
            b"this is not json".to_vec(),
            "not valid JSON",
        ),
        (
            "broken.json",
            b"{\"awslogs\": {\"data\": ".to_vec(),
            "not valid JSON",
        ),
        (
            "bad-base64.json",
            br#"{"awslogs":{"data":"!!!not base64!!!"}}"#.to_vec(),
            "awslogs.data is not valid base64",
        ),
        (
            "truncated-gzip.json",
            truncated.into_bytes(),
            "awslogs.data is not valid gzip",
        ),
        (
            "no-log-events.json",
            br#"{"messageType":"DATA_MESSAGE","logStream":"eni-0abc-all"}"#.to_vec(),
            "DATA_MESSAGE without logEvents",
        ),
        (
            "event-no-log-events.json",
            event_of(br#"{"messageType":"DATA_MESSAGE"}"#).into_bytes(),
            "DATA_MESSAGE without logEvents",
        ),
        ("empty.log", Vec::new(), "empty file"),
        (
            "other.json",
            br#"{"hello":"world"}"#.to_vec(),
            "neither a Lambda event",
        ),
    ];
    for (name, content, message) in &cases {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        let out = report(&sim, &[&p], &["--output", "json"]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&p.display().to_string()) && err.contains(message),
            "{name}: expected {message:?} in:\n{err}"
        );
        assert_matches_truth(&out, &sim);
    }
    let missing = dir.path().join("missing.log");
    let out = report(&sim, &[&missing], &["--output", "json"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stderr(&out).contains("missing.log: cannot read"),
        "{}",
        stderr(&out)
    );
    assert_matches_truth(&out, &sim);
}

#[test]
fn nothing_readable_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("empty.json");
    std::fs::write(&p, "").unwrap();
    let out = Command::new(BIN)
        .args(["report", "--nat", "eni-0abc=10.0.0.5"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("empty file"), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no input could be read"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_configuration_exits_2_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.log");
    std::fs::write(&p, "x").unwrap();
    let run = |args: &[&str]| {
        Command::new(BIN)
            .arg("report")
            .args(args)
            .arg(&p)
            .env_remove("AWS_REGION")
            .env_remove("NATMETER_NAT_GATEWAYS")
            .output()
            .unwrap()
    };
    let out = run(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no NAT gateway configured"),
        "{}",
        stderr(&out)
    );
    let out = run(&["--nat", "eni-0abc=10.0.0.x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("\"10.0.0.x\" is not an IP address"),
        "{}",
        stderr(&out)
    );
    let out = run(&[
        "--nat",
        "eni-0abc=10.0.0.5",
        "--log-format",
        "${bytes} ${bytes}",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("NATMETER_LOG_FORMAT"),
        "{}",
        stderr(&out)
    );
    let out = run(&["--nat", "eni-0abc=10.0.0.5", "--region", "mars-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no built-in NAT price for region \"mars-1\""),
        "{}",
        stderr(&out)
    );
    let out = run(&["--nat", "eni-0abc=10.0.0.5", "--output", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn nat_config_matching_nothing_is_diagnosed() {
    let sim = simulate(&["--seed", "4", "--minutes", "1", "--scope", "nat-enis"]);
    let format = std::fs::read_to_string(sim.root.join("log-format.txt")).unwrap();
    let out = Command::new(BIN)
        .args([
            "report",
            "--nat",
            "eni-0123456789abcdef0=10.9.9.9",
            "--log-format",
            &format,
            "--output",
            "json",
        ])
        .arg(sim.root.join("events"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let r = json(&out);
    let d = &r["diagnostics"][0];
    assert_eq!(d["code"], "no_nat_records");
    let msg = d["message"].as_str().unwrap();
    assert!(msg.contains("eni-0123456789abcdef0"), "{msg}");
    let t = truth(&sim);
    let real_eni = t["nat_gateways"][0]["eni"].as_str().unwrap();
    assert!(msg.contains(real_eni), "the ENIs seen are listed: {msg}");
    assert!(stderr(&out).contains("no_nat_records"));
    assert_eq!(r["totals"]["bytes"], 0);
}

#[test]
fn aws_example_files_with_header_lines_and_gzip() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../core/tests/data");
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("nat.log.gz");
    let text = std::fs::read_to_string(data.join("aws-docs-nat-gateway.log")).unwrap();
    // The AWS example has no byte counts: add a bytes column so the counted records show.
    let mut lines = text.lines();
    let mut with_bytes = format!("{} bytes\n", lines.next().unwrap());
    for (i, l) in lines.enumerate() {
        with_bytes.push_str(&format!("{l} {}\n", 100 * (i + 1)));
    }
    std::fs::write(&gz, gzip(with_bytes.as_bytes())).unwrap();
    let out = Command::new(BIN)
        .args([
            "report",
            "--nat",
            "eni-1235b8ca123456789=10.0.0.220",
            "--output",
            "json",
        ])
        .arg(&gz)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r = json(&out);
    // (A) line 1 = 100 bytes outbound, (D) line 4 = 400 bytes inbound, both for 10.0.1.5.
    assert_eq!(r["totals"]["outbound_bytes"], 100);
    assert_eq!(r["totals"]["inbound_bytes"], 400);
    assert_eq!(r["sources"][0]["source"], "10.0.1.5");
    assert_eq!(r["records"]["public_side"], 2);
    assert_eq!(r["records"]["not_nat"], 2);
    assert_eq!(r["sources"][0]["destinations"][0]["destination"], "UNKNOWN");

    let out = Command::new(BIN)
        .args([
            "report",
            "--nat",
            "eni-1235b8ca123456789=172.31.16.21",
            "--output",
            "table",
        ])
        .arg(data.join("aws-docs-default-format.log"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("172.31.16.139"), "{table}");
    assert!(table.contains("no_pkt_fields"), "{table}");
}

#[test]
fn csv_and_table_outputs() {
    let sim = simulate(&["--seed", "9", "--minutes", "2"]);
    let out = report(&sim, &[], &["--output", "csv"]);
    let csv = String::from_utf8_lossy(&out.stdout);
    let t = truth(&sim);
    assert!(csv.starts_with("source,outbound_bytes,inbound_bytes,bytes,packets,cost_usd\n"));
    assert_eq!(
        csv.lines().count(),
        t["sources"].as_array().unwrap().len() + 1
    );
    let first = csv.lines().nth(1).unwrap();
    assert!(
        first.starts_with(&format!("{},", t["sources"][0]["source"].as_str().unwrap())),
        "{first}"
    );
    let out = report(&sim, &[], &["--top", "3"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("TOTAL"), "{table}");
    assert!(table.contains("more sources"), "{table}");
}

#[test]
fn metrics_model_json() {
    let out = Command::new(BIN)
        .args(["metrics", "--json"])
        .env_remove("NATMETER_NAMESPACE")
        .output()
        .unwrap();
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(m["namespace"], "NatMeter");
    let names: Vec<_> = m["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "NatBytes",
            "NatCost",
            "NatPackets",
            "RecordsCounted",
            "RecordsSkipped",
            "ParseErrors",
            "IngestLag",
            "NatCrossAzBytes",
            "NatCrossAzCost",
            "NatAvoidableBytes",
            "NatAvoidableCost",
            "NatNodeBytes",
            "NatUnresolvedBytes"
        ]
    );
}

// ---- Names from the EKS audit log: `natmeter simulate --cluster`, `report --inventory` ----

/// A simulated cluster (workloads, churn, an audit log) of a few minutes.
fn simulate_cluster() -> Sim {
    let sim = simulate(&["--cluster", "--seed", "7", "--minutes", "3"]);
    let t = truth(&sim);
    let kinds: std::collections::BTreeSet<&str> = t["identities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    for k in ["Deployment", "CronJob", "StatefulSet", "Node", "Unresolved"] {
        assert!(
            kinds.contains(k),
            "no {k} in {kinds:?}: the test would be vacuous"
        );
    }
    sim
}

/// `report` with the events first and each inventory path after its own `--inventory` (it takes
/// several values: a positional input after it would be read as an inventory).
fn report_named(sim: &Sim, flags: &[&str], inventory: &[&Path]) -> Output {
    let format = std::fs::read_to_string(sim.root.join("log-format.txt")).unwrap();
    let mut cmd = Command::new(BIN);
    cmd.arg("report")
        .arg("--nat-gateways")
        .arg(format!("@{}", sim.root.join("nat-gateways.json").display()))
        .args(["--log-format", &format])
        .args(flags)
        .arg(sim.root.join("events"));
    for p in inventory {
        cmd.arg("--inventory").arg(p);
    }
    cmd.env_remove("AWS_REGION").output().unwrap()
}

/// The audit log's lines, in delivery order.
fn audit_lines(sim: &Sim) -> Vec<String> {
    std::fs::read_to_string(sim.root.join("audit.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

/// (namespace, kind, name, outbound, inbound, bytes) per row, in order.
fn identity_rows(rows: &Value) -> Vec<Value> {
    rows.as_array()
        .unwrap_or_else(|| panic!("not an array: {rows}"))
        .iter()
        .map(|r| {
            serde_json::json!([
                r["namespace"],
                r["kind"],
                r["name"],
                r["outbound_bytes"],
                r["inbound_bytes"],
                r["bytes"]
            ])
        })
        .collect()
}

/// The named report's workloads are the truth's identities, row for row; its totals, records,
/// batches, gateways and destinations are the report's without an inventory; its identity
/// totals add up; no inventory line was refused.
fn assert_named_as_truth(sim: &Sim, out: &Output, what: &str) {
    assert!(out.status.success(), "{what}: {}", stderr(out));
    let r = json(out);
    let t = truth(sim);
    assert_eq!(
        identity_rows(&r["workloads"]),
        identity_rows(&t["identities"]),
        "{what}: workloads\nstderr: {}",
        stderr(out)
    );
    let plain = report(sim, &[], &["--output", "json"]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    let p = json(&plain);
    for k in [
        "totals",
        "records",
        "batches",
        "nat_gateways",
        "destinations",
    ] {
        assert_eq!(r[k], p[k], "{what}: {k} as without --inventory");
    }
    for k in ["bytes", "outbound_bytes", "inbound_bytes", "packets"] {
        assert_eq!(r["totals"][k], t["totals"][k], "{what}: totals.{k}");
    }
    let id = &r["identity"];
    let sum: u64 = ["resolved_bytes", "node_bytes", "unresolved_bytes"]
        .iter()
        .map(|k| id[*k].as_u64().unwrap())
        .sum();
    assert_eq!(Some(sum), r["totals"]["bytes"].as_u64(), "{what}: {id}");
    assert!(id["resolved_bytes"].as_u64().unwrap() > 0, "{what}: {id}");
    let err = stderr(out);
    assert!(err.contains(" 0 refused"), "{what}: {err}");
    // Every source row says who held it.
    for s in r["sources"].as_array().unwrap() {
        assert!(
            matches!(s["holder"].as_str(), Some("pod" | "node" | "unresolved")),
            "{what}: {s}"
        );
        if s["holder"] == "pod" {
            assert!(
                s["namespace"].is_string() && s["workload"].is_string() && s["pod"].is_string(),
                "{what}: {s}"
            );
        }
    }
}

#[test]
fn inventory_audit_jsonl_names_workloads_as_the_truth() {
    let sim = simulate_cluster();
    let out = report_named(
        &sim,
        &["--output", "json"],
        &[&sim.root.join("audit.jsonl")],
    );
    assert_named_as_truth(&sim, &out, "audit.jsonl");
}

#[test]
fn inventory_audit_events_directory_names_workloads_as_the_truth() {
    let sim = simulate_cluster();
    let dir = sim.root.join("audit-events");
    assert!(std::fs::read_dir(&dir).unwrap().count() > 1);
    let out = report_named(&sim, &["--output", "json"], &[&dir]);
    assert_named_as_truth(&sim, &out, "audit-events/");
}

#[test]
fn inventory_gzipped_audit_jsonl_names_workloads_as_the_truth() {
    let sim = simulate_cluster();
    let gz = sim.root.join("audit.jsonl.gz");
    std::fs::write(
        &gz,
        gzip(&std::fs::read(sim.root.join("audit.jsonl")).unwrap()),
    )
    .unwrap();
    let out = report_named(&sim, &["--output", "json"], &[&gz]);
    assert_named_as_truth(&sim, &out, "audit.jsonl.gz");
}

/// `aws logs filter-log-events --log-group-name /aws/eks/sim/cluster > export.json`: one
/// pretty-printed document whose `events[].message` are the audit lines.
#[test]
fn inventory_filter_log_events_export_names_workloads_as_the_truth() {
    let sim = simulate_cluster();
    let events: Vec<Value> = audit_lines(&sim)
        .into_iter()
        .enumerate()
        .map(|(i, message)| {
            serde_json::json!({
                "logStreamName": "kube-apiserver-audit-521234da4c7717f9573371c0195d8b62",
                "timestamp": 1_764_547_200_000_i64 + i as i64,
                "message": message,
                "ingestionTime": 1_764_547_260_000_i64 + i as i64,
                "eventId": format!("3869381023549829{i:06}"),
            })
        })
        .collect();
    let export = serde_json::json!({"events": events, "searchedLogStreams": []});
    let p = sim.root.join("filter-log-events.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&export).unwrap()).unwrap();
    let out = report_named(&sim, &["--output", "json"], &[&p]);
    assert_named_as_truth(&sim, &out, "filter-log-events export");
}

/// Logs Insights' results exported as JSON: `[{"@timestamp":…,"@message":…}]`.
#[test]
fn inventory_logs_insights_export_names_workloads_as_the_truth() {
    let sim = simulate_cluster();
    let rows: Vec<Value> = audit_lines(&sim)
        .into_iter()
        .map(|m| serde_json::json!({"@timestamp": "2025-12-01 00:03:12.351", "@message": m}))
        .collect();
    let p = sim.root.join("insights.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&rows).unwrap()).unwrap();
    let out = report_named(&sim, &["--output", "json"], &[&p]);
    assert_named_as_truth(&sim, &out, "Logs Insights export");
}

/// An S3 export of the log group: each line the event's time, a space, the message.
#[test]
fn inventory_s3_export_lines_name_workloads_as_the_truth() {
    let sim = simulate_cluster();
    let mut text = String::new();
    for l in audit_lines(&sim) {
        let v: Value = serde_json::from_str(&l).unwrap();
        // `2025-12-01T00:03:12.345678Z` to milliseconds, as the export writes it.
        let stamp = v["stageTimestamp"].as_str().unwrap();
        text.push_str(&format!("{}Z {l}\n", &stamp[..23]));
    }
    assert!(text.starts_with("20"), "{}", &text[..40]);
    let p = sim.root.join("000000.txt");
    std::fs::write(&p, gzip(text.as_bytes())).unwrap();
    let out = report_named(&sim, &["--output", "json"], &[&p]);
    assert_named_as_truth(&sim, &out, "S3 export");
}

#[test]
fn csv_by_namespace_sums_the_truth_per_namespace() {
    let sim = simulate_cluster();
    let out = report_named(
        &sim,
        &["--output", "csv", "--by", "namespace"],
        &[&sim.root.join("audit.jsonl")],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = String::from_utf8(out.stdout).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("namespace,outbound_bytes,inbound_bytes,bytes,cost_usd")
    );
    let mut got = std::collections::BTreeMap::new();
    let mut order = Vec::new();
    for l in lines {
        let f: Vec<&str> = l.split(',').collect();
        assert_eq!(f.len(), 5, "{l}");
        let n = |i: usize| f[i].parse::<u64>().unwrap();
        assert_eq!(n(1) + n(2), n(3), "{l}");
        assert!(
            got.insert(f[0].to_string(), (n(1), n(2), n(3))).is_none(),
            "{l}"
        );
        order.push(n(3));
    }
    assert!(
        order.windows(2).all(|w| w[0] >= w[1]),
        "largest first: {csv}"
    );
    let mut want = std::collections::BTreeMap::new();
    for i in truth(&sim)["identities"].as_array().unwrap() {
        let ns = match i["kind"].as_str().unwrap() {
            "Node" => "(nodes)".to_string(),
            "Unresolved" => "(unresolved)".to_string(),
            _ => i["namespace"].as_str().unwrap().to_string(),
        };
        let e: &mut (u64, u64, u64) = want.entry(ns).or_default();
        e.0 += i["outbound_bytes"].as_u64().unwrap();
        e.1 += i["inbound_bytes"].as_u64().unwrap();
        e.2 += i["bytes"].as_u64().unwrap();
    }
    assert!(want.len() >= 4, "{want:?}");
    assert_eq!(got, want);
}

#[test]
fn by_anything_but_ip_without_inventory_exits_2() {
    let sim = simulate(&["--seed", "3", "--minutes", "1"]);
    for by in ["workload", "namespace", "pod"] {
        let out = report(&sim, &[], &["--by", by]);
        assert_eq!(out.status.code(), Some(2), "--by {by}: {}", stderr(&out));
        assert!(stderr(&out).contains("--inventory"), "{}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
    let out = report(&sim, &[], &["--by", "ip", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_matches_truth(&out, &sim);
}

/// Lines that are no inventory are named (file and line) on stderr and counted; every other
/// line, and the other files, are still read.
#[test]
fn inventory_lines_that_are_not_audit_events_are_named_and_the_rest_read() {
    let sim = simulate_cluster();
    let lines = audit_lines(&sim);
    let junk = sim.root.join("junk.jsonl");
    std::fs::write(
        &junk,
        format!(
            "{}\nthis is not json\n{{\"hello\":\"world\"}}\n{}\n",
            lines[0],
            &lines[1][..60]
        ),
    )
    .unwrap();
    // A whole file that is no inventory: a flow log's subscription event.
    let mut flows: Vec<PathBuf> = std::fs::read_dir(sim.root.join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    flows.sort();
    let audit = sim.root.join("audit.jsonl");
    let out = report_named(&sim, &["--output", "json"], &[&junk, &flows[0], &audit]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let flow = flows[0].display().to_string();
    assert!(
        err.lines().any(|l| l.contains(&flow)
            && l.contains("a subscription batch of log group \"/aws/vpc/flow-logs\"")
            && l.contains("not an EKS audit stream")),
        "{err}"
    );
    let name = junk.display().to_string();
    for line in [2, 3, 4] {
        assert!(
            err.contains(&format!("{name} line {line}:")),
            "line {line}: {err}"
        );
    }
    assert!(!err.contains(&format!("{name} line 1:")), "{err}");
    assert!(err.contains(" 4 refused"), "{err}");
    let r = json(&out);
    let t = truth(&sim);
    assert_eq!(
        identity_rows(&r["workloads"]),
        identity_rows(&t["identities"])
    );
}

/// An audit log whose first line is damaged (a truncated download, a line cut by whatever
/// split the log) is still a JSON-lines file: the damaged line is named and every other line of
/// the file is read.
#[test]
fn an_inventory_file_with_a_damaged_first_line_still_reads_the_rest() {
    let sim = simulate_cluster();
    let lines = audit_lines(&sim);
    let p = sim.root.join("damaged.jsonl");
    // The first line cut short, then the whole audit log: all of it names as the truth.
    std::fs::write(&p, format!("{}\n{}\n", &lines[0][..50], lines.join("\n"))).unwrap();
    let out = report_named(&sim, &["--output", "json"], &[&p]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{} line 1:", p.display())),
        "the damaged line is named: {err}"
    );
    assert!(err.contains(" 1 refused"), "{err}");
    let r = json(&out);
    let t = truth(&sim);
    assert_eq!(
        identity_rows(&r["workloads"]),
        identity_rows(&t["identities"]),
        "{err}"
    );
}

/// `kubectl get pods -A -o json`: warned about (names for the whole report, not at each
/// record's time), and its pods name their addresses.
#[test]
fn a_kubectl_snapshot_warns_and_names_its_pods() {
    let sim = simulate_cluster();
    let t = truth(&sim);
    // The two busiest pod addresses (10.0.128.0/17 is the simulator's pod range).
    let pods: Vec<(String, u64, u64)> = t["sources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["source"].as_str().unwrap().starts_with("10.0.1"))
        .filter(|s| {
            let third: u8 = s["source"]
                .as_str()
                .unwrap()
                .split('.')
                .nth(2)
                .unwrap()
                .parse()
                .unwrap();
            third >= 128
        })
        .take(2)
        .map(|s| {
            (
                s["source"].as_str().unwrap().to_string(),
                s["outbound_bytes"].as_u64().unwrap(),
                s["inbound_bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(pods.len(), 2);
    let snapshot = serde_json::json!({
        "apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""},
        "items": [
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "snap-7d4b9c8f6d-x2x9k", "namespace": "snapshot", "uid": "u-snap-a",
                          "labels": {"pod-template-hash": "7d4b9c8f6d"},
                          "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "snap-7d4b9c8f6d", "uid": "rs-snap", "controller": true, "blockOwnerDeletion": true}]},
             "spec": {"nodeName": "ip-10-0-64-10.ec2.internal", "containers": [{"name": "c", "image": "x"}]},
             "status": {"phase": "Running", "podIP": pods[0].0, "podIPs": [{"ip": pods[0].0}]}},
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "snap-lone", "namespace": "snapshot", "uid": "u-snap-b"},
             "spec": {"nodeName": "ip-10-0-64-11.ec2.internal", "containers": [{"name": "c", "image": "x"}]},
             "status": {"phase": "Running", "podIP": pods[1].0, "podIPs": [{"ip": pods[1].0}]}}
        ]
    });
    let p = sim.root.join("pods.json");
    std::fs::write(&p, serde_json::to_vec_pretty(&snapshot).unwrap()).unwrap();
    let out = report_named(&sim, &["--output", "json"], &[&p]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "warning: {} is a kubectl snapshot (2 pods)",
            p.display()
        )),
        "{err}"
    );
    assert!(err.contains("not at each record's time"), "{err}");
    let r = json(&out);
    let row = |kind: &str, name: &str| -> Value {
        r["workloads"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["kind"] == kind && w["name"] == name)
            .unwrap_or_else(|| panic!("no {kind}/{name} in {}", r["workloads"]))
            .clone()
    };
    for ((kind, name, pod), (ip, out_b, in_b)) in [
        ("Deployment", "snap", "snap-7d4b9c8f6d-x2x9k"),
        ("Pod", "snap-lone", "snap-lone"),
    ]
    .into_iter()
    .zip(&pods)
    {
        let w = row(kind, name);
        assert_eq!(w["namespace"], "snapshot");
        assert_eq!(
            (
                w["outbound_bytes"].as_u64(),
                w["inbound_bytes"].as_u64(),
                w["pods"].as_u64()
            ),
            (Some(*out_b), Some(*in_b), Some(1)),
            "{w}: all of {ip}'s bytes, for the whole report"
        );
        let sources: Vec<&Value> = r["sources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["source"] == ip.as_str())
            .collect();
        assert_eq!(sources.len(), 1, "{sources:?}");
        assert_eq!(sources[0]["pod"], pod);
        assert_eq!(sources[0]["holder"], "pod");
        assert_eq!(sources[0]["workload"], format!("{kind}/{name}"));
    }
    // Nothing else is named: the rest is unresolved.
    let named: u64 = pods.iter().map(|p| p.1 + p.2).sum();
    assert_eq!(r["identity"]["resolved_bytes"].as_u64(), Some(named));
    assert_eq!(
        r["workloads"].as_array().unwrap().len(),
        3,
        "{}",
        r["workloads"]
    );
    assert_eq!(
        r["totals"],
        json(&report(&sim, &[], &["--output", "json"]))["totals"]
    );
}

#[test]
fn the_table_with_inventory_leads_with_workloads() {
    let sim = simulate_cluster();
    let out = report_named(&sim, &[], &[&sim.root.join("audit.jsonl")]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.starts_with("NAT Gateway processed bytes by workload"),
        "{table}"
    );
    let t = truth(&sim);
    let top = t["identities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] != "Node" && i["kind"] != "Unresolved")
        .unwrap();
    let label = format!(
        "{}/{}/{}",
        top["namespace"].as_str().unwrap(),
        top["kind"].as_str().unwrap(),
        top["name"].as_str().unwrap()
    );
    assert!(table.contains(&label), "{label}: {table}");
    assert!(table.contains("TOTAL"), "{table}");
    // Without --inventory it stays the table by source.
    let plain = report(&sim, &[], &[]);
    let plain = String::from_utf8(plain.stdout).unwrap();
    assert!(
        !plain.starts_with("NAT Gateway processed bytes by workload"),
        "{plain}"
    );
}

// ---- The cross-AZ surcharge: `natmeter simulate` writes subnets.json, `report --subnets` ----

/// Nodes in three AZs and two gateways: use1-az4's nodes reach use1-az1's gateway. The report
/// with the simulator's subnets.json says as many cross-AZ bytes as the simulator's own plan
/// (`Simulation::cross_az_truth`, the same run as a library), and the table shows them.
#[test]
fn report_with_simulated_subnets_prices_the_cross_az_bytes() {
    let sim = simulate(&[
        "--seed",
        "5",
        "--nat-gateways",
        "2",
        "--nodes",
        "6",
        "--minutes",
        "2",
    ]);
    let lib = natmeter_sim::simulate(&natmeter_sim::SimConfig {
        seed: 5,
        nat_gateways: 2,
        nodes: 6,
        minutes: 2,
        ..natmeter_sim::SimConfig::default()
    });
    let t = truth(&sim);
    assert_eq!(t["totals"]["bytes"], lib.truth.totals.bytes, "same run");
    let want = lib.cross_az_truth().bytes;
    assert!(want > 0 && want < lib.truth.totals.bytes, "{want}");
    let subnets = format!("@{}", sim.root.join("subnets.json").display());
    let out = report(&sim, &[], &["--output", "json", "--subnets", &subnets]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["totals"]["cross_az_bytes"], want);
    let cost = r["totals"]["cross_az_cost_usd"].as_f64().unwrap();
    let expected = want as f64 / (1u64 << 30) as f64 * natmeter_core::price::INTER_AZ_USD_PER_GB;
    assert!(
        (cost - expected).abs() <= 1e-12 * expected.max(1.0),
        "{cost}"
    );
    let out = report(&sim, &[], &["--subnets", &subnets]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("CROSS-AZ"), "{table}");
    // Without --subnets nothing is said about AZs.
    let out = report(&sim, &[], &["--output", "json"]);
    assert!(json(&out)["totals"].get("cross_az_bytes").is_none());
}

#[test]
fn a_reader_that_goes_away_ends_the_output_quietly() {
    // `natmeter report ... | head`: the reader closes its end before the report is written.
    let sim = simulate(&["--seed", "3", "--pods", "300", "--minutes", "3"]);
    let format = std::fs::read_to_string(sim.root.join("log-format.txt")).unwrap();
    for output in ["json", "table", "csv"] {
        let mut child = Command::new(BIN)
            .arg("report")
            .arg("--nat-gateways")
            .arg(format!("@{}", sim.root.join("nat-gateways.json").display()))
            .args(["--log-format", &format, "--output", output])
            .arg(sim.root.join("events"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{output}: {:?} {err}", out.status);
        assert!(
            !err.contains("panicked") && !err.contains("error"),
            "{output}: {err}"
        );
    }
}

/// The price table, printed, and a region of it priced: Frankfurt's sourced $0.052/GB.
#[test]
fn prices_are_listed_with_their_sources_and_used_by_region() {
    let out = Command::new(BIN)
        .args(["prices", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let rows = json(&out);
    let rows = rows.as_array().unwrap();
    assert!(rows.len() >= 16, "{rows:?}");
    let row = |r: &str| rows.iter().find(|x| x["region"] == r).unwrap().clone();
    assert_eq!(row("eu-central-1")["nat_usd_per_gb"], 0.052);
    assert_eq!(
        row("eu-central-1")["usage_type_bytes"],
        "EUC1-NatGateway-Bytes"
    );
    assert_eq!(row("us-east-1")["usage_type_hours"], "NatGateway-Hours");
    for r in rows {
        assert!(r["source"].as_str().unwrap().contains("pricing"), "{r}");
        assert_eq!(r["inter_az_usd_per_gb"], 0.01, "{r}");
    }
    let table = Command::new(BIN).arg("prices").output().unwrap();
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("sa-east-1") && table.contains("SAE1-NatGateway-Bytes"),
        "{table}"
    );

    let sim = simulate(&["--seed", "5", "--pods", "20", "--minutes", "2"]);
    let out = report(&sim, &[], &["--output", "json", "--region", "eu-central-1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["price_per_gb_usd"], 0.052);
    let bytes = truth(&sim)["totals"]["bytes"].as_u64().unwrap();
    let want = bytes as f64 / (1u64 << 30) as f64 * 0.052;
    let got = r["totals"]["cost_usd"].as_f64().unwrap();
    assert!((got - want).abs() <= want * 1e-9, "{got} vs {want}");
    // A region outside the table still has to be priced explicitly.
    let out = report(&sim, &[], &["--region", "mars-north-1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("mars-north-1"), "{}", stderr(&out));
}

/// AWS's ranges (`--ip-ranges`): every destination gets its region, records without
/// pkt-*-aws-service get the ranges' service, and only S3 and DynamoDB in `--region` are
/// avoidable; held to the simulator's own truth (`aws-truth.json`), and without the ranges the
/// report is the field's view (`truth.json`) as before.
#[test]
fn ip_ranges_name_regions_and_avoidable_is_same_region_only() {
    let sim = simulate(&[
        "--seed",
        "23",
        "--pods",
        "40",
        "--minutes",
        "4",
        "--nat-gateways",
        "2",
        "--aws-regions",
    ]);
    let ranges = sim.root.join("ip-ranges.json");
    let aws: Value =
        serde_json::from_slice(&std::fs::read(sim.root.join("aws-truth.json")).unwrap()).unwrap();
    // Without the ranges: the records' own field (a quarter of S3/DynamoDB says `-`: INTERNET).
    let plain = report(&sim, &[], &["--output", "json"]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert_matches_truth(&plain, &sim);
    assert!(json(&plain)["totals"].get("avoidable_bytes").is_none());

    let flag = ranges.to_str().unwrap();
    let out = report(&sim, &[], &["--output", "json", "--ip-ranges", flag]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = json(&out);
    assert_eq!(r["destinations"], aws["destinations"]);
    assert_eq!(r["totals"]["avoidable_bytes"], aws["avoidable_bytes"]);
    assert_eq!(
        r["totals"]["bytes"],
        truth(&sim)["totals"]["bytes"],
        "the ranges move no byte"
    );
    let eu = aws["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["destination"] == "S3" && d["region"] == "eu-west-1")
        .expect("the simulator sends S3 traffic to eu-west-1")["bytes"]
        .as_u64()
        .unwrap();
    assert!(eu > 0 && eu < aws["avoidable_bytes"].as_u64().unwrap());
    // Every source's destinations add up to its bytes, with regions.
    for s in r["sources"].as_array().unwrap() {
        let sum: u64 = s["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["bytes"].as_u64().unwrap())
            .sum();
        assert_eq!(Some(sum), s["bytes"].as_u64());
    }
    // In eu-west-1, only S3 there is avoidable.
    let out = report(
        &sim,
        &[],
        &[
            "--output",
            "json",
            "--ip-ranges",
            flag,
            "--region",
            "eu-west-1",
        ],
    );
    assert_eq!(json(&out)["totals"]["avoidable_bytes"].as_u64(), Some(eu));
    let table = report(&sim, &[], &["--ip-ranges", flag]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table.contains("AVOIDABLE") && table.contains("S3 eu-west-1"),
        "{table}"
    );
    assert!(table.contains("another region"), "{table}");
    // A file that is not AWS's is refused, naming it.
    let bad = sim.root.join("bad-ranges.json");
    std::fs::write(
        &bad,
        br#"{"prefixes":[{"ip_prefix":"1.2.3.0/99","region":"r","service":"S3"}]}"#,
    )
    .unwrap();
    let out = report(&sim, &[], &["--ip-ranges", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("1.2.3.0/99"), "{}", stderr(&out));
}

/// `--remote-prefixes`: internet destinations by /24, held to the simulator's account
/// (aws-truth.json `remote_prefixes`); the `--by` table gives each row's top destinations.
#[test]
fn remote_prefixes_and_top_destinations_per_row() {
    let sim = simulate(&[
        "--seed",
        "31",
        "--pods",
        "40",
        "--minutes",
        "3",
        "--aws-regions",
        "--cluster",
    ]);
    let aws: Value =
        serde_json::from_slice(&std::fs::read(sim.root.join("aws-truth.json")).unwrap()).unwrap();
    let ranges = sim.root.join("ip-ranges.json");
    let audit = sim.root.join("audit.jsonl");
    let flags = ["--ip-ranges", ranges.to_str().unwrap(), "--remote-prefixes"];
    let mut json_flags = vec!["--output", "json"];
    json_flags.extend(flags);
    let out = report_named(&sim, &json_flags, &[&audit]);
    assert!(out.status.success(), "{}", stderr(&out));
    let r = json(&out);
    let mut got: Vec<(String, u64)> = r["destinations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| Some((d["remote"].as_str()?.to_string(), d["bytes"].as_u64()?)))
        .collect();
    got.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let want: Vec<(String, u64)> = aws["remote_prefixes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["prefix"].as_str().unwrap().to_string(),
                p["bytes"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(got, want);
    let mut table_flags = vec!["--by", "workload"];
    table_flags.extend(flags);
    let out = report_named(&sim, &table_flags, &[&audit]);
    let table = String::from_utf8_lossy(&out.stdout);
    let first_row = table
        .lines()
        .position(|l| l.starts_with("1 "))
        .unwrap_or_else(|| panic!("{table}"));
    let to = table.lines().nth(first_row + 1).unwrap();
    assert!(to.trim_start().starts_with("to: "), "{table}");
    assert!(to.contains("/24") || to.contains("us-east-1"), "{to}");
    // Without either flag the table has no "to:" lines (as before).
    let plain = report_named(&sim, &["--by", "workload"], &[&audit]);
    assert!(!String::from_utf8_lossy(&plain.stdout).contains(" to: "));
}

/// `natmeter report` over report documents (docs/s3.md §4): documents alone need no settings,
/// documents and flow-log inputs together are merged (the workers find the documents as they
/// read), and a document that does not parse fails the run, naming its file. Either way the
/// merge of the halves' reports is the report of the whole, as the simulator's truth says.
#[test]
fn report_documents_merge_alone_or_with_flow_inputs() {
    let sim = simulate(&["--seed", "17", "--pods", "40", "--minutes", "6"]);
    let dir = sim.root.parent().unwrap().to_path_buf();
    let mut files: Vec<PathBuf> = std::fs::read_dir(sim.root.join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let (first, second) = files.split_at(files.len() / 2);
    let half = |name: &str, part: &[PathBuf]| {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        for f in part {
            std::fs::copy(f, d.join(f.file_name().unwrap())).unwrap();
        }
        d
    };
    let (a, b) = (half("a", first), half("b", second));
    let format = std::fs::read_to_string(sim.root.join("log-format.txt")).unwrap();
    let gateways = format!("@{}", sim.root.join("nat-gateways.json").display());
    let run = |settings: bool, inputs: &[&Path]| {
        let mut cmd = Command::new(BIN);
        cmd.args(["report", "--output", "json"]);
        if settings {
            cmd.args(["--nat-gateways", &gateways, "--log-format", &format]);
        }
        cmd.args(inputs)
            .env_remove("AWS_REGION")
            .env_remove("NATMETER_NAT_GATEWAYS")
            .output()
            .unwrap()
    };
    let document = |name: &str, input: &Path| {
        let out = run(true, &[input]);
        assert!(out.status.success(), "{}", stderr(&out));
        let path = dir.join(name);
        std::fs::write(&path, &out.stdout).unwrap();
        path
    };
    let (doc_a, doc_b) = (document("a.json", &a), document("b.json", &b));

    // Documents alone, without settings; a document with the other half's events, with them.
    for (settings, inputs, said) in [
        (false, [&doc_a, &doc_b], "2 report documents"),
        (true, [&doc_a, &b], "1 report documents"),
    ] {
        let out = run(settings, &inputs.map(PathBuf::as_path));
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains(said), "{}", stderr(&out));
        assert_matches_truth(&out, &sim);
    }

    let broken = dir.join("broken.json");
    let bytes = std::fs::read(&doc_b).unwrap();
    std::fs::write(&broken, &bytes[..bytes.len() / 2]).unwrap();
    let out = run(true, &[&a, &broken]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("broken.json") && err.contains("natmeter.report/v1"),
        "{err}"
    );
}

/// `natmeter emit` over flow events and a report document: the document is named and left out
/// (a report's sums are never published), the events are published (EMF on stdout, no network);
/// a document alone is nothing to publish (exit 1).
#[test]
fn emit_leaves_report_documents_out_naming_them() {
    let sim = simulate(&["--seed", "23", "--pods", "20", "--minutes", "3"]);
    let format = std::fs::read_to_string(sim.root.join("log-format.txt")).unwrap();
    let gateways = format!("@{}", sim.root.join("nat-gateways.json").display());
    let events = sim.root.join("events");
    let settings = ["--nat-gateways", &gateways, "--log-format", &format];
    let out = Command::new(BIN)
        .args(["report", "--output", "json"])
        .args(settings)
        .arg(&events)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let doc = sim.root.parent().unwrap().join("report.json");
    std::fs::write(&doc, &out.stdout).unwrap();
    let emit = |inputs: &[&Path]| {
        Command::new(BIN)
            .args(["emit", "--sink", "emf", "--namespace", "Test"])
            .args(settings)
            .args(inputs)
            .env_remove("NATMETER_EMF_NAMESPACE")
            .output()
            .unwrap()
    };
    let both = emit(&[&events, &doc]);
    assert!(both.status.success(), "{}", stderr(&both));
    assert!(
        stderr(&both).contains("report.json: a natmeter.report/v1 document")
            && stderr(&both).contains("left out"),
        "{}",
        stderr(&both)
    );
    assert!(
        String::from_utf8_lossy(&both.stdout).contains("\"_aws\""),
        "EMF lines for the events"
    );
    let alone = emit(&[&doc]);
    assert_eq!(alone.status.code(), Some(1), "{}", stderr(&alone));
    assert!(
        stderr(&alone).contains("no flow-log input to publish"),
        "{}",
        stderr(&alone)
    );
}
