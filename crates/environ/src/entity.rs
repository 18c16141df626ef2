//! Dense maps keyed by typed indices.
//!
//! An index type such as [`FuncIndex`] implements [`EntityRef`]; a [`PrimaryMap`] hands
//! out those indices in order as values are pushed, and only accepts its own kind of
//! index when looked up, so a table index cannot be used to read a function.
//!
//! [`FuncIndex`]: crate::FuncIndex

use core::fmt;
use core::iter::Enumerate;
use core::marker::PhantomData;
use core::ops::{Index, IndexMut};
use core::slice;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A typed index: a `usize` that only converts to and from its own kind.
pub trait EntityRef: Copy + Eq {
    /// The index numbered `index`.
    ///
    /// # Panics
    /// Panics if the index type cannot represent `index`.
    fn new(index: usize) -> Self;

    /// The index as a number.
    fn index(self) -> usize;
}

/// A vector whose indices are of type `K`: values are only ever pushed, each getting the
/// next index.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PrimaryMap<K, V> {
    elems: Vec<V>,
    keys: PhantomData<K>,
}

impl<K: EntityRef, V> PrimaryMap<K, V> {
    /// An empty map.
    pub fn new() -> Self {
        Self::from_vec(Vec::new())
    }

    /// An empty map with room for `capacity` values.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::from_vec(Vec::with_capacity(capacity))
    }

    fn from_vec(elems: Vec<V>) -> Self {
        PrimaryMap {
            elems,
            keys: PhantomData,
        }
    }

    /// Appends `value` and returns its index.
    pub fn push(&mut self, value: V) -> K {
        let key = self.next_key();
        self.elems.push(value);
        key
    }

    /// Removes every value, so that indices start from zero again.
    pub fn clear(&mut self) {
        self.elems.clear();
    }

    /// The index the next pushed value will get.
    pub fn next_key(&self) -> K {
        K::new(self.elems.len())
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.elems.len()
    }

    /// Whether the map has no values.
    pub fn is_empty(&self) -> bool {
        self.elems.is_empty()
    }

    /// The value at `key`, if `key` is in the map.
    pub fn get(&self, key: K) -> Option<&V> {
        self.elems.get(key.index())
    }

    /// The value at `key` for writing, if `key` is in the map.
    pub fn get_mut(&mut self, key: K) -> Option<&mut V> {
        self.elems.get_mut(key.index())
    }

    /// The indices in order.
    pub fn keys(&self) -> impl DoubleEndedIterator<Item = K> + ExactSizeIterator + use<K, V> {
        (0..self.elems.len()).map(K::new)
    }

    /// The values in index order.
    pub fn values(&self) -> slice::Iter<'_, V> {
        self.elems.iter()
    }

    /// The values in index order, for writing.
    pub fn values_mut(&mut self) -> slice::IterMut<'_, V> {
        self.elems.iter_mut()
    }

    /// Each index with its value, in order.
    pub fn iter(&self) -> Iter<K, slice::Iter<'_, V>> {
        Iter::new(self.elems.iter())
    }

    /// Each index with its value for writing, in order.
    pub fn iter_mut(&mut self) -> Iter<K, slice::IterMut<'_, V>> {
        Iter::new(self.elems.iter_mut())
    }
}

impl<K: EntityRef, V> Default for PrimaryMap<K, V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: EntityRef + fmt::Debug, V: fmt::Debug> fmt::Debug for PrimaryMap<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<K: EntityRef, V> Index<K> for PrimaryMap<K, V> {
    type Output = V;

    fn index(&self, key: K) -> &V {
        &self.elems[key.index()]
    }
}

impl<K: EntityRef, V> IndexMut<K> for PrimaryMap<K, V> {
    fn index_mut(&mut self, key: K) -> &mut V {
        &mut self.elems[key.index()]
    }
}

impl<K: EntityRef, V> FromIterator<V> for PrimaryMap<K, V> {
    fn from_iter<I: IntoIterator<Item = V>>(values: I) -> Self {
        let mut map = Self::new();
        for value in values {
            map.push(value);
        }
        map
    }
}

impl<'a, K: EntityRef, V> IntoIterator for &'a PrimaryMap<K, V> {
    type Item = (K, &'a V);
    type IntoIter = Iter<K, slice::Iter<'a, V>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl<'a, K: EntityRef, V> IntoIterator for &'a mut PrimaryMap<K, V> {
    type Item = (K, &'a mut V);
    type IntoIter = Iter<K, slice::IterMut<'a, V>>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter_mut()
    }
}

impl<K: EntityRef, V> IntoIterator for PrimaryMap<K, V> {
    type Item = (K, V);
    type IntoIter = Iter<K, std::vec::IntoIter<V>>;

    fn into_iter(self) -> Self::IntoIter {
        Iter::new(self.elems.into_iter())
    }
}

/// Serialized as the sequence of its values: the indices are their positions.
impl<K, V: Serialize> Serialize for PrimaryMap<K, V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.elems.serialize(serializer)
    }
}

impl<'de, K: EntityRef, V: Deserialize<'de>> Deserialize<'de> for PrimaryMap<K, V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(Self::from_vec)
    }
}

/// An iterator over a [`PrimaryMap`] yielding each index with what `I` yields for it: a
/// shared or mutable reference to the value, or the value itself.
#[derive(Clone, Debug)]
pub struct Iter<K, I> {
    inner: Enumerate<I>,
    keys: PhantomData<K>,
}

impl<K, I: Iterator> Iter<K, I> {
    fn new(values: I) -> Self {
        Iter {
            inner: values.enumerate(),
            keys: PhantomData,
        }
    }
}

impl<K: EntityRef, I: Iterator> Iterator for Iter<K, I> {
    type Item = (K, I::Item);

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|(i, v)| (K::new(i), v))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl<K: EntityRef, I: DoubleEndedIterator + ExactSizeIterator> DoubleEndedIterator for Iter<K, I> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.inner.next_back().map(|(i, v)| (K::new(i), v))
    }
}

impl<K: EntityRef, I: ExactSizeIterator> ExactSizeIterator for Iter<K, I> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FuncIndex;

    fn f(i: u32) -> FuncIndex {
        FuncIndex::from_u32(i)
    }

    #[test]
    fn pushed_values_get_consecutive_indices() {
        let mut map: PrimaryMap<FuncIndex, &str> = PrimaryMap::new();
        assert!(map.is_empty());
        assert_eq!(map.push("a"), f(0));
        assert_eq!(map.next_key(), f(1));
        assert_eq!(map.push("b"), f(1));
        assert_eq!(map.len(), 2);
        assert_eq!(map[f(1)], "b");
        assert_eq!(map.get(f(2)), None);
        map[f(0)] = "c";
        assert_eq!(map.keys().collect::<Vec<_>>(), [f(0), f(1)]);
        assert_eq!(map.values().as_slice(), ["c", "b"]);
        let pairs: Vec<_> = map.iter().rev().collect();
        assert_eq!(pairs, [(f(1), &"b"), (f(0), &"c")]);
        assert_eq!(format!("{map:?}"), r#"{func0: "c", func1: "b"}"#);
        let collected: PrimaryMap<FuncIndex, &str> = map.values().copied().collect();
        assert_eq!(collected, map);
    }
}
