use std::path::Path;

use super::{
    ends,
    layered::{FastMap, Layered, LayeredBuilder},
};
use crate::{
    CgroupPids, Collector, CollectorError, PidSignals, Process, Sample, Series, Signals, procfs,
};

/// At most this many cgroups are listed (the fullest).
const TOP: usize = 50;

/// Host tasks against `kernel.pid_max` and `kernel.threads-max` (`/proc/loadavg`), and
/// every pids cgroup with a limit (v1 `pids` controller and v2), with its refused forks
/// (`pids.events`). Needs no eBPF.
pub struct PidsCollector {
    cgroups: LayeredBuilder<String, CgroupReading>,
}

impl Default for PidsCollector {
    fn default() -> Self {
        PidsCollector::new()
    }
}

impl PidsCollector {
    /// A new pids collector.
    pub fn new() -> Self {
        PidsCollector {
            cgroups: LayeredBuilder::new(|a, b| a == b),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
struct CgroupReading {
    version: u8,
    current: u64,
    limit: u64,
    /// `pids.events` `max`: forks refused at the limit, since the cgroup was made.
    max_events: u64,
}

struct PidsSample {
    pid_max: u64,
    threads_max: u64,
    threads: u64,
    cgroups: Layered<String, CgroupReading>,
}

fn read_dir_into(root: &Path, version: u8, out: &mut FastMap<String, CgroupReading>) {
    procfs::walk_dirs(root, 10, &mut |dir| {
        // `max` (no limit) reads as None; the root cgroup has no pids.max at all.
        let Some(limit) = procfs::read_u64(&dir.join("pids.max")) else {
            return;
        };
        let current = procfs::read_u64(&dir.join("pids.current")).unwrap_or(0);
        let max_events = procfs::read_keyed(&dir.join("pids.events"), "max").unwrap_or(0);
        let rel = format!("/{}", dir.strip_prefix(root).unwrap_or(dir).display());
        out.entry(rel).or_insert(CgroupReading {
            version,
            current,
            limit,
            max_events,
        });
    });
}

fn read_cgroups() -> FastMap<String, CgroupReading> {
    let mut out = FastMap::default();
    if let Some(root) = procfs::cgroup1_root("pids", "cgroup.procs") {
        read_dir_into(&root, 1, &mut out);
    }
    if let Some(root) = procfs::cgroup2_root() {
        read_dir_into(&root, 2, &mut out);
    }
    out
}

fn cgroup_processes(c: &CgroupPids) -> Vec<Process> {
    let root = if c.version == 1 {
        procfs::cgroup1_root("pids", "cgroup.procs")
    } else {
        procfs::cgroup2_root()
    };
    let Some(root) = root else { return Vec::new() };
    std::fs::read_to_string(
        root.join(c.path.trim_start_matches('/'))
            .join("cgroup.procs"),
    )
    .unwrap_or_default()
    .lines()
    .filter_map(|l| l.trim().parse::<u32>().ok())
    .take(3)
    .map(|pid| procfs::process(pid, ""))
    .collect()
}

impl Collector for PidsCollector {
    fn name(&self) -> &str {
        "pids"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        let threads = procfs::threads_total().ok_or_else(|| CollectorError::Source {
            source_name: "/proc/loadavg".into(),
            reason: "unreadable or without a task count".into(),
        })?;
        Ok(Sample::now(PidsSample {
            pid_max: procfs::sysctl_u64("kernel/pid_max").unwrap_or(0),
            threads_max: procfs::sysctl_u64("kernel/threads-max").unwrap_or(0),
            threads,
            cgroups: self.cgroups.next(read_cgroups()),
        }))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((first, last)) = ends::<PidsSample>(samples) else {
            return Ok(());
        };
        let (first_cg, last_cg) = (first.cgroups.materialize(), last.cgroups.materialize());
        let t0 = samples[0].unix_ms;
        let mut cgroups: Vec<CgroupPids> = last_cg
            .iter()
            .map(|(path, r)| {
                let f = first_cg.get(path).unwrap_or(r);
                CgroupPids {
                    path: path.clone(),
                    version: r.version,
                    current_start: f.current,
                    current: r.current,
                    limit: r.limit,
                    fork_failures: r.max_events.saturating_sub(f.max_events),
                    processes: Vec::new(),
                    attribution: procfs::attribute_cgroup(path),
                    current_series: Series::default(),
                }
            })
            .collect();
        cgroups.sort_by(|a, b| {
            b.fill_pct()
                .total_cmp(&a.fill_pct())
                .then(b.fork_failures.cmp(&a.fork_failures))
                .then(a.path.cmp(&b.path))
        });
        cgroups.truncate(TOP);
        let readings: Vec<&Layered<String, CgroupReading>> = samples
            .iter()
            .filter_map(|s| s.get::<PidsSample>())
            .map(|s| &s.cgroups)
            .collect();
        Layered::replay(&readings, |i, map| {
            let at = samples[i].unix_ms.saturating_sub(t0);
            for c in cgroups.iter_mut() {
                if let Some(r) = map.get(&c.path) {
                    c.current_series.push(at, r.current as f64);
                }
            }
        });
        for c in cgroups
            .iter_mut()
            .filter(|c| c.fill_pct() >= 50.0 || c.fork_failures > 0)
        {
            c.processes = cgroup_processes(c);
        }
        let threads_series = Series::from_points(samples.iter().filter_map(|s| {
            let p = s.get::<PidsSample>()?;
            Some((s.unix_ms.saturating_sub(t0), p.threads as f64))
        }));
        signals.pids = Some(PidSignals {
            pid_max: last.pid_max,
            threads_max: last.threads_max,
            threads_start: first.threads,
            threads: last.threads,
            threads_series,
            cgroups,
        });
        Ok(())
    }

    fn compact(&self, samples: &[&Sample]) {
        let readings: Vec<&Layered<_, _>> = samples
            .iter()
            .filter_map(|s| s.get::<PidsSample>())
            .map(|s| &s.cgroups)
            .collect();
        Layered::compact(&readings);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let mut c = PidsCollector::new();
        let a = c.sample().unwrap();
        let b = c.sample().unwrap();
        let mut s = Signals::default();
        c.fill(&[&a, &b], &mut s).unwrap();
        let p = s.pids.unwrap();
        assert!(
            p.pid_max >= 301 && p.threads_max > 0 && p.threads > 0,
            "{p:?}"
        );
        assert_eq!(p.threads_series.len(), 2);
        assert!(p.host_limit() <= p.pid_max);
        for c in &p.cgroups {
            assert!(c.limit > 0 || c.current == 0, "{c:?}");
        }
    }
}
