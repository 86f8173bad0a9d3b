//! A flat JSON object written straight into a reused buffer.
//!
//! Records are flat objects with dotted ECS keys, so a builder that appends
//! `"key":value` pairs is all that is needed; string escaping is serde_json's, with
//! the C1 control characters escaped as well (see [`write_json`]).

use crate::text::{HEX_DIGITS, utf8_lossless};

pub(crate) struct JsonObj<'a> {
    buf: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> JsonObj<'a> {
    pub(crate) fn begin(buf: &'a mut Vec<u8>) -> Self {
        buf.push(b'{');
        JsonObj { buf, first: true }
    }

    /// Fields to be appended to other objects with [`JsonObj::raw`]: no braces, each
    /// field preceded by a comma.
    pub(crate) fn fragment(buf: &'a mut Vec<u8>) -> Self {
        JsonObj { buf, first: false }
    }

    /// Appends fields rendered by [`JsonObj::fragment`].
    #[inline(always)]
    pub(crate) fn raw(&mut self, fields: &[u8]) -> &mut Self {
        if self.first {
            self.buf
                .extend_from_slice(fields.strip_prefix(b",").unwrap_or(fields));
        } else {
            self.buf.extend_from_slice(fields);
        }
        self.first = false;
        self
    }

    pub(crate) fn end(self) {
        self.buf.extend_from_slice(b"}\n");
    }

    /// Keys are this program's own ASCII names: written without escaping. Inlined
    /// (as are the writers below), so a literal key is copied with a constant length
    /// instead of a `memcpy` call per field.
    #[inline(always)]
    #[allow(
        unsafe_code,
        reason = "set_len after writing the spare capacity: see below"
    )]
    fn key(&mut self, k: &str) {
        let k = k.as_bytes();
        if self.first {
            self.first = false;
            self.buf.push(b'"');
            self.buf.extend_from_slice(k);
            self.buf.extend_from_slice(b"\":");
            return;
        }
        // `,"key":` written straight into the spare capacity with constant-length
        // copies once a literal key is inlined: a length that depends on `first`, or
        // a copy through a stack buffer, made this a `memcpy` call per field (a
        // tenth of the formatting thread). Safe code (`resize` then indexing, and the
        // same for `write_u64` below) ran 2.5% more instructions on bench/data's
        // pgbench capture (callgrind, 2,342 M against 2,283-2,290 M) and took 0.3 to
        // 3.5% more CPU (best of 15 and 25 runs).
        let n = k.len() + 4;
        self.buf.reserve(n);
        let spare = &mut self.buf.spare_capacity_mut()[..n];
        spare[0].write(b',');
        spare[1].write(b'"');
        spare[2..n - 2].write_copy_of_slice(k);
        spare[n - 2].write(b'"');
        spare[n - 1].write(b':');
        // SAFETY: `reserve(n)` made room for `n` bytes past the length and all `n`
        // were initialised just above (`,` `"` the key `"` `:`), so the new length
        // covers initialised bytes within the capacity.
        unsafe { self.buf.set_len(self.buf.len() + n) };
    }

    /// An RFC 3339 timestamp (see [`super::fmt::TimeCache::stamp`]).
    #[inline(always)]
    pub(crate) fn time(&mut self, k: &str, t: &super::fmt::Stamp) -> &mut Self {
        self.key(k);
        t.write(self.buf);
        self
    }

    /// A string value alone, its key already written (at the end of fields appended
    /// with [`JsonObj::raw`]).
    pub(crate) fn string(&mut self, s: &str) -> &mut Self {
        write_str(self.buf, s);
        self
    }

    /// Bytes that need no escaping, between quotes.
    #[inline(always)]
    fn quoted(&mut self, b: &[u8]) {
        quoted(self.buf, b);
    }

    /// Bind parameters as an array of strings and nulls.
    pub(crate) fn params(&mut self, k: &str, v: &crate::session::params::Params) -> &mut Self {
        use super::params::{Render, Rendered};
        self.key(k);
        self.buf.push(b'[');
        for (i, p) in v.iter_rendered().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            match p {
                Rendered::Null => self.buf.extend_from_slice(b"null"),
                Rendered::Ascii(b) => self.quoted(b),
                Rendered::Text(s) => write_str(self.buf, &s),
            }
        }
        self.buf.push(b']');
        self
    }

    /// A value already rendered as JSON.
    #[inline(always)]
    pub(crate) fn rendered(&mut self, k: &str, json: &[u8]) -> &mut Self {
        self.key(k);
        self.buf.extend_from_slice(json);
        self
    }

    /// A value of this program's own (a name from a fixed set, a hex digest) that
    /// needs no escaping.
    #[inline(always)]
    pub(crate) fn plain(&mut self, k: &str, v: &str) -> &mut Self {
        debug_assert!(
            v.bytes()
                .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\')
        );
        self.key(k);
        match <&[u8; 16]>::try_from(v.as_bytes()) {
            // A fingerprint's 16 digits (per record for texts seen once): a copy of
            // constant length, not a `memcpy` call.
            Ok(digest) => self.quoted(digest),
            Err(_) => self.quoted(v.as_bytes()),
        }
        self
    }

    #[inline(always)]
    pub(crate) fn str(&mut self, k: &str, v: &str) -> &mut Self {
        self.key(k);
        self.string(v);
        self
    }

    /// Wire bytes: kept whole, with invalid UTF-8 escaped as `\xNN`.
    pub(crate) fn bytes(&mut self, k: &str, v: &[u8]) -> &mut Self {
        self.key(k);
        self.string(&utf8_lossless(v));
        self
    }

    /// An IP address: IPv4 by its four numbers (through `Display`, formatting one
    /// took as long as the rest of a session record's head), IPv6 by `Display`.
    pub(crate) fn ip(&mut self, k: &str, ip: &std::net::IpAddr) -> &mut Self {
        use itoa_like::Num;
        use std::io::Write;
        self.key(k);
        match ip {
            std::net::IpAddr::V4(v4) => {
                self.buf.push(b'"');
                for (i, n) in v4.octets().into_iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b'.');
                    }
                    n.write(self.buf);
                }
                self.buf.push(b'"');
            }
            std::net::IpAddr::V6(_) => {
                let _ = write!(self.buf, "\"{ip}\"");
            }
        }
        self
    }

    #[inline(always)]
    pub(crate) fn opt_str(&mut self, k: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(k, v),
            None => self.null(k),
        }
    }

    /// A value already rendered as JSON, or null.
    pub(crate) fn opt_rendered(&mut self, k: &str, json: Option<&[u8]>) -> &mut Self {
        match json {
            Some(v) => self.rendered(k, v),
            None => self.null(k),
        }
    }

    #[inline(always)]
    pub(crate) fn num<N: itoa_like::Num>(&mut self, k: &str, v: N) -> &mut Self {
        self.key(k);
        v.write(self.buf);
        self
    }

    #[inline(always)]
    pub(crate) fn bool(&mut self, k: &str, v: bool) -> &mut Self {
        self.key(k);
        self.buf
            .extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    #[inline(always)]
    pub(crate) fn null(&mut self, k: &str) -> &mut Self {
        self.key(k);
        self.buf.extend_from_slice(b"null");
        self
    }

    /// Any serde value (lists and nested objects, off the hot path).
    pub(crate) fn value<T: serde::Serialize + ?Sized>(&mut self, k: &str, v: &T) -> &mut Self {
        self.key(k);
        write_json(self.buf, v);
        self
    }
}

/// Name/value pairs as an object, as serde_json writes a map of them: by name, a
/// repeated name once with its last value. Without building that map (a copy of
/// every pair, per session record).
pub(crate) fn write_object(buf: &mut Vec<u8>, pairs: &[(String, String)]) {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    // Stable: of a repeated name, the last value stays last.
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    buf.push(b'{');
    let mut first = true;
    for (i, (name, value)) in sorted.iter().map(|p| (&p.0, &p.1)).enumerate() {
        if sorted.get(i + 1).is_some_and(|next| next.0 == *name) {
            continue;
        }
        if !first {
            buf.push(b',');
        }
        first = false;
        write_str(buf, name);
        buf.push(b':');
        write_str(buf, value);
    }
    buf.push(b'}');
}

/// Writes `v` as compact JSON, as serde_json does, except that DEL and the C1 control
/// characters (U+0080 to U+009F) are escaped too: JSON allows them raw, but a terminal
/// showing the records obeys them (U+009B is CSI, an escape sequence in one byte).
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(buf: &mut Vec<u8>, v: &T) {
    let mut ser = serde_json::Serializer::with_formatter(buf, C1Escaped);
    // Writing into a Vec cannot fail.
    let _ = v.serialize(&mut ser);
}

/// A string as [`write_json`] writes it. Most strings (statement texts, tags, names,
/// parameters) need no escaping: copied as they are instead of through serde_json's
/// per-byte escape table.
pub(crate) fn write_str(buf: &mut Vec<u8>, s: &str) {
    if unescaped(s.as_bytes()) {
        quoted(buf, s.as_bytes());
    } else {
        write_json(buf, s);
    }
}

/// Bytes that need no escaping, between quotes.
#[inline(always)]
fn quoted(buf: &mut Vec<u8>, b: &[u8]) {
    buf.reserve(b.len() + 2);
    buf.push(b'"');
    buf.extend_from_slice(b);
    buf.push(b'"');
}

/// serde_json's compact formatter, DEL and C1 controls escaped in strings.
struct C1Escaped;

impl serde_json::ser::Formatter for C1Escaped {
    /// A run of characters serde_json writes as they are: DEL is 0x7F, a C1 control
    /// the lead byte 0xC2 and a second byte below 0xA0, both found with memchr.
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let b = fragment.as_bytes();
        let mut start = 0;
        for i in memchr::memchr2_iter(0x7F, 0xC2, b) {
            // Valid UTF-8: a continuation byte follows the lead byte.
            let (c, len) = match b[i] {
                0x7F => (0x7F, 1),
                _ if b[i + 1] < 0xA0 => (b[i + 1], 2),
                _ => continue,
            };
            w.write_all(&b[start..i])?;
            w.write_all(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX_DIGITS[usize::from(c >> 4)],
                HEX_DIGITS[usize::from(c & 15)],
            ])?;
            start = i + len;
        }
        w.write_all(&b[start..])
    }
}

/// Whether JSON writes these bytes as they are: it escapes only quotes, backslashes
/// and control characters, C0 and (through [`write_json`]) DEL and C1; other UTF-8
/// stays as it is. A C1 control starts with 0xC2, as do U+00A0 to U+00BF: those few
/// take the escaping path too.
fn unescaped(b: &[u8]) -> bool {
    const fn plain(c: u8) -> u8 {
        let c0 = c.saturating_sub(0x1F);
        min(min(c0, c ^ b'"'), min(min(c ^ b'\\', c ^ 0x7F), c ^ 0xC2))
    }
    static PLAIN: [bool; 256] = class_table!(plain);
    all_bytes(b, plain, &PLAIN)
}

/// `a.min(b)` in a `const fn` (a byte class's, for its table).
pub(crate) const fn min(a: u8, b: u8) -> u8 {
    if a < b { a } else { b }
}

/// Whether each byte value's class (a `const fn` of a byte) is non-zero, for
/// [`all_bytes`].
macro_rules! class_table {
    ($class:path) => {{
        let mut t = [false; 256];
        let mut c = 0;
        while c < 256 {
            t[c] = $class(c as u8) != 0;
            c += 1;
        }
        t
    }};
}
pub(crate) use class_table;

/// Whether `class` is non-zero for every byte of `b` (`table`: the same for each
/// byte value). From 16 bytes on, by 16-byte chunks (the last one overlapping the
/// others) folded with `min`, without a branch per byte: the compiler turns a class
/// made of saturating subtractions, `xor`s and `min`s into a few vector instructions
/// a chunk (written with `==` and `|`, into a set-membership test of four times as
/// many). Shorter strings (names, tags, most parameters) by table, a load a byte.
#[inline(always)]
pub(crate) fn all_bytes(b: &[u8], class: impl Fn(u8) -> u8 + Copy, table: &[bool; 256]) -> bool {
    #[inline(always)]
    fn fold(mut acc: [u8; 16], ch: &[u8; 16], class: impl Fn(u8) -> u8) -> [u8; 16] {
        for (a, &c) in acc.iter_mut().zip(ch) {
            *a = (*a).min(class(c));
        }
        acc
    }
    match b.last_chunk::<16>() {
        Some(last) => {
            let (chunks, _) = b.as_chunks::<16>();
            let acc = chunks
                .iter()
                .fold(fold([0xFF; 16], last, class), |acc, ch| {
                    fold(acc, ch, class)
                });
            acc.iter().fold(0xFF, |a, &x| a.min(x)) != 0
        }
        None => b.iter().all(|&c| table[usize::from(c)]),
    }
}

pub(crate) mod itoa_like {
    /// An integer written in decimal straight into the buffer's spare capacity: its
    /// length is known first, so no copy of variable length (a `memcpy` call per
    /// number, as from a formatting buffer) is needed.
    pub(crate) trait Num: Copy {
        fn write(self, buf: &mut Vec<u8>);
    }

    use super::super::fmt::DIGIT_PAIRS as PAIRS;

    #[inline]
    #[allow(
        unsafe_code,
        reason = "set_len after writing the digits: see `JsonObj::key`"
    )]
    fn write_u64(buf: &mut Vec<u8>, mut v: u64) {
        let n = digits(v);
        buf.reserve(n);
        // Pairs from the end, and the first digit alone when `n` is odd: chunks of
        // the slice, so that no write needs a bounds check.
        let (first, pairs) = buf.spare_capacity_mut()[..n].as_rchunks_mut::<2>();
        for pair in pairs.iter_mut().rev() {
            let d = (v % 100) as usize * 2;
            v /= 100;
            pair[0].write(PAIRS[d]);
            pair[1].write(PAIRS[d + 1]);
        }
        if let [digit] = first {
            digit.write(b'0' + v as u8);
        }
        // SAFETY: `reserve(n)` made room for `n` bytes and all `n` were initialised:
        // the `n / 2` pairs from the end, then the first digit when `n` is odd.
        unsafe { buf.set_len(buf.len() + n) };
    }

    /// The number of decimal digits of `v`, without a branch: log10(2) is about
    /// 1233/4096, so the bit length gives the count or one less, which one comparison
    /// settles (`checked_ilog10` compares by ranges: a third of this writer's cost).
    #[inline(always)]
    fn digits(v: u64) -> usize {
        /// `10^i`, except 0 for `i = 0` so that 0 has one digit.
        const POW10: [u64; 20] = {
            let mut t = [0; 20];
            let mut i = 1;
            while i < 20 {
                t[i] = 10u64.pow(i as u32);
                i += 1;
            }
            t
        };
        let bits = u64::BITS - (v | 1).leading_zeros();
        let guess = ((bits * 1233) >> 12) as usize;
        guess + usize::from(v >= POW10[guess])
    }

    macro_rules! unsigned {
        ($($t:ty),*) => {$(
            impl Num for $t {
                #[inline]
                fn write(self, buf: &mut Vec<u8>) {
                    write_u64(buf, self as u64);
                }
            }
        )*};
    }
    unsigned!(u8, u16, u32, u64, usize);

    macro_rules! signed {
        ($($t:ty),*) => {$(
            impl Num for $t {
                #[inline]
                fn write(self, buf: &mut Vec<u8>) {
                    if self < 0 {
                        buf.push(b'-');
                    }
                    write_u64(buf, self.unsigned_abs() as u64);
                }
            }
        )*};
    }
    signed!(i16, i32, i64);
}

/// Name/value pairs from string slices.
#[cfg(test)]
pub(crate) fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_as_serde_json_writes_them() {
        let cases = [
            "",
            "plain",
            "é ü 漢",
            "say \"hi\"",
            "back\\slash",
            "tab\there",
            "\u{1}",
        ];
        for s in cases {
            let mut buf = Vec::new();
            write_str(&mut buf, s);
            assert_eq!(buf, serde_json::to_vec(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn objects_as_serde_json_writes_their_map() {
        let cases = [
            pairs(&[]),
            pairs(&[("b", "1"), ("a", "2"), ("B", "3"), ("é", "4")]),
            pairs(&[
                ("k", "first"),
                ("j", "x"),
                ("k", "last"),
                ("k\u{9b}", "q\"\n"),
            ]),
        ];
        for p in cases {
            let mut buf = Vec::new();
            write_object(&mut buf, &p);
            let map: serde_json::Map<String, serde_json::Value> = p
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect();
            let mut want = Vec::new();
            write_json(&mut want, &map);
            assert_eq!(
                String::from_utf8(buf).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
    }

    /// The check for bytes to escape goes by chunks: one at any place in a chunk or in
    /// the tail is found.
    #[test]
    fn escapes_found_anywhere_in_long_strings() {
        for special in ["\"", "\\", "\n", "\u{7f}", "\u{85}"] {
            for at in 0..40 {
                let s = format!("{}{special}{}", "x".repeat(at), "y".repeat(40 - at));
                let mut buf = Vec::new();
                write_str(&mut buf, &s);
                let mut want = Vec::new();
                write_json(&mut want, &s);
                assert_eq!(buf, want, "{s:?}");
                assert_ne!(buf.len(), s.len() + 2, "{s:?} escaped");
            }
        }
    }

    /// Every byte value at every place of strings of 0 to 40 bytes (by table below 16
    /// bytes, by chunks from 16 on, the last chunk overlapping) is classed as a
    /// byte-by-byte check classes it.
    #[test]
    fn all_bytes_finds_any_byte_anywhere() {
        let json = |c: u8| c >= 0x20 && !matches!(c, b'"' | b'\\' | 0x7F | 0xC2);
        // Miri (scripts/test.sh) runs this for undefined behaviour, not the classes: a
        // few lengths and bytes there (every one takes it hours), all of them here.
        let (lens, bytes): (Vec<usize>, Vec<u8>) = if cfg!(miri) {
            (vec![0, 15, 16, 17, 40], vec![0x1F, b'"', b'a', 0xC2])
        } else {
            ((0..=40).collect(), (0..=255).collect())
        };
        for len in lens {
            for at in 0..len {
                for &c in &bytes {
                    let mut b = vec![b'a'; len];
                    b[at] = c;
                    assert_eq!(unescaped(&b), json(c), "{len} {at} {c}");
                }
            }
            assert!(unescaped(&vec![b'a'; len]));
        }
    }

    /// DEL and C1 controls are escaped wherever a string is written (plain, in lists
    /// and maps, as keys); the rest of U+0080..U+00FF and other UTF-8 stay raw.
    #[test]
    fn del_and_c1_controls_are_escaped() {
        let s = "a\u{9b}31m\u{80}\u{9f}\u{a0}\u{bf}é\u{85}\u{7f}\"\u{7f}";
        let want = r#""a\u009b31m\u0080\u009f\u{a0}\u{bf}é\u0085\u007f\"\u007f""#
            .replace("\\u{a0}", "\u{a0}")
            .replace("\\u{bf}", "\u{bf}");
        let mut buf = Vec::new();
        JsonObj::fragment(&mut buf).string(s);
        assert_eq!(String::from_utf8(buf.clone()).unwrap(), want);
        assert_eq!(serde_json::from_slice::<String>(&buf).unwrap(), s);
        let mut buf = Vec::new();
        let map = std::collections::BTreeMap::from([("k\u{9b}", vec![Some("v\u{9b}"), None])]);
        JsonObj::fragment(&mut buf).value("m", &map);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            r#","m":{"k\u009b":["v\u009b",null]}"#
        );
    }

    #[test]
    fn params_as_serde_json_writes_their_rendering() {
        use crate::output::params::Render;
        use crate::session::params::Params;
        let long = "x".repeat(300);
        let texts = [
            Some("42"),
            None,
            Some("a\"b"),
            Some("back\\"),
            Some("é"),
            Some("\t"),
            Some(""),
            Some(&long[..]),
        ];
        let mut values: Vec<(Option<&[u8]>, bool, u32)> = texts
            .iter()
            .map(|t| (t.map(str::as_bytes), false, 0))
            .collect();
        values.push((Some(&[0, 0, 0, 7]), true, 23)); // binary int4
        values.push((Some(b"bad \xff"), false, 0));
        let p = Params::build(&mut Vec::new(), values.into_iter());
        let mut buf = Vec::new();
        JsonObj::fragment(&mut buf).params("p", &p);
        let want: Vec<Option<String>> = p.texts().map(|v| v.map(|c| c.into_owned())).collect();
        let want = format!(",\"p\":{}", serde_json::to_string(&want).unwrap());
        assert_eq!(String::from_utf8(buf).unwrap(), want);
    }

    #[test]
    fn numbers_as_itoa_writes_them() {
        use itoa_like::Num;
        let unsigned = [0, 1, 9, 10, 11, 99, 100, 101, 999, 1000, 12345, 1 << 32];
        let tens = (0..20).flat_map(|i| {
            let p = 10u64.pow(i);
            [p - 1, p, p + 1]
        });
        for v in unsigned
            .into_iter()
            .chain([u64::MAX, u64::MAX / 10])
            .chain(tens)
        {
            let mut buf = b"x".to_vec();
            v.write(&mut buf);
            assert_eq!(&buf[1..], itoa::Buffer::new().format(v).as_bytes(), "{v}");
        }
        for v in [0, -1, 7, -10, 99, -100, 123456, i64::MIN, i64::MAX] {
            let mut buf = Vec::new();
            v.write(&mut buf);
            assert_eq!(buf, itoa::Buffer::new().format(v).as_bytes(), "{v}");
        }
        let mut buf = Vec::new();
        (-32768i16).write(&mut buf);
        200u8.write(&mut buf);
        assert_eq!(buf, b"-32768200");
    }

    #[test]
    fn addresses_as_display_writes_them() {
        let ips = [
            "0.0.0.0",
            "127.0.0.1",
            "10.200.3.255",
            "::1",
            "fe80::1:2",
            "::ffff:1.2.3.4",
        ];
        for ip in ips {
            let ip: std::net::IpAddr = ip.parse().unwrap();
            let mut buf = Vec::new();
            JsonObj::fragment(&mut buf).ip("a", &ip);
            assert_eq!(String::from_utf8(buf).unwrap(), format!(",\"a\":\"{ip}\""));
        }
    }

    #[test]
    fn builds_valid_json() {
        let mut buf = Vec::new();
        let mut o = JsonObj::begin(&mut buf);
        o.str("a.b", "x\"y\n")
            .bytes("raw", b"ok\xff\x00")
            .num("n", -5i32)
            .bool("t", true)
            .null("z")
            .value("list", &["p", "q"]);
        o.end();
        let v: serde_json::Value = serde_json::from_slice(&buf).unwrap();
        assert_eq!(v["a.b"], "x\"y\n");
        assert_eq!(v["raw"], "ok\\xff\u{0}");
        assert_eq!(v["n"], -5);
        assert_eq!(v["list"][1], "q");
        assert!(buf.ends_with(b"}\n"));
    }
}
