//! SQL texts (and command tags) seen recently, shared by every connection: a
//! statement sent again and again (pgbench, ORMs, poolers) is checked as UTF-8 and
//! allocated once, and all its records share the one copy.
//!
//! A text is kept only from its second sighting (a table of recent hashes remembers
//! the first): statements with their literals inline (simple protocol, psql, many
//! ORMs) are mostly seen once, and keeping each would cost a copy and a map insert
//! per statement and hold megabytes for nothing. The map is bounded in bytes and in
//! entries; [`Texts::stats`] says how often it started over.

use super::shared::Text;
use crate::text::eq_bytes;
use rustc_hash::FxHashMap;

/// Longer texts are not kept (each use gets its own copy).
const MAX_TEXT: usize = 16 << 10;
/// The cache starts over once it holds this many bytes of text...
const MAX_BYTES: usize = 8 << 20;
/// ...or this many texts.
const MAX_TEXTS: usize = 32 << 10;
/// Slots of the table of texts seen once.
const SEEN: usize = 4096;

/// Slots of the front cache.
const FRONT: usize = 256;

/// A command tag, shared, with the row count it ends with (`INSERT 0 5` → 5).
pub(crate) type Tag = (Text, Option<u64>);

pub(crate) struct Texts {
    map: FxHashMap<Box<[u8]>, Text>,
    bytes: usize,
    /// Recent command tags with their row counts, parsed once per tag.
    tags: Box<[Option<Tag>]>,
    /// Recent texts by a cheap hash of their length and ends: one comparison instead
    /// of hashing the whole text, for the few texts a workload repeats. Holds only
    /// texts that are their wire bytes (valid UTF-8).
    front: Box<[Option<Text>]>,
    /// Hashes of texts seen once and not kept yet, by their low bits.
    seen: Box<[u64]>,
    stats: TextStats,
}

/// How the texts cache fared, for the run's closing figures.
#[derive(Default, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TextStats {
    /// Distinct texts kept (each from its second sighting).
    pub(crate) interned: u64,
    /// Times the cache was full and started over.
    pub(crate) resets: u64,
}

impl Default for Texts {
    fn default() -> Self {
        Texts {
            map: FxHashMap::default(),
            bytes: 0,
            tags: vec![None; FRONT].into(),
            front: vec![None; FRONT].into(),
            seen: vec![0; SEEN].into(),
            stats: TextStats::default(),
        }
    }
}

/// Front-cache slot of `raw`: its length and first and last eight bytes, mixed.
fn slot(raw: &[u8]) -> usize {
    let word = |b: Option<&[u8; 8]>| b.map_or(0, |b| u64::from_le_bytes(*b));
    let h = (raw.len() as u64)
        ^ word(raw.first_chunk::<8>()).rotate_left(17)
        ^ word(raw.last_chunk::<8>());
    (h.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize % FRONT
}

impl Texts {
    /// A CommandComplete tag and its row count.
    pub(crate) fn tag(&mut self, raw: &[u8]) -> Tag {
        let i = slot(raw);
        if let Some(t) = &self.tags[i]
            && eq_bytes(t.0.as_bytes(), raw)
        {
            return t.clone();
        }
        let text = self.get(raw);
        let tag = (text.clone(), super::rows_from_tag(&text));
        if text.len() == raw.len() {
            self.tags[i] = Some(tag.clone());
        }
        tag
    }

    /// The text of a prepared statement: cacheable however often it was seen (it
    /// runs as often as it is bound).
    pub(crate) fn statement(&mut self, raw: &[u8]) -> Text {
        self.lookup(raw, true)
    }

    /// The text of these wire bytes (invalid UTF-8 escaped as `\xNN`); cacheable
    /// when kept here.
    pub(crate) fn get(&mut self, raw: &[u8]) -> Text {
        self.lookup(raw, false)
    }

    fn lookup(&mut self, raw: &[u8], cacheable: bool) -> Text {
        let i = slot(raw);
        if let Some(t) = &self.front[i]
            && eq_bytes(t.as_bytes(), raw)
        {
            return t.clone();
        }
        if let Some(t) = self.map.get(raw) {
            if t.len() == raw.len() {
                self.front[i] = Some(t.clone());
            }
            return t.clone();
        }
        let text = crate::text::utf8_lossless(raw);
        if raw.len() > MAX_TEXT || !self.seen_before(raw) {
            return match cacheable {
                true => Text::new_cacheable(&text),
                false => Text::new(&text),
            };
        }
        let t = Text::new_cacheable(&text);
        if self.bytes + raw.len() > MAX_BYTES || self.map.len() >= MAX_TEXTS {
            self.map.clear();
            self.front.fill(None);
            self.tags.fill(None);
            self.bytes = 0;
            self.stats.resets += 1;
        }
        self.bytes += raw.len();
        self.stats.interned += 1;
        self.map.insert(raw.into(), t.clone());
        t
    }

    /// Whether `raw` (not in the map) was seen recently; remembers it if not.
    fn seen_before(&mut self, raw: &[u8]) -> bool {
        use std::hash::BuildHasher;
        // 0 marks an empty slot.
        let h = rustc_hash::FxBuildHasher.hash_one(raw) | 1;
        let slot = &mut self.seen[(h >> 52) as usize % SEEN];
        if *slot == h {
            *slot = 0;
            return true;
        }
        *slot = h;
        false
    }

    #[cfg(test)]
    pub(crate) fn stats(&self) -> TextStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_bytes_share_one_text() {
        let mut t = Texts::default();
        let first = t.get(b"select 1");
        assert!(!first.cacheable(), "kept from the second sighting");
        let a = t.get(b"select 1");
        let b = t.get(b"select 1");
        assert!(Text::ptr_eq(&a, &b));
        assert!(a.cacheable());
        assert!(t.statement(b"select 2").cacheable());
        assert_eq!(&*t.get(b"bad \xff"), "bad \\xff");
        let long = vec![b'x'; MAX_TEXT + 1];
        let (c, d) = (t.get(&long), t.get(&long));
        assert!(!Text::ptr_eq(&c, &d));
        assert_eq!(c, d);
    }

    #[test]
    fn tags_carry_their_row_counts() {
        let mut t = Texts::default();
        for _ in 0..2 {
            assert_eq!(t.tag(b"INSERT 0 5").1, Some(5));
            assert_eq!(t.tag(b"UPDATE 1").1, Some(1));
            assert_eq!(t.tag(b"BEGIN").1, None);
        }
        let (a, b) = (t.tag(b"SELECT 3"), t.tag(b"SELECT 3"));
        assert!(Text::ptr_eq(&a.0, &b.0));
        assert_eq!(&*t.tag(b"bad \xff").0, "bad \\xff");
    }

    #[test]
    fn front_cache_collisions_are_told_apart() {
        let mut t = Texts::default();
        // Same length and ends: the same front slot.
        let (a, b) = (
            &b"select * from t where x = 1 limit 5"[..],
            &b"select * from t where x = 2 limit 5"[..],
        );
        assert_eq!(slot(a), slot(b));
        for _ in 0..3 {
            assert_eq!(t.get(a).as_bytes(), a);
            assert_eq!(t.get(b).as_bytes(), b);
        }
        assert!(Text::ptr_eq(&t.get(a), &t.get(a)));
    }

    #[test]
    fn starts_over_when_full() {
        let mut t = Texts::default();
        let n = MAX_BYTES / MAX_TEXT + 2;
        for i in 0..n {
            let mut s = vec![b'a'; MAX_TEXT];
            s[..8].copy_from_slice(&(i as u64).to_be_bytes());
            t.get(&s);
            t.get(&s);
        }
        assert!(t.bytes <= MAX_BYTES);
        assert!(t.map.len() < n);
        assert_eq!(t.stats().interned, n as u64);
        assert_eq!(t.stats().resets, 1);
    }

    #[test]
    fn texts_seen_once_are_not_kept() {
        let mut t = Texts::default();
        for i in 0..200_000 {
            let s = format!("select abalance from pgbench_accounts where aid = {i}");
            assert_eq!(&*t.get(s.as_bytes()), s);
        }
        assert_eq!(t.map.len(), 0);
        assert_eq!(t.stats(), TextStats::default());
        // Repeating texts, as many as the cache holds and more: it stays bounded.
        for i in 0..(MAX_TEXTS + 10) {
            let s = format!("select {i}");
            t.get(s.as_bytes());
            assert!(t.get(s.as_bytes()).cacheable());
        }
        assert!(t.map.len() <= MAX_TEXTS);
        assert_eq!(t.stats().resets, 1);
    }
}
