//! Bind parameter values rendered as text: text-format values as they are, binary
//! values decoded by type OID where the type is known ([`binary`]: as the server
//! prints them), hex otherwise. The values are kept by the session stage
//! ([`Params`]); rendering them is the presenters' part, done on their thread.

mod binary;

pub use binary::SCALAR_TYPES;

use super::jsonw::{all_bytes, class_table, min};
use crate::session::params::{Entry, MAX_KEPT, Params};
use std::borrow::Cow;
use std::fmt::Write as _;

/// Longest rendered value; longer ones are cut and marked.
pub const MAX_PARAM_CHARS: usize = 256;

// The session keeps enough bytes for this many characters of text or hex.
const _: () = assert!(MAX_KEPT >= 4 * MAX_PARAM_CHARS);

/// [`Params`] as text.
pub trait Render {
    /// Each value, with whole printable-ASCII text without quotes or backslashes (the
    /// common case: numbers, names) handed over as its bytes, which render as
    /// themselves, in JSON too, without a UTF-8 check, a copy or escaping; anything
    /// else is rendered.
    fn iter_rendered(&self) -> impl Iterator<Item = Rendered<'_>>;

    /// Each value as text, `None` for SQL NULL.
    fn texts(&self) -> impl Iterator<Item = Option<Cow<'_, str>>>;
}

impl Render for Params {
    fn iter_rendered(&self) -> impl Iterator<Item = Rendered<'_>> {
        self.entries().map(|e| {
            if e.null {
                Rendered::Null
            } else if !e.binary
                && e.kept.len() == e.wire_len
                && e.kept.len() <= MAX_PARAM_CHARS
                && all_bytes(e.kept, plain_ascii, &PLAIN_ASCII)
            {
                Rendered::Ascii(e.kept)
            } else {
                Rendered::Text(render_entry(e))
            }
        })
    }

    fn texts(&self) -> impl Iterator<Item = Option<Cow<'_, str>>> {
        self.entries().map(|e| (!e.null).then(|| render_entry(e)))
    }
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.texts()).finish()
    }
}

impl serde::Serialize for Params {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.texts())
    }
}

/// Non-zero for printable ASCII other than `"` and `\` (see [`all_bytes`]).
const fn plain_ascii(c: u8) -> u8 {
    let printable = min(c.saturating_sub(0x1F), 0x7Fu8.saturating_sub(c));
    min(printable, min(c ^ b'"', c ^ b'\\'))
}
static PLAIN_ASCII: [bool; 256] = class_table!(plain_ascii);

/// A parameter as [`Render::iter_rendered`] gives it.
pub enum Rendered<'a> {
    /// SQL NULL.
    Null,
    /// Printable ASCII text without `"` or `\`, its own rendering and JSON string.
    Ascii(&'a [u8]),
    /// The text.
    Text(Cow<'a, str>),
}

/// Renders one parameter. `binary` is its format code; `type_oid` 0 when unknown.
pub fn render(value: &[u8], binary: bool, type_oid: u32) -> String {
    render_kept(value, value.len(), binary, type_oid).into_owned()
}

fn render_entry(e: Entry<'_>) -> Cow<'_, str> {
    render_kept(e.kept, e.wire_len, e.binary, e.type_oid)
}

/// Renders the first bytes of a value of `wire_len` bytes.
fn render_kept(value: &[u8], wire_len: usize, binary: bool, type_oid: u32) -> Cow<'_, str> {
    let mut out = if !binary {
        let text = crate::text::utf8_lossless(value);
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
    use crate::session::params::{ENTRY_HEAD, oid};

    /// A byte other than printable ASCII, `"` or `\`, at any place of a value, makes
    /// it rendered (escaped) rather than copied.
    #[test]
    fn plain_ascii_finds_any_other_byte() {
        for len in 0..=40 {
            for at in 0..len {
                for c in 0..=255u8 {
                    let mut b = vec![b'a'; len];
                    b[at] = c;
                    let plain = (0x20..0x7F).contains(&c) && c != b'"' && c != b'\\';
                    let got = all_bytes(&b, plain_ascii, &PLAIN_ASCII);
                    assert_eq!(got, plain, "{len} {at} {c}");
                }
            }
        }
    }

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
        let got: Vec<Option<Cow<'_, str>>> = p.texts().collect();
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
                let kept: Vec<_> = one.texts().collect();
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
