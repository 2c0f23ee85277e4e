//! The engine: records in (from a subscription batch, an S3 object or a local file), ledger and
//! counters out. The same engine runs in the Lambda and in the CLI.

use std::collections::BTreeMap;
use std::sync::Arc;

use flowlog::{Format, Record, RecordError};
use serde::Serialize;

use crate::attribution::{attribute, Capabilities, Context, Outcome, SkipReason};
use crate::ledger::{ByAddress, Ledger, Resolver};
use crate::subscription::{self, DecodeError, Decoder, MessageType, Payload};
use crate::topology::Topology;

/// How many parse-error samples to keep, and how many non-NAT ENIs to remember.
const MAX_SAMPLES: usize = 5;
const MAX_ENIS_SEEN: usize = 20;

/// Batch (subscription event) counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BatchStats {
    pub read: u64,
    pub control_messages: u64,
    pub skipped_not_nat: u64,
}

/// Record counters: every record read lands in exactly one of the others.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecordStats {
    pub read: u64,
    pub counted: u64,
    pub public_side: u64,
    pub not_nat: u64,
    pub rejected: u64,
    pub no_data: u64,
    /// SKIPDATA records: windows the flow log itself dropped (lost data, not "no data").
    pub skip_data: u64,
    pub zero_bytes: u64,
    /// Private NAT gateway records under a format without pkt-* fields: refused, not guessed.
    pub ambiguous: u64,
    pub parse_errors: u64,
}

impl RecordStats {
    fn skip(&mut self, r: SkipReason) {
        *self.skipped_mut(r) += 1;
    }

    fn skipped_mut(&mut self, r: SkipReason) -> &mut u64 {
        match r {
            SkipReason::PublicSide => &mut self.public_side,
            SkipReason::NotNat => &mut self.not_nat,
            SkipReason::Rejected => &mut self.rejected,
            SkipReason::NoData => &mut self.no_data,
            SkipReason::SkipData => &mut self.skip_data,
            SkipReason::ZeroBytes => &mut self.zero_bytes,
            SkipReason::Ambiguous => &mut self.ambiguous,
        }
    }

    /// The count for one skip reason.
    pub fn skipped(&self, r: SkipReason) -> u64 {
        match r {
            SkipReason::PublicSide => self.public_side,
            SkipReason::NotNat => self.not_nat,
            SkipReason::Rejected => self.rejected,
            SkipReason::NoData => self.no_data,
            SkipReason::SkipData => self.skip_data,
            SkipReason::ZeroBytes => self.zero_bytes,
            SkipReason::Ambiguous => self.ambiguous,
        }
    }

    fn merge(&mut self, o: &RecordStats) {
        self.read += o.read;
        self.counted += o.counted;
        self.public_side += o.public_side;
        self.not_nat += o.not_nat;
        self.rejected += o.rejected;
        self.no_data += o.no_data;
        self.skip_data += o.skip_data;
        self.zero_bytes += o.zero_bytes;
        self.ambiguous += o.ambiguous;
        self.parse_errors += o.parse_errors;
    }
}

/// One bad record: where it was and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParseErrorSample {
    /// `file:line`, or `file logEvents[i]` for subscription batches.
    pub location: String,
    pub error: String,
}

/// What the engine noticed that the user should hear about.
#[derive(Debug, Default, Clone)]
pub struct Observations {
    pub parse_error_samples: Vec<ParseErrorSample>,
    pub unknown_fields: Vec<String>,
    /// Records read under a format without pkt-srcaddr/pkt-dstaddr.
    pub records_without_pkt: u64,
    /// ENIs of skipped records and batches, with counts (capped).
    pub other_enis: BTreeMap<String, u64>,
    /// Latest `end` of a counted record (freshness).
    pub latest_end: Option<u64>,
    /// Log stream of the last subscription batch seen.
    pub log_stream: Option<String>,
}

/// What one subscription event turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    Data,
    Control,
    /// A non-NAT ENI's stream: skipped without reading its events.
    SkippedNotNat,
}

/// Where a run of text lines came from, for error locations: errors read `origin:line`,
/// counting from `first_line`.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'o> {
    pub origin: &'o str,
    pub first_line: u64,
}

/// The engine over one topology and default format. Cheap to create; `clear` reuses buffers.
pub struct Engine<'t> {
    topology: &'t Topology,
    format: Arc<Format>,
    caps: Capabilities,
    resolver: &'t dyn Resolver,
    pub ledger: Ledger,
    pub batches: BatchStats,
    pub records: RecordStats,
    pub observed: Observations,
}

static BY_ADDRESS: ByAddress = ByAddress;

impl<'t> Engine<'t> {
    pub fn new(topology: &'t Topology, format: Format) -> Engine<'t> {
        let mut e = Engine {
            topology,
            caps: Capabilities::of(&format),
            format: Arc::new(format.clone()),
            resolver: &BY_ADDRESS,
            ledger: Ledger::default(),
            batches: BatchStats::default(),
            records: RecordStats::default(),
            observed: Observations::default(),
        };
        e.note_format(&format);
        e
    }

    pub fn topology(&self) -> &'t Topology {
        self.topology
    }

    pub fn format(&self) -> &Format {
        &self.format
    }

    fn note_format(&mut self, format: &Format) {
        for u in format.unknown_fields() {
            if !self.observed.unknown_fields.iter().any(|k| k == u) {
                self.observed.unknown_fields.push(u.to_string());
            }
        }
    }

    /// True when `log_stream` names an ENI that is not a configured NAT gateway.
    pub fn is_foreign_stream(&self, log_stream: &str) -> bool {
        subscription::stream_eni(log_stream)
            .is_some_and(|eni| self.topology.gateway_by_eni(eni).is_none())
    }

    /// Decodes and ingests one Lambda event. A non-NAT stream is recognised from the first
    /// kilobyte and skipped; anything undecodable is an error (the event must be retried).
    pub fn ingest_event(
        &mut self,
        event: &[u8],
        decoder: &mut Decoder,
        buf: &mut Vec<u8>,
        origin: &str,
    ) -> Result<BatchKind, DecodeError> {
        let data = subscription::event_data(event)?;
        self.ingest_data(&data, decoder, buf, origin)
    }

    /// Ingests the `awslogs.data` of an event whose envelope the caller already parsed (the
    /// Lambda needs the data for its duplicate check too, and parses the envelope only once).
    pub fn ingest_data(
        &mut self,
        data: &str,
        decoder: &mut Decoder,
        buf: &mut Vec<u8>,
        origin: &str,
    ) -> Result<BatchKind, DecodeError> {
        // A non-NAT stream is recognised from the payload's first kilobyte and the rest is
        // never inflated; a NAT batch's inflating goes on from that kilobyte.
        let foreign = decoder.decode_or_skip(data, buf, &mut |s| self.is_foreign_stream(s))?;
        if let Some(stream) = foreign {
            self.skip_foreign_batch(&stream);
            self.observed.log_stream = Some(stream);
            return Ok(BatchKind::SkippedNotNat);
        }
        let payload = Payload::parse(buf)?;
        Ok(self.ingest_payload(&payload, origin))
    }

    fn skip_foreign_batch(&mut self, log_stream: &str) {
        self.batches.skipped_not_nat += 1;
        if let Some(eni) = subscription::stream_eni(log_stream) {
            self.note_other_eni(eni, 0);
        }
    }

    /// Ingests a decoded payload.
    pub fn ingest_payload(&mut self, payload: &Payload<'_>, origin: &str) -> BatchKind {
        self.observed.log_stream = Some(payload.log_stream.to_string());
        if payload.message_type == MessageType::Control {
            self.batches.control_messages += 1;
            return BatchKind::Control;
        }
        let stream_eni = subscription::stream_eni(&payload.log_stream);
        let stream_gateway = stream_eni.and_then(|eni| self.topology.gateway_by_eni(eni));
        if stream_eni.is_some() && stream_gateway.is_none() {
            self.skip_foreign_batch(&payload.log_stream);
            return BatchKind::SkippedNotNat;
        }
        self.batches.read += 1;
        let format = Arc::clone(&self.format);
        for (i, ev) in payload.log_events.iter().enumerate() {
            let ctx = Context {
                topology: self.topology,
                caps: self.caps,
                stream_gateway,
                fallback_time: ev.timestamp.div_euclid(1000),
            };
            self.ingest_record(&format, &ctx, &ev.message, || {
                format!("{origin} logEvents[{i}]")
            });
        }
        BatchKind::Data
    }

    /// Ingests flow-log text, one record per line, in `format` (the engine's own when `None`).
    /// Blank lines are ignored. `fallback_time` buckets records whose format has no `start`.
    pub fn ingest_lines(
        &mut self,
        text: &[u8],
        format: Option<&Format>,
        origin: Origin<'_>,
        fallback_time: i64,
    ) {
        let own = Arc::clone(&self.format);
        let (format, caps) = match format {
            Some(f) => {
                self.note_format(f);
                (f, Capabilities::of(f))
            }
            None => (&*own, self.caps),
        };
        let ctx = Context {
            topology: self.topology,
            caps,
            stream_gateway: None,
            fallback_time,
        };
        let Origin {
            origin: name,
            first_line: first,
        } = origin;
        // Flow logs are ASCII: one UTF-8 check for the whole text, and lines found 16 bytes at
        // a time, instead of a check and a byte loop per line (`split` and `from_utf8` per
        // line were a third of the time of a text file). Otherwise each line is checked, to
        // report the bad ones.
        if let Ok(text) = std::str::from_utf8(text) {
            let (mut at, mut i) = (0, 0u64);
            loop {
                let end = flowlog::bytes::find_newline(&text.as_bytes()[at..])
                    .map_or(text.len(), |n| at + n);
                let line = &text[at..end];
                let line = line.strip_suffix('\r').unwrap_or(line);
                if !line.bytes().all(|b| b.is_ascii_whitespace()) {
                    self.ingest_record(format, &ctx, line, || format!("{name}:{}", first + i));
                }
                if end == text.len() {
                    return;
                }
                (at, i) = (end + 1, i + 1);
            }
        }
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let location = || format!("{name}:{}", first + i as u64);
            match std::str::from_utf8(line) {
                Ok(line) => self.ingest_record(format, &ctx, line, location),
                Err(_) => {
                    self.records.read += 1;
                    self.parse_error(RecordError::not_utf8(), location);
                }
            }
        }
    }

    #[inline]
    fn ingest_record(
        &mut self,
        format: &Format,
        ctx: &Context<'_>,
        line: &str,
        location: impl FnOnce() -> String,
    ) {
        self.records.read += 1;
        if !ctx.caps.pkt_addrs {
            self.observed.records_without_pkt += 1;
        }
        let mut rec = Record::blank(line);
        if let Err(e) = format.parse_into(line, &mut rec) {
            return self.parse_error(e, location);
        }
        match attribute(&rec, ctx) {
            Ok(Outcome::Counted(t)) => {
                self.records.counted += 1;
                if let Some(end) = t.end {
                    self.observed.latest_end =
                        Some(self.observed.latest_end.map_or(end, |l| l.max(end)));
                }
                self.ledger.add(&t, self.resolver);
            }
            Ok(Outcome::Skipped(reason)) => {
                self.records.skip(reason);
                if reason == SkipReason::NotNat {
                    if let Some(eni) = rec.interface_id() {
                        self.note_other_eni(eni, 1);
                    }
                }
            }
            Err(e) => self.parse_error(e, location),
        }
    }

    fn parse_error(&mut self, e: RecordError, location: impl FnOnce() -> String) {
        self.records.parse_errors += 1;
        if self.observed.parse_error_samples.len() < MAX_SAMPLES {
            self.observed.parse_error_samples.push(ParseErrorSample {
                location: location(),
                error: e.to_string(),
            });
        }
    }

    fn note_other_eni(&mut self, eni: &str, records: u64) {
        if let Some(n) = self.observed.other_enis.get_mut(eni) {
            *n += records;
        } else if self.observed.other_enis.len() < MAX_ENIS_SEEN {
            self.observed.other_enis.insert(eni.to_string(), records);
        }
    }

    /// Folds another engine's results into this one (same topology), e.g. from another thread.
    pub fn merge(&mut self, other: &Engine<'_>) {
        self.ledger.merge(&other.ledger);
        self.batches.read += other.batches.read;
        self.batches.control_messages += other.batches.control_messages;
        self.batches.skipped_not_nat += other.batches.skipped_not_nat;
        self.records.merge(&other.records);
        let o = &other.observed;
        for s in &o.parse_error_samples {
            if self.observed.parse_error_samples.len() < MAX_SAMPLES {
                self.observed.parse_error_samples.push(s.clone());
            }
        }
        for u in &o.unknown_fields {
            if !self.observed.unknown_fields.contains(u) {
                self.observed.unknown_fields.push(u.clone());
            }
        }
        self.observed.records_without_pkt += o.records_without_pkt;
        for (eni, n) in &o.other_enis {
            self.note_other_eni(eni, *n);
        }
        self.observed.latest_end = self.observed.latest_end.max(o.latest_end);
    }

    /// Resets results, keeping allocations (for warm Lambda containers).
    pub fn clear(&mut self) {
        self.ledger.clear();
        self.batches = BatchStats::default();
        self.records = RecordStats::default();
        self.observed = Observations::default();
        let f = Arc::clone(&self.format);
        self.note_format(&f);
    }
}
