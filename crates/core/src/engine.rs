//! The engine: what [`crate::sources`] reads in, attributed, resolved and summed.
//!
//! Two halves, so that threads share one and merge the other:
//! - an [`Attributor`] is the immutable context of a run: the topology, the default format and
//!   what it offers, and the [`Resolver`] that says who a source is. `Sync`; never changes while
//!   records flow through it.
//! - [`Results`] are what one thread (or one invocation) added up: the ledger with its interned
//!   sources, the counters, and what was noticed. Private fields, read through accessors, and
//!   merged from thread to thread; the report and the metrics read them.
//!
//! The same engine runs in the Lambda and in the CLI.

use std::collections::BTreeMap;

use flowlog::{Field, Format, Parser, RecordError};
use serde::Serialize;

use crate::attribution::{attribute, Capabilities, Context, Outcome, SkipReason};
use crate::attribution::{Destination, Traversal};
use crate::identity::{Answers, ByAddress, Resolver, Sighting};
use crate::ipranges::IpRanges;
use crate::ledger::Ledger;
use crate::sources::subscription::stream_eni;
use crate::sources::{each_line, DecodeError, Input, Location, Read, Reader, Records};
use crate::topology::Topology;

/// How many parse-error samples to keep, and how many non-NAT ENIs to remember.
const MAX_SAMPLES: usize = 5;
const MAX_ENIS_SEEN: usize = 20;

/// Batch (subscription event) counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct BatchStats {
    pub read: u64,
    pub control_messages: u64,
    pub skipped_not_nat: u64,
}

/// Record counters: every record read lands in exactly one of the others.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(default)]
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

    /// Adds another run's counters (saturating: counters read back from report documents are
    /// not trusted to be small).
    pub fn merge(&mut self, o: &RecordStats) {
        for (a, b) in [
            (&mut self.read, o.read),
            (&mut self.counted, o.counted),
            (&mut self.public_side, o.public_side),
            (&mut self.not_nat, o.not_nat),
            (&mut self.rejected, o.rejected),
            (&mut self.no_data, o.no_data),
            (&mut self.skip_data, o.skip_data),
            (&mut self.zero_bytes, o.zero_bytes),
            (&mut self.ambiguous, o.ambiguous),
            (&mut self.parse_errors, o.parse_errors),
        ] {
            *a = a.saturating_add(b);
        }
    }
}

impl BatchStats {
    /// Adds another run's counters (saturating, as [`RecordStats::merge`]).
    pub fn merge(&mut self, o: &BatchStats) {
        self.read = self.read.saturating_add(o.read);
        self.control_messages = self.control_messages.saturating_add(o.control_messages);
        self.skipped_not_nat = self.skipped_not_nat.saturating_add(o.skipped_not_nat);
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

/// What one input turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchKind {
    /// A subscription batch of a NAT ENI (or of no ENI), read.
    Data,
    Control,
    /// A non-NAT ENI's stream: skipped without reading its events.
    SkippedNotNat,
    /// Flow-log text.
    Text,
}

/// Everything one thread or invocation added up. Sums (ledger, counters) merge in any order;
/// the observations depend on input order and are merged in it by whoever ordered the inputs.
#[derive(Debug, Default, Clone)]
pub struct Results {
    ledger: Ledger,
    /// The resolver's answers with their spans, for the ids of this ledger's sources.
    answers: Answers,
    batches: BatchStats,
    records: RecordStats,
    observed: Observations,
    /// With AWS's ranges: the gateways' region, whose S3 and DynamoDB bytes are avoidable
    /// (docs/attribution.md §5.2).
    home_region: Option<Box<str>>,
}

impl Results {
    /// The gateways' region when AWS's ranges named the destinations.
    pub fn home_region(&self) -> Option<&str> {
        self.home_region.as_deref()
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub fn batches(&self) -> BatchStats {
        self.batches
    }

    pub fn records(&self) -> RecordStats {
        self.records
    }

    pub fn observed(&self) -> &Observations {
        &self.observed
    }

    /// Folds another run's results into these (same attributor), e.g. from another thread.
    pub fn merge(&mut self, other: &Results) {
        self.merge_on(other, 1);
    }

    /// [`Results::merge`], the ledgers merged on up to `threads` threads
    /// ([`crate::ledger::Ledger::merge_on`]).
    pub fn merge_on(&mut self, other: &Results, threads: usize) {
        self.ledger.merge_on(&other.ledger, threads);
        if self.home_region.is_none() {
            self.home_region.clone_from(&other.home_region);
        }
        self.merge_counters(other);
    }

    /// The record and batch counters and the observations of `other`, added to these.
    fn merge_counters(&mut self, other: &Results) {
        self.batches.merge(&other.batches);
        self.records.merge(&other.records);
        self.merge_observations(&other.observed);
    }

    /// Moves the ledger entries of the (minute, gateway index) slots `part` names into results
    /// of their own, one per part, ordered by part. The record and batch counters and the
    /// observations stay here: they describe the input read, not a slot of it.
    pub fn split_off<P: Ord>(
        &mut self,
        part: impl FnMut(i64, u16) -> Option<P>,
    ) -> Vec<(P, Results)> {
        self.ledger
            .split_off(part)
            .into_iter()
            .map(|(p, ledger)| {
                let r = Results {
                    ledger,
                    answers: self.answers.clone(),
                    batches: BatchStats::default(),
                    records: RecordStats::default(),
                    observed: Observations::default(),
                    home_region: self.home_region.clone(),
                };
                (p, r)
            })
            .collect()
    }

    /// Moves the record and batch counters and the observations of `other` into these (the
    /// ledger stays as it is): the counters of an input whose entries were split off.
    pub fn take_counters(&mut self, other: &mut Results) {
        self.merge_counters(other);
        other.batches = BatchStats::default();
        other.records = RecordStats::default();
        other.observed = Observations::default();
    }

    /// Takes what was noticed so far out (to be merged later, in input order), leaving none.
    pub fn take_observations(&mut self) -> Observations {
        std::mem::take(&mut self.observed)
    }

    /// Adds observations taken from a run, after those already here.
    pub fn merge_observations(&mut self, o: &Observations) {
        for s in &o.parse_error_samples {
            if self.observed.parse_error_samples.len() < MAX_SAMPLES {
                self.observed.parse_error_samples.push(s.clone());
            }
        }
        for u in &o.unknown_fields {
            self.note_unknown(u);
        }
        self.observed.records_without_pkt += o.records_without_pkt;
        for (eni, n) in &o.other_enis {
            self.note_other_eni(eni, *n);
        }
        self.observed.latest_end = self.observed.latest_end.max(o.latest_end);
    }

    fn note_unknown(&mut self, u: &str) {
        if !self.observed.unknown_fields.iter().any(|k| k == u) {
            self.observed.unknown_fields.push(u.to_string());
        }
    }

    fn note_format(&mut self, format: &Format) {
        for u in format.unknown_fields() {
            self.note_unknown(u);
        }
    }

    fn parse_error(&mut self, e: RecordError, at: Location<'_>) {
        self.records.parse_errors += 1;
        if self.observed.parse_error_samples.len() < MAX_SAMPLES {
            self.observed.parse_error_samples.push(ParseErrorSample {
                location: at.to_string(),
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

    fn skip_foreign_batch(&mut self, log_stream: &str) {
        self.batches.skipped_not_nat += 1;
        if let Some(eni) = stream_eni(log_stream) {
            self.note_other_eni(eni, 0);
        }
    }
}

/// The immutable context of a run: topology, default format, resolver.
pub struct Attributor<'t> {
    topology: &'t Topology,
    format: Format,
    caps: Capabilities,
    /// `None`: the default, [`ByAddress`], called directly (no indirect call, and no reading of
    /// the fields only another resolver could use).
    resolver: Option<&'t dyn Resolver>,
    /// AWS's address ranges: each counted record's remote named by service and region
    /// (docs/attribution.md §5.1).
    ranges: Option<&'t IpRanges>,
    /// Internet destinations split by the remote's /24 (IPv6 /48): docs/attribution.md §5.3.
    remote_prefixes: bool,
    /// With the ranges: the gateways' region, whose S3 and DynamoDB a gateway endpoint serves.
    home_region: Option<&'t str>,
}

impl<'t> Attributor<'t> {
    /// Over `topology`, reading records in `format` unless an input brings its own, with the
    /// default resolver (the address is the identity).
    pub fn new(topology: &'t Topology, format: Format) -> Attributor<'t> {
        Attributor {
            topology,
            caps: Capabilities::of(&format),
            format,
            resolver: None,
            ranges: None,
            remote_prefixes: false,
            home_region: None,
        }
    }

    /// The same attributor splitting internet destinations by the remote's /24 (IPv6 /48).
    pub fn with_remote_prefixes(self, on: bool) -> Attributor<'t> {
        Attributor {
            remote_prefixes: on,
            ..self
        }
    }

    /// The same attributor naming remotes by AWS's ranges; with the gateways' region the
    /// results also know which bytes are avoidable (docs/attribution.md §5.2).
    pub fn with_ranges(self, ranges: &'t IpRanges, home_region: Option<&'t str>) -> Attributor<'t> {
        Attributor {
            ranges: Some(ranges),
            home_region,
            ..self
        }
    }

    /// The same attributor asking `resolver` who each source is.
    pub fn with_resolver(self, resolver: &'t dyn Resolver) -> Attributor<'t> {
        Attributor {
            resolver: Some(resolver),
            ..self
        }
    }

    pub fn topology(&self) -> &'t Topology {
        self.topology
    }

    pub fn format(&self) -> &Format {
        &self.format
    }

    /// Empty results for this attributor (its format's unknown fields already noted).
    pub fn results(&self) -> Results {
        let mut r = Results::default();
        r.note_format(&self.format);
        r.home_region = self.home_region.map(Into::into);
        r
    }

    /// Empties `r` as [`Attributor::results`] would make it, keeping its allocations (warm
    /// Lambda containers).
    pub fn reset(&self, r: &mut Results) {
        r.ledger.clear();
        r.answers.clear();
        r.batches = BatchStats::default();
        r.records = RecordStats::default();
        r.observed = Observations::default();
        r.note_format(&self.format);
        r.home_region = self.home_region.map(Into::into);
    }

    /// True when `log_stream` names an ENI that is not a configured NAT gateway: the test the
    /// reader applies to every batch, at the peek and on the decoded payload.
    /// EKS audit streams are foreign too: they hold no flow records (the function routes them to
    /// the inventory before metering; docs/attribution.md §4.3).
    pub fn is_foreign_stream(&self, log_stream: &str) -> bool {
        log_stream.starts_with(crate::inventory::AUDIT_STREAM_PREFIX)
            || stream_eni(log_stream).is_some_and(|eni| self.topology.gateway_by_eni(eni).is_none())
    }

    /// Reads one input with `reader` and adds it to `into`. An input that cannot be decoded
    /// is an error and adds nothing: it must be retried or replayed whole.
    pub fn ingest(
        &self,
        input: Input<'_>,
        reader: &mut Reader,
        into: &mut Results,
    ) -> Result<BatchKind, DecodeError> {
        let read = reader.read(input, &mut |s| self.is_foreign_stream(s))?;
        Ok(self.add(read, into))
    }

    /// Adds what a reader read (with [`Attributor::is_foreign_stream`] as its foreign test).
    fn add(&self, read: Read<'_>, into: &mut Results) -> BatchKind {
        let batch = match read {
            Read::Foreign { log_stream } => {
                into.skip_foreign_batch(&log_stream);
                into.observed.log_stream = Some(log_stream);
                return BatchKind::SkippedNotNat;
            }
            Read::Control { log_stream } => {
                into.observed.log_stream = Some(log_stream.into_owned());
                into.batches.control_messages += 1;
                return BatchKind::Control;
            }
            Read::Records(b) => b,
        };
        let (format, caps) = match batch.format {
            Some(f) => {
                into.note_format(f);
                (f, Capabilities::of(f))
            }
            None => (&self.format, self.caps),
        };
        let mut ctx = Context {
            topology: self.topology,
            caps,
            stream_gateway: None,
            fallback_time: 0,
        };
        let owner = batch.owner.as_deref();
        let origin = batch.origin;
        match batch.records {
            Records::Events(events) => {
                let stream = batch.log_stream.as_deref().unwrap_or_default();
                into.observed.log_stream = Some(stream.to_string());
                // The reader already refused foreign streams: an ENI here is a NAT gateway's.
                ctx.stream_gateway =
                    stream_eni(stream).and_then(|e| self.topology.gateway_by_eni(e));
                into.batches.read += 1;
                let mut parser = format.parser();
                for (index, ev) in events.iter().enumerate() {
                    ctx.fallback_time = ev.timestamp.div_euclid(1000);
                    let at = Location::Event { origin, index };
                    self.record(&mut parser, &ctx, owner, &ev.message, at, into);
                }
                BatchKind::Data
            }
            Records::Lines {
                text,
                first_line,
                fallback_time,
            } => {
                ctx.fallback_time = fallback_time;
                let mut parser = format.parser();
                each_line(text, first_line, |line, rec| {
                    let at = Location::Line { origin, line };
                    match rec {
                        Ok(rec) => self.record(&mut parser, &ctx, owner, rec, at, into),
                        Err(e) => {
                            into.records.read += 1;
                            into.parse_error(e, at);
                        }
                    }
                });
                BatchKind::Text
            }
        }
    }

    #[inline]
    fn record<'a>(
        &self,
        parser: &mut Parser<'_, 'a>,
        ctx: &Context<'_>,
        owner: Option<&str>,
        line: &'a str,
        at: Location<'_>,
        into: &mut Results,
    ) {
        into.records.read += 1;
        if !ctx.caps.pkt_addrs {
            into.observed.records_without_pkt += 1;
        }
        let rec = match parser.parse(line) {
            Ok(rec) => rec,
            Err(e) => return into.parse_error(e, at),
        };
        match attribute(rec, ctx) {
            Ok(Outcome::Counted(t)) => {
                let mut t = match (self.ranges, t.remote) {
                    (Some(ranges), Some(remote)) => named_by_ranges(t, ranges, remote),
                    _ => t,
                };
                if self.remote_prefixes && t.destination == Destination::Internet {
                    t.prefix = t.remote.map(remote_prefix);
                }
                into.records.counted += 1;
                if let Some(end) = t.end {
                    into.observed.latest_end =
                        Some(into.observed.latest_end.map_or(end, |l| l.max(end)));
                }
                let sources = into.ledger.sources_mut();
                let source = match self.resolver {
                    None => ByAddress.resolve_address(t.source, sources),
                    Some(r) => {
                        let seen = || Sighting {
                            address: t.source,
                            time: t.time,
                            gateway: t.gateway,
                            account: rec.get(Field::AccountId).or(owner),
                            vpc: rec.get(Field::VpcId),
                        };
                        into.answers.resolve(r, t.source, t.time, seen, sources)
                    }
                };
                into.ledger.add(&t, source);
            }
            Ok(Outcome::Skipped(reason)) => {
                into.records.skip(reason);
                if reason == SkipReason::NotNat {
                    if let Some(eni) = rec.interface_id() {
                        into.note_other_eni(eni, 1);
                    }
                }
            }
            Err(e) => into.parse_error(e, at),
        }
    }
}

/// `t` with its remote's region, and its service where the record named none (`-`, or a format
/// without `pkt-*-aws-service`): the record's own service is kept when it has one.
#[inline]
fn named_by_ranges<'a>(
    t: Traversal<'a>,
    ranges: &'a IpRanges,
    remote: std::net::IpAddr,
) -> Traversal<'a> {
    let Some(p) = ranges.lookup(remote) else {
        return t;
    };
    let destination = match t.destination {
        Destination::Internet | Destination::Unknown => Destination::Service(p.service),
        other => other,
    };
    Traversal {
        destination,
        region: Some(p.region),
        ..t
    }
}

/// The /24 of an IPv4 remote, the /48 of an IPv6 one: the network a destination is named by
/// when no AWS service owns it.
fn remote_prefix(ip: std::net::IpAddr) -> ipnet::IpNet {
    let len = if ip.is_ipv4() { 24 } else { 48 };
    ipnet::IpNet::new(ip, len)
        .expect("24 and 48 are valid prefix lengths")
        .trunc()
}
