//! Parquet flow-log files in AWS's shape read back as flow-log lines (docs/attribution.md §1.5):
//! every value, nulls as `-`, the format the columns make, and every way a file is refused.

mod common;

use common::{expected_text, sample_rows, write, Spec, Ty, Value, FIELDS};
use flowlog::{Field, Format, FormatError};
use natmeter_parquet::{Error, FlowLogParquet, MAGIC};
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaDataReader;

/// Every line of the file, `max_rows` at a time, with each call's row count.
fn read_all(p: &mut FlowLogParquet, max_rows: usize) -> (String, Vec<usize>) {
    let mut buf = Vec::new();
    let mut calls = Vec::new();
    loop {
        let n = p.next_lines(&mut buf, max_rows).unwrap();
        if n == 0 {
            break;
        }
        calls.push(n);
    }
    (String::from_utf8(buf).unwrap(), calls)
}

#[test]
fn aws_shape_round_trips_every_value_and_null() {
    let rows = sample_rows(FIELDS, 100);
    let spec = Spec {
        page_rows: 5,
        ..Spec::aws(FIELDS, 17)
    };
    let file = write(&spec, &rows);
    assert_eq!(&file[..4], MAGIC);
    let mut p = FlowLogParquet::from_bytes(file).unwrap();
    assert_eq!(p.rows(), 100);
    assert_eq!(p.row_groups(), 6);
    // The `_` names are the fields: the same format as an S3 text header naming them.
    assert_eq!(p.format(), &Format::from_header(&FIELDS.join(" ")).unwrap());
    let (text, calls) = read_all(&mut p, 7);
    assert_eq!(text, expected_text(&rows));
    // Batches stop at row-group ends: 17 = 7 + 7 + 3, and the last group has 15.
    assert_eq!(calls[..3], [7, 7, 3]);
    assert_eq!(calls.iter().sum::<usize>(), 100);
    assert!(text.contains(" - "), "nulls are written as -");

    // Parsed by the format, each line gives the values written, field by field.
    let format = p.format().clone();
    for (line, row) in text.lines().zip(&rows) {
        let rec = format.parse_line(line).unwrap();
        for (name, value) in FIELDS.iter().zip(row) {
            let field = Field::from_name(name).unwrap();
            assert_eq!(
                rec.get(field),
                value.as_ref().map(Value::text).as_deref(),
                "{name} in {line}"
            );
        }
        let want = |name: &str| match row[FIELDS.iter().position(|f| *f == name).unwrap()] {
            Some(Value::I64(v)) => Some(v as u64),
            Some(Value::I32(v)) => Some(v as u64),
            _ => None,
        };
        assert_eq!(rec.bytes().unwrap(), want("bytes"));
        assert_eq!(rec.packets().unwrap(), want("packets"));
        assert_eq!(rec.start().unwrap(), want("start"));
        assert_eq!(
            rec.port(Field::SrcPort).unwrap().map(u64::from),
            want("srcport")
        );
        assert_eq!(
            rec.traffic_path().unwrap().map(u64::from),
            want("traffic-path")
        );
        assert!(rec.ip(Field::PktDstAddr).unwrap().is_some());
        assert_eq!(rec.pkt_src_aws_service().unwrap(), None);
    }
    // Finished: more calls add nothing.
    let mut buf = Vec::new();
    assert_eq!(p.next_lines(&mut buf, 10).unwrap(), 0);
    assert!(buf.is_empty());
}

#[test]
fn dash_names_snappy_plain_and_uncompressed_read_the_same() {
    let rows = sample_rows(FIELDS, 40);
    let reference = expected_text(&rows);
    let dashed = Spec {
        columns: FIELDS
            .iter()
            .map(|f| (f.to_string(), common::aws_type(f)))
            .collect(),
        ..Spec::aws(FIELDS, 9)
    };
    let variants = [
        dashed,
        Spec {
            compression: Compression::SNAPPY,
            dictionary: false,
            page_rows: 3,
            ..Spec::aws(FIELDS, 40)
        },
        Spec {
            compression: Compression::UNCOMPRESSED,
            ..Spec::aws(FIELDS, 1)
        },
    ];
    for spec in variants {
        let mut p = FlowLogParquet::from_bytes(write(&spec, &rows)).unwrap();
        assert_eq!(p.format(), &Format::from_header(&FIELDS.join(" ")).unwrap());
        assert_eq!(
            read_all(&mut p, 1000).0,
            reference,
            "{:?}",
            spec.compression
        );
    }
}

#[test]
fn open_streams_a_file_like_from_bytes() {
    let rows = sample_rows(FIELDS, 300);
    let bytes = write(&Spec::aws(FIELDS, 64), &rows);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flows.log.parquet");
    std::fs::write(&path, &bytes).unwrap();
    let mut p = FlowLogParquet::open(std::fs::File::open(&path).unwrap()).unwrap();
    assert_eq!(read_all(&mut p, 50).0, expected_text(&rows));
}

/// natmeter has no rule of its own for which columns a file needs: the format is the header
/// line the columns make, so a file without `srcaddr` reads exactly as a text file whose
/// header lacks it (the engine then refuses each record with `field srcaddr: a value is
/// required here`, at `file:row`; crates/cli/tests/parquet_cli.rs).
#[test]
fn a_missing_column_reads_as_a_header_without_it() {
    let fields: Vec<&str> = FIELDS.iter().copied().filter(|f| *f != "srcaddr").collect();
    let rows = sample_rows(&fields, 5);
    let mut p = FlowLogParquet::from_bytes(write(&Spec::aws(&fields, 5), &rows)).unwrap();
    assert_eq!(p.format(), &Format::from_header(&fields.join(" ")).unwrap());
    assert!(!p.format().has(Field::SrcAddr));
    let (text, _) = read_all(&mut p, 10);
    let rec = p.format().parse_line(text.lines().next().unwrap()).unwrap();
    assert_eq!(rec.ip(Field::SrcAddr).unwrap(), None);
}

#[test]
fn a_field_in_two_columns_is_refused_like_a_header() {
    let mut spec = Spec::aws(&["version", "interface-id", "bytes"], 5);
    spec.columns.push(("interface-id".into(), Ty::Str));
    let rows = vec![vec![
        Some(Value::I32(2)),
        Some(Value::Str("eni-1".into())),
        Some(Value::I64(1)),
        Some(Value::Str("eni-1".into())),
    ]];
    let e = FlowLogParquet::from_bytes(write(&spec, &rows)).unwrap_err();
    let header = Format::from_header("version interface-id bytes interface-id").unwrap_err();
    assert!(matches!(&e, Error::Format(f) if *f == header), "{e}");
    assert!(matches!(
        header,
        FormatError::Duplicate {
            first: 2,
            second: 4,
            ..
        }
    ));
    assert!(
        e.to_string()
            .contains("names field `interface-id` twice (positions 2 and 4)"),
        "{e}"
    );
}

/// An unknown name keeps its position and its value, as in a text header: the engine ignores
/// the value and reports the name once (`unknown_fields`).
#[test]
fn unknown_columns_keep_their_position_and_values() {
    let mut spec = Spec::aws(&["version", "srcaddr", "bytes"], 3);
    spec.columns.insert(1, ("future_field".into(), Ty::Str));
    spec.columns.push(("future_count".into(), Ty::I64));
    let rows: Vec<Vec<Option<Value>>> = (0..7)
        .map(|i| {
            vec![
                Some(Value::I32(8)),
                (i % 2 == 0).then(|| Value::Str(format!("x{i}"))),
                Some(Value::Str(format!("10.0.0.{i}"))),
                Some(Value::I64(i * 100)),
                Some(Value::I64(-i)),
            ]
        })
        .collect();
    let mut p = FlowLogParquet::from_bytes(write(&spec, &rows)).unwrap();
    assert_eq!(
        p.format().unknown_fields().collect::<Vec<_>>(),
        ["future_field", "future_count"]
    );
    assert_eq!(
        p.format(),
        &Format::from_header("version future_field srcaddr bytes future_count").unwrap()
    );
    let (text, _) = read_all(&mut p, 4);
    assert_eq!(text, expected_text(&rows));
    let rec = p.format().parse_line(text.lines().nth(3).unwrap()).unwrap();
    assert_eq!(rec.bytes().unwrap(), Some(300));
    assert_eq!(rec.get(Field::SrcAddr), Some("10.0.0.3"));
}

#[test]
fn unexpected_physical_types_are_named() {
    let refused = [
        (
            "bytes",
            Ty::Str,
            Value::Str("12".into()),
            "BYTE_ARRAY",
            "INT32 or INT64",
        ),
        (
            "srcaddr",
            Ty::I32,
            Value::I32(1),
            "INT32",
            "BYTE_ARRAY (STRING)",
        ),
        (
            "pkt_dst_aws_service",
            Ty::I64,
            Value::I64(1),
            "INT64",
            "BYTE_ARRAY (STRING)",
        ),
    ];
    for (name, ty, value, physical, expected) in refused {
        let mut spec = Spec::aws(&["version", "interface-id"], 5);
        spec.columns.push((name.into(), ty));
        let rows = vec![vec![
            Some(Value::I32(2)),
            Some(Value::Str("eni-1".into())),
            Some(value),
        ]];
        let e = FlowLogParquet::from_bytes(write(&spec, &rows)).unwrap_err();
        match &e {
            Error::PhysicalType {
                position,
                column,
                physical: p,
                expected: x,
                ..
            } => {
                assert_eq!((*position, column.as_str()), (3, name));
                assert_eq!((p.as_str(), *x), (physical, expected));
            }
            e => panic!("{name}: {e}"),
        }
        assert!(
            e.to_string()
                .contains(&format!("column 3 `{name}` has physical type {physical}")),
            "{e}"
        );
    }
}

/// Widths are not types: an INT64 `version` or an INT32 `bytes` (a rewritten file) reads, and
/// an unsigned annotation is honoured.
#[test]
fn integer_widths_and_unsigned_annotations_read() {
    let spec = Spec {
        columns: vec![
            ("version".into(), Ty::I64),
            ("bytes".into(), Ty::U64),
            ("packets".into(), Ty::I32),
        ],
        ..Spec::aws(&[], 10)
    };
    let rows = vec![vec![
        Some(Value::I64(2)),
        Some(Value::I64(-1)),
        Some(Value::I32(7)),
    ]];
    let mut p = FlowLogParquet::from_bytes(write(&spec, &rows)).unwrap();
    assert_eq!(read_all(&mut p, 10).0, "2 18446744073709551615 7\n");
}

/// Text cannot hold an empty value or a line end inside one: an empty string is `-` (no
/// value), and a line end is a space, so that one row stays one line and the value makes the
/// row's field count wrong (the engine refuses it, as it would the same value in text).
#[test]
fn empty_strings_and_line_ends_in_values() {
    let spec = Spec::aws(&["version", "action", "log-status"], 10);
    let rows = vec![
        vec![
            Some(Value::I32(2)),
            Some(Value::Str(String::new())),
            Some(Value::Str("OK".into())),
        ],
        vec![
            Some(Value::I32(2)),
            Some(Value::Str("AC\nCEPT".into())),
            Some(Value::Str("OK\r".into())),
        ],
        vec![None, None, None],
    ];
    let mut p = FlowLogParquet::from_bytes(write(&spec, &rows)).unwrap();
    let (text, _) = read_all(&mut p, 10);
    assert_eq!(text, "2 - OK\n2 AC CEPT OK \n- - -\n");
    let line = text.lines().nth(1).unwrap();
    assert!(p.format().parse_line(line).is_err());
}

#[test]
fn an_empty_file_has_a_format_and_no_rows() {
    let mut p = FlowLogParquet::from_bytes(write(&Spec::aws(FIELDS, 10), &[])).unwrap();
    assert_eq!(p.rows(), 0);
    assert_eq!(p.format().len(), FIELDS.len());
    assert_eq!(read_all(&mut p, 10).0, "");
}

#[test]
fn not_parquet_and_truncated_files_are_refused() {
    let file = write(&Spec::aws(FIELDS, 10), &sample_rows(FIELDS, 30));
    let not = |b: &[u8]| FlowLogParquet::from_bytes(b.to_vec()).unwrap_err();
    assert!(matches!(not(b""), Error::NotParquet { len: 0 }));
    let e = not(b"version srcaddr\n2 10.0.0.1\n");
    assert!(e.to_string().starts_with("not a Parquet file"), "{e}");
    for cut in [file.len() - 1, file.len() - 9, file.len() / 2, 5] {
        let e = not(&file[..cut]);
        assert!(matches!(e, Error::Truncated { .. }), "{cut}: {e}");
        assert!(e.to_string().contains("truncated"), "{e}");
    }
    // Both magics, but the footer is garbage.
    let mut bad = file[..file.len() / 2].to_vec();
    bad.extend_from_slice(&[0xff; 8]);
    bad.extend_from_slice(MAGIC);
    assert!(matches!(not(&bad), Error::Footer(_)), "{}", not(&bad));
    // Through a file on disk too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cut.log.parquet");
    std::fs::write(&path, &file[..file.len() / 3]).unwrap();
    let e = FlowLogParquet::open(std::fs::File::open(&path).unwrap()).unwrap_err();
    assert!(matches!(e, Error::Truncated { .. }), "{e}");
}

#[test]
fn nested_columns_are_refused() {
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use std::sync::Arc;
    let schema = parquet::schema::parser::parse_message_type(
        "message m { optional int32 version; optional group pkt { optional binary srcaddr (UTF8); } }",
    )
    .unwrap();
    let w = SerializedFileWriter::new(
        Vec::new(),
        Arc::new(schema),
        Arc::new(WriterProperties::builder().build()),
    )
    .unwrap();
    let e = FlowLogParquet::from_bytes(w.into_inner().unwrap()).unwrap_err();
    assert!(
        matches!(&e, Error::NotFlat { position: 2, column } if column == "pkt"),
        "{e}"
    );
}

/// A column chunk of row group 1 overwritten: the rows of row group 0 come out, then an error
/// naming row group 1 and the column, and the reader is finished.
#[test]
fn a_corrupt_row_group_is_named() {
    let rows = sample_rows(FIELDS, 30);
    let mut file = write(&Spec::aws(FIELDS, 10), &rows);
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::from(file.clone()))
        .unwrap();
    let chunk = meta.row_group(1).column(3);
    assert_eq!(chunk.column_path().string(), "srcaddr");
    let (start, len) = chunk.byte_range();
    for b in &mut file[start as usize + 1..(start + len) as usize] {
        *b ^= 0x5a;
    }
    let mut p = FlowLogParquet::from_bytes(file).unwrap();
    let mut buf = Vec::new();
    assert_eq!(p.next_lines(&mut buf, 100).unwrap(), 10);
    assert_eq!(
        String::from_utf8(buf.clone()).unwrap(),
        expected_text(&rows[..10])
    );
    let e = p.next_lines(&mut buf, 100).unwrap_err();
    assert!(
        matches!(&e, Error::RowGroup { index: 1, count: 3, column, .. } if column == "srcaddr"),
        "{e}"
    );
    assert!(
        e.to_string()
            .starts_with("corrupt row group 1 (of 3), column `srcaddr`: "),
        "{e}"
    );
    assert_eq!(
        buf.len(),
        expected_text(&rows[..10]).len(),
        "nothing appended on error"
    );
    assert_eq!(p.next_lines(&mut buf, 100).unwrap(), 0);
}

/// Damage late in a row group: the call returns the rows decoded before it (whole batches),
/// and the next call the error.
#[test]
fn rows_before_a_corrupt_page_come_first() {
    let rows = sample_rows(FIELDS, 5000);
    let spec = Spec {
        page_rows: 100,
        ..Spec::aws(FIELDS, 5000)
    };
    let mut file = write(&spec, &rows);
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&bytes::Bytes::from(file.clone()))
        .unwrap();
    let (start, len) = meta.row_group(0).column(9).byte_range();
    let (start, len) = (start as usize, len as usize);
    for b in &mut file[start + len - len / 8..start + len] {
        *b ^= 0x5a;
    }
    let mut p = FlowLogParquet::from_bytes(file).unwrap();
    let mut buf = Vec::new();
    let n = p.next_lines(&mut buf, 10_000).unwrap();
    assert!(n > 0 && n < 5000 && n.is_multiple_of(2048), "{n}");
    assert_eq!(
        String::from_utf8(buf.clone()).unwrap(),
        expected_text(&rows[..n])
    );
    let e = p.next_lines(&mut buf, 10_000).unwrap_err();
    assert!(
        matches!(&e, Error::RowGroup { index: 0, column, .. } if column == "bytes"),
        "{e}"
    );
    assert_eq!(p.next_lines(&mut buf, 10_000).unwrap(), 0);
}

/// Whatever bytes are damaged, reading ends in rows or an error, never a panic or a hang.
#[test]
fn damaged_bytes_anywhere_end_in_rows_or_an_error() {
    let rows = sample_rows(FIELDS, 40);
    let file = write(&Spec::aws(FIELDS, 10), &rows);
    for at in (0..file.len()).step_by(97) {
        let mut bad = file.clone();
        bad[at] ^= 0xa5;
        if let Ok(mut p) = FlowLogParquet::from_bytes(bad) {
            let mut buf = Vec::new();
            while let Ok(n) = p.next_lines(&mut buf, 16) {
                if n == 0 {
                    break;
                }
            }
        }
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn value(ty: Ty) -> BoxedStrategy<Option<Value>> {
        let v = match ty {
            Ty::I32 => any::<i32>().prop_map(Value::I32).boxed(),
            Ty::I64 | Ty::U64 => any::<i64>().prop_map(Value::I64).boxed(),
            Ty::Str => "[A-Za-z0-9][A-Za-z0-9.:_/-]{0,15}"
                .prop_map(Value::Str)
                .boxed(),
        };
        prop_oneof![1 => Just(None), 4 => v.prop_map(Some)].boxed()
    }

    fn rows(types: Vec<Ty>, n: usize) -> impl Strategy<Value = Vec<Vec<Option<Value>>>> {
        let row: Vec<_> = types.into_iter().map(value).collect();
        proptest::collection::vec(row, 0..n)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        /// Random rows of the recommended format, random row-group and batch sizes: the lines
        /// are the values, and each parses to them.
        #[test]
        fn random_rows_round_trip(
            rows in rows(FIELDS.iter().map(|f| common::aws_type(f)).collect(), 120),
            group in 1usize..50,
            batch in 1usize..70,
            page_rows in 1usize..40,
            dictionary in any::<bool>(),
        ) {
            let spec = Spec { page_rows, dictionary, ..Spec::aws(FIELDS, group) };
            let mut p = FlowLogParquet::from_bytes(write(&spec, &rows)).unwrap();
            prop_assert_eq!(p.rows(), rows.len() as u64);
            let (text, calls) = read_all(&mut p, batch);
            prop_assert!(calls.iter().all(|&n| n <= batch));
            prop_assert_eq!(&text, &expected_text(&rows));
            for (line, row) in text.lines().zip(&rows) {
                let rec = p.format().parse_line(line).unwrap();
                for (name, v) in FIELDS.iter().zip(row) {
                    let f = Field::from_name(name).unwrap();
                    let want = v.as_ref().map(Value::text);
                    prop_assert_eq!(rec.get(f), want.as_deref());
                }
            }
        }
    }
}
