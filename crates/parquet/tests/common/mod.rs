//! Sample rows for the tests, written in AWS's shape (docs/attribution.md §1.5) by
//! `natmeter_parquet::testing` (the writer `natmeter bench` uses too): one flat optional column
//! per field, INT32 / INT64 / BYTE_ARRAY (UTF8), GZIP pages, several row groups.

#![allow(dead_code)]

pub use natmeter_parquet::testing::{aws_type, write, Spec, Ty, Value};

/// The recommended format's fields (docs/attribution.md §1.3), plus tcp-flags and type.
pub const FIELDS: &[&str] = &[
    "version",
    "account-id",
    "interface-id",
    "srcaddr",
    "dstaddr",
    "srcport",
    "dstport",
    "protocol",
    "packets",
    "bytes",
    "start",
    "end",
    "action",
    "log-status",
    "vpc-id",
    "subnet-id",
    "az-id",
    "flow-direction",
    "traffic-path",
    "pkt-srcaddr",
    "pkt-dstaddr",
    "pkt-src-aws-service",
    "pkt-dst-aws-service",
    "tcp-flags",
    "type",
];

/// A plausible value of `field` for row `i` (deterministic), `None` where AWS writes no value.
pub fn sample(field: &str, i: usize) -> Option<Value> {
    let n = i as i64;
    Some(match field {
        "version" => Value::I32(5),
        "account-id" => Value::Str("123456789012".into()),
        "interface-id" => Value::Str(format!("eni-0e2e00000000000{:02x}", i % 3)),
        "srcaddr" => Value::Str(format!("10.0.{}.{}", i % 7, 1 + i % 250)),
        "dstaddr" => Value::Str("10.0.0.10".into()),
        "srcport" | "dstport" => Value::I32(1024 + (i as i32 * 7919) % 60000),
        "protocol" => Value::I32(6),
        "packets" => Value::I64(1 + n % 900),
        "bytes" => Value::I64(40 + n * 1_000_003 % 9_000_000_000),
        "start" => Value::I64(1_764_547_200 + n),
        "end" => Value::I64(1_764_547_259 + n),
        "action" => Value::Str(
            if i.is_multiple_of(11) {
                "REJECT"
            } else {
                "ACCEPT"
            }
            .into(),
        ),
        "log-status" => Value::Str("OK".into()),
        "vpc-id" => Value::Str("vpc-0a1b2c3d4e5f60718".into()),
        "subnet-id" => Value::Str("subnet-0b54489040e3ad369".into()),
        "az-id" => Value::Str("use1-az1".into()),
        "flow-direction" => Value::Str(
            if i.is_multiple_of(2) {
                "ingress"
            } else {
                "egress"
            }
            .into(),
        ),
        // traffic-path is egress only: null on ingress records, as AWS writes it.
        "traffic-path" if i.is_multiple_of(2) => return None,
        "traffic-path" => Value::I32(8),
        "pkt-srcaddr" => Value::Str(format!("10.0.{}.{}", i % 7, 1 + i % 250)),
        "pkt-dstaddr" => Value::Str(format!("3.218.{}.{}", i % 256, i % 200)),
        "pkt-src-aws-service" => return None,
        "pkt-dst-aws-service" if i.is_multiple_of(3) => Value::Str("S3".into()),
        "pkt-dst-aws-service" => return None,
        "tcp-flags" => Value::I32(19),
        "type" => Value::Str("IPv4".into()),
        other => Value::Str(format!("{other}-{i}")),
    })
}

/// `rows` sample rows of `fields`.
pub fn sample_rows(fields: &[&str], rows: usize) -> Vec<Vec<Option<Value>>> {
    (0..rows)
        .map(|i| fields.iter().map(|f| sample(f, i)).collect())
        .collect()
}

/// The text lines a reader must write for `rows`: single spaces, `-` for a null.
pub fn expected_text(rows: &[Vec<Option<Value>>]) -> String {
    let mut s = String::new();
    for r in rows {
        let fields: Vec<String> = r
            .iter()
            .map(|v| v.as_ref().map_or_else(|| "-".to_string(), Value::text))
            .collect();
        s.push_str(&fields.join(" "));
        s.push('\n');
    }
    s
}
