use std::sync::Arc;

use kerno_probes::{SyscallReader, common::FdVal};

use super::{
    Evictions,
    layered::{FastMap, Layered, LayeredBuilder},
};
use crate::{Collector, CollectorError, FdProcess, FdSignals, Sample, Series, Signals, procfs};

/// How many processes the descriptor signals list.
const TOP: usize = 20;

/// Descriptor opens and closes per process (from the syscall probe), with the current
/// count and limit from /proc.
pub struct FdCollector {
    reader: Arc<SyscallReader>,
    fds: LayeredBuilder<u32, FdVal>,
    evictions: Evictions,
}

impl FdCollector {
    /// A collector over the syscall probe's descriptor map.
    pub fn new(reader: Arc<SyscallReader>) -> Self {
        FdCollector {
            reader,
            fds: LayeredBuilder::new(|a, b| a.opens == b.opens && a.closes == b.closes),
            evictions: Evictions::default(),
        }
    }
}

/// The map's rows, and how many rows it has evicted so far (at least).
struct FdSample(Layered<u32, FdVal>, u64);

impl Collector for FdCollector {
    fn name(&self) -> &str {
        "fds"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        let inserted = self.reader.fd_activity_inserted()?;
        let fresh: FastMap<u32, FdVal> = self.reader.fd_activity()?.into_iter().collect();
        let evicted = self.evictions.update(inserted, fresh.len());
        Ok(Sample::now(FdSample(self.fds.next(fresh), evicted)))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let series: Vec<&FdSample> = samples.iter().filter_map(|s| s.get()).collect();
        let (Some(first), Some(last)) = (series.first(), series.last()) else {
            return Ok(());
        };
        signals.lost.fds_evicted += last.1.saturating_sub(first.1);
        let (first_map, last_map) = (first.0.materialize(), last.0.materialize());
        let mut procs: Vec<(u32, u64, u64)> = last_map
            .iter()
            .filter(|(pid, _)| **pid != signals.collector_pid)
            .map(|(pid, v)| {
                let (o, c) = first_map
                    .get(pid)
                    .map(|f| (f.opens, f.closes))
                    .unwrap_or((0, 0));
                (*pid, v.opens.saturating_sub(o), v.closes.saturating_sub(c))
            })
            .filter(|(_, o, c)| o > c)
            .collect();
        procs.sort_by(|a, b| {
            (b.1 as i64 - b.2 as i64)
                .cmp(&(a.1 as i64 - a.2 as i64))
                .then(a.0.cmp(&b.0))
        });
        procs.truncate(TOP);
        // Each top process's (opens, closes) at every sample, oldest first.
        let mut readings: Vec<Vec<(u64, u64)>> =
            vec![Vec::with_capacity(series.len()); procs.len()];
        let layered: Vec<&Layered<u32, FdVal>> = series.iter().map(|s| &s.0).collect();
        Layered::replay(&layered, |_, map| {
            for ((pid, _, _), r) in procs.iter().zip(readings.iter_mut()) {
                r.push(map.get(pid).map(|v| (v.opens, v.closes)).unwrap_or((0, 0)));
            }
        });
        let mut out = FdSignals::default();
        let t0 = samples[0].unix_ms;
        for ((pid, opens, closes), at) in procs.into_iter().zip(readings) {
            let (o0, c0) = at.first().copied().unwrap_or((0, 0));
            let net_series = Series::from_points(at.iter().zip(samples).map(|((o, c), s)| {
                (
                    s.unix_ms.saturating_sub(t0),
                    o.saturating_sub(o0) as f64 - c.saturating_sub(c0) as f64,
                )
            }));
            let net_per_interval = at
                .windows(2)
                .map(|w| {
                    let ((o0, c0), (o1, c1)) = (w[0], w[1]);
                    (o1.saturating_sub(o0)) as i64 - (c1.saturating_sub(c0)) as i64
                })
                .collect();
            let comm = last_map
                .get(&pid)
                .map(|v| procfs::comm_str(&v.comm))
                .unwrap_or_default();
            out.processes.push(FdProcess {
                process: procfs::process(pid, &comm),
                opens,
                closes,
                open_fds: procfs::fd_count(pid),
                soft_limit: procfs::nofile_soft_limit(pid),
                net_per_interval,
                net_series,
            });
        }
        signals.fds = Some(out);
        Ok(())
    }

    fn compact(&self, samples: &[&Sample]) {
        let readings: Vec<&Layered<_, _>> = samples
            .iter()
            .filter_map(|s| s.get::<FdSample>())
            .map(|s| &s.0)
            .collect();
        Layered::compact(&readings);
    }
}
