//! An ordered set for the small sets the engine keeps (indexes to kick, nodes left out of a round):
//! a `SortedMap` with nothing in its values. Why not `BTreeSet`: see `sorted_map.rs`.

use std::borrow::Borrow;

use super::sorted_map::SortedMap;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedSet<K> {
    map: SortedMap<K, ()>,
}

impl<K> Default for SortedSet<K> {
    fn default() -> Self {
        SortedSet { map: SortedMap::default() }
    }
}

impl<K: Ord> SortedSet<K> {
    pub fn new() -> Self {
        SortedSet::default()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    pub fn contains<Q>(&self, item: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.contains_key(item)
    }

    /// Adds `item`; false when it was there already.
    pub fn insert(&mut self, item: K) -> bool {
        self.map.insert(item, ()).is_none()
    }

    /// Takes `item` out; false when it was not there.
    pub fn remove<Q>(&mut self, item: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.map.remove(item).is_some()
    }

    /// Moves every item of `other` into this set, leaving `other` empty.
    pub fn append(&mut self, other: &mut SortedSet<K>) {
        self.extend(std::mem::take(other).map.into_keys());
    }

    pub fn iter(&self) -> impl DoubleEndedIterator<Item = &K> + ExactSizeIterator {
        self.map.keys()
    }
}

impl<K: Ord> FromIterator<K> for SortedSet<K> {
    fn from_iter<I: IntoIterator<Item = K>>(items: I) -> Self {
        SortedSet { map: items.into_iter().map(|k| (k, ())).collect() }
    }
}

impl<K: Ord> Extend<K> for SortedSet<K> {
    fn extend<I: IntoIterator<Item = K>>(&mut self, items: I) {
        self.map.extend(items.into_iter().map(|k| (k, ())));
    }
}

impl<K> IntoIterator for SortedSet<K> {
    type Item = K;
    type IntoIter = std::iter::Map<std::vec::IntoIter<(K, ())>, fn((K, ())) -> K>;
    fn into_iter(self) -> Self::IntoIter {
        self.map.into_iter().map(|(k, ())| k)
    }
}

impl<'a, K: Ord> IntoIterator for &'a SortedSet<K> {
    type Item = &'a K;
    type IntoIter = std::iter::Map<<&'a SortedMap<K, ()> as IntoIterator>::IntoIter, fn((&'a K, &'a ())) -> &'a K>;
    fn into_iter(self) -> Self::IntoIter {
        (&self.map).into_iter().map(|(k, ())| k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_each_item_once_in_order() {
        let mut set: SortedSet<String> = ["b", "a", "c", "a"].into_iter().map(String::from).collect();
        assert!(!set.insert("b".into()));
        assert!(set.remove("c"));
        assert!(!set.remove("c"));
        let mut more: SortedSet<String> = ["0".to_string(), "b".to_string()].into_iter().collect();
        set.append(&mut more);
        assert!(more.is_empty());
        assert_eq!(set.iter().map(String::as_str).collect::<Vec<_>>(), ["0", "a", "b"]);
        assert!(set.contains("a") && !set.contains("z"));
    }
}
