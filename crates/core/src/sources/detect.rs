//! What a file or an S3 object holds, decided by its content: gzip (by its magic), a byte order
//! mark, JSON (one Lambda event or CloudWatch Logs payload, an array of them, or JSON lines) or
//! flow-log text (with the header line S3 delivery writes, or without). Pure functions over
//! bytes, so that the CLI's files and the function's S3 objects are told apart the same way;
//! reading, streaming and threads are the caller's.

use std::ops::Range;

use flowlog::bytes::{find_newline, space_class};
use flowlog::Format;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::scan::envelope_data;

/// Which JSON document an object is.
#[derive(Deserialize)]
struct Probe<'a> {
    #[serde(borrow, default)]
    awslogs: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "messageType")]
    message_type: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "logEvents")]
    log_events: Option<&'a RawValue>,
}

pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One JSON document of a file: its span, and the span of `awslogs.data` when the document is
/// a Lambda event exactly as CloudWatch Logs writes it (then read without serde_json).
#[derive(Debug, Clone)]
pub struct Doc {
    pub span: Range<usize>,
    pub data: Option<Range<usize>>,
}

/// An S3-delivered file starts with a header line naming the fields.
pub fn split_header(body: &[u8]) -> (Option<Result<Format, String>>, &[u8], u64) {
    let end = body.iter().position(|&b| b == b'\n').unwrap_or(body.len());
    let first = std::str::from_utf8(&body[..end]).unwrap_or("");
    if Format::looks_like_header(first) {
        let rest = body.get(end + 1..).unwrap_or(&[]);
        (
            Some(Format::from_header(first).map_err(|e| e.to_string())),
            rest,
            2,
        )
    } else {
        (None, body, 1)
    }
}

/// How many lines end in `b`: 16 bytes at a time by their control bytes (in flow-log text,
/// only line ends), a serial pass before a text file's pieces can start, so it must be cheap.
pub fn count_newlines(b: &[u8]) -> u64 {
    let mut n = 0u64;
    let mut chunks = b.chunks_exact(16);
    for chunk in &mut chunks {
        let Ok(chunk) = <&[u8; 16]>::try_from(chunk) else {
            break;
        };
        let (_, mut controls) = space_class(chunk);
        while controls != 0 {
            n += u64::from(chunk[controls.trailing_zeros() as usize] == b'\n');
            controls &= controls - 1;
        }
    }
    n + chunks.remainder().iter().filter(|&&c| c == b'\n').count() as u64
}

/// The documents of a JSON file (`body` starts at `offset` of the file), and the error that
/// ended the list, exactly as serde_json reading the whole body would give them: one document,
/// an array of documents, or a stream of them (JSON lines).
///
/// JSON lines of Lambda events as CloudWatch Logs writes them are the common big input: a line
/// that is exactly `{"awslogs":{"data":"…"}}` is taken by the strict envelope reader, which
/// accepts only what serde_json reads the same way, and its data span is kept so that the
/// document is not parsed again. Anything else goes through serde_json one document at a time
/// (a stream restarted at a document boundary reads the same documents as one stream).
pub fn split_json(body: &[u8], offset: usize) -> (Vec<Doc>, Option<String>) {
    if body.first() == Some(&b'[') {
        return match serde_json::from_slice::<Vec<&RawValue>>(body) {
            Ok(v) => (
                v.into_iter().map(|v| raw_doc(body, offset, v)).collect(),
                None,
            ),
            Err(e) => (Vec::new(), Some(format!("not valid JSON: {e}"))),
        };
    }
    let mut docs = Vec::new();
    let error = split_stream(body, offset, |d| docs.push(d));
    (docs, error)
}

/// A document serde_json found in `body`, as a span of the file.
fn raw_doc(body: &[u8], offset: usize, v: &RawValue) -> Doc {
    let start = v.get().as_ptr() as usize - body.as_ptr() as usize + offset;
    Doc {
        span: start..start + v.get().len(),
        data: None,
    }
}

/// [`split_json`] of a body that is not an array (a stream of documents: JSON lines), handing
/// each document to `each` as soon as it is found, so that a big file's first documents can be
/// processed while the rest is still being split. Returns the error that ended the stream.
pub fn split_stream(body: &[u8], offset: usize, mut each: impl FnMut(Doc)) -> Option<String> {
    let mut p = 0;
    loop {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = body.get(p) {
            p += 1;
        }
        if p == body.len() {
            return None;
        }
        let line_end = find_newline(&body[p..]).map_or(body.len(), |n| p + n);
        if let Some(data) = envelope_data(&body[p..line_end]) {
            let d = data.as_ptr() as usize - body.as_ptr() as usize;
            each(Doc {
                span: p + offset..line_end + offset,
                data: Some(d + offset..d + data.len() + offset),
            });
            p = line_end;
            continue;
        }
        let mut stream = serde_json::Deserializer::from_slice(&body[p..]).into_iter::<&RawValue>();
        match stream.next() {
            Some(Ok(v)) => {
                each(raw_doc(body, offset, v));
                p += stream.byte_offset();
            }
            Some(Err(_)) => return Some(stream_error(body)),
            None => return None,
        }
    }
}

/// The error of a stream of documents, with serde_json's own position in the whole body (a
/// stream restarted mid-file would count lines from the restart). Only on the error path.
fn stream_error(body: &[u8]) -> String {
    for (i, v) in serde_json::Deserializer::from_slice(body)
        .into_iter::<&RawValue>()
        .enumerate()
    {
        if let Err(e) = v {
            return format!("not valid JSON (document {}): {e}", i + 1);
        }
    }
    "not valid JSON".into()
}

/// Where the content of `bytes` starts: after leading whitespace and a UTF-8 byte order mark
/// (with whitespace on either side of it), none of which decides the kind.
pub fn body_start(bytes: &[u8]) -> usize {
    let mut start = bytes.len() - bytes.trim_ascii_start().len();
    if bytes[start..].starts_with(b"\xef\xbb\xbf") {
        start += 3;
        start += bytes[start..].len() - bytes[start..].trim_ascii_start().len();
    }
    start
}

/// A name (a path or an S3 key) that promises JSON: `.json` or `.jsonl`, any case. Such a file
/// that does not start like JSON is a broken export, not flow-log text.
pub fn json_name(name: &str) -> bool {
    std::path::Path::new(name)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json") || e.eq_ignore_ascii_case("jsonl"))
}

/// What the content at [`body_start`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Nothing but whitespace.
    Empty,
    /// Starts with `{` or `[`.
    Json,
    /// Named as JSON, but does not start like it.
    BrokenJson,
    /// Flow-log text (a header line may come first: [`split_header`]).
    Text,
}

pub fn shape(body: &[u8], name: &str) -> Shape {
    match body.first() {
        _ if body.trim_ascii().is_empty() => Shape::Empty,
        Some(b'{' | b'[') => Shape::Json,
        _ if json_name(name) => Shape::BrokenJson,
        _ => Shape::Text,
    }
}

/// What one JSON document is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// A Lambda event, `{"awslogs":{"data":…}}`.
    Event,
    /// A decoded CloudWatch Logs payload, `{"messageType":…,"logEvents":[…]}`.
    Payload,
}

/// Which document `doc` is, by its top-level keys; the error says what was expected.
pub fn doc_kind(doc: &str) -> Result<DocKind, String> {
    let probe: Probe<'_> =
        serde_json::from_str(doc).map_err(|e| format!("not a JSON object: {e}"))?;
    if probe.awslogs.is_some() {
        Ok(DocKind::Event)
    } else if probe.message_type.is_some() || probe.log_events.is_some() {
        Ok(DocKind::Payload)
    } else {
        Err("JSON object is neither a Lambda event {\"awslogs\":{\"data\":...}} nor a CloudWatch Logs payload {\"messageType\":...,\"logEvents\":[...]}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newline_count() {
        assert_eq!(count_newlines(b""), 0);
        assert_eq!(count_newlines(b"a\nb\r\n\n"), 3);
        assert_eq!(count_newlines(&b"0123456789abcdefghij\n".repeat(50)), 50);
        let mixed = b"a\tb\r\n\x01\n".repeat(37);
        for len in 0..mixed.len() {
            let want = mixed[..len].iter().filter(|&&c| c == b'\n').count() as u64;
            assert_eq!(count_newlines(&mixed[..len]), want, "{len}");
        }
    }

    #[test]
    fn shapes_and_starts() {
        assert_eq!(body_start(b"  \xef\xbb\xbf\n{"), 6);
        assert_eq!(shape(b"", "x.log"), Shape::Empty);
        assert_eq!(shape(b"[1]", "x.log"), Shape::Json);
        assert_eq!(shape(b"2 123", "x.JSONL"), Shape::BrokenJson);
        assert_eq!(shape(b"2 123", "x.log"), Shape::Text);
        assert_eq!(doc_kind(r#"{"awslogs":{"data":""}}"#), Ok(DocKind::Event));
        assert_eq!(doc_kind(r#"{"logEvents":[]}"#), Ok(DocKind::Payload));
        assert!(doc_kind(r#"{"hello":1}"#)
            .unwrap_err()
            .contains("neither a Lambda event"));
        assert!(doc_kind("5").unwrap_err().starts_with("not a JSON object"));
    }
}
