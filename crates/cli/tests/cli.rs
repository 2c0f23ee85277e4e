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
            "IngestLag"
        ]
    );
}
