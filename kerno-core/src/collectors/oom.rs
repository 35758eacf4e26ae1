use kerno_probes::OomReader;

use super::ends;
use crate::{Collector, CollectorError, OomKill, OomSignals, Sample, Signals, procfs};

/// OOM kills from the `oom:mark_victim` probe, checked against /proc/vmstat.
pub struct OomCollector {
    reader: OomReader,
    /// Wall clock minus `bpf_ktime_get_ns` (CLOCK_MONOTONIC), to date kills.
    mono_to_unix_ns: i128,
}

impl OomCollector {
    /// A collector over the OOM probe's maps.
    pub fn new(reader: OomReader) -> Self {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid pointer to a stack value.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        let mono = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
        let unix = crate::unix_ms_now() as i128 * 1_000_000;
        OomCollector {
            reader,
            mono_to_unix_ns: unix - mono,
        }
    }
}

struct OomSample {
    seq: u64,
    vmstat: u64,
}

impl Collector for OomCollector {
    fn name(&self) -> &str {
        "oom"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        Ok(Sample::now(OomSample {
            seq: self.reader.total()?,
            vmstat: procfs::vmstat("oom_kill").unwrap_or(0),
        }))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((first, last)) = ends::<OomSample>(samples) else {
            return Ok(());
        };
        let (entries, lost) = self.reader.since(first.seq)?;
        let ids = if entries.is_empty() {
            Default::default()
        } else {
            procfs::cgroup2_ids()
        };
        let kills = entries
            .into_iter()
            .filter(|e| e.seq <= last.seq)
            .map(|e| {
                let mut process = procfs::process(e.pid, &procfs::comm_str(&e.comm));
                if process.cgroup.is_none() {
                    // The victim is gone: name the cgroup of the task that hit the limit.
                    process.cgroup = ids.get(&e.cgroup_id).cloned();
                    procfs::attribute_from_cgroup(&mut process);
                }
                OomKill {
                    process,
                    at_unix_ms: ((e.ts_ns as i128 + self.mono_to_unix_ns) / 1_000_000) as u64,
                    anon_rss_bytes: e.anon_rss_kb * 1024,
                    file_rss_bytes: e.file_rss_kb * 1024,
                    shmem_rss_bytes: e.shmem_rss_kb * 1024,
                    total_vm_bytes: e.total_vm_kb * 1024,
                    cgroup_limit_bytes: None,
                }
            })
            .collect();
        signals.lost.oom_kills += lost;
        signals.oom = Some(OomSignals {
            kills,
            vmstat_oom_kills: last.vmstat.saturating_sub(first.vmstat),
        });
        Ok(())
    }
}
