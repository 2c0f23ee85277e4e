//! CloudWatch Logs subscription events: `{"awslogs":{"data":"<base64 of gzip of JSON>"}}`.
//!
//! Decoding is split in two so the hot path stays borrowed: [`Decoder::decode`] writes the
//! inflated payload into a buffer that the caller keeps (and reuses across warm invocations), and
//! [`Payload::parse`] borrows every string from that buffer. `aws_lambda_events`' `LogsEvent`
//! would allocate a `String` per field and is 3–4x slower here.

use std::borrow::Cow;

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use serde::Deserialize;

use super::gzip::{gzip_error, gzip_header_len, inflate_members, Inflater};
pub use super::payload::{DecodeError, LogEvent, MessageType, Payload};

/// Largest decoded payload accepted. CloudWatch Logs batches are at most ~1 MB of log events
/// (PutLogEvents' limit) plus JSON framing, so 8 MiB refuses gzip bombs with room to spare.
pub const DEFAULT_MAX_DECODED_BYTES: usize = 8 << 20;

/// AWS pads its base64; some replay tools strip the padding. Accept both.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow)]
    awslogs: AwsLogs<'a>,
}

#[derive(Deserialize)]
struct AwsLogs<'a> {
    #[serde(borrow)]
    data: Cow<'a, str>,
}

/// Returns the base64 `awslogs.data` of a Lambda event, borrowed when it has no JSON escapes.
pub fn event_data(event: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    if let Some(data) = super::scan::envelope_data(event) {
        return Ok(Cow::Borrowed(data));
    }
    event_data_serde(event)
}

/// [`event_data`] with serde_json only: the general path, and part of the bench floor.
pub fn event_data_serde(event: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    let env: Envelope<'_> = serde_json::from_slice(event).map_err(DecodeError::Envelope)?;
    Ok(env.awslogs.data)
}

/// Decodes subscription data into a caller-owned buffer, refusing more than `max` bytes.
///
/// base64, then the gzip framing of [`super::gzip`] with one inflater kept for every batch.
pub struct Decoder {
    max: usize,
    compressed: Vec<u8>,
    inflate: Inflater,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(DEFAULT_MAX_DECODED_BYTES)
    }
}

impl Decoder {
    pub fn new(max_decoded_bytes: usize) -> Decoder {
        Decoder {
            max: max_decoded_bytes,
            compressed: Vec::new(),
            inflate: Inflater::default(),
        }
    }

    /// base64 → gzip → `out` (cleared first). `out` keeps its capacity for the next call.
    pub fn decode(&mut self, data: &str, out: &mut Vec<u8>) -> Result<(), DecodeError> {
        self.compressed.clear();
        BASE64
            .decode_vec(data.trim_ascii(), &mut self.compressed)
            .map_err(DecodeError::Base64)?;
        out.clear();
        let res = inflate_members(&mut self.inflate, &self.compressed, self.max, out, None);
        self.release(res.is_err(), out);
        res
    }

    /// [`Decoder::decode`] of a batch that `skip` may refuse by its log stream, deciding exactly
    /// as [`Decoder::log_stream`] then [`Decoder::decode`] would, in one pass: the head is
    /// inflated from the same base64 prefix as the peek and, when `skip` refuses its stream,
    /// nothing more is decoded; otherwise the rest is decoded and inflating goes on from the
    /// head. Peeking, then decoding from the start, inflated every kept batch's head twice: a
    /// fixed cost that was 5% of a corpus of 80 KB batches. Returns the stream when `skip`
    /// refused it.
    pub fn decode_or_skip(
        &mut self,
        data: &str,
        out: &mut Vec<u8>,
        skip: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Option<String>, DecodeError> {
        let trimmed = data.trim_ascii();
        // The peek's prefix: whole quads (no padding but at the very end); none when it would
        // take in trailing whitespace, which the peek's base64 refuses.
        let take = data.trim_ascii_start().len().min(PEEK_B64) / 4 * 4;
        let take = if take <= trimmed.len() { take } else { 0 };
        self.compressed.clear();
        out.clear();
        let head = if BASE64
            .decode_vec(&trimmed[..take], &mut self.compressed)
            .is_ok()
        {
            gzip_header_len(&self.compressed).ok().map(|header| {
                self.inflate.zlib.reset(false);
                let (stream, consumed, end) =
                    Self::head_of(&mut self.inflate.zlib, &self.compressed[header..], out);
                (stream, header + consumed, end)
            })
        } else {
            None
        };
        if let Some((Some(stream), ..)) = &head {
            if skip(stream) {
                return Ok(head.and_then(|h| h.0));
            }
        }
        let rest = BASE64.decode_vec(&trimmed[take..], &mut self.compressed);
        if rest.is_err() || head.is_none() && take > 0 {
            // Errors and offsets as one decode of the whole data reports them.
            self.compressed.clear();
            out.clear();
            if let Err(e) = BASE64.decode_vec(trimmed, &mut self.compressed) {
                return Err(DecodeError::Base64(e));
            }
        }
        let res = match head {
            Some((_, _, Err(e))) if rest.is_ok() => Err(e),
            // The head was the whole member: only its trailer (and any further member) is left.
            Some((_, consumed, Ok(true))) if rest.is_ok() => inflate_members(
                &mut self.inflate,
                &self.compressed,
                self.max,
                out,
                Some(consumed),
            ),
            // Otherwise libdeflate inflates the member from its start, which costs less than
            // streaming the rest of it through zlib-rs: the head's kilobyte goes.
            _ => {
                out.clear();
                inflate_members(&mut self.inflate, &self.compressed, self.max, out, None)
            }
        };
        self.release(res.is_err(), out);
        res.map(|()| None)
    }

    fn release(&mut self, failed: bool, out: &mut Vec<u8>) {
        if failed && out.capacity() > 4 << 20 {
            // Do not keep a bomb's worth of buffer in a warm container.
            *out = Vec::new();
        }
        if self.compressed.capacity() > 4 << 20 {
            self.compressed = Vec::new();
        }
    }

    /// The head of a gzip member, as [`Decoder::log_stream`] inflates it, appended to `out`:
    /// its log stream (if [`super::scan::log_stream`] is sure of it), the input consumed, and
    /// whether the member ended (or the error the inflater met, which decoding would meet too).
    fn head_of(
        inflate: &mut flate2::Decompress,
        mut input: &[u8],
        out: &mut Vec<u8>,
    ) -> (Option<String>, usize, Result<bool, DecodeError>) {
        let (start, len) = (out.len(), input.len());
        out.resize(start + PEEK_OUT, 0);
        let mut filled = 0;
        let mut end = Ok(false);
        while filled < PEEK_OUT {
            let (before_in, before_out) = (inflate.total_in(), inflate.total_out());
            let status = inflate.decompress(
                input,
                &mut out[start + filled..start + PEEK_OUT],
                flate2::FlushDecompress::None,
            );
            let consumed = (inflate.total_in() - before_in) as usize;
            let produced = (inflate.total_out() - before_out) as usize;
            input = &input[consumed..];
            filled += produced;
            match status {
                Ok(flate2::Status::Ok) if consumed + produced > 0 => {}
                Ok(flate2::Status::StreamEnd) => {
                    end = Ok(true);
                    break;
                }
                Ok(_) => break,
                Err(e) => {
                    end = Err(gzip_error(&format!("corrupt deflate stream: {e}")));
                    break;
                }
            }
        }
        out.truncate(start + filled);
        let stream = super::scan::log_stream(&out[start..]).map(str::to_owned);
        (stream, len - input.len(), end)
    }
}

/// The peek's prefix of the base64 data (→ 1,050 compressed bytes) and how much of the payload
/// it reads.
const PEEK_B64: usize = 1400;
const PEEK_OUT: usize = 1024;

impl Decoder {
    /// Reads `logStream` from the first kilobyte of the payload without decoding the rest, so that
    /// a batch of a non-NAT ENI can be skipped at almost no cost: CloudWatch Logs writes
    /// `messageType`, `owner`, `logGroup`, `logStream` and `subscriptionFilters` before
    /// `logEvents`. The same gzip framing and inflater as [`Decoder::decode`], into a stack
    /// buffer; the head is read by [`super::scan::log_stream`]. `None` whenever it cannot be
    /// sure (the caller then decodes fully), never a wrong name.
    pub fn log_stream(&mut self, data: &str) -> Option<String> {
        const B64_PREFIX: usize = PEEK_B64;
        const WANT: usize = PEEK_OUT;
        let data = data.trim_ascii_start();
        let take = data.len().min(B64_PREFIX) / 4 * 4;
        // Stack buffers: this runs for every batch, including the ones it lets us skip.
        let mut compressed = [0u8; B64_PREFIX / 4 * 3];
        let n = BASE64
            .decode_slice(&data.as_bytes()[..take], &mut compressed)
            .ok()?;
        let mut input = &compressed[..n];
        input = &input[gzip_header_len(input).ok()?..];
        let mut head = [0u8; WANT];
        let mut filled = 0;
        self.inflate.zlib.reset(false);
        while filled < WANT {
            let (before_in, before_out) =
                (self.inflate.zlib.total_in(), self.inflate.zlib.total_out());
            let status = self.inflate.zlib.decompress(
                input,
                &mut head[filled..],
                flate2::FlushDecompress::None,
            );
            let consumed = (self.inflate.zlib.total_in() - before_in) as usize;
            let produced = (self.inflate.zlib.total_out() - before_out) as usize;
            input = &input[consumed..];
            filled += produced;
            match status {
                Ok(flate2::Status::Ok) if consumed + produced > 0 => {}
                // The end of the prefix, of the stream, or corrupt data: read what we have.
                _ => break,
            }
        }
        super::scan::log_stream(&head[..filled]).map(str::to_owned)
    }
}

impl<'a> Payload<'a> {
    /// Parses the decoded JSON. Unknown keys are tolerated; `logEvents` must be present for a
    /// `DATA_MESSAGE`. The shape CloudWatch writes takes the specialised reader
    /// ([`super::scan::payload`]); anything else, serde_json.
    pub fn parse(json: &'a [u8]) -> Result<Payload<'a>, DecodeError> {
        match super::scan::payload(json) {
            Some(p) => Ok(p),
            None => Payload::parse_serde(json),
        }
    }
}

/// The ENI a flow-log stream belongs to: CloudWatch delivery names streams `eni-<id>-all`
/// (or `-accept`/`-reject` by traffic type). `None` for any other name.
pub fn stream_eni(log_stream: &str) -> Option<&str> {
    let eni = log_stream
        .strip_suffix("-all")
        .or_else(|| log_stream.strip_suffix("-accept"))
        .or_else(|| log_stream.strip_suffix("-reject"))?;
    let id = eni.strip_prefix("eni-")?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(eni)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    pub(crate) fn event_of(payload: &str) -> String {
        format!(
            r#"{{"awslogs":{{"data":"{}"}}}}"#,
            base64::engine::general_purpose::STANDARD.encode(gzip(payload.as_bytes()))
        )
    }

    fn decode(event: &str) -> Result<Vec<u8>, DecodeError> {
        let data = event_data(event.as_bytes())?;
        let mut out = Vec::new();
        Decoder::default().decode(&data, &mut out)?;
        Ok(out)
    }

    #[test]
    fn aws_lambda_events_fixture() {
        let event = include_str!("../../tests/data/cloudwatch-logs-event.json");
        let json = decode(event).unwrap();
        let p = Payload::parse(&json).unwrap();
        assert_eq!(p.message_type, MessageType::Data);
        assert_eq!(p.log_group, "testLogGroup");
        assert_eq!(p.log_stream, "testLogStream");
        assert_eq!(p.log_events.len(), 2);
        assert_eq!(p.log_events[0].message, "[ERROR] First test message");
        assert_eq!(
            Decoder::default()
                .log_stream(&event_data(event.as_bytes()).unwrap())
                .as_deref(),
            Some("testLogStream")
        );
    }

    #[test]
    fn padding_is_optional() {
        let payload = r#"{"messageType":"DATA_MESSAGE","logStream":"x","logEvents":[]}"#;
        let event = event_of(payload);
        let unpadded = event.replace('=', "");
        assert_eq!(decode(&unpadded).unwrap(), payload.as_bytes());
    }

    #[test]
    fn control_message_and_unknown_keys() {
        let payload = r#"{"messageType":"CONTROL_MESSAGE","owner":"CloudwatchLogs","logGroup":"","logStream":"","subscriptionFilters":[],"logEvents":[{"id":"","timestamp":1432826855000,"message":"CWL CONTROL MESSAGE: Checking health of destination"}],"policyLevel":"x"}"#;
        let json = decode(&event_of(payload)).unwrap();
        assert_eq!(
            Payload::parse(&json).unwrap().message_type,
            MessageType::Control
        );
    }

    #[test]
    fn bad_events_say_what_is_wrong() {
        let e = decode("not json").unwrap_err().to_string();
        assert!(
            e.starts_with("event is not a CloudWatch Logs subscription event"),
            "{e}"
        );
        let e = decode(r#"{"awslogs":{"data":"!!!!"}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("awslogs.data is not valid base64"), "{e}");
        let e = decode(r#"{"awslogs":{"data":"aGVsbG8="}}"#)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("awslogs.data is not valid gzip"), "{e}");
        let good = event_of(r#"{"messageType":"DATA_MESSAGE","logEvents":[]}"#);
        let data = event_data(good.as_bytes()).unwrap();
        let raw = base64::engine::general_purpose::STANDARD
            .decode(data.as_bytes())
            .unwrap();
        let truncated = base64::engine::general_purpose::STANDARD.encode(&raw[..raw.len() - 10]);
        let e = decode(&format!(r#"{{"awslogs":{{"data":"{truncated}"}}}}"#))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("awslogs.data is not valid gzip"), "{e}");
        let json = decode(&event_of(
            r#"{"messageType":"DATA_MESSAGE","logStream":"s"}"#,
        ))
        .unwrap();
        assert_eq!(
            Payload::parse(&json).unwrap_err().to_string(),
            "decoded payload is a DATA_MESSAGE without logEvents"
        );
        let json = decode(&event_of(
            r#"{"messageType":"DATA_MESSAGE","logEvents":null}"#,
        ))
        .unwrap();
        assert!(matches!(
            Payload::parse(&json),
            Err(DecodeError::NoLogEvents)
        ));
        let json = decode(&event_of(
            r#"{"messageType":"DATA_MESSAGE","logEvents":[{"id":"1","timestamp":1,"message":5}]}"#,
        ))
        .unwrap();
        assert!(matches!(
            Payload::parse(&json),
            Err(DecodeError::Payload(_))
        ));
    }

    #[test]
    fn gzip_bomb_is_refused_without_allocating_it() {
        let zeros = vec![0u8; 64 << 20];
        let event = format!(
            r#"{{"awslogs":{{"data":"{}"}}}}"#,
            base64::engine::general_purpose::STANDARD.encode(gzip(&zeros))
        );
        let data = event_data(event.as_bytes()).unwrap();
        let mut out = Vec::new();
        let e = Decoder::new(1 << 20).decode(&data, &mut out).unwrap_err();
        assert_eq!(e.to_string(), "awslogs.data inflates to more than 1048576 bytes; refused (a gzip bomb, or not a CloudWatch Logs batch)");
        assert!(out.capacity() <= 4 << 20);
    }

    #[test]
    fn stream_names() {
        assert_eq!(
            stream_eni("eni-0352f8c82da6aa229-all"),
            Some("eni-0352f8c82da6aa229")
        );
        assert_eq!(
            stream_eni("eni-1235b8ca123456789-reject"),
            Some("eni-1235b8ca123456789")
        );
        assert_eq!(stream_eni("eni-zz-all"), None);
        assert_eq!(stream_eni("testLogStream"), None);
        assert_eq!(stream_eni(""), None);
    }

    #[test]
    fn peek_finds_the_stream_or_says_nothing() {
        let p = r#"{"messageType":"DATA_MESSAGE","owner":"1","logGroup":"g","logStream":"eni-0abc-all","logEvents":[]}"#;
        let ev = event_of(p);
        assert_eq!(
            Decoder::default()
                .log_stream(&event_data(ev.as_bytes()).unwrap())
                .as_deref(),
            Some("eni-0abc-all")
        );
        // A nested "logStream" is inside a skipped value: the top-level one is serde's answer.
        let nested =
            r#"{"x":{"logStream":"eni-0aaa-all"},"logStream":"eni-0bbb-all","logEvents":[]}"#;
        let ev = event_of(nested);
        assert_eq!(
            Decoder::default()
                .log_stream(&event_data(ev.as_bytes()).unwrap())
                .as_deref(),
            Some("eni-0bbb-all")
        );
        for tricky in [
            r#"{"a\"logStream":"eni-0aaa-all","logStream":"eni-0bbb-all","logEvents":[]}"#,
            r#"{"logStream":"eni-0aaa-all","logStream":"eni-0bbb-all","logEvents":[]}"#,
            r#"{"logEvents":[],"logStream":"eni-0aaa-all"}"#,
            r#"{"logStream":"eni-0aaa-all"}"#,
        ] {
            let ev = event_of(tricky);
            assert_eq!(
                Decoder::default().log_stream(&event_data(ev.as_bytes()).unwrap()),
                None,
                "{tricky}"
            );
        }
        let p = r#"{"messageType":"DATA_MESSAGE","logStream":"we\"ird","logEvents":[]}"#;
        let ev = event_of(p);
        assert_eq!(
            Decoder::default().log_stream(&event_data(ev.as_bytes()).unwrap()),
            None
        );
        assert_eq!(Decoder::default().log_stream("%%%"), None);
    }
}
