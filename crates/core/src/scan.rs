//! A reader specialised for the JSON document CloudWatch Logs writes into a subscription batch.
//!
//! serde_json spends most of a NAT batch's time on generic work this document never needs: it
//! looks for escapes one string at a time, validates UTF-8 in a second pass, and walks a visitor
//! per key. CloudWatch writes the same shape every time (a few top-level strings, then
//! `logEvents` of `{"id":"…","timestamp":N,"message":"…"}`), and flow-log messages are plain
//! ASCII. [`payload`] reads exactly that shape in one pass, 16 bytes at a time, and returns
//! `None` for anything else (an escape, a control character, an unknown or repeated key, a float,
//! a 19-digit number, trailing bytes...). The caller then parses with serde_json, which accepts
//! or rejects the document with its usual error. So this is only ever a shortcut: whenever it
//! answers, serde_json would have given the same payload (the `payload_scan` tests and fuzz
//! target check that on arbitrary bytes).

use std::borrow::Cow;

use flowlog::bytes::json_string_class;

use crate::subscription::{LogEvent, MessageType, Payload};

/// The top-level keys CloudWatch writes around `logEvents`, read by [`payload`] and, from only the
/// first kilobyte of a batch, by [`log_stream`].
#[derive(Default)]
struct Head<'a> {
    message_type: Option<&'a str>,
    owner: Option<&'a str>,
    log_group: Option<&'a str>,
    log_stream: Option<&'a str>,
}

impl<'a> Head<'a> {
    /// Reads the value of top-level `key` (anything but `logEvents`), or `None` for an unknown
    /// or repeated key or a value of another shape.
    fn field(&mut self, key: &[u8], c: &mut Cursor<'a>) -> Option<()> {
        match key {
            b"messageType" => once(&mut self.message_type, c.string()?),
            b"owner" => once(&mut self.owner, c.string()?),
            b"logGroup" => once(&mut self.log_group, c.string()?),
            b"logStream" => once(&mut self.log_stream, c.string()?),
            // Written by CloudWatch, not read by natmeter (serde ignores them too, repeats
            // included); only their plain shapes are accepted here.
            b"subscriptionFilters" => c.string_array(),
            b"policyLevel" => c.string().map(drop),
            _ => None,
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
        let key = c.key()?;
        c.eat(b':')?;
        if key == b"logEvents" {
            once(&mut log_events, c.events()?)?;
        } else {
            head.field(key, &mut c)?;
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
/// key before `logEvents` is one [`payload`] reads, with a plain value, and `logStream` is there
/// once; otherwise `None` and the caller decodes the whole batch. (A raw byte search was fooled
/// by a nested `"logStream"` key: bad-input matrix.)
pub fn log_stream(head: &[u8]) -> Option<&str> {
    let mut c = Cursor { b: head, i: 0 };
    c.eat(b'{')?;
    let mut h = Head::default();
    loop {
        let key = c.key()?;
        c.eat(b':')?;
        if key == b"logEvents" {
            return h.log_stream;
        }
        h.field(key, &mut c)?;
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

    fn string_array(&mut self) -> Option<()> {
        self.eat(b'[')?;
        self.ws();
        if self.b.get(self.i) == Some(&b']') {
            self.i += 1;
            return Some(());
        }
        loop {
            self.string()?;
            match self.next()? {
                b',' => {}
                b']' => return Some(()),
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
    /// after the `{`: fixed keys compared as bytes.
    #[inline]
    fn canonical_event(&mut self) -> Option<LogEvent<'a>> {
        self.literal(b"\"id\":")?;
        let id = self.string()?;
        self.literal(b",\"timestamp\":")?;
        let timestamp = self.integer()?;
        self.literal(b",\"message\":")?;
        let message = self.string()?;
        self.literal(b"}")?;
        Some(LogEvent {
            id: Cow::Borrowed(id),
            timestamp,
            message: Cow::Borrowed(message),
        })
    }

    /// Any other event: keys in any order, with whitespace, `id` optional; after the `{`.
    fn event(&mut self) -> Option<LogEvent<'a>> {
        let (mut id, mut timestamp, mut message) = (None, None, None);
        loop {
            let key = self.key()?;
            self.eat(b':')?;
            match key {
                b"id" => once(&mut id, self.string()?)?,
                b"timestamp" => once(&mut timestamp, self.integer()?)?,
                b"message" => once(&mut message, self.string()?)?,
                _ => return None,
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
