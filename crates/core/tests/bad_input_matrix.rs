//! The bad-input matrix (issue 6 §2) for the pure core: every way a Lambda event, a decoded
//! payload, a flow-log record, a format string or a `NATMETER_*` setting can be wrong, each mapped
//! to its exact outcome under the contract (docs/contracts.md §5.2, §3):
//!
//! - `SkipCounted`: a bad record is skipped and counted; the row gives the engine's counters after
//!   ingesting (records read / counted / parse errors / skips by reason, NAT bytes) and a
//!   substring of a parse-error sample. A bad line never fails the batch.
//! - `EventError`: a bad event fails the invocation (Lambda retries it, the on-failure
//!   destination keeps it) with a clear message; nothing of it is counted.
//! - `FormatError`: a flow-log format string is refused with a clear message.
//! - `StartupError`: a bad setting stops start-up, naming the variable.
//!
//! The function-side matrix (tests/e2e/test_bad_input_matrix.py) runs such rows through the Lambda
//! process and CloudWatch; this one runs them through the library in-process. Every row runs
//! (a panic is caught and reported as that row's failure), all mismatches are collected, and the
//! test fails once, listing them all.

use std::collections::HashMap;
use std::io::Write;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use base64::Engine as _;
use natmeter_core::attribution::SkipReason;
use natmeter_core::config::Config;
use natmeter_core::engine::{Attributor, BatchKind, Results};
use natmeter_core::flowlog::Format;
use natmeter_core::metrics::{datums, source_details, MetricOptions};
use natmeter_core::report::Report;
use natmeter_core::sources::subscription::DEFAULT_MAX_DECODED_BYTES;
use natmeter_core::sources::{self, Reader, Text};
use natmeter_core::topology::{Topology, DEFAULT_PRIVATE_CIDRS};
use natmeter_sim::{lambda_event, SIM_FIELDS};

// ---------------------------------------------------------------- the fixture -------------------

/// One NAT gateway; records are in the simulator's 26-field v5 format (as in tests/e2e/flowgen.py).
const NAT_ID: &str = "nat-0e2e00000000000a1";
const NAT_ENI: &str = "eni-0e2e00000000000a1";
const NAT_IP: &str = "10.0.0.10";
const OTHER_ENI: &str = "eni-0e2e00000000000b2";
const POD_IP: &str = "10.0.128.4";
const REMOTE_IP: &str = "3.218.181.255";
const STREAM: &str = "eni-0e2e00000000000a1-all";
const OTHER_STREAM: &str = "eni-0e2e00000000000b2-all";
/// `bytes` of the good record.
const GOOD_BYTES: u64 = 336_781;
const START: u64 = 1_764_547_205;
const GATEWAYS: &str = r#"[{"id":"nat-0e2e00000000000a1","eni":"eni-0e2e00000000000a1","private_ips":["10.0.0.10"],"az_id":"use1-az1"}]"#;
/// A decode error must not leave a bigger output buffer than this in a warm container.
const MAX_BUF_AFTER_ERROR: usize = 4 << 20;
/// Errors are read by people: they must not echo a megabyte of input.
const MAX_MESSAGE: usize = 1024;

fn log_format() -> String {
    SIM_FIELDS
        .iter()
        .map(|f| format!("${{{f}}}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A counted outbound private-side record (rule A: pod → NAT → remote), with `over` replacing
/// fields by name.
fn record(over: &[(&str, &str)]) -> String {
    let start = START.to_string();
    let end = (START + 9).to_string();
    let mut values: Vec<(&str, &str)> = vec![
        ("version", "5"),
        ("account-id", "123456789012"),
        ("region", "us-east-1"),
        ("vpc-id", "vpc-0a1b2c3d4e5f60718"),
        ("az-id", "use1-az1"),
        ("subnet-id", "subnet-0b54489040e3ad369"),
        ("instance-id", "-"),
        ("interface-id", NAT_ENI),
        ("flow-direction", "ingress"),
        ("srcaddr", POD_IP),
        ("dstaddr", NAT_IP),
        ("srcport", "35943"),
        ("dstport", "443"),
        ("protocol", "6"),
        ("pkt-srcaddr", POD_IP),
        ("pkt-dstaddr", REMOTE_IP),
        ("pkt-src-aws-service", "-"),
        ("pkt-dst-aws-service", "-"),
        ("traffic-path", "-"),
        ("packets", "281"),
        ("bytes", "336781"),
        ("start", &start),
        ("end", &end),
        ("action", "ACCEPT"),
        ("log-status", "OK"),
        ("type", "IPv4"),
    ];
    assert_eq!(
        values.iter().map(|v| v.0).collect::<Vec<_>>(),
        SIM_FIELDS,
        "the fixture follows the simulator's format"
    );
    for (k, v) in over {
        let slot = values
            .iter_mut()
            .find(|(n, _)| n == k)
            .unwrap_or_else(|| panic!("no field {k}"));
        slot.1 = v;
    }
    values.iter().map(|v| v.1).collect::<Vec<_>>().join(" ")
}

fn good() -> String {
    record(&[])
}

/// `logEvents` of one log event per message, as CloudWatch writes them.
fn log_events(messages: &[String]) -> String {
    let mut s = String::from("[");
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&log_event(i, &serde_json::to_string(m).unwrap()));
    }
    s.push(']');
    s
}

fn log_event(i: usize, message_json: &str) -> String {
    format!(
        r#"{{"id":"{i:056}","timestamp":{},"message":{message_json}}}"#,
        START * 1000
    )
}

/// A payload in CloudWatch's key order (`logStream` before `logEvents`), `events` given as JSON.
fn payload_text(message_type: &str, stream: &str, events: &str) -> String {
    format!(
        r#"{{"messageType":"{message_type}","owner":"123456789012","logGroup":"/aws/vpc/flow-logs","logStream":"{stream}","subscriptionFilters":["natmeter"],"logEvents":{events}}}"#
    )
}

fn payload(messages: &[String]) -> Vec<u8> {
    payload_text("DATA_MESSAGE", STREAM, &log_events(messages)).into_bytes()
}

fn event_of(payload: &[u8]) -> Vec<u8> {
    lambda_event(payload).into_bytes()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An event whose `awslogs.data` is base64 of `raw` (gzip or not).
fn data_event(raw: &[u8]) -> Vec<u8> {
    envelope(&b64(raw))
}

/// An event whose `awslogs.data` is `data`, verbatim (JSON-escaped).
fn envelope(data: &str) -> Vec<u8> {
    format!(
        r#"{{"awslogs":{{"data":{}}}}}"#,
        serde_json::to_string(data).unwrap()
    )
    .into_bytes()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn good_gzip() -> Vec<u8> {
    gzip(&payload(&[good()]))
}

/// `hay` with the first `from` replaced by `to`.
fn replace_bytes(hay: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let at = hay
        .windows(from.len())
        .position(|w| w == from)
        .expect("pattern present");
    [&hay[..at], to, &hay[at + from.len()..]].concat()
}

fn nested(depth: usize) -> String {
    "[".repeat(depth) + &"]".repeat(depth)
}

/// As many log events of `line` as fit in ~1 MB of decoded payload (CloudWatch's batch size).
fn one_mb_of(line: &str) -> (Vec<u8>, u64) {
    let one = log_event(0, &serde_json::to_string(line).unwrap()).len() + 1;
    let head = payload(&[]).len();
    let n = (1_040_000 - head) / one;
    let p = payload(&vec![line.to_string(); n]);
    assert!((1_000_000..=1_048_576).contains(&p.len()), "{}", p.len());
    (p, n as u64)
}

// ---------------------------------------------------------------- rows --------------------------

enum Input {
    /// A Lambda event's bytes, through `Attributor::ingest` (warm reader).
    Event(Vec<u8>),
    /// A decoded CloudWatch Logs payload, wrapped by `simulate::lambda_event` and then as `Event`.
    Payload(Vec<u8>),
    /// Flow-log records under the engine's format, one log event each in a subscription batch AND
    /// one line each of flow-log text (`Input::Text`): both paths must give the same counters.
    Records(Vec<String>),
    /// Flow-log text through `Input::Text`, under `format` (either syntax) or the engine's own.
    Lines {
        format: Option<String>,
        text: Vec<u8>,
    },
    /// A format string in AWS syntax (`NATMETER_LOG_FORMAT`, `--log-format`).
    Format(String),
    /// The header line of an S3-delivered flow-log file.
    Header(String),
    /// `NATMETER_*` settings over a good base (None removes the variable).
    Env(Vec<(&'static str, Option<String>)>),
}

impl Input {
    fn kind(&self) -> &'static str {
        match self {
            Input::Event(_) => "event",
            Input::Payload(_) => "payload",
            Input::Records(_) => "record",
            Input::Lines { .. } => "lines",
            Input::Format(_) | Input::Header(_) => "format",
            Input::Env(_) => "env",
        }
    }
}

#[derive(Debug, Clone)]
enum Expect {
    /// Accepted; bad records skipped and counted. `bytes` is the ledger's (saturating) total.
    SkipCounted {
        batch: BatchKind,
        read: u64,
        counted: u64,
        parse_errors: u64,
        skipped: Vec<(SkipReason, u64)>,
        bytes: u64,
        /// A substring of some parse-error sample.
        sample: Option<&'static str>,
    },
    /// The event is refused; the message contains this.
    EventError(&'static str),
    /// The format string is refused; the message contains this.
    FormatError(&'static str),
    /// Start-up fails naming `variable`; the message contains `substring`.
    StartupError {
        variable: &'static str,
        substring: &'static str,
    },
}

/// Accepted: `read` records, `counted` of them counted (each GOOD_BYTES unless `.bytes()` says
/// otherwise), `parse_errors` skipped as unparseable.
fn skip_counted(read: u64, counted: u64, parse_errors: u64) -> Expect {
    Expect::SkipCounted {
        batch: BatchKind::Data,
        read,
        counted,
        parse_errors,
        skipped: Vec::new(),
        bytes: counted.saturating_mul(GOOD_BYTES),
        sample: None,
    }
}

impl Expect {
    fn bytes(mut self, b: u64) -> Self {
        if let Expect::SkipCounted { bytes, .. } = &mut self {
            *bytes = b;
        }
        self
    }
    fn skipped(mut self, r: SkipReason, n: u64) -> Self {
        if let Expect::SkipCounted { skipped, .. } = &mut self {
            skipped.push((r, n));
        }
        self
    }
    fn sample(mut self, s: &'static str) -> Self {
        if let Expect::SkipCounted { sample, .. } = &mut self {
            *sample = Some(s);
        }
        self
    }
    fn batch(mut self, k: BatchKind) -> Self {
        if let Expect::SkipCounted { batch, .. } = &mut self {
            *batch = k;
        }
        self
    }
    fn kind(&self) -> &'static str {
        match self {
            Expect::SkipCounted { .. } => "skip_counted",
            Expect::EventError(_) => "event_error",
            Expect::FormatError(_) => "format_error",
            Expect::StartupError { .. } => "startup_error",
        }
    }
}

fn startup(variable: &'static str, substring: &'static str) -> Expect {
    Expect::StartupError {
        variable,
        substring,
    }
}

struct Row {
    name: &'static str,
    input: Input,
    expect: Expect,
}

fn row(name: &'static str, input: Input, expect: Expect) -> Row {
    Row {
        name,
        input,
        expect,
    }
}

fn records(lines: &[String]) -> Input {
    Input::Records(lines.to_vec())
}

fn rec(over: &[(&str, &str)]) -> Input {
    Input::Records(vec![record(over)])
}

/// The bad record and a good one beside it: the good one must still count.
fn rec_and_good(over: &[(&str, &str)]) -> Input {
    Input::Records(vec![record(over), good()])
}

fn lines(text: &[u8]) -> Input {
    Input::Lines {
        format: None,
        text: text.to_vec(),
    }
}

fn env(vars: &[(&'static str, Option<&str>)]) -> Input {
    Input::Env(
        vars.iter()
            .map(|(k, v)| (*k, v.map(str::to_string)))
            .collect(),
    )
}

fn set(var: &'static str, value: &str) -> Input {
    env(&[(var, Some(value))])
}

fn gateways_with(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(GATEWAYS).unwrap();
    edit(&mut v[0]);
    v.to_string()
}

fn event_rows() -> Vec<Row> {
    let good_gz = good_gzip();
    let good_b64 = b64(&good_gz);
    // gzip whose trailer CRC / ISIZE is wrong, or whose deflate data is damaged.
    let mut bad_crc = good_gz.clone();
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 0xff;
    let mut bad_isize = good_gz.clone();
    bad_isize[n - 1] ^= 0x01;
    let mut bad_method = good_gz.clone();
    bad_method[2] = 7;
    let mut reserved_flags = good_gz.clone();
    reserved_flags[3] = 0x20;
    let mut fextra_past_end = good_gz[..10].to_vec();
    fextra_past_end[3] = 0x04;
    fextra_past_end.extend_from_slice(&[0xff, 0xff, 1, 2, 3]);
    let mut fname_without_nul = good_gz[..10].to_vec();
    fname_without_nul[3] = 0x08;
    fname_without_nul.extend_from_slice(b"name-without-a-terminator");
    let mut garbage_after = good_gz.clone();
    garbage_after.extend_from_slice(b"garbage");
    let mut zeros_after = good_gz.clone();
    zeros_after.extend_from_slice(&[0; 16]);
    // A gzip header with every optional part (FEXTRA, FNAME, FCOMMENT).
    let full_header = {
        let mut gz = flate2::GzBuilder::new()
            .filename("flow.json")
            .comment("a comment")
            .extra(vec![1, 2, 3, 4])
            .write(Vec::new(), flate2::Compression::default());
        gz.write_all(&payload(&[good()])).unwrap();
        gz.finish().unwrap()
    };
    // The payload split into two gzip members (what `cat a.gz b.gz` gives): one stream.
    let two_members = {
        let p = payload(&[good()]);
        let mut g = gzip(&p[..40]);
        g.extend(gzip(&p[40..]));
        g
    };
    let big = payload(&vec![good(); 50]);
    let truncated_gzip = gzip(&big)[..300].to_vec();
    let bomb = gzip(&vec![0u8; 64 << 20]);
    // A bomb whose trailer lies about its size (asks for an 8 MiB reservation up front).
    let mut lying_bomb = bomb.clone();
    let m = lying_bomb.len();
    lying_bomb[m - 4..].copy_from_slice(&(DEFAULT_MAX_DECODED_BYTES as u32).to_le_bytes());
    // Many small members that together pass the cap.
    let member_bomb = {
        let one = gzip(&vec![b' '; 1 << 20]);
        one.repeat(9)
    };
    let nine_mb_of_records = {
        let g = good();
        let n = 9_000_000 / (g.len() + 80);
        payload(&vec![g; n])
    };
    // A foreign ENI's stream, gzip cut after 1.5 kB: recognised from its first kilobyte.
    let foreign_truncated = {
        let lines: Vec<String> = (0..400)
            .map(|i| record(&[("interface-id", OTHER_ENI), ("srcport", &i.to_string())]))
            .collect();
        let p = payload_text("DATA_MESSAGE", OTHER_STREAM, &log_events(&lines));
        let g = gzip(p.as_bytes());
        assert!(g.len() > 2000, "{}", g.len());
        g[..1500].to_vec()
    };
    let unpadded = good_b64.trim_end_matches('=').to_string();
    assert_ne!(unpadded, good_b64, "the fixture must need padding");
    let with_nested = |key_json: &str| {
        let e = String::from_utf8(event_of(&payload(&[good()]))).unwrap();
        let e = e.strip_suffix('}').unwrap().to_string();
        format!("{e},{key_json}}}").into_bytes()
    };

    vec![
        // ---- the envelope
        row(
            "event_not_json",
            Input::Event(b"this is not JSON".to_vec()),
            Expect::EventError("event is not a CloudWatch Logs subscription event"),
        ),
        row(
            "event_empty_body",
            Input::Event(Vec::new()),
            Expect::EventError("event is not a CloudWatch Logs subscription event"),
        ),
        row(
            "event_json_null",
            Input::Event(b"null".to_vec()),
            Expect::EventError("event is not a CloudWatch Logs subscription event"),
        ),
        row(
            "event_json_array",
            Input::Event(b"[1,2]".to_vec()),
            Expect::EventError("event is not a CloudWatch Logs subscription event"),
        ),
        row(
            "event_without_awslogs",
            Input::Event(br#"{"Records":[]}"#.to_vec()),
            Expect::EventError("missing field `awslogs`"),
        ),
        row(
            "event_is_a_decoded_payload",
            Input::Event(payload(&[good()])),
            Expect::EventError("missing field `awslogs`"),
        ),
        row(
            "event_awslogs_not_an_object",
            Input::Event(br#"{"awslogs":"H4sI"}"#.to_vec()),
            Expect::EventError("event is not a CloudWatch Logs subscription event"),
        ),
        row(
            "event_awslogs_data_missing",
            Input::Event(br#"{"awslogs":{}}"#.to_vec()),
            Expect::EventError("missing field `data`"),
        ),
        row(
            "event_awslogs_data_not_a_string",
            Input::Event(br#"{"awslogs":{"data":12345}}"#.to_vec()),
            Expect::EventError("invalid type: integer"),
        ),
        row(
            "event_awslogs_data_null",
            Input::Event(br#"{"awslogs":{"data":null}}"#.to_vec()),
            Expect::EventError("invalid type: null"),
        ),
        row(
            "event_awslogs_twice",
            Input::Event(
                format!(
                    r#"{{"awslogs":{{"data":"{good_b64}"}},"awslogs":{{"data":"{good_b64}"}}}}"#
                )
                .into_bytes(),
            ),
            Expect::EventError("duplicate field `awslogs`"),
        ),
        row(
            "event_json_truncated",
            Input::Event(event_of(&payload(&[good()]))[..60].to_vec()),
            Expect::EventError("event is not a CloudWatch Logs subscription event"),
        ),
        // 10,000 nested arrays beside awslogs: serde_json skips unknown values iteratively.
        row(
            "event_10000_nested_arrays_beside_awslogs",
            Input::Event(with_nested(&format!(r#""x":{}"#, nested(10_000)))),
            skip_counted(1, 1, 0),
        ),
        row(
            "event_10000_nested_arrays_as_the_event",
            Input::Event(nested(10_000).into_bytes()),
            Expect::EventError("event is not a CloudWatch Logs subscription event"),
        ),
        row(
            "event_10000_nested_arrays_as_awslogs",
            Input::Event(format!(r#"{{"awslogs":{}}}"#, nested(10_000)).into_bytes()),
            Expect::EventError("event is not a CloudWatch Logs subscription event"),
        ),
        // ---- base64
        row(
            "event_data_empty",
            Input::Event(envelope("")),
            Expect::EventError("awslogs.data is not valid gzip"),
        ),
        row(
            "event_bad_base64",
            Input::Event(envelope("!!!not*base64@@@%%%%")),
            Expect::EventError("awslogs.data is not valid base64"),
        ),
        row(
            "event_base64_url_safe_alphabet",
            Input::Event(envelope(
                &base64::engine::general_purpose::URL_SAFE.encode([0xfb, 0xff, 0xfe, 0xfb, 0xff]),
            )),
            Expect::EventError("awslogs.data is not valid base64"),
        ),
        row(
            "event_base64_wrapped_at_76_columns",
            Input::Event(envelope(
                &good_b64
                    .as_bytes()
                    .chunks(76)
                    .map(|c| std::str::from_utf8(c).unwrap())
                    .collect::<Vec<_>>()
                    .join("\n"),
            )),
            Expect::EventError("awslogs.data is not valid base64"),
        ),
        row(
            "event_base64_without_padding",
            Input::Event(envelope(&unpadded)),
            skip_counted(1, 1, 0),
        ),
        row(
            "event_base64_with_surrounding_whitespace",
            Input::Event(envelope(&format!(" \n{good_b64}\n "))),
            skip_counted(1, 1, 0),
        ),
        row(
            "event_base64_json_escaped_slashes",
            Input::Event(
                format!(
                    r#"{{"awslogs":{{"data":"{}"}}}}"#,
                    good_b64.replace('/', "\\/")
                )
                .into_bytes(),
            ),
            skip_counted(1, 1, 0),
        ),
        // ---- gzip
        row(
            "event_base64_of_non_gzip",
            Input::Event(data_event(&payload(&[good()]))),
            Expect::EventError("awslogs.data is not valid gzip"),
        ),
        row(
            "event_truncated_gzip",
            Input::Event(data_event(&truncated_gzip)),
            Expect::EventError("awslogs.data is not valid gzip"),
        ),
        row(
            "event_gzip_header_only",
            Input::Event(data_event(&good_gz[..10])),
            Expect::EventError("awslogs.data is not valid gzip"),
        ),
        row(
            "event_gzip_without_trailer",
            Input::Event(data_event(&good_gz[..n - 8])),
            Expect::EventError("awslogs.data is not valid gzip"),
        ),
        row(
            "event_gzip_crc_mismatch",
            Input::Event(data_event(&bad_crc)),
            Expect::EventError("CRC-32 mismatch"),
        ),
        row(
            "event_gzip_length_mismatch",
            Input::Event(data_event(&bad_isize)),
            Expect::EventError("length mismatch"),
        ),
        row(
            "event_gzip_unknown_method",
            Input::Event(data_event(&bad_method)),
            Expect::EventError("awslogs.data is not valid gzip"),
        ),
        row(
            "event_gzip_reserved_flags",
            Input::Event(data_event(&reserved_flags)),
            Expect::EventError("awslogs.data is not valid gzip"),
        ),
        row(
            "event_gzip_fextra_past_the_end",
            Input::Event(data_event(&fextra_past_end)),
            Expect::EventError("awslogs.data is not valid gzip"),
        ),
        row(
            "event_gzip_fname_without_nul",
            Input::Event(data_event(&fname_without_nul)),
            Expect::EventError("awslogs.data is not valid gzip"),
        ),
        row(
            "event_gzip_garbage_after_the_member",
            Input::Event(data_event(&garbage_after)),
            Expect::EventError("awslogs.data is not valid gzip"),
        ),
        row(
            "event_gzip_zero_padding_after_the_member",
            Input::Event(data_event(&zeros_after)),
            Expect::EventError("awslogs.data is not valid gzip"),
        ),
        row(
            "event_gzip_header_with_every_optional_part",
            Input::Event(data_event(&full_header)),
            skip_counted(1, 1, 0),
        ),
        row(
            "event_gzip_two_members",
            Input::Event(data_event(&two_members)),
            skip_counted(1, 1, 0),
        ),
        row(
            "event_gzip_bomb_64MB_of_zeros",
            Input::Event(data_event(&bomb)),
            Expect::EventError("inflates to more than 8388608 bytes"),
        ),
        row(
            "event_gzip_bomb_with_a_lying_trailer",
            Input::Event(data_event(&lying_bomb)),
            Expect::EventError("inflates to more than"),
        ),
        row(
            "event_gzip_bomb_of_9_members_of_1MB",
            Input::Event(data_event(&member_bomb)),
            Expect::EventError("inflates to more than"),
        ),
        row(
            "event_9MB_of_valid_records",
            Input::Payload(nine_mb_of_records),
            Expect::EventError("inflates to more than"),
        ),
        // By design (docs/testing.md §7, targets) a non-NAT ENI's batch is recognised from
        // its first kilobyte and skipped without decoding the rest: a damaged tail is never seen.
        // Its records would not have been counted anyway.
        row(
            "event_foreign_stream_with_truncated_gzip",
            Input::Event(data_event(&foreign_truncated)),
            skip_counted(0, 0, 0).batch(BatchKind::SkippedNotNat),
        ),
    ]
}

fn payload_rows() -> Vec<Row> {
    let g = good();
    let ge = log_events(std::slice::from_ref(&g));
    let data = |events: &str| payload_text("DATA_MESSAGE", STREAM, events).into_bytes();
    let one_event = |fields: &str| data(&format!(r#"[{{"id":"1",{fields}}}]"#));
    let msg = serde_json::to_string(&g).unwrap();
    let ts = START * 1000;
    let (one_mb, n_one_mb) = one_mb_of(&g);
    let (one_mb_bad, n_one_mb_bad) = one_mb_of("x");
    vec![
        row("payload_not_json", Input::Payload(b"this is not JSON {".to_vec()),
            Expect::EventError("decoded payload is not the CloudWatch Logs JSON document")),
        row("payload_empty", Input::Payload(Vec::new()),
            Expect::EventError("decoded payload is not the CloudWatch Logs JSON document")),
        row("payload_json_array", Input::Payload(b"[]".to_vec()),
            Expect::EventError("decoded payload is not the CloudWatch Logs JSON document")),
        row("payload_without_messageType",
            Input::Payload(format!(r#"{{"logStream":"{STREAM}","logEvents":{ge}}}"#).into_bytes()),
            Expect::EventError("missing field `messageType`")),
        row("payload_messageType_null",
            Input::Payload(format!(r#"{{"messageType":null,"logStream":"{STREAM}","logEvents":{ge}}}"#).into_bytes()),
            Expect::EventError("invalid type: null")),
        row("payload_logEvents_null", Input::Payload(data("null")),
            Expect::EventError("decoded payload is a DATA_MESSAGE without logEvents")),
        row("payload_logEvents_missing",
            Input::Payload(format!(r#"{{"messageType":"DATA_MESSAGE","logStream":"{STREAM}"}}"#).into_bytes()),
            Expect::EventError("decoded payload is a DATA_MESSAGE without logEvents")),
        row("payload_logEvents_a_string", Input::Payload(data(&msg)),
            Expect::EventError("invalid type: string")),
        row("payload_logEvents_an_object", Input::Payload(data(&format!(r#"{{"message":{msg}}}"#))),
            Expect::EventError("invalid type: map")),
        row("payload_logEvents_list_of_strings", Input::Payload(data(&format!("[{msg}]"))),
            Expect::EventError("invalid type: string")),
        row("payload_logEvents_twice",
            Input::Payload(format!(r#"{{"messageType":"DATA_MESSAGE","logStream":"{STREAM}","logEvents":{ge},"logEvents":{ge}}}"#).into_bytes()),
            Expect::EventError("duplicate field `logEvents`")),
        row("payload_message_a_number", Input::Payload(one_event(&format!(r#""timestamp":{ts},"message":5"#))),
            Expect::EventError("invalid type: integer")),
        row("payload_message_null", Input::Payload(one_event(&format!(r#""timestamp":{ts},"message":null"#))),
            Expect::EventError("invalid type: null")),
        row("payload_message_an_array", Input::Payload(one_event(&format!(r#""timestamp":{ts},"message":[{msg}]"#))),
            Expect::EventError("invalid type: sequence")),
        row("payload_message_missing", Input::Payload(one_event(&format!(r#""timestamp":{ts}"#))),
            Expect::EventError("missing field `message`")),
        row("payload_timestamp_missing", Input::Payload(one_event(&format!(r#""message":{msg}"#))),
            Expect::EventError("missing field `timestamp`")),
        row("payload_timestamp_a_string", Input::Payload(one_event(&format!(r#""timestamp":"{ts}","message":{msg}"#))),
            Expect::EventError("invalid type: string")),
        row("payload_timestamp_a_float", Input::Payload(one_event(&format!(r#""timestamp":1.5,"message":{msg}"#))),
            Expect::EventError("invalid type: floating point")),
        row("payload_timestamp_past_i64", Input::Payload(one_event(&format!(r#""timestamp":9223372036854775808,"message":{msg}"#))),
            Expect::EventError("decoded payload is not the CloudWatch Logs JSON document")),
        // A negative timestamp is a valid i64; the record has its own `start`.
        // Timestamps only bucket records without `start`; any i64 is a time.
        row("payload_timestamp_i64_min_without_start",
            Input::Payload(one_event(&format!(r#""timestamp":-9223372036854775808,"message":{}"#, serde_json::to_string(&record(&[("start", "-")])).unwrap()))),
            skip_counted(1, 1, 0)),
        row("payload_timestamp_i64_max_without_start",
            Input::Payload(one_event(&format!(r#""timestamp":9223372036854775807,"message":{}"#, serde_json::to_string(&record(&[("start", "-")])).unwrap()))),
            skip_counted(1, 1, 0)),
        row("payload_timestamp_negative", Input::Payload(one_event(&format!(r#""timestamp":-1,"message":{msg}"#))),
            skip_counted(1, 1, 0)),
        row("payload_logEvents_10000_nested_arrays", Input::Payload(data(&nested(10_000))),
            Expect::EventError("decoded payload is not the CloudWatch Logs JSON document")),
        // Unknown keys are skipped without recursion (serde_json's iterative ignore): no stack
        // overflow, and the batch is processed.
        row("payload_10000_nested_arrays_under_an_unknown_key",
            Input::Payload(format!(r#"{{"messageType":"DATA_MESSAGE","logStream":"{STREAM}","x":{},"logEvents":{ge}}}"#, nested(10_000)).into_bytes()),
            skip_counted(1, 1, 0)),
        row("payload_10000_nested_arrays_inside_a_log_event",
            Input::Payload(one_event(&format!(r#""timestamp":{ts},"message":{msg},"extra":{}"#, nested(10_000)))),
            skip_counted(1, 1, 0)),
        row("payload_10000_nested_objects_under_an_unknown_key",
            Input::Payload(format!(r#"{{"messageType":"DATA_MESSAGE","logStream":"{STREAM}","x":{}0{},"logEvents":{ge}}}"#, r#"{"a":"#.repeat(10_000), "}".repeat(10_000)).into_bytes()),
            skip_counted(1, 1, 0)),
        // JSON can only carry non-UTF-8 as a lone surrogate escape, or as raw bytes: either way
        // the document is not valid JSON text and the event fails.
        row("payload_lone_surrogate_escape_in_message",
            Input::Payload(data(&ge.replace(" OK ", " OK\\udc80 "))),
            Expect::EventError("surrogate")),
        row("payload_raw_invalid_utf8_in_message",
            Input::Payload(replace_bytes(&payload(std::slice::from_ref(&g)), b" IPv4\"", b" IP\xff\xfe\"")),
            Expect::EventError("decoded payload is not the CloudWatch Logs JSON document")),
        row("payload_non_ascii_in_an_unread_field",
            Input::Payload(payload(&[record(&[("account-id", "12345678901\u{e9}\u{1F600}")])])),
            skip_counted(1, 1, 0)),
        row("payload_empty_logEvents", Input::Payload(data("[]")), skip_counted(0, 0, 0)),
        row("payload_control_message",
            Input::Payload(payload_text("CONTROL_MESSAGE", "", r#"[{"id":"","timestamp":1432826855000,"message":"CWL CONTROL MESSAGE: Checking health of destination"}]"#).into_bytes()),
            skip_counted(0, 0, 0).batch(BatchKind::Control)),
        row("payload_control_message_without_logEvents",
            Input::Payload(br#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs"}"#.to_vec()),
            skip_counted(0, 0, 0).batch(BatchKind::Control)),
        // Acknowledged, nothing read, even with a record inside.
        row("payload_control_message_holding_a_record",
            Input::Payload(payload_text("CONTROL_MESSAGE", STREAM, &ge).into_bytes()),
            skip_counted(0, 0, 0).batch(BatchKind::Control)),
        row("payload_unknown_messageType_is_data",
            Input::Payload(payload_text("FOO_MESSAGE", STREAM, &ge).into_bytes()),
            skip_counted(1, 1, 0)),
        row("payload_stream_of_another_eni",
            Input::Payload(payload_text("DATA_MESSAGE", OTHER_STREAM, &ge).into_bytes()),
            skip_counted(0, 0, 0).batch(BatchKind::SkippedNotNat)),
        // The stream name is a hint; interface-id decides for each record.
        row("payload_stream_not_an_eni_name",
            Input::Payload(payload_text("DATA_MESSAGE", "my-stream", &ge).into_bytes()),
            skip_counted(1, 1, 0)),
        // A nested object's key is not the payload's logStream: the batch is the NAT ENI's and
        // its record counts (Payload::parse tolerates unknown keys).
        // (Found by this matrix: the skip-peek once took the first raw `"logStream"` bytes, here
        // the nested key, and skipped the NAT batch. It now reads the head key by key.)
        row("payload_nested_logStream_key_before_the_real_one",
            Input::Payload(format!(r#"{{"messageType":"DATA_MESSAGE","x":{{"logStream":"{OTHER_STREAM}"}},"logStream":"{STREAM}","logEvents":{ge}}}"#).into_bytes()),
            skip_counted(1, 1, 0)),
        // The same with a key whose name ends in an escaped quote and `logStream`.
        // (Was the same bug: the key `a"logStream` was taken for logStream.)
        row("payload_key_ending_in_quote_logStream",
            Input::Payload(format!(r#"{{"messageType":"DATA_MESSAGE","a\"logStream":"{OTHER_STREAM}","logStream":"{STREAM}","logEvents":{ge}}}"#).into_bytes()),
            skip_counted(1, 1, 0)),
        // A payload naming logStream twice is not the CloudWatch Logs document (serde refuses
        // duplicate fields, as it does when the NAT stream comes first).
        // (Was the same bug: the first, foreign, `"logStream"` decided and the event was skipped.)
        row("payload_logStream_twice_foreign_first",
            Input::Payload(format!(r#"{{"messageType":"DATA_MESSAGE","logStream":"{OTHER_STREAM}","logStream":"{STREAM}","logEvents":{ge}}}"#).into_bytes()),
            Expect::EventError("duplicate field `logStream`")),
        row("payload_logStream_twice_nat_first",
            Input::Payload(format!(r#"{{"messageType":"DATA_MESSAGE","logStream":"{STREAM}","logStream":"{OTHER_STREAM}","logEvents":{ge}}}"#).into_bytes()),
            Expect::EventError("duplicate field `logStream`")),
        // ---- log-event messages (the event path only: text lines cannot carry these)
        row("payload_message_empty", Input::Payload(payload(&[String::new(), g.clone()])),
            skip_counted(2, 1, 1).sample("found 0")),
        row("payload_message_whitespace", Input::Payload(payload(&[" \t ".into(), g.clone()])),
            skip_counted(2, 1, 1).sample("found 0")),
        // One log event is one record: two records in one message are one bad record.
        row("payload_message_two_records_on_two_lines",
            Input::Payload(payload(&[format!("{g}\n{g}")])),
            skip_counted(1, 0, 1).sample("expected 26 fields (the configured format), found 52")),
        row("payload_message_with_escaped_nul_in_an_unread_field",
            Input::Payload(payload(&[record(&[("vpc-id", "vpc-\u{0}")])])),
            skip_counted(1, 1, 0)),
        // ---- size
        row("payload_1MB_of_one_repeated_line", Input::Payload(one_mb),
            skip_counted(n_one_mb, n_one_mb, 0)),
        row("payload_1MB_of_one_char_bad_lines", Input::Payload(one_mb_bad),
            skip_counted(n_one_mb_bad, 0, n_one_mb_bad).sample("found 1")),
    ]
}

fn record_rows() -> Vec<Row> {
    use SkipReason::*;
    let g = good();
    let u64_max = u64::MAX.to_string();
    let aws_2000 = "S".repeat(2000);
    let vpc_900k = format!("vpc-{}", "v".repeat(900_000));
    vec![
        // ---- shape of the line
        row(
            "record_huge_single_token_900KB",
            records(&["A".repeat(900_000), g.clone()]),
            skip_counted(2, 1, 1).sample("expected 26 fields (the configured format), found 1"),
        ),
        // Values are parsed on access (flowlog::Record): fields the rules do not read are not
        // validated, whatever their size.
        row(
            "record_900KB_value_in_an_unread_field",
            rec(&[("vpc-id", &vpc_900k)]),
            skip_counted(1, 1, 0),
        ),
        row(
            "record_100000_fields",
            records(&[vec!["1"; 100_000].join(" "), g.clone()]),
            skip_counted(2, 1, 1)
                .sample("expected 26 fields (the configured format), found 100000"),
        ),
        row(
            "record_100000_fields_of_the_good_record_repeated",
            records(&[vec![g.as_str(); 100_000 / 26 + 1].join(" ")]),
            skip_counted(1, 0, 1).sample("found 100022"),
        ),
        row(
            "record_25_fields",
            records(&[g.rsplit_once(' ').unwrap().0.to_string()]),
            skip_counted(1, 0, 1).sample("expected 26 fields (the configured format), found 25"),
        ),
        row(
            "record_27_fields",
            records(&[format!("{g} extra")]),
            skip_counted(1, 0, 1).sample("found 27"),
        ),
        row(
            "record_tabs_and_runs_of_spaces",
            records(&[format!("  {}\t", g.replace(' ', " \t  "))]),
            skip_counted(1, 1, 0),
        ),
        // A no-break space is not ASCII whitespace: it does not separate fields.
        row(
            "record_no_break_space_between_fields",
            records(&[g.replacen(' ', "\u{a0}", 1)]),
            skip_counted(1, 0, 1).sample("found 25"),
        ),
        // A form feed is ASCII whitespace, so it splits a token: one field too many.
        row(
            "record_form_feed_inside_a_value",
            rec(&[("vpc-id", "vpc-0a1b\u{c}2c3d")]),
            skip_counted(1, 0, 1).sample("found 27"),
        ),
        // BEL is not whitespace: it stays inside the (unread) value.
        row(
            "record_control_character_in_an_unread_field",
            rec(&[("vpc-id", "vpc-\u{7}")]),
            skip_counted(1, 1, 0),
        ),
        row(
            "record_nul_in_bytes",
            rec_and_good(&[("bytes", "33\u{0}6781")]),
            skip_counted(2, 1, 1).sample("field `bytes`: expected a non-negative integer"),
        ),
        // ---- numbers
        row(
            "record_negative_bytes",
            rec_and_good(&[("bytes", "-5")]),
            skip_counted(2, 1, 1)
                .sample("field `bytes`: expected a non-negative integer, found \"-5\""),
        ),
        row(
            "record_bytes_u64_overflow",
            rec_and_good(&[("bytes", "18446744073709551616")]),
            skip_counted(2, 1, 1).sample("field `bytes`: integer too large for 64 bits"),
        ),
        row(
            "record_bytes_25_digits",
            rec(&[("bytes", &"9".repeat(25))]),
            skip_counted(1, 0, 1).sample("field `bytes`: integer too large for 64 bits"),
        ),
        row(
            "record_bytes_1000_digits",
            rec(&[("bytes", &"9".repeat(1000))]),
            skip_counted(1, 0, 1).sample("integer too large for 64 bits"),
        ),
        row(
            "record_bytes_a_fraction",
            rec(&[("bytes", "1.5")]),
            skip_counted(1, 0, 1).sample("field `bytes`: expected a non-negative integer"),
        ),
        row(
            "record_bytes_with_a_plus_sign",
            rec(&[("bytes", "+5")]),
            skip_counted(1, 0, 1).sample("field `bytes`"),
        ),
        row(
            "record_bytes_in_exponent_notation",
            rec(&[("bytes", "1e3")]),
            skip_counted(1, 0, 1).sample("field `bytes`"),
        ),
        row(
            "record_bytes_fullwidth_digits",
            rec(&[("bytes", "\u{ff11}\u{ff12}")]),
            skip_counted(1, 0, 1).sample("field `bytes`"),
        ),
        // `-` is "no value" (AWS): a traversal without bytes.
        row(
            "record_bytes_dash",
            rec(&[("bytes", "-")]),
            skip_counted(1, 0, 0).skipped(ZeroBytes, 1),
        ),
        row(
            "record_bytes_u64_max",
            rec(&[("bytes", &u64_max)]),
            skip_counted(1, 1, 0).bytes(u64::MAX),
        ),
        // Totals saturate (the ledger's policy) instead of overflowing or panicking: the same
        // source (one ledger entry) and two sources (summed across entries).
        row(
            "record_two_records_of_u64_max_bytes_same_source",
            records(&[
                record(&[("bytes", &u64_max)]),
                record(&[("bytes", &u64_max)]),
            ]),
            skip_counted(2, 2, 0).bytes(u64::MAX),
        ),
        row(
            "record_two_records_of_u64_max_bytes_two_sources",
            records(&[
                record(&[("bytes", &u64_max)]),
                record(&[
                    ("bytes", &u64_max),
                    ("srcaddr", "10.0.128.5"),
                    ("pkt-srcaddr", "10.0.128.5"),
                ]),
            ]),
            skip_counted(2, 2, 0).bytes(u64::MAX),
        ),
        row(
            "record_two_records_of_u64_max_bytes_both_directions",
            records(&[
                record(&[("bytes", &u64_max)]),
                record(&[
                    ("bytes", &u64_max),
                    ("srcaddr", NAT_IP),
                    ("dstaddr", POD_IP),
                    ("pkt-srcaddr", REMOTE_IP),
                    ("pkt-dstaddr", POD_IP),
                ]),
            ]),
            skip_counted(2, 2, 0).bytes(u64::MAX),
        ),
        row(
            "record_packets_u64_max_twice",
            records(&[
                record(&[("packets", &u64_max)]),
                record(&[("packets", &u64_max)]),
            ]),
            skip_counted(2, 2, 0),
        ),
        row(
            "record_negative_packets",
            rec(&[("packets", "-1")]),
            skip_counted(1, 0, 1).sample("field `packets`"),
        ),
        row(
            "record_start_not_a_number",
            rec(&[("start", "yesterday")]),
            skip_counted(1, 0, 1).sample("field `start`"),
        ),
        row(
            "record_end_not_a_number",
            rec(&[("end", "soon")]),
            skip_counted(1, 0, 1).sample("field `end`"),
        ),
        row(
            "record_start_u64_max",
            rec_and_good(&[("start", &u64_max), ("end", &u64_max)]),
            skip_counted(2, 2, 0),
        ),
        row(
            "record_start_zero",
            rec(&[("start", "0"), ("end", "0")]),
            skip_counted(1, 1, 0),
        ),
        // Without `start`, the log event's timestamp (or the caller's time) buckets the record.
        row(
            "record_start_dash",
            rec(&[("start", "-")]),
            skip_counted(1, 1, 0),
        ),
        // ---- addresses
        row(
            "record_ipv6_with_zone_in_srcaddr",
            rec_and_good(&[("srcaddr", "fe80::1%eth0")]),
            skip_counted(2, 1, 1).sample(
                "field `srcaddr`: expected an IPv4 or IPv6 address, found \"fe80::1%eth0\"",
            ),
        ),
        row(
            "record_ipv6_with_zone_in_dstaddr",
            rec(&[("dstaddr", "fe80::a%1")]),
            skip_counted(1, 0, 1).sample("field `dstaddr`"),
        ),
        row(
            "record_ipv6_with_zone_in_pkt_dstaddr",
            rec(&[("pkt-dstaddr", "fe80::1%25eth0")]),
            skip_counted(1, 0, 1).sample("field `pkt-dstaddr`"),
        ),
        row(
            "record_ipv6_bracketed",
            rec(&[("pkt-dstaddr", "[2001:db8::1]")]),
            skip_counted(1, 0, 1).sample("field `pkt-dstaddr`"),
        ),
        row(
            "record_ipv4_octet_out_of_range",
            rec(&[("dstaddr", "10.0.0.256")]),
            skip_counted(1, 0, 1).sample("field `dstaddr`"),
        ),
        row(
            "record_ipv4_leading_zero",
            rec(&[("srcaddr", "010.0.128.4")]),
            skip_counted(1, 0, 1).sample("field `srcaddr`"),
        ),
        row(
            "record_ipv4_with_port",
            rec(&[("pkt-srcaddr", "10.0.128.4:443")]),
            skip_counted(1, 0, 1).sample("field `pkt-srcaddr`"),
        ),
        row(
            "record_srcaddr_dash_on_a_nat_eni",
            rec(&[("srcaddr", "-")]),
            skip_counted(1, 0, 1).sample("field `srcaddr`: a value is required here"),
        ),
        // Without pkt addresses the rules fall back to the private CIDRs: still counted.
        row(
            "record_pkt_addresses_dash",
            rec(&[("pkt-srcaddr", "-"), ("pkt-dstaddr", "-")]),
            skip_counted(1, 1, 0),
        ),
        // ---- values the rules do not read. The engine reads only what its rules need
        // (flowlog::Record: "values are parsed on access"): ports, protocol, flow-direction,
        // traffic-path, type, version, account-id are never validated, so such a record counts.
        row(
            "record_port_out_of_range",
            rec(&[("srcport", "70000")]),
            skip_counted(1, 1, 0),
        ),
        row(
            "record_port_negative",
            rec(&[("dstport", "-1")]),
            skip_counted(1, 1, 0),
        ),
        row(
            "record_port_u64_overflow",
            rec(&[("dstport", "99999999999999999999999")]),
            skip_counted(1, 1, 0),
        ),
        row(
            "record_protocol_out_of_range",
            rec(&[("protocol", "300")]),
            skip_counted(1, 1, 0),
        ),
        row(
            "record_unknown_flow_direction",
            rec(&[("flow-direction", "sideways")]),
            skip_counted(1, 1, 0),
        ),
        row(
            "record_traffic_path_out_of_range",
            rec(&[("traffic-path", "999")]),
            skip_counted(1, 1, 0),
        ),
        row(
            "record_unknown_version_and_type",
            rec(&[("version", "99"), ("type", "IPv9")]),
            skip_counted(1, 1, 0),
        ),
        // The inbound service field is not read for an outbound record.
        row(
            "record_bad_pkt_src_aws_service_on_an_outbound_record",
            rec(&[("pkt-src-aws-service", &aws_2000)]),
            skip_counted(1, 1, 0),
        ),
        // ---- enumerations
        row(
            "record_unknown_log_status",
            rec_and_good(&[("log-status", "MAYBE")]),
            skip_counted(2, 1, 1)
                .sample("field `log-status`: expected OK, NODATA or SKIPDATA, found \"MAYBE\""),
        ),
        row(
            "record_lowercase_log_status",
            rec(&[("log-status", "ok")]),
            skip_counted(1, 0, 1).sample("field `log-status`"),
        ),
        // `-` is "no value": not NODATA/SKIPDATA, so the rules go on.
        row(
            "record_log_status_dash",
            rec(&[("log-status", "-")]),
            skip_counted(1, 1, 0),
        ),
        row(
            "record_unknown_action",
            rec_and_good(&[("action", "DENY")]),
            skip_counted(2, 1, 1)
                .sample("field `action`: expected ACCEPT or REJECT, found \"DENY\""),
        ),
        row(
            "record_lowercase_action",
            rec(&[("action", "accept")]),
            skip_counted(1, 0, 1).sample("field `action`"),
        ),
        // Precedence (attribution::attribute): not-NAT is decided before `action` is read.
        row(
            "record_unknown_action_on_another_eni",
            rec(&[("action", "DENY"), ("interface-id", OTHER_ENI)]),
            skip_counted(1, 0, 0).skipped(NotNat, 1),
        ),
        // NODATA is decided first: nothing else of the record is read.
        row(
            "record_nodata_with_garbage_elsewhere",
            rec(&[
                ("log-status", "NODATA"),
                ("srcaddr", "garbage"),
                ("bytes", "-5"),
            ]),
            skip_counted(1, 0, 0).skipped(NoData, 1),
        ),
        // ---- AWS service names become a Destination dimension value: an open list, but not
        // control characters, non-ASCII or kilobytes (CloudWatch would refuse the datapoint).
        row(
            "record_aws_service_2000_chars",
            rec_and_good(&[("pkt-dst-aws-service", &aws_2000)]),
            skip_counted(2, 1, 1)
                .sample("field `pkt-dst-aws-service`: expected an AWS service name"),
        ),
        row(
            "record_aws_service_non_ascii",
            rec_and_good(&[("pkt-dst-aws-service", "S3\u{e9}")]),
            skip_counted(2, 1, 1).sample("field `pkt-dst-aws-service`"),
        ),
        row(
            "record_aws_service_control_char",
            rec_and_good(&[("pkt-dst-aws-service", "S3\u{7}")]),
            skip_counted(2, 1, 1).sample("field `pkt-dst-aws-service`"),
        ),
        row(
            "record_aws_service_inbound_2000_chars",
            rec(&[
                ("srcaddr", NAT_IP),
                ("dstaddr", POD_IP),
                ("pkt-srcaddr", REMOTE_IP),
                ("pkt-dstaddr", POD_IP),
                ("pkt-src-aws-service", &aws_2000),
            ]),
            skip_counted(1, 0, 1).sample("field `pkt-src-aws-service`"),
        ),
        row(
            "record_aws_service_65_chars",
            rec(&[("pkt-dst-aws-service", &"S".repeat(65))]),
            skip_counted(1, 0, 1).sample("field `pkt-dst-aws-service`"),
        ),
        row(
            "record_aws_service_64_chars",
            rec(&[("pkt-dst-aws-service", &"S".repeat(64))]),
            skip_counted(1, 1, 0),
        ),
        row(
            "record_interface_id_missing",
            rec(&[("interface-id", "-")]),
            skip_counted(1, 0, 1).sample("field `interface-id`: a value is required here"),
        ),
        // ---- the ordinary skips, each counted under its reason
        row(
            "record_nodata",
            rec(&[("log-status", "NODATA")]),
            skip_counted(1, 0, 0).skipped(NoData, 1),
        ),
        row(
            "record_skipdata",
            rec(&[("log-status", "SKIPDATA")]),
            skip_counted(1, 0, 0).skipped(SkipData, 1),
        ),
        row(
            "record_rejected",
            rec(&[("action", "REJECT")]),
            skip_counted(1, 0, 0).skipped(Rejected, 1),
        ),
        row(
            "record_zero_bytes",
            rec(&[("bytes", "0")]),
            skip_counted(1, 0, 0).skipped(ZeroBytes, 1),
        ),
        row(
            "record_public_side",
            rec(&[
                ("flow-direction", "egress"),
                ("srcaddr", NAT_IP),
                ("dstaddr", REMOTE_IP),
                ("pkt-srcaddr", NAT_IP),
                ("pkt-dstaddr", REMOTE_IP),
            ]),
            skip_counted(1, 0, 0).skipped(PublicSide, 1),
        ),
        row(
            "record_of_another_eni",
            rec(&[("interface-id", OTHER_ENI)]),
            skip_counted(1, 0, 0).skipped(NotNat, 1),
        ),
        row(
            "record_interface_id_not_an_eni",
            rec(&[("interface-id", "\u{e9}\u{1F600}")]),
            skip_counted(1, 0, 0).skipped(NotNat, 1),
        ),
    ]
}

/// Flow-log text (S3 delivery, local files): what only bytes can carry, and other formats.
fn lines_rows() -> Vec<Row> {
    let g = good();
    let mut non_utf8_unread = record(&[("vpc-id", "vpc-XX")]).into_bytes();
    non_utf8_unread = replace_bytes(&non_utf8_unread, b"vpc-XX", b"vpc-\xff\xfe");
    let default_line = format!(
        "2 123456789012 {NAT_ENI} {POD_IP} {NAT_IP} 35943 443 6 281 336781 {START} {} ACCEPT OK",
        START + 9
    );
    let join = |parts: &[&[u8]]| parts.concat();
    vec![
        row("lines_non_utf8_line", lines(&join(&[b"\xff\xfe\xfd garbage\n", g.as_bytes()])),
            skip_counted(2, 1, 1).sample("the line is not valid UTF-8")),
        // The whole line must be text, even where the rules would not look.
        row("lines_non_utf8_in_an_unread_field", lines(&join(&[&non_utf8_unread, b"\n", g.as_bytes()])),
            skip_counted(2, 1, 1).sample("not valid UTF-8")),
        row("lines_truncated_utf8_sequence_at_the_end", lines(&join(&[g.as_bytes(), b"\xe2\x82"])),
            skip_counted(1, 0, 1).sample("not valid UTF-8")),
        row("lines_utf16le_text", lines(&g.encode_utf16().flat_map(u16::to_le_bytes).collect::<Vec<u8>>()),
            skip_counted(1, 0, 1)),
        row("lines_crlf_and_blank_lines",
            lines(format!("\r\n{g}\r\n\r\n   \n{g}\r\n\n").as_bytes()),
            skip_counted(2, 2, 0)),
        row("lines_only_blank", lines(b"\n\r\n \t \n\n"), skip_counted(0, 0, 0)),
        row("lines_nul_bytes", lines(&join(&[b"\0\0\0\n", g.as_bytes()])),
            skip_counted(2, 1, 1).sample("found 1")),
        row("lines_900KB_line_without_newline", lines("B ".repeat(450_000).as_bytes()),
            skip_counted(1, 0, 1).sample("found 450000")),
        row("lines_100000_empty_lines_and_one_record",
            lines(format!("{}{g}", "\n".repeat(100_000)).as_bytes()),
            skip_counted(1, 1, 0)),
        // The AWS default (v2) format: no pkt-* fields, so the private CIDRs decide.
        row("lines_default_format_good", Input::Lines {
                format: Some(natmeter_core::flowlog::Format::default().to_aws_syntax()),
                text: default_line.clone().into_bytes() },
            skip_counted(1, 1, 0)),
        row("lines_default_format_15_fields", Input::Lines {
                format: Some("version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status".into()),
                text: format!("{default_line} extra\n{default_line}").into_bytes() },
            skip_counted(2, 1, 1).sample("expected 14 fields (the configured format), found 15")),
        // Unknown field names keep their position; their values are ignored.
        row("lines_format_with_unknown_fields", Input::Lines {
                format: Some("${x-future} ${interface-id} ${srcaddr} ${dstaddr} ${bytes} ${y-future}".into()),
                text: format!("\u{1F600} {NAT_ENI} {POD_IP} {NAT_IP} 336781 \u{7}").into_bytes() },
            skip_counted(1, 1, 0)),
        // A format without interface-id or addresses cannot place a record on a NAT gateway.
        row("lines_format_without_addresses", Input::Lines {
                format: Some("${version} ${bytes}".into()),
                text: b"2 336781".to_vec() },
            skip_counted(1, 0, 0).skipped(SkipReason::NotNat, 1)),
    ]
}

fn format_rows() -> Vec<Row> {
    let f = |s: &str| Input::Format(s.to_string());
    let three_hundred: Vec<String> = (0..300).map(|i| format!("${{f{i}}}")).collect();
    let max_distinct: Vec<String> = (0..=256).map(|i| format!("${{f{i}}}")).collect();
    vec![
        row(
            "format_empty",
            f(""),
            Expect::FormatError("the flow-log format is empty"),
        ),
        row(
            "format_blank",
            f(" \t\n "),
            Expect::FormatError("the flow-log format is empty"),
        ),
        row(
            "format_duplicated_field",
            f("${version} ${bytes} ${srcaddr} ${bytes}"),
            Expect::FormatError("names field `bytes` twice (positions 2 and 4)"),
        ),
        row(
            "format_duplicated_unknown_field",
            f("${x-new} ${version} ${x-new}"),
            Expect::FormatError("names field `x-new` twice"),
        ),
        row(
            "format_unclosed_token",
            f("${version} ${bytes"),
            Expect::FormatError("token 2 `${bytes` is not of the form `${field-name}`"),
        ),
        row(
            "format_lone_dollar_brace",
            f("${version} ${"),
            Expect::FormatError("token 2 `${` is not of the form"),
        ),
        row(
            "format_empty_name",
            f("${}"),
            Expect::FormatError("token 1 `${}` is not of the form"),
        ),
        row(
            "format_two_fields_in_one_token",
            f("${version}${bytes}"),
            Expect::FormatError("token 1 `${version}${bytes}` is not of the form"),
        ),
        row(
            "format_nested_token",
            f("${a${b}}"),
            Expect::FormatError("is not of the form"),
        ),
        row(
            "format_double_dollar",
            f("$${version}"),
            Expect::FormatError("is not of the form"),
        ),
        row(
            "format_braces_without_dollar",
            f("{version} {bytes}"),
            Expect::FormatError("is not of the form"),
        ),
        row(
            "format_space_inside_a_token",
            f("${ver sion}"),
            Expect::FormatError("token 1 `${ver` is not of the form"),
        ),
        // AWS syntax is required here; bare names are the S3 header's syntax.
        row(
            "format_bare_names",
            f("version srcaddr bytes"),
            Expect::FormatError("token 1 `version` is not of the form"),
        ),
        row(
            "format_mixed_syntax",
            f("${version} srcaddr ${bytes}"),
            Expect::FormatError("token 2 `srcaddr` is not of the form"),
        ),
        // The offending token is quoted truncated, not echoed whole.
        row(
            "format_100KB_malformed_token",
            f(&format!("${{{}", "a".repeat(100_000))),
            Expect::FormatError("...` is not of the form"),
        ),
        row(
            "format_300_columns",
            f(&three_hundred.join(" ")),
            Expect::FormatError("has 300 fields; at most 256 are supported"),
        ),
        row(
            "format_257_columns",
            f(&max_distinct.join(" ")),
            Expect::FormatError("has 257 fields; at most 256"),
        ),
        row(
            "format_100000_columns",
            f(&"${x} ".repeat(100_000)),
            Expect::FormatError("has 100000 fields"),
        ),
        row(
            "header_empty",
            Input::Header(String::new()),
            Expect::FormatError("empty"),
        ),
        row(
            "header_with_aws_syntax_token",
            Input::Header("version ${bytes}".into()),
            Expect::FormatError("token 2 `${bytes}` is not of the form"),
        ),
        row(
            "header_duplicated_field",
            Input::Header("version bytes srcaddr bytes".into()),
            Expect::FormatError("names field `bytes` twice"),
        ),
        row(
            "header_300_columns",
            Input::Header((0..300).map(|i| format!("f{i} ")).collect()),
            Expect::FormatError("at most 256"),
        ),
    ]
}

fn env_rows() -> Vec<Row> {
    const GW: &str = "NATMETER_NAT_GATEWAYS";
    const FMT: &str = "NATMETER_LOG_FORMAT";
    const PRICE: &str = "NATMETER_PRICE_PER_GB";
    const SINK: &str = "NATMETER_SINK";
    const MAX: &str = "NATMETER_MAX_SOURCES";
    const SHARE: &str = "NATMETER_MIN_SOURCE_SHARE";
    const NS: &str = "NATMETER_NAMESPACE";
    const CIDRS: &str = "NATMETER_PRIVATE_CIDRS";
    let three_hundred: Vec<String> = (0..300).map(|i| format!("${{f{i}}}")).collect();
    vec![
        row("env_format_empty", set(FMT, ""), startup(FMT, "empty")),
        row("env_format_blank", set(FMT, "   "), startup(FMT, "empty")),
        row(
            "env_format_duplicated_field",
            set(FMT, "${version} ${bytes} ${srcaddr} ${bytes}"),
            startup(FMT, "`bytes` twice"),
        ),
        row(
            "env_format_not_aws_syntax",
            set(FMT, "${version} srcaddr ${bytes}"),
            startup(FMT, "is not of the form"),
        ),
        row(
            "env_format_unclosed_token",
            set(FMT, "${version} ${bytes"),
            startup(FMT, "`${bytes`"),
        ),
        row(
            "env_format_300_columns",
            set(FMT, &three_hundred.join(" ")),
            startup(FMT, "at most 256"),
        ),
        row(
            "env_nat_gateways_missing",
            env(&[(GW, None)]),
            startup(GW, "is required"),
        ),
        row(
            "env_nat_gateways_empty_string",
            set(GW, ""),
            startup(GW, "not a JSON list"),
        ),
        row(
            "env_nat_gateways_invalid_json",
            set(GW, "[{nat"),
            startup(GW, "not a JSON list"),
        ),
        row(
            "env_nat_gateways_empty_list",
            set(GW, "[]"),
            startup(GW, "lists no NAT gateway"),
        ),
        row(
            "env_nat_gateways_an_object",
            set(GW, &gateways_with(|_| {})[1..GATEWAYS.len() - 1]),
            startup(GW, "not a JSON list"),
        ),
        row(
            "env_nat_gateways_10000_nested_arrays",
            set(GW, &nested(10_000)),
            startup(GW, "not a JSON list"),
        ),
        row(
            "env_nat_gateways_unknown_key",
            set(
                GW,
                &gateways_with(|g| g["ips"] = serde_json::json!(["10.0.0.10"])),
            ),
            startup(GW, "unknown field `ips`"),
        ),
        row(
            "env_nat_gateways_bad_ip",
            set(
                GW,
                &gateways_with(|g| g["private_ips"] = serde_json::json!(["10.0.0.999"])),
            ),
            startup(GW, "10.0.0.999"),
        ),
        row(
            "env_nat_gateways_ipv6_with_zone",
            set(
                GW,
                &gateways_with(|g| g["private_ips"] = serde_json::json!(["fe80::1%eth0"])),
            ),
            startup(GW, "fe80::1%eth0"),
        ),
        row(
            "env_nat_gateways_no_ips",
            set(
                GW,
                &gateways_with(|g| g["private_ips"] = serde_json::json!([])),
            ),
            startup(GW, "private_ips is empty"),
        ),
        row(
            "env_nat_gateways_bad_eni",
            set(
                GW,
                &gateways_with(|g| g["eni"] = serde_json::json!("eni-xyz")),
            ),
            startup(GW, "is not an ENI id"),
        ),
        row(
            "env_nat_gateways_eni_missing",
            set(
                GW,
                &gateways_with(|g| {
                    g.as_object_mut().unwrap().remove("eni");
                }),
            ),
            startup(GW, "missing field `eni`"),
        ),
        row(
            "env_nat_gateways_same_eni_twice",
            set(GW, &format!("[{0},{0}]", &GATEWAYS[1..GATEWAYS.len() - 1])),
            startup(GW, "configured twice"),
        ),
        row(
            "env_nat_gateway_id_non_ascii",
            set(
                GW,
                &gateways_with(|g| g["id"] = serde_json::json!("nat-\u{e9}t\u{e9}")),
            ),
            startup(GW, "printable ASCII"),
        ),
        row(
            "env_nat_gateway_id_1100_chars",
            set(
                GW,
                &gateways_with(|g| {
                    g["id"] = serde_json::json!(format!("nat-{}", "0".repeat(1100)))
                }),
            ),
            startup(GW, "printable ASCII"),
        ),
        row(
            "env_nat_gateway_id_blank",
            set(GW, &gateways_with(|g| g["id"] = serde_json::json!("   "))),
            startup(GW, "printable ASCII"),
        ),
        row(
            "env_nat_gateway_az_id_a_number",
            set(GW, &gateways_with(|g| g["az_id"] = serde_json::json!(1))),
            startup(GW, "invalid type: integer"),
        ),
        row(
            "env_unknown_region_without_price",
            env(&[("AWS_REGION", Some("xx-nowhere-9"))]),
            startup("AWS_REGION", "xx-nowhere-9"),
        ),
        row(
            "env_no_region_without_price",
            env(&[("AWS_REGION", None)]),
            startup("AWS_REGION", "no region and no price"),
        ),
        row(
            "env_empty_region_without_price",
            env(&[("AWS_REGION", Some(""))]),
            startup("AWS_REGION", "no region and no price"),
        ),
        row(
            "env_price_negative",
            set(PRICE, "-1"),
            startup(PRICE, "\"-1\""),
        ),
        row("env_price_nan", set(PRICE, "NaN"), startup(PRICE, "NaN")),
        row(
            "env_price_infinite",
            set(PRICE, "inf"),
            startup(PRICE, "non-negative number"),
        ),
        row(
            "env_price_overflowing_to_infinity",
            set(PRICE, "1e400"),
            startup(PRICE, "1e400"),
        ),
        row(
            "env_price_not_a_number",
            set(PRICE, "cheap"),
            startup(PRICE, "cheap"),
        ),
        row(
            "env_price_empty",
            set(PRICE, ""),
            startup(PRICE, "non-negative number"),
        ),
        row(
            "env_price_with_a_unit",
            set(PRICE, "0.045 USD"),
            startup(PRICE, "0.045 USD"),
        ),
        row(
            "env_sink_unknown",
            set(SINK, "kafka"),
            startup(SINK, "kafka"),
        ),
        row(
            "env_sink_empty",
            set(SINK, ""),
            startup(SINK, "expected cloudwatch, emf or both"),
        ),
        row(
            "env_sink_wrong_case",
            set(SINK, "CloudWatch"),
            startup(SINK, "CloudWatch"),
        ),
        row(
            "env_max_sources_not_a_number",
            set(MAX, "lots"),
            startup(MAX, "lots"),
        ),
        row(
            "env_max_sources_negative",
            set(MAX, "-3"),
            startup(MAX, "-3"),
        ),
        row(
            "env_max_sources_above_limit",
            set(MAX, "501"),
            startup(MAX, "0-500"),
        ),
        row(
            "env_max_sources_past_usize",
            set(MAX, "99999999999999999999999"),
            startup(MAX, "0-500"),
        ),
        row(
            "env_max_sources_empty",
            set(MAX, ""),
            startup(MAX, "expected an integer"),
        ),
        row(
            "env_max_sources_fraction",
            set(MAX, "2.5"),
            startup(MAX, "2.5"),
        ),
        row(
            "env_min_source_share_above_one",
            set(SHARE, "1.5"),
            startup(SHARE, "1.5"),
        ),
        row(
            "env_min_source_share_negative",
            set(SHARE, "-0.1"),
            startup(SHARE, "-0.1"),
        ),
        row(
            "env_min_source_share_nan",
            set(SHARE, "NaN"),
            startup(SHARE, "fraction 0-1"),
        ),
        row(
            "env_min_source_share_percent",
            set(SHARE, "5%"),
            startup(SHARE, "5%"),
        ),
        row(
            "env_namespace_aws_reserved",
            set(NS, "AWS/NATGateway"),
            startup(NS, "AWS/NATGateway"),
        ),
        row(
            "env_namespace_empty",
            set(NS, ""),
            startup(NS, "1-255 printable ASCII"),
        ),
        row(
            "env_namespace_non_ascii",
            set(NS, "NatM\u{e9}ter"),
            startup(NS, "printable ASCII"),
        ),
        row(
            "env_namespace_256_chars",
            set(NS, &"N".repeat(256)),
            startup(NS, "1-255"),
        ),
        row(
            "env_namespace_starts_with_colon",
            set(NS, ":NatMeter"),
            startup(NS, ":NatMeter"),
        ),
        row(
            "env_namespace_control_character",
            set(NS, "Nat\tMeter"),
            startup(NS, "printable ASCII"),
        ),
        row(
            "env_private_cidrs_bad_prefix",
            set(CIDRS, "10.0.0.0/33"),
            startup(CIDRS, "10.0.0.0/33"),
        ),
        row(
            "env_private_cidrs_not_a_cidr",
            set(CIDRS, "10.0.0.0/8,private"),
            startup(CIDRS, "\"private\" is not a CIDR"),
        ),
        row(
            "env_private_cidrs_semicolons",
            set(CIDRS, "10.0.0.0/8;172.16.0.0/12"),
            startup(CIDRS, "is not a CIDR"),
        ),
    ]
}

// ---------------------------------------------------------------- running -----------------------

struct Fixture {
    topology: Topology,
    format: Format,
    /// Shared across event rows, as in a warm Lambda container.
    reader: Reader,
    good_event: Vec<u8>,
}

fn base_env() -> HashMap<&'static str, String> {
    HashMap::from([
        ("NATMETER_NAT_GATEWAYS", GATEWAYS.to_string()),
        ("NATMETER_LOG_FORMAT", log_format()),
        ("AWS_REGION", "us-east-1".to_string()),
    ])
}

fn config(
    vars: &HashMap<&'static str, String>,
) -> Result<Config, natmeter_core::config::ConfigError> {
    Config::from_lookup(|k| vars.get(k).cloned())
}

/// What the engine saw.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    batch: Option<BatchKind>,
    read: u64,
    counted: u64,
    parse_errors: u64,
    skipped: Vec<(SkipReason, u64)>,
    bytes: u64,
}

fn seen(engine: &Results, batch: Option<BatchKind>) -> Seen {
    Seen {
        batch,
        read: engine.records().read,
        counted: engine.records().counted,
        parse_errors: engine.records().parse_errors,
        skipped: SkipReason::ALL
            .iter()
            .map(|r| (*r, engine.records().skipped(*r)))
            .filter(|(_, n)| *n > 0)
            .collect(),
        bytes: engine.ledger().total_bytes(),
    }
}

/// Compares an accepted input's engine with the row, plus what holds for every accepted input.
fn check_counted(
    expect: &Expect,
    topology: &Topology,
    engine: &Results,
    batch: Option<BatchKind>,
) -> Result<(), String> {
    let Expect::SkipCounted {
        batch: want_batch,
        read,
        counted,
        parse_errors,
        skipped,
        bytes,
        sample,
    } = expect
    else {
        unreachable!()
    };
    let mut want_skipped = skipped.clone();
    want_skipped.sort_by_key(|(r, _)| SkipReason::ALL.iter().position(|a| a == r));
    let want = Seen {
        batch: batch.map(|_| *want_batch),
        read: *read,
        counted: *counted,
        parse_errors: *parse_errors,
        skipped: want_skipped,
        bytes: *bytes,
    };
    let got = seen(engine, batch);
    let mut problems = Vec::new();
    if got != want {
        problems.push(format!("expected {want:?}\n        got      {got:?}"));
    }
    let r = &engine.records();
    let landed = SkipReason::ALL
        .iter()
        .fold(r.counted + r.parse_errors, |a, s| a + r.skipped(*s));
    if landed != r.read {
        problems.push(format!(
            "{} records read but {landed} accounted for",
            r.read
        ));
    }
    let samples = &engine.observed().parse_error_samples;
    if samples.len() as u64 != r.parse_errors.min(5) {
        problems.push(format!(
            "{} parse errors but {} samples (want min(n, 5))",
            r.parse_errors,
            samples.len()
        ));
    }
    if let Some(s) = sample {
        if !samples.iter().any(|x| x.error.contains(s)) {
            problems.push(format!("no parse-error sample contains {s:?}: {samples:?}"));
        }
    }
    // Each sample says where the record was: `origin logEvents[i]` or `file:line`.
    let place = if batch.is_some() {
        "event.json logEvents["
    } else {
        "flows.log:"
    };
    for s in samples {
        if s.error.len() > 256 || s.location.len() > 256 {
            problems.push(format!(
                "a parse-error sample is {} + {} bytes long",
                s.location.len(),
                s.error.len()
            ));
        }
        if !s.location.starts_with(place) {
            problems.push(format!(
                "sample location {:?} is not {place}...",
                s.location
            ));
        }
    }
    if let Some(k) = batch {
        let b = engine.batches();
        let want_batches = match k {
            BatchKind::Data => (1, 0, 0),
            BatchKind::Control => (0, 1, 0),
            BatchKind::SkippedNotNat => (0, 0, 1),
            BatchKind::Text => (0, 0, 0),
        };
        if (b.read, b.control_messages, b.skipped_not_nat) != want_batches {
            problems.push(format!("batch counters {b:?} for a {k:?} batch"));
        }
    }
    // The projections for people and for CloudWatch must take whatever was counted.
    let report = Report::build(engine, topology, 0.045);
    if report.totals.bytes != *bytes {
        problems.push(format!("report total {} != {bytes}", report.totals.bytes));
    }
    let opts = MetricOptions {
        max_sources: 20,
        min_source_share: 0.0,
        price_per_gb: 0.045,
        now: 1_764_547_800,
    };
    let _ = datums(engine, topology, &opts);
    let _ = source_details(engine, topology, 0.045);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n      "))
    }
}

fn check_message(kind: &str, msg: &str, want: &str) -> Result<(), String> {
    if !msg.contains(want) {
        return Err(format!("{kind} {:?} lacks {want:?}", shorten(msg)));
    }
    if msg.len() > MAX_MESSAGE {
        return Err(format!(
            "{kind} is {} bytes long: {:?}",
            msg.len(),
            shorten(msg)
        ));
    }
    Ok(())
}

fn shorten(s: &str) -> String {
    if s.len() <= 300 {
        return s.to_string();
    }
    let mut end = 300;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...({} bytes)", &s[..end], s.len())
}

fn run_event(fx: &mut Fixture, event: &[u8], expect: &Expect) -> Result<(), String> {
    let attributor = Attributor::new(&fx.topology, fx.format.clone());
    let mut engine = attributor.results();
    let input = sources::Input::Event {
        bytes: event,
        origin: "event.json",
    };
    let res = attributor.ingest(input, &mut fx.reader, &mut engine);
    let outcome = match (res, expect) {
        (Ok(kind), Expect::SkipCounted { .. }) => {
            check_counted(expect, &fx.topology, &engine, Some(kind))
        }
        (Err(e), Expect::EventError(want)) => {
            let untouched = engine.records() == Default::default()
                && engine.batches() == Default::default()
                && engine.ledger().is_empty();
            if !untouched {
                Err(format!(
                    "a refused event still counted: {:?} {:?}",
                    engine.batches(),
                    engine.records()
                ))
            } else if fx.reader.buffer_capacity() > MAX_BUF_AFTER_ERROR {
                Err(format!(
                    "the output buffer was left at {} bytes",
                    fx.reader.buffer_capacity()
                ))
            } else {
                check_message("error", &e.to_string(), want)
            }
        }
        (Ok(kind), Expect::EventError(want)) => Err(format!(
            "accepted as {kind:?} ({:?}), expected the error {want:?}",
            seen(&engine, Some(kind))
        )),
        (Err(e), _) => Err(format!("refused: {}", shorten(&e.to_string()))),
        (Ok(_), other) => Err(format!("not an event row: {other:?}")),
    };
    // A warm container serves the next, good event with the same decoder and buffer.
    let mut next = attributor.results();
    let input = sources::Input::Event {
        bytes: &fx.good_event,
        origin: "next.json",
    };
    let after = attributor.ingest(input, &mut fx.reader, &mut next);
    if after.is_err() || next.records().counted != 1 {
        return Err(format!(
            "{}; and the next good event then gave {after:?}",
            outcome.err().unwrap_or_default()
        ));
    }
    outcome
}

fn run_lines(
    fx: &Fixture,
    text: &[u8],
    format: Option<&Format>,
    expect: &Expect,
) -> Result<(), String> {
    let attributor = Attributor::new(&fx.topology, fx.format.clone());
    let mut engine = attributor.results();
    let input = sources::Input::Text(Text {
        bytes: text,
        format,
        origin: "flows.log",
        first_line: 1,
        fallback_time: START as i64,
    });
    let kind = attributor
        .ingest(input, &mut Reader::default(), &mut engine)
        .expect("text is never refused whole");
    assert_eq!(kind, BatchKind::Text);
    check_counted(expect, &fx.topology, &engine, None)
}

fn run_row(fx: &mut Fixture, row: &Row) -> Result<(), String> {
    match (&row.input, &row.expect) {
        (Input::Event(e), expect) => run_event(fx, e, expect),
        (Input::Payload(p), expect) => run_event(fx, &event_of(p), expect),
        (Input::Records(lines), expect) => {
            let event = event_of(&payload(lines));
            let a =
                run_event(fx, &event, expect).map_err(|e| format!("as a subscription batch: {e}"));
            let text = lines.join("\n");
            let b = run_lines(fx, text.as_bytes(), None, expect)
                .map_err(|e| format!("as text lines: {e}"));
            match (a, b) {
                (Ok(()), Ok(())) => Ok(()),
                (a, b) => Err([a.err(), b.err()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("\n      ")),
            }
        }
        (Input::Lines { format, text }, expect) => {
            let format = match format {
                Some(f) => {
                    Some(Format::parse(f).map_err(|e| format!("the row's format is bad: {e}"))?)
                }
                None => None,
            };
            run_lines(fx, text, format.as_ref(), expect)
        }
        (Input::Format(s), Expect::FormatError(want)) => match Format::from_aws_syntax(s) {
            Ok(f) => Err(format!("accepted as {} columns", f.len())),
            Err(e) => check_message("error", &e.to_string(), want),
        },
        (Input::Header(s), Expect::FormatError(want)) => match Format::from_header(s) {
            Ok(f) => Err(format!("accepted as {} columns", f.len())),
            Err(e) => check_message("error", &e.to_string(), want),
        },
        (
            Input::Env(vars),
            Expect::StartupError {
                variable,
                substring,
            },
        ) => {
            let mut all = base_env();
            for (k, v) in vars {
                match v {
                    Some(v) => all.insert(k, v.clone()),
                    None => all.remove(k),
                };
            }
            match config(&all) {
                Ok(_) => Err("started".into()),
                Err(e) => {
                    let msg = e.to_string();
                    if e.variable != *variable {
                        Err(format!(
                            "names {} instead of {variable}: {}",
                            e.variable,
                            shorten(&msg)
                        ))
                    } else if !msg.starts_with(variable) {
                        Err(format!(
                            "message does not start with {variable}: {}",
                            shorten(&msg)
                        ))
                    } else if !msg.contains(substring) {
                        Err(format!("message lacks {substring:?}: {}", shorten(&msg)))
                    } else {
                        Ok(())
                    }
                }
            }
        }
        (input, expect) => Err(format!("a {} row cannot expect {expect:?}", input.kind())),
    }
}

#[test]
fn bad_input_matrix() {
    let started = Instant::now();
    let topology = Topology::new(
        Topology::gateways_from_json(GATEWAYS).unwrap(),
        Topology::cidrs_from_list(DEFAULT_PRIVATE_CIDRS).unwrap(),
    )
    .unwrap();
    assert_eq!(topology.gateways()[0].id, NAT_ID);
    let format = Format::from_aws_syntax(&log_format()).unwrap();
    // The base the env rows change must itself start, with this very format.
    let base = config(&base_env()).expect("the base settings are good");
    assert_eq!(base.format, format);
    let mut fx = Fixture {
        topology,
        format,
        reader: Reader::default(),
        good_event: event_of(&payload(&[good()])),
    };

    let rows: Vec<Row> = [
        event_rows(),
        payload_rows(),
        record_rows(),
        lines_rows(),
        format_rows(),
        env_rows(),
    ]
    .into_iter()
    .flatten()
    .collect();
    let built = started.elapsed();
    let mut names = std::collections::HashSet::new();
    for r in &rows {
        assert!(names.insert(r.name), "duplicate row name {}", r.name);
    }

    let mut failures = Vec::new();
    let mut slow = Vec::new();
    let mut by_input: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut by_outcome: std::collections::BTreeMap<&str, usize> = Default::default();
    for row in &rows {
        *by_input.entry(row.input.kind()).or_default() += 1;
        *by_outcome.entry(row.expect.kind()).or_default() += 1;
        let t = Instant::now();
        let res = catch_unwind(AssertUnwindSafe(|| run_row(&mut fx, row)));
        let took = t.elapsed();
        if took > Duration::from_millis(500) {
            slow.push(format!("{} {:.2}s", row.name, took.as_secs_f64()));
        }
        match res {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(format!("  {}: {e}", row.name)),
            Err(p) => {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                failures.push(format!("  {}: PANICKED: {msg}", row.name));
                // A panic may leave the shared decoder mid-state: start the next row afresh.
                fx.reader = Reader::default();
            }
        }
    }
    println!(
        "bad-input matrix: {} rows; by input {by_input:?}; by expected outcome {by_outcome:?}; built in {:.2}s, ran in {:.2}s",
        rows.len(),
        built.as_secs_f64(),
        (started.elapsed() - built).as_secs_f64()
    );
    if !slow.is_empty() {
        println!("slow rows: {}", slow.join(", "));
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad-input rows do not hold:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}
