//! A reader specialised for the JSON document CloudWatch Logs writes into a subscription batch.
//!
//! serde_json spends most of a NAT batch's time on generic work this document never needs: it
//! looks for escapes one string at a time, validates UTF-8 in a second pass, and walks a visitor
//! per key. CloudWatch writes the same shape every time (a few top-level strings, then
//! `logEvents` of `{"id":"…","timestamp":N,"message":"…"}`), and flow-log messages are plain
//! ASCII. [`payload`] reads exactly that shape in one pass, 16 bytes at a time.
//!
//! Production adds to it, and the reader takes those additions at full speed too:
//! - a space-delimited filter pattern (the module's `[version, account_id, interface_id = …]`)
//!   makes CloudWatch attach `"extractedFields":{"name":"value",…}` to every log event, nearly
//!   tripling the payload: skipped without being built, quotes found from one 16-byte mask;
//! - an account-level subscription policy adds a top-level `policyLevel`, and other keys may come
//!   (`emitSystemFields`, future ones): every key serde_json would ignore is skipped here too,
//!   whatever its value, with serde_json's syntax rules.
//!
//! For what is truly unusual (an escape, a control character, a float, a 19-digit number, a
//! repeated key, deep nesting, trailing bytes...) [`payload`] returns `None` and the caller
//! parses with serde_json, which accepts or rejects the document with its usual error. So this is
//! only ever a shortcut: whenever it answers, serde_json would have given the same payload (the
//! `payload_scan` tests and fuzz target check that on arbitrary bytes).

use std::borrow::Cow;

use flowlog::bytes::json_string_class;

use crate::subscription::{LogEvent, MessageType, Payload};

/// The top-level keys natmeter reads, by [`payload`] and, from only the first kilobyte of a
/// batch, by [`log_stream`].
#[derive(Default)]
struct Head<'a> {
    message_type: Option<&'a str>,
    owner: Option<&'a str>,
    log_group: Option<&'a str>,
    log_stream: Option<&'a str>,
}

impl<'a> Head<'a> {
    /// Reads the value of top-level `key` (anything but `logEvents`), or `None` for a repeated
    /// key, a value of another shape, or a value [`Cursor::skip_value`] leaves to serde_json.
    fn field(&mut self, key: &'a [u8], ascii: bool, c: &mut Cursor<'a>) -> Option<()> {
        match key {
            b"messageType" => once(&mut self.message_type, c.string()?),
            b"owner" => once(&mut self.owner, c.string()?),
            b"logGroup" => once(&mut self.log_group, c.string()?),
            b"logStream" => once(&mut self.log_stream, c.string()?),
            // Everything else (`subscriptionFilters`, `policyLevel`, whatever CloudWatch adds
            // next) serde ignores, repeats included: skipped.
            _ => c.unknown(key, ascii),
        }
    }
}

/// Reads a canonical CloudWatch Logs payload, or returns `None` (the caller falls back to
/// serde_json).
pub fn payload(json: &[u8]) -> Option<Payload<'_>> {
    let mut c = Cursor { b: json, i: 0 };
    c.eat(b'{')?;
    let mut head = Head::default();
    let mut log_events: Option<Vec<LogEvent<'_>>> = None;
    loop {
        let (key, ascii) = c.raw_string()?;
        c.eat(b':')?;
        if key == b"logEvents" {
            once(&mut log_events, c.events()?)?;
        } else {
            head.field(key, ascii, &mut c)?;
        }
        match c.next()? {
            b',' => {}
            b'}' => break,
            _ => return None,
        }
    }
    c.ws();
    if c.i != json.len() {
        return None;
    }
    let message_type = match head.message_type? {
        "CONTROL_MESSAGE" => MessageType::Control,
        _ => MessageType::Data,
    };
    let log_events = match (message_type, log_events) {
        (_, Some(events)) => events,
        (MessageType::Control, None) => Vec::new(),
        // serde_json's path names this error.
        (MessageType::Data, None) => return None,
    };
    Some(Payload {
        message_type,
        owner: Cow::Borrowed(head.owner.unwrap_or("")),
        log_group: Cow::Borrowed(head.log_group.unwrap_or("")),
        log_stream: Cow::Borrowed(head.log_stream.unwrap_or("")),
        log_events,
    })
}

/// `logStream` from the start of a payload (its first kilobyte, say), trusted only when every
/// key before `logEvents` is read (or skipped) as [`payload`] does, and `logStream` is there
/// once; otherwise `None` (a value cut off by the end of `head`, say) and the caller decodes
/// the whole batch. (A raw byte search was fooled by a nested `"logStream"` key: bad-input
/// matrix; here a nested key is inside a skipped value.)
pub fn log_stream(head: &[u8]) -> Option<&str> {
    let mut c = Cursor { b: head, i: 0 };
    c.eat(b'{')?;
    let mut h = Head::default();
    loop {
        let (key, ascii) = c.raw_string()?;
        c.eat(b':')?;
        if key == b"logEvents" {
            return h.log_stream;
        }
        h.field(key, ascii, &mut c)?;
        c.eat(b',')?;
    }
}

/// The `awslogs.data` string of a Lambda event written as CloudWatch Logs writes it,
/// `{"awslogs":{"data":"…"}}`, or `None` (the caller falls back to serde_json).
pub fn envelope_data(event: &[u8]) -> Option<&str> {
    let mut c = Cursor { b: event, i: 0 };
    c.eat(b'{')?;
    (c.key()? == b"awslogs").then_some(())?;
    c.eat(b':')?;
    c.eat(b'{')?;
    (c.key()? == b"data").then_some(())?;
    c.eat(b':')?;
    let data = c.string()?;
    c.eat(b'}')?;
    c.eat(b'}')?;
    c.ws();
    (c.i == event.len()).then_some(data)
}

/// Sets a field seen for the first time; a repeat is serde's "duplicate field" error.
#[inline]
fn once<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    /// The next byte after whitespace, consumed.
    #[inline]
    fn next(&mut self) -> Option<u8> {
        self.ws();
        let c = *self.b.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    #[inline]
    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// A string's raw bytes, when it has no escape and no control character.
    #[inline]
    fn raw_string(&mut self) -> Option<(&'a [u8], bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let (end, ascii) = string_end(self.b, start)?;
        self.i = end + 1;
        Some((&self.b[start..end], ascii))
    }

    #[inline]
    fn key(&mut self) -> Option<&'a [u8]> {
        self.raw_string().map(|(k, _)| k)
    }

    #[inline]
    fn string(&mut self) -> Option<&'a str> {
        let (s, ascii) = self.raw_string()?;
        if ascii {
            // SAFETY: `string_end` saw every byte of `s` below 0x80: ASCII is UTF-8.
            Some(unsafe { std::str::from_utf8_unchecked(s) })
        } else {
            std::str::from_utf8(s).ok()
        }
    }

    /// The value of a key serde_json does not read: skipped after the key's own check (serde
    /// reads every key as a `str`, so a non-ASCII one must be UTF-8).
    #[inline]
    fn unknown(&mut self, key: &[u8], ascii: bool) -> Option<()> {
        if !ascii {
            std::str::from_utf8(key).ok()?;
        }
        self.skip_value(0)
    }

    /// Skips one JSON value as serde_json's `IgnoredAny` does, accepting exactly what it
    /// accepts except what this reader leaves to it: escapes, control characters, floats and
    /// nesting deeper than [`MAX_SKIP_DEPTH`] return `None`. (serde does not check UTF-8 inside
    /// an ignored value, keys included, so neither does this.)
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        self.ws();
        match *self.b.get(self.i)? {
            b'"' => {
                self.i += 1;
                let (end, _) = string_end(self.b, self.i)?;
                self.i = end + 1;
                Some(())
            }
            b'{' => {
                self.i += 1;
                let at = self.i;
                if self.skip_string_object().is_some() {
                    return Some(());
                }
                self.i = at;
                self.skip_object(depth + 1)
            }
            b'[' => {
                self.i += 1;
                self.skip_array(depth + 1)
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.skip_integer(),
            _ => None,
        }
    }

    /// Any object, after its `{`.
    fn skip_object(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_SKIP_DEPTH {
            return None;
        }
        self.ws();
        if self.b.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Some(());
        }
        loop {
            self.raw_string()?;
            self.eat(b':')?;
            self.skip_value(depth)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// Any array, after its `[`.
    fn skip_array(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_SKIP_DEPTH {
            return None;
        }
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(());
        }
        loop {
            self.skip_value(depth)?;
            match self.next()? {
                b',' => {}
                b']' => return Some(()),
                _ => return None,
            }
        }
    }

    /// An integer of any length, as serde's `ignore_integer` takes it; a fraction or an
    /// exponent is left to serde.
    fn skip_integer(&mut self) -> Option<()> {
        if self.b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match *self.b.get(self.i)? {
            b'0' => self.i += 1,
            b'1'..=b'9' => {
                while let Some(b'0'..=b'9') = self.b.get(self.i) {
                    self.i += 1;
                }
            }
            _ => return None,
        }
        match self.b.get(self.i) {
            // `01` is serde's "invalid number"; `.`/`e` start a float.
            Some(b'0'..=b'9' | b'.' | b'e' | b'E') => None,
            _ => Some(()),
        }
    }

    /// `extractedFields` as CloudWatch writes it, after the `{`: `"k":"v"` pairs of plain
    /// strings, no whitespace. Its strings are short (a flow-log field and its name), so they
    /// are not scanned one by one: a 64-byte mask of stop bytes ([`stop_mask`]) serves every
    /// string in it, and only the byte pairs after each closing quote are checked (`:"` after a
    /// key, `,"` or `}` after a value). One `string_end` call per string made this object cost
    /// more than the rest of the batch. `None` at anything else (the caller then skips the
    /// object in general).
    #[inline]
    fn skip_string_object(&mut self) -> Option<()> {
        let b = self.b;
        match *b.get(self.i)? {
            b'}' => {
                self.i += 1;
                return Some(());
            }
            b'"' => {}
            _ => return None,
        }
        let mut stops = Stops {
            b,
            base: self.i + 1,
            mask: stop_mask(b, self.i + 1),
        };
        // `from`: where the contents of a key start.
        let mut from = self.i + 1;
        loop {
            let key_end = stops.quote(from)?;
            if stops.pair(key_end)? != *b":\"" {
                return None;
            }
            let value_end = stops.quote(key_end + 3)?;
            match stops.pair(value_end)? {
                [b',', b'"'] => from = value_end + 3,
                [b'}', _] => {
                    self.i = value_end + 2;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// A JSON integer that fits an `i64` without question: at most 18 digits, no leading zero.
    #[inline]
    fn integer(&mut self) -> Option<i64> {
        self.ws();
        let negative = self.b.get(self.i) == Some(&b'-');
        if negative {
            self.i += 1;
        }
        let start = self.i;
        let first = *self.b.get(self.i)?;
        if !first.is_ascii_digit() {
            return None;
        }
        let mut n: i64 = 0;
        if first == b'0' {
            // serde_json reads `-0` as the float -0.0, which is no i64.
            if negative {
                return None;
            }
            // JSON allows no digit after a leading zero; the caller's `,`/`}` check refuses one.
            self.i += 1;
        } else {
            while let Some(&d) = self.b.get(self.i) {
                if !d.is_ascii_digit() {
                    break;
                }
                if self.i - start == 18 {
                    return None;
                }
                n = n * 10 + i64::from(d - b'0');
                self.i += 1;
            }
        }
        Some(if negative { -n } else { n })
    }

    /// `logEvents`: an array of `{"id":"…","timestamp":N,"message":"…"}` in any key order.
    fn events(&mut self) -> Option<Vec<LogEvent<'a>>> {
        self.eat(b'[')?;
        // A flow-log event is 250-350 bytes of JSON: one allocation for the whole batch.
        let mut events = Vec::with_capacity((self.b.len() - self.i) / 256);
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(events);
        }
        loop {
            self.eat(b'{')?;
            let at = self.i;
            if let Some(e) = self.canonical_event() {
                events.push(e);
            } else {
                self.i = at;
                events.push(self.event()?);
            }
            match self.next()? {
                b',' => {}
                b']' => return Some(events),
                _ => return None,
            }
        }
    }

    /// Consumes `literal` if the input continues with it.
    #[inline(always)]
    fn literal(&mut self, literal: &[u8]) -> Option<()> {
        let end = self.i + literal.len();
        (self.b.get(self.i..end)? == literal).then(|| self.i = end)
    }

    /// The event exactly as CloudWatch writes it, `"id":"…","timestamp":N,"message":"…"}`
    /// after the `{`, optionally with `,"extractedFields":{…}` before the `}`: fixed keys
    /// compared as bytes.
    #[inline]
    fn canonical_event(&mut self) -> Option<LogEvent<'a>> {
        self.literal(b"\"id\":")?;
        let id = self.string()?;
        self.literal(b",\"timestamp\":")?;
        let timestamp = self.integer()?;
        self.literal(b",\"message\":")?;
        let message = self.string()?;
        if self.literal(b"}").is_none() {
            // The space-delimited filter pattern's extracted fields, written last.
            self.literal(b",\"extractedFields\":{")?;
            self.skip_string_object()?;
            self.literal(b"}")?;
        }
        Some(LogEvent {
            id: Cow::Borrowed(id),
            timestamp,
            message: Cow::Borrowed(message),
        })
    }

    /// Any other event: keys in any order, with whitespace, `id` optional, other keys skipped;
    /// after the `{`.
    fn event(&mut self) -> Option<LogEvent<'a>> {
        let (mut id, mut timestamp, mut message) = (None, None, None);
        loop {
            let (key, ascii) = self.raw_string()?;
            self.eat(b':')?;
            match key {
                b"id" => once(&mut id, self.string()?)?,
                b"timestamp" => once(&mut timestamp, self.integer()?)?,
                b"message" => once(&mut message, self.string()?)?,
                // `extractedFields`, system fields, anything serde ignores.
                _ => self.unknown(key, ascii)?,
            }
            match self.next()? {
                b',' => {}
                b'}' => break,
                _ => return None,
            }
        }
        Some(LogEvent {
            id: Cow::Borrowed(id.unwrap_or("")),
            timestamp: timestamp?,
            message: Cow::Borrowed(message?),
        })
    }
}

/// Nesting skipped without serde_json. serde ignores values of any depth; deeper ones here are
/// simply left to it (no CloudWatch payload nests at all).
const MAX_SKIP_DEPTH: u32 = 32;

/// The stop bytes of a 64-byte window of the input, for [`Cursor::skip_string_object`].
struct Stops<'a> {
    b: &'a [u8],
    base: usize,
    /// [`stop_mask`] of `base`.
    mask: u64,
}

impl Stops<'_> {
    /// The first stop byte at or after `from` when it is a quote; `None` for a backslash or a
    /// control character (serde's to read) or the end of the input (the padding's stop, past
    /// the input, which `get` refuses).
    #[inline(always)]
    fn quote(&mut self, mut from: usize) -> Option<usize> {
        let mut off = from - self.base;
        while off >= 64 || self.mask >> off == 0 {
            // No stop before the end of this window: the next one starts there (or at `from`,
            // when that is further).
            from = from.max(self.base + 64);
            if from >= self.b.len() {
                return None;
            }
            self.base = from;
            self.mask = stop_mask(self.b, from);
            off = 0;
        }
        let at = from + (self.mask >> off).trailing_zeros() as usize;
        (*self.b.get(at)? == b'"').then_some(at)
    }

    /// The two bytes after `at`.
    #[inline(always)]
    fn pair(&self, at: usize) -> Option<[u8; 2]> {
        self.b.get(at + 1..at + 3)?.try_into().ok()
    }
}

/// Stop bytes (`"`, `\`, controls: [`json_string_class`]) of `b[base..base + 64]` as a mask,
/// bit k for byte `base + k`. Past the end of `b` every byte counts as a stop, so a scan never
/// runs off the input without noticing.
#[inline]
fn stop_mask(b: &[u8], base: usize) -> u64 {
    let mut window = [0u8; 64];
    let bytes: &[u8; 64] = match b.get(base..base + 64) {
        Some(w) => w.try_into().expect("64 bytes"),
        None => {
            let rest = b.get(base..).unwrap_or(&[]);
            window[..rest.len()].copy_from_slice(rest);
            &window
        }
    };
    let mut mask = 0u64;
    for (k, chunk) in bytes.chunks_exact(16).enumerate() {
        let chunk: &[u8; 16] = chunk.try_into().expect("16 bytes");
        mask |= u64::from(json_string_class(chunk).0) << (16 * k);
    }
    mask
}

/// Finds the closing quote of a string whose contents start at `i`. Returns its index and
/// whether every byte before it is ASCII, or `None` at a backslash, a control character or the
/// end of the input (serde_json decides those).
#[inline]
fn string_end(b: &[u8], mut i: usize) -> Option<(usize, bool)> {
    let mut ascii = true;
    while i + 16 <= b.len() {
        let chunk: &[u8; 16] = b[i..i + 16].try_into().ok()?;
        let (stop, high) = json_string_class(chunk);
        if stop != 0 {
            let at = i + stop.trailing_zeros() as usize;
            // Non-ASCII bytes after the quote belong to the next token: conservatively counted.
            ascii &= high == 0;
            return (b[at] == b'"').then_some((at, ascii));
        }
        ascii &= high == 0;
        i += 16;
    }
    for (at, &c) in b.iter().enumerate().skip(i) {
        match c {
            b'"' => return Some((at, ascii)),
            b'\\' | 0..=0x1f => return None,
            0x80.. => ascii = false,
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_ends() {
        type End = Option<(usize, bool)>;
        let cases: [(&[u8], End); 7] = [
            (b"abc\"", Some((3, true))),
            (b"0123456789abcdefghij\"x", Some((20, true))),
            (b"0123456789abcdefgh\\\"ij\"", None),
            (b"0123456789abcdef\x01\"", None),
            ("0123456789abcdéf\"".as_bytes(), Some((17, false))),
            (b"0123456789abcdef", None),
            (b"", None),
        ];
        for (s, want) in cases {
            assert_eq!(string_end(s, 0), want, "{:?}", String::from_utf8_lossy(s));
        }
    }
}
