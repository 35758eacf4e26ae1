//! The sliding window: one tick a second, each holding every collector's cumulative
//! sample. A window of any length up to the history is the difference of two ticks, so the
//! agent never resets a kernel map and any number of readers can ask at once.

use std::{
    collections::VecDeque,
    sync::Arc,
    time::{Duration, Instant},
};

use kerno_core::Sample;

/// Every collector's sample at one moment (`None` where the collector failed).
pub(crate) struct Tick {
    pub at: Instant,
    pub unix_ms: u64,
    pub samples: Vec<Option<Arc<Sample>>>,
}

/// The samples of one window, per collector, oldest first.
pub(crate) struct WindowSamples {
    pub series: Vec<Vec<Arc<Sample>>>,
    pub start_unix_ms: u64,
    pub duration: Duration,
}

/// The last `keep` of ticks (plus the one just before, so a window of exactly `keep` has
/// both ends).
pub(crate) struct History {
    ticks: VecDeque<Tick>,
    keep: Duration,
}

impl History {
    pub fn new(keep: Duration) -> Self {
        History {
            ticks: VecDeque::new(),
            keep,
        }
    }

    pub fn push(&mut self, tick: Tick) {
        let newest = tick.at;
        self.ticks.push_back(tick);
        while self.ticks.len() > 2 && newest.duration_since(self.ticks[1].at) >= self.keep {
            self.ticks.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.ticks.len()
    }

    /// The time between the oldest and the newest tick.
    pub fn span(&self) -> Duration {
        match (self.ticks.front(), self.ticks.back()) {
            (Some(a), Some(b)) => b.at.duration_since(a.at),
            _ => Duration::ZERO,
        }
    }

    /// The window ending at the newest tick and starting at the newest tick at least
    /// `length` before it (or the oldest, when the history is shorter). `None` until there
    /// are two ticks.
    pub fn window(&self, length: Duration) -> Option<WindowSamples> {
        if self.ticks.len() < 2 {
            return None;
        }
        let end = self.ticks.back()?;
        let start = self
            .ticks
            .iter()
            .rposition(|t| end.at.duration_since(t.at) >= length)
            .unwrap_or(0);
        let ticks: Vec<&Tick> = self.ticks.range(start..).collect();
        let n = end.samples.len();
        let series = (0..n)
            .map(|i| {
                ticks
                    .iter()
                    .filter_map(|t| t.samples.get(i).cloned().flatten())
                    .collect()
            })
            .collect();
        Some(WindowSamples {
            series,
            start_unix_ms: ticks[0].unix_ms,
            duration: end.at.duration_since(ticks[0].at),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(at: Instant, n: u64) -> Tick {
        Tick {
            at,
            unix_ms: n * 1000,
            samples: vec![Some(Arc::new(Sample::now(n))), None],
        }
    }

    #[test]
    fn keeps_the_window_and_picks_both_ends() {
        let t0 = Instant::now();
        let mut h = History::new(Duration::from_secs(10));
        assert!(h.window(Duration::from_secs(1)).is_none());
        for n in 0..30u64 {
            h.push(tick(t0 + Duration::from_secs(n), n));
        }
        // 10 s of history, plus the tick that starts it.
        assert_eq!(h.len(), 11);
        assert_eq!(h.span(), Duration::from_secs(10));
        let w = h.window(Duration::from_secs(3)).unwrap();
        assert_eq!(w.duration, Duration::from_secs(3));
        assert_eq!(w.start_unix_ms, 26_000);
        let got: Vec<u64> = w.series[0]
            .iter()
            .map(|s| *s.get::<u64>().unwrap())
            .collect();
        assert_eq!(got, vec![26, 27, 28, 29]);
        assert!(w.series[1].is_empty(), "a failing collector has no samples");
        // Asking for more than there is gives all there is.
        let w = h.window(Duration::from_secs(60)).unwrap();
        assert_eq!(w.duration, Duration::from_secs(10));
        assert_eq!(w.series[0].len(), 11);
    }
}
