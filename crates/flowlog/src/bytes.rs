//! Byte classes of 16 bytes at a time, as bit masks (bit i = byte i), for the two scanners of the
//! hot path: the flow-log tokenizer and the subscription payload reader. SSE2 on x86_64 (part of
//! its baseline, so no runtime detection); SWAR elsewhere, which the arm64 Lambda runs. The tests
//! hold both to a byte-by-byte definition.

/// `stop`: `"`, `\` and bytes below 0x20 (where a plain JSON string ends or stops being plain);
/// `high`: bytes of 0x80 and above (not ASCII).
#[inline(always)]
pub fn json_string_class(chunk: &[u8; 16]) -> (u32, u32) {
    imp::json_string_class(chunk)
}

/// `spaces`: bytes equal to 0x20; `controls`: bytes below 0x20 (tabs, newlines and worse).
#[inline(always)]
pub fn space_class(chunk: &[u8; 16]) -> (u32, u32) {
    imp::space_class(chunk)
}

/// The position of the first `\n` in `b`, found 16 bytes at a time from [`space_class`]'s
/// controls (flow-log text has no other control than a `\r` before the `\n`). Splits flow-log
/// text and JSON lines: a byte loop, or `str::split`'s memchr on ~180-byte lines, was a quarter
/// of the time of a text file.
#[inline]
pub fn find_newline(b: &[u8]) -> Option<usize> {
    let mut i = 0;
    while let Some(chunk) = b.get(i..i + 16) {
        let Ok(chunk) = <&[u8; 16]>::try_from(chunk) else {
            break;
        };
        let (_, mut controls) = space_class(chunk);
        while controls != 0 {
            let at = i + controls.trailing_zeros() as usize;
            if b[at] == b'\n' {
                return Some(at);
            }
            controls &= controls - 1;
        }
        i += 16;
    }
    b[i..].iter().position(|&c| c == b'\n').map(|j| i + j)
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    // SAFETY (every block below): SSE2 is part of the x86_64 baseline, so its intrinsics are
    // always available; the only memory access is an unaligned load of exactly `chunk`.

    /// Bytes below 0x20: unsigned `max(x, 0x1f) == 0x1f`.
    #[inline(always)]
    unsafe fn below_space(x: __m128i) -> __m128i {
        let c = _mm_set1_epi8(0x1f);
        _mm_cmpeq_epi8(_mm_max_epu8(x, c), c)
    }

    #[inline(always)]
    pub fn json_string_class(chunk: &[u8; 16]) -> (u32, u32) {
        unsafe {
            let x = _mm_loadu_si128(chunk.as_ptr().cast());
            let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
            let stop = _mm_or_si128(_mm_or_si128(quote, backslash), below_space(x));
            (_mm_movemask_epi8(stop) as u32, _mm_movemask_epi8(x) as u32)
        }
    }

    #[inline(always)]
    pub fn space_class(chunk: &[u8; 16]) -> (u32, u32) {
        unsafe {
            let x = _mm_loadu_si128(chunk.as_ptr().cast());
            let spaces = _mm_cmpeq_epi8(x, _mm_set1_epi8(b' ' as i8));
            (
                _mm_movemask_epi8(spaces) as u32,
                _mm_movemask_epi8(below_space(x)) as u32,
            )
        }
    }
}

#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
mod swar {
    const LO7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const TOP3: u64 = 0xe0e0_e0e0_e0e0_e0e0;

    /// High bit set exactly in the zero bytes of `y` (no false positives, unlike haszero).
    #[inline(always)]
    fn zero_bytes(y: u64) -> u64 {
        !(((y & LO7).wrapping_add(LO7)) | y | LO7)
    }

    /// Gathers the high bit of each byte into the low 8 bits.
    #[inline(always)]
    fn movemask(m: u64) -> u32 {
        ((((m >> 7) & 0x0101_0101_0101_0101).wrapping_mul(0x0102_0408_1020_4080)) >> 56) as u32
    }

    #[inline(always)]
    fn halves(chunk: &[u8; 16], f: impl Fn(u64) -> (u64, u64)) -> (u32, u32) {
        let mut lo = [0u8; 8];
        let mut hi = [0u8; 8];
        lo.copy_from_slice(&chunk[..8]);
        hi.copy_from_slice(&chunk[8..]);
        let (a0, b0) = f(u64::from_le_bytes(lo));
        let (a1, b1) = f(u64::from_le_bytes(hi));
        (
            movemask(a0) | movemask(a1) << 8,
            movemask(b0) | movemask(b1) << 8,
        )
    }

    #[inline(always)]
    pub fn json_string_class(chunk: &[u8; 16]) -> (u32, u32) {
        halves(chunk, |x| {
            let stop = zero_bytes(x ^ 0x2222_2222_2222_2222)
                | zero_bytes(x ^ 0x5c5c_5c5c_5c5c_5c5c)
                | zero_bytes(x & TOP3);
            (stop, x & 0x8080_8080_8080_8080)
        })
    }

    #[inline(always)]
    pub fn space_class(chunk: &[u8; 16]) -> (u32, u32) {
        halves(chunk, |x| {
            (zero_bytes(x ^ 0x2020_2020_2020_2020), zero_bytes(x & TOP3))
        })
    }
}

#[cfg(not(target_arch = "x86_64"))]
use swar as imp;

#[cfg(test)]
mod tests {
    use super::*;

    fn mask(w: &[u8], f: impl Fn(u8) -> bool) -> u32 {
        w.iter()
            .enumerate()
            .filter(|(_, &c)| f(c))
            .fold(0u32, |m, (i, _)| m | 1 << i)
    }

    #[test]
    fn newlines_are_found_among_other_controls() {
        let mut b = b"x\r\t".repeat(40);
        assert_eq!(find_newline(&b), None);
        assert_eq!(find_newline(b""), None);
        for at in [0, 1, 15, 16, 17, 31, 32, 100, 110, 119] {
            b[at] = b'\n';
            assert_eq!(find_newline(&b), Some(at), "{at}");
            for len in at..b.len() {
                assert_eq!(find_newline(&b[..len + 1]), Some(at));
            }
            b[at] = b'x';
        }
    }

    #[test]
    fn classes_match_their_definition_on_every_byte() {
        let mut bytes: Vec<u8> = (0..=255u8).collect();
        bytes.extend((0..=255u8).rev());
        bytes.extend(b"0123456789abcdef\"\\ \x1f\x7f\x80\xff  \t");
        for w in bytes.windows(16) {
            let chunk: &[u8; 16] = w.try_into().unwrap();
            let json = (
                mask(w, |c| c == b'"' || c == b'\\' || c < 0x20),
                mask(w, |c| c >= 0x80),
            );
            let space = (mask(w, |c| c == b' '), mask(w, |c| c < 0x20));
            assert_eq!(json_string_class(chunk), json, "{w:?}");
            assert_eq!(swar::json_string_class(chunk), json, "{w:?}");
            assert_eq!(space_class(chunk), space, "{w:?}");
            assert_eq!(swar::space_class(chunk), space, "{w:?}");
        }
    }
}
