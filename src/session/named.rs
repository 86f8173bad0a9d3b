//! Prepared statements or portals of one connection, by name.
//!
//! Most drivers use only the unnamed statement and portal, so that one lives in a
//! slot of its own: no hashing, and no comparison of empty keys (glibc's AVX-512
//! `memcmp` of zero bytes at `String::new()`'s dangling pointer costs a masked load
//! from an unmapped page, which took a third of the decoding time on pgbench).
//!
//! Named entries live in a vector that a map indexes by name. A client runs the few
//! statements it prepared over and over (pgbench's `P_0`…`P_n`, a driver's cache),
//! each looked up by its Bind and again by its Execute: a small table remembers the
//! slot of each recent name, found with one short comparison instead of hashing and
//! probing the map. Its entries are hints, never trusted: one counts only when the
//! slot it names holds that very name, so no change of the map (a Parse replacing a
//! name, Close, a slot moved by a removal) can make a lookup find the wrong entry.

use rustc_hash::FxHashMap;
use std::cell::Cell;

/// Slots of the recent-names table.
const RECENT: usize = 16;

pub(crate) struct Named<V> {
    unnamed: Option<V>,
    /// Named entries, in no order.
    slots: Vec<(String, V)>,
    /// Name → index in `slots`.
    index: FxHashMap<String, u32>,
    /// Index in `slots` of a recent name, by [`recent`] of the name (a hint).
    recent: [Cell<u32>; RECENT],
    cap: usize,
}

/// A name's place in the recent-names table: its length and last two bytes, which
/// tell apart the numbered names that clients generate.
#[inline(always)]
fn recent(name: &[u8]) -> usize {
    let [.., a, b] = name else {
        return name.len() % RECENT;
    };
    (usize::from(*b) ^ usize::from(*a).wrapping_mul(3) ^ name.len().wrapping_mul(5)) % RECENT
}

impl<V> Named<V> {
    /// At most `cap` named entries are kept; the unnamed one always is.
    pub(crate) fn new(cap: usize) -> Self {
        Named {
            unnamed: None,
            slots: Vec::new(),
            index: FxHashMap::default(),
            recent: Default::default(),
            cap,
        }
    }

    /// The slot of a named entry: through the recent-names table, else the map.
    #[inline]
    fn find(&self, name: &str) -> Option<usize> {
        let hint = &self.recent[recent(name.as_bytes())];
        let i = hint.get() as usize;
        if self
            .slots
            .get(i)
            .is_some_and(|(n, _)| crate::text::eq_bytes(n.as_bytes(), name.as_bytes()))
        {
            return Some(i);
        }
        let i = *self.index.get(name)? as usize;
        hint.set(i as u32);
        Some(i)
    }

    // Always inlined: the unnamed entry's test is all most lookups need.
    #[inline(always)]
    pub(crate) fn get(&self, name: &str) -> Option<&V> {
        if name.is_empty() {
            self.unnamed.as_ref()
        } else {
            self.find(name).map(|i| &self.slots[i].1)
        }
    }

    /// An entry by its name's wire bytes. A recent name is found by its bytes alone:
    /// equal to a kept name, they are valid UTF-8 and so the name unchanged (see
    /// `text::utf8_lossless`), and need no check.
    #[inline(always)]
    pub(crate) fn get_wire(&self, wire: &[u8]) -> Option<&V> {
        if wire.is_empty() {
            return self.unnamed.as_ref();
        }
        let i = self.recent[recent(wire)].get() as usize;
        let i = match self.slots.get(i) {
            Some((n, _)) if crate::text::eq_bytes(n.as_bytes(), wire) => i,
            _ => self.find(&crate::text::utf8_lossless(wire))?,
        };
        Some(&self.slots[i].1)
    }

    #[inline(always)]
    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        if name.is_empty() {
            self.unnamed.as_mut()
        } else {
            self.find(name).map(|i| &mut self.slots[i].1)
        }
    }

    /// Inserts or replaces; a new name beyond the cap is dropped (and later lookups
    /// of it find nothing, as for a statement prepared before the capture began).
    pub(crate) fn insert(&mut self, name: String, v: V) {
        if name.is_empty() {
            self.unnamed = Some(v);
        } else if let Some(i) = self.find(&name) {
            self.slots[i].1 = v;
        } else if self.slots.len() < self.cap {
            self.index.insert(name.clone(), self.slots.len() as u32);
            self.slots.push((name, v));
        }
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<V> {
        if name.is_empty() {
            return self.unnamed.take();
        }
        let i = self.index.remove(name)? as usize;
        // The last slot moves into the hole: its index follows it.
        let (_, v) = self.slots.swap_remove(i);
        if let Some((moved, _)) = self.slots.get(i) {
            self.index.insert(moved.clone(), i as u32);
        }
        Some(v)
    }
}

#[cfg(test)]
mod tests {
    use super::Named;

    #[test]
    fn unnamed_and_named_entries_and_the_cap() {
        let mut m = Named::new(2);
        m.insert(String::new(), 0);
        m.insert("a".into(), 1);
        m.insert("b".into(), 2);
        m.insert("c".into(), 3); // beyond the cap: dropped
        m.insert("a".into(), 10); // replacing is always allowed
        assert_eq!(m.get(""), Some(&0));
        assert_eq!(m.get("a"), Some(&10));
        assert_eq!(m.get("c"), None);
        *m.get_mut("").unwrap() = 5;
        assert_eq!(m.remove(""), Some(5));
        assert_eq!(m.get(""), None);
        assert_eq!(m.remove("b"), Some(2));
        m.insert("c".into(), 3); // room again
        assert_eq!(m.get("c"), Some(&3));
    }

    /// The recent-names table against a plain map, through inserts, replacements
    /// and removals that move slots, with names that share table places.
    #[test]
    fn lookups_agree_with_a_plain_map() {
        let mut m = Named::new(40);
        let mut model = std::collections::HashMap::new();
        let mut x = 12345u64;
        for step in 0..20_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let name = format!("P_{}", (x >> 33) % 48);
            match (x >> 20) % 8 {
                0 => {
                    assert_eq!(m.remove(&name), model.remove(&name), "{name}");
                }
                1 | 2 => {
                    m.insert(name.clone(), step);
                    if model.len() < 40 || model.contains_key(&name) {
                        model.insert(name.clone(), step);
                    }
                }
                3 => {
                    if let Some(v) = m.get_mut(&name) {
                        *v += 1;
                    }
                    if let Some(v) = model.get_mut(&name) {
                        *v += 1;
                    }
                }
                _ => {}
            }
            assert_eq!(m.get(&name), model.get(&name), "{name} at {step}");
        }
        for (k, v) in &model {
            assert_eq!(m.get(k), Some(v));
        }
    }
}
