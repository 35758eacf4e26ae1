//! The `Collector` trait: how signals get into a window.

use std::{any::Any, time::Instant};

use crate::{CollectorError, Signals};

/// A cumulative reading taken by a collector at one moment.
///
/// Readings only grow (counters, histograms) or are gauges at that moment (open
/// descriptors, memory usage). A window is computed from the readings at its two ends and
/// any taken in between, so one collector can serve a one-off `doctor` run and a daemon's
/// sliding window alike.
pub struct Sample {
    /// When it was taken.
    pub at: Instant,
    /// Unix time in milliseconds when it was taken.
    pub unix_ms: u64,
    /// The collector's own data; only that collector reads it.
    pub data: Box<dyn Any + Send + Sync>,
}

impl Sample {
    /// A sample taken now.
    pub fn now<T: Any + Send + Sync>(data: T) -> Sample {
        Sample {
            at: Instant::now(),
            unix_ms: crate::unix_ms_now(),
            data: Box::new(data),
        }
    }

    /// The collector's data, if it is of type `T`.
    pub fn get<T: Any>(&self) -> Option<&T> {
        self.data.downcast_ref()
    }
}

/// Something that reads a source of signals (kernel maps, procfs, cgroupfs, an
/// application) and fills its part of [`Signals`] for a window.
///
/// The engine calls [`Collector::sample`] at the start of a window, about once a second
/// during it, and at the end; then [`Collector::fill`] with those samples, oldest first.
///
/// ```
/// use kerno_core::{Collector, CollectorError, Sample, Signals};
///
/// /// Counts context switches from /proc/stat into `Signals::custom`.
/// struct ContextSwitches;
///
/// fn ctxt() -> u64 {
///     std::fs::read_to_string("/proc/stat").ok()
///         .and_then(|s| s.lines().find_map(|l| l.strip_prefix("ctxt ")?.trim().parse().ok()))
///         .unwrap_or(0)
/// }
///
/// impl Collector for ContextSwitches {
///     fn name(&self) -> &str { "context_switches" }
///     fn sample(&mut self) -> Result<Sample, CollectorError> { Ok(Sample::now(ctxt())) }
///     fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
///         let (Some(first), Some(last)) = (samples.first(), samples.last()) else { return Ok(()) };
///         let n = last.get::<u64>().unwrap() - first.get::<u64>().unwrap();
///         signals.custom.insert(self.name().into(), n.into());
///         Ok(())
///     }
/// }
/// ```
pub trait Collector: Send {
    /// A short stable name (`syscalls`, `memory`, ...).
    fn name(&self) -> &str;
    /// Take a cumulative reading now.
    fn sample(&mut self) -> Result<Sample, CollectorError>;
    /// Fill this collector's part of `signals` from `samples` (oldest first, at least two).
    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError>;

    /// A daemon keeping many samples calls this now and then with all it keeps, oldest
    /// first: drop from them what no window ending at the newest can need (say, entries of
    /// processes that exited and are gone from the newest reading). Afterwards only windows
    /// ending at the newest of these samples (or a later one) stay exact. The default keeps
    /// everything.
    fn compact(&self, samples: &[&Sample]) {
        let _ = samples;
    }
}
