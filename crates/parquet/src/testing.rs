//! Writes Parquet flow-log files in AWS's shape (docs/attribution.md §1.5), for the tests and
//! `natmeter bench`: one flat optional column per field named with `_` for `-`, INT32 for
//! version, ports, protocol, tcp-flags and traffic-path, INT64 for packets, bytes, start and
//! end, BYTE_ARRAY (UTF8) for the rest, nulls where text has `-`, GZIP pages.
//!
//! Not used by the reader: it is here so that the tests and the bench write files with one
//! writer, the parquet crate's own (the crate natmeter-parquet reads with). It panics on a value
//! of the wrong type in [`write`] (a test's mistake); [`write_aws_parquet`] returns an error.

use std::sync::Arc;

use bytes::Bytes;
use parquet::basic::{Compression, GzipLevel};
use parquet::data_type::{ByteArray, ByteArrayType, Int32Type, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::Type as SchemaType;

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

/// AWS's Parquet type of a field (AWS "Flow log records").
pub fn aws_type(field: &str) -> Ty {
    match field {
        "version" | "srcport" | "dstport" | "protocol" | "tcp-flags" | "traffic-path" => Ty::I32,
        "packets" | "bytes" | "start" | "end" => Ty::I64,
        _ => Ty::Str,
    }
}

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

    fn schema(&self) -> Arc<SchemaType> {
        let fields: Vec<String> = self
            .columns
            .iter()
            .map(|(name, ty)| match ty {
                Ty::I32 => format!("optional int32 {name} (INT_32);"),
                Ty::I64 => format!("optional int64 {name} (INT_64);"),
                Ty::U64 => format!("optional int64 {name} (UINT_64);"),
                Ty::Str => format!("optional binary {name} (UTF8);"),
            })
            .collect();
        Arc::new(
            parse_message_type(&format!("message flowlogs {{ {} }}", fields.join(" ")))
                .expect("the schema of flat typed columns parses"),
        )
    }

    fn writer(&self) -> parquet::errors::Result<SerializedFileWriter<Vec<u8>>> {
        let props = Arc::new(
            WriterProperties::builder()
                .set_compression(self.compression)
                .set_dictionary_enabled(self.dictionary)
                .set_data_page_row_count_limit(self.page_rows)
                .set_write_batch_size(self.page_rows.min(1024))
                .build(),
        );
        SerializedFileWriter::new(Vec::new(), self.schema(), props)
    }
}

/// One column chunk's values: definition levels (0 a null) and the values present.
enum Chunk {
    I32(Vec<i32>),
    I64(Vec<i64>),
    Str(Vec<ByteArray>),
}

/// Writes the row groups `groups` yields as one file.
fn write_groups(
    spec: &Spec,
    groups: impl IntoIterator<Item = Result<Vec<(Vec<i16>, Chunk)>, String>>,
) -> Result<Vec<u8>, String> {
    let err = |e: parquet::errors::ParquetError| e.to_string();
    let mut w = spec.writer().map_err(err)?;
    for group in groups {
        let mut rg = w.next_row_group().map_err(err)?;
        for (defs, chunk) in group? {
            let mut cw = rg
                .next_column()
                .map_err(err)?
                .ok_or("more columns than the schema")?;
            match chunk {
                Chunk::I32(v) => cw
                    .typed::<Int32Type>()
                    .write_batch(&v, Some(&defs), None)
                    .map_err(err)?,
                Chunk::I64(v) => cw
                    .typed::<Int64Type>()
                    .write_batch(&v, Some(&defs), None)
                    .map_err(err)?,
                Chunk::Str(v) => cw
                    .typed::<ByteArrayType>()
                    .write_batch(&v, Some(&defs), None)
                    .map_err(err)?,
            };
            cw.close().map_err(err)?;
        }
        rg.close().map_err(err)?;
    }
    w.into_inner().map_err(err)
}

/// Writes `rows` (one `Option<Value>` per column, `None` a null) as a Parquet file.
///
/// # Panics
/// On a value of another type than its column's, or a writer error.
pub fn write(spec: &Spec, rows: &[Vec<Option<Value>>]) -> Vec<u8> {
    let groups = rows.chunks(spec.rows_per_group.max(1)).map(|group| {
        Ok(spec
            .columns
            .iter()
            .enumerate()
            .map(|(c, (_, ty))| {
                let defs: Vec<i16> = group.iter().map(|r| i16::from(r[c].is_some())).collect();
                let present = group.iter().filter_map(|r| r[c].as_ref());
                let chunk = match ty {
                    Ty::I32 => Chunk::I32(
                        present
                            .map(|v| match v {
                                Value::I32(x) => *x,
                                v => panic!("{v:?} in an INT32 column"),
                            })
                            .collect(),
                    ),
                    Ty::I64 | Ty::U64 => Chunk::I64(
                        present
                            .map(|v| match v {
                                Value::I64(x) => *x,
                                v => panic!("{v:?} in an INT64 column"),
                            })
                            .collect(),
                    ),
                    Ty::Str => Chunk::Str(
                        present
                            .map(|v| match v {
                                Value::Str(s) => ByteArray::from(s.as_str()),
                                v => panic!("{v:?} in a BYTE_ARRAY column"),
                            })
                            .collect(),
                    ),
                };
                (defs, chunk)
            })
            .collect())
    });
    write_groups(spec, groups).unwrap()
}

/// What [`write_aws_parquet`] wrote.
#[derive(Debug)]
pub struct Written {
    pub file: Vec<u8>,
    /// Rows written: the lines with one value per field.
    pub rows: u64,
    /// Lines skipped: another number of values than fields (a malformed text line, which a
    /// typed Parquet file cannot hold).
    pub skipped: u64,
}

/// Flow-log text lines of `fields` (AWS names, with `-`; values separated by single spaces)
/// written as AWS writes the same records in Parquet: [`Spec::aws`]'s columns and GZIP pages,
/// `rows_per_group` rows per row group, the parquet crate's default pages, `-` as a null.
/// The strings share `text`'s buffer (a `Vec<u8>` is taken without a copy), so a big file is written without a copy per value.
///
/// A line with another number of values than `fields` is skipped (counted in
/// [`Written::skipped`]); an integer column's value that is not an integer of its width is an
/// error naming the line.
pub fn write_aws_parquet(
    fields: &[&str],
    text: impl Into<Bytes>,
    rows_per_group: usize,
) -> Result<Written, String> {
    let text: Bytes = text.into();
    let spec = Spec {
        page_rows: parquet::file::properties::DEFAULT_DATA_PAGE_ROW_COUNT_LIMIT,
        ..Spec::aws(fields, rows_per_group)
    };
    // Line spans, the whole lines of the right width.
    let mut lines = Vec::new();
    let mut skipped = 0u64;
    let mut at = 0usize;
    for line in text.split(|&b| b == b'\n') {
        let (start, end) = (at, at + line.len());
        at = end + 1;
        if line.is_empty() {
            continue;
        }
        if line.split(|&b| b == b' ').count() == fields.len() {
            lines.push((start, end));
        } else {
            skipped += 1;
        }
    }
    let rows = lines.len() as u64;
    let tys: Vec<Ty> = spec.columns.iter().map(|(_, t)| *t).collect();
    let text_ref = &text;
    let groups = lines.chunks(rows_per_group.max(1)).map(|group| {
        let mut defs: Vec<Vec<i16>> = vec![Vec::with_capacity(group.len()); tys.len()];
        let mut chunks: Vec<Chunk> = tys
            .iter()
            .map(|t| match t {
                Ty::I32 => Chunk::I32(Vec::with_capacity(group.len())),
                Ty::I64 | Ty::U64 => Chunk::I64(Vec::with_capacity(group.len())),
                Ty::Str => Chunk::Str(Vec::with_capacity(group.len())),
            })
            .collect();
        for &(start, end) in group {
            let mut v_at = start;
            for (c, v) in text_ref[start..end].split(|&b| b == b' ').enumerate() {
                let (vs, ve) = (v_at, v_at + v.len());
                v_at = ve + 1;
                if v == b"-" {
                    defs[c].push(0);
                    continue;
                }
                defs[c].push(1);
                let int = || {
                    std::str::from_utf8(v)
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                        .ok_or_else(|| {
                            format!(
                                "{:?} in integer column {}: {}",
                                String::from_utf8_lossy(v),
                                fields[c],
                                String::from_utf8_lossy(&text_ref[start..end])
                            )
                        })
                };
                match &mut chunks[c] {
                    Chunk::I32(out) => out.push(
                        i32::try_from(int()?)
                            .map_err(|_| format!("{} overflows INT32", fields[c]))?,
                    ),
                    Chunk::I64(out) => out.push(int()?),
                    Chunk::Str(out) => out.push(ByteArray::from(text_ref.slice(vs..ve))),
                }
            }
        }
        Ok(defs.into_iter().zip(chunks).collect())
    });
    let file = write_groups(&spec, groups)?;
    Ok(Written {
        file,
        rows,
        skipped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FlowLogParquet;

    #[test]
    fn text_lines_round_trip_with_nulls_and_a_skipped_line() {
        let fields = [
            "version",
            "interface-id",
            "srcaddr",
            "bytes",
            "traffic-path",
        ];
        let text =
            "5 eni-1 10.0.0.1 100 8\n5 eni-1 - 7 -\n5 eni-1 short\n5 eni-2 10.0.0.2 9000000000 1\n";
        let w = write_aws_parquet(&fields, Bytes::from(text), 2).unwrap();
        assert_eq!((w.rows, w.skipped), (3, 1));
        let mut p = FlowLogParquet::from_bytes(w.file).unwrap();
        assert_eq!(p.row_groups(), 2);
        assert_eq!(
            p.format().to_aws_syntax(),
            "${version} ${interface-id} ${srcaddr} ${bytes} ${traffic-path}"
        );
        let mut buf = Vec::new();
        while p.next_lines(&mut buf, 100).unwrap() > 0 {}
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "5 eni-1 10.0.0.1 100 8\n5 eni-1 - 7 -\n5 eni-2 10.0.0.2 9000000000 1\n"
        );
        let e = write_aws_parquet(&fields, Bytes::from("x eni-1 a 1 1\n"), 2).unwrap_err();
        assert!(e.contains("version"), "{e}");
    }
}
