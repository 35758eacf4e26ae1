use std::path::Path;

use super::{
    ends,
    layered::{FastMap, Layered, LayeredBuilder},
};
use crate::{
    CgroupMemory, Collector, CollectorError, MemorySignals, Process, Sample, Series, Signals,
    procfs,
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
    /// Inactive file-backed pages, bytes (`None`: memory.stat unreadable).
    inactive_file: Option<u64>,
    /// Times usage hit the limit (v1 memory.failcnt, v2 memory.events `max`).
    limit_hits: u64,
}

impl CgroupReading {
    fn working_set(&self) -> Option<u64> {
        self.inactive_file.map(|i| self.usage.saturating_sub(i))
    }
}

struct MemorySample {
    total: u64,
    available: u64,
    cgroups: Layered<String, CgroupReading>,
}

fn read_cgroups() -> FastMap<String, CgroupReading> {
    let mut out = FastMap::default();
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
                    // Hierarchical, like usage_in_bytes (the kubelet's v1 working set).
                    inactive_file: procfs::read_keyed(
                        &dir.join("memory.stat"),
                        "total_inactive_file",
                    ),
                    limit_hits: procfs::read_u64(&dir.join("memory.failcnt")).unwrap_or(0),
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
            let events = std::fs::read_to_string(dir.join("memory.events")).unwrap_or_default();
            let event = |k: &str| procfs::keyed_value(&events, k).unwrap_or(0);
            out.entry(rel(&root, dir)).or_insert(CgroupReading {
                version: 2,
                usage,
                limit,
                oom_kills: event("oom_kill"),
                inactive_file: procfs::read_keyed(&dir.join("memory.stat"), "inactive_file"),
                limit_hits: event("max"),
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
        let t0 = samples[0].unix_ms;
        let ms = |s: &Sample| s.unix_ms.saturating_sub(t0);
        let mut cgroups: Vec<CgroupMemory> = last_cgroups
            .iter()
            .map(|(path, r)| {
                let f = first_cgroups.get(path);
                let attribution = procfs::attribute_cgroup(path);
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
                    pod: attribution.pod(),
                    attribution,
                    working_set_start_bytes: f.and_then(|f| f.working_set()).or(r.working_set()),
                    working_set_bytes: r.working_set(),
                    limit_hits: r
                        .limit_hits
                        .saturating_sub(f.map(|f| f.limit_hits).unwrap_or(r.limit_hits)),
                    usage_series: Default::default(),
                    working_set_series: Default::default(),
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
        // Each listed cgroup's usage and working set at every sample, for its trend.
        let readings: Vec<&Layered<String, CgroupReading>> = samples
            .iter()
            .filter_map(|s| s.get::<MemorySample>())
            .map(|s| &s.cgroups)
            .collect();
        Layered::replay(&readings, |i, map| {
            let at = ms(samples[i]);
            for c in cgroups.iter_mut() {
                if let Some(r) = map.get(&c.path) {
                    c.usage_series.push(at, r.usage as f64);
                    if let Some(ws) = r.working_set() {
                        c.working_set_series.push(at, ws as f64);
                    }
                }
            }
        });
        let used_series = Series::from_points(samples.iter().filter_map(|s| {
            let m = s.get::<MemorySample>()?;
            Some((ms(s), m.total.saturating_sub(m.available) as f64))
        }));
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
            used_series,
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
