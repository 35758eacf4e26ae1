//! Readings of big keyed kernel maps (per process, per flow, per cgroup, per histogram
//! bucket) that share the unchanged entries with the reading before them.
//!
//! A daemon keeps a sample every second for minutes. A full copy of a 16k-entry LRU map in
//! each would cost hundreds of megabytes, yet from one second to the next only the entries of
//! processes that did something change. So each reading stores the entries that changed
//! (with the value they had before) and the entries that disappeared since the previous
//! reading, in exact-size slices with no hash-table slack, plus a link to it; every
//! [`KEYFRAME_EVERY`] readings a full copy starts a new chain, which bounds what an old chain
//! keeps alive and what rebuilding a reading costs. Memory for a daemon's window is then
//! about `window / KEYFRAME_EVERY + 1` full maps plus what actually changed.
//!
//! A window's signals need, per key, the values at its two ends, and only for the keys that
//! moved in between: [`Layered::changes`] reads them from the layers inside the window alone
//! (the value before each key's first change is stored with it), so a window costs what
//! changed in it, not a rebuild of two whole maps from their keyframe.

use std::{
    collections::{HashMap, HashSet},
    hash::Hash,
    sync::{Arc, Mutex, MutexGuard, Weak},
};

/// The hash map of readings: keyed by pids, cgroup ids, syscall numbers and buckets, rebuilt
/// and compared every second, so hashed with foldhash rather than SipHash (a third of the
/// agent's CPU in a process storm went to SipHash).
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A full copy every this many readings.
pub(crate) const KEYFRAME_EVERY: u32 = 100;

/// The values the previous reading had for what a layer changed or removed: what a window
/// starting there needs. Kept for the newest [`PAST_KEPT`] readings that are still in the
/// window kept (compaction drops the others), so it costs memory for at most a minute of
/// changes, not for the whole chain of layers.
struct Past<V> {
    /// Per entry of `changed`: where its value at the previous reading is in `values`
    /// ([`ABSENT`]: it was not there, as for every new process in a storm, which then costs
    /// 4 bytes, not a value).
    changed: Box<[u32]>,
    values: Box<[V]>,
    /// Per entry of `removed`: its last value.
    removed: Box<[V]>,
}

/// A key new at its layer: no value before.
const ABSENT: u32 = u32::MAX;

impl<V> Past<V> {
    /// The value before the `i`th change.
    fn before(&self, i: usize) -> Option<&V> {
        match self.changed[i] {
            ABSENT => None,
            at => self.values.get(at as usize),
        }
    }

    /// Keep the changes (and their values) whose `keep` is true.
    fn retain_changed(&mut self, keep: &[bool])
    where
        V: Clone,
    {
        let mut values = Vec::new();
        let changed: Box<[u32]> = (0..keep.len())
            .filter(|i| keep[*i])
            .map(|i| slot(&mut values, self.before(i)))
            .collect();
        self.changed = changed;
        self.values = values.into_boxed_slice();
    }
}

/// Where `before` goes in a [`Past`]'s `values` (pushed there), or [`ABSENT`].
fn slot<V: Clone>(values: &mut Vec<V>, before: Option<&V>) -> u32 {
    match before {
        Some(v) => {
            values.push(v.clone());
            (values.len() - 1) as u32
        }
        None => ABSENT,
    }
}

/// How many of the newest readings keep their [`Past`]: windows up to this many seconds
/// (the findings window, a doctor run's, the short windows of the rules) cost only what
/// changed in them; longer ones rebuild their two ends.
pub(crate) const PAST_KEPT: u64 = 64;

struct Entries<K, V> {
    /// A keyframe's whole reading; empty for the other layers.
    full: Box<[(K, V)]>,
    /// What changed since the previous reading.
    changed: Box<[(K, V)]>,
    /// What the previous reading had and this one does not.
    removed: Box<[K]>,
    past: Option<Past<V>>,
}

struct Layer<K, V> {
    /// Behind a lock only so [`Layered::compact`] can drop entries from shared layers.
    entries: Mutex<Entries<K, V>>,
    /// The layer this one applies on; `None` for a keyframe.
    parent: Option<Arc<Layer<K, V>>>,
    /// A keyframe's previous reading, whose changes it also records: weak, so a keyframe
    /// does not keep the chain before it alive.
    previous: Option<Weak<Layer<K, V>>>,
    /// The reading's number, from its builder.
    seq: u64,
    /// The whole reading, while it is its builder's newest (the builder keeps it to compare
    /// the next one with; shared, not copied).
    newest: Mutex<Option<Arc<FastMap<K, V>>>>,
}

impl<K: Eq + Hash + Clone, V: Clone> Layer<K, V> {
    fn entries(&self) -> MutexGuard<'_, Entries<K, V>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn newest(&self) -> Option<Arc<FastMap<K, V>>> {
        self.newest
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Bring `map` from the previous reading to this one.
    fn apply(&self, map: &mut FastMap<K, V>) {
        let e = self.entries();
        if self.parent.is_none() {
            map.clear();
            map.extend(e.full.iter().cloned());
            return;
        }
        for k in e.removed.iter() {
            map.remove(k);
        }
        for (k, v) in e.changed.iter() {
            map.insert(k.clone(), v.clone());
        }
    }

    /// The layer of the reading before this one, while it is alive.
    fn back(&self) -> Option<Arc<Layer<K, V>>> {
        match &self.parent {
            Some(p) => Some(p.clone()),
            None => self.previous.as_ref().and_then(Weak::upgrade),
        }
    }
}

/// One cumulative reading of a keyed map.
pub(crate) struct Layered<K, V> {
    top: Arc<Layer<K, V>>,
}

/// Where a key first moved inside a window: (layer, entry) in `changed` or in `removed`.
enum FirstMove {
    Changed(usize, usize),
    Removed(usize, usize),
}

impl<K: Eq + Hash + Clone, V: Clone> Layered<K, V> {
    /// The whole reading.
    pub(crate) fn materialize(&self) -> FastMap<K, V> {
        if let Some(m) = self.top.newest() {
            return FastMap::clone(&m);
        }
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

    /// The layers after `from` up to `to`, oldest first; `None` when `from` is not a reading
    /// before `to` of the same builder (or a layer between them is gone).
    fn between(from: &Layered<K, V>, to: &Layered<K, V>) -> Option<Vec<Arc<Layer<K, V>>>> {
        let mut layers = Vec::new();
        let mut cur = to.top.clone();
        while !Arc::ptr_eq(&cur, &from.top) {
            if cur.seq <= from.top.seq {
                return None;
            }
            let back = cur.back()?;
            layers.push(cur);
            cur = back;
        }
        layers.reverse();
        Some(layers)
    }

    /// Call `f(key, at_first, at_last)` for the keys of `last` whose value moved since
    /// `first` (an older reading of the same builder), with their values at both (`None`:
    /// not in the map at `first`): what a window's deltas need. A key that left and came back
    /// in between counts as moved. Costs the entries that changed between the two readings,
    /// not the size of the map, and copies no value.
    pub(crate) fn changes(
        first: &Layered<K, V>,
        last: &Layered<K, V>,
        mut f: impl FnMut(&K, Option<&V>, &V),
    ) {
        let layers = Self::between(first, last);
        let guards: Vec<MutexGuard<'_, Entries<K, V>>> =
            layers.iter().flatten().map(|l| l.entries()).collect();
        let now = last.top.newest().filter(|_| layers.is_some());
        let (Some(now), false) = (now, guards.iter().any(|e| e.past.is_none())) else {
            // Not one builder's readings in order, older than the values kept, or not the
            // newest: every key of `last`, from the two readings whole.
            drop(guards);
            let before = first.materialize();
            for (k, v) in &last.materialize() {
                f(k, before.get(k), v);
            }
            return;
        };
        if Arc::ptr_eq(&first.top, &last.top) {
            return;
        }
        // Per key still there at `last`, where it first moved (a key that came and went in
        // between costs nothing).
        let mut first_move: FastMap<&K, FirstMove> = FastMap::default();
        for (l, e) in guards.iter().enumerate() {
            for (i, k) in e.removed.iter().enumerate() {
                if now.contains_key(k) {
                    first_move.entry(k).or_insert(FirstMove::Removed(l, i));
                }
            }
            for (i, (k, _)) in e.changed.iter().enumerate() {
                if now.contains_key(k) {
                    first_move.entry(k).or_insert(FirstMove::Changed(l, i));
                }
            }
        }
        for (k, at) in first_move {
            let before = match at {
                FirstMove::Changed(l, i) => guards[l].past.as_ref().and_then(|p| p.before(i)),
                FirstMove::Removed(l, i) => guards[l].past.as_ref().map(|p| &p.removed[i]),
            };
            if let Some(after) = now.get(k) {
                f(k, before, after);
            }
        }
    }

    /// The values of `keys` at each reading of `series` (oldest first, one builder's), given
    /// their values at the first reading: `out[key][reading]`. Costs the entries that
    /// changed over the series.
    pub(crate) fn track(series: &[&Layered<K, V>], keys: &[(K, Option<V>)]) -> Vec<Vec<Option<V>>> {
        let mut out: Vec<Vec<Option<V>>> = keys
            .iter()
            .map(|(_, v)| {
                let mut at = Vec::with_capacity(series.len());
                at.extend(series.first().map(|_| v.clone()));
                at
            })
            .collect();
        let (Some(first), Some(last)) = (series.first(), series.last()) else {
            return out;
        };
        let index: FastMap<&K, usize> = keys.iter().enumerate().map(|(i, (k, _))| (k, i)).collect();
        let mut now: Vec<Option<V>> = keys.iter().map(|(_, v)| v.clone()).collect();
        // Not one builder's readings in order: each is looked up whole, below.
        let layers = Self::between(first, last).unwrap_or_default();
        let mut next = 1;
        for l in &layers {
            {
                let e = l.entries();
                for k in e.removed.iter() {
                    if let Some(i) = index.get(k) {
                        now[*i] = None;
                    }
                }
                for (k, v) in e.changed.iter() {
                    if let Some(i) = index.get(k) {
                        now[*i] = Some(v.clone());
                    }
                }
            }
            while next < series.len() && series[next].top.seq == l.seq {
                for (at, v) in out.iter_mut().zip(&now) {
                    at.push(v.clone());
                }
                next += 1;
            }
        }
        // Readings the layers did not reach (not one builder's): looked up whole.
        for r in &series[next..] {
            let m = r.materialize();
            for ((k, _), at) in keys.iter().zip(out.iter_mut()) {
                at.push(m.get(k).cloned());
            }
        }
        out
    }

    /// Call `f` with each reading of `series` (oldest first, as samples come) in full.
    /// Cheap when the readings are one builder's: only the layers in between are applied.
    pub(crate) fn replay(series: &[&Layered<K, V>], mut f: impl FnMut(usize, &FastMap<K, V>)) {
        let (Some(first), Some(last)) = (series.first(), series.last()) else {
            return;
        };
        let mut map = first.materialize();
        f(0, &map);
        let mut next = 1;
        if let Some(layers) = Self::between(first, last) {
            for l in &layers {
                l.apply(&mut map);
                while next < series.len() && series[next].top.seq == l.seq {
                    f(next, &map);
                    next += 1;
                }
            }
        }
        for (i, r) in series.iter().enumerate().skip(next) {
            f(i, &r.materialize());
        }
    }

    /// Drop, from `readings` (oldest first) and every layer they share, the entries of keys
    /// the newest reading no longer has: no window ending at the newest can need them (a
    /// process that exited and was evicted from the kernel map has no delta to compute).
    /// Afterwards only windows ending at the newest reading stay exact.
    pub(crate) fn compact(readings: &[&Layered<K, V>]) {
        let Some(newest) = readings.last() else {
            return;
        };
        let live: HashSet<K> = match newest.top.newest() {
            Some(m) => m.keys().cloned().collect(),
            None => newest.materialize().into_keys().collect(),
        };
        let oldest = readings.first().map_or(0, |r| r.top.seq);
        let mut seen: HashSet<*const Layer<K, V>> = HashSet::new();
        for r in readings {
            let mut layer = Some(r.top.clone());
            while let Some(l) = layer {
                if !seen.insert(Arc::as_ptr(&l)) {
                    break;
                }
                let mut e = l.entries();
                // No window starts before the oldest reading kept, nor uses the past of its
                // own first layer.
                if l.seq <= oldest || l.seq + PAST_KEPT <= newest.top.seq {
                    e.past = None;
                }
                if e.full.iter().any(|(k, _)| !live.contains(k)) {
                    e.full = e
                        .full
                        .iter()
                        .filter(|(k, _)| live.contains(k))
                        .cloned()
                        .collect();
                }
                let keep: Vec<bool> = e.changed.iter().map(|(k, _)| live.contains(k)).collect();
                if keep.contains(&false) {
                    e.changed = retain(&e.changed, &keep);
                    if let Some(p) = e.past.as_mut() {
                        p.retain_changed(&keep);
                    }
                }
                let keep: Vec<bool> = e.removed.iter().map(|k| live.contains(k)).collect();
                if keep.contains(&false) {
                    e.removed = retain(&e.removed, &keep);
                    if let Some(p) = e.past.as_mut() {
                        p.removed = retain(&p.removed, &keep);
                    }
                }
                drop(e);
                layer = l.back();
            }
        }
    }
}

/// The items of `items` whose `keep` is true.
fn retain<T: Clone>(items: &[T], keep: &[bool]) -> Box<[T]> {
    items
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(t, _)| t.clone())
        .collect()
}

/// The previous reading in full, its layer, and that layer's depth in its chain.
type Previous<K, V> = (Arc<FastMap<K, V>>, Arc<Layer<K, V>>, u32);

/// Builds successive readings of one map, each layered on the one before.
pub(crate) struct LayeredBuilder<K, V> {
    prev: Option<Previous<K, V>>,
    same: fn(&V, &V) -> bool,
    seq: u64,
}

impl<K: Eq + Hash + Clone, V: Clone> LayeredBuilder<K, V> {
    /// `same(a, b)`: whether two values of one key are the same reading.
    pub(crate) fn new(same: fn(&V, &V) -> bool) -> Self {
        LayeredBuilder {
            prev: None,
            same,
            seq: 0,
        }
    }

    /// The reading of `fresh`, layered on the previous one.
    pub(crate) fn next(&mut self, fresh: FastMap<K, V>) -> Layered<K, V> {
        self.seq += 1;
        let seq = self.seq;
        let whole = |m: &FastMap<K, V>| -> Box<[(K, V)]> {
            m.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        let (entries, parent, previous, depth) = match self.prev.take() {
            Some((old, parent, depth)) => {
                *parent.newest.lock().unwrap_or_else(|e| e.into_inner()) = None;
                let (mut changed, mut before, mut values) = (Vec::new(), Vec::new(), Vec::new());
                for (k, v) in fresh.iter() {
                    let o = old.get(k);
                    if o.is_none_or(|o| !(self.same)(o, v)) {
                        changed.push((k.clone(), v.clone()));
                        before.push(slot(&mut values, o));
                    }
                }
                let (removed, gone): (Vec<K>, Vec<V>) = old
                    .iter()
                    .filter(|(k, _)| !fresh.contains_key(*k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .unzip();
                let keyframe = depth >= KEYFRAME_EVERY;
                let entries = Entries {
                    full: if keyframe {
                        whole(&fresh)
                    } else {
                        Box::new([])
                    },
                    changed: changed.into_boxed_slice(),
                    removed: removed.into_boxed_slice(),
                    past: Some(Past {
                        changed: before.into_boxed_slice(),
                        values: values.into_boxed_slice(),
                        removed: gone.into_boxed_slice(),
                    }),
                };
                if keyframe {
                    (entries, None, Some(Arc::downgrade(&parent)), 1)
                } else {
                    (entries, Some(parent), None, depth + 1)
                }
            }
            None => {
                let entries = Entries {
                    full: whole(&fresh),
                    changed: Box::new([]),
                    removed: Box::new([]),
                    past: Some(Past {
                        changed: Box::new([]),
                        values: Box::new([]),
                        removed: Box::new([]),
                    }),
                };
                (entries, None, None, 1)
            }
        };
        let layer = Layer {
            entries: Mutex::new(entries),
            parent,
            previous,
            seq,
            newest: Mutex::new(None),
        };
        let fresh = Arc::new(fresh);
        *layer.newest.lock().unwrap_or_else(|e| e.into_inner()) = Some(fresh.clone());
        let layer = Arc::new(layer);
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
        let e = r.top.entries();
        assert_eq!(&*e.changed, &[(3, 2)]);
        assert_eq!(&*e.removed, &[4]);
        let past = e.past.as_ref().unwrap();
        assert_eq!((past.before(0), &*past.removed), (Some(&1), &[1][..]));
        drop(e);
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
        let kept: usize = readings
            .iter()
            .map(|r| {
                let e = r.top.entries();
                e.changed.len() + e.full.len()
            })
            .sum();
        assert!(kept < 10 * readings.len() + 40, "{kept} entries kept");
    }

    /// Keys come and go and values move, across keyframes, as in a storm of processes.
    type Readings = Vec<Layered<u32, u64>>;

    fn churn(steps: u32) -> (Readings, Vec<FastMap<u32, u64>>) {
        let mut b = LayeredBuilder::<u32, u64>::new(|a, b| a == b);
        let (mut readings, mut truth) = (Vec::new(), Vec::new());
        for step in 0..steps {
            let m: FastMap<u32, u64> = (0..60u32)
                .filter(|k| (k + step) % 7 != 0 && (k * 3 + step) % 11 != 0)
                .map(|k| {
                    (
                        k,
                        if k % 4 == 0 {
                            (step / 3) as u64
                        } else {
                            k as u64
                        },
                    )
                })
                .collect();
            readings.push(b.next(m.clone()));
            truth.push(m);
        }
        (readings, truth)
    }

    /// What `changes` must say: every key of `last` whose value differs from `first`'s (or
    /// that `first` lacks), plus keys with equal ends that left and came back in between.
    fn moved_truth(
        truth: &[FastMap<u32, u64>],
        i: usize,
        j: usize,
    ) -> Vec<(u32, Option<u64>, u64)> {
        let (first, last) = (&truth[i], &truth[j]);
        let mut want: Vec<(u32, Option<u64>, u64)> = last
            .iter()
            .filter(|(k, v)| {
                first.get(k) != Some(v)
                    || truth[i..=j].windows(2).any(|w| w[0].get(k) != w[1].get(k))
            })
            .map(|(k, v)| (*k, first.get(k).copied(), *v))
            .collect();
        want.sort_unstable();
        want
    }

    #[test]
    fn changes_are_the_window_deltas_across_keyframes() {
        let n = KEYFRAME_EVERY * 2 + 9;
        for (i, j) in [
            (0, 1),
            (0, 5),
            (3, 40),
            (90, 130),
            (95, 205),
            (150, n - 1),
            (7, 7),
        ] {
            // Windows end at the newest reading, as the agent's and a doctor run's do.
            let (readings, truth) = churn(j + 1);
            let (i, j) = (i as usize, j as usize);
            let mut got = Vec::new();
            Layered::changes(&readings[i], &readings[j], |k, b, a| {
                got.push((*k, b.copied(), *a))
            });
            got.sort_unstable();
            assert_eq!(got, moved_truth(&truth, i, j), "window {i}..{j}");
        }
        // A window not ending at the newest, readings of two builders, or out of order:
        // every key of the later one, from both ends whole.
        let (readings, truth) = churn(30);
        let (other, other_truth) = churn(3);
        for (first, first_truth, last) in [
            (&readings[3], &truth[3], 10),
            (&other[0], &other_truth[0], 10),
            (&other[0], &other_truth[0], 29),
        ] {
            let mut got = Vec::new();
            Layered::changes(first, &readings[last], |k, b, a| {
                got.push((*k, b.copied(), *a))
            });
            got.sort_unstable();
            let mut want: Vec<(u32, Option<u64>, u64)> = truth[last]
                .iter()
                .map(|(k, v)| (*k, first_truth.get(k).copied(), *v))
                .collect();
            want.sort_unstable();
            assert_eq!(got, want, "to reading {last}");
        }
    }

    #[test]
    fn tracked_keys_match_every_reading() {
        let n = KEYFRAME_EVERY + 30;
        let (readings, truth) = churn(n);
        for stride in [1, 4] {
            let picked: Vec<usize> = (60..n as usize).step_by(stride).collect();
            let series: Vec<&Layered<u32, u64>> = picked.iter().map(|i| &readings[*i]).collect();
            let keys: Vec<(u32, Option<u64>)> = [0u32, 3, 8, 13, 59, 500]
                .iter()
                .map(|k| (*k, truth[picked[0]].get(k).copied()))
                .collect();
            let got = Layered::track(&series, &keys);
            for (ki, (k, _)) in keys.iter().enumerate() {
                let want: Vec<Option<u64>> =
                    picked.iter().map(|i| truth[*i].get(k).copied()).collect();
                assert_eq!(got[ki], want, "key {k}, stride {stride}");
            }
        }
    }

    #[test]
    fn windows_ending_at_the_newest_stay_exact_after_compaction() {
        let n = KEYFRAME_EVERY + 40;
        let (readings, truth) = churn(n);
        let refs: Vec<&Layered<u32, u64>> = readings.iter().collect();
        Layered::compact(&refs);
        let last = n as usize - 1;
        for i in [0, 50, 99, 100, 120, last] {
            let mut got = Vec::new();
            Layered::changes(&readings[i], &readings[last], |k, b, a| {
                got.push((*k, b.copied(), *a))
            });
            got.sort_unstable();
            if i as u64 + PAST_KEPT > last as u64 {
                assert_eq!(got, moved_truth(&truth, i, last), "window {i}..{last}");
            } else {
                // Older than the kept values: every key of the newest, from both ends whole.
                let mut want: Vec<(u32, Option<u64>, u64)> = truth[last]
                    .iter()
                    .map(|(k, v)| (*k, truth[i].get(k).copied(), *v))
                    .collect();
                want.sort_unstable();
                assert_eq!(got, want, "window {i}..{last}");
            }
        }
        // What compaction dropped: past values of old readings, entries of gone keys.
        let e = readings[10].top.entries();
        assert!(e.past.is_none());
        assert!(e.changed.iter().all(|(k, _)| truth[last].contains_key(k)));
    }

    #[test]
    fn a_short_kept_window_keeps_only_its_own_past() {
        // As an agent keeping 10 s: only the last ten readings are compacted together.
        let n = KEYFRAME_EVERY / 2;
        let (readings, truth) = churn(n);
        let kept: Vec<&Layered<u32, u64>> = readings[(n as usize - 10)..].iter().collect();
        Layered::compact(&kept);
        let (first, last) = (n as usize - 10, n as usize - 1);
        assert!(readings[first].top.entries().past.is_none());
        assert!(readings[first + 1].top.entries().past.is_some());
        assert!(readings[first - 5].top.entries().past.is_none());
        let mut got = Vec::new();
        Layered::changes(&readings[first], &readings[last], |k, b, a| {
            got.push((*k, b.copied(), *a))
        });
        got.sort_unstable();
        assert_eq!(got, moved_truth(&truth, first, last));
    }
}
