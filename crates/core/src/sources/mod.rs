//! Where records come from: every input natmeter reads becomes flow-log records with their
//! context here, and nowhere else.
//!
//! An [`Input`] is a subscription batch (a Lambda event, its `awslogs.data`, or the decoded
//! payload) or flow-log text (a local file, an S3 object's body). [`Reader::read`] decodes it
//! into a [`Read`]: a batch of [`Records`] with its context (format, log stream and its ENI,
//! account, event times, and where each record is for error messages), a control message, or a
//! non-NAT ENI's batch (recognised from its first kilobyte and never inflated when the peek is
//! sure of its stream, else from the decoded payload: the one place that test is applied). What
//! a file or an S3 object holds is decided by its content, in [`detect`], for the CLI and the
//! function alike.
//!
//! The modules depend one way: [`payload`] (types) ← [`scan`] (the fast payload reader) ←
//! [`subscription`] (events, base64, the peek) ← this module; [`gzip`] is the one inflater.
//! Nothing here knows about NAT gateways except through the caller's `foreign` test.

pub mod detect;
pub mod gzip;
pub mod object;
pub mod payload;
pub mod scan;
pub mod subscription;

use std::borrow::Cow;
use std::fmt;

use flowlog::{Format, RecordError};

pub use payload::{DecodeError, LogEvent, MessageType, Payload};
pub use subscription::Decoder;

/// One input, as it arrived.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A Lambda event's bytes: `{"awslogs":{"data":"…"}}`.
    Event { bytes: &'a [u8], origin: &'a str },
    /// The `awslogs.data` of an event whose envelope the caller already read (the Lambda reads
    /// it once for its duplicate check too).
    Data { data: &'a str, origin: &'a str },
    /// A decoded CloudWatch Logs payload document: `{"messageType":…,"logEvents":[…]}`.
    Payload { json: &'a [u8], origin: &'a str },
    /// Flow-log text, one record per line.
    Text(Text<'a>),
}

/// Flow-log text: a file, a piece of one, or an S3 object's body.
#[derive(Debug, Clone, Copy)]
pub struct Text<'a> {
    pub bytes: &'a [u8],
    /// The text's own format (an S3 header line's); `None` for the caller's default.
    pub format: Option<&'a Format>,
    /// Errors read `origin:line`, counting from `first_line`.
    pub origin: &'a str,
    pub first_line: u64,
    /// What a record is bucketed by when its format has no `start` (Unix seconds).
    pub fallback_time: i64,
}

/// What an input turned out to be.
#[derive(Debug)]
pub enum Read<'a> {
    /// Records to attribute.
    Records(Batch<'a>),
    /// A CONTROL_MESSAGE: CloudWatch Logs checking that the destination is reachable.
    Control { log_stream: Cow<'a, str> },
    /// A batch whose log stream the caller's `foreign` test refused.
    Foreign { log_stream: String },
}

/// Records with their context.
#[derive(Debug)]
pub struct Batch<'a> {
    /// `None`: the caller's default format.
    pub format: Option<&'a Format>,
    /// The subscription batch's log stream (`eni-…-all`); `None` for text.
    pub log_stream: Option<Cow<'a, str>>,
    /// The subscription batch's `owner`, the account that wrote the flow log.
    pub owner: Option<Cow<'a, str>>,
    pub origin: &'a str,
    pub records: Records<'a>,
}

/// The records of a [`Batch`].
#[derive(Debug)]
pub enum Records<'a> {
    /// Log events: each `message` a record, each `timestamp` (ms) its event time.
    Events(Vec<LogEvent<'a>>),
    /// Lines of text, numbered from `first_line`.
    Lines {
        text: &'a [u8],
        first_line: u64,
        fallback_time: i64,
    },
}

/// Where a record is, for error messages: built only when one is needed.
#[derive(Debug, Clone, Copy)]
pub enum Location<'a> {
    /// `origin logEvents[i]`
    Event { origin: &'a str, index: usize },
    /// `origin:line`
    Line { origin: &'a str, line: u64 },
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Event { origin, index } => write!(f, "{origin} logEvents[{index}]"),
            Location::Line { origin, line } => write!(f, "{origin}:{line}"),
        }
    }
}

/// Batches kept in a row after which [`Reader::read`] stops peeking at a batch's head: the
/// stream's recent batches were all flow records to read, so the next one most likely is too.
/// A kept batch's peek (zlib-rs building its tables for the first kilobyte) was 6.4% of the
/// instructions of a corpus of 85 KB NAT batches; a foreign batch decoded whole by mistake costs
/// about six peeks, and ends the run. Past the whole-VPC corpus's mix (63% of bytes kept), 16
/// kept in a row is rare enough to cost nothing there.
const KEPT_BEFORE_DIRECT: u32 = 16;

/// Turns inputs into records. Keeps its decoder and buffer from input to input: a warm Lambda
/// container or a CLI worker thread allocates them once.
#[derive(Debug)]
pub struct Reader {
    decoder: Decoder,
    buf: Vec<u8>,
    /// Subscription batches kept in a row (neither foreign nor failed).
    kept: u32,
    /// After how many kept batches in a row the peek is left out; `u32::MAX`: never.
    direct_after: u32,
}

impl Default for Reader {
    fn default() -> Self {
        Reader::new(Decoder::default())
    }
}

impl Reader {
    pub fn new(decoder: Decoder) -> Reader {
        Reader {
            decoder,
            buf: Vec::new(),
            kept: 0,
            direct_after: KEPT_BEFORE_DIRECT,
        }
    }

    /// A reader that peeks at every batch's head, never decoding one whole first: what
    /// [`Reader::read`] returns is the same either way (the reference its tests compare with).
    pub fn always_peeking(mut self) -> Reader {
        self.direct_after = u32::MAX;
        self
    }

    /// Reads one input. `foreign` is asked about a subscription batch's log stream, and a batch
    /// it refuses is [`Read::Foreign`]: recognised from the payload's first kilobyte when the
    /// peek is sure of the stream (the rest is then never inflated), else from the decoded
    /// payload. Anything undecodable is an error: the whole input must be retried or replayed.
    pub fn read<'a>(
        &'a mut self,
        input: Input<'a>,
        foreign: &mut dyn FnMut(&str) -> bool,
    ) -> Result<Read<'a>, DecodeError> {
        let (data, origin) = match input {
            Input::Text(t) => {
                return Ok(Read::Records(Batch {
                    format: t.format,
                    log_stream: None,
                    owner: None,
                    origin: t.origin,
                    records: Records::Lines {
                        text: t.bytes,
                        first_line: t.first_line,
                        fallback_time: t.fallback_time,
                    },
                }))
            }
            Input::Payload { json, origin } => return payload(json, origin, foreign),
            Input::Event { bytes, origin } => (subscription::event_data(bytes)?, origin),
            Input::Data { data, origin } => (Cow::Borrowed(data), origin),
        };
        if self.skips_peek() && self.decoder.decode(&data, &mut self.buf).is_ok() {
            // Decoded whole without the peek. Its result stands only where the peek's path
            // would have decoded the batch whole too: its stream is not foreign (a peek sure of
            // a foreign stream skips the batch, even a control message or one whose rest is
            // broken). Otherwise the batch is read again as below, and the run ends.
            if kept_stream(&self.buf, foreign) {
                self.kept = self.kept.saturating_add(1);
                return payload(&self.buf, origin, foreign);
            }
        }
        let read = self.decoder.decode_or_skip(&data, &mut self.buf, foreign);
        self.kept = match read {
            Ok(None) => self.kept.saturating_add(1),
            _ => 0,
        };
        match read? {
            Some(log_stream) => Ok(Read::Foreign { log_stream }),
            None => payload(&self.buf, origin, foreign),
        }
    }

    /// Whether the next subscription batch is decoded whole without its head's peek (after
    /// enough kept batches in a row).
    pub fn skips_peek(&self) -> bool {
        self.kept >= self.direct_after
    }

    /// The decoded-batch buffer's capacity: a refused gzip bomb must not leave a warm container
    /// holding its size.
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Drops the decoded-batch buffer when it grew past `keep` bytes: a gzip bomb or a huge
    /// batch must not pin memory in a warm container.
    pub fn release_above(&mut self, keep: usize) {
        if self.buf.capacity() > keep {
            self.buf = Vec::new();
        }
    }
}

/// Whether a decoded payload's head names its log stream for sure, and `foreign` keeps it.
fn kept_stream(json: &[u8], foreign: &mut dyn FnMut(&str) -> bool) -> bool {
    matches!(scan::log_stream(json), Some(s) if !foreign(s))
}

/// A decoded payload as a [`Read`]: a control message first (whatever its stream), then the
/// `foreign` test on its log stream, then its records.
fn payload<'a>(
    json: &'a [u8],
    origin: &'a str,
    foreign: &mut dyn FnMut(&str) -> bool,
) -> Result<Read<'a>, DecodeError> {
    let p = Payload::parse(json)?;
    if p.message_type == MessageType::Control {
        return Ok(Read::Control {
            log_stream: p.log_stream,
        });
    }
    if foreign(&p.log_stream) {
        return Ok(Read::Foreign {
            log_stream: p.log_stream.into_owned(),
        });
    }
    Ok(Read::Records(Batch {
        format: None,
        log_stream: Some(p.log_stream),
        owner: Some(p.owner).filter(|o| !o.is_empty()),
        origin,
        records: Records::Events(p.log_events),
    }))
}

/// Calls `f` with each line of flow-log text that holds a record, and its number: blank lines
/// (spaces only) are not records, a `\r` before the line end is not part of one, and a line that
/// is not UTF-8 is the error it is.
///
/// Flow logs are ASCII: one UTF-8 check for the whole text, and lines found 16 bytes at a time,
/// instead of a check and a byte loop per line (`split` and `from_utf8` per line were a third of
/// the time of a text file). Only text that fails the check is checked line by line, to report
/// the bad ones. A loop calling `f` rather than an iterator: the iterator's state went through
/// memory around every record (3% more instructions on a text file).
#[inline]
pub fn each_line<'t>(
    text: &'t [u8],
    first_line: u64,
    mut f: impl FnMut(u64, Result<&'t str, RecordError>),
) {
    if let Ok(text) = std::str::from_utf8(text) {
        let (mut at, mut n) = (0, first_line);
        loop {
            let end =
                flowlog::bytes::find_newline(&text.as_bytes()[at..]).map_or(text.len(), |e| at + e);
            let line = &text[at..end];
            let line = line.strip_suffix('\r').unwrap_or(line);
            if !line.bytes().all(|b| b.is_ascii_whitespace()) {
                f(n, Ok(line));
            }
            if end == text.len() {
                return;
            }
            (at, n) = (end + 1, n + 1);
        }
    }
    for (i, line) in text.split(|&b| b == b'\n').enumerate() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let n = first_line + i as u64;
        f(
            n,
            std::str::from_utf8(line).map_err(|_| RecordError::not_utf8()),
        );
    }
}
