//! Bind parameter values rendered as text: text-format values as they are, binary
//! values decoded by type OID where the type is known, hex otherwise.

use std::fmt::Write as _;

/// Longest rendered value; longer ones are cut and marked.
pub const MAX_PARAM_CHARS: usize = 256;

pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
}

/// Renders one parameter. `binary` is its format code; `type_oid` 0 when unknown.
pub fn render(value: &[u8], binary: bool, type_oid: u32) -> String {
    let mut out = if !binary {
        crate::output::fmt::utf8_lossless(value).into_owned()
    } else {
        decode_binary(value, type_oid).unwrap_or_else(|| {
            let mut s = String::from("\\x");
            crate::output::fmt::push_hex(&mut s, value);
            s
        })
    };
    if out.len() > MAX_PARAM_CHARS {
        let mut cut = MAX_PARAM_CHARS;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
        let _ = write!(out, "…({} bytes)", value.len());
    }
    out
}

fn be<const N: usize>(v: &[u8]) -> Option<[u8; N]> {
    v.try_into().ok()
}

/// PostgreSQL's epoch (2000-01-01) in Unix microseconds.
const PG_EPOCH_US: i64 = 946_684_800_000_000;

fn decode_binary(v: &[u8], type_oid: u32) -> Option<String> {
    Some(match type_oid {
        oid::BOOL => match v {
            [0] => "false".into(),
            [_] => "true".into(),
            _ => return None,
        },
        oid::INT2 => i16::from_be_bytes(be(v)?).to_string(),
        oid::INT4 => i32::from_be_bytes(be(v)?).to_string(),
        oid::OID => u32::from_be_bytes(be(v)?).to_string(),
        oid::INT8 => i64::from_be_bytes(be(v)?).to_string(),
        oid::FLOAT4 => f32::from_be_bytes(be(v)?).to_string(),
        oid::FLOAT8 => f64::from_be_bytes(be(v)?).to_string(),
        oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME => {
            crate::output::fmt::utf8_lossless(v).into_owned()
        }
        oid::BYTEA => {
            let mut s = String::from("\\x");
            crate::output::fmt::push_hex(&mut s, v);
            s
        }
        oid::UUID => {
            let b: [u8; 16] = be(v)?;
            let mut s = String::with_capacity(36);
            for (i, byte) in b.iter().enumerate() {
                if matches!(i, 4 | 6 | 8 | 10) {
                    s.push('-');
                }
                let _ = write!(s, "{byte:02x}");
            }
            s
        }
        oid::TIMESTAMP | oid::TIMESTAMPTZ => {
            let us = i64::from_be_bytes(be(v)?);
            match us {
                i64::MAX => "infinity".into(),
                i64::MIN => "-infinity".into(),
                _ => {
                    let mut s = String::new();
                    let unix_ns = us.checked_add(PG_EPOCH_US)?.checked_mul(1000)?;
                    crate::output::fmt::rfc3339(unix_ns, &mut s);
                    if type_oid == oid::TIMESTAMP {
                        s.pop(); // no zone
                    }
                    s
                }
            }
        }
        oid::DATE => {
            let days = i32::from_be_bytes(be(v)?) as i64;
            let mut s = String::new();
            crate::output::fmt::rfc3339((days * 86_400 + 946_684_800) * 1_000_000_000, &mut s);
            s.truncate(10);
            s
        }
        oid::NUMERIC => numeric(v)?,
        _ => return None,
    })
}

/// Binary numeric: ndigits, weight, sign, dscale, then base-10000 digits.
fn numeric(v: &[u8]) -> Option<String> {
    let word = |i: usize| -> Option<i16> { Some(i16::from_be_bytes(be(v.get(i..i + 2)?)?)) };
    let ndigits = word(0)? as usize;
    let weight = word(2)? as i32;
    let sign = word(4)? as u16;
    let dscale = word(6)?.max(0) as usize;
    if v.len() != 8 + 2 * ndigits || dscale > 1000 || weight.abs() > 1000 {
        return None;
    }
    match sign {
        0xC000 => return Some("NaN".into()),
        0xD000 => return Some("Infinity".into()),
        0xF000 => return Some("-Infinity".into()),
        0 | 0x4000 => {}
        _ => return None,
    }
    let digit = |k: i32| -> i16 {
        if k >= 0 && (k as usize) < ndigits {
            word(8 + 2 * k as usize).unwrap_or(0)
        } else {
            0
        }
    };
    let mut s = String::new();
    if sign == 0x4000 {
        s.push('-');
    }
    if weight < 0 {
        s.push('0');
    }
    for k in 0..=weight {
        let d = digit(k);
        if k == 0 {
            let _ = write!(s, "{d}");
        } else {
            let _ = write!(s, "{d:04}");
        }
    }
    if dscale > 0 {
        s.push('.');
        let mut frac = String::new();
        let mut k = weight + 1;
        while frac.len() < dscale {
            let _ = write!(frac, "{:04}", digit(k));
            k += 1;
        }
        frac.truncate(dscale);
        s.push_str(&frac);
    }
    Some(s)
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
            (&[1], oid::BOOL, "true"),
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
                "2000-01-01T00:00:00.000000Z",
            ),
            (
                &0i64.to_be_bytes(),
                oid::TIMESTAMP,
                "2000-01-01T00:00:00.000000",
            ),
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
