//! Small formatting helpers shared by the presenters: timestamps, wire bytes made safe
//! for terminals (no control characters). For JSON (valid UTF-8): [`crate::text`].

use std::fmt::Write as _;

/// RFC 3339 UTC with microseconds, e.g. `2026-11-24T02:12:12.123456Z`.
pub(crate) fn rfc3339(ns: i64, out: &mut String) {
    let (y, m, d) = civil_from_days(ns.div_euclid(1_000_000_000).div_euclid(86_400));
    let _ = write!(out, "{y:04}-{m:02}-{d:02}T");
    time_of_day(ns, out);
    out.push('Z');
}

/// RFC 3339 formatting for many records in a row: the quoted text up to the second
/// of the last two seconds seen is kept (a statement's start and end may straddle
/// one), so a timestamp is a copy of constant length and its six digits of
/// microseconds.
pub(crate) struct TimeCache {
    seconds: [Second; 2],
    /// The slot to overwrite next.
    older: usize,
}

impl Default for TimeCache {
    fn default() -> Self {
        TimeCache {
            seconds: [Second::EMPTY; 2],
            older: 0,
        }
    }
}

/// The usual length, quotes included: years 1000 to 9999.
const QUOTED: usize = 29;

/// One second's quoted text, in place (no pointer to follow).
#[derive(Clone, Copy)]
struct Second {
    /// `i64::MIN` for none: no timestamp is in it (it is below `i64::MIN / 10^9`).
    sec: i64,
    /// None when the text has an unusual length (written directly instead).
    text: Option<[u8; QUOTED]>,
}

impl Second {
    const EMPTY: Second = Second {
        sec: i64::MIN,
        text: None,
    };

    #[cold]
    fn new(sec: i64) -> Second {
        let mut s = String::from('"');
        // Saturated: the second that holds `i64::MIN` starts before it.
        rfc3339(sec.saturating_mul(1_000_000_000), &mut s);
        s.push('"');
        Second {
            sec,
            text: s.as_bytes().try_into().ok(),
        }
    }
}

/// A timestamp ready to be written: its quoted text, or the time itself when its
/// text has an unusual length.
pub(crate) enum Stamp {
    Quoted([u8; QUOTED]),
    Long(i64),
}

impl Stamp {
    #[inline(always)]
    pub(crate) fn write(&self, out: &mut Vec<u8>) {
        match self {
            // A copy of constant length, inlined (any other length is a `memcpy` call).
            Stamp::Quoted(t) => out.extend_from_slice(t),
            Stamp::Long(ns) => write_long(*ns, out),
        }
    }
}

#[cold]
fn write_long(ns: i64, out: &mut Vec<u8>) {
    let mut s = String::from('"');
    rfc3339(ns, &mut s);
    s.push('"');
    out.extend_from_slice(s.as_bytes());
}

/// "00" to "99".
pub(crate) const DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

impl TimeCache {
    #[inline]
    pub(crate) fn stamp(&mut self, ns: i64) -> Stamp {
        let sec = ns.div_euclid(1_000_000_000);
        let i = if self.seconds[0].sec == sec {
            0
        } else if self.seconds[1].sec == sec {
            1
        } else {
            let i = self.older;
            self.older ^= 1;
            self.seconds[i] = Second::new(sec);
            i
        };
        let Some(mut text) = self.seconds[i].text else {
            return Stamp::Long(ns);
        };
        // Only the microseconds change within a second, two digits at a time.
        let m = (ns.rem_euclid(1_000_000_000) / 1000) as usize;
        for (i, pair) in [m / 10_000, m / 100 % 100, m % 100].into_iter().enumerate() {
            text[QUOTED - 8 + 2 * i..QUOTED - 6 + 2 * i]
                .copy_from_slice(&DIGIT_PAIRS[2 * pair..2 * pair + 2]);
        }
        Stamp::Quoted(text)
    }
}

/// Time of day only, for the text trace: `02:12:12.123456`.
pub(crate) fn time_of_day(ns: i64, out: &mut String) {
    let secs = ns.div_euclid(1_000_000_000);
    let micros = ns.rem_euclid(1_000_000_000) / 1000;
    let sod = secs.rem_euclid(86_400);
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}.{micros:06}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Appends wire bytes for a terminal, inside a quoted string: quotes, backslashes,
/// every control character (C0, DEL, C1) and the invisible characters that reorder or
/// hide text ([`invisible`]) escaped, invalid UTF-8 as `\xNN`.
pub(crate) fn push_escaped(out: &mut String, bytes: &[u8]) {
    push_sanitized(out, bytes, true);
}

/// Like [`push_escaped`], for text that is not quoted (table cells): quotes stay as
/// they are, control characters and invalid UTF-8 are still escaped.
pub(crate) fn push_sanitized(out: &mut String, bytes: &[u8], quoted: bool) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' if quoted => out.push_str("\\\""),
                '\\' if quoted => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if c.is_control() || invisible(c) => {
                    let _ = write!(out, "\\u{{{:x}}}", c as u32);
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// Format characters a terminal shows as nothing while they change what is seen: the
/// bidirectional overrides, embeddings, isolates and marks (U+202A..U+202E,
/// U+2066..U+2069, U+200E/F, U+061C: "Trojan Source", CVE-2021-42574), the zero width
/// space, word joiner and byte order mark, and the line and paragraph separators.
/// The joiners U+200C/U+200D stay: scripts and emoji need them.
fn invisible(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// Hex of a byte string, for binary values.
pub(crate) fn push_hex(out: &mut String, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        let cases = [
            (0i64, "1970-01-01T00:00:00.000000Z"),
            (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456Z"),
            (951_782_400_000_000_000, "2000-02-29T00:00:00.000000Z"),
            (-1_000, "1969-12-31T23:59:59.999999Z"),
            // The ends of the range (saturated corrupt timestamps).
            (i64::MIN, "1677-09-21T00:12:43.145224Z"),
            (i64::MAX, "2262-04-11T23:47:16.854775Z"),
        ];
        for (ns, want) in cases {
            let mut s = String::new();
            rfc3339(ns, &mut s);
            assert_eq!(s, want);
        }
        let mut s = String::new();
        time_of_day(1_700_000_000_123_456_789, &mut s);
        assert_eq!(s, "22:13:20.123456");
        let mut cache = TimeCache::default();
        // As statement records use it (end, start, end), within a second and across.
        let t = 1_700_000_000_123_456_789;
        let seq = [
            t,
            t - 5_000,
            t,
            t + 1_000,
            t,
            t + 1_000,
            t + 900_000_000,
            t + 1_000,
        ];
        let all = cases.iter().map(|c| c.0);
        // Near the ends, whose second starts or ends outside the range.
        let ends = [i64::MIN + 1_000, i64::MAX - 1_000];
        for ns in all.clone().chain(all).chain(seq).chain(ends) {
            let (mut a, mut b) = (String::new(), Vec::new());
            rfc3339(ns, &mut a);
            cache.stamp(ns).write(&mut b);
            assert_eq!(format!("\"{a}\"").as_bytes(), b);
        }
    }

    #[test]
    fn terminal_escaping_leaves_no_control_bytes() {
        let mut s = String::new();
        push_escaped(&mut s, b"x\x1b[31mred\x07\"q\"\\\n\xc2\x9b\xff");
        assert_eq!(s, "x\\u{1b}[31mred\\u{7}\\\"q\\\"\\\\\\n\\u{9b}\\xff");
        assert!(!s.chars().any(|c| c.is_control()));
        // Bidi controls and invisible format characters: escaped, in table cells too.
        let mut s = String::new();
        push_sanitized(
            &mut s,
            "a\u{202e}b\u{2066}\u{2069}\u{200f}\u{61c}\u{feff}\u{200b}\u{2028}ç\u{200d}".as_bytes(),
            false,
        );
        assert_eq!(
            s,
            "a\\u{202e}b\\u{2066}\\u{2069}\\u{200f}\\u{61c}\\u{feff}\\u{200b}\\u{2028}ç\u{200d}"
        );
        for c in ('\u{202a}'..='\u{202e}').chain('\u{2066}'..='\u{2069}') {
            assert!(invisible(c), "{c:?}");
        }
    }
}
