//! VPC Flow Logs delivered to S3 as Parquet (`.log.parquet`), read as the flow-log text lines
//! the engine already parses.
//!
//! A Parquet flow-log file has no header line: its columns are the format, each named as the
//! field with `-` replaced by `_` (docs/attribution.md §1.5). [`FlowLogParquet`] maps the
//! columns to fields, builds the format exactly as a text file's header line would
//! ([`flowlog::Format::from_header`], so a file is refused for the reasons a header is and for
//! no others), and writes rows back as lines of that format: values separated by single spaces,
//! `-` for a null. Everything downstream (parsing, attribution, error locations `file:row`) is
//! then the text path's, with no second parser to keep in step.
//!
//! Memory: rows are decoded a batch at a time from one row group, column chunk by column chunk
//! (a typed column reader per column, each holding about one page), never the whole file.
//!
//! Owns: the Parquet container and the column → field mapping. Must never: attribute, know
//! about NAT gateways, or validate values (a bad value is the engine's parse error, as in text).

use std::fs::File;
use std::io::{BufReader, Read};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use bytes::Bytes;
use flowlog::{Column as FormatColumn, Field, Format, FormatError};
use parquet::basic::{Compression, ConvertedType, LogicalType, Type as PhysicalType};
use parquet::column::reader::ColumnReaderImpl;
use parquet::data_type::{ByteArray, ByteArrayType, DataType, Int32Type, Int64Type};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::serialized_reader::SerializedPageReader;
use parquet::schema::types::ColumnDescPtr;

pub mod testing;

/// The four bytes a Parquet file starts and ends with.
pub const MAGIC: &[u8; 4] = b"PAR1";

/// Why a Parquet flow-log file cannot be read, and where.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read the file: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a Parquet file: it does not start with PAR1 ({len} bytes)")]
    NotParquet { len: u64 },
    #[error("starts like Parquet but does not end with PAR1: a truncated (or encrypted) Parquet file ({len} bytes)")]
    Truncated { len: u64 },
    #[error("unreadable Parquet footer (the file's schema and row groups): {0}")]
    Footer(String),
    #[error("column {position} `{column}` is nested or repeated; flow-log Parquet files have one flat column per field")]
    NotFlat { position: usize, column: String },
    #[error("column {position} is named {column:?}, which cannot be a flow-log field name (empty, or with whitespace)")]
    ColumnName { position: usize, column: String },
    /// The columns, read as a header line, are refused as a text header with those names would
    /// be; positions in the message are column numbers, from 1.
    #[error("the columns are not a usable flow-log format (positions are column numbers): {0}")]
    Format(#[from] FormatError),
    #[error("column {position} `{column}` has physical type {physical}; field `{field}` is read from {expected}")]
    PhysicalType {
        position: usize,
        column: String,
        field: String,
        physical: String,
        expected: &'static str,
    },
    #[error("row group {index}, column `{column}`: compression {codec} is not supported (GZIP, SNAPPY or none)")]
    Compression {
        index: usize,
        column: String,
        codec: String,
    },
    #[error("corrupt row group {index} (of {count}), column `{column}`: {reason}")]
    RowGroup {
        index: usize,
        count: usize,
        column: String,
        reason: String,
    },
}

/// A file's bytes: streamed from disk, or already in memory (an S3 object's body).
enum Source {
    File(File),
    Bytes(Bytes),
}

enum SourceRead {
    File(BufReader<File>),
    Bytes(bytes::buf::Reader<Bytes>),
}

impl Read for SourceRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            SourceRead::File(r) => r.read(buf),
            SourceRead::Bytes(r) => r.read(buf),
        }
    }
}

impl Length for Source {
    fn len(&self) -> u64 {
        match self {
            Source::File(f) => Length::len(f),
            Source::Bytes(b) => b.len() as u64,
        }
    }
}

impl ChunkReader for Source {
    type T = SourceRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<SourceRead> {
        Ok(match self {
            Source::File(f) => SourceRead::File(f.get_read(start)?),
            Source::Bytes(b) => SourceRead::Bytes(b.get_read(start)?),
        })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        match self {
            Source::File(f) => f.get_bytes(start, length),
            Source::Bytes(b) => b.get_bytes(start, length),
        }
    }
}

/// How a column's values are written as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int32 { unsigned: bool },
    Int64 { unsigned: bool },
    Text,
}

/// Which physical types a field is read from: AWS's types (docs/attribution.md §1.5) by class.
/// INT32 and INT64 are interchangeable (a rewritten file may widen a column; the engine checks
/// each value's range as it does in text). Fields without a documented Parquet type
/// (`resource-id`, `encryption-status`) and names this build does not know take any of the
/// three, so that a new field cannot make a file unreadable, as it cannot make a header unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Integer,
    Text,
    Any,
}

fn class(column: &FormatColumn) -> Class {
    match column {
        FormatColumn::Known(f) => match f {
            Field::Version
            | Field::SrcPort
            | Field::DstPort
            | Field::Protocol
            | Field::TcpFlags
            | Field::TrafficPath
            | Field::Packets
            | Field::Bytes
            | Field::Start
            | Field::End => Class::Integer,
            Field::ResourceId | Field::EncryptionStatus => Class::Any,
            _ => Class::Text,
        },
        FormatColumn::Unknown(_) => Class::Any,
    }
}

/// One column of the file: its name as written there, and how to read it.
struct ColumnInfo {
    name: String,
    descr: ColumnDescPtr,
    kind: Kind,
}

/// A typed column reader and the values of the batch it last read.
enum Values {
    Int32(ColumnReaderImpl<Int32Type>, Vec<i32>),
    Int64(ColumnReaderImpl<Int64Type>, Vec<i64>),
    Text(ColumnReaderImpl<ByteArrayType>, Vec<ByteArray>),
}

struct ColumnCursor {
    values: Values,
    /// Definition levels of the batch: below `max_def` is a null (nothing in `values`).
    defs: Vec<i16>,
    max_def: i16,
    /// The next value of the batch to write.
    next: usize,
}

/// The row group being read.
struct Group {
    index: usize,
    left: u64,
    columns: Vec<ColumnCursor>,
}

/// A Parquet flow-log file, read as flow-log text lines batch by batch.
pub struct FlowLogParquet {
    source: Arc<Source>,
    metadata: ParquetMetaData,
    format: Format,
    columns: Vec<ColumnInfo>,
    rows: u64,
    next_group: usize,
    group: Option<Group>,
    /// After an error the reader is finished: the file's state is unknown.
    failed: bool,
    /// An error found after a call had appended rows, returned by the next call.
    pending: Option<Error>,
}

/// Rows decoded and written at a time.
const DECODE_ROWS: usize = 2048;

impl std::fmt::Debug for FlowLogParquet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowLogParquet")
            .field("format", &self.format.to_aws_syntax())
            .field("rows", &self.rows)
            .field("row_groups", &self.metadata.num_row_groups())
            .field("next_group", &self.next_group)
            .finish_non_exhaustive()
    }
}

/// Runs a decoder step, turning a panic inside the Parquet crate (it has a few on corrupt
/// input) into an error: a corrupt file is one bad input, never the end of the process.
fn guarded<T>(f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".into());
            Err(format!("the Parquet decoder failed: {msg}"))
        }
    }
}

impl FlowLogParquet {
    /// Opens a Parquet flow-log file: its columns mapped to flow-log fields by name, `_` or `-`.
    /// Reads the footer only; rows are read by [`FlowLogParquet::next_lines`].
    pub fn open(file: File) -> Result<FlowLogParquet, Error> {
        FlowLogParquet::new(Source::File(file))
    }

    /// [`FlowLogParquet::open`] over bytes already in memory (an S3 object's body). Takes the
    /// vector without copying it.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<FlowLogParquet, Error> {
        FlowLogParquet::new(Source::Bytes(Bytes::from(bytes)))
    }

    fn new(source: Source) -> Result<FlowLogParquet, Error> {
        let len = source.len();
        // The magic at both ends first: a clear "not Parquet" or "truncated" rather than
        // whatever the footer parser makes of a text file or half an upload.
        let edge = |at: u64| {
            source
                .get_bytes(at, 4)
                .map_err(|e| Error::Footer(e.to_string()))
        };
        if len < 4 || edge(0)?.as_ref() != MAGIC {
            return Err(Error::NotParquet { len });
        }
        if len < 8 || edge(len - 4)?.as_ref() != MAGIC {
            return Err(Error::Truncated { len });
        }
        let metadata = guarded(|| {
            ParquetMetaDataReader::new()
                .parse_and_finish(&source)
                .map_err(|e| e.to_string())
        })
        .map_err(Error::Footer)?;
        let schema = metadata.file_metadata().schema_descr();
        // Flat: every top-level field one primitive, non-repeated column.
        for (i, t) in schema.root_schema().get_fields().iter().enumerate() {
            if !t.is_primitive() {
                return Err(Error::NotFlat {
                    position: i + 1,
                    column: t.name().to_string(),
                });
            }
        }
        let mut names = Vec::with_capacity(schema.num_columns());
        for (i, c) in schema.columns().iter().enumerate() {
            if c.max_rep_level() > 0 || c.path().parts().len() != 1 {
                return Err(Error::NotFlat {
                    position: i + 1,
                    column: c.path().string(),
                });
            }
            let name = c.name();
            if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
                return Err(Error::ColumnName {
                    position: i + 1,
                    column: name.to_string(),
                });
            }
            names.push(field_name(name));
        }
        // The file's format is the header line its column names make: one set of rules for
        // both deliveries (docs/attribution.md §1.3).
        let format = Format::from_header(&names.join(" "))?;
        let mut columns = Vec::with_capacity(names.len());
        for (i, (c, fc)) in schema.columns().iter().zip(format.columns()).enumerate() {
            let unsigned = matches!(
                c.converted_type(),
                ConvertedType::UINT_8
                    | ConvertedType::UINT_16
                    | ConvertedType::UINT_32
                    | ConvertedType::UINT_64
            ) || matches!(c.logical_type_ref(), Some(LogicalType::Integer(t)) if !t.is_signed);
            let kind = match (c.physical_type(), class(fc)) {
                (PhysicalType::INT32, Class::Integer | Class::Any) => Kind::Int32 { unsigned },
                (PhysicalType::INT64, Class::Integer | Class::Any) => Kind::Int64 { unsigned },
                (PhysicalType::BYTE_ARRAY, Class::Text | Class::Any) => Kind::Text,
                (physical, class) => {
                    return Err(Error::PhysicalType {
                        position: i + 1,
                        column: c.name().to_string(),
                        field: names[i].clone(),
                        physical: physical.to_string(),
                        expected: match class {
                            Class::Integer => "INT32 or INT64",
                            Class::Text => "BYTE_ARRAY (STRING)",
                            Class::Any => "INT32, INT64 or BYTE_ARRAY",
                        },
                    })
                }
            };
            columns.push(ColumnInfo {
                name: c.name().to_string(),
                descr: Arc::clone(c),
                kind,
            });
        }
        let rows = metadata
            .row_groups()
            .iter()
            .map(|g| u64::try_from(g.num_rows()).unwrap_or(0))
            .sum();
        Ok(FlowLogParquet {
            source: Arc::new(source),
            metadata,
            format,
            columns,
            rows,
            next_group: 0,
            group: None,
            failed: false,
            pending: None,
        })
    }

    /// The format of the lines `next_lines` writes: the file's columns in file order.
    pub fn format(&self) -> &Format {
        &self.format
    }

    /// Rows in the file, from its footer.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Row groups in the file.
    pub fn row_groups(&self) -> usize {
        self.metadata.num_row_groups()
    }

    /// Appends up to `max_rows` rows to `buf` as text lines (fields in `format()` order, single
    /// spaces, `-` for null, `\n` after each), returns how many rows it appended (0 at the end).
    /// A call ends at the end of a row group, so it may return fewer than `max_rows` before the
    /// end. A call that returns an error appended nothing; when a row group turns out corrupt
    /// after some rows of a call, the call returns those rows and the next one the error. After
    /// an error the reader is finished (every later call returns 0).
    pub fn next_lines(&mut self, buf: &mut Vec<u8>, max_rows: usize) -> Result<usize, Error> {
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        let mut total = 0;
        while !self.failed && total < max_rows {
            // Decoded a few thousand rows at a time whatever the caller asks for: the values of
            // every column of a batch are then in cache while its lines are written (16,384-row
            // batches spent most of their time waiting for memory).
            match self.batch(buf, (max_rows - total).min(DECODE_ROWS)) {
                Ok(0) => break,
                Ok(n) => total += n,
                Err(e) => {
                    self.failed = true;
                    self.group = None;
                    if total == 0 {
                        return Err(e);
                    }
                    self.pending = Some(e);
                }
            }
            if self.group.as_ref().is_some_and(|g| g.left == 0) {
                break;
            }
        }
        Ok(total)
    }

    fn batch(&mut self, buf: &mut Vec<u8>, max_rows: usize) -> Result<usize, Error> {
        loop {
            match &self.group {
                Some(g) if g.left > 0 => break,
                _ if self.next_group == self.metadata.num_row_groups() => {
                    self.group = None;
                    return Ok(0);
                }
                _ => {
                    let index = self.next_group;
                    self.next_group += 1;
                    self.group = Some(self.open_group(index)?);
                }
            }
        }
        let count = self.metadata.num_row_groups();
        let Some(group) = self.group.as_mut() else {
            return Ok(0);
        };
        let n = usize::try_from(group.left).map_or(max_rows, |left| left.min(max_rows));
        for (cursor, info) in group.columns.iter_mut().zip(&self.columns) {
            let corrupt = |reason: String| Error::RowGroup {
                index: group.index,
                count,
                column: info.name.clone(),
                reason,
            };
            let read = guarded(|| cursor.read(n).map_err(|e| e.to_string())).map_err(corrupt)?;
            if read != n {
                let total =
                    u64::try_from(self.metadata.row_group(group.index).num_rows()).unwrap_or(0);
                let done = total - group.left + read as u64;
                return Err(corrupt(format!(
                    "the column chunk ends after {done} of the row group's {total} rows"
                )));
            }
            // Definition levels and values must agree: a null level has no value.
            let present = if cursor.max_def > 0 {
                cursor.defs.iter().filter(|&&d| d == cursor.max_def).count()
            } else {
                n
            };
            if present != cursor.values.len() {
                return Err(corrupt(format!(
                    "{present} values are defined but {} were decoded",
                    cursor.values.len()
                )));
            }
        }
        write_rows(buf, &mut group.columns, &self.columns, n);
        group.left -= n as u64;
        Ok(n)
    }

    fn open_group(&self, index: usize) -> Result<Group, Error> {
        let rg = self.metadata.row_group(index);
        let count = self.metadata.num_row_groups();
        let mut columns = Vec::with_capacity(self.columns.len());
        for (i, info) in self.columns.iter().enumerate() {
            let chunk = rg.column(i);
            match chunk.compression() {
                Compression::UNCOMPRESSED | Compression::SNAPPY | Compression::GZIP(_) => {}
                other => {
                    return Err(Error::Compression {
                        index,
                        column: info.name.clone(),
                        codec: other.to_string(),
                    })
                }
            }
            let corrupt = |reason: String| Error::RowGroup {
                index,
                count,
                column: info.name.clone(),
                reason,
            };
            let rows = usize::try_from(rg.num_rows())
                .map_err(|_| corrupt(format!("{} rows", rg.num_rows())))?;
            let pages = guarded(|| {
                SerializedPageReader::new(Arc::clone(&self.source), chunk, rows, None)
                    .map_err(|e| e.to_string())
            })
            .map_err(corrupt)?;
            let pages = Box::new(pages);
            let descr = Arc::clone(&info.descr);
            let values = match info.kind {
                Kind::Int32 { .. } => {
                    Values::Int32(ColumnReaderImpl::new(descr, pages), Vec::new())
                }
                Kind::Int64 { .. } => {
                    Values::Int64(ColumnReaderImpl::new(descr, pages), Vec::new())
                }
                Kind::Text => Values::Text(ColumnReaderImpl::new(descr, pages), Vec::new()),
            };
            columns.push(ColumnCursor {
                values,
                defs: Vec::new(),
                max_def: info.descr.max_def_level(),
                next: 0,
            });
        }
        Ok(Group {
            index,
            left: u64::try_from(rg.num_rows()).unwrap_or(0),
            columns,
        })
    }
}

impl Values {
    fn len(&self) -> usize {
        match self {
            Values::Int32(_, v) => v.len(),
            Values::Int64(_, v) => v.len(),
            Values::Text(_, v) => v.len(),
        }
    }
}

impl ColumnCursor {
    /// Reads the next `n` rows' levels and values (fewer at the end of the column chunk).
    fn read(&mut self, n: usize) -> parquet::errors::Result<usize> {
        fn records<T: DataType>(
            r: &mut ColumnReaderImpl<T>,
            v: &mut Vec<T::T>,
            defs: &mut Vec<i16>,
            max_def: i16,
            n: usize,
        ) -> parquet::errors::Result<usize> {
            v.clear();
            defs.clear();
            let defs = (max_def > 0).then_some(defs);
            Ok(r.read_records(n, defs, None, v)?.0)
        }
        self.next = 0;
        let (defs, max_def) = (&mut self.defs, self.max_def);
        match &mut self.values {
            Values::Int32(r, v) => records(r, v, defs, max_def, n),
            Values::Int64(r, v) => records(r, v, defs, max_def, n),
            Values::Text(r, v) => records(r, v, defs, max_def, n),
        }
    }
}

/// The field name a column name stands for: AWS writes `-` as `_` in Parquet column names
/// (docs/attribution.md §1.5). A name that is no known field either way is kept as written,
/// so that the `unknown_fields` diagnostic names what is in the file.
fn field_name(column: &str) -> String {
    let dashed = column.replace('_', "-");
    if Field::from_name(&dashed).is_some() {
        dashed
    } else {
        column.to_string()
    }
}

/// Writes `n` decoded rows as lines. A null, and an empty string (which text cannot hold), is
/// `-`, as AWS writes a field without a value in text. A line end inside a string is written as
/// a space, so that one row stays one line (and its row number): the value then splits into
/// more fields than the format has, and the engine refuses that row as it would the same value
/// in text, as it does any value with whitespace in it.
fn write_rows(buf: &mut Vec<u8>, cursors: &mut [ColumnCursor], info: &[ColumnInfo], n: usize) {
    let mut ints = itoa::Buffer::new();
    buf.reserve(n * cursors.len() * 12);
    for row in 0..n {
        for (i, (c, info)) in cursors.iter_mut().zip(info).enumerate() {
            if i > 0 {
                buf.push(b' ');
            }
            if c.max_def > 0 && c.defs[row] < c.max_def {
                buf.push(b'-');
                continue;
            }
            let at = c.next;
            c.next += 1;
            match (&c.values, info.kind) {
                (Values::Int32(_, v), Kind::Int32 { unsigned: false }) => {
                    buf.extend_from_slice(ints.format(v[at]).as_bytes())
                }
                (Values::Int32(_, v), Kind::Int32 { unsigned: true }) => {
                    buf.extend_from_slice(ints.format(v[at] as u32).as_bytes())
                }
                (Values::Int64(_, v), Kind::Int64 { unsigned: false }) => {
                    buf.extend_from_slice(ints.format(v[at]).as_bytes())
                }
                (Values::Int64(_, v), Kind::Int64 { unsigned: true }) => {
                    buf.extend_from_slice(ints.format(v[at] as u64).as_bytes())
                }
                (Values::Text(_, v), _) => {
                    let s = v[at].data();
                    // No early exit: the loop vectorises, and values are short.
                    let line_end = s
                        .iter()
                        .fold(false, |a, &b| a | (b == b'\n') | (b == b'\r'));
                    if s.is_empty() {
                        buf.push(b'-');
                    } else if line_end {
                        buf.extend(s.iter().map(|&b| match b {
                            b'\n' | b'\r' => b' ',
                            b => b,
                        }));
                    } else {
                        buf.extend_from_slice(s);
                    }
                }
                _ => unreachable!("a column's values are read as its kind"),
            }
        }
        buf.push(b'\n');
    }
}
