//! The bad-input matrix (issue 6 §2) for `natmeter report`: what only the CLI reads (files
//! detected by content: S3 flow-log text with a header, `.gz`, JSON arrays and lines of events,
//! decoded payloads) and how bad files end. The engine's own rows are in
//! crates/core/tests/bad_input_matrix.rs.
//!
//! Each row's file is given together with one good event file. The contract (docs/contracts.md
//! §4.1): a bad record is skipped and counted (`records.parse_errors`); a file that cannot be
//! read or decoded is reported on stderr with its path and the reason, and the others are still
//! processed (exit 0); the CLI never panics or dies. Every row runs, all mismatches are collected
//! and the test fails once, listing them.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use natmeter_sim::{lambda_event, SIM_FIELDS};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_natmeter");
const NAT_ENI: &str = "eni-0e2e00000000000a1";
const NAT_IP: &str = "10.0.0.10";
const OTHER_ENI: &str = "eni-0e2e00000000000b2";
const POD_IP: &str = "10.0.128.4";
const REMOTE_IP: &str = "3.218.181.255";
const STREAM: &str = "eni-0e2e00000000000a1-all";
const OTHER_STREAM: &str = "eni-0e2e00000000000b2-all";
const GATEWAYS: &str =
    r#"[{"id":"nat-0e2e00000000000a1","eni":"eni-0e2e00000000000a1","private_ips":["10.0.0.10"]}]"#;
const START: u64 = 1_764_547_205;

fn log_format() -> String {
    SIM_FIELDS
        .iter()
        .map(|f| format!("${{{f}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A counted outbound record (rule A) in the simulator's format, `bytes` replaced.
fn record(bytes: &str) -> String {
    format!(
        "5 123456789012 us-east-1 vpc-0a1b2c3d4e5f60718 use1-az1 subnet-0b54489040e3ad369 - {NAT_ENI} ingress {POD_IP} {NAT_IP} 35943 443 6 {POD_IP} {REMOTE_IP} - - - 281 {bytes} {START} {} ACCEPT OK IPv4",
        START + 9
    )
}

fn good() -> String {
    record("336781")
}

fn payload_with(stream: &str, extra_keys: &str, messages: &[String]) -> String {
    let events: Vec<String> = messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            format!(
                r#"{{"id":"{i:056}","timestamp":{},"message":{}}}"#,
                START * 1000,
                serde_json::to_string(m).unwrap()
            )
        })
        .collect();
    format!(
        r#"{{"messageType":"DATA_MESSAGE","owner":"123456789012","logGroup":"/aws/vpc/flow-logs",{extra_keys}"logStream":"{stream}","logEvents":[{}]}}"#,
        events.join(",")
    )
}

fn payload(messages: &[String]) -> String {
    payload_with(STREAM, "", messages)
}

fn event(messages: &[String]) -> Vec<u8> {
    lambda_event(payload(messages).as_bytes()).into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// What a row must give, on top of the good file's one counted record.
enum Expect {
    /// The file was read: its records (read, counted, parse errors); stderr mentions these.
    Read {
        read: u64,
        counted: u64,
        parse_errors: u64,
        stderr: &'static [&'static str],
    },
    /// The file (or one document of it) could not be decoded: stderr names the file and says
    /// this; `read`/`counted` are what the file's other documents still contributed.
    FileError {
        reason: &'static str,
        read: u64,
        counted: u64,
    },
}

struct Row {
    name: &'static str,
    file: &'static str,
    content: Vec<u8>,
    expect: Expect,
}

fn read(read: u64, counted: u64, parse_errors: u64, stderr: &'static [&'static str]) -> Expect {
    Expect::Read {
        read,
        counted,
        parse_errors,
        stderr,
    }
}

fn file_error(reason: &'static str) -> Expect {
    Expect::FileError {
        reason,
        read: 0,
        counted: 0,
    }
}

fn rows() -> Vec<Row> {
    let g = good();
    let header = SIM_FIELDS.join(" ");
    let s3 = |lines: &[&str]| format!("{header}\n{}\n", lines.join("\n")).into_bytes();
    let big_event = gzip(payload(&vec![g.clone(); 50]).as_bytes());
    let truncated_event = format!(
        r#"{{"awslogs":{{"data":"{}"}}}}"#,
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            &big_event[..big_event.len() / 2]
        )
    );
    let bomb_event = format!(
        r#"{{"awslogs":{{"data":"{}"}}}}"#,
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            gzip(&vec![b'0'; 64 << 20])
        )
    );
    let one_mb: Vec<String> = vec![g.clone(); 1_000_000 / (g.len() + 80)];
    let n_one_mb = one_mb.len() as u64;
    let row = |name, file, content: Vec<u8>, expect| Row {
        name,
        file,
        content,
        expect,
    };
    vec![
        // ---- flow-log text
        row(
            "text_non_utf8_line",
            "flows.log",
            [b"\xff\xfe garbage\n".as_slice(), g.as_bytes()].concat(),
            read(2, 1, 1, &["the line is not valid UTF-8"]),
        ),
        row(
            "text_utf16le_with_bom",
            "flows.log",
            [
                &[0xff, 0xfe][..],
                &g.encode_utf16()
                    .flat_map(u16::to_le_bytes)
                    .collect::<Vec<u8>>(),
            ]
            .concat(),
            read(1, 0, 1, &["not valid UTF-8"]),
        ),
        row(
            "text_crlf_and_utf8_bom",
            "flows.log",
            format!("\u{feff}{g}\r\n{g}\r\n").into_bytes(),
            read(2, 2, 0, &[]),
        ),
        row(
            "text_binary_garbage",
            "blob",
            (0..4096u32).map(|i| 0x80 | (i % 0x7f) as u8).collect(),
            read(1, 0, 1, &["not valid UTF-8"]),
        ),
        row(
            "text_huge_line_900KB_and_100000_fields",
            "flows.log",
            format!(
                "{}\n{}\n{g}\n",
                "A".repeat(900_000),
                vec!["1"; 100_000].join(" ")
            )
            .into_bytes(),
            read(3, 1, 2, &["found 1", "found 100000"]),
        ),
        row(
            "text_negative_and_overflowing_bytes",
            "flows.log",
            format!(
                "{}\n{}\n{g}\n",
                record("-5"),
                record("18446744073709551616")
            )
            .into_bytes(),
            read(
                3,
                1,
                2,
                &[
                    "field `bytes`: expected a non-negative integer",
                    "integer too large for 64 bits",
                ],
            ),
        ),
        row(
            "text_with_json_extension",
            "flows.json",
            g.clone().into_bytes(),
            file_error("not valid JSON"),
        ),
        // ---- S3 flow-log files (header line; optionally gzip)
        row(
            "s3_header_and_bad_lines",
            "flows.log",
            s3(&[&g, "garbage", &record("-5")]),
            read(3, 1, 2, &["found 1", "field `bytes`"]),
        ),
        row(
            "s3_gz_header_and_bad_lines",
            "flows.log.gz",
            gzip(&s3(&[&g, "garbage"])),
            read(2, 1, 1, &["found 1"]),
        ),
        row("s3_header_only", "flows.log", s3(&[]), read(0, 0, 0, &[])),
        row(
            "s3_gz_truncated",
            "flows.log.gz",
            {
                let z = gzip(&s3(&vec![g.as_str(); 50]));
                z[..z.len() / 2].to_vec()
            },
            file_error("not valid gzip"),
        ),
        row(
            "s3_gz_of_nothing",
            "flows.log.gz",
            gzip(b""),
            file_error("empty file"),
        ),
        row(
            "s3_header_duplicate_field",
            "flows.log",
            format!("version bytes srcaddr bytes\n{g}\n").into_bytes(),
            file_error("bad header line: flow-log format names field `bytes` twice"),
        ),
        row(
            "s3_header_300_columns",
            "flows.log",
            format!(
                "version {}\n",
                (0..299)
                    .map(|i| format!("f{i}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
            .into_bytes(),
            file_error("at most 256"),
        ),
        // The CLI reads local files whole (S3 objects can be large), so there is no decoded-size
        // cap here: 64 MiB of zeros inflate to one 64 MiB line, one parse error.
        row(
            "s3_gz_of_64MB_of_zeros",
            "zeros.log.gz",
            gzip(&vec![0u8; 64 << 20]),
            read(1, 0, 1, &["found 1"]),
        ),
        // ---- JSON files
        row(
            "json_10000_nested_arrays",
            "deep.json",
            "[".repeat(10_000)
                .into_bytes()
                .into_iter()
                .chain("]".repeat(10_000).into_bytes())
                .collect(),
            file_error("not a CloudWatch Logs subscription event"),
        ),
        row(
            "json_10000_nested_objects",
            "deep.json",
            format!("{}0{}", r#"{"a":"#.repeat(10_000), "}".repeat(10_000)).into_bytes(),
            file_error("neither a Lambda event"),
        ),
        row(
            "json_lines_good_and_bad_events",
            "events.jsonl",
            [
                event(std::slice::from_ref(&g)),
                b"\n".to_vec(),
                br#"{"awslogs":{"data":"!!"}}"#.to_vec(),
                b"\n".to_vec(),
                event(&[g.clone(), g.clone()]),
            ]
            .concat(),
            Expect::FileError {
                reason: "awslogs.data is not valid base64",
                read: 3,
                counted: 3,
            },
        ),
        row(
            "json_array_of_events_one_truncated",
            "events.json",
            format!(
                "[{},{truncated_event}]",
                String::from_utf8(event(std::slice::from_ref(&g))).unwrap()
            )
            .into_bytes(),
            Expect::FileError {
                reason: "awslogs.data is not valid gzip",
                read: 1,
                counted: 1,
            },
        ),
        // A byte order mark with whitespace after it (editors and exports write both) still
        // leaves a JSON document: it must be read as JSON, in a file of any name.
        row(
            "json_bom_then_whitespace_then_event",
            "exported",
            [
                "\u{feff} \r\n\t".as_bytes(),
                &event(std::slice::from_ref(&g)),
            ]
            .concat(),
            read(1, 1, 0, &[]),
        ),
        row(
            "json_whitespace_bom_whitespace_then_event",
            "event.json",
            ["\n\u{feff}\n".as_bytes(), &event(std::slice::from_ref(&g))].concat(),
            read(1, 1, 0, &[]),
        ),
        row(
            "json_event_gzip_bomb",
            "bomb.json",
            bomb_event.into_bytes(),
            file_error("inflates to more than"),
        ),
        row(
            "json_event_1MB_of_one_repeated_line",
            "big.json",
            event(&one_mb),
            read(n_one_mb, n_one_mb, 0, &[]),
        ),
        row(
            "json_event_bad_records",
            "event.json",
            event(&["x".into(), record("1.5"), g.clone()]),
            read(
                3,
                1,
                2,
                &[
                    "logEvents[0]: expected 26 fields",
                    "logEvents[1]: field `bytes`",
                ],
            ),
        ),
        // A decoded payload file goes straight to the full parse (no first-kilobyte peek), so an
        // unknown key named logStream is ignored and the NAT batch counts.
        row(
            "json_payload_with_a_nested_logStream_key",
            "payload.json",
            payload_with(
                STREAM,
                &format!(r#""x":{{"logStream":"{OTHER_STREAM}"}},"#),
                std::slice::from_ref(&g),
            )
            .into_bytes(),
            read(1, 1, 0, &[]),
        ),
        row(
            "json_payload_of_another_eni",
            "payload.json",
            payload_with(OTHER_STREAM, "", &[g.replace(NAT_ENI, OTHER_ENI)]).into_bytes(),
            read(0, 0, 0, &[]),
        ),
        row(
            "json_payload_logEvents_null",
            "payload.json",
            br#"{"messageType":"DATA_MESSAGE","logEvents":null}"#.to_vec(),
            file_error("DATA_MESSAGE without logEvents"),
        ),
        row(
            "json_payload_raw_invalid_utf8",
            "payload.json",
            payload(std::slice::from_ref(&g))
                .replace("IPv4", "IP~~")
                .into_bytes()
                .into_iter()
                .map(|b| if b == b'~' { 0xff } else { b })
                .collect(),
            file_error("not valid JSON"),
        ),
    ]
}

fn counters(report: &Value) -> (u64, u64, u64) {
    let r = &report["records"];
    let n = |k: &str| r[k].as_u64().unwrap_or(u64::MAX);
    (n("read"), n("counted"), n("parse_errors"))
}

fn run(dir: &Path, row: &Row, good_file: &Path) -> Result<(), String> {
    let path = dir.join(row.name).join(row.file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &row.content).unwrap();
    let out = Command::new(BIN)
        .arg("report")
        .args(["--nat-gateways", GATEWAYS, "--log-format", &log_format()])
        .args([
            "--region",
            "us-east-1",
            "--output",
            "json",
            "--threads",
            "1",
        ])
        .arg(&path)
        .arg(good_file)
        .env_remove("NATMETER_LOG_FORMAT")
        .env_remove("NATMETER_NAT_GATEWAYS")
        .env_remove("NATMETER_PRIVATE_CIDRS")
        .env_remove("NATMETER_PRICE_PER_GB")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail = || {
        stderr
            .chars()
            .rev()
            .take(600)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>()
    };
    if stderr.contains("panicked") {
        return Err(format!("panicked: {}", tail()));
    }
    match out.status.code() {
        Some(0) => {}
        Some(c) => return Err(format!("exit status {c}: {}", tail())),
        None => return Err(format!("killed by a signal ({:?}): {}", out.status, tail())),
    }
    let report: Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("stdout is not the JSON report: {e}"))?;
    let got = counters(&report);
    let want = match &row.expect {
        Expect::Read {
            read,
            counted,
            parse_errors,
            ..
        } => (read + 1, counted + 1, *parse_errors),
        Expect::FileError { read, counted, .. } => (read + 1, counted + 1, 0),
    };
    if got != want {
        return Err(format!(
            "records (read, counted, parse_errors) {got:?}, expected {want:?}; stderr: {}",
            tail()
        ));
    }
    match &row.expect {
        Expect::Read {
            stderr: needles, ..
        } => {
            if let Some(n) = needles.iter().find(|n| !stderr.contains(*n)) {
                return Err(format!("stderr lacks {n:?}: {}", tail()));
            }
        }
        Expect::FileError { reason, .. } => {
            // The path and the reason, on one line.
            let name = path.display().to_string();
            if !stderr
                .lines()
                .any(|l| l.contains(&name) && l.contains(reason))
            {
                return Err(format!(
                    "no stderr line names {name} with {reason:?}: {}",
                    tail()
                ));
            }
        }
    }
    Ok(())
}

#[test]
fn bad_input_matrix_cli() {
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let good_file = dir.path().join("good.json");
    std::fs::write(&good_file, event(&[good()])).unwrap();
    let rows = rows();
    let mut failures = Vec::new();
    for row in &rows {
        if let Err(e) = run(dir.path(), row, &good_file) {
            failures.push(format!("  {}: {e}", row.name));
        }
    }
    println!(
        "CLI bad-input matrix: {} rows in {:.1}s",
        rows.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "{} of {} CLI bad-input rows do not hold:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
