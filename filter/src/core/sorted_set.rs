//! An ordered set on a sorted `Vec`, for the small sets the engine keeps (indexes to kick, nodes
//! left out of a round). Why not `BTreeSet`: see `sorted_map.rs`.

use std::borrow::Borrow;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortedSet<K> {
    items: Vec<K>,
}

impl<K> Default for SortedSet<K> {
    fn default() -> Self {
        SortedSet { items: Vec::new() }
    }
}

impl<K: Ord> SortedSet<K> {
    pub fn new() -> Self {
        SortedSet { items: Vec::new() }
    }

    /// Where `item` is (Ok) or would go (Err); the end is checked first, as in `SortedMap`.
    fn find<Q>(&self, item: &Q) -> Result<usize, usize>
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self.items.last() {
            None => Err(0),
            Some(last) if last.borrow() < item => Err(self.items.len()),
            Some(_) => self.items.binary_search_by(|k| k.borrow().cmp(item)),
        }
    }


    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn contains<Q>(&self, item: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        self.find(item).is_ok()
    }

    /// Adds `item`; false when it was there already.
    pub fn insert(&mut self, item: K) -> bool {
        match self.find(&item) {
            Ok(_) => false,
            Err(at) => {
                self.items.insert(at, item);
                true
            }
        }
    }

    /// Takes `item` out; false when it was not there.
    pub fn remove<Q>(&mut self, item: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Ord + ?Sized,
    {
        match self.find(item) {
            Ok(at) => {
                self.items.remove(at);
                true
            }
            Err(_) => false,
        }
    }


    /// Moves every item of `other` into this set, leaving `other` empty.
    pub fn append(&mut self, other: &mut SortedSet<K>) {
        self.extend(std::mem::take(&mut other.items));
    }

    pub fn iter(&self) -> std::slice::Iter<'_, K> {
        self.items.iter()
    }

}

impl<K: Ord> FromIterator<K> for SortedSet<K> {
    fn from_iter<I: IntoIterator<Item = K>>(items: I) -> Self {
        let mut set = SortedSet::new();
        set.extend(items);
        set
    }
}

impl<K: Ord> Extend<K> for SortedSet<K> {
    fn extend<I: IntoIterator<Item = K>>(&mut self, items: I) {
        for item in items {
            self.insert(item);
        }
    }
}

impl<K> IntoIterator for SortedSet<K> {
    type Item = K;
    type IntoIter = std::vec::IntoIter<K>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a, K> IntoIterator for &'a SortedSet<K> {
    type Item = &'a K;
    type IntoIter = std::slice::Iter<'a, K>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
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
