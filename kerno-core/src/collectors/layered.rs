//! Readings of big per-entity kernel maps (per process, per flow, per cgroup) that share
//! the unchanged entries with the reading before them.
//!
//! A daemon keeps a sample every second for minutes. A full copy of a 16k-entry LRU map in
//! each would cost hundreds of megabytes, yet from one second to the next only the entries of
//! processes that did something change. So each reading stores the entries that changed and
//! the keys that disappeared since the previous reading, plus a link to it; every
//! [`KEYFRAME_EVERY`] readings a full copy starts a new chain, which bounds both the lookup
//! depth and what an old chain keeps alive. Memory for a daemon's window is then about
//! `window / KEYFRAME_EVERY + 1` full maps plus what actually changed.

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
    sync::Arc,
};

/// A full copy every this many readings.
pub(crate) const KEYFRAME_EVERY: u32 = 60;

struct Layer<K, V> {
    changed: HashMap<K, V>,
    removed: HashSet<K>,
    parent: Option<Arc<Layer<K, V>>>,
}

/// One cumulative reading of a keyed map.
pub(crate) struct Layered<K, V> {
    top: Arc<Layer<K, V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Layered<K, V> {
    /// The value of `key` in this reading.
    pub(crate) fn get(&self, key: &K) -> Option<&V> {
        let mut layer = &self.top;
        loop {
            if let Some(v) = layer.changed.get(key) {
                return Some(v);
            }
            if layer.removed.contains(key) {
                return None;
            }
            layer = layer.parent.as_ref()?;
        }
    }

    /// The whole reading.
    pub(crate) fn materialize(&self) -> HashMap<K, V> {
        let mut chain = Vec::new();
        let mut layer = Some(&self.top);
        while let Some(l) = layer {
            chain.push(l);
            layer = l.parent.as_ref();
        }
        let mut out: HashMap<K, V> = HashMap::new();
        for l in chain.into_iter().rev() {
            for k in &l.removed {
                out.remove(k);
            }
            for (k, v) in &l.changed {
                out.insert(k.clone(), v.clone());
            }
        }
        out
    }
}

/// The previous reading in full, its layer, and that layer's depth in its chain.
type Previous<K, V> = (HashMap<K, V>, Arc<Layer<K, V>>, u32);

/// Builds successive readings of one map, each layered on the one before.
pub(crate) struct LayeredBuilder<K, V> {
    prev: Option<Previous<K, V>>,
    same: fn(&V, &V) -> bool,
}

impl<K: Eq + Hash + Clone, V: Clone> LayeredBuilder<K, V> {
    /// `same(a, b)`: whether two values of one key are the same reading.
    pub(crate) fn new(same: fn(&V, &V) -> bool) -> Self {
        LayeredBuilder { prev: None, same }
    }

    /// The reading of `fresh`, layered on the previous one.
    pub(crate) fn next(&mut self, fresh: HashMap<K, V>) -> Layered<K, V> {
        let layer = match self.prev.take() {
            Some((old, parent, depth)) if depth < KEYFRAME_EVERY => {
                let changed: HashMap<K, V> = fresh
                    .iter()
                    .filter(|(k, v)| old.get(*k).is_none_or(|o| !(self.same)(o, v)))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let removed: HashSet<K> = old
                    .keys()
                    .filter(|k| !fresh.contains_key(*k))
                    .cloned()
                    .collect();
                let layer = Arc::new(Layer {
                    changed,
                    removed,
                    parent: Some(parent),
                });
                self.prev = Some((fresh, layer.clone(), depth + 1));
                layer
            }
            _ => {
                let layer = Arc::new(Layer {
                    changed: fresh.clone(),
                    removed: HashSet::new(),
                    parent: None,
                });
                self.prev = Some((fresh, layer.clone(), 1));
                layer
            }
        };
        Layered { top: layer }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_round_trip_across_keyframes() {
        let mut b = LayeredBuilder::<u32, u64>::new(|a, b| a == b);
        let mut readings = Vec::new();
        let mut truth = Vec::new();
        for step in 0..(KEYFRAME_EVERY * 2 + 7) {
            // Keys come and go; some values move, most do not.
            let m: HashMap<u32, u64> = (0..50u32)
                .filter(|k| (k + step) % 7 != 0)
                .map(|k| (k, if k % 5 == 0 { step as u64 } else { k as u64 }))
                .collect();
            readings.push(b.next(m.clone()));
            truth.push(m);
        }
        for (r, t) in readings.iter().zip(&truth) {
            assert_eq!(&r.materialize(), t);
            for k in 0..55u32 {
                assert_eq!(r.get(&k), t.get(&k), "key {k}");
            }
        }
    }

    #[test]
    fn unchanged_entries_are_not_stored_again() {
        let mut b = LayeredBuilder::<u32, u64>::new(|a, b| a == b);
        let m: HashMap<u32, u64> = (0..1000).map(|k| (k, 1)).collect();
        b.next(m.clone());
        let mut m2 = m.clone();
        m2.insert(3, 2);
        m2.remove(&4);
        let r = b.next(m2);
        assert_eq!(r.top.changed.len(), 1);
        assert_eq!(r.top.removed, HashSet::from([4]));
        assert_eq!(r.get(&3), Some(&2));
        assert_eq!(r.get(&4), None);
        assert_eq!(r.get(&5), Some(&1));
    }
}
