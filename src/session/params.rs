//! Bind parameter values rendered as text: text-format values as they are, binary
//! values decoded by type OID where the type is known ([`binary`]: as the server
//! prints them), hex otherwise.

mod binary;

pub use binary::{ARRAY_TYPES, SCALAR_TYPES};

use super::shared::OwnerRc;
use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest rendered value; longer ones are cut and marked.
pub const MAX_PARAM_CHARS: usize = 256;

pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const CIDR: u32 = 650;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const INET: u32 = 869;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const INTERVAL: u32 = 1186;
    pub const TIMETZ: u32 = 1266;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
}

/// Bytes of a value kept for rendering: enough for [`MAX_PARAM_CHARS`] of text (or
/// of hex); binary numerics and arrays are kept whole up to a larger cap, since a
/// cut numeric can no longer be decoded, and an array's text can be much shorter
/// than its bytes (an array cut there renders as far as [`MAX_PARAM_CHARS`] goes).
const MAX_KEPT: usize = 4 * MAX_PARAM_CHARS;
const MAX_KEPT_WHOLE: usize = 16 << 10;

/// Flags of a kept value.
const NULL: u8 = 1;
const BINARY: u8 = 2;
/// Flags (1), type OID (4), length on the wire (4), bytes kept (4).
const ENTRY_HEAD: usize = 13;

/// The bind parameters of one portal as they came: one shared allocation per Bind,
/// rendered as text (by format and type) only when a presenter asks, on its thread.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(Option<OwnerRc<[u8]>>);

impl Params {
    /// See [`OwnerRc::detached`].
    pub fn detached(&self) -> Params {
        Params(self.0.as_ref().map(OwnerRc::detached))
    }

    /// Builds from `(value, binary, type_oid)` per parameter, `None` for SQL NULL;
    /// `scratch` is reused from one Bind to the next.
    pub fn build<'v>(
        scratch: &mut Vec<u8>,
        values: impl Iterator<Item = (Option<&'v [u8]>, bool, u32)>,
    ) -> Params {
        scratch.clear();
        for (v, binary, oid) in values {
            let keep = if binary && (oid == oid::NUMERIC || binary::array_element(oid).is_some()) {
                MAX_KEPT_WHOLE
            } else {
                MAX_KEPT
            };
            let kept = v.map_or(&[][..], |v| &v[..v.len().min(keep)]);
            let flags = if v.is_none() { NULL } else { 0 } | if binary { BINARY } else { 0 };
            scratch.push(flags);
            scratch.extend_from_slice(&oid.to_le_bytes());
            let wire_len = v.map_or(0, |v| u32::try_from(v.len()).unwrap_or(u32::MAX));
            scratch.extend_from_slice(&wire_len.to_le_bytes());
            scratch.extend_from_slice(&(kept.len() as u32).to_le_bytes());
            scratch.extend_from_slice(kept);
        }
        if scratch.is_empty() {
            Params(None)
        } else {
            Params(Some(OwnerRc::new(&scratch[..])))
        }
    }

    /// Text-format values (tests and synthetic records).
    pub fn from_texts(values: &[Option<&str>]) -> Params {
        let it = values.iter().map(|v| (v.map(str::as_bytes), false, 0));
        Params::build(&mut Vec::new(), it)
    }

    fn entries(&self) -> impl Iterator<Item = (u8, u32, usize, &[u8])> {
        let mut rest: &[u8] = self.0.as_deref().unwrap_or_default();
        std::iter::from_fn(move || {
            let head = rest.get(..ENTRY_HEAD)?;
            let word =
                |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
            let (oid, wire_len, kept) = (word(1), word(5) as usize, word(9) as usize);
            let value = rest.get(ENTRY_HEAD..ENTRY_HEAD + kept)?;
            rest = &rest[ENTRY_HEAD + kept..];
            Some((head[0], oid, wire_len, value))
        })
    }

    pub fn len(&self) -> usize {
        self.entries().count()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Bytes held, for memory bounds.
    pub fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.len())
    }

    /// Each value, with whole printable-ASCII text (the common case: numbers, names)
    /// handed over as its bytes, which render as themselves without a UTF-8 check or
    /// a copy; anything else is rendered.
    pub fn iter_rendered(&self) -> impl Iterator<Item = Rendered<'_>> {
        self.entries().map(|(flags, oid, wire_len, v)| {
            if flags & NULL != 0 {
                Rendered::Null
            } else if flags & BINARY == 0
                && v.len() == wire_len
                && v.len() <= MAX_PARAM_CHARS
                && v.iter().all(|b| (0x20..0x7f).contains(b))
            {
                Rendered::Ascii(v)
            } else {
                Rendered::Text(render_kept(v, wire_len, flags & BINARY != 0, oid))
            }
        })
    }

    /// Each value as text, `None` for SQL NULL.
    pub fn iter(&self) -> impl Iterator<Item = Option<Cow<'_, str>>> {
        self.entries().map(|(flags, oid, wire_len, v)| {
            (flags & NULL == 0).then(|| render_kept(v, wire_len, flags & BINARY != 0, oid))
        })
    }
}

/// By the bytes kept, as `PartialEq` compares them.
impl std::hash::Hash for Params {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.as_deref().hash(h)
    }
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl serde::Serialize for Params {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// A parameter as [`Params::iter_rendered`] gives it.
pub enum Rendered<'a> {
    Null,
    /// Printable ASCII text, its own rendering.
    Ascii(&'a [u8]),
    Text(Cow<'a, str>),
}

/// Renders one parameter. `binary` is its format code; `type_oid` 0 when unknown.
pub fn render(value: &[u8], binary: bool, type_oid: u32) -> String {
    render_kept(value, value.len(), binary, type_oid).into_owned()
}

/// Renders the first bytes of a value of `wire_len` bytes.
fn render_kept(value: &[u8], wire_len: usize, binary: bool, type_oid: u32) -> Cow<'_, str> {
    let mut out = if !binary {
        let text = crate::output::fmt::utf8_lossless(value);
        if text.len() <= MAX_PARAM_CHARS && value.len() == wire_len {
            return text;
        }
        text.into_owned()
    } else {
        let mut s = String::new();
        if !binary::render(value, type_oid, &mut s) {
            binary::hex(value, &mut s);
        }
        s
    };
    if out.len() > MAX_PARAM_CHARS {
        let mut cut = MAX_PARAM_CHARS;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        let _ = write!(out, "…({wire_len} bytes)");
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values_by_type() {
        let cases: [(&[u8], u32, &str); 14] = [
            (&[0, 0, 0, 42], oid::INT4, "42"),
            (&[0xff, 0xfe], oid::INT2, "-2"),
            (&[0, 0, 0, 0, 0, 0, 1, 0], oid::INT8, "256"),
            (&[1], oid::BOOL, "t"),
            (&1.5f64.to_be_bytes(), oid::FLOAT8, "1.5"),
            (&2.25f32.to_be_bytes(), oid::FLOAT4, "2.25"),
            (b"hi", oid::TEXT, "hi"),
            (&[0xde, 0xad], oid::BYTEA, "\\xdead"),
            (
                &[
                    0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0, 1, 2, 3, 4, 5, 6, 7,
                ],
                oid::UUID,
                "12345678-9abc-def0-0001-020304050607",
            ),
            (
                &0i64.to_be_bytes(),
                oid::TIMESTAMPTZ,
                "2000-01-01 00:00:00+00",
            ),
            (&0i64.to_be_bytes(), oid::TIMESTAMP, "2000-01-01 00:00:00"),
            // 12345.678: ndigits 3, weight 1, sign +, dscale 3: 1 2345 6780
            (
                &[0, 3, 0, 1, 0, 0, 0, 3, 0, 1, 0x09, 0x29, 0x1a, 0x7c],
                oid::NUMERIC,
                "12345.678",
            ),
            (&[0, 0, 0, 5], 9999, "\\x00000005"),
            (&[1, 2, 3], oid::INT4, "\\x010203"),
        ];
        for (v, t, want) in cases {
            assert_eq!(render(v, true, t), want, "oid {t}");
        }
    }

    #[test]
    fn params_keep_values_and_render_them_later() {
        let big = vec![b'z'; 5000];
        // 2000 base-10000 digits (0x07d0) of 1, weight 999 (0x03e7): longer than MAX_KEPT.
        let mut numeric_big = [0x07, 0xd0, 0x03, 0xe7, 0, 0, 0, 0].to_vec();
        numeric_big.extend([0, 1].repeat(2000));
        let values: Vec<(Option<&[u8]>, bool, u32)> = vec![
            (Some(b"42"), false, 0),
            (None, false, 0),
            (Some(&[0, 0, 1, 0]), true, oid::INT4),
            (Some(&big), false, 0),
            (Some(&numeric_big), true, oid::NUMERIC),
            (Some(b""), false, 0),
        ];
        let p = Params::build(&mut Vec::new(), values.iter().copied());
        let got: Vec<Option<Cow<'_, str>>> = p.iter().collect();
        assert_eq!(got.len(), 6);
        assert_eq!(p.len(), 6);
        assert_eq!(got[0].as_deref(), Some("42"));
        assert_eq!(got[1], None);
        assert_eq!(got[2].as_deref(), Some("256"));
        // Cut when kept, and marked with the length on the wire.
        let cut = got[3].as_deref().unwrap();
        assert!(
            cut.starts_with("zzz") && cut.ends_with("…(5000 bytes)"),
            "{cut}"
        );
        assert!(p.bytes() < 2 * MAX_KEPT + numeric_big.len() + 6 * ENTRY_HEAD);
        // A long binary numeric is still decoded (then cut for display).
        let n = got[4].as_deref().unwrap();
        assert!(
            n.starts_with("100010001") && n.ends_with("…(4008 bytes)"),
            "{n}"
        );
        assert!(!n.starts_with("\\x"), "{n}");
        assert_eq!(got[5].as_deref(), Some(""));
        for (v, binary, oid) in values {
            if let Some(v) = v {
                let whole = render(v, binary, oid);
                let one = Params::build(&mut Vec::new(), [(Some(v), binary, oid)].into_iter());
                let kept: Vec<_> = one.iter().collect();
                assert_eq!(kept[0].as_deref(), Some(whole.as_str()));
            }
        }
        assert!(Params::build(&mut Vec::new(), std::iter::empty()).is_empty());
        assert_eq!(
            serde_json::to_string(&Params::from_texts(&[Some("a\""), None])).unwrap(),
            r#"["a\"",null]"#
        );
    }

    #[test]
    fn text_values_and_caps() {
        assert_eq!(render(b"abc", false, oid::INT4), "abc");
        let long = vec![b'a'; 1000];
        let r = render(&long, false, 0);
        assert!(r.starts_with("aaaa") && r.ends_with("…(1000 bytes)"));
        assert!(r.len() < 300);
        for v in [&b""[..], &[0xff; 3], &[0, 1, 0, 0, 0, 0, 0, 0, 0, 9]] {
            let _ = render(v, true, oid::NUMERIC);
        }
    }
}
