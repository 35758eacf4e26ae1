//! `memory-pressure`: memory sits close to its limit, so allocations reclaim first.

use kerno_core::{
    Finding, Rule, Severity, Signals, ThresholdSpec, Thresholds, human_bytes, human_secs,
    thousands,
};

use crate::common::{
    MemTarget, cgroup_dir, cgroup_processes_line, finding, fmt_byte_rate, fmt_pct, memory_targets,
    of_limit, psi_memory_line,
};

/// A memory cgroup whose working set (usage minus the inactive page cache the kernel can
/// drop) is above `memory_pressure_pct` of its limit warns, growing or not; so does the host
/// when total − available is above that share of its memory. A cgroup full of page cache is
/// not under pressure: the kernel drops the cache at the limit. It speaks of reclaim and
/// stalls, and leaves the countdown to the limit to `oom-imminent`.
pub struct MemoryPressure;

/// The rule's id.
pub const ID: &str = "memory-pressure";

/// `memory_pressure_pct`: a working set above this share of its limit warns (%).
pub const MEMORY_PRESSURE_PCT: ThresholdSpec = ThresholdSpec::number(
    "memory_pressure_pct",
    90.0,
    "%",
    0.0,
    100.0,
    "a cgroup's working set (usage minus reclaimable page cache) above this share of its limit warns",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[MEMORY_PRESSURE_PCT];

fn pressure(m: &MemTarget<'_>, s: &Signals, t: &Thresholds) -> Finding {
    let name = m.name(s);
    let mut f = finding(ID, Severity::Warning, m.subject(s));
    let psi_some = s.memory.as_ref().and_then(|x| x.psi_some_avg10);
    f.title = match m.cg {
        Some(_) => format!(
            "{name} is under memory pressure: {} {}, {} of its {} limit; allocations reclaim first",
            if m.what() == "usage" { "usage" } else { "a working set of" },
            human_bytes(m.usage),
            fmt_pct(m.fill_pct()),
            human_bytes(m.limit)
        ),
        None => format!(
            "{name} is under memory pressure: {} used, {} available",
            of_limit(m.usage, m.limit),
            human_bytes(m.limit.saturating_sub(m.usage))
        ),
    };
    f.cause = match m.cg {
        Some(_) => "The cgroup's working set (the memory it uses minus the page cache the kernel can drop) is close to its limit, so each new allocation in it first has to reclaim memory: what little cache is left is dropped and written back, anonymous memory is swapped if swap is allowed. The pressure stall numbers show how long its tasks actually wait.".into(),
        None => "Little memory is available on the host (MemAvailable already counts the cache the kernel can drop), so allocations reclaim inline (direct reclaim), the page cache shrinks and files are read again from disk, and swap fills if there is any.".into(),
    };
    if let Some(psi) = psi_some.filter(|v| *v >= 1.0) {
        f.cause +=
            &format!(" On this host some task stalled on memory {psi:.1}% of the last 10 s.");
    }
    f.impact = "Latency rises in everything that allocates or reads files: tasks stall in reclaim, cached data is evicted and read again from disk. If reclaim cannot keep up, the OOM killer is next.".into();
    f.evidence.push(format!(
        "{} {} of a limit of {} ({} left)",
        human_bytes(m.usage),
        m.what(),
        human_bytes(m.limit),
        human_bytes(m.limit.saturating_sub(m.usage))
    ));
    if let Some(line) = m.cache_line() {
        f.evidence.push(line);
    }
    if let Some(c) = m.cg.filter(|c| c.limit_hits > 0) {
        f.evidence.push(format!(
            "usage hit the limit {} times in the window and the kernel reclaimed to stay under it",
            thousands(c.limit_hits)
        ));
    }
    let secs = s.window_secs();
    let growth = m.growth_per_sec(secs);
    f.evidence.push(if m.usage == m.start {
        format!("flat over the {} window", human_secs(secs))
    } else {
        format!(
            "{} at the start of the {} window ({}{})",
            human_bytes(m.start),
            human_secs(secs),
            if growth > 0.0 { "+" } else { "-" },
            fmt_byte_rate(growth.abs())
        )
    });
    match psi_memory_line(s) {
        Some(line) => f.evidence.push(line),
        None => f
            .evidence
            .push("PSI is not available on this kernel: stall time unknown".into()),
    }
    if let Some(c) = m.cg {
        f.evidence
            .push(format!("cgroup {} (v{})", c.path, c.version));
        if let Some(line) = cgroup_processes_line(c, s.collector_pid) {
            f.evidence.push(line);
        }
    }
    f.value = m.fill_pct();
    f.threshold = t.number(&MEMORY_PRESSURE_PCT);
    f.unit = "%".into();
    match m.cg {
        Some(c) if c.version == 1 => {
            let dir = cgroup_dir(1, &c.path);
            f.fix.push(format!(
                "cat {dir}/memory.failcnt  # how often usage hit the limit; rising means reclaim on every allocation"
            ));
            f.fix.push(format!(
                "grep -E '^total_(rss|cache|shmem|swap|pgmajfault) ' {dir}/memory.stat  # rss: cannot be dropped; cache: can; pgmajfault: re-reads from disk"
            ));
        }
        Some(c) => {
            let dir = cgroup_dir(2, &c.path);
            f.fix.push(format!(
                "cat {dir}/memory.pressure  # this cgroup's own stall time: some/full avg10 above a few % hurts"
            ));
            f.fix.push(format!(
                "grep -E '^(anon|file|shmem|pgmajfault|workingset_refault_file) ' {dir}/memory.stat  # anon: cannot be dropped without swap; refaults: cache evicted and read again"
            ));
            f.fix.push(format!(
                "cat {dir}/memory.events  # high/max: throttled or at the limit; oom_kill"
            ));
        }
        None => {
            f.fix.push(
                "cat /proc/pressure/memory  # stall time: some/full avg10 above a few % hurts"
                    .into(),
            );
            f.fix
                .push("vmstat 1 5  # si/so: swapping; free and cache shrinking".into());
            f.fix.push(
                "ps -eo pid,rss,comm --sort=-rss | head -n 10  # the biggest processes".into(),
            );
        }
    }
    f.fix.push("Give it more memory (raise the limit, add RAM) or make it need less (smaller caches or heap, fewer workers).".into());
    f
}

impl Rule for MemoryPressure {
    fn id(&self) -> &str {
        ID
    }

    fn description(&self) -> &str {
        "a memory cgroup's working set (or the host's used memory) above memory_pressure_pct of its limit (warning)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Per memory cgroup, the working set (usage minus the inactive page cache the kernel can drop) against memory_pressure_pct of its limit, growing or not; and the host's total minus available memory against that share of its RAM. A cgroup full of page cache is not under pressure. It speaks of reclaim and stalls; the countdown to the limit is oom-imminent's.".into(),
            when_it_fires: vec![
                "Read the cgroup's memory.stat (anon vs file) and PSI (memory.pressure, /proc/pressure/memory) to see whether reclaim already stalls tasks.".into(),
                "Raise the limit if the working set is legitimately that large, or shrink it: bound caches, lower heap limits.".into(),
                "On the host: find the largest consumers (ps -eo pid,rss,comm --sort=-rss | head) and the kernel's share (Slab in /proc/meminfo).".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        memory_targets(s, |m| {
            m.limit > 0 && m.fill_pct() > t.number(&MEMORY_PRESSURE_PCT)
        })
        .iter()
        .map(|m| pressure(m, s, t))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::{CgroupMemory, MemorySignals};

    use super::*;
    use crate::testutil::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    fn cg(path: &str, start: u64, usage: u64, limit: u64) -> CgroupMemory {
        CgroupMemory {
            path: path.into(),
            version: 2,
            usage_start_bytes: start,
            usage_bytes: usage,
            limit_bytes: limit,
            processes: vec![proc_(4121, "api")],
            ..CgroupMemory::default()
        }
    }

    fn with(cgroups: Vec<CgroupMemory>, psi: Option<f64>) -> Signals {
        let mut s = signals();
        s.memory = Some(MemorySignals {
            total_bytes: 8 * GIB,
            available_start_bytes: 6 * GIB,
            available_end_bytes: 6 * GIB,
            psi_some_avg10: psi,
            psi_full_avg10: psi.map(|v| v / 4.0),
            cgroups,
            used_series: Default::default(),
        });
        s
    }

    #[test]
    fn roomy_is_quiet() {
        assert!(run(&MemoryPressure, &signals()).is_empty());
        assert!(
            run(
                &MemoryPressure,
                &with(vec![cg("/a", GIB, GIB, 2 * GIB)], None)
            )
            .is_empty()
        );
    }

    #[test]
    fn full_and_flat_still_warns() {
        let s = with(
            vec![cg(
                "/system.slice/db.service",
                1950 * MIB,
                1950 * MIB,
                2 * GIB,
            )],
            Some(12.5),
        );
        let f = one(run(&MemoryPressure, &s));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.eta_secs, None, "the countdown is oom-imminent's");
        assert_eq!(
            f.title,
            "cgroup /system.slice/db.service is under memory pressure: usage 1.9 GiB, 95% of its 2.0 GiB limit; allocations reclaim first"
        );
        assert!(f.cause.contains("12.5% of the last 10 s"), "{}", f.cause);
        assert!(
            f.evidence
                .iter()
                .any(|e| e == "host memory pressure (PSI avg10): some 12.50%, full 3.12%")
        );
        assert!(f.evidence.iter().any(|e| e.starts_with("flat over")));
        assert!(
            f.fix.iter().any(
                |x| x.starts_with("cat /sys/fs/cgroup/system.slice/db.service/memory.pressure")
            )
        );
    }

    #[test]
    fn fires_alongside_oom_imminent_with_its_own_words() {
        let s = with(vec![cg("/a", 1800 * MIB, 1900 * MIB, 2048 * MIB)], None);
        let p = one(run(&MemoryPressure, &s));
        let o = one(run(&crate::OomImminent, &s));
        assert_ne!(p.title, o.title);
        assert!(p.title.contains("memory pressure"));
        assert!(
            p.evidence
                .iter()
                .any(|e| e.contains("PSI is not available"))
        );
    }

    #[test]
    fn boundary_is_strict() {
        let limit = 1000 * MIB;
        let at = limit / 10 * 9;
        assert!(run(&MemoryPressure, &with(vec![cg("/a", at, at, limit)], None)).is_empty());
        assert_eq!(
            run(
                &MemoryPressure,
                &with(vec![cg("/a", at, at + 1, limit)], None)
            )
            .len(),
            1
        );
    }

    #[test]
    fn the_host() {
        let mut s = with(vec![], Some(30.0));
        s.memory.as_mut().unwrap().available_end_bytes = 400 * MIB;
        let f = one(run(&MemoryPressure, &s));
        assert_eq!(f.subject.kind, "host");
        assert_eq!(
            f.title,
            "host node-1 is under memory pressure: 7.6 GiB of 8.0 GiB (95%) used, 400.0 MiB available"
        );
        assert!(
            f.fix
                .iter()
                .any(|x| x.starts_with("cat /proc/pressure/memory"))
        );
    }

    #[test]
    fn v1_cgroups_get_v1_files() {
        let mut c = cg("/docker/abc", 1950 * MIB, 1950 * MIB, 2 * GIB);
        c.version = 1;
        let f = one(run(&MemoryPressure, &with(vec![c], None)));
        assert!(
            f.fix
                .iter()
                .any(|x| x.starts_with("cat /sys/fs/cgroup/memory/docker/abc/memory.failcnt"))
        );
    }
}
