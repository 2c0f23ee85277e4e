//! One flow-log record, borrowed from the line it was parsed from, with typed accessors.
//!
//! Values are parsed on access, so a consumer pays only for the fields it reads. Every accessor
//! returns `Ok(None)` when the format lacks the field or the record says `-` (AWS: "a field that
//! does not apply or could not be computed").

use std::net::IpAddr;

use crate::field::Field;
use crate::format::truncate_value;

/// A parsed line: where each known field's text is in it.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    line: &'a str,
    spans: [Span; Field::COUNT],
}

/// Byte offsets of one value in its line (empty when the format lacks the field). Offsets rather
/// than `&str`s halve the record, which is built and moved once per flow record.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    /// Longest line a span can address. Flow-log records are a few hundred bytes.
    pub(crate) const MAX_LINE: usize = u32::MAX as usize;

    #[inline(always)]
    pub(crate) fn new(start: usize, end: usize) -> Span {
        debug_assert!(start <= end && end <= Span::MAX_LINE);
        Span {
            start: start as u32,
            end: end as u32,
        }
    }
}

/// `action`: whether security groups and network ACLs allowed the traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Accept,
    Reject,
}

/// `log-status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStatus {
    Ok,
    /// No traffic in the capture window.
    NoData,
    /// Records were dropped for capacity; one SKIPDATA line can stand for many flows.
    SkipData,
}

/// `flow-direction`, relative to the ENI that captured the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowDirection {
    Ingress,
    Egress,
}

/// What was wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordErrorKind {
    FieldCount {
        expected: usize,
        found: usize,
    },
    NotUtf8,
    /// A line of this many bytes: more than a record can address.
    TooLong(usize),
    NotAnInteger,
    Overflow,
    NotAnAddress,
    PortOutOfRange,
    UnknownValue {
        expected: &'static str,
    },
    /// A field the rules need was `-` or absent in a record that should have it.
    Missing,
}

/// A record that could not be used, naming the field and the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.describe())]
pub struct RecordError {
    pub field: Option<Field>,
    pub kind: RecordErrorKind,
    /// The offending value, truncated to 64 bytes.
    pub value: String,
}

impl RecordError {
    pub(crate) fn field_count(expected: usize, found: usize) -> RecordError {
        RecordError {
            field: None,
            kind: RecordErrorKind::FieldCount { expected, found },
            value: String::new(),
        }
    }

    /// A line longer than a record can address (4 GiB; a file without newlines).
    pub(crate) fn too_long(len: usize) -> RecordError {
        RecordError {
            field: None,
            kind: RecordErrorKind::TooLong(len),
            value: String::new(),
        }
    }

    /// A line that is not valid UTF-8.
    pub fn not_utf8() -> RecordError {
        RecordError {
            field: None,
            kind: RecordErrorKind::NotUtf8,
            value: String::new(),
        }
    }

    /// A required field that was `-` or absent.
    pub fn missing(field: Field) -> RecordError {
        RecordError::new(field, RecordErrorKind::Missing, "-")
    }

    fn new(field: Field, kind: RecordErrorKind, value: &str) -> RecordError {
        RecordError {
            field: Some(field),
            kind,
            value: truncate_value(value),
        }
    }

    fn describe(&self) -> String {
        let what = match &self.kind {
            RecordErrorKind::FieldCount { expected, found } => {
                return format!("expected {expected} fields (the configured format), found {found}")
            }
            RecordErrorKind::NotUtf8 => return "the line is not valid UTF-8".to_string(),
            RecordErrorKind::TooLong(len) => {
                return format!("a line of {len} bytes is not a flow-log record (at most 4 GiB)")
            }
            RecordErrorKind::NotAnInteger => "expected a non-negative integer".to_string(),
            RecordErrorKind::Overflow => "integer too large for 64 bits".to_string(),
            RecordErrorKind::NotAnAddress => "expected an IPv4 or IPv6 address".to_string(),
            RecordErrorKind::PortOutOfRange => "expected a port 0-65535".to_string(),
            RecordErrorKind::UnknownValue { expected } => format!("expected {expected}"),
            RecordErrorKind::Missing => "a value is required here".to_string(),
        };
        match self.field {
            Some(f) => format!("field `{f}`: {what}, found {:?}", self.value),
            None => format!("{what}, found {:?}", self.value),
        }
    }
}

impl<'a> Record<'a> {
    /// A record of `line` with no fields: what [`crate::Format::parse_into`] fills.
    #[inline(always)]
    pub fn blank(line: &'a str) -> Record<'a> {
        Record {
            line,
            spans: [Span::default(); Field::COUNT],
        }
    }

    /// Points the record at another line, its spans unchanged: only for `Format::fill`, which
    /// then writes every span of its format's fields.
    #[inline(always)]
    pub(crate) fn set_line(&mut self, line: &'a str) {
        self.line = line;
    }

    #[inline(always)]
    pub(crate) fn spans_mut(&mut self) -> &mut [Span; Field::COUNT] {
        &mut self.spans
    }

    /// The raw text, or `None` when the format lacks the field or the value is `-`.
    #[inline]
    pub fn get(&self, field: Field) -> Option<&'a str> {
        let s = self.spans[field as usize];
        // Spans come only from this crate's tokenizers: token bounds are the line's ends or sit
        // next to ASCII whitespace, so they are char boundaries within the line.
        debug_assert!(self.line.get(s.start as usize..s.end as usize).is_some());
        // SAFETY: as above; `get` would re-check both boundaries on every access.
        let v = unsafe { self.line.get_unchecked(s.start as usize..s.end as usize) };
        match v {
            "" | "-" => None,
            v => Some(v),
        }
    }

    /// An unsigned integer field (`bytes`, `packets`, `start`, `end`, `tcp-flags`, ...).
    #[inline]
    pub fn u64(&self, field: Field) -> Result<Option<u64>, RecordError> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        parse_u64(v)
            .map(Some)
            .map_err(|kind| RecordError::new(field, kind, v))
    }

    /// An address field (`srcaddr`, `dstaddr`, `pkt-srcaddr`, `pkt-dstaddr`). IPv6 zones
    /// (`fe80::1%eth0`) are rejected: flow logs never write them.
    #[inline]
    pub fn ip(&self, field: Field) -> Result<Option<IpAddr>, RecordError> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        match parse_ipv4(v.as_bytes()) {
            Some(v4) => Ok(Some(IpAddr::V4(v4))),
            None => ip_general(field, v).map(Some),
        }
    }

    /// A port field (`srcport`, `dstport`).
    pub fn port(&self, field: Field) -> Result<Option<u16>, RecordError> {
        match self.u64(field)? {
            None => Ok(None),
            Some(p) => u16::try_from(p).map(Some).map_err(|_| {
                RecordError::new(
                    field,
                    RecordErrorKind::PortOutOfRange,
                    self.get(field).unwrap_or_default(),
                )
            }),
        }
    }

    /// `protocol`: the IANA protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    pub fn protocol(&self) -> Result<Option<u8>, RecordError> {
        let f = Field::Protocol;
        match self.u64(f)? {
            None => Ok(None),
            Some(p) => u8::try_from(p).map(Some).map_err(|_| {
                RecordError::new(
                    f,
                    RecordErrorKind::UnknownValue {
                        expected: "an IANA protocol number 0-255",
                    },
                    self.get(f).unwrap_or_default(),
                )
            }),
        }
    }

    /// `start`, Unix seconds of the first packet in the capture window.
    pub fn start(&self) -> Result<Option<u64>, RecordError> {
        self.u64(Field::Start)
    }

    /// `end`, Unix seconds of the last packet in the capture window.
    pub fn end(&self) -> Result<Option<u64>, RecordError> {
        self.u64(Field::End)
    }

    /// `bytes`.
    pub fn bytes(&self) -> Result<Option<u64>, RecordError> {
        self.u64(Field::Bytes)
    }

    /// `packets`.
    pub fn packets(&self) -> Result<Option<u64>, RecordError> {
        self.u64(Field::Packets)
    }

    /// `action`.
    pub fn action(&self) -> Result<Option<Action>, RecordError> {
        self.enumerated(Field::Action, "ACCEPT or REJECT", |v| match v {
            "ACCEPT" => Some(Action::Accept),
            "REJECT" => Some(Action::Reject),
            _ => None,
        })
    }

    /// `log-status`.
    pub fn log_status(&self) -> Result<Option<LogStatus>, RecordError> {
        self.enumerated(Field::LogStatus, "OK, NODATA or SKIPDATA", |v| match v {
            "OK" => Some(LogStatus::Ok),
            "NODATA" => Some(LogStatus::NoData),
            "SKIPDATA" => Some(LogStatus::SkipData),
            _ => None,
        })
    }

    /// `flow-direction`.
    pub fn flow_direction(&self) -> Result<Option<FlowDirection>, RecordError> {
        self.enumerated(Field::FlowDirection, "ingress or egress", |v| match v {
            "ingress" => Some(FlowDirection::Ingress),
            "egress" => Some(FlowDirection::Egress),
            _ => None,
        })
    }

    /// `traffic-path` (egress only): 1 same VPC ... 8 IGW (Nitro). There is no NAT value.
    pub fn traffic_path(&self) -> Result<Option<u8>, RecordError> {
        let f = Field::TrafficPath;
        match self.u64(f)? {
            None => Ok(None),
            Some(p) => u8::try_from(p).map(Some).map_err(|_| {
                RecordError::new(
                    f,
                    RecordErrorKind::UnknownValue {
                        expected: "a traffic path 1-8",
                    },
                    self.get(f).unwrap_or_default(),
                )
            }),
        }
    }

    /// `interface-id`, borrowed.
    pub fn interface_id(&self) -> Option<&'a str> {
        self.get(Field::InterfaceId)
    }

    /// `pkt-src-aws-service`: an open list of names (S3, DYNAMODB, EC2, ...), borrowed.
    pub fn pkt_src_aws_service(&self) -> Result<Option<&'a str>, RecordError> {
        self.aws_service(Field::PktSrcAwsService)
    }

    /// `pkt-dst-aws-service`, borrowed.
    pub fn pkt_dst_aws_service(&self) -> Result<Option<&'a str>, RecordError> {
        self.aws_service(Field::PktDstAwsService)
    }

    /// The list is open, but every name AWS writes is a short ASCII word; anything else (control
    /// characters, non-ASCII, kilobytes) is a corrupt record, and would also be refused by
    /// CloudWatch as a dimension value.
    fn aws_service(&self, field: Field) -> Result<Option<&'a str>, RecordError> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let ok = v.len() <= 64
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if ok {
            Ok(Some(v))
        } else {
            Err(RecordError::new(
                field,
                RecordErrorKind::UnknownValue {
                    expected: "an AWS service name (letters, digits, _ - . ; at most 64)",
                },
                v,
            ))
        }
    }

    fn enumerated<T>(
        &self,
        field: Field,
        expected: &'static str,
        f: impl FnOnce(&str) -> Option<T>,
    ) -> Result<Option<T>, RecordError> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        f(v).map(Some)
            .ok_or_else(|| RecordError::new(field, RecordErrorKind::UnknownValue { expected }, v))
    }
}

/// Dotted-quad IPv4, the overwhelmingly common case, without std's general parser (which
/// profiling showed at a tenth of the hot path). Anything unusual returns `None` and takes the
/// std path, which also produces the error, so both accept exactly the same addresses.
#[inline]
fn parse_ipv4(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    if b.len() < 7 || b.len() > 15 {
        return None;
    }
    let digit = |i: usize| b.get(i).map(|c| c.wrapping_sub(b'0')).filter(|d| *d <= 9);
    let mut i = 0;
    let mut addr: u32 = 0;
    for n in 0..4 {
        let d0 = digit(i)?;
        let mut v = u32::from(d0);
        i += 1;
        if let Some(d1) = digit(i) {
            // No leading zeros: std rejects "01".
            if d0 == 0 {
                return None;
            }
            v = v * 10 + u32::from(d1);
            i += 1;
            if let Some(d2) = digit(i) {
                v = v * 10 + u32::from(d2);
                i += 1;
                if v > 255 {
                    return None;
                }
            }
        }
        addr = addr << 8 | v;
        if n < 3 {
            if b.get(i) != Some(&b'.') {
                return None;
            }
            i += 1;
        }
    }
    // A fourth digit or any trailing byte leaves `i` short of the end.
    (i == b.len()).then_some(std::net::Ipv4Addr::from(addr))
}

/// IPv6, and every error: out of line, so the IPv4 case inlines small.
#[cold]
fn ip_general(field: Field, v: &str) -> Result<IpAddr, RecordError> {
    v.parse::<IpAddr>()
        .map_err(|_| RecordError::new(field, RecordErrorKind::NotAnAddress, v))
}

/// Decimal digits only: no sign, no spaces. Faster than `str::parse` and stricter about what
/// flow logs can contain.
#[inline]
fn parse_u64(v: &str) -> Result<u64, RecordErrorKind> {
    let b = v.as_bytes();
    if b.is_empty() {
        return Err(RecordErrorKind::NotAnInteger);
    }
    if b.len() <= 19 {
        // 19 digits cannot overflow a u64: no checked arithmetic in the common case.
        let mut n: u64 = 0;
        for &c in b {
            let d = c.wrapping_sub(b'0');
            if d > 9 {
                return Err(RecordErrorKind::NotAnInteger);
            }
            n = n * 10 + u64::from(d);
        }
        return Ok(n);
    }
    parse_u64_long(b)
}

/// 20 digits and more: rare, and kept out of line so the common case stays small.
#[cold]
fn parse_u64_long(b: &[u8]) -> Result<u64, RecordErrorKind> {
    if !b.iter().all(u8::is_ascii_digit) {
        return Err(RecordErrorKind::NotAnInteger);
    }
    b.iter()
        .try_fold(0u64, |n, &c| {
            n.checked_mul(10)?.checked_add(u64::from(c - b'0'))
        })
        .ok_or(RecordErrorKind::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;

    #[test]
    fn fast_ipv4_agrees_with_std() {
        let cases = [
            "10.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.2.3.4",
            "1.2.3.04",
            "1..2.3",
            "1.2.3.4 ",
            "a.b.c.d",
            "1.2.3.",
            ".1.2.3",
            "999.999.999.999",
            "192.168.100.200",
            "1.2.3.-4",
            "::1",
            "2001:db8::1",
        ];
        for c in cases {
            let std = c.parse::<std::net::Ipv4Addr>().ok();
            assert_eq!(parse_ipv4(c.as_bytes()), std, "{c}");
        }
    }

    #[test]
    fn integers() {
        assert_eq!(parse_u64("0"), Ok(0));
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
        assert_eq!(
            parse_u64("18446744073709551616"),
            Err(RecordErrorKind::Overflow)
        );
        assert_eq!(
            parse_u64("999999999999999999999999"),
            Err(RecordErrorKind::Overflow)
        );
        assert_eq!(parse_u64("-5"), Err(RecordErrorKind::NotAnInteger));
        assert_eq!(parse_u64("+5"), Err(RecordErrorKind::NotAnInteger));
        assert_eq!(parse_u64("1e3"), Err(RecordErrorKind::NotAnInteger));
        assert_eq!(parse_u64(""), Err(RecordErrorKind::NotAnInteger));
    }

    #[test]
    fn errors_name_the_field_and_value() {
        let f = Format::parse("${srcaddr} ${bytes} ${srcport} ${log-status}").unwrap();
        let r = f.parse_line("10.0.0.1 -5 70000 MAYBE").unwrap();
        assert_eq!(
            r.bytes().unwrap_err().to_string(),
            "field `bytes`: expected a non-negative integer, found \"-5\""
        );
        assert_eq!(
            r.port(Field::SrcPort).unwrap_err().to_string(),
            "field `srcport`: expected a port 0-65535, found \"70000\""
        );
        assert_eq!(
            r.log_status().unwrap_err().to_string(),
            "field `log-status`: expected OK, NODATA or SKIPDATA, found \"MAYBE\""
        );
        let r = f.parse_line("fe80::1%eth0 1 1 OK").unwrap();
        assert_eq!(
            r.ip(Field::SrcAddr).unwrap_err().to_string(),
            "field `srcaddr`: expected an IPv4 or IPv6 address, found \"fe80::1%eth0\""
        );
        assert_eq!(
            f.parse_line("1 2 3").unwrap_err().to_string(),
            "expected 4 fields (the configured format), found 3"
        );
    }

    #[test]
    fn dash_and_missing_fields_are_none() {
        let f = Format::parse("${srcaddr} ${bytes}").unwrap();
        let r = f.parse_line("- -").unwrap();
        assert_eq!(r.ip(Field::SrcAddr).unwrap(), None);
        assert_eq!(r.bytes().unwrap(), None);
        assert_eq!(r.packets().unwrap(), None);
        assert_eq!(r.action().unwrap(), None);
    }
}
