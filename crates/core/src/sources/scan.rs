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
//!   tripling the payload: skipped without being built, checked 64 bytes at a time;
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

use super::payload::{LogEvent, MessageType, Payload};

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
    /// strings, no whitespace. Its strings are short (a flow-log field and its name, ~12 bytes
    /// with their quotes), so they are not walked one by one: 64 bytes at a time, the quotes
    /// give the strings (a prefix XOR marks the bytes inside them), and the whole block is
    /// checked at once. Outside the strings there must be exactly one byte after each closing
    /// quote: `:` after a key, `,` after a value, or the `}` that ends the object; no backslash
    /// or control character anywhere. Walking the strings one by one (a search for each
    /// quote) mispredicted a branch every few strings and took a fifth of such a batch's time,
    /// 9% more than this. `None` at anything else (the caller then skips the object in general).
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
        let mut base = self.i;
        // Carried from block to block: inside a string; inside the span from a key's closing
        // quote to its value's; the last byte was a key's / a value's closing quote.
        let (mut in_string, mut after_key, mut key_close, mut value_close) = (0u64, 0u64, 0, 0);
        loop {
            if base >= b.len() {
                return None;
            }
            let m = Masks::of(b, base);
            let inside = prefix_xor(m.quote) ^ in_string;
            let closes = m.quote & !inside;
            let key_span = prefix_xor(closes) ^ after_key;
            let (key_closes, value_closes) = (closes & key_span, closes & !key_span);
            let after_keys = key_closes << 1 | key_close;
            let after_values = value_closes << 1 | value_close;
            // The object ends at the first byte after a value that is not a comma (it must be
            // the `}`, checked once below); bits past it are not the object's bytes.
            let ends = after_values & !m.comma;
            let mine = match ends {
                0 => !0,
                e => u64::MAX >> (63 - e.trailing_zeros()),
            };
            let outside = !inside & !m.quote;
            let wrong = m.other | (outside ^ (after_keys | after_values)) | (after_keys & !m.colon);
            if wrong & mine != 0 {
                return None;
            }
            if ends != 0 {
                let end = base + ends.trailing_zeros() as usize;
                if *b.get(end)? != b'}' {
                    return None;
                }
                self.i = end + 1;
                return Some(());
            }
            in_string = (inside >> 63).wrapping_neg();
            after_key = (key_span >> 63).wrapping_neg();
            key_close = key_closes >> 63;
            value_close = value_closes >> 63;
            base += 64;
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

/// XOR of bits 0..=i in bit i: set inside a string when `x` marks its quotes (the opening
/// quote included, the closing one not).
#[inline(always)]
fn prefix_xor(mut x: u64) -> u64 {
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    x
}

/// The bytes of `b[base..base + 64]` that [`Cursor::skip_string_object`] looks at, as masks
/// (bit k for byte `base + k`). Past the end of `b` every byte counts as a control character,
/// so a scan never runs off the input without noticing.
#[derive(Debug, PartialEq, Eq)]
struct Masks {
    quote: u64,
    /// `\` and bytes below 0x20.
    other: u64,
    colon: u64,
    comma: u64,
}

impl Masks {
    #[inline(always)]
    fn of(b: &[u8], base: usize) -> Masks {
        match b.get(base..base + 64) {
            Some(w) => classes::masks(w.try_into().expect("64 bytes")),
            None => Masks::tail(b, base),
        }
    }

    /// The last bytes of the input, padded with zeros (controls).
    #[cold]
    fn tail(b: &[u8], base: usize) -> Masks {
        let mut window = [0u8; 64];
        let rest = b.get(base..).unwrap_or(&[]);
        window[..rest.len()].copy_from_slice(rest);
        classes::masks(&window)
    }
}

/// [`Masks`] of 64 bytes: SSE2 on x86_64 (its baseline), SWAR elsewhere (the arm64 Lambda).
#[cfg(target_arch = "x86_64")]
mod classes {
    use super::Masks;
    use std::arch::x86_64::*;

    #[inline(always)]
    pub fn masks(w: &[u8; 64]) -> Masks {
        let mut m = Masks {
            quote: 0,
            other: 0,
            colon: 0,
            comma: 0,
        };
        for (k, chunk) in w.chunks_exact(16).enumerate() {
            // SAFETY: SSE2 is part of the x86_64 baseline; the one memory access is an unaligned
            // load of exactly these 16 bytes.
            unsafe {
                let x = _mm_loadu_si128(chunk.as_ptr().cast());
                let eq =
                    |c: u8| _mm_movemask_epi8(_mm_cmpeq_epi8(x, _mm_set1_epi8(c as i8))) as u16;
                let low = _mm_set1_epi8(0x1f);
                let controls = _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_max_epu8(x, low), low)) as u16;
                let at = 16 * k;
                m.quote |= u64::from(eq(b'"')) << at;
                m.other |= u64::from(eq(b'\\') | controls) << at;
                m.colon |= u64::from(eq(b':')) << at;
                m.comma |= u64::from(eq(b',')) << at;
            }
        }
        m
    }
}

#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
mod swar {
    use super::Masks;

    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;

    /// High bit set exactly in the zero bytes of `y`.
    #[inline(always)]
    fn zero_bytes(y: u64) -> u64 {
        !(((y & LO7).wrapping_add(LO7)) | y | LO7)
    }

    /// The high bit of each byte gathered into the low 8 bits.
    #[inline(always)]
    fn movemask(m: u64) -> u64 {
        (((m >> 7) & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080)) >> 56
    }

    #[inline(always)]
    fn eq(x: u64, c: u8) -> u64 {
        movemask(zero_bytes(x ^ (u64::from(c) * 0x0101_0101_0101_0101)))
    }

    #[inline(always)]
    pub fn masks(w: &[u8; 64]) -> Masks {
        let mut m = Masks {
            quote: 0,
            other: 0,
            colon: 0,
            comma: 0,
        };
        for (k, chunk) in w.chunks_exact(8).enumerate() {
            let x = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            let at = 8 * k;
            let controls = movemask(zero_bytes(x & 0xe0e0_e0e0_e0e0_e0e0));
            m.quote |= eq(x, b'"') << at;
            m.other |= (eq(x, b'\\') | controls) << at;
            m.colon |= eq(x, b':') << at;
            m.comma |= eq(x, b',') << at;
        }
        m
    }
}

#[cfg(not(target_arch = "x86_64"))]
use swar as classes;

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
    fn masks_match_their_definition_on_every_byte() {
        let mut bytes: Vec<u8> = (0..=255u8).collect();
        bytes.extend((0..=255u8).rev());
        bytes.extend(b"{\"a\":\"b\",\"c\":\"d\"}\\ \x1f\x20\x7f\x80\xff:,}\t\n");
        let mask = |w: &[u8], f: &dyn Fn(u8) -> bool| {
            w.iter()
                .enumerate()
                .filter(|(_, &c)| f(c))
                .fold(0u64, |m, (i, _)| m | 1 << i)
        };
        for w in bytes
            .windows(64)
            .chain(std::iter::once(&bytes[bytes.len() - 20..]))
        {
            let mut padded = [0u8; 64];
            padded[..w.len()].copy_from_slice(w);
            let want = Masks {
                quote: mask(&padded, &|c| c == b'"'),
                other: mask(&padded, &|c| c == b'\\' || c < 0x20),
                colon: mask(&padded, &|c| c == b':'),
                comma: mask(&padded, &|c| c == b','),
            };
            assert_eq!(Masks::of(w, 0), want, "{w:?}");
            assert_eq!(swar::masks(&padded), want, "{w:?}");
        }
    }

    /// The object [`Cursor::skip_string_object`] takes, read the obvious way, byte by byte:
    /// where it ends, or `None`.
    fn string_object_end(b: &[u8], mut i: usize) -> Option<usize> {
        if *b.get(i)? == b'}' {
            return Some(i + 1);
        }
        let string = |i: &mut usize| -> Option<()> {
            (*b.get(*i)? == b'"').then_some(())?;
            *i += 1;
            loop {
                match *b.get(*i)? {
                    b'"' => break,
                    b'\\' | 0..=0x1f => return None,
                    _ => *i += 1,
                }
            }
            *i += 1;
            Some(())
        };
        loop {
            string(&mut i)?;
            (*b.get(i)? == b':').then_some(())?;
            i += 1;
            string(&mut i)?;
            match *b.get(i)? {
                b',' => i += 1,
                b'}' => return Some(i + 1),
                _ => return None,
            }
        }
    }

    #[test]
    fn string_objects_are_skipped_as_read_byte_by_byte() {
        // Objects of every length class, shifted so that each byte meets each block boundary,
        // then each byte replaced by each byte that matters.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let mut objects = vec![b"}".to_vec(), b"\"\":\"\"}".to_vec()];
        for _ in 0..12 {
            let mut o = Vec::new();
            for p in 0..next(12) + 1 {
                if p > 0 {
                    o.push(b',');
                }
                for _ in 0..2 {
                    o.push(b'"');
                    for _ in 0..next(30) {
                        o.push(b"abc 09.-_/xyzAZ#"[next(16) as usize]);
                    }
                    o.push(b'"');
                    o.push(b':');
                }
                o.pop();
            }
            o.push(b'}');
            objects.push(o);
        }
        let mut checked = 0;
        for o in &objects {
            for shift in 0..64 {
                let mut b = vec![b'x'; shift];
                b.extend_from_slice(o);
                b.extend_from_slice(b"]}tail");
                let mut variants = vec![b.clone()];
                for at in shift..shift + o.len() {
                    for c in [b'"', b'\\', b':', b',', b'}', b' ', b'a', 0x01, 0xc3] {
                        let mut v = b.clone();
                        v[at] = c;
                        variants.push(v);
                    }
                }
                // Cut short, too.
                variants.push(b[..shift + o.len() - 1].to_vec());
                for v in variants {
                    let mut c = Cursor { b: &v, i: shift };
                    let got = c.skip_string_object().map(|()| c.i);
                    assert_eq!(
                        got,
                        string_object_end(&v, shift),
                        "{:?}",
                        String::from_utf8_lossy(&v)
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 50_000, "{checked}");
    }

    #[test]
    fn prefix_xor_marks_the_insides_of_strings() {
        // "ab":"c" → quotes at 0, 3, 5, 7.
        let q = 1 | 1 << 3 | 1 << 5 | 1 << 7;
        assert_eq!(prefix_xor(q), 0b0110_0111);
        assert_eq!(prefix_xor(1 << 63), 1 << 63);
        assert_eq!(prefix_xor(1), u64::MAX);
    }

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
