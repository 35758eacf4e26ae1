//! The built-in collectors: kernel maps (through kerno-probes) and procfs/cgroupfs.

mod conntrack;
mod disk;
mod fd_counts;
mod fds;
mod filesystem;
mod layered;
mod lost;
mod memory;
mod oom;
mod pids;
mod saturation;
mod sched;
mod syscalls;
mod tcp;

pub use conntrack::ConntrackCollector;
pub use disk::DiskCollector;
pub use fd_counts::FdCountCollector;
pub use fds::FdCollector;
pub use filesystem::FilesystemCollector;
pub use lost::LostCollector;
pub use memory::MemoryCollector;
pub use oom::OomCollector;
pub use pids::PidsCollector;
pub use saturation::{
    CpuStat, ListenCounters, PsiReading, SaturationCollector, parse_cpu_max, parse_cpu_stat,
    parse_netstat_listen, parse_psi, parse_waiting_listener, pressure_between,
};
pub use sched::SchedCollector;
pub use syscalls::SyscallCollector;
pub use tcp::TcpCollector;

use crate::{Histogram, Sample, Series};

/// Entries a grow-only LRU map has evicted, at least: the new keys the programs inserted
/// (read before the map) minus the entries the read found. Nothing else deletes from these
/// maps, so the difference is evictions; an insert between the two reads makes it smaller,
/// never larger. Kept as the largest seen, so it never goes down.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Evictions(u64);

impl Evictions {
    /// The estimate after a read that found `live` entries, `inserted` read just before.
    pub(crate) fn update(&mut self, inserted: u64, live: usize) -> u64 {
        self.0 = self.0.max(inserted.saturating_sub(live as u64));
        self.0
    }
}

/// The first and last samples' data, downcast.
pub(crate) fn ends<'a, T: 'static>(samples: &[&'a Sample]) -> Option<(&'a T, &'a T)> {
    let first = samples.first()?.get::<T>()?;
    let last = samples.last()?.get::<T>()?;
    Some((first, last))
}

/// Milliseconds since the first sample, for each sample.
fn offsets(samples: &[&Sample]) -> Vec<u64> {
    let t0 = samples.first().map(|s| s.unix_ms).unwrap_or(0);
    samples
        .iter()
        .map(|s| s.unix_ms.saturating_sub(t0))
        .collect()
}

/// A per-second rate from cumulative readings (one per sample, oldest first): at each
/// sample after the first, the increase since the previous one over the seconds between
/// them. A counter that went backwards (a map recreated) counts as no increase; two samples
/// at the same millisecond give no point.
pub(crate) fn rate_series(samples: &[&Sample], readings: &[u64]) -> Series {
    let at = offsets(samples);
    let mut out = Series::default();
    for i in 1..readings.len().min(at.len()) {
        let dt = at[i].saturating_sub(at[i - 1]);
        if dt == 0 {
            continue;
        }
        let n = readings[i].saturating_sub(readings[i - 1]);
        out.push(at[i], n as f64 * 1000.0 / dt as f64);
    }
    out
}

/// The p99 (ns) of each sample interval, from cumulative histograms (one per sample, oldest
/// first): the difference between consecutive readings. Intervals with no samples have no
/// point.
pub(crate) fn p99_series(samples: &[&Sample], readings: &[Histogram]) -> Series {
    let at = offsets(samples);
    let mut out = Series::default();
    for i in 1..readings.len().min(at.len()) {
        if let Some(p) = readings[i].delta(&readings[i - 1]).percentile(99.0) {
            out.push(at[i], p as f64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: &[u64]) -> Vec<Sample> {
        ms.iter()
            .map(|m| {
                let mut s = Sample::now(());
                s.unix_ms = 1_000_000 + m;
                s
            })
            .collect()
    }

    #[test]
    fn evictions_are_inserts_not_found_and_never_go_down() {
        let mut e = Evictions::default();
        assert_eq!(e.update(10, 10), 0, "every insert still there");
        assert_eq!(e.update(20, 16), 4);
        // Inserts between the two reads found in the map: a smaller difference does not
        // take back evictions already seen.
        assert_eq!(e.update(21, 18), 4);
        assert_eq!(e.update(30, 16), 14);
        assert_eq!(
            e.update(0, 5),
            14,
            "a reading below the map's size is no eviction"
        );
    }

    #[test]
    fn rates_are_per_second_of_each_interval() {
        let s = at(&[0, 1000, 2000, 2500, 2500]);
        let refs: Vec<&Sample> = s.iter().collect();
        let r = rate_series(&refs, &[10, 20, 20, 30, 40]);
        assert_eq!(r, Series(vec![(1000, 10.0), (2000, 0.0), (2500, 20.0)]));
        // A counter that went backwards is no increase, not a huge one.
        assert_eq!(
            rate_series(&refs[..2], &[20, 10]),
            Series(vec![(1000, 0.0)])
        );
        assert!(rate_series(&refs[..1], &[5]).is_empty());
    }

    #[test]
    fn p99_is_of_each_interval_alone() {
        let s = at(&[0, 1000, 2000, 3000]);
        let refs: Vec<&Sample> = s.iter().collect();
        let mut h = Histogram::new();
        let mut readings = vec![h.clone()];
        h.record_n(1_000, 100);
        readings.push(h.clone());
        readings.push(h.clone()); // nothing in this interval: no point
        h.record_n(100_000_000, 100);
        readings.push(h.clone());
        let p = p99_series(&refs, &readings);
        assert_eq!(
            p.0.iter().map(|x| x.0).collect::<Vec<_>>(),
            vec![1000, 3000]
        );
        assert!(p.0[0].1 < 2_000.0 && p.0[1].1 > 60_000_000.0, "{p:?}");
    }
}
