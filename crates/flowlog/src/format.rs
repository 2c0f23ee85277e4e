//! A flow log's format: the ordered list of its fields.
//!
//! CloudWatch Logs delivery carries no header, so the format comes from configuration in AWS
//! syntax (`${version} ${srcaddr} ...`); S3 delivery starts each file with a header line of bare
//! names (`version srcaddr ...`). Both build the same [`Format`].

use crate::bytes::space_class;
use crate::field::Field;
use crate::record::{Record, RecordError, Span};

/// Most columns a format may have. AWS offers under 50 fields; the cap only stops a hostile
/// format string from making every record parse allocate or loop without bound.
pub const MAX_COLUMNS: usize = 256;

/// The slot of a column that holds no known field.
const NO_FIELD: u8 = u8::MAX;

/// One position of a format: a field this build knows, or a name it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Column {
    Known(Field),
    /// A field name this build does not know: its position is kept and its value ignored.
    Unknown(String),
}

/// Why a format string could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("the flow-log format is empty; expected fields like `${{version}} ${{srcaddr}} ...`")]
    Empty,
    #[error("flow-log format token {position} `{token}` is not of the form `${{field-name}}`")]
    Malformed { position: usize, token: String },
    #[error("flow-log format names field `{name}` twice (positions {first} and {second}); a record would be ambiguous")]
    Duplicate {
        name: String,
        first: usize,
        second: usize,
    },
    #[error("flow-log format has {0} fields; at most {MAX_COLUMNS} are supported")]
    TooManyColumns(usize),
}

/// The ordered fields of a flow log, with each known field's position precomputed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    columns: Vec<Column>,
    /// For each known field (indexed by `Field as usize`), its column, if present.
    position: [Option<u16>; Field::COUNT],
    /// For each column, the index of the known field stored there ([`NO_FIELD`] for unknown
    /// names and past the last column): a fixed table, so the tokenizer looks up without a
    /// bounds check or a branch on the shape of an `Option`.
    slots: Box<[u8; MAX_COLUMNS]>,
}

/// The AWS default format: the 14 version-2 fields.
pub const DEFAULT_FORMAT: &str = "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol} ${packets} ${bytes} ${start} ${end} ${action} ${log-status}";

impl Default for Format {
    fn default() -> Self {
        Format::from_aws_syntax(DEFAULT_FORMAT).expect("the default format is valid")
    }
}

impl Format {
    /// Parses AWS syntax: `${field} ${field} ...`, separated by whitespace.
    pub fn from_aws_syntax(s: &str) -> Result<Format, FormatError> {
        let mut names = Vec::new();
        for (i, token) in s.split_ascii_whitespace().enumerate() {
            let name = token
                .strip_prefix("${")
                .and_then(|t| t.strip_suffix('}'))
                .filter(|n| !n.is_empty() && !n.contains(['$', '{', '}']))
                .ok_or_else(|| FormatError::Malformed {
                    position: i + 1,
                    token: truncate(token),
                })?;
            names.push(name);
        }
        Format::from_names(&names)
    }

    /// Parses the header line of an S3-delivered flow-log file: bare names.
    pub fn from_header(line: &str) -> Result<Format, FormatError> {
        let names: Vec<&str> = line.split_ascii_whitespace().collect();
        for (i, n) in names.iter().enumerate() {
            if n.contains(['$', '{', '}']) {
                return Err(FormatError::Malformed {
                    position: i + 1,
                    token: truncate(n),
                });
            }
        }
        Format::from_names(&names)
    }

    /// Parses either syntax: AWS syntax when the string contains `${`, else a header line.
    pub fn parse(s: &str) -> Result<Format, FormatError> {
        if s.contains("${") {
            Format::from_aws_syntax(s)
        } else {
            Format::from_header(s)
        }
    }

    /// True when `line` looks like an S3 header line: every token a field name we know or a
    /// plausible lowercase name, and the first one a known field. Used to detect input kind.
    pub fn looks_like_header(line: &str) -> bool {
        let mut tokens = line.split_ascii_whitespace();
        let Some(first) = tokens.next() else {
            return false;
        };
        Field::from_name(first).is_some()
            && tokens.all(|t| {
                !t.is_empty()
                    && t.bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'-' || b.is_ascii_digit())
            })
    }

    fn from_names(names: &[&str]) -> Result<Format, FormatError> {
        if names.is_empty() {
            return Err(FormatError::Empty);
        }
        if names.len() > MAX_COLUMNS {
            return Err(FormatError::TooManyColumns(names.len()));
        }
        let mut columns = Vec::with_capacity(names.len());
        let mut position = [None; Field::COUNT];
        let mut slots = Box::new([NO_FIELD; MAX_COLUMNS]);
        for (i, name) in names.iter().enumerate() {
            if let Some(first) = names[..i].iter().position(|n| n == name) {
                return Err(FormatError::Duplicate {
                    name: truncate(name),
                    first: first + 1,
                    second: i + 1,
                });
            }
            match Field::from_name(name) {
                Some(f) => {
                    position[f as usize] = Some(i as u16);
                    columns.push(Column::Known(f));
                    slots[i] = f as u8;
                }
                None => {
                    // Kept whole (not truncated) so that distinct names stay distinct and the
                    // format round-trips; only messages truncate. Found by the format fuzzer.
                    columns.push(Column::Unknown(name.to_string()));
                }
            }
        }
        Ok(Format {
            columns,
            position,
            slots,
        })
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Number of columns (fields per record).
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Always false: an empty format cannot be built.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// True when the format has `field`.
    pub fn has(&self, field: Field) -> bool {
        self.position[field as usize].is_some()
    }

    /// The column of `field`, if the format has it.
    pub fn position(&self, field: Field) -> Option<usize> {
        self.position[field as usize].map(usize::from)
    }

    /// Names this build does not know, in order of appearance (ignored when parsing).
    pub fn unknown_fields(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().filter_map(|c| match c {
            Column::Unknown(n) => Some(n.as_str()),
            Column::Known(_) => None,
        })
    }

    /// The format in AWS syntax.
    pub fn to_aws_syntax(&self) -> String {
        let mut s = String::new();
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                s.push(' ');
            }
            s.push_str("${");
            s.push_str(match c {
                Column::Known(f) => f.name(),
                Column::Unknown(n) => n,
            });
            s.push('}');
        }
        s
    }

    /// Stores token `n` (bytes `start..end` of the line) if its column is a known field.
    #[inline(always)]
    fn store(&self, spans: &mut [Span; Field::COUNT], n: usize, start: usize, end: usize) {
        // Tokens past the table only happen in lines with too many fields, which are refused.
        let slot = usize::from(self.slots[n.min(MAX_COLUMNS - 1)]);
        if let Some(s) = spans.get_mut(slot) {
            *s = Span::new(start, end);
        }
    }

    /// Tokenizes 16 bytes at a time ([`crate::bytes::space_class`]: SSE2, or SWAR on arm64).
    /// Records are single-space separated; a line with any other control or whitespace byte
    /// returns `None` and takes the scalar path. Returns the number of tokens.
    #[inline]
    fn split_fast(&self, line: &str, spans: &mut [Span; Field::COUNT]) -> Option<usize> {
        let b = line.as_bytes();
        let (mut n, mut tok) = (0usize, 0usize);
        for (k, chunk) in b.chunks(16).enumerate() {
            // The last chunk is padded with a byte that is neither a space nor a control byte.
            let mut padded = [b'x'; 16];
            let chunk: &[u8; 16] = match chunk.try_into() {
                Ok(full) => full,
                Err(_) => {
                    padded[..chunk.len()].copy_from_slice(chunk);
                    &padded
                }
            };
            let (spaces, controls) = space_class(chunk);
            if controls != 0 {
                return None;
            }
            let mut m = spaces;
            while m != 0 {
                let p = k * 16 + m.trailing_zeros() as usize;
                if p > tok {
                    self.store(spans, n, tok, p);
                    n += 1;
                }
                tok = p + 1;
                m &= m - 1;
            }
        }
        if b.len() > tok {
            self.store(spans, n, tok, b.len());
            n += 1;
        }
        Some(n)
    }

    /// The general path: runs of any ASCII whitespace, as `str::split_ascii_whitespace`.
    fn split_scalar(&self, line: &str, spans: &mut [Span; Field::COUNT]) -> usize {
        *spans = [Span::default(); Field::COUNT];
        let mut n = 0;
        for token in line.split_ascii_whitespace() {
            let start = token.as_ptr() as usize - line.as_ptr() as usize;
            self.store(spans, n, start, start + token.len());
            n += 1;
        }
        n
    }

    /// Splits `line` on runs of whitespace and maps its values to fields. Allocates nothing
    /// unless the line is malformed.
    #[inline]
    pub fn parse_line<'a>(&self, line: &'a str) -> Result<Record<'a>, RecordError> {
        let mut rec = Record::blank("");
        self.parse_into(line, &mut rec)?;
        Ok(rec)
    }

    /// [`Format::parse_line`] into a record the caller owns, so that it is built in place rather
    /// than moved out of the call (profiling showed two copies of it per line otherwise).
    #[inline]
    pub fn parse_into<'a>(&self, line: &'a str, rec: &mut Record<'a>) -> Result<(), RecordError> {
        *rec = Record::blank(line);
        self.fill(line, rec)
    }

    /// `line`'s values into `rec`, whose spans other than this format's fields are blank: the
    /// tokenizers write only those fields' spans, and all of them when the line parses.
    #[inline]
    fn fill<'a>(&self, line: &'a str, rec: &mut Record<'a>) -> Result<(), RecordError> {
        if line.len() > Span::MAX_LINE {
            return Err(RecordError::too_long(line.len()));
        }
        rec.set_line(line);
        let n = match self.split_fast(line, rec.spans_mut()) {
            Some(n) => n,
            None => self.split_scalar(line, rec.spans_mut()),
        };
        if n != self.columns.len() {
            return Err(RecordError::field_count(self.columns.len(), n));
        }
        Ok(())
    }
}

/// Parses line after line with one format into one record ([`Format::parser`]). The record is
/// blanked once, not once per line: a record is 40 spans (320 bytes), and zeroing it for every
/// line was 7% of a whole `natmeter report` run. Sound because the tokenizers write only the
/// spans of the format's own fields (the others stay blank from the start), and a line that
/// parses writes every one of them; the record of a line that did not parse is never handed out.
#[derive(Debug)]
pub struct Parser<'f, 'a> {
    format: &'f Format,
    rec: Record<'a>,
}

impl Format {
    /// A [`Parser`] for many lines of this format.
    pub fn parser<'a>(&self) -> Parser<'_, 'a> {
        Parser {
            format: self,
            rec: Record::blank(""),
        }
    }
}

impl<'a> Parser<'_, 'a> {
    /// [`Format::parse_line`], into the parser's record.
    #[inline]
    pub fn parse(&mut self, line: &'a str) -> Result<&Record<'a>, RecordError> {
        self.format.fill(line, &mut self.rec)?;
        Ok(&self.rec)
    }
}

fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_string();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

pub(crate) fn truncate_value(s: &str) -> String {
    truncate(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aws_syntax_and_header_give_the_same_format() {
        let a = Format::from_aws_syntax("${version} ${srcaddr}  ${bytes}").unwrap();
        let b = Format::from_header("version srcaddr bytes").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.position(Field::Bytes), Some(2));
        assert_eq!(a.to_aws_syntax(), "${version} ${srcaddr} ${bytes}");
    }

    #[test]
    fn default_format_has_the_14_v2_fields() {
        let f = Format::default();
        assert_eq!(f.len(), 14);
        assert!(f
            .columns()
            .iter()
            .all(|c| matches!(c, Column::Known(f) if f.version() == 2)));
    }

    #[test]
    fn unknown_field_keeps_its_position() {
        let f = Format::parse("${version} ${future-field} ${bytes}").unwrap();
        assert_eq!(f.unknown_fields().collect::<Vec<_>>(), ["future-field"]);
        let r = f.parse_line("2 whatever 42").unwrap();
        assert_eq!(r.u64(Field::Bytes).unwrap(), Some(42));
    }

    #[test]
    fn bad_formats_are_errors() {
        assert_eq!(Format::parse(""), Err(FormatError::Empty));
        assert_eq!(Format::parse("   "), Err(FormatError::Empty));
        assert!(matches!(
            Format::parse("${version} ${bytes"),
            Err(FormatError::Malformed { position: 2, .. })
        ));
        assert!(matches!(
            Format::parse("${version} bytes"),
            Err(FormatError::Malformed { position: 2, .. })
        ));
        let e = Format::parse("${bytes} ${srcaddr} ${bytes}").unwrap_err();
        assert_eq!(e.to_string(), "flow-log format names field `bytes` twice (positions 1 and 3); a record would be ambiguous");
        let huge = "${x} ".repeat(100_000);
        assert_eq!(
            Format::parse(&huge),
            Err(FormatError::TooManyColumns(100_000))
        );
        let many: String = (0..=MAX_COLUMNS).map(|i| format!("${{f{i}}} ")).collect();
        assert_eq!(
            Format::parse(&many),
            Err(FormatError::TooManyColumns(MAX_COLUMNS + 1))
        );
    }

    #[test]
    fn fast_and_general_splitting_agree() {
        let f = Format::parse("${version} ${srcaddr} ${dstaddr} ${bytes} ${x-unknown} ${action}")
            .unwrap();
        let lines = [
            "2 10.0.0.1 10.0.0.2 100 u ACCEPT",
            "  2  10.0.0.1 10.0.0.2   100 u ACCEPT  ",
            "2\t10.0.0.1 10.0.0.2 100 u\rACCEPT",
            "2 10.0.0.1 10.0.0.2 100 u",
            "2 10.0.0.1 10.0.0.2 100 u ACCEPT extra",
            "2 10.0.0.1 10.0.0.2 100 ü ACCEPT",
            "",
            " ",
            "a b c d e f",
            "2 10.0.0.1 10.0.0.2 100 \u{1} ACCEPT",
        ];
        for l in lines {
            let mut v1 = [Span::default(); Field::COUNT];
            let mut v2 = [Span::default(); Field::COUNT];
            let fast = f.split_fast(l, &mut v1);
            let slow = f.split_scalar(l, &mut v2);
            if let Some(n) = fast {
                assert_eq!(n, slow, "{l:?}");
                assert_eq!(v1, v2, "{l:?}");
            }
            assert_eq!(slow, l.split_ascii_whitespace().count(), "{l:?}");
        }
    }

    #[test]
    fn long_unknown_names_stay_distinct_and_round_trip() {
        let a = format!("{}a", "x".repeat(80));
        let b = format!("{}b", "x".repeat(80));
        let f = Format::parse(&format!("${{{a}}} ${{{b}}}")).unwrap();
        assert_eq!(Format::from_aws_syntax(&f.to_aws_syntax()).unwrap(), f);
    }

    #[test]
    fn header_detection() {
        assert!(Format::looks_like_header(
            "version account-id interface-id srcaddr"
        ));
        assert!(!Format::looks_like_header(
            "2 123456789010 eni-1235b8ca123456789 172.31.16.139"
        ));
        assert!(!Format::looks_like_header(""));
    }

    /// One parser over many lines reads each as `parse_line` does, whatever came before: a
    /// line that failed (too few fields, too many, a tab), a longer line, a scalar-path line.
    #[test]
    fn a_parser_reads_each_line_as_parse_line_does() {
        let f = Format::parse("${version} ${srcaddr} ${future} ${bytes} ${log-status}").unwrap();
        let lines = [
            "2 10.0.0.1 x 1234 OK",
            "2 10.0.0.2 x",
            "2 10.0.0.3 x 99 OK extra",
            "2\t10.0.0.4 y 7 NODATA",
            "2 2001:db8::1234:5678:9abc x 123456789 SKIPDATA",
            "3 10.0.0.5 - - OK",
            "",
            "2 10.0.0.6 z 5 OK",
        ];
        let mut p = f.parser();
        for line in lines {
            let want = f.parse_line(line);
            let got = p.parse(line);
            match (&want, &got) {
                (Ok(w), Ok(g)) => {
                    for field in Field::ALL {
                        assert_eq!(w.get(*field), g.get(*field), "{line:?}: {field:?}");
                    }
                }
                (Err(w), Err(g)) => assert_eq!(w.to_string(), g.to_string(), "{line:?}"),
                _ => panic!("{line:?}: parse_line {want:?}, parser {got:?}"),
            }
        }
    }
}
