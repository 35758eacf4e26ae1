//! Latency histograms: the kernel's log-linear buckets, kept sparse, with percentiles.

use kerno_probes_common::hist;
use serde::{Deserialize, Serialize};

/// A latency histogram in nanoseconds, with the probes' log-linear buckets.
///
/// Each power of two is split into 16 linear sub-buckets, so a bucket is at most 6.25% of its
/// value wide; percentiles interpolate linearly inside the bucket. Only non-empty buckets are
/// stored. In JSON it carries its count and p50/p90/p99/max for readers, and the buckets as
/// `[index, count]` pairs, which are all that is read back.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "HistogramRepr", from = "HistogramRepr")]
pub struct Histogram {
    buckets: Vec<(u32, u64)>,
}

#[derive(Serialize, Deserialize)]
struct HistogramRepr {
    #[serde(default)]
    count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p50_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p90_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p99_ns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_ns: Option<u64>,
    buckets: Vec<(u32, u64)>,
}

impl From<Histogram> for HistogramRepr {
    fn from(h: Histogram) -> Self {
        HistogramRepr {
            count: h.count(),
            p50_ns: h.percentile(50.0),
            p90_ns: h.percentile(90.0),
            p99_ns: h.percentile(99.0),
            max_ns: h.max(),
            buckets: h.buckets,
        }
    }
}

impl From<HistogramRepr> for Histogram {
    fn from(r: HistogramRepr) -> Self {
        let mut buckets: Vec<(u32, u64)> = r
            .buckets
            .into_iter()
            .filter(|(i, c)| *c > 0 && (*i as usize) < hist::BUCKETS)
            .collect();
        buckets.sort_unstable();
        buckets.dedup_by(|b, a| {
            if a.0 == b.0 {
                a.1 = a.1.saturating_add(b.1);
                true
            } else {
                false
            }
        });
        Histogram { buckets }
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// From dense bucket counts as the kernel stores them (index = bucket).
    pub fn from_dense(dense: &[u64]) -> Self {
        Histogram {
            buckets: dense
                .iter()
                .enumerate()
                .filter(|(i, c)| **c > 0 && *i < hist::BUCKETS)
                .map(|(i, c)| (i as u32, *c))
                .collect(),
        }
    }

    /// Record one value (ns).
    pub fn record(&mut self, value_ns: u64) {
        self.record_n(value_ns, 1);
    }

    /// Record a value `n` times.
    pub fn record_n(&mut self, value_ns: u64, n: u64) {
        if n == 0 {
            return;
        }
        let b = hist::bucket(value_ns) as u32;
        match self.buckets.binary_search_by_key(&b, |(i, _)| *i) {
            Ok(pos) => self.buckets[pos].1 = self.buckets[pos].1.saturating_add(n),
            Err(pos) => self.buckets.insert(pos, (b, n)),
        }
    }

    /// Add another histogram's counts.
    pub fn merge(&mut self, other: &Histogram) {
        for (i, c) in &other.buckets {
            match self.buckets.binary_search_by_key(i, |(j, _)| *j) {
                Ok(pos) => self.buckets[pos].1 = self.buckets[pos].1.saturating_add(*c),
                Err(pos) => self.buckets.insert(pos, (*i, *c)),
            }
        }
    }

    /// `self - older`, for cumulative histograms read at two times. Buckets never go below
    /// zero (a map that was recreated in between reads as a fresh start).
    pub fn delta(&self, older: &Histogram) -> Histogram {
        let mut out = Vec::with_capacity(self.buckets.len());
        for (i, c) in &self.buckets {
            let prev = older
                .buckets
                .binary_search_by_key(i, |(j, _)| *j)
                .map(|p| older.buckets[p].1)
                .unwrap_or(0);
            if *c > prev {
                out.push((*i, c - prev));
            }
        }
        Histogram { buckets: out }
    }

    /// The histogram without its `n` largest samples (all of them when it has fewer): what
    /// is left when `n` waits known to be the longest are accounted for elsewhere.
    pub fn without_top(&self, n: u64) -> Histogram {
        let mut left = n;
        let mut buckets = self.buckets.clone();
        while left > 0 {
            let Some(last) = buckets.last_mut() else {
                break;
            };
            let take = last.1.min(left);
            last.1 -= take;
            left -= take;
            if last.1 == 0 {
                buckets.pop();
            }
        }
        Histogram { buckets }
    }

    /// Number of samples. Counts saturate at `u64::MAX` (a corrupted or hand-edited
    /// snapshot can hold any count; it must not overflow).
    pub fn count(&self) -> u64 {
        self.buckets
            .iter()
            .fold(0u64, |n, (_, c)| n.saturating_add(*c))
    }

    /// True when there are no samples.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }

    /// The non-empty buckets as `(index, count)`.
    pub fn buckets(&self) -> &[(u32, u64)] {
        &self.buckets
    }

    /// The non-empty buckets as `(lower bound ns, upper bound ns, count)`.
    pub fn ranges(&self) -> impl Iterator<Item = (u64, u64, u64)> + '_ {
        self.buckets.iter().map(|(i, c)| {
            let (lo, hi) = hist::bounds(*i as usize);
            (lo, hi, *c)
        })
    }

    /// The `q`-th percentile (0 < q <= 100) in ns, interpolated inside its bucket; `None`
    /// when empty.
    pub fn percentile(&self, q: f64) -> Option<u64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let q = q.clamp(0.0, 100.0);
        // The rank of the sample we want, 1-based, as in the nearest-rank method.
        let rank = ((q / 100.0) * total as f64).ceil().max(1.0);
        let mut seen = 0u64;
        for (i, c) in &self.buckets {
            if seen.saturating_add(*c) as f64 >= rank {
                let (lo, hi) = hist::bounds(*i as usize);
                // Assume the bucket's samples are spread evenly over [lo, hi).
                let within = (rank - seen as f64 - 0.5) / *c as f64;
                // Values in the bucket are lo..=hi-1.
                let v = lo as f64 + within.clamp(0.0, 1.0) * (hi - 1 - lo) as f64;
                return Some(v.round() as u64);
            }
            seen = seen.saturating_add(*c);
        }
        self.max()
    }

    /// The upper bound of the highest non-empty bucket (ns): no sample is larger, except
    /// ones clamped into the last bucket.
    pub fn max(&self) -> Option<u64> {
        self.buckets
            .last()
            .map(|(i, _)| hist::bounds(*i as usize).1 - 1)
    }

    /// Number of samples at or above `ns` (counting a bucket that straddles `ns` in
    /// proportion).
    pub fn count_above(&self, ns: u64) -> f64 {
        let mut n = 0.0;
        for (lo, hi, c) in self.ranges() {
            if lo >= ns {
                n += c as f64;
            } else if hi > ns {
                n += c as f64 * (hi - ns) as f64 / (hi - lo) as f64;
            }
        }
        n
    }

    /// Approximate mean (ns), from bucket midpoints.
    pub fn mean(&self) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        Some(self.approx_sum_ns() / total as f64)
    }

    /// Approximate sum of the samples (ns), from bucket midpoints: the kernel keeps no sum,
    /// and a bucket is at most 6.25% wide. Additive: the sum of a merge is the sum of the
    /// parts.
    pub fn approx_sum_ns(&self) -> f64 {
        self.ranges()
            .map(|(lo, hi, c)| (lo as f64 + hi as f64) / 2.0 * c as f64)
            .sum()
    }

    /// The samples regrouped into coarser buckets ending at `upper_bounds_ns` (ascending):
    /// element `i` counts the samples of the kernel buckets that end at or below
    /// `upper_bounds_ns[i]` and above the previous bound, and one more element counts those
    /// above the last bound. Exact when every bound is a kernel bucket edge (any power of
    /// two is, from 16 up); a kernel bucket that straddles a bound counts in the coarser
    /// bucket above it.
    pub fn regroup(&self, upper_bounds_ns: &[u64]) -> Vec<u64> {
        let mut out = vec![0u64; upper_bounds_ns.len() + 1];
        for (_, hi, c) in self.ranges() {
            let i = upper_bounds_ns
                .iter()
                .position(|b| hi <= *b)
                .unwrap_or(upper_bounds_ns.len());
            out[i] = out[i].saturating_add(c);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_top_drops_the_largest_samples() {
        let mut h = Histogram::new();
        h.record_n(10_000, 990);
        h.record_n(80_000_000, 10);
        assert!(h.percentile(99.5).unwrap() > 70_000_000);
        let rest = h.without_top(10);
        assert_eq!(rest.count(), 990);
        assert!(rest.max().unwrap() < 11_000);
        assert_eq!(h.without_top(4).count(), 996);
        assert!(h.without_top(5_000).is_empty());
        assert_eq!(h.without_top(0), h);
    }

    fn exact_percentile(sorted: &[u64], q: f64) -> u64 {
        let rank = ((q / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
        sorted[rank - 1]
    }

    /// A small deterministic generator, so the test needs no extra crates.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            self.0 >> 33
        }
    }

    #[test]
    fn percentiles_within_five_percent_of_exact() {
        let mut rng = Lcg(42);
        // Several shapes: uniform, log-uniform (latency-like, wide), bimodal.
        let shapes: Vec<Vec<u64>> = vec![
            (0..10_000).map(|_| 1_000 + rng.next() % 99_000).collect(),
            (0..10_000)
                .map(|_| {
                    let e = rng.next() % 24;
                    (1u64 << (e + 8)) + rng.next() % (1u64 << (e + 8))
                })
                .collect(),
            (0..10_000)
                .map(|i| {
                    if i % 50 == 0 {
                        200_000_000 + rng.next() % 50_000_000
                    } else {
                        50_000 + rng.next() % 10_000
                    }
                })
                .collect(),
        ];
        for (s, samples) in shapes.iter().enumerate() {
            let mut h = Histogram::new();
            for v in samples {
                h.record(*v);
            }
            let mut sorted = samples.clone();
            sorted.sort_unstable();
            assert_eq!(h.count(), sorted.len() as u64);
            for q in [50.0, 90.0, 99.0, 99.9] {
                let exact = exact_percentile(&sorted, q) as f64;
                let got = h.percentile(q).unwrap() as f64;
                let err = (got - exact).abs() / exact;
                assert!(
                    err <= 0.05,
                    "shape {s} p{q}: got {got}, exact {exact}, err {err:.4}"
                );
            }
        }
    }

    #[test]
    fn small_values_are_exact() {
        let mut h = Histogram::new();
        for v in 0..16 {
            h.record(v);
        }
        assert_eq!(h.percentile(100.0), Some(15));
        assert_eq!(h.count(), 16);
    }

    #[test]
    fn delta_and_merge_are_inverse() {
        let mut a = Histogram::new();
        for v in [100, 2_000, 2_000, 5_000_000] {
            a.record(v);
        }
        let mut b = a.clone();
        for v in [100, 7_000_000_000] {
            b.record(v);
        }
        let d = b.delta(&a);
        assert_eq!(d.count(), 2);
        let mut back = a.clone();
        back.merge(&d);
        assert_eq!(back, b);
        assert!(Histogram::new().percentile(99.0).is_none());
    }

    #[test]
    fn json_roundtrip_keeps_buckets() {
        let mut h = Histogram::new();
        for v in [1_000, 1_500, 90_000_000] {
            h.record(v);
        }
        let s = serde_json::to_string(&h).unwrap();
        assert!(s.contains("\"p99_ns\""), "{s}");
        let back: Histogram = serde_json::from_str(&s).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn regrouping_sums_whole_kernel_buckets() {
        let mut h = Histogram::new();
        h.record_n(1_000, 3); // below 1024
        h.record_n(1_024, 2); // the next power of two starts the next bucket
        h.record_n(4_095, 1); // the last value below 4096
        h.record_n(5_000_000_000, 1); // beyond the last bound
        assert_eq!(h.regroup(&[1 << 10, 1 << 12]), vec![3, 3, 1]);
        assert_eq!(h.regroup(&[]), vec![7], "no bounds: everything above");
        assert_eq!(Histogram::new().regroup(&[1 << 10]), vec![0, 0]);
        let total: u64 = h.regroup(&[1 << 11, 1 << 20, 1 << 30]).iter().sum();
        assert_eq!(total, h.count(), "no sample is lost or counted twice");
    }

    #[test]
    fn approximate_sum_is_within_a_bucket_and_additive() {
        let mut a = Histogram::new();
        a.record_n(1_000, 3);
        let mut b = Histogram::new();
        b.record_n(5_000_000_000, 1);
        let exact = 3.0 * 1_000.0 + 5e9;
        let mut both = a.clone();
        both.merge(&b);
        let sum = both.approx_sum_ns();
        assert!((sum - exact).abs() / exact < 0.0625, "{sum}");
        assert_eq!(sum, a.approx_sum_ns() + b.approx_sum_ns());
        assert_eq!(Histogram::new().approx_sum_ns(), 0.0);
        assert_eq!(both.mean(), Some(sum / 4.0));
    }

    #[test]
    fn count_above_is_proportional() {
        let mut h = Histogram::new();
        h.record_n(1_000_000, 10);
        h.record_n(100_000_000, 5);
        assert_eq!(h.count_above(50_000_000), 5.0);
        assert_eq!(h.count_above(0), 15.0);
    }
}
