//! Writes Parquet files in AWS's shape for the tests (docs/attribution.md §1.5): one flat
//! optional column per field, INT32 / INT64 / BYTE_ARRAY (UTF8), GZIP pages, several row groups.

#![allow(dead_code)]

use std::sync::Arc;

use parquet::basic::{Compression, GzipLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

/// A column's Parquet type, as AWS types flow-log fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    I32,
    I64,
    /// INT64 annotated UINT_64.
    U64,
    Str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    I32(i32),
    I64(i64),
    Str(String),
}

impl Value {
    /// The value as a flow-log line carries it.
    pub fn text(&self) -> String {
        match self {
            Value::I32(v) => v.to_string(),
            Value::I64(v) => v.to_string(),
            Value::Str(s) => s.clone(),
        }
    }
}

/// AWS's Parquet type of each field natmeter's tests write (AWS "Flow log records").
pub fn aws_type(field: &str) -> Ty {
    match field {
        "version" | "srcport" | "dstport" | "protocol" | "tcp-flags" | "traffic-path" => Ty::I32,
        "packets" | "bytes" | "start" | "end" => Ty::I64,
        _ => Ty::Str,
    }
}

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

pub struct Spec {
    /// Column names as written in the file, with their types.
    pub columns: Vec<(String, Ty)>,
    pub rows_per_group: usize,
    pub compression: Compression,
    pub dictionary: bool,
    /// Rows per data page (several pages per column chunk when small).
    pub page_rows: usize,
}

impl Spec {
    /// AWS's shape: `_` names, GZIP, `rows_per_group` rows per row group.
    pub fn aws(fields: &[&str], rows_per_group: usize) -> Spec {
        Spec {
            columns: fields
                .iter()
                .map(|f| (f.replace('-', "_"), aws_type(f)))
                .collect(),
            rows_per_group,
            compression: Compression::GZIP(GzipLevel::default()),
            dictionary: true,
            page_rows: 20_000,
        }
    }
}

/// Writes `rows` (one `Option<Value>` per column, `None` a null) as a Parquet file.
pub fn write(spec: &Spec, rows: &[Vec<Option<Value>>]) -> Vec<u8> {
    let fields: Vec<String> = spec
        .columns
        .iter()
        .map(|(name, ty)| match ty {
            Ty::I32 => format!("optional int32 {name} (INT_32);"),
            Ty::I64 => format!("optional int64 {name} (INT_64);"),
            Ty::U64 => format!("optional int64 {name} (UINT_64);"),
            Ty::Str => format!("optional binary {name} (UTF8);"),
        })
        .collect();
    let schema = Arc::new(
        parse_message_type(&format!("message flowlogs {{ {} }}", fields.join(" "))).unwrap(),
    );
    let props = Arc::new(
        WriterProperties::builder()
            .set_compression(spec.compression)
            .set_dictionary_enabled(spec.dictionary)
            .set_data_page_row_count_limit(spec.page_rows)
            .set_write_batch_size(spec.page_rows.min(1024))
            .build(),
    );
    let mut w = SerializedFileWriter::new(Vec::new(), schema, props).unwrap();
    for group in rows.chunks(spec.rows_per_group.max(1)) {
        let mut rg = w.next_row_group().unwrap();
        for (c, (_, ty)) in spec.columns.iter().enumerate() {
            let mut cw = rg.next_column().unwrap().expect("a column per spec");
            let defs: Vec<i16> = group.iter().map(|r| i16::from(r[c].is_some())).collect();
            let present = group.iter().filter_map(|r| r[c].as_ref());
            match ty {
                Ty::I32 => {
                    let v: Vec<i32> = present
                        .map(|v| match v {
                            Value::I32(x) => *x,
                            v => panic!("{v:?} in an INT32 column"),
                        })
                        .collect();
                    cw.typed::<Int32Type>()
                        .write_batch(&v, Some(&defs), None)
                        .unwrap();
                }
                Ty::I64 | Ty::U64 => {
                    let v: Vec<i64> = present
                        .map(|v| match v {
                            Value::I64(x) => *x,
                            v => panic!("{v:?} in an INT64 column"),
                        })
                        .collect();
                    cw.typed::<Int64Type>()
                        .write_batch(&v, Some(&defs), None)
                        .unwrap();
                }
                Ty::Str => {
                    let v: Vec<ByteArray> = present
                        .map(|v| match v {
                            Value::Str(s) => ByteArray::from(s.as_str()),
                            v => panic!("{v:?} in a BYTE_ARRAY column"),
                        })
                        .collect();
                    cw.typed::<ByteArrayType>()
                        .write_batch(&v, Some(&defs), None)
                        .unwrap();
                }
            }
            cw.close().unwrap();
        }
        rg.close().unwrap();
    }
    w.into_inner().unwrap()
}

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
