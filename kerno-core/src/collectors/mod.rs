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
