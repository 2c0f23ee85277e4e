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

use crate::subscription::{LogEvent, MessageType, Payload};

/// Reads a canonical CloudWatch Logs payload, or returns `None` (the caller falls back to
/// serde_json).
pub fn payload(json: &[u8]) -> Option<Payload<'_>> {
    let mut c = Cursor { b: json, i: 0 };
    c.eat(b'{')?;
    let mut message_type: Option<&str> = None;
    let mut owner: Option<&str> = None;
    let mut log_group: Option<&str> = None;
    let mut log_stream: Option<&str> = None;
    let mut log_events: Option<Vec<LogEvent<'_>>> = None;
    loop {
        let key = c.key()?;
        c.eat(b':')?;
        match key {
            b"messageType" => once(&mut message_type, c.string()?)?,
            b"owner" => once(&mut owner, c.string()?)?,
            b"logGroup" => once(&mut log_group, c.string()?)?,
            b"logStream" => once(&mut log_stream, c.string()?)?,
            b"logEvents" => once(&mut log_events, c.events()?)?,
            // Written by CloudWatch, not read by natmeter (serde ignores them too, repeats
            // included); only their plain shapes are accepted here.
            b"subscriptionFilters" => c.string_array()?,
            b"policyLevel" => {
                c.string()?;
            }
            _ => return None,
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
    let message_type = match message_type? {
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
        owner: Cow::Borrowed(owner.unwrap_or("")),
        log_group: Cow::Borrowed(log_group.unwrap_or("")),
        log_stream: Cow::Borrowed(log_stream.unwrap_or("")),
        log_events,
    })
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
                n = n * 10 + i64::from(d - b'0');
                self.i += 1;
                if self.i - start > 18 {
                    return None;
                }
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
            events.push(LogEvent {
                id: Cow::Borrowed(id.unwrap_or("")),
                timestamp: timestamp?,
                message: Cow::Borrowed(message?),
            });
            match self.next()? {
                b',' => {}
                b']' => return Some(events),
                _ => return None,
            }
        }
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
        let m = special16(chunk);
        if m.stop != 0 {
            let at = i + m.stop.trailing_zeros() as usize;
            // Non-ASCII bytes after the quote belong to the next token: conservatively counted.
            ascii &= m.high == 0;
            return (b[at] == b'"').then_some((at, ascii));
        }
        ascii &= m.high == 0;
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

/// Bit masks over 16 bytes: `stop` marks `"`, `\` and bytes below 0x20; `high` marks bytes of
/// 0x80 and above.
struct Special {
    stop: u32,
    high: u32,
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn special16(chunk: &[u8; 16]) -> Special {
    use std::arch::x86_64::*;
    // SAFETY: SSE2 is part of the x86_64 baseline; the load is unaligned and reads exactly the
    // 16 bytes of `chunk`.
    unsafe {
        let x = _mm_loadu_si128(chunk.as_ptr().cast());
        let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
        let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
        // Signed compare: bytes 0x80.. are negative and match too; `high` takes them back out.
        let below = _mm_cmplt_epi8(x, _mm_set1_epi8(0x20));
        let high = _mm_movemask_epi8(x) as u32;
        let any = _mm_or_si128(_mm_or_si128(quote, backslash), below);
        Special {
            stop: _mm_movemask_epi8(any) as u32 & !high,
            high,
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[inline(always)]
fn special16(chunk: &[u8; 16]) -> Special {
    let lo = u64::from_le_bytes(chunk[..8].try_into().unwrap_or_default());
    let hi = u64::from_le_bytes(chunk[8..].try_into().unwrap_or_default());
    let (s0, h0) = special8_swar(lo);
    let (s1, h1) = special8_swar(hi);
    Special {
        stop: s0 | (s1 << 8),
        high: h0 | (h1 << 8),
    }
}

/// The portable version of [`special16`] for 8 bytes: one bit per byte, as `movemask` gives.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn special8_swar(x: u64) -> (u32, u32) {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const TOP3: u64 = 0xe0e0_e0e0_e0e0_e0e0;
    // High bit set exactly in the zero bytes of `y` (no false positives, unlike haszero).
    fn zero_bytes(y: u64) -> u64 {
        !(((y & LO7).wrapping_add(LO7)) | y | LO7)
    }
    let stop = zero_bytes(x ^ 0x2222_2222_2222_2222)
        | zero_bytes(x ^ 0x5c5c_5c5c_5c5c_5c5c)
        | zero_bytes(x & TOP3);
    let high = x & 0x8080_8080_8080_8080;
    (movemask(stop), movemask(high))
}

/// Gathers the high bit of each byte into the low 8 bits.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
#[inline(always)]
fn movemask(m: u64) -> u32 {
    ((((m >> 7) & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080)) >> 56) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_agree_with_the_portable_version() {
        let mut bytes: Vec<u8> = (0..=255u8).collect();
        bytes.extend(b"0123456789abcdef\"\\ \x1f\x7f\x80\xff");
        for w in bytes.windows(16) {
            let chunk: &[u8; 16] = w.try_into().unwrap();
            let want_stop = w
                .iter()
                .enumerate()
                .filter(|(_, &c)| c == b'"' || c == b'\\' || c < 0x20)
                .fold(0u32, |m, (i, _)| m | 1 << i);
            let want_high = w
                .iter()
                .enumerate()
                .filter(|(_, &c)| c >= 0x80)
                .fold(0u32, |m, (i, _)| m | 1 << i);
            let s = special16(chunk);
            assert_eq!((s.stop, s.high), (want_stop, want_high), "{w:?}");
            let (s0, h0) = special8_swar(u64::from_le_bytes(w[..8].try_into().unwrap()));
            let (s1, h1) = special8_swar(u64::from_le_bytes(w[8..].try_into().unwrap()));
            assert_eq!(
                (s0 | s1 << 8, h0 | h1 << 8),
                (want_stop, want_high),
                "{w:?}"
            );
        }
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
