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
        // The processes whose counts moved in the window, with their counts at its start.
        let me = signals.collector_pid;
        // (pid, opens, closes in the window, counts at its start, comm).
        type Moved = (u32, u64, u64, Option<FdVal>, [u8; 16]);
        let mut procs: Vec<Moved> = Vec::new();
        Layered::changes(&first.0, &last.0, |pid, before, after| {
            let (o, c) = before.map(|f| (f.opens, f.closes)).unwrap_or((0, 0));
            let (opens, closes) = (
                after.opens.saturating_sub(o),
                after.closes.saturating_sub(c),
            );
            if *pid != me && opens > closes {
                procs.push((*pid, opens, closes, before.copied(), after.comm));
            }
        });
        procs.sort_by(|a, b| {
            (b.1 as i64 - b.2 as i64)
                .cmp(&(a.1 as i64 - a.2 as i64))
                .then(a.0.cmp(&b.0))
        });
        procs.truncate(TOP);
        // Each top process's (opens, closes) at every sample, oldest first.
        let layered: Vec<&Layered<u32, FdVal>> = series.iter().map(|s| &s.0).collect();
        let keys: Vec<(u32, Option<FdVal>)> = procs.iter().map(|p| (p.0, p.3)).collect();
        let readings: Vec<Vec<(u64, u64)>> = Layered::track(&layered, &keys)
            .into_iter()
            .map(|at| {
                at.into_iter()
                    .map(|v| v.map(|v| (v.opens, v.closes)).unwrap_or((0, 0)))
                    .collect()
            })
            .collect();
        let mut out = FdSignals::default();
        let t0 = samples[0].unix_ms;
        for ((pid, opens, closes, _, comm), at) in procs.into_iter().zip(readings) {
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
            let comm = procfs::comm_str(&comm);
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
