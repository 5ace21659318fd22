//! An index shared by a snapshot and the snapshots bindings make from it
//! (SPEC §12), so a binding adds one entry instead of copying the index.
//!
//! The base map is built once; a binding adds a hint (its serial or MAC to
//! the device's position) that every sharer sees. That is safe because no
//! entry is trusted: the caller checks each one against its own devices, so
//! a hint an older snapshot sees (the device there has no such serial)
//! is simply not a hit there.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::RwLock;

#[derive(Debug, Default)]
pub struct HintedIndex<K, V> {
    base: HashMap<K, V>,
    hints: RwLock<HashMap<K, Vec<V>>>,
}

impl<K: Eq + Hash, V: Copy + PartialEq> HintedIndex<K, V> {
    pub fn new(base: HashMap<K, V>) -> Self {
        HintedIndex {
            base,
            hints: RwLock::default(),
        }
    }

    /// The first entry for `key` that `holds` confirms: the base map's,
    /// then the hints, oldest first.
    pub fn find<Q>(&self, key: &Q, holds: impl Fn(V) -> bool) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if let Some(&v) = self.base.get(key).filter(|&&v| holds(v)) {
            return Some(v);
        }
        let hints = self.hints.read().unwrap_or_else(|p| p.into_inner());
        hints.get(key)?.iter().copied().find(|&v| holds(v))
    }

    /// Note that `key` is (now) at `value`, for the snapshots made after.
    pub fn hint(&self, key: K, value: V) {
        let mut hints = self.hints.write().unwrap_or_else(|p| p.into_inner());
        let at = hints.entry(key).or_default();
        if !at.contains(&value) {
            at.push(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_count_only_when_confirmed() {
        let idx = HintedIndex::new(HashMap::from([("a", 1), ("b", 2)]));
        assert_eq!(idx.find("a", |_| true), Some(1));
        assert_eq!(idx.find("a", |v| v != 1), None);
        idx.hint("a", 7);
        idx.hint("a", 7);
        idx.hint("c", 3);
        // The base entry no longer holds (the device was rebound): the hint does.
        assert_eq!(idx.find("a", |v| v != 1), Some(7));
        assert_eq!(idx.find("c", |v| v == 3), Some(3));
        assert_eq!(idx.find("c", |v| v == 4), None);
        assert_eq!(idx.find("d", |_| true), None);
    }
}
