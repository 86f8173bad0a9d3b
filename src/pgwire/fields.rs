//! Checked readers and borrowed list views shared by all message decoders.
//!
//! Every list is validated once when the message is decoded, so iterating it
//! later cannot fail; the iterators still use the checked cursor and simply
//! stop early instead of panicking should that invariant ever break.

use std::fmt;
use std::marker::PhantomData;

/// Why a body failed to parse; ends up in `Body::Malformed`.
pub(crate) type Bad = &'static str;

const SHORT: Bad = "field extends past the end of the message";

/// Big-endian reader over a borrowed slice; every read is bounds-checked.
#[derive(Clone, Copy, Debug)]
pub struct Cursor<'a> {
    rest: &'a [u8],
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { rest: buf }
    }

    pub(crate) fn remaining(&self) -> &'a [u8] {
        self.rest
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Bad> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(SHORT)?;
        self.rest = tail;
        Ok(head)
    }

    /// Everything left (raw payloads such as CopyData).
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.rest)
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Bad> {
        self.take(N)?.try_into().map_err(|_| SHORT)
    }

    pub(crate) fn peek_u8(&self) -> Result<u8, Bad> {
        self.rest.first().copied().ok_or(SHORT)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Bad> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    pub(crate) fn u16(&mut self) -> Result<u16, Bad> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Bad> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Result<i32, Bad> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    /// NUL-terminated string, returned without its terminator.
    #[inline(always)]
    pub(crate) fn cstr(&mut self) -> Result<&'a [u8], Bad> {
        // Names are mostly empty (the unnamed statement and portal): skip the call.
        if let Some((0, rest)) = self.rest.split_first() {
            self.rest = rest;
            return Ok(&[]);
        }
        let n = find_nul(self.rest).ok_or("unterminated string")?;
        let s = self.take(n)?;
        self.take(1)?;
        Ok(s)
    }

    /// Int32 length + bytes, where length -1 means SQL NULL.
    pub(crate) fn value(&mut self) -> Result<Option<&'a [u8]>, Bad> {
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err("negative value length"),
            n => self.take(n as usize).map(Some),
        }
    }
}

/// The first NUL byte. Names and tags are short but mostly followed by more of the
/// body (a Bind's statement name, a column's name): the first 16 bytes are tested as
/// two words, where memchr's call and dispatch cost more than the search; memchr
/// only past them (SQL texts, where a byte loop was a good part of decoding).
#[inline]
pub(crate) fn find_nul(b: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // The lowest flagged byte is the first zero (a borrow only flags bytes above it).
    let first_zero = |w: u64| {
        let z = w.wrapping_sub(LO) & !w & HI;
        (z != 0).then_some(z.trailing_zeros() as usize / 8)
    };
    let word = |at: usize| {
        b.get(at..at + 8)
            .map(|w| u64::from_le_bytes(w.try_into().unwrap()))
    };
    match b.len() {
        0..8 => b.iter().position(|&c| c == 0),
        8..=16 => {
            let tail = b.len() - 8;
            first_zero(word(0)?).or_else(|| first_zero(word(tail)?).map(|i| tail + i))
        }
        _ => first_zero(word(0)?)
            .or_else(|| first_zero(word(8)?).map(|i| 8 + i))
            .or_else(|| nul_after_16(b)),
    }
}

/// Out of line, so that `find_nul` stays small enough to inline where strings are read.
#[inline(never)]
fn nul_after_16(b: &[u8]) -> Option<usize> {
    memchr::memchr(0, b.get(16..)?).map(|i| 16 + i)
}

/// One element of a wire-level list.
pub trait Item<'a>: Sized {
    fn read(c: &mut Cursor<'a>) -> Result<Self, Bad>;
    /// Checks and passes one element, as decoding a list does: the same errors as
    /// `read`, without building what nobody reads yet.
    #[inline]
    fn skip(c: &mut Cursor<'a>) -> Result<(), Bad> {
        Self::read(c).map(drop)
    }
}

/// Format codes (Int16).
impl<'a> Item<'a> for u16 {
    fn read(c: &mut Cursor<'a>) -> Result<Self, Bad> {
        c.u16()
    }
}

/// Type OIDs (Int32).
impl<'a> Item<'a> for u32 {
    fn read(c: &mut Cursor<'a>) -> Result<Self, Bad> {
        c.u32()
    }
}

/// Length-prefixed values (parameters, columns); `None` is SQL NULL.
impl<'a> Item<'a> for Option<&'a [u8]> {
    fn read(c: &mut Cursor<'a>) -> Result<Self, Bad> {
        c.value()
    }
}

/// NUL-terminated strings (SASL mechanisms, protocol option names).
impl<'a> Item<'a> for &'a [u8] {
    fn read(c: &mut Cursor<'a>) -> Result<Self, Bad> {
        c.cstr()
    }
}

/// ErrorResponse/NoticeResponse field: code byte + string.
impl<'a> Item<'a> for (u8, &'a [u8]) {
    fn read(c: &mut Cursor<'a>) -> Result<Self, Bad> {
        Ok((c.u8()?, c.cstr()?))
    }
}

/// StartupMessage parameter: name + value.
impl<'a> Item<'a> for (&'a [u8], &'a [u8]) {
    fn read(c: &mut Cursor<'a>) -> Result<Self, Bad> {
        Ok((c.cstr()?, c.cstr()?))
    }
}

/// One RowDescription column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDesc<'a> {
    pub(crate) name: &'a [u8],
    pub(crate) table_oid: u32,
    pub(crate) column: i16,
    pub(crate) type_oid: u32,
    pub(crate) typlen: i16,
    pub(crate) typmod: i32,
    pub(crate) format: u16,
}

impl<'a> Item<'a> for FieldDesc<'a> {
    fn read(c: &mut Cursor<'a>) -> Result<Self, Bad> {
        let name = c.cstr()?;
        // The fixed 18 bytes after the name with one length check, not six: every
        // RowDescription validates each of its columns.
        let b: [u8; 18] = c.array()?;
        let two = |i: usize| [b[i], b[i + 1]];
        let four = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Ok(FieldDesc {
            name,
            table_oid: u32::from_be_bytes(four(0)),
            column: i16::from_be_bytes(two(4)),
            type_oid: u32::from_be_bytes(four(6)),
            typlen: i16::from_be_bytes(two(10)),
            typmod: i32::from_be_bytes(four(12)),
            format: u16::from_be_bytes(two(16)),
        })
    }

    /// Every RowDescription checks its columns, and only message records read them.
    #[inline]
    fn skip(c: &mut Cursor<'a>) -> Result<(), Bad> {
        c.cstr()?;
        c.take(18).map(drop)
    }
}

/// A validated, borrowed list of `T` on the wire (zero copy).
pub struct List<'a, T> {
    count: usize,
    raw: &'a [u8],
    _item: PhantomData<fn() -> T>,
}

pub(crate) type Formats<'a> = List<'a, u16>;
pub(crate) type Oids<'a> = List<'a, u32>;
pub(crate) type Values<'a> = List<'a, Option<&'a [u8]>>;
pub(crate) type Strings<'a> = List<'a, &'a [u8]>;
pub(crate) type Fields<'a> = List<'a, FieldDesc<'a>>;
pub(crate) type ErrorFields<'a> = List<'a, (u8, &'a [u8])>;

impl<T> List<'_, T> {
    /// A list of no items (in place of withheld ones).
    pub(crate) fn empty() -> Self {
        List {
            count: 0,
            raw: &[],
            _item: PhantomData,
        }
    }
}

impl<'a, T: Item<'a>> List<'a, T> {
    /// Reads exactly `count` items.
    #[inline]
    pub(crate) fn read(c: &mut Cursor<'a>, count: usize) -> Result<Self, Bad> {
        let start = c.remaining();
        // Every item consumes at least one byte, so a hostile count ends
        // with an error once the body runs out instead of looping long.
        for _ in 0..count {
            T::skip(c)?;
        }
        Ok(Self::span(start, c, count))
    }

    /// Reads an Int16 count followed by that many items.
    #[inline]
    pub(crate) fn read_counted(c: &mut Cursor<'a>) -> Result<Self, Bad> {
        let n = c.u16()?;
        Self::read(c, n.into())
    }

    /// Reads items until a NUL byte, which is consumed but not part of the list.
    pub(crate) fn read_until_nul(c: &mut Cursor<'a>) -> Result<Self, Bad> {
        let start = c.remaining();
        let mut count = 0;
        while c.peek_u8().map_err(|_| "list not terminated")? != 0 {
            T::skip(c)?;
            count += 1;
        }
        let list = Self::span(start, c, count);
        c.u8()?;
        Ok(list)
    }

    fn span(start: &'a [u8], c: &Cursor<'a>, count: usize) -> Self {
        let used = start.len() - c.remaining().len();
        List {
            count,
            raw: start.get(..used).unwrap_or_default(),
            _item: PhantomData,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.count
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The list's bytes as on the wire (without count prefix or terminator).
    pub(crate) fn raw(&self) -> &'a [u8] {
        self.raw
    }

    pub fn iter(&self) -> ListIter<'a, T> {
        ListIter {
            cur: Cursor::new(self.raw),
            left: self.count,
            _item: PhantomData,
        }
    }
}

impl Formats<'_> {
    /// Whether parameter (or column) `i` is in binary format: no codes means all text,
    /// one code applies to all, otherwise one code each.
    pub(crate) fn is_binary(&self, i: usize) -> bool {
        let at = if self.len() == 1 { 0 } else { i };
        self.iter().nth(at) == Some(1)
    }
}

impl<'a> ErrorFields<'a> {
    /// Value of the first field with this code (e.g. `b'C'` for SQLSTATE).
    pub(crate) fn get(&self, code: u8) -> Option<&'a [u8]> {
        self.iter().find(|&(c, _)| c == code).map(|(_, v)| v)
    }
}

impl<T> Clone for List<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for List<'_, T> {}

impl<T> PartialEq for List<'_, T> {
    fn eq(&self, other: &Self) -> bool {
        self.count == other.count && self.raw == other.raw
    }
}

impl<T> Eq for List<'_, T> {}

impl<'a, T: Item<'a> + fmt::Debug> fmt::Debug for List<'a, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<'a, T: Item<'a>> IntoIterator for List<'a, T> {
    type Item = T;
    type IntoIter = ListIter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

pub struct ListIter<'a, T> {
    cur: Cursor<'a>,
    left: usize,
    _item: PhantomData<fn() -> T>,
}

impl<'a, T: Item<'a>> Iterator for ListIter<'a, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.left = self.left.checked_sub(1)?;
        let item = T::read(&mut self.cur).ok();
        if item.is_none() {
            self.left = 0;
        }
        item
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.left))
    }
}

/// Iterates the (name, value) pairs of a StartupMessage's raw parameter
/// list; stops at the terminating empty name or at the end of `raw`.
pub(crate) fn startup_params(raw: &[u8]) -> impl Iterator<Item = (&[u8], &[u8])> {
    let mut c = Cursor::new(raw);
    std::iter::from_fn(move || match c.peek_u8() {
        Ok(0) | Err(_) => None,
        Ok(_) => <(&[u8], &[u8])>::read(&mut c).ok(),
    })
}

/// Name of an ErrorResponse/NoticeResponse field code, as in the protocol docs.
pub(crate) fn error_field_name(code: u8) -> Option<&'static str> {
    Some(match code {
        b'S' => "severity",
        b'V' => "severity_nonlocalized",
        b'C' => "code",
        b'M' => "message",
        b'D' => "detail",
        b'H' => "hint",
        b'P' => "position",
        b'p' => "internal_position",
        b'q' => "internal_query",
        b'W' => "where",
        b's' => "schema_name",
        b't' => "table_name",
        b'c' => "column_name",
        b'd' => "data_type_name",
        b'n' => "constraint_name",
        b'F' => "file",
        b'L' => "line",
        b'R' => "routine",
        _ => return None,
    })
}
