//! Gzip, one implementation for every input: subscription batches (`awslogs.data`), and the
//! `.gz` files and S3 objects the CLI reads.
//!
//! The framing (RFC 1952) is handled here rather than by `flate2::read::MultiGzDecoder`: each
//! member's raw deflate stream is inflated whole by libdeflate straight into the caller's
//! buffer (sized once from the trailer), the inflaters are kept from batch to batch instead of
//! allocated per member, and the CRC-32 is checked with crc32fast's SIMD code, which profiling
//! showed to be a tenth of the whole hot path when left to the inflater's portable CRC.
//!
//! libdeflate rather than zlib-rs for whole members: it needs the whole output buffer, which a
//! batch has anyway, and in exchange keeps no window to copy through; on the bench's NAT-heavy
//! corpus it inflated 1.66x as fast (3,790 against 2,280 MB/s, one thread), and inflating was a
//! fifth of `natmeter report`'s time. zlib-rs stays for what must stream: the first kilobyte a
//! batch is recognised by (`Decoder::decode_or_skip`), S3 objects (`object::ObjectText`), and
//! the exact error of a member libdeflate refuses (it says only "bad data"). `natmeter bench`
//! measures this against `MultiGzDecoder` on the same batches (docs/testing.md, benchmarks).

use std::ptr::NonNull;

use super::payload::DecodeError;

pub(crate) fn gzip_error(msg: &str) -> DecodeError {
    DecodeError::Gzip(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        msg.to_string(),
    ))
}

/// What [`gzip_header_len`] says when `b` ends inside the header: a streaming reader waits for
/// more bytes instead (`object::ObjectText`).
pub const GZIP_HEADER_INCOMPLETE: &str = "unexpected end of file in the gzip header";

/// Length of a gzip member header (RFC 1952 §2.3), or why it is not one.
pub fn gzip_header_len(b: &[u8]) -> Result<usize, DecodeError> {
    let eof = || gzip_error(GZIP_HEADER_INCOMPLETE);
    if b.len() < 10 {
        return Err(eof());
    }
    if b[0] != 0x1f || b[1] != 0x8b {
        return Err(gzip_error("invalid gzip header (not gzip data)"));
    }
    if b[2] != 8 {
        return Err(gzip_error("unsupported gzip compression method"));
    }
    let flags = b[3];
    if flags & 0xe0 != 0 {
        return Err(gzip_error("invalid gzip header (reserved flags set)"));
    }
    let mut pos = 10;
    if flags & 0x04 != 0 {
        let xlen = b.get(pos..pos + 2).ok_or_else(eof)?;
        pos += 2 + usize::from(u16::from_le_bytes([xlen[0], xlen[1]]));
    }
    for flag in [0x08u8, 0x10] {
        if flags & flag != 0 {
            let nul = b
                .get(pos..)
                .and_then(|r| r.iter().position(|&c| c == 0))
                .ok_or_else(eof)?;
            pos += nul + 1;
        }
    }
    if flags & 0x02 != 0 {
        pos += 2;
    }
    if pos > b.len() {
        return Err(eof());
    }
    Ok(pos)
}

/// The ISIZE field of a gzip stream's trailer.
pub fn gzip_isize(gz: &[u8]) -> Option<usize> {
    if !gz.starts_with(&[0x1f, 0x8b]) {
        return None;
    }
    let t: [u8; 4] = gz.get(gz.len().checked_sub(4)?..)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(t)).ok()
}

/// The inflaters [`inflate_members`] keeps across batches: libdeflate for whole members, and
/// zlib-rs for a member's head and for the errors of a member libdeflate refuses.
pub struct Inflater {
    /// zlib-rs, raw deflate (the framing is ours).
    pub(crate) zlib: flate2::Decompress,
    whole: Whole,
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater {
            zlib: flate2::Decompress::new(false),
            whole: Whole::new(),
        }
    }
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inflater").finish_non_exhaustive()
    }
}

/// A libdeflate decompressor: a few KB of Huffman tables, no window and no stream state
/// between calls.
struct Whole(NonNull<libdeflate_sys::libdeflate_decompressor>);

// SAFETY: the decompressor is plain memory that libdeflate touches only inside a call, and
// `&mut self` makes calls exclusive; nothing in it is tied to the thread that allocated it.
unsafe impl Send for Whole {}

impl Whole {
    fn new() -> Whole {
        // SAFETY: no arguments; a null return is an allocation failure, handled below.
        let raw = unsafe { libdeflate_sys::libdeflate_alloc_decompressor() };
        match NonNull::new(raw) {
            Some(d) => Whole(d),
            None => std::alloc::handle_alloc_error(std::alloc::Layout::new::<[u8; 32 << 10]>()),
        }
    }

    /// Inflates the raw deflate stream at the start of `input` into `out`'s spare capacity, at
    /// most `room` bytes of it: `Ok(Some(consumed))` when the stream ended (its bytes
    /// appended), `Ok(None)` when it needs more room, `Err(())` when libdeflate refuses it.
    fn member(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        room: usize,
    ) -> Result<Option<usize>, ()> {
        let spare = out.spare_capacity_mut();
        let room = room.min(spare.len());
        let (mut consumed, mut produced) = (0usize, 0usize);
        // SAFETY: `input` is readable for its length; `spare` is writable for `room` bytes
        // (libdeflate writes only inside the buffer it is given, and only initialised bytes are
        // kept: `produced` of them, which it reports having written); both out-pointers are
        // valid for the call.
        let r = unsafe {
            libdeflate_sys::libdeflate_deflate_decompress_ex(
                self.0.as_ptr(),
                input.as_ptr().cast(),
                input.len(),
                spare.as_mut_ptr().cast(),
                room,
                &mut consumed,
                &mut produced,
            )
        };
        match r {
            libdeflate_sys::libdeflate_result_LIBDEFLATE_SUCCESS => {
                debug_assert!(consumed <= input.len() && produced <= room);
                // SAFETY: libdeflate wrote `produced` bytes at the start of the spare capacity.
                unsafe { out.set_len(out.len() + produced) };
                Ok(Some(consumed))
            }
            libdeflate_sys::libdeflate_result_LIBDEFLATE_INSUFFICIENT_SPACE => Ok(None),
            _ => Err(()),
        }
    }
}

impl Drop for Whole {
    fn drop(&mut self) {
        // SAFETY: allocated by `libdeflate_alloc_decompressor`, freed once.
        unsafe { libdeflate_sys::libdeflate_free_decompressor(self.0.as_ptr()) }
    }
}

/// Inflates every member into `out`. With `resume`, `Some(consumed)`, the whole first member
/// was inflated by `Decoder::decode_or_skip`'s head from the first `consumed` compressed bytes
/// (its header included) and is what `out` holds: only its trailer is checked.
pub fn inflate_members(
    inflate: &mut Inflater,
    compressed: &[u8],
    max: usize,
    out: &mut Vec<u8>,
    mut resume: Option<usize>,
) -> Result<(), DecodeError> {
    // The trailer's ISIZE is the decoded size (mod 2^32, of the last member): reserve it
    // exactly so the buffer is allocated once. Only a hint: the limit below is what binds.
    if let Some(isize) = gzip_isize(compressed).filter(|n| *n <= max) {
        out.reserve_exact(isize.saturating_sub(out.len()));
    }
    let mut rest: &[u8] = compressed;
    loop {
        let start;
        if let Some(consumed) = resume.take() {
            start = 0;
            rest = &rest[consumed..];
        } else {
            start = out.len();
            rest = &rest[gzip_header_len(rest)?..];
            rest = &rest[whole_member(inflate, rest, max, out)?..];
        }
        if out.len() > max {
            return Err(DecodeError::TooLarge { max });
        }
        let trailer = rest
            .get(..8)
            .ok_or_else(|| gzip_error("unexpected end of file (missing gzip trailer)"))?;
        let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        let size = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
        let member = &out[start..];
        if crc32fast::hash(member) != crc {
            return Err(gzip_error("CRC-32 mismatch: the data is corrupt"));
        }
        if size != member.len() as u32 {
            return Err(gzip_error(
                "length mismatch in the gzip trailer: the data is corrupt",
            ));
        }
        rest = &rest[8..];
        if rest.is_empty() {
            return Ok(());
        }
    }
}

/// Inflates the raw deflate stream at the start of `rest` onto `out`, which may hold at most
/// `max` bytes in all, and returns the compressed bytes it took. A stream libdeflate refuses is
/// inflated again by zlib-rs, whose error says what is wrong (truncated, or which corruption).
fn whole_member(
    inflate: &mut Inflater,
    rest: &[u8],
    max: usize,
    out: &mut Vec<u8>,
) -> Result<usize, DecodeError> {
    // Room for one byte past `max`: a stream that does not fit is known to be too big.
    let limit = max.saturating_add(1);
    let start = out.len();
    loop {
        let room = (out.capacity() - out.len()).min(limit.saturating_sub(out.len()));
        if room > 0 {
            match inflate.whole.member(rest, out, room) {
                Ok(Some(consumed)) => return Ok(consumed),
                Ok(None) if out.len() + room >= limit => return Err(DecodeError::TooLarge { max }),
                Ok(None) => {}
                Err(()) => {
                    out.truncate(start);
                    return zlib_member(&mut inflate.zlib, rest, max, out);
                }
            }
        }
        // Not enough room: double it (up to the limit) and inflate the stream again. Only a
        // member that is not the last (the hint was another's ISIZE) or a lying trailer pays.
        let want = (out.capacity() * 2).max(out.len() + 64 * 1024).min(limit);
        out.reserve_exact(want - out.len());
    }
}

/// [`whole_member`] by zlib-rs, streaming: for the exact error of a stream libdeflate refused.
fn zlib_member(
    inflate: &mut flate2::Decompress,
    mut rest: &[u8],
    max: usize,
    out: &mut Vec<u8>,
) -> Result<usize, DecodeError> {
    let len = rest.len();
    inflate.reset(false);
    loop {
        if out.len() > max {
            return Err(DecodeError::TooLarge { max });
        }
        if out.len() == out.capacity() {
            let grow = out.capacity().max(64 * 1024).min(max + 1 - out.len());
            out.reserve_exact(grow);
        }
        let before_in = inflate.total_in();
        let before_out = out.len();
        let status = inflate
            .decompress_vec(rest, out, flate2::FlushDecompress::None)
            .map_err(|e| gzip_error(&format!("corrupt deflate stream: {e}")))?;
        let consumed = (inflate.total_in() - before_in) as usize;
        rest = &rest[consumed..];
        match status {
            flate2::Status::StreamEnd => return Ok(len - rest.len()),
            _ if consumed == 0 && out.len() == before_out && out.len() < out.capacity() => {
                return Err(gzip_error("unexpected end of file (truncated gzip stream)"));
            }
            _ => {}
        }
    }
}

/// Inflates a whole gzip file (every member) with a fresh inflater, refusing more than `max`
/// decoded bytes: a `.gz` flow-log file or S3 object read whole.
pub fn gunzip(compressed: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    inflate_members(&mut Inflater::default(), compressed, max, &mut out, None)?;
    Ok(out)
}

/// `data` as one gzip member at `level` (flate2's encoder), for tests.
#[cfg(test)]
pub(crate) fn gzip_at(data: &[u8], level: flate2::Compression) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), level);
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        gzip_at(data, flate2::Compression::default())
    }

    /// Text that compresses like flow-log lines do (many blocks, varied symbols).
    fn text(lines: usize, seed: u64) -> Vec<u8> {
        let mut s = String::new();
        for i in 0..lines as u64 {
            let x = (i ^ seed).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            s.push_str(&format!(
                "2 123456789012 eni-{:017x} 10.0.{}.{} 52.{}.{}.{} {} 443 6 {} {} 1700000000 1700000060 ACCEPT OK\n",
                x >> 8,
                x % 200,
                (x >> 12) % 250,
                (x >> 20) % 250,
                (x >> 28) % 250,
                (x >> 36) % 250,
                (x >> 40) % 60000,
                (x >> 44) % 90,
                (x >> 48) % 900_000,
            ));
        }
        s.into_bytes()
    }

    /// Members of different sizes in one stream: the trailer's ISIZE is the last member's, so
    /// the first, bigger one must grow the buffer and be inflated again, and still come out
    /// whole, in order.
    #[test]
    fn members_bigger_than_the_hint_are_inflated_whole() {
        let (a, b, c) = (text(20_000, 1), text(30, 2), text(3_000, 3));
        let mut stream = gz(&a);
        stream.extend(gz(&b));
        stream.extend(gz(&c));
        let mut want = a.clone();
        want.extend(&b);
        want.extend(&c);
        for cap in [0, 100, want.len()] {
            let mut out = Vec::with_capacity(cap);
            inflate_members(
                &mut Inflater::default(),
                &stream,
                usize::MAX,
                &mut out,
                None,
            )
            .unwrap();
            assert!(
                out == want,
                "capacity {cap}: {} bytes, want {}",
                out.len(),
                want.len()
            );
        }
        assert_eq!(gunzip(&stream, want.len()).unwrap(), want);
    }

    /// `max` binds exactly: a stream of `max` bytes is read, one of `max + 1` is too large,
    /// however small the trailer says it is.
    #[test]
    fn the_limit_is_exact_whatever_the_trailer_says() {
        let data = text(5_000, 4);
        let stream = gz(&data);
        assert_eq!(gunzip(&stream, data.len()).unwrap(), data);
        assert!(matches!(
            gunzip(&stream, data.len() - 1),
            Err(DecodeError::TooLarge { max }) if max == data.len() - 1
        ));
        // A trailer that claims 10 bytes: the hint is wrong, the CRC and length checks are not.
        let mut lying = stream.clone();
        let n = lying.len();
        lying[n - 4..].copy_from_slice(&10u32.to_le_bytes());
        let e = gunzip(&lying, usize::MAX).unwrap_err().to_string();
        assert!(e.contains("length mismatch"), "{e}");
        assert!(matches!(
            gunzip(&lying, 1000),
            Err(DecodeError::TooLarge { max: 1000 })
        ));
    }

    /// What libdeflate refuses gets zlib-rs's own words: truncated, or corrupt.
    #[test]
    fn refused_streams_say_what_is_wrong() {
        let stream = gz(&text(5_000, 5));
        let e = gunzip(&stream[..stream.len() / 2], usize::MAX)
            .unwrap_err()
            .to_string();
        assert!(e.contains("truncated gzip stream"), "{e}");
        let mut bad = stream.clone();
        // A block header's bits, just past the 10-byte gzip header: an invalid block type.
        bad[10] |= 0b110;
        let e = gunzip(&bad, usize::MAX).unwrap_err().to_string();
        assert!(e.contains("corrupt deflate stream"), "{e}");
        let mut crc = stream.clone();
        let n = crc.len();
        crc[n - 8] ^= 1;
        let e = gunzip(&crc, usize::MAX).unwrap_err().to_string();
        assert!(e.contains("CRC-32 mismatch"), "{e}");
    }
}
