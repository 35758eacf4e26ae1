//! Readings of big keyed kernel maps (per process, per flow, per cgroup, per histogram
//! bucket) that share the unchanged entries with the reading before them.
//!
//! A daemon keeps a sample every second for minutes. A full copy of a 16k-entry LRU map in
//! each would cost hundreds of megabytes, yet from one second to the next only the entries of
//! processes that did something change. So each reading stores the entries that changed and
//! the keys that disappeared since the previous reading (in exact-size slices, no hash-table
//! slack), plus a link to it; every [`KEYFRAME_EVERY`] readings a full copy starts a new
//! chain, which bounds what an old chain keeps alive and what rebuilding a reading costs.
//! Memory for a daemon's window is then about `window / KEYFRAME_EVERY + 1` full maps plus
//! what actually changed.

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard},
};

/// The hash map of readings: keyed by pids, cgroup ids, syscall numbers and buckets, rebuilt
/// and compared every second, so hashed with foldhash rather than SipHash (a third of the
/// agent's CPU in a process storm went to SipHash).
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A full copy every this many readings.
pub(crate) const KEYFRAME_EVERY: u32 = 100;

struct Entries<K, V> {
    changed: Box<[(K, V)]>,
    removed: Box<[K]>,
}

struct Layer<K, V> {
    /// Behind a lock only so [`Layered::compact`] can drop entries from shared layers.
    entries: Mutex<Entries<K, V>>,
    parent: Option<Arc<Layer<K, V>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Layer<K, V> {
    fn new(changed: Box<[(K, V)]>, removed: Box<[K]>, parent: Option<Arc<Layer<K, V>>>) -> Self {
        Layer {
            entries: Mutex::new(Entries { changed, removed }),
            parent,
        }
    }

    fn entries(&self) -> MutexGuard<'_, Entries<K, V>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn apply(&self, map: &mut FastMap<K, V>) {
        let e = self.entries();
        for k in e.removed.iter() {
            map.remove(k);
        }
        for (k, v) in e.changed.iter() {
            map.insert(k.clone(), v.clone());
        }
    }
}

/// One cumulative reading of a keyed map.
pub(crate) struct Layered<K, V> {
    top: Arc<Layer<K, V>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Layered<K, V> {
    /// The whole reading.
    pub(crate) fn materialize(&self) -> FastMap<K, V> {
        let mut chain = Vec::new();
        let mut layer = Some(&self.top);
        while let Some(l) = layer {
            chain.push(l);
            layer = l.parent.as_ref();
        }
        let mut out = FastMap::default();
        for l in chain.into_iter().rev() {
            l.apply(&mut out);
        }
        out
    }

    /// Call `f` with each reading of `series` (oldest first, as samples come) in full.
    /// Cheap when consecutive readings are from one chain: only the layers in between are
    /// applied.
    pub(crate) fn replay(series: &[&Layered<K, V>], mut f: impl FnMut(usize, &FastMap<K, V>)) {
        let mut state: Option<FastMap<K, V>> = None;
        for (i, r) in series.iter().enumerate() {
            let next = match (state.take(), i.checked_sub(1).map(|p| series[p])) {
                (Some(mut map), Some(prev)) => {
                    // The layers from `r` back to `prev`, if `prev` is on `r`'s chain.
                    let mut between = Vec::new();
                    let mut layer = Some(&r.top);
                    let mut found = false;
                    while let Some(l) = layer {
                        if Arc::ptr_eq(l, &prev.top) {
                            found = true;
                            break;
                        }
                        between.push(l);
                        layer = l.parent.as_ref();
                    }
                    if found {
                        for l in between.into_iter().rev() {
                            l.apply(&mut map);
                        }
                        map
                    } else {
                        r.materialize()
                    }
                }
                _ => r.materialize(),
            };
            f(i, &next);
            state = Some(next);
        }
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Layered<K, V> {
    /// Drop, from `readings` (oldest first) and every layer they share, the entries of keys
    /// the newest reading no longer has: no window ending at the newest can need them (a
    /// process that exited and was evicted from the kernel map has no delta to compute).
    /// Afterwards only windows ending at the newest reading stay exact.
    pub(crate) fn compact(readings: &[&Layered<K, V>]) {
        let Some(newest) = readings.last() else {
            return;
        };
        let live: HashSet<K> = newest.materialize().into_keys().collect();
        let mut seen: HashSet<*const Layer<K, V>> = HashSet::new();
        for r in readings {
            let mut layer = Some(&r.top);
            while let Some(l) = layer {
                if !seen.insert(Arc::as_ptr(l)) {
                    break;
                }
                let mut e = l.entries();
                if e.changed.iter().any(|(k, _)| !live.contains(k)) {
                    e.changed = e
                        .changed
                        .iter()
                        .filter(|(k, _)| live.contains(k))
                        .cloned()
                        .collect();
                }
                if e.removed.iter().any(|k| !live.contains(k)) {
                    e.removed = e
                        .removed
                        .iter()
                        .filter(|k| live.contains(k))
                        .cloned()
                        .collect();
                }
                drop(e);
                layer = l.parent.as_ref();
            }
        }
    }
}

/// The previous reading in full, its layer, and that layer's depth in its chain.
type Previous<K, V> = (FastMap<K, V>, Arc<Layer<K, V>>, u32);

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
    pub(crate) fn next(&mut self, fresh: FastMap<K, V>) -> Layered<K, V> {
        let (layer, depth) = match self.prev.take() {
            Some((old, parent, depth)) if depth < KEYFRAME_EVERY => {
                let changed: Box<[(K, V)]> = fresh
                    .iter()
                    .filter(|(k, v)| old.get(*k).is_none_or(|o| !(self.same)(o, v)))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let removed: Box<[K]> = old
                    .keys()
                    .filter(|k| !fresh.contains_key(*k))
                    .cloned()
                    .collect();
                let layer = Arc::new(Layer::new(changed, removed, Some(parent)));
                (layer, depth + 1)
            }
            _ => {
                let layer = Arc::new(Layer::new(
                    fresh.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                    Box::new([]),
                    None,
                ));
                (layer, 1)
            }
        };
        self.prev = Some((fresh, layer.clone(), depth));
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
            let m: FastMap<u32, u64> = (0..50u32)
                .filter(|k| (k + step) % 7 != 0)
                .map(|k| (k, if k % 5 == 0 { step as u64 } else { k as u64 }))
                .collect();
            readings.push(b.next(m.clone()));
            truth.push(m);
        }
        for (r, t) in readings.iter().zip(&truth) {
            assert_eq!(&r.materialize(), t);
        }
        // Replay over every reading, and over every third one (a gap, as when a sample
        // failed), across keyframes.
        for stride in [1, 3] {
            let picked: Vec<usize> = (0..readings.len()).step_by(stride).collect();
            let series: Vec<&Layered<u32, u64>> = picked.iter().map(|i| &readings[*i]).collect();
            let mut n = 0;
            Layered::replay(&series, |i, m| {
                assert_eq!(m, &truth[picked[i]], "reading {}", picked[i]);
                n += 1;
            });
            assert_eq!(n, picked.len());
        }
    }

    #[test]
    fn unchanged_entries_are_not_stored_again() {
        let mut b = LayeredBuilder::<u32, u64>::new(|a, b| a == b);
        let m: FastMap<u32, u64> = (0..1000).map(|k| (k, 1)).collect();
        b.next(m.clone());
        let mut m2 = m.clone();
        m2.insert(3, 2);
        m2.remove(&4);
        let r = b.next(m2.clone());
        assert_eq!(&*r.top.entries().changed, &[(3, 2)]);
        assert_eq!(&*r.top.entries().removed, &[4]);
        assert_eq!(r.materialize(), m2);
    }

    #[test]
    fn compaction_keeps_windows_ending_at_the_newest_exact() {
        let mut b = LayeredBuilder::<u32, u64>::new(|a, b| a == b);
        let mut readings = Vec::new();
        let mut truth = Vec::new();
        // Short-lived keys come and go (a storm of processes); keys 0..10 live throughout.
        for step in 0..(KEYFRAME_EVERY + 50) {
            let mut m: FastMap<u32, u64> = (0..10u32).map(|k| (k, (step * k) as u64)).collect();
            for k in 0..20 {
                m.insert(1000 + step * 20 + k, 1);
            }
            readings.push(b.next(m.clone()));
            truth.push(m);
        }
        let refs: Vec<&Layered<u32, u64>> = readings.iter().collect();
        Layered::compact(&refs);
        let newest = truth.last().unwrap();
        for (r, t) in readings.iter().zip(&truth) {
            let m = r.materialize();
            // Every key of the newest reading has its exact value at every reading...
            for k in newest.keys() {
                assert_eq!(m.get(k), t.get(k), "key {k}");
            }
            // ...and nothing else is kept.
            assert!(m.keys().all(|k| newest.contains_key(k)));
        }
        let kept: usize = readings.iter().map(|r| r.top.entries().changed.len()).sum();
        assert!(kept < 10 * readings.len() + 40, "{kept} entries kept");
    }
}
