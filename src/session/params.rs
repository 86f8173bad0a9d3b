//! Bind parameter values as they came, kept for the presenters: one allocation per
//! Bind with each value's format, type and bytes (as many as rendering can use).
//! Rendering them as text is presentation: `output::params`.

use super::shared::OwnerRc;

pub(crate) mod oid {
    pub(crate) const BOOL: u32 = 16;
    pub(crate) const BYTEA: u32 = 17;
    pub(crate) const CHAR: u32 = 18;
    pub(crate) const NAME: u32 = 19;
    pub(crate) const INT8: u32 = 20;
    pub(crate) const INT2: u32 = 21;
    pub(crate) const INT4: u32 = 23;
    pub(crate) const TEXT: u32 = 25;
    pub(crate) const OID: u32 = 26;
    pub(crate) const CIDR: u32 = 650;
    pub(crate) const FLOAT4: u32 = 700;
    pub(crate) const FLOAT8: u32 = 701;
    pub(crate) const INET: u32 = 869;
    pub(crate) const BPCHAR: u32 = 1042;
    pub(crate) const VARCHAR: u32 = 1043;
    pub(crate) const DATE: u32 = 1082;
    pub(crate) const TIME: u32 = 1083;
    pub(crate) const TIMESTAMP: u32 = 1114;
    pub(crate) const TIMESTAMPTZ: u32 = 1184;
    pub(crate) const INTERVAL: u32 = 1186;
    pub(crate) const TIMETZ: u32 = 1266;
    pub(crate) const NUMERIC: u32 = 1700;
    pub(crate) const UUID: u32 = 2950;
}

/// Bytes of a value kept for rendering: enough for the presenter's longest rendered
/// value (`output::params::MAX_PARAM_CHARS`, which checks this) of text or of hex;
/// binary numerics and arrays are kept whole up to a larger cap, since a cut numeric
/// can no longer be decoded, and an array's text can be much shorter than its bytes
/// (an array cut there renders as far as the presenter's cap goes).
pub(crate) const MAX_KEPT: usize = 1024;
const MAX_KEPT_WHOLE: usize = 16 << 10;

/// Flags of a kept value.
const NULL: u8 = 1;
const BINARY: u8 = 2;
/// Flags (1), type OID (4), length on the wire (4), bytes kept (4).
pub(crate) const ENTRY_HEAD: usize = 13;

/// The bind parameters of one portal as they came: one shared allocation per Bind,
/// rendered as text (by format and type) only when a presenter asks, on its thread
/// (`output::params::Render`).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Params(Option<OwnerRc<[u8]>>);

impl Params {
    /// See [`OwnerRc::detached`].
    pub(crate) fn detached(&self) -> Params {
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
            let keep = if binary && (oid == oid::NUMERIC || array_element(oid).is_some()) {
                MAX_KEPT_WHOLE
            } else {
                MAX_KEPT
            };
            let kept = v.map_or(&[][..], |v| &v[..v.len().min(keep)]);
            let flags = if v.is_none() { NULL } else { 0 } | if binary { BINARY } else { 0 };
            let wire_len = v.map_or(0, |v| u32::try_from(v.len()).unwrap_or(u32::MAX));
            // The head built in place and appended whole: one capacity check, not four.
            let mut head = [flags; ENTRY_HEAD];
            head[1..5].copy_from_slice(&oid.to_le_bytes());
            head[5..9].copy_from_slice(&wire_len.to_le_bytes());
            head[9..13].copy_from_slice(&(kept.len() as u32).to_le_bytes());
            scratch.extend_from_slice(&head);
            scratch.extend_from_slice(kept);
        }
        if scratch.is_empty() {
            Params(None)
        } else {
            Params(Some(OwnerRc::new(&scratch[..])))
        }
    }

    #[cfg(test)]
    /// Text-format values (tests and synthetic records).
    pub(crate) fn from_texts(values: &[Option<&str>]) -> Params {
        let it = values.iter().map(|v| (v.map(str::as_bytes), false, 0));
        Params::build(&mut Vec::new(), it)
    }

    /// Each value as kept.
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        let mut rest: &[u8] = self.0.as_deref().unwrap_or_default();
        std::iter::from_fn(move || {
            let head = rest.get(..ENTRY_HEAD)?;
            let word =
                |i: usize| u32::from_le_bytes([head[i], head[i + 1], head[i + 2], head[i + 3]]);
            let (oid, wire_len, kept) = (word(1), word(5) as usize, word(9) as usize);
            let value = rest.get(ENTRY_HEAD..ENTRY_HEAD + kept)?;
            rest = &rest[ENTRY_HEAD + kept..];
            Some(Entry {
                null: head[0] & NULL != 0,
                binary: head[0] & BINARY != 0,
                type_oid: oid,
                wire_len,
                kept: value,
            })
        })
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries().count()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Bytes held, for memory bounds.
    pub(crate) fn bytes(&self) -> usize {
        self.0.as_ref().map_or(0, |b| b.len())
    }
}

/// By the bytes kept, as `PartialEq` compares them.
impl std::hash::Hash for Params {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.as_deref().hash(h)
    }
}

/// One value of [`Params`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry<'a> {
    /// SQL NULL (no bytes).
    pub(crate) null: bool,
    /// Its format code.
    pub(crate) binary: bool,
    /// 0 when unknown.
    pub(crate) type_oid: u32,
    /// Its length on the wire; `kept` may be shorter.
    pub(crate) wire_len: usize,
    pub(crate) kept: &'a [u8],
}

/// Array type OIDs with their element type, for every scalar type the presenter
/// decodes (`output::params::SCALAR_TYPES`).
pub const ARRAY_TYPES: [(u32, u32); 23] = [
    (1000, oid::BOOL),
    (1001, oid::BYTEA),
    (1003, oid::NAME),
    (1005, oid::INT2),
    (1007, oid::INT4),
    (1009, oid::TEXT),
    (1014, oid::BPCHAR),
    (1015, oid::VARCHAR),
    (1016, oid::INT8),
    (1021, oid::FLOAT4),
    (1022, oid::FLOAT8),
    (1028, oid::OID),
    (1041, oid::INET),
    (651, oid::CIDR),
    (1115, oid::TIMESTAMP),
    (1182, oid::DATE),
    (1183, oid::TIME),
    (1185, oid::TIMESTAMPTZ),
    (1187, oid::INTERVAL),
    (1231, oid::NUMERIC),
    (1270, oid::TIMETZ),
    (2951, oid::UUID),
    (1002, oid::CHAR),
];

/// The element type of an array type the presenter decodes.
pub(crate) fn array_element(type_oid: u32) -> Option<u32> {
    ARRAY_TYPES
        .iter()
        .find(|(a, _)| *a == type_oid)
        .map(|(_, e)| *e)
}
