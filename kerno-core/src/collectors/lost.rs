use kerno_probes::{Domain, LostCounters, LostReading, common::lost};

use super::ends;
use crate::{Collector, CollectorError, Sample, Signals};

/// Samples the probes could not record, so none is lost silently: the programs' lost
/// counters and the runs the kernel skipped (`recursion_misses`). Evictions from the LRU
/// maps are told by the collectors that read those maps.
pub struct LostCollector {
    reader: LostCounters,
}

impl LostCollector {
    /// A collector over the probes' lost-sample counters.
    pub fn new(reader: LostCounters) -> Self {
        LostCollector { reader }
    }
}

impl Collector for LostCollector {
    fn name(&self) -> &str {
        "lost"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        Ok(Sample::now(self.reader.all()?))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((a, b)) = ends::<LostReading>(samples) else {
            return Ok(());
        };
        let d = |i: u32| b.get(i).saturating_sub(a.get(i));
        let r = |dom: Domain| b.recursion(dom).saturating_sub(a.recursion(dom));
        let l = &mut signals.lost;
        l.syscall_samples += d(lost::SYSCALL_SLOT);
        l.sched_samples += d(lost::SCHED_SLOT);
        l.map_full += d(lost::MAP_FULL);
        l.block_unmatched += d(lost::BLK_UNMATCHED);
        l.fds_map_full += d(lost::FD_MAP_FULL);
        l.sched_map_full += d(lost::SCHED_MAP_FULL);
        l.disk_map_full += d(lost::DISK_MAP_FULL);
        l.tcp_map_full += d(lost::TCP_MAP_FULL);
        l.tcp_unmatched_connect += d(lost::TCP_UNMATCHED_CONNECT);
        l.sched_read_failed += d(lost::SCHED_READ);
        l.disk_read_failed += d(lost::DISK_READ);
        l.tcp_read_failed += d(lost::TCP_READ);
        l.oom_read_failed += d(lost::OOM_READ);
        l.syscalls_recursion += r(Domain::Syscalls);
        l.sched_recursion += r(Domain::Sched);
        l.disk_recursion += r(Domain::Disk);
        l.tcp_recursion += r(Domain::Tcp);
        l.oom_recursion += r(Domain::Oom);
        Ok(())
    }
}
