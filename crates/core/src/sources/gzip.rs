//! Gzip, one implementation for every input: subscription batches (`awslogs.data`), and the
//! `.gz` files and S3 objects the CLI reads.
//!
//! The framing (RFC 1952) is handled here rather than by `flate2::read::MultiGzDecoder`: the
//! raw deflate stream goes through zlib-rs into the caller's buffer (sized once from the
//! trailer), the inflater's state is reused from batch to batch instead of allocated per
//! member, and the CRC-32 is checked with crc32fast's SIMD code, which profiling showed to be a
//! tenth of the whole hot path when left to the inflater's portable CRC. `natmeter bench`
//! measures this against `MultiGzDecoder` on the same batches (docs/testing.md, benchmarks).

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

/// Inflates every member into `out`. With `resume`, `(consumed, ended)`, the first member
/// was started by `Decoder::decode_or_skip`'s head: `out` holds what it inflated from the
/// first `consumed` compressed bytes (its header included), and `ended` says whether that
/// was the whole member.
pub fn inflate_members(
    inflate: &mut flate2::Decompress,
    compressed: &[u8],
    max: usize,
    out: &mut Vec<u8>,
    mut resume: Option<(usize, bool)>,
) -> Result<(), DecodeError> {
    // The trailer's ISIZE is the decoded size (mod 2^32, of the last member): reserve it
    // exactly so the buffer is allocated once. Only a hint: the limit below is what binds.
    if let Some(isize) = gzip_isize(compressed).filter(|n| *n <= max) {
        out.reserve_exact(isize.saturating_sub(out.len()));
    }
    let mut rest: &[u8] = compressed;
    loop {
        let (start, mut ended);
        if let Some((consumed, end)) = resume.take() {
            (start, ended) = (0, end);
            rest = &rest[consumed..];
        } else {
            let header = gzip_header_len(rest)?;
            rest = &rest[header..];
            (start, ended) = (out.len(), false);
            inflate.reset(false);
        }
        while !ended {
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
                flate2::Status::StreamEnd => ended = true,
                _ if consumed == 0 && out.len() == before_out && out.len() < out.capacity() => {
                    return Err(gzip_error("unexpected end of file (truncated gzip stream)"));
                }
                _ => {}
            }
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

/// Inflates a whole gzip file (every member) with a fresh inflater, refusing more than `max`
/// decoded bytes: a `.gz` flow-log file or S3 object read whole.
pub fn gunzip(compressed: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let mut inflate = flate2::Decompress::new(false);
    inflate_members(&mut inflate, compressed, max, &mut out, None)?;
    Ok(out)
}
