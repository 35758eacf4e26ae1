//! Trends: how a quantity moves over a window, from its per-second [`Series`]. One place for
//! growth rates, ETAs and "sustained": rules (oom-imminent, fd-leak, ...), `predict` and the
//! charts read these, and nothing else fits a line of its own.
//!
//! The slope is Theil–Sen's (the median of the slopes between every pair of points), so one
//! outlier (a burst, a reading taken late) cannot tilt it; the fit quality is the share of
//! the variance that line explains (R², 0 to 1); growth is *sustained* when the line rises by
//! at least a minimum rate, explains most of the movement, rises in most intervals and is
//! not a sawtooth (fills and drops, as caches and garbage collectors do).
//!
//! ```
//! use kerno_core::{Series, trend::Trend};
//!
//! // A leak: +1 MiB a second for 10 s.
//! let leak = Series::from_points((0..=10).map(|i| (i * 1000, (100 + i) as f64 * 1048576.0)));
//! let t = Trend::of(&leak).unwrap();
//! assert!((t.slope_per_sec - 1048576.0).abs() < 1.0);
//! assert!(t.sustained(64.0 * 1024.0));
//! assert_eq!(t.eta_secs(120.0 * 1048576.0).map(|s| s.round()), Some(10.0));
//!
//! // Noise at a ceiling: up and down by a few pages, no trend.
//! let noise = Series::from_points((0..=10).map(|i| (i * 1000, 134_000_000.0 + [0.0, 8192.0][i as usize % 2])));
//! assert!(!Trend::of(&noise).unwrap().sustained(16.0 * 1024.0));
//! ```

use serde::{Deserialize, Serialize};

/// A quantity sampled over a window, about once a second: `(milliseconds since the window's
/// start, value)`, oldest first. Serialised as a list of `[ms, value]` pairs.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Series(pub Vec<(u64, f64)>);

impl Series {
    /// A series from `(ms, value)` points, oldest first.
    pub fn from_points(points: impl IntoIterator<Item = (u64, f64)>) -> Series {
        Series(points.into_iter().collect())
    }

    /// Add a point (at or after the last one).
    pub fn push(&mut self, ms: u64, value: f64) {
        self.0.push((ms, value));
    }

    /// Whether it has no points.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The number of points.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The first value.
    pub fn first(&self) -> Option<f64> {
        self.0.first().map(|p| p.1)
    }

    /// The last value.
    pub fn last(&self) -> Option<f64> {
        self.0.last().map(|p| p.1)
    }

    /// The largest value.
    pub fn max(&self) -> Option<f64> {
        self.0.iter().map(|p| p.1).reduce(f64::max)
    }
}

/// A fit below this R² does not count as sustained growth: the line explains too little.
pub const MIN_FIT: f64 = 0.6;
/// At least this share of the intervals must rise for growth to count as sustained.
pub const MIN_RISING: f64 = 0.5;
/// A drop of at least this share of the series' range between two samples is a saw's edge.
const SAW_DROP: f64 = 0.25;

/// How a series moves.
#[derive(Clone, Debug, PartialEq)]
pub struct Trend {
    /// Theil–Sen slope, units per second.
    pub slope_per_sec: f64,
    /// Fit quality of that line: the share of the variance it explains (0 to 1; 1 for a
    /// series of two points or with no variance).
    pub fit: f64,
    /// The share of intervals in which the value rose.
    pub rising: f64,
    /// Whether it fills and drops: some drop between two samples is at least a quarter of the
    /// series' range, after it rose by as much.
    pub sawtooth: bool,
    /// The number of points.
    pub points: usize,
    /// Seconds from the first point to the last.
    pub span_secs: f64,
    /// The last value.
    pub last: f64,
    /// The lower end of the slope's 95% confidence interval (Sen's, from the ranks of the
    /// pairwise slopes; no assumption about the noise), units per second.
    pub slope_low: f64,
    /// The upper end of that interval, units per second.
    pub slope_high: f64,
}

impl Trend {
    /// The trend of a series of at least two points spanning some time; `None` otherwise.
    pub fn of(series: &Series) -> Option<Trend> {
        let p = &series.0;
        if p.len() < 2 {
            return None;
        }
        let t0 = p[0].0;
        let span_secs = p[p.len() - 1].0.saturating_sub(t0) as f64 / 1000.0;
        if span_secs <= 0.0 {
            return None;
        }
        let xs: Vec<f64> = p.iter().map(|(t, _)| (t - t0) as f64 / 1000.0).collect();
        let ys: Vec<f64> = p.iter().map(|(_, v)| *v).collect();
        let mut slopes = Vec::with_capacity(p.len() * (p.len() - 1) / 2);
        for i in 0..p.len() {
            for j in i + 1..p.len() {
                let dx = xs[j] - xs[i];
                if dx > 0.0 {
                    slopes.push((ys[j] - ys[i]) / dx);
                }
            }
        }
        let slope = median(&mut slopes)?;
        let (slope_low, slope_high) = sen_interval(&slopes, p.len());
        let mut intercepts: Vec<f64> = xs.iter().zip(&ys).map(|(x, y)| y - slope * x).collect();
        let intercept = median(&mut intercepts)?;
        let mean = ys.iter().sum::<f64>() / ys.len() as f64;
        let total: f64 = ys.iter().map(|y| (y - mean).powi(2)).sum();
        let residual: f64 = xs
            .iter()
            .zip(&ys)
            .map(|(x, y)| (y - (intercept + slope * x)).powi(2))
            .sum();
        let fit = if p.len() == 2 || total == 0.0 {
            1.0
        } else {
            (1.0 - residual / total).clamp(0.0, 1.0)
        };
        let steps: Vec<f64> = ys.windows(2).map(|w| w[1] - w[0]).collect();
        let rising = steps.iter().filter(|d| **d > 0.0).count() as f64 / steps.len() as f64;
        let (lo, hi) = ys
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), y| (lo.min(*y), hi.max(*y)));
        let range = hi - lo;
        let mut climbed = 0.0f64;
        let mut sawtooth = false;
        for d in &steps {
            if *d > 0.0 {
                climbed += d;
            } else if range > 0.0 && -d >= SAW_DROP * range && climbed >= SAW_DROP * range {
                sawtooth = true;
            }
        }
        Some(Trend {
            slope_per_sec: slope,
            fit,
            rising,
            sawtooth,
            points: p.len(),
            span_secs,
            last: ys[ys.len() - 1],
            slope_low,
            slope_high,
        })
    }

    /// Whether this is growth that goes on: a slope of at least `min_per_sec`, a line that
    /// explains the movement ([`MIN_FIT`]), most intervals rising ([`MIN_RISING`]), no saw.
    pub fn sustained(&self, min_per_sec: f64) -> bool {
        self.slope_per_sec > 0.0
            && self.slope_per_sec >= min_per_sec
            && self.fit >= MIN_FIT
            && self.rising >= MIN_RISING
            && !self.sawtooth
    }

    /// Seconds until the line reaches `limit` from the last value, when it grows.
    pub fn eta_secs(&self, limit: f64) -> Option<f64> {
        (self.slope_per_sec > 0.0).then(|| (limit - self.last).max(0.0) / self.slope_per_sec)
    }
}

/// Normal quantile for a two-sided 95% interval.
const Z95: f64 = 1.96;

/// Sen's confidence interval for the Theil–Sen slope from the sorted pairwise `slopes` of `n`
/// points: the slopes at ranks (N ∓ z·√(n(n−1)(2n+5)/18)) / 2, the variance of Kendall's S.
fn sen_interval(sorted: &[f64], n: usize) -> (f64, f64) {
    let count = sorted.len();
    if count == 0 {
        return (0.0, 0.0);
    }
    let n = n as f64;
    let c = Z95 * (n * (n - 1.0) * (2.0 * n + 5.0) / 18.0).sqrt();
    let lo = (((count as f64 - c) / 2.0).round() as i64 - 1).clamp(0, count as i64 - 1);
    let hi = (((count as f64 + c) / 2.0).round() as i64).clamp(0, count as i64 - 1);
    (sorted[lo as usize], sorted[hi as usize])
}

fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(values: &[f64]) -> Series {
        Series::from_points(
            values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as u64 * 1000, *v)),
        )
    }

    #[test]
    fn a_steady_leak_is_sustained_with_its_eta() {
        let t = Trend::of(&s(&[10.0, 20.0, 30.0, 40.0, 50.0])).unwrap();
        assert_eq!(
            (t.slope_per_sec, t.fit, t.rising, t.sawtooth),
            (10.0, 1.0, 1.0, false)
        );
        assert!(t.sustained(10.0) && !t.sustained(10.5));
        assert_eq!(t.eta_secs(100.0), Some(5.0));
        assert_eq!(t.span_secs, 4.0);
    }

    #[test]
    fn one_outlier_does_not_tilt_the_slope() {
        let t = Trend::of(&s(&[10.0, 20.0, 30.0, 400.0, 50.0, 60.0, 70.0])).unwrap();
        assert_eq!(t.slope_per_sec, 10.0);
    }

    #[test]
    fn noise_at_a_ceiling_and_flat_series_are_not_growth() {
        let ceiling = [
            100.0, 101.0, 99.0, 100.5, 99.5, 101.0, 100.0, 99.0, 100.0, 101.0,
        ];
        let t = Trend::of(&s(&ceiling)).unwrap();
        assert!(!t.sustained(0.0), "{t:?}");
        let flat = Trend::of(&s(&[5.0; 6])).unwrap();
        assert_eq!(flat.slope_per_sec, 0.0);
        assert!(!flat.sustained(0.0));
        assert_eq!(flat.eta_secs(10.0), None);
    }

    #[test]
    fn fill_and_drop_is_a_sawtooth() {
        let saw = [
            10.0, 30.0, 50.0, 70.0, 20.0, 40.0, 60.0, 80.0, 30.0, 50.0, 70.0, 90.0,
        ];
        let t = Trend::of(&s(&saw)).unwrap();
        assert!(
            t.sawtooth && t.slope_per_sec > 0.0 && !t.sustained(0.0),
            "{t:?}"
        );
        // A small dip in a steady climb is not.
        let t = Trend::of(&s(&[10.0, 20.0, 30.0, 28.0, 40.0, 50.0, 60.0])).unwrap();
        assert!(!t.sawtooth && t.sustained(5.0), "{t:?}");
    }

    #[test]
    fn too_short_series_have_no_trend_and_two_points_are_a_line() {
        assert!(Trend::of(&s(&[])).is_none());
        assert!(Trend::of(&s(&[1.0])).is_none());
        assert!(Trend::of(&Series::from_points([(5, 1.0), (5, 2.0)])).is_none());
        let t = Trend::of(&s(&[1.0, 3.0])).unwrap();
        assert_eq!((t.slope_per_sec, t.fit, t.rising), (2.0, 1.0, 1.0));
    }

    #[test]
    fn the_slope_interval_is_tight_for_a_line_and_spans_zero_for_noise() {
        let t = Trend::of(&s(&[10.0, 20.0, 30.0, 40.0, 50.0, 60.0])).unwrap();
        assert_eq!((t.slope_low, t.slope_high), (10.0, 10.0));
        let noise = [5.0, 7.0, 4.0, 6.0, 5.0, 7.0, 4.0, 6.0, 5.0, 6.0];
        let t = Trend::of(&s(&noise)).unwrap();
        assert!(t.slope_low < 0.0 && t.slope_high > 0.0, "{t:?}");
        // A line with jitter: the interval holds the true slope and excludes zero.
        let jitter: Vec<f64> = (0..20)
            .map(|i| 100.0 + 3.0 * i as f64 + [0.0, 2.0, -1.5, 1.0][i % 4])
            .collect();
        let t = Trend::of(&s(&jitter)).unwrap();
        assert!(
            t.slope_low > 2.0 && t.slope_low <= 3.0 && t.slope_high >= 3.0,
            "{t:?}"
        );
    }

    #[test]
    fn series_serialise_as_pairs() {
        let x = Series::from_points([(0, 1.5), (1000, 2.0)]);
        assert_eq!(serde_json::to_string(&x).unwrap(), "[[0,1.5],[1000,2.0]]");
        assert_eq!(
            serde_json::from_str::<Series>("[[0,1.5],[1000,2]]").unwrap(),
            x
        );
    }
}
