use std::{collections::HashMap, path::Path};

use super::{
    ends,
    layered::{Layered, LayeredBuilder},
};
use crate::{
    CgroupMemory, Collector, CollectorError, MemorySignals, Process, Sample, Signals, procfs,
};

/// At most this many cgroups are listed (the fullest).
const TOP: usize = 50;
/// cgroup v1 reports "no limit" as a huge page-aligned number.
const V1_UNLIMITED: u64 = 1 << 62;

/// Host memory (/proc/meminfo), PSI memory, and every memory cgroup with a limit (cgroup v1
/// and v2). Needs no eBPF.
pub struct MemoryCollector {
    cgroups: LayeredBuilder<String, CgroupReading>,
}

impl Default for MemoryCollector {
    fn default() -> Self {
        MemoryCollector::new()
    }
}

impl MemoryCollector {
    /// A new memory collector.
    pub fn new() -> Self {
        MemoryCollector {
            cgroups: LayeredBuilder::new(|a, b| a == b),
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
struct CgroupReading {
    version: u8,
    usage: u64,
    limit: u64,
    oom_kills: u64,
}

struct MemorySample {
    total: u64,
    available: u64,
    cgroups: Layered<String, CgroupReading>,
}

fn read_cgroups() -> HashMap<String, CgroupReading> {
    let mut out = HashMap::new();
    if let Some(root) = procfs::cgroup1_memory_root() {
        procfs::walk_dirs(&root, 10, &mut |dir| {
            let Some(limit) = procfs::read_u64(&dir.join("memory.limit_in_bytes")) else {
                return;
            };
            if limit >= V1_UNLIMITED {
                return;
            }
            let usage = procfs::read_u64(&dir.join("memory.usage_in_bytes")).unwrap_or(0);
            let oom_kills =
                procfs::read_keyed(&dir.join("memory.oom_control"), "oom_kill").unwrap_or(0);
            out.insert(
                rel(&root, dir),
                CgroupReading {
                    version: 1,
                    usage,
                    limit,
                    oom_kills,
                },
            );
        });
    }
    if let Some(root) = procfs::cgroup2_root() {
        procfs::walk_dirs(&root, 10, &mut |dir| {
            let Some(limit) = procfs::read_u64(&dir.join("memory.max")) else {
                return;
            };
            let usage = procfs::read_u64(&dir.join("memory.current")).unwrap_or(0);
            let oom_kills = procfs::read_keyed(&dir.join("memory.events"), "oom_kill").unwrap_or(0);
            out.entry(rel(&root, dir)).or_insert(CgroupReading {
                version: 2,
                usage,
                limit,
                oom_kills,
            });
        });
    }
    out
}

fn rel(root: &Path, dir: &Path) -> String {
    format!("/{}", dir.strip_prefix(root).unwrap_or(dir).display())
}

fn cgroup_processes(c: &CgroupMemory) -> Vec<Process> {
    let root = if c.version == 1 {
        procfs::cgroup1_memory_root()
    } else {
        procfs::cgroup2_root()
    };
    let Some(root) = root else { return Vec::new() };
    let procs = std::fs::read_to_string(
        root.join(c.path.trim_start_matches('/'))
            .join("cgroup.procs"),
    )
    .unwrap_or_default();
    procs
        .lines()
        .filter_map(|l| l.trim().parse::<u32>().ok())
        .take(3)
        .map(|pid| procfs::process(pid, ""))
        .collect()
}

impl Collector for MemoryCollector {
    fn name(&self) -> &str {
        "memory"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        let (total, available) = procfs::meminfo().ok_or_else(|| CollectorError::Source {
            source_name: "/proc/meminfo".into(),
            reason: "unreadable or missing MemTotal/MemAvailable".into(),
        })?;
        Ok(Sample::now(MemorySample {
            total,
            available,
            cgroups: self.cgroups.next(read_cgroups()),
        }))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((first, last)) = ends::<MemorySample>(samples) else {
            return Ok(());
        };
        let (first_cgroups, last_cgroups) =
            (first.cgroups.materialize(), last.cgroups.materialize());
        let mut cgroups: Vec<CgroupMemory> = last_cgroups
            .iter()
            .map(|(path, r)| {
                let f = first_cgroups.get(path);
                let (pod, _) = procfs::pod_from_cgroup(path);
                CgroupMemory {
                    path: path.clone(),
                    version: r.version,
                    usage_start_bytes: f.map(|f| f.usage).unwrap_or(r.usage),
                    usage_bytes: r.usage,
                    limit_bytes: r.limit,
                    oom_kills: r
                        .oom_kills
                        .saturating_sub(f.map(|f| f.oom_kills).unwrap_or(r.oom_kills)),
                    processes: Vec::new(),
                    pod: pod.map(|u| procfs::pod_name(&u).unwrap_or(format!("pod{u}"))),
                }
            })
            .collect();
        let fill_ratio = |c: &CgroupMemory| c.usage_bytes as f64 / c.limit_bytes.max(1) as f64;
        cgroups.sort_by(|a, b| {
            fill_ratio(b)
                .total_cmp(&fill_ratio(a))
                .then(a.path.cmp(&b.path))
        });
        cgroups.truncate(TOP);
        for c in cgroups
            .iter_mut()
            .filter(|c| fill_ratio(c) >= 0.5 || c.oom_kills > 0)
        {
            c.processes = cgroup_processes(c);
        }
        let (some, full) = procfs::psi("memory");
        signals.memory = Some(MemorySignals {
            total_bytes: last.total,
            available_start_bytes: first.available,
            available_end_bytes: last.available,
            psi_some_avg10: some,
            psi_full_avg10: full,
            cgroups,
        });
        Ok(())
    }

    fn compact(&self, samples: &[&Sample]) {
        let readings: Vec<&Layered<_, _>> = samples
            .iter()
            .filter_map(|s| s.get::<MemorySample>())
            .map(|s| &s.cgroups)
            .collect();
        Layered::compact(&readings);
    }
}
