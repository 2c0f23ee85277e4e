//! `natmeter report` on Parquet flow-log files (`.log.parquet`, docs/attribution.md §1.5): the
//! same records as a text file with a header line give the identical report, a file lacking a
//! column fails as a header lacking it does, and a broken Parquet file is reported with its
//! path while the others are still processed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use natmeter_core::sources::subscription::{event_data, Decoder};
use natmeter_core::sources::Payload;
use parquet::basic::{Compression, GzipLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_natmeter");

/// AWS's Parquet types (AWS "Flow log records"): these INT_32, these INT_64, the rest STRING.
fn aws_type(field: &str) -> &'static str {
    match field {
        "version" | "srcport" | "dstport" | "protocol" | "tcp-flags" | "traffic-path" => "int32",
        "packets" | "bytes" | "start" | "end" => "int64",
        _ => "binary",
    }
}

/// Writes flow-log lines of `fields` as AWS writes them to S3 in Parquet: `_` for `-` in the
/// column names, INT32 / INT64 / UTF8 columns, `-` as null, GZIP pages, `group` rows per row
/// group. `compress: false` writes plain uncompressed pages (a bigger file from fewer rows).
fn write_parquet(path: &Path, fields: &[&str], lines: &[&str], group: usize, compress: bool) {
    let columns: Vec<String> = fields
        .iter()
        .map(|f| {
            let name = f.replace('-', "_");
            match aws_type(f) {
                "int32" => format!("optional int32 {name} (INT_32);"),
                "int64" => format!("optional int64 {name} (INT_64);"),
                _ => format!("optional binary {name} (UTF8);"),
            }
        })
        .collect();
    let schema =
        parse_message_type(&format!("message flowlogs {{ {} }}", columns.join(" "))).unwrap();
    let props = WriterProperties::builder()
        .set_compression(if compress {
            Compression::GZIP(GzipLevel::default())
        } else {
            Compression::UNCOMPRESSED
        })
        .set_dictionary_enabled(compress)
        .build();
    let mut w = SerializedFileWriter::new(
        std::fs::File::create(path).unwrap(),
        Arc::new(schema),
        Arc::new(props),
    )
    .unwrap();
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .map(|l| l.split_ascii_whitespace().collect())
        .collect();
    for chunk in rows.chunks(group) {
        let mut rg = w.next_row_group().unwrap();
        for (c, f) in fields.iter().enumerate() {
            let mut cw = rg.next_column().unwrap().unwrap();
            let defs: Vec<i16> = chunk.iter().map(|r| i16::from(r[c] != "-")).collect();
            let present = chunk.iter().map(|r| r[c]).filter(|v| *v != "-");
            match aws_type(f) {
                "int32" => {
                    let v: Vec<i32> = present.map(|v| v.parse().unwrap()).collect();
                    cw.typed::<Int32Type>()
                        .write_batch(&v, Some(&defs), None)
                        .unwrap();
                }
                "int64" => {
                    let v: Vec<i64> = present.map(|v| v.parse().unwrap()).collect();
                    cw.typed::<Int64Type>()
                        .write_batch(&v, Some(&defs), None)
                        .unwrap();
                }
                _ => {
                    let v: Vec<ByteArray> = present.map(ByteArray::from).collect();
                    cw.typed::<ByteArrayType>()
                        .write_batch(&v, Some(&defs), None)
                        .unwrap();
                }
            }
            cw.close().unwrap();
        }
        rg.close().unwrap();
    }
    w.close().unwrap();
}

fn report(gateways: &str, inputs: &[&Path], flags: &[&str]) -> Output {
    Command::new(BIN)
        .args(["report", "--nat-gateways", gateways, "--output", "json"])
        .args(flags)
        .args(inputs)
        .env_remove("AWS_REGION")
        .output()
        .unwrap()
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// Every record of the simulated events, as flow-log lines.
fn sim_lines(root: &Path) -> Vec<String> {
    let (mut decoder, mut buf) = (Decoder::default(), Vec::new());
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("events"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut lines = Vec::new();
    for f in files {
        let event = std::fs::read(f).unwrap();
        decoder
            .decode(&event_data(&event).unwrap(), &mut buf)
            .unwrap();
        for ev in Payload::parse(&buf).unwrap().log_events {
            lines.push(ev.message.into_owned());
        }
    }
    lines
}

/// A simulated cluster's records as S3 text with a header line and as Parquet (AWS's shape,
/// several row groups; once more under a name that does not say Parquet, found by content):
/// identical reports, on one thread and on several, and the simulator's truth.
#[test]
fn parquet_and_text_with_a_header_give_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("sim");
    let out = Command::new(BIN)
        .args(["simulate", "--seed", "11", "--pods", "60", "--minutes", "4"])
        .arg("--out")
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let format = std::fs::read_to_string(root.join("log-format.txt")).unwrap();
    let fields: Vec<&str> = format
        .split_whitespace()
        .map(|f| f.trim_start_matches("${").trim_end_matches('}'))
        .collect();
    let lines = sim_lines(&root);
    assert!(lines.len() > 500, "{} records", lines.len());
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();

    let text = dir.path().join("flows.log");
    std::fs::write(
        &text,
        format!("{}\n{}\n", fields.join(" "), lines.join("\n")),
    )
    .unwrap();
    let pq = dir.path().join("flows.log.parquet");
    write_parquet(&pq, &fields, &refs, 97, true);
    let unnamed = dir.path().join("flows.bin");
    std::fs::copy(&pq, &unnamed).unwrap();

    let gateways = format!("@{}", root.join("nat-gateways.json").display());
    let want = json(&report(&gateways, &[&text], &[]));
    assert!(want["records"]["counted"].as_u64().unwrap() > 0);
    assert_eq!(want["records"]["parse_errors"], 0);
    let truth: Value =
        serde_json::from_slice(&std::fs::read(root.join("truth.json")).unwrap()).unwrap();
    for k in ["bytes", "outbound_bytes", "inbound_bytes", "packets"] {
        assert_eq!(want["totals"][k], truth["totals"][k], "{k}");
    }
    for input in [&pq, &unnamed] {
        for threads in ["1", "3"] {
            let got = json(&report(&gateways, &[input], &["--threads", threads]));
            assert_eq!(got, want, "{} on {threads} threads", input.display());
        }
    }

    // Bigger than the 4 MiB the CLI reads a file's start in: streamed from disk, in pieces.
    let mut many = Vec::new();
    while many.len() < 40_000 {
        many.extend_from_slice(&refs);
    }
    let big_text = dir.path().join("big.log");
    std::fs::write(
        &big_text,
        format!("{}\n{}\n", fields.join(" "), many.join("\n")),
    )
    .unwrap();
    let big = dir.path().join("big.log.parquet");
    write_parquet(&big, &fields, &many, 10_000, false);
    assert!(std::fs::metadata(&big).unwrap().len() > 4 << 20);
    let want = json(&report(&gateways, &[&big_text], &[]));
    for threads in ["1", "2"] {
        let got = json(&report(&gateways, &[&big], &["--threads", threads]));
        assert_eq!(got, want, "big file on {threads} threads");
    }
}

const NAT: &str =
    r#"[{"id":"nat-0e2e00000000000a1","eni":"eni-0e2e00000000000a1","private_ips":["10.0.0.10"]}]"#;

const ALL: [&str; 9] = [
    "version",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "bytes",
    "start",
    "action",
];

/// A header line and records (A), (B) and (D) of one pod, in a format of `fields` (of [`ALL`]).
fn small(fields: &[&str]) -> Vec<String> {
    let all = [
        "version interface-id srcaddr dstaddr pkt-srcaddr pkt-dstaddr bytes start action",
        "5 eni-0e2e00000000000a1 10.0.128.4 10.0.0.10 10.0.128.4 3.218.181.255 4000 1764547205 ACCEPT",
        "5 eni-0e2e00000000000a1 10.0.0.10 3.218.181.255 10.0.0.10 3.218.181.255 4000 1764547205 ACCEPT",
        "5 eni-0e2e00000000000a1 10.0.0.10 10.0.128.4 3.218.181.255 10.0.128.4 9000 1764547265 ACCEPT",
    ];
    let keep: Vec<usize> = fields
        .iter()
        .map(|f| ALL.iter().position(|n| n == f).unwrap())
        .collect();
    all.iter()
        .map(|l| {
            let v: Vec<&str> = l.split(' ').collect();
            keep.iter().map(|&i| v[i]).collect::<Vec<_>>().join(" ")
        })
        .collect()
}

/// A file without `srcaddr`: no rule of its own, the same report as the text file whose header
/// lacks it (each NAT record a parse error naming the field), rows numbered from 1 where the
/// text's lines are numbered from its header.
#[test]
fn a_missing_column_fails_as_a_header_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let fields = [
        "version",
        "interface-id",
        "dstaddr",
        "pkt-srcaddr",
        "pkt-dstaddr",
        "bytes",
        "start",
        "action",
    ];
    let lines = small(&fields);
    let refs: Vec<&str> = lines[1..].iter().map(String::as_str).collect();
    let text = dir.path().join("a.log");
    std::fs::write(&text, format!("{}\n", lines.join("\n"))).unwrap();
    let pq = dir.path().join("a.log.parquet");
    write_parquet(&pq, &fields, &refs, 2, true);
    let want = json(&report(NAT, &[&text], &[]));
    assert_eq!(want["records"]["parse_errors"], 3);
    let got = json(&report(NAT, &[&pq], &[]));
    let message = got.to_string();
    assert!(
        message.contains("a.log.parquet:1: field `srcaddr`: a value is required here"),
        "{message}"
    );
    let normalised = message
        .replace("a.log.parquet:1:", "a.log:2:")
        .replace("a.log.parquet:2:", "a.log:3:")
        .replace("a.log.parquet:3:", "a.log:4:");
    assert_eq!(normalised, want.to_string());
}

/// A truncated Parquet file, one that is not Parquet at all under a Parquet name, and a good
/// one: the bad ones are reported on stderr with their paths and reasons, and the good one
/// counted (exit 0).
#[test]
fn broken_parquet_files_are_reported_and_the_others_processed() {
    let dir = tempfile::tempdir().unwrap();
    let fields = ALL;
    let lines = small(&fields);
    let refs: Vec<&str> = lines[1..].iter().map(String::as_str).collect();
    let good = dir.path().join("good.log.parquet");
    write_parquet(&good, &fields, &refs, 2, true);
    let bytes = std::fs::read(&good).unwrap();
    let cut = dir.path().join("cut.log.parquet");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let text = dir.path().join("text.parquet");
    std::fs::write(&text, "version bytes\n2 10\n").unwrap();
    let out = report(NAT, &[&cut, &text, &good], &[]);
    let r = json(&out);
    assert_eq!(r["records"]["counted"], 2);
    assert_eq!(r["totals"]["bytes"], 13000);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{}: starts like Parquet but does not end with PAR1",
            cut.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("{}: not a Parquet file", text.display())),
        "{stderr}"
    );
    // Only broken files: nothing could be read.
    let out = report(NAT, &[&cut], &[]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
