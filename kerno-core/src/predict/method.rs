//! The method: when a level's growth is a prediction, and when it is not.

use super::{Confidence, Level, PredictOptions, Prediction};
use crate::{Series, trend::Trend};

/// Longer series are averaged down to about this many points before fitting (the pairwise
/// slopes grow with the square of the points).
const MAX_POINTS: usize = 240;
/// A drop between two samples of at least this share of the series' range is an edge
/// (a restart, a reclaim, a rotation).
const EDGE: f64 = 0.25;
/// The last part of the series whose own slope must still rise.
const TAIL_SHARE: f64 = 1.0 / 3.0;
/// ... by at least this share of the whole series' slope (else growth has levelled off).
const TAIL_MIN: f64 = 0.3;

/// What the method made of one level.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// It runs out inside the horizon.
    RunsOut(Box<Prediction>),
    /// Fewer points than a line needs.
    TooFewPoints,
    /// Not growing (flat or shrinking).
    Steady,
    /// Up and down with no line through it (R² under the floor, or a slope interval that
    /// includes zero).
    Noise,
    /// It fills and drops (caches, garbage collectors, log rotation): reclaimed, not a leak.
    Sawtooth,
    /// It grew, then levelled off: the recent slope is a fraction of the whole.
    LevellingOff,
    /// It grows, but by less than the resource's minimum over the span observed.
    TooLittleGrowth,
    /// It runs out, but after the horizon.
    BeyondHorizon,
    /// No limit (zero), nothing to run out of.
    NoLimit,
}

impl Verdict {
    /// The short reason (`steady`, `sawtooth`, ...), as the forecast counts them.
    pub fn reason(&self) -> &'static str {
        match self {
            Verdict::RunsOut(_) => "runs_out",
            Verdict::TooFewPoints => "too_few_points",
            Verdict::Steady => "steady",
            Verdict::Noise => "noise",
            Verdict::Sawtooth => "sawtooth",
            Verdict::LevellingOff => "levelling_off",
            Verdict::TooLittleGrowth => "too_little_growth",
            Verdict::BeyondHorizon => "beyond_horizon",
            Verdict::NoLimit => "no_limit",
        }
    }
}

/// Average a long series down to about [`MAX_POINTS`] points.
fn downsample(s: &Series) -> Series {
    let n = s.len();
    if n <= MAX_POINTS {
        return s.clone();
    }
    let per = n.div_ceil(MAX_POINTS);
    Series::from_points(s.0.chunks(per).map(|c| {
        let k = c.len() as f64;
        let t = c.iter().map(|p| p.0 as f64).sum::<f64>() / k;
        let v = c.iter().map(|p| p.1).sum::<f64>() / k;
        (t as u64, v)
    }))
}

/// The indices after which the series drops by an edge.
fn edges(s: &Series) -> Vec<usize> {
    let (lo, hi) = s.0.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let range = hi - lo;
    if range <= 0.0 {
        return Vec::new();
    }
    s.0.windows(2)
        .enumerate()
        .filter(|(_, w)| w[0].1 - w[1].1 >= EDGE * range)
        .map(|(i, _)| i + 1)
        .collect()
}

/// A series with edges: a sawtooth when most edges end a ramp (the part before the drop
/// rose by at least half of it over three samples or more, mostly step by step), noise
/// otherwise (a drop after one step up is as likely jitter as a reclaim).
fn saw_or_noise(s: &Series, cuts: &[usize]) -> Verdict {
    let mut ramps = 0;
    let mut start = 0;
    for &cut in cuts {
        let seg = &s.0[start..cut];
        let drop = s.0[cut - 1].1 - s.0[cut].1;
        let rise = seg.last().map(|p| p.1).unwrap_or(0.0) - seg[0].1;
        let steps_up = seg.windows(2).filter(|w| w[1].1 > w[0].1).count();
        if seg.len() >= 3 && rise >= 0.5 * drop && 2 * steps_up >= seg.len() - 1 {
            ramps += 1;
        }
        start = cut;
    }
    if 2 * ramps >= cuts.len() && ramps > 0 {
        Verdict::Sawtooth
    } else {
        Verdict::Noise
    }
}

/// Judge one level.
///
/// 1. At least `min_points` points (long series averaged down first).
/// 2. Edges (drops of a quarter of the range): one is a restart when at least half the
///    points come after it, and only those are fitted; otherwise edges that end ramps make
///    a sawtooth (filled and reclaimed, never a leak), and other edges are noise.
/// 3. A Theil–Sen line: its slope must be positive, explain `min_fit` of the variance, and
///    its 95% interval must exclude zero.
/// 4. The last third must still rise, at ≥ 30% of the overall slope.
/// 5. The growth over the span must reach the resource's minimum.
/// 6. The ETA (from the last value) must fall inside the horizon.
pub fn judge(level: &Level, opts: &PredictOptions) -> Verdict {
    if level.limit <= 0.0 {
        return Verdict::NoLimit;
    }
    let series = downsample(&level.series);
    if series.len() < opts.min_points.max(3) {
        return Verdict::TooFewPoints;
    }
    let cuts = edges(&series);
    let fitted = match cuts.as_slice() {
        [] => series,
        [cut] if series.len() - cut >= (series.len() / 2).max(opts.min_points.max(3)) => {
            let t0 = series.0[*cut].0;
            let after = Series::from_points(series.0[*cut..].iter().map(|(t, v)| (t - t0, *v)));
            if !edges(&after).is_empty() {
                return saw_or_noise(&after, &edges(&after));
            }
            after
        }
        _ => return saw_or_noise(&series, &cuts),
    };
    let Some(t) = Trend::of(&fitted) else {
        return Verdict::TooFewPoints;
    };
    if t.slope_per_sec <= 0.0 {
        return Verdict::Steady;
    }
    if t.fit < opts.min_fit || t.slope_low <= 0.0 {
        return Verdict::Noise;
    }
    let tail_from = fitted.len() - ((fitted.len() as f64 * TAIL_SHARE).ceil() as usize).max(3);
    let tail = Series::from_points(fitted.0[tail_from..].iter().copied());
    match Trend::of(&tail) {
        Some(tt) if tt.slope_per_sec > 0.0 && tt.slope_per_sec >= TAIL_MIN * t.slope_per_sec => {}
        _ => return Verdict::LevellingOff,
    }
    if t.slope_per_sec * t.span_secs < level.resource.min_growth(level.limit) {
        return Verdict::TooLittleGrowth;
    }
    let headroom = (level.limit - t.last).max(0.0);
    let eta = headroom / t.slope_per_sec;
    if eta > opts.horizon.as_secs_f64() {
        return Verdict::BeyondHorizon;
    }
    let (eta_low, eta_high) = (headroom / t.slope_high, headroom / t.slope_low);
    Verdict::RunsOut(Box::new(Prediction {
        resource: level.resource,
        unit: level.resource.unit(),
        what: level.what.clone(),
        process: level.process.clone(),
        cgroup: level.cgroup.clone(),
        pod: level.pod.clone(),
        current: t.last,
        limit: level.limit,
        per_sec: t.slope_per_sec,
        eta_secs: eta,
        eta_low_secs: eta_low,
        eta_high_secs: eta_high,
        at_unix_ms: 0,
        confidence: confidence(&t, eta),
        fit: t.fit,
        points: t.points,
        span_secs: t.span_secs,
        warn: eta <= opts.warn_within.as_secs_f64(),
        consequence: level
            .consequence
            .clone()
            .unwrap_or_else(|| level.resource.consequence().to_string()),
    }))
}

/// High: R² ≥ 0.95, the slope known within ±25%, an ETA at most 10× the span observed.
/// Medium: R² ≥ 0.9 and an ETA at most 100× the span. Low otherwise.
fn confidence(t: &Trend, eta: f64) -> Confidence {
    let spread = (t.slope_high - t.slope_low) / (2.0 * t.slope_per_sec);
    let reach = eta / t.span_secs.max(1e-9);
    if t.fit >= 0.95 && spread <= 0.25 && reach <= 10.0 {
        Confidence::High
    } else if t.fit >= 0.9 && reach <= 100.0 {
        Confidence::Medium
    } else {
        Confidence::Low
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::predict::Resource;

    const MIB: f64 = 1048576.0;

    fn level(resource: Resource, limit: f64, values: &[f64]) -> Level {
        Level::new(
            resource,
            "x",
            limit,
            Series::from_points(
                values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i as u64 * 1000, *v)),
            ),
        )
    }

    fn verdict(l: &Level) -> Verdict {
        judge(l, &PredictOptions::default())
    }

    fn runs_out(v: Verdict) -> Prediction {
        match v {
            Verdict::RunsOut(p) => *p,
            other => panic!("no prediction: {other:?}"),
        }
    }

    #[test]
    fn a_linear_leak_runs_out_on_time_with_high_confidence() {
        // 1 MiB/s from 10 MiB, limit 64 MiB: at 29 MiB after 19 s, 35 s left.
        let v: Vec<f64> = (0..20).map(|i| (10 + i) as f64 * MIB).collect();
        let p = runs_out(verdict(&level(Resource::CgroupMemory, 64.0 * MIB, &v)));
        assert_eq!(p.eta_secs, 35.0);
        assert_eq!((p.eta_low_secs, p.eta_high_secs), (35.0, 35.0));
        assert_eq!(p.confidence, Confidence::High);
        assert!(p.warn);
        // The same leak with jitter: still predicted, the ETA within 10%.
        let v: Vec<f64> = (0..30)
            .map(|i| (10 + i) as f64 * MIB + [0.0, 0.4, -0.3, 0.2][i % 4] * MIB)
            .collect();
        let p = runs_out(verdict(&level(Resource::CgroupMemory, 80.0 * MIB, &v)));
        assert!((p.eta_secs - 41.0).abs() < 4.1, "{p:?}");
        assert!(p.eta_low_secs <= p.eta_secs && p.eta_secs <= p.eta_high_secs);
    }

    #[test]
    fn a_sawtooth_is_not_a_leak() {
        // A GC heap: fills 2 MiB/s for 6 s, drops back, three times.
        let v: Vec<f64> = (0..24)
            .map(|i| (20.0 + 2.0 * (i % 8) as f64) * MIB)
            .collect();
        assert_eq!(
            verdict(&level(Resource::CgroupMemory, 64.0 * MIB, &v)),
            Verdict::Sawtooth
        );
        // One fill-and-drop in the middle: a saw, not a restart (too little after it).
        let mut v: Vec<f64> = (0..12).map(|i| (20 + 2 * i) as f64 * MIB).collect();
        v.extend((0..6).map(|i| (20 + 2 * i) as f64 * MIB));
        assert_eq!(
            verdict(&level(Resource::CgroupMemory, 64.0 * MIB, &v)),
            Verdict::Sawtooth
        );
    }

    #[test]
    fn a_leak_after_a_restart_is_fitted_from_the_restart() {
        let mut v: Vec<f64> = (0..5).map(|i| (40 + i) as f64 * MIB).collect();
        v.extend((0..15).map(|i| (5 + i) as f64 * MIB));
        let p = runs_out(verdict(&level(Resource::CgroupMemory, 64.0 * MIB, &v)));
        assert_eq!(p.points, 15);
        assert_eq!(p.eta_secs, 45.0);
    }

    #[test]
    fn noise_steady_and_shrinking_levels_are_not_predicted() {
        let noise: Vec<f64> = (0..30)
            .map(|i| 30.0 * MIB + [0.0, 3.0, -2.0, 1.0, -3.0, 2.0, 0.5][i % 7] * MIB)
            .collect();
        assert_eq!(
            verdict(&level(Resource::CgroupMemory, 64.0 * MIB, &noise)),
            Verdict::Noise
        );
        let steady = [500.0; 20];
        assert_eq!(
            verdict(&level(Resource::Fds, 1024.0, &steady)),
            Verdict::Steady
        );
        let shrinking: Vec<f64> = (0..20).map(|i| 500.0 - i as f64).collect();
        assert_eq!(
            verdict(&level(Resource::Fds, 1024.0, &shrinking)),
            Verdict::Steady
        );
    }

    #[test]
    fn growth_that_levels_off_is_not_predicted() {
        // A cache warming up: fast, then flat for the last third.
        let v: Vec<f64> = (0..30).map(|i| (10 + 2 * i.min(18)) as f64 * MIB).collect();
        assert_eq!(
            verdict(&level(Resource::CgroupMemory, 100.0 * MIB, &v)),
            Verdict::LevellingOff
        );
    }

    #[test]
    fn small_growth_and_far_etas_are_not_predicted() {
        // Three descriptors in a minute: a line, but not a trend worth a warning.
        let v: Vec<f64> = (0..7).map(|i| 100.0 + (i / 2) as f64).collect();
        assert_eq!(
            verdict(&level(Resource::Fds, 1024.0, &v)),
            Verdict::TooLittleGrowth
        );
        // 10 descriptors a second for a minute, 100,000 allowed: 2.8 h, 170× the span seen.
        let v: Vec<f64> = (0..60).map(|i| 100.0 + 10.0 * i as f64).collect();
        let p = runs_out(verdict(&level(Resource::Fds, 100_000.0, &v)));
        assert_eq!(p.confidence, Confidence::Low, "{p:?}");
        assert!(!p.warn && (p.eta_secs - 9931.0).abs() < 1.0, "{p:?}");
        let hour = PredictOptions {
            horizon: Duration::from_secs(3600),
            ..PredictOptions::default()
        };
        assert_eq!(
            judge(&level(Resource::Fds, 100_000.0, &v), &hour),
            Verdict::BeyondHorizon
        );
        // The same rate for 19 s: too little growth for that limit (0.5% of it).
        assert_eq!(
            verdict(&level(Resource::Fds, 100_000.0, &v[..20])),
            Verdict::TooLittleGrowth
        );
    }

    #[test]
    fn too_few_points_and_no_limit() {
        assert_eq!(
            verdict(&level(Resource::Fds, 1024.0, &[1.0, 2.0, 3.0, 4.0])),
            Verdict::TooFewPoints
        );
        assert_eq!(
            verdict(&level(Resource::Fds, 0.0, &[1.0; 10])),
            Verdict::NoLimit
        );
    }

    #[test]
    fn long_series_are_averaged_down_and_still_predicted() {
        // An hour of 1 s points, 1 KiB/s towards a limit 10 MiB away.
        let v: Vec<f64> = (0..3600).map(|i| 100.0 * MIB + i as f64 * 1024.0).collect();
        let limit = v[3599] + 10.0 * MIB;
        let p = runs_out(verdict(&level(Resource::CgroupMemory, limit, &v)));
        assert!(p.points <= MAX_POINTS, "{}", p.points);
        assert!((p.eta_secs / 10240.0 - 1.0).abs() < 0.01, "{}", p.eta_secs);
    }

    #[test]
    fn a_staircase_of_descriptors_is_a_leak() {
        // One descriptor every 3 s, sampled each second.
        let v: Vec<f64> = (0..30).map(|i| 200.0 + (i / 3) as f64).collect();
        let p = runs_out(verdict(&level(Resource::Fds, 256.0, &v)));
        assert!((p.per_sec - 1.0 / 3.0).abs() < 0.02, "{p:?}");
    }
}
