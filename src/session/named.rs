//! Prepared statements or portals of one connection, by name.
//!
//! Most drivers use only the unnamed statement and portal, so that one lives in a
//! slot of its own: no hashing, and no comparison of empty keys (glibc's AVX-512
//! `memcmp` of zero bytes at `String::new()`'s dangling pointer costs a masked load
//! from an unmapped page, which took a third of the decoding time on pgbench).

use rustc_hash::FxHashMap;

pub(crate) struct Named<V> {
    unnamed: Option<V>,
    named: FxHashMap<String, V>,
    cap: usize,
}

impl<V> Named<V> {
    /// At most `cap` named entries are kept; the unnamed one always is.
    pub(crate) fn new(cap: usize) -> Self {
        Named {
            unnamed: None,
            named: FxHashMap::default(),
            cap,
        }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&V> {
        if name.is_empty() {
            self.unnamed.as_ref()
        } else {
            self.named.get(name)
        }
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut V> {
        if name.is_empty() {
            self.unnamed.as_mut()
        } else {
            self.named.get_mut(name)
        }
    }

    /// Inserts or replaces; a new name beyond the cap is dropped (and later lookups
    /// of it find nothing, as for a statement prepared before the capture began).
    pub(crate) fn insert(&mut self, name: String, v: V) {
        if name.is_empty() {
            self.unnamed = Some(v);
        } else if self.named.len() < self.cap || self.named.contains_key(&name) {
            self.named.insert(name, v);
        }
    }

    pub(crate) fn remove(&mut self, name: &str) -> Option<V> {
        if name.is_empty() {
            self.unnamed.take()
        } else {
            self.named.remove(name)
        }
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
}
