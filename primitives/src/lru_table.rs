//! A hash table with an intrusive recency list: O(1) lookup, touch, insert and removal.
//!
//! Entries live densely in one `Vec` and are linked by `u32` indices, so an entry costs its key,
//! its item, two `u32` links and about five bytes of hash index; no per-entry allocation. Removal
//! moves the last slot into the hole (`swap_remove`) and repairs its links, which keeps the slots
//! dense without a free list. The table does not own a hasher: callers pass the hash they already
//! computed (the memory cache needs it to pick a shard) and a hash function for rehashing.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use hashbrown::HashTable;

const NIL: u32 = u32::MAX;

// Not aligned to cache lines: a slot a few bytes over 64 would take two whole lines (128 bytes),
// doubling the table's memory for nothing a read measurably gains.
pub(crate) struct Slot<K, T> {
    pub(crate) key: K,
    pub(crate) item: T,
    /// Toward the most recently used end.
    newer: u32,
    /// Toward the least recently used end.
    older: u32,
}

pub(crate) struct LruTable<K, T> {
    index: HashTable<u32>,
    slots: Vec<Slot<K, T>>,
    /// Most recently used.
    head: u32,
    /// Least recently used.
    tail: u32,
}

impl<K: Hash + Eq, T> LruTable<K, T> {
    pub(crate) fn new() -> Self {
        LruTable { index: HashTable::new(), slots: Vec::new(), head: NIL, tail: NIL }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn find<Q>(&self, hash: u64, key: &Q) -> Option<u32>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slots = &self.slots;
        self.index.find(hash, |&i| slots[i as usize].key.borrow() == key).copied()
    }

    pub(crate) fn slot(&self, idx: u32) -> &Slot<K, T> {
        &self.slots[idx as usize]
    }

    pub(crate) fn slot_mut(&mut self, idx: u32) -> &mut Slot<K, T> {
        &mut self.slots[idx as usize]
    }

    /// The least recently used entry.
    pub(crate) fn lru(&self) -> Option<u32> {
        (self.tail != NIL).then_some(self.tail)
    }

    /// The entry used just after `idx`, walking from least to most recently used.
    pub(crate) fn newer(&self, idx: u32) -> Option<u32> {
        let newer = self.slots[idx as usize].newer;
        (newer != NIL).then_some(newer)
    }

    /// Marks `idx` as the most recently used entry.
    #[inline]
    pub(crate) fn touch(&mut self, idx: u32) {
        if self.head == idx {
            return;
        }
        self.unlink(idx);
        self.link_front(idx);
    }

    /// Moves the entry at `idx` to the least recently used end: the next to be evicted.
    pub(crate) fn demote(&mut self, idx: u32) {
        if self.tail == idx {
            return;
        }
        self.unlink(idx);
        self.link_back(idx);
    }

    /// Inserts a key that is not in the table as the most recently used entry.
    ///
    /// # Panics
    /// If the table already holds `u32::MAX - 1` entries.
    pub(crate) fn insert_new<S: BuildHasher>(&mut self, hash: u64, key: K, item: T, hasher: &S) -> u32 {
        let idx = u32::try_from(self.slots.len()).ok().filter(|&i| i != NIL).expect("LruTable is full");
        if self.slots.len() == self.slots.capacity() {
            // Grow by half rather than double: the unused tail of the vector is memory that every
            // entry pays for, and a cache's size is mostly steady once it has filled.
            let extra = (self.slots.len() / 2).max(8);
            self.slots.reserve_exact(extra);
        }
        self.slots.push(Slot { key, item, newer: NIL, older: NIL });
        let slots = &self.slots;
        self.index.insert_unique(hash, idx, |&i| hasher.hash_one(&slots[i as usize].key));
        self.link_front(idx);
        idx
    }

    /// Removes the entry at `idx` and returns it. Invalidates the index of the last slot, which
    /// moves into `idx`.
    pub(crate) fn remove<S: BuildHasher>(&mut self, idx: u32, hasher: &S) -> (K, T) {
        self.unlink(idx);
        let hash = hasher.hash_one(&self.slots[idx as usize].key);
        match self.index.find_entry(hash, |&i| i == idx) {
            Ok(entry) => {
                entry.remove();
            }
            Err(_) => unreachable!("an LruTable slot is missing from its index"),
        }
        let last = (self.slots.len() - 1) as u32;
        if last != idx {
            let moved_hash = hasher.hash_one(&self.slots[last as usize].key);
            match self.index.find_mut(moved_hash, |&i| i == last) {
                Some(slot_ref) => *slot_ref = idx,
                None => unreachable!("an LruTable slot is missing from its index"),
            }
            let Slot { newer, older, .. } = self.slots[last as usize];
            if newer == NIL {
                self.head = idx;
            } else {
                self.slots[newer as usize].older = idx;
            }
            if older == NIL {
                self.tail = idx;
            } else {
                self.slots[older as usize].newer = idx;
            }
        }
        let slot = self.slots.swap_remove(idx as usize);
        (slot.key, slot.item)
    }

    /// Removes every entry for which `keep` returns false, passing each removed entry to `removed`.
    pub(crate) fn retain<S: BuildHasher>(&mut self, hasher: &S, mut keep: impl FnMut(&K, &T) -> bool, mut removed: impl FnMut(K, T)) {
        // Walk downwards: `remove` moves the last slot into the hole, and that slot has already
        // been visited.
        for idx in (0..self.slots.len() as u32).rev() {
            let slot = &self.slots[idx as usize];
            if !keep(&slot.key, &slot.item) {
                let (k, t) = self.remove(idx, hasher);
                removed(k, t);
            }
        }
    }

    /// Removes every entry and frees the memory.
    pub(crate) fn clear(&mut self) -> Vec<Slot<K, T>> {
        self.index = HashTable::new();
        self.head = NIL;
        self.tail = NIL;
        std::mem::take(&mut self.slots)
    }

    /// Every entry from least to most recently used.
    pub(crate) fn iter_lru_first(&self) -> impl Iterator<Item = &Slot<K, T>> + '_ {
        let mut next = self.tail;
        std::iter::from_fn(move || {
            if next == NIL {
                return None;
            }
            let slot = &self.slots[next as usize];
            next = slot.newer;
            Some(slot)
        })
    }

    fn unlink(&mut self, idx: u32) {
        let Slot { newer, older, .. } = self.slots[idx as usize];
        if newer == NIL {
            self.head = older;
        } else {
            self.slots[newer as usize].older = older;
        }
        if older == NIL {
            self.tail = newer;
        } else {
            self.slots[older as usize].newer = newer;
        }
    }

    fn link_front(&mut self, idx: u32) {
        let old_head = self.head;
        {
            let slot = &mut self.slots[idx as usize];
            slot.newer = NIL;
            slot.older = old_head;
        }
        if old_head == NIL {
            self.tail = idx;
        } else {
            self.slots[old_head as usize].newer = idx;
        }
        self.head = idx;
    }

    fn link_back(&mut self, idx: u32) {
        let old_tail = self.tail;
        {
            let slot = &mut self.slots[idx as usize];
            slot.older = NIL;
            slot.newer = old_tail;
        }
        if old_tail == NIL {
            self.head = idx;
        } else {
            self.slots[old_tail as usize].older = idx;
        }
        self.tail = idx;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use foldhash::fast::FixedState;

    fn keys_lru_first(t: &LruTable<u32, ()>) -> Vec<u32> {
        t.iter_lru_first().map(|s| s.key).collect()
    }

    fn insert(t: &mut LruTable<u32, ()>, s: &FixedState, k: u32) {
        t.insert_new(s.hash_one(k), k, (), s);
    }

    #[test]
    fn touch_moves_to_front_and_remove_keeps_links() {
        let s = FixedState::with_seed(7);
        let mut t = LruTable::new();
        for k in 0..6 {
            insert(&mut t, &s, k);
        }
        assert_eq!(keys_lru_first(&t), [0, 1, 2, 3, 4, 5]);
        t.touch(t.find(s.hash_one(2), &2).unwrap());
        t.touch(t.find(s.hash_one(0), &0).unwrap());
        assert_eq!(keys_lru_first(&t), [1, 3, 4, 5, 2, 0]);
        // Removing a middle slot moves the last slot (key 5) into its place.
        let (k, ()) = t.remove(t.find(s.hash_one(3), &3).unwrap(), &s);
        assert_eq!(k, 3);
        assert_eq!(keys_lru_first(&t), [1, 4, 5, 2, 0]);
        for k in [1, 4, 5, 2, 0] {
            assert_eq!(t.slot(t.find(s.hash_one(k), &k).unwrap()).key, k);
        }
        assert!(t.find(s.hash_one(3), &3).is_none());
        let lru = t.lru().unwrap();
        assert_eq!(t.slot(lru).key, 1);
        assert_eq!(t.slot(t.newer(lru).unwrap()).key, 4);
        // Demoting moves an entry to the LRU end, from the front or the middle.
        t.demote(t.find(s.hash_one(0), &0).unwrap());
        assert_eq!(keys_lru_first(&t), [0, 1, 4, 5, 2]);
        t.demote(t.find(s.hash_one(5), &5).unwrap());
        assert_eq!(keys_lru_first(&t), [5, 0, 1, 4, 2]);
        t.demote(t.find(s.hash_one(5), &5).unwrap());
        assert_eq!(keys_lru_first(&t), [5, 0, 1, 4, 2]);
        assert_eq!(t.slot(t.lru().unwrap()).key, 5);
    }

    #[test]
    fn retain_and_clear() {
        let s = FixedState::with_seed(1);
        let mut t = LruTable::new();
        for k in 0..100 {
            insert(&mut t, &s, k);
        }
        let mut gone = Vec::new();
        t.retain(&s, |k, _| k % 3 != 0, |k, ()| gone.push(k));
        gone.sort_unstable();
        assert_eq!(gone, (0..100).filter(|k| k % 3 == 0).collect::<Vec<_>>());
        assert_eq!(keys_lru_first(&t), (0..100).filter(|k| k % 3 != 0).collect::<Vec<_>>());
        for k in 0..100 {
            assert_eq!(t.find(s.hash_one(k), &k).is_some(), k % 3 != 0);
        }
        assert_eq!(t.clear().len(), 66);
        assert_eq!(t.len(), 0);
        assert!(t.lru().is_none());
        insert(&mut t, &s, 9);
        assert_eq!(keys_lru_first(&t), [9]);
    }
}
