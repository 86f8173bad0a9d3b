//! Wire bytes as text, below every stage: the session stage keeps SQL texts and
//! names as strings, the presenters write them, and both need the same rendering.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Lower-case hex digits by value, for the writers that spell bytes and hashes in hex
/// without the formatting machinery.
pub(crate) const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Wire bytes as a string: unchanged when valid UTF-8, otherwise every byte that is
/// not part of a valid sequence becomes `\xNN` (never dropped).
pub(crate) fn utf8_lossless(bytes: &[u8]) -> Cow<'_, str> {
    if let Some(s) = ascii(bytes) {
        return Cow::Borrowed(s);
    }
    if let Ok(s) = std::str::from_utf8(bytes) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(bytes.len() + 16);
    for chunk in bytes.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    Cow::Owned(out)
}

/// `bytes` as a string if they are all ASCII, the common case of SQL texts, names
/// and hex digits: `is_ascii` reads a word at a time from the first byte, where
/// `from_utf8` goes byte by byte up to an aligned address and after the last whole
/// pair of words (about 120 instructions for pgbench's 55-byte text, a fifth of that
/// here).
#[inline]
#[allow(unsafe_code, reason = "ASCII checked just before: see below")]
pub(crate) fn ascii(bytes: &[u8]) -> Option<&str> {
    // SAFETY: every byte is below 0x80, and a string of ASCII bytes is valid UTF-8.
    bytes
        .is_ascii()
        .then(|| unsafe { std::str::from_utf8_unchecked(bytes) })
}

/// Byte-string equality without a `memcmp` call for short strings (tags, names):
/// glibc's vector `memcmp` costs more to call than these take to compare, and for
/// zero bytes at an empty string's dangling pointer it is very slow.
#[inline]
pub(crate) fn eq_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() > 16 {
        return a == b;
    }
    // Two overlapping loads from each end cover 4 to 16 bytes (padding into a word
    // would itself call `memcpy`); a byte loop the rest.
    if let Some(eq) = ends_eq::<8>(a, b).or_else(|| ends_eq::<4>(a, b)) {
        return eq;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

/// Whether `a` and `b` (of one length) agree in their first and last `N` bytes;
/// `None` when shorter than `N`.
#[inline(always)]
fn ends_eq<const N: usize>(a: &[u8], b: &[u8]) -> Option<bool> {
    Some(
        a.first_chunk::<N>()? == b.first_chunk::<N>()?
            && a.last_chunk::<N>()? == b.last_chunk::<N>()?,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossless_utf8() {
        assert!(matches!(
            utf8_lossless(b"caf\xc3\xa9"),
            Cow::Borrowed("café")
        ));
        assert_eq!(utf8_lossless(b"a\xffb\xc3"), "a\\xffb\\xc3");
    }

    #[test]
    fn ascii_only_when_every_byte_is() {
        assert_eq!(ascii(b""), Some(""));
        let text = b"SELECT abalance FROM pgbench_accounts WHERE aid = 106260;";
        assert_eq!(ascii(text), std::str::from_utf8(text).ok());
        // A byte above 0x7f anywhere (word heads, middles, tails) is not ASCII.
        for at in 0..text.len() {
            let mut t = text.to_vec();
            t[at] = 0xc3;
            assert_eq!(ascii(&t), None, "byte {at}");
        }
        assert_eq!(utf8_lossless(b"caf\xc3\xa9"), "caf\u{e9}");
    }

    #[test]
    fn eq_bytes_is_equality() {
        let cases: [&[u8]; 7] = [
            b"",
            b"a",
            b"ab",
            b"UPDATE 1",
            b"UPDATE 2",
            &[b'x'; 16],
            &[b'x'; 17],
        ];
        for a in cases {
            for b in cases {
                assert_eq!(eq_bytes(a, b), a == b, "{a:?} {b:?}");
            }
        }
        assert!(!eq_bytes(&[b'x'; 17], &[b'x'; 16]));
        // Every length up to the word cases' end, differing at every position.
        for n in 0..=20 {
            let a: Vec<u8> = (0..n as u8).collect();
            assert!(eq_bytes(&a, &a.clone()));
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 0x80;
                assert!(!eq_bytes(&a, &b), "{n} {i}");
            }
        }
        assert!(!eq_bytes(b"\0", b""));
    }
}
