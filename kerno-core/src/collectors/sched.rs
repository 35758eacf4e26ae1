use std::collections::HashMap;

use kerno_probes::{SchedReader, common::SchedDelayVal};

use super::{
    Evictions, ends,
    layered::{Layered, LayeredBuilder},
    p99_series,
};
use crate::{
    Collector, CollectorError, DelayedProcess, Histogram, Sample, SchedSignals, Signals, procfs,
};

/// How many processes the scheduler signals list.
const TOP: usize = 5;

/// Run-queue delay (wakeup to running) from the scheduler probe, plus PSI cpu.
pub struct SchedCollector {
    reader: SchedReader,
    slow: LayeredBuilder<u32, SchedDelayVal>,
    evictions: Evictions,
}

impl SchedCollector {
    /// A collector over the scheduler probe's maps.
    pub fn new(reader: SchedReader) -> Self {
        SchedCollector {
            reader,
            slow: LayeredBuilder::new(|a, b| a.count == b.count && a.total_ns == b.total_ns),
            evictions: Evictions::default(),
        }
    }
}

struct SchedSample {
    hist: Histogram,
    slow: Layered<u32, SchedDelayVal>,
    /// Slow-thread rows evicted so far (at least).
    evicted: u64,
}

impl Collector for SchedCollector {
    fn name(&self) -> &str {
        "sched"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        let inserted = self.reader.slow_threads_inserted()?;
        let rows = self.reader.slow_threads()?;
        let evicted = self.evictions.update(inserted, rows.len());
        Ok(Sample::now(SchedSample {
            hist: Histogram::from_dense(&self.reader.histogram()?),
            slow: self.slow.next(rows.into_iter().collect()),
            evicted,
        }))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((first, last)) = ends::<SchedSample>(samples) else {
            return Ok(());
        };
        signals.lost.sched_evicted += last.evicted.saturating_sub(first.evicted);
        let hists: Vec<Histogram> = samples
            .iter()
            .filter_map(|s| s.get::<SchedSample>())
            .map(|s| s.hist.clone())
            .collect();
        // Threads -> processes: the probe sees thread ids. (count, total, max, comm) per
        // process; only the top ones are looked up in /proc.
        let mut by_pid: HashMap<u32, (u64, u64, u64, [u8; 16])> = HashMap::new();
        let me = signals.collector_pid;
        Layered::changes(&first.slow, &last.slow, |tid, before, v| {
            let (c0, t0) = before.map(|p| (p.count, p.total_ns)).unwrap_or((0, 0));
            let count = v.count.saturating_sub(c0);
            if count == 0 {
                return;
            }
            let pid = procfs::tgid_of(*tid).unwrap_or(*tid);
            if pid == me {
                return;
            }
            let e = by_pid.entry(pid).or_insert((0, 0, 0, v.comm));
            e.0 += count;
            e.1 += v.total_ns.saturating_sub(t0);
            e.2 = e.2.max(v.max_ns);
        });
        let mut top: Vec<_> = by_pid.into_iter().collect();
        top.sort_by(|a, b| b.1.1.cmp(&a.1.1).then(a.0.cmp(&b.0)));
        top.truncate(TOP);
        let top: Vec<DelayedProcess> = top
            .into_iter()
            .map(|(pid, (count, total_ns, max_ns, comm))| DelayedProcess {
                process: procfs::process(pid, &procfs::comm_str(&comm)),
                count,
                total_ns,
                max_ns,
            })
            .collect();
        signals.sched = Some(SchedSignals {
            runq_delay: last.hist.delta(&first.hist),
            top_delayed: top,
            psi_cpu_some_avg10: procfs::psi("cpu").0,
            p99_series: p99_series(samples, &hists),
        });
        Ok(())
    }

    fn compact(&self, samples: &[&Sample]) {
        let readings: Vec<&Layered<_, _>> = samples
            .iter()
            .filter_map(|s| s.get::<SchedSample>())
            .map(|s| &s.slow)
            .collect();
        Layered::compact(&readings);
    }
}
