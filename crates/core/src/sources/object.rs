//! A flow-log object read as it streams in: an S3 object (gzip text, S3 delivery's `.log.gz`, or
//! plain text), pushed piece by piece as the body arrives, handed to the engine as [`Text`]
//! inputs of whole lines. Memory is bounded by the piece and a megabyte of text, whatever the
//! object's size (a 75 MB gzip object inflates to ~10x that; docs/s3.md §2).
//!
//! Gzip members are inflated one after another as S3 writes them (a delivery may concatenate
//! several), each checked against its trailer's CRC-32 and length; an object that ends inside a
//! member is an error, never a short count. The header line names the object's fields
//! (S3 delivery always writes one); an object without one is read in the caller's default
//! format, as the CLI reads a text file.

use flowlog::Format;

use super::gzip::{gzip_header_len, GZIP_HEADER_INCOMPLETE};
use super::Text;

/// Lines are handed over once this much text is waiting: big enough that the per-call cost
/// vanishes, small enough to stay in cache and bound the memory.
pub const TEXT_CHUNK: usize = 1 << 20;

/// Why an object could not be read. The caller adds the bucket and key.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ObjectError {
    #[error("not valid gzip at compressed byte {offset}: {message}")]
    Gzip { offset: u64, message: String },
    #[error(
        "truncated: the object ends inside gzip member {member} (after {offset} compressed bytes)"
    )]
    Truncated { member: u64, offset: u64 },
    #[error("header line: {0}")]
    Header(String),
}

#[derive(Debug)]
enum State {
    /// Before a member's header (the first, or after a trailer).
    Header,
    /// Inside a member's deflate stream.
    Body,
    /// After a member's deflate stream: its 8-byte trailer.
    Trailer,
}

#[derive(Debug)]
struct Inflate {
    z: flate2::Decompress,
    state: State,
    /// Compressed bytes not yet used (a header or trailer split across pieces; the inflater
    /// takes the rest straight from the piece).
    pending: Vec<u8>,
    crc: crc32fast::Hasher,
    member_len: u64,
    members: u64,
    /// Compressed bytes consumed before `pending`, for error messages.
    offset: u64,
}

/// One object's body, in pieces.
#[derive(Debug)]
pub struct ObjectText {
    /// `None` until the first byte tells gzip from plain text; `Some(None)` for plain text.
    inflate: Option<Option<Inflate>>,
    text: Vec<u8>,
    /// The header's format, once the first line was seen (`Some(None)`: no header line).
    format: Option<Option<Format>>,
    /// The number of the first line in `text`.
    line: u64,
    /// Decoded bytes so far.
    decoded: u64,
}

impl Default for ObjectText {
    fn default() -> Self {
        ObjectText::new()
    }
}

impl ObjectText {
    pub fn new() -> ObjectText {
        ObjectText {
            inflate: None,
            text: Vec::with_capacity(TEXT_CHUNK + (64 << 10)),
            format: None,
            line: 1,
            decoded: 0,
        }
    }

    /// Decoded bytes so far.
    pub fn decoded_bytes(&self) -> u64 {
        self.decoded
    }

    /// Whether the object is gzip (known after the first byte).
    pub fn is_gzip(&self) -> Option<bool> {
        self.inflate.as_ref().map(Option::is_some)
    }

    /// Adds the next piece of the body; `f` receives every run of whole lines ready.
    pub fn push(
        &mut self,
        piece: &[u8],
        origin: &str,
        fallback_time: i64,
        f: &mut dyn FnMut(Text<'_>),
    ) -> Result<(), ObjectError> {
        if piece.is_empty() {
            return Ok(());
        }
        let inflate = self.inflate.get_or_insert_with(|| {
            piece.starts_with(&[0x1f]).then(|| Inflate {
                z: flate2::Decompress::new(false),
                state: State::Header,
                pending: Vec::new(),
                crc: crc32fast::Hasher::new(),
                member_len: 0,
                members: 0,
                offset: 0,
            })
        });
        match inflate {
            None => {
                let mut rest = piece;
                while !rest.is_empty() {
                    let take = rest.len().min(TEXT_CHUNK);
                    self.text.extend_from_slice(&rest[..take]);
                    self.decoded += take as u64;
                    rest = &rest[take..];
                    self.hand_over(false, origin, fallback_time, f)?;
                }
                Ok(())
            }
            Some(_) => self.inflate_piece(piece, origin, fallback_time, f),
        }
    }

    fn inflate_piece(
        &mut self,
        piece: &[u8],
        origin: &str,
        fallback_time: i64,
        f: &mut dyn FnMut(Text<'_>),
    ) -> Result<(), ObjectError> {
        let mut rest = piece;
        loop {
            let z = self
                .inflate
                .as_mut()
                .and_then(Option::as_mut)
                .expect("inflate_piece is called for gzip objects only");
            match z.state {
                State::Header | State::Trailer => {
                    let need_trailer = matches!(z.state, State::Trailer);
                    // Headers and trailers are tiny: gather them in `pending` across pieces.
                    let take = rest.len().min(if need_trailer { 8 } else { 64 << 10 });
                    z.pending.extend_from_slice(&rest[..take]);
                    rest = &rest[take..];
                    if need_trailer {
                        if z.pending.len() < 8 {
                            return Ok(());
                        }
                        let t = &z.pending[..8];
                        let crc = u32::from_le_bytes([t[0], t[1], t[2], t[3]]);
                        let size = u32::from_le_bytes([t[4], t[5], t[6], t[7]]);
                        let got = std::mem::take(&mut z.crc).finalize();
                        if got != crc || size != z.member_len as u32 {
                            return Err(ObjectError::Gzip {
                                offset: z.offset,
                                message: format!(
                                    "gzip member {} fails its trailer's check (CRC-32 or length): the data is corrupt",
                                    z.members
                                ),
                            });
                        }
                        z.offset += 8;
                        let after: Vec<u8> = z.pending.split_off(8);
                        z.pending = after;
                        z.state = State::Header;
                        z.members += 1;
                        z.member_len = 0;
                        if z.pending.is_empty() && rest.is_empty() {
                            return Ok(());
                        }
                        continue;
                    }
                    if z.pending.is_empty() {
                        return Ok(());
                    }
                    match gzip_header_len(&z.pending) {
                        Ok(n) => {
                            z.offset += n as u64;
                            let body: Vec<u8> = z.pending.split_off(n);
                            z.pending = Vec::new();
                            z.z.reset(false);
                            z.state = State::Body;
                            // What followed the header in `pending` is deflate data: inflate
                            // it first, then the rest of the piece.
                            if !body.is_empty() {
                                self.inflate_piece(&body, origin, fallback_time, f)?;
                            }
                            if rest.is_empty() {
                                return Ok(());
                            }
                        }
                        Err(e) if e.to_string().contains(GZIP_HEADER_INCOMPLETE) => {
                            if rest.is_empty() {
                                return Ok(());
                            }
                        }
                        Err(e) => {
                            return Err(ObjectError::Gzip {
                                offset: z.offset,
                                message: e.to_string(),
                            })
                        }
                    }
                }
                State::Body => {
                    if rest.is_empty() {
                        return Ok(());
                    }
                    if self.text.capacity() - self.text.len() < (64 << 10) {
                        self.text.reserve(256 << 10);
                    }
                    let z = self
                        .inflate
                        .as_mut()
                        .and_then(Option::as_mut)
                        .expect("gzip");
                    let (in0, out0) = (z.z.total_in(), self.text.len());
                    let status =
                        z.z.decompress_vec(rest, &mut self.text, flate2::FlushDecompress::None)
                            .map_err(|e| ObjectError::Gzip {
                                offset: z.offset,
                                message: format!("corrupt deflate stream: {e}"),
                            })?;
                    let used = (z.z.total_in() - in0) as usize;
                    rest = &rest[used..];
                    z.offset += used as u64;
                    let produced = &self.text[out0..];
                    z.crc.update(produced);
                    z.member_len += produced.len() as u64;
                    self.decoded += produced.len() as u64;
                    if let flate2::Status::StreamEnd = status {
                        z.state = State::Trailer;
                    }
                    self.hand_over(false, origin, fallback_time, f)?;
                }
            }
        }
    }

    /// The body ended: checks that no gzip member was cut short and hands over the last lines.
    pub fn finish(
        &mut self,
        origin: &str,
        fallback_time: i64,
        f: &mut dyn FnMut(Text<'_>),
    ) -> Result<(), ObjectError> {
        if let Some(Some(z)) = &self.inflate {
            let clean = matches!(z.state, State::Header) && z.pending.is_empty();
            if !clean {
                return Err(ObjectError::Truncated {
                    member: z.members + 1,
                    offset: z.offset + z.pending.len() as u64,
                });
            }
        }
        self.hand_over(true, origin, fallback_time, f)
    }

    /// Hands over the whole lines waiting once there are enough of them (all of them at the
    /// end), reading the header line first.
    fn hand_over(
        &mut self,
        last: bool,
        origin: &str,
        fallback_time: i64,
        f: &mut dyn FnMut(Text<'_>),
    ) -> Result<(), ObjectError> {
        if self.format.is_none() {
            let Some(end) = self
                .text
                .iter()
                .position(|&b| b == b'\n')
                .or(last.then_some(self.text.len()))
            else {
                return Ok(());
            };
            let first = std::str::from_utf8(&self.text[..end]).unwrap_or("");
            let first = first.strip_suffix('\r').unwrap_or(first);
            if Format::looks_like_header(first) {
                let fmt =
                    Format::from_header(first).map_err(|e| ObjectError::Header(e.to_string()))?;
                self.format = Some(Some(fmt));
                self.text.drain(..(end + 1).min(self.text.len()));
                self.line = 2;
            } else {
                self.format = Some(None);
            }
        }
        if !last && self.text.len() < TEXT_CHUNK {
            return Ok(());
        }
        let end = if last {
            self.text.len()
        } else {
            match self.text.iter().rposition(|&b| b == b'\n') {
                Some(e) => e + 1,
                None => return Ok(()),
            }
        };
        if end == 0 {
            return Ok(());
        }
        let format = self.format.as_ref().and_then(Option::as_ref);
        f(Text {
            bytes: &self.text[..end],
            format,
            origin,
            first_line: self.line,
            fallback_time,
        });
        self.line += super::detect::count_newlines(&self.text[..end]);
        self.text.drain(..end);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(b: &[u8]) -> Vec<u8> {
        crate::sources::gzip::gzip_at(b, flate2::Compression::fast())
    }

    /// Every handed-over text, concatenated, the line numbers each started at, its format.
    type Read = (Vec<u8>, Vec<u64>, Option<String>);

    fn read(body: &[u8], piece: usize) -> Result<Read, ObjectError> {
        let mut o = ObjectText::new();
        let (mut text, mut lines, mut fmt) = (Vec::new(), Vec::new(), None);
        let mut f = |t: Text<'_>| {
            text.extend_from_slice(t.bytes);
            lines.push(t.first_line);
            fmt = t.format.map(|f| f.to_aws_syntax());
        };
        for p in body.chunks(piece.max(1)) {
            o.push(p, "o", 0, &mut f)?;
        }
        o.finish("o", 0, &mut f)?;
        Ok((text, lines, fmt))
    }

    fn sample(n: usize) -> Vec<u8> {
        let mut s = b"version account-id interface-id srcaddr dstaddr srcport dstport protocol packets bytes start end action log-status\n".to_vec();
        for i in 0..n {
            writeln!(s, "2 123456789010 eni-1 10.0.{}.{} 52.1.2.3 443 {} 6 10 {} 1600000000 1600000060 ACCEPT OK", i % 256, i % 200, 1024 + i % 60000, 100 + i).unwrap();
        }
        s
    }

    #[test]
    fn any_piece_size_reads_the_same_lines_as_the_whole_text() {
        let s = sample(30_000);
        let body_lines = &s[s.iter().position(|&b| b == b'\n').unwrap() + 1..];
        let z = gz(&s);
        for piece in [1, 7, 100, 4096, 1 << 16, z.len()] {
            let (text, lines, fmt) = read(&z, piece).unwrap();
            assert_eq!(text, body_lines, "piece {piece}");
            assert_eq!(lines[0], 2);
            assert!(fmt.unwrap().starts_with("${version}"));
        }
        let (text, ..) = read(&s, 999).unwrap();
        assert_eq!(text, body_lines);
    }

    #[test]
    fn line_numbers_continue_across_hand_overs() {
        let s = sample(60_000);
        let mut o = ObjectText::new();
        let mut seen = Vec::new();
        let mut f = |t: Text<'_>| {
            seen.push((t.first_line, count_lines(t.bytes)));
        };
        for p in s.chunks(100_000) {
            o.push(p, "o", 0, &mut f).unwrap();
        }
        o.finish("o", 0, &mut f).unwrap();
        assert!(seen.len() > 2);
        let mut next = 2;
        for (first, n) in seen {
            assert_eq!(first, next);
            next += n;
        }
        assert_eq!(next, 60_002);
    }

    fn count_lines(b: &[u8]) -> u64 {
        b.iter().filter(|&&c| c == b'\n').count() as u64
    }

    #[test]
    fn concatenated_members_are_one_object() {
        let s = sample(5000);
        let cut = s.len() / 3;
        let mut z = gz(&s[..cut]);
        z.extend(gz(&s[cut..]));
        let whole = read(&gz(&s), 4096).unwrap();
        for piece in [3, 4096, z.len()] {
            assert_eq!(read(&z, piece).unwrap().0, whole.0);
        }
    }

    #[test]
    fn a_cut_object_is_an_error_not_a_short_count() {
        let z = gz(&sample(5000));
        for cut in [5, 20, z.len() / 2, z.len() - 3] {
            let e = read(&z[..cut], 1000).unwrap_err();
            assert!(
                matches!(e, ObjectError::Truncated { member: 1, .. }),
                "{cut}: {e}"
            );
        }
        let mut two = z.clone();
        two.extend_from_slice(&z[..z.len() / 2]);
        assert!(matches!(
            read(&two, 4096).unwrap_err(),
            ObjectError::Truncated { member: 2, .. }
        ));
    }

    #[test]
    fn corrupt_data_fails_its_check() {
        let mut z = gz(&sample(2000));
        let n = z.len();
        z[n - 6] ^= 0xff; // the CRC
        assert!(matches!(
            read(&z, 512).unwrap_err(),
            ObjectError::Gzip { .. }
        ));
        let mut z = gz(&sample(2000));
        z[2] = 7; // compression method
        assert!(matches!(
            read(&z, 512).unwrap_err(),
            ObjectError::Gzip { .. }
        ));
    }

    #[test]
    fn an_object_without_a_header_is_in_the_default_format() {
        let (text, lines, fmt) = read(b"2 1 eni-1 a b\n2 1 eni-1 c d", 3).unwrap();
        assert_eq!(text, b"2 1 eni-1 a b\n2 1 eni-1 c d");
        assert_eq!((lines[0], fmt), (1, None));
    }

    #[test]
    fn a_bad_header_names_the_problem() {
        let e = read(b"version srcaddr srcaddr\n2 a b\n", 64).unwrap_err();
        assert!(
            matches!(&e, ObjectError::Header(m) if m.contains("srcaddr")),
            "{e}"
        );
    }
}
