//! `memory-reclaim-stall`: tasks lose wall time to memory reclaim (PSI memory "full"), or a
//! cgroup is throttled at its memory.high.

use kerno_core::{CgroupPressure, Finding, Pressure, Rule, Severity, Signals, ThresholdSpec, Thresholds, human_bytes, thousands};

use crate::common::{
    cgroup_label, cgroup_subject_of, finding, fmt_pct, grade, keep_deepest, processes_line,
};

/// PSI memory `full` (every non-idle task of the host, or of a cgroup, stalled on memory at
/// once) above `memory_full_pct` of the window warns, above `memory_full_critical_pct` is
/// critical; a cgroup whose `memory.events` `high` rose (the kernel throttled its
/// allocations into reclaim at its memory.high) warns. A cgroup is named by its own PSI (v2
/// `memory.pressure`); the host by `/proc/pressure/memory`.
pub struct MemoryReclaimStall;

/// The rule's id.
pub const ID: &str = "memory-reclaim-stall";

/// `memory_full_pct`: memory "full" stall above this share of the window warns (%).
pub const MEMORY_FULL_PCT: ThresholdSpec = ThresholdSpec::number(
    "memory_full_pct",
    5.0,
    "%",
    0.0,
    100.0,
    "PSI memory full (all non-idle tasks stalled on reclaim at once) above this share of the window warns, host or cgroup",
);
/// `memory_full_critical_pct`: above this share is critical (%).
pub const MEMORY_FULL_CRITICAL_PCT: ThresholdSpec = ThresholdSpec::number(
    "memory_full_critical_pct",
    20.0,
    "%",
    0.0,
    100.0,
    "PSI memory full above this share of the window is critical",
);
/// `memory_high_events`: more memory.high throttling events than this in the window warns.
pub const MEMORY_HIGH_EVENTS: ThresholdSpec = ThresholdSpec::count(
    "memory_high_events",
    0,
    "events",
    "a cgroup throttled at its memory.high more often than this in the window warns (memory.events high)",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] =
    &[MEMORY_FULL_PCT, MEMORY_FULL_CRITICAL_PCT, MEMORY_HIGH_EVENTS];

fn psi_line(who: &str, p: &Pressure) -> String {
    format!(
        "{who} memory pressure over the window: full {}, some {}{}",
        fmt_pct(p.full()),
        fmt_pct(p.some_pct),
        match (p.full_avg10, p.some_avg10) {
            (Some(f), Some(so)) => format!(" (kernel avg10: full {f:.2}%, some {so:.2}%)"),
            _ => String::new(),
        }
    )
}

fn common_fix(f: &mut Finding, dir: Option<String>) {
    match dir {
        Some(dir) => {
            f.fix.push(format!(
                "cat {dir}/memory.pressure  # this cgroup's own stall: full avg10 above a few % hurts"
            ));
            f.fix.push(format!(
                "grep -E '^(anon|file|workingset_refault_file|pgmajfault|pgscan|pgsteal) ' {dir}/memory.stat  # refaults and scans: it re-reads what reclaim just dropped"
            ));
            f.fix.push(format!(
                "cat {dir}/memory.events  # high: throttled at memory.high; max: at its limit"
            ));
        }
        None => {
            f.fix
                .push("cat /proc/pressure/memory  # full avg10 above a few % hurts".into());
            f.fix.push(
                "grep -E '^(pgscan|pgsteal|workingset_refault|pgmajfault|allocstall)' /proc/vmstat  # direct reclaim and refaults"
                    .into(),
            );
            f.fix
                .push("ps -eo pid,rss,comm --sort=-rss | head -n 10  # the biggest processes".into());
        }
    }
    f.fix.push("Give the workload more memory (raise its limit or memory.high, add RAM) or make it need less (smaller caches or heap); a working set larger than its memory is re-read from disk on every pass.".into());
}

fn cgroup_stall(c: &CgroupPressure, p: &Pressure, s: &Signals, t: &Thresholds) -> Option<Finding> {
    let (severity, threshold) = grade(
        p.full(),
        t.number(&MEMORY_FULL_PCT),
        t.number(&MEMORY_FULL_CRITICAL_PCT),
    )?;
    let name = cgroup_label(&c.path, &c.attribution);
    let mut f = finding(
        ID,
        severity,
        cgroup_subject_of(&c.path, &c.pod, &c.attribution, &c.processes, s.collector_pid),
    );
    f.title = format!(
        "{name} stalls on memory reclaim {} of the time: all its tasks wait for memory at once",
        fmt_pct(p.full())
    );
    f.cause = "The cgroup's tasks spend their time reclaiming memory instead of running: its working set does not fit its memory, so each allocation first frees pages (dropping cache, writing back) and pages it needs again are read back from disk (refaults). PSI's \"full\" counts the time in which all of its non-idle tasks were stalled on memory together: wall time lost to every one of them.".into();
    f.impact = "Everything the cgroup does is slower by that share: requests take longer, the disk reads the same data again and again, and if reclaim cannot keep up the OOM killer is next.".into();
    f.evidence.push(psi_line("its", p));
    if let Some(host) = s.saturation.as_ref().and_then(|x| x.memory.as_ref()) {
        f.evidence.push(psi_line("host", host));
    }
    if c.memory_high_events > 0 {
        f.evidence.push(format!(
            "throttled at memory.high {} times in the window",
            thousands(c.memory_high_events)
        ));
    }
    f.evidence.push(format!("cgroup {} (v2 memory.pressure)", c.path));
    if let Some(line) = processes_line(&c.processes, s.collector_pid) {
        f.evidence.push(line);
    }
    f.value = p.full();
    f.threshold = threshold;
    f.unit = "%".into();
    common_fix(&mut f, Some(crate::common::cgroup_dir(2, &c.path)));
    Some(f)
}

fn high_throttled(c: &CgroupPressure, s: &Signals, t: &Thresholds) -> Finding {
    let name = cgroup_label(&c.path, &c.attribution);
    let mut f = finding(
        ID,
        Severity::Warning,
        cgroup_subject_of(&c.path, &c.pod, &c.attribution, &c.processes, s.collector_pid),
    );
    f.title = format!(
        "{name} is throttled at its memory.high: {} throttling events in the window",
        thousands(c.memory_high_events)
    );
    f.cause = format!(
        "The cgroup's memory went over its memory.high{} and the kernel made its allocating tasks reclaim, and sleep, before they could continue: memory.high is a throttle, not a kill, so the workload slows down instead of being OOM-killed.",
        c.memory_high_bytes
            .map(|b| format!(" ({})", human_bytes(b)))
            .unwrap_or_default()
    );
    f.impact = "Its allocations stall in reclaim and penalty sleeps: latency rises in whatever allocates, while nothing is killed and nothing is logged.".into();
    f.evidence.push(format!(
        "memory.events high rose by {} in the window",
        thousands(c.memory_high_events)
    ));
    if let Some(p) = &c.memory {
        f.evidence.push(psi_line("its", p));
    }
    f.evidence.push(format!("cgroup {}", c.path));
    if let Some(line) = processes_line(&c.processes, s.collector_pid) {
        f.evidence.push(line);
    }
    f.value = c.memory_high_events as f64;
    f.threshold = t.count(&MEMORY_HIGH_EVENTS) as f64;
    f.unit = "events".into();
    common_fix(&mut f, Some(crate::common::cgroup_dir(2, &c.path)));
    f
}

impl Rule for MemoryReclaimStall {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(crate::common::RATE_WINDOW)
    }

    fn description(&self) -> &str {
        "PSI memory full above memory_full_pct of the window, host or cgroup (critical above memory_full_critical_pct), or a cgroup throttled at its memory.high"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Pressure stall information for memory, host and every cgroup that has it: the share of the window in which all non-idle tasks stalled on memory (full) above memory_full_pct warns, above memory_full_critical_pct is critical. On cgroup v2, more than memory_high_events memory.high throttling events in the window warn too.".into(),
            when_it_fires: vec![
                "Confirm: cat /proc/pressure/memory (and <cgroup>/memory.pressure); grep -E 'pgscan|pgsteal|allocstall' /proc/vmstat for reclaim activity.".into(),
                "Find the cgroup near its limit: memory.current against memory.max/memory.high, or memory.usage_in_bytes against memory.limit_in_bytes on v1.".into(),
                "Give it memory (raise the limit or memory.high) or shrink its working set; on the host, stop what fills memory.".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let Some(sat) = &s.saturation else {
            return Vec::new();
        };
        let warn = t.number(&MEMORY_FULL_PCT);
        let mut stalled: Vec<(&CgroupPressure, &Pressure)> = sat
            .cgroups
            .iter()
            .filter_map(|c| Some((c, c.memory.as_ref().filter(|p| p.full() > warn)?)))
            .collect();
        keep_deepest(&mut stalled, |(c, _)| c.path.as_str());
        let mut out: Vec<Finding> = stalled
            .iter()
            .filter_map(|(c, p)| cgroup_stall(c, p, s, t))
            .collect();
        let named: Vec<&str> = stalled.iter().map(|(c, _)| c.path.as_str()).collect();
        for c in sat.cgroups.iter().filter(|c| {
            c.memory_high_events > t.count(&MEMORY_HIGH_EVENTS) && !named.contains(&c.path.as_str())
        }) {
            out.push(high_throttled(c, s, t));
        }
        if let Some(host) = &sat.memory
            && let Some((severity, threshold)) = grade(
                host.full(),
                warn,
                t.number(&MEMORY_FULL_CRITICAL_PCT),
            )
        {
            let mut f = finding(ID, severity, kerno_core::Subject::host(&s.host.hostname));
            f.title = format!(
                "host {} stalls on memory reclaim {} of the time: every running task waits for memory at once",
                s.host.hostname,
                fmt_pct(host.full())
            );
            f.cause = "The host's memory is short: allocations reclaim inline (direct reclaim), the page cache is evicted and read again from disk, and swap is used if there is any. PSI's \"full\" counts the time in which every non-idle task on the host was stalled on memory together.".into();
            f.impact = "Wall time lost to every workload on the host at once: latency rises everywhere, and the OOM killer (or systemd-oomd) acts if it goes on.".into();
            f.evidence.push(psi_line("host", host));
            let mut worst: Vec<&CgroupPressure> =
                sat.cgroups.iter().filter(|c| c.memory.is_some()).collect();
            worst.sort_by(|a, b| {
                let v = |c: &CgroupPressure| c.memory.as_ref().map(|p| p.some_pct).unwrap_or(0.0);
                v(b).total_cmp(&v(a))
            });
            for c in worst.iter().take(3) {
                if let Some(p) = &c.memory {
                    f.evidence.push(format!(
                        "{}: some {}, full {}",
                        cgroup_label(&c.path, &c.attribution),
                        fmt_pct(p.some_pct),
                        fmt_pct(p.full())
                    ));
                }
            }
            f.value = host.full();
            f.threshold = threshold;
            f.unit = "%".into();
            common_fix(&mut f, None);
            out.push(f);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::SaturationSignals;

    use super::*;
    use crate::testutil::*;

    fn psi(some: f64, full: f64) -> Pressure {
        Pressure {
            some_pct: some,
            full_pct: Some(full),
            some_avg10: Some(some),
            full_avg10: Some(full),
        }
    }

    fn cg(path: &str, memory: Pressure) -> CgroupPressure {
        CgroupPressure {
            path: path.into(),
            memory: Some(memory),
            processes: vec![proc_(4121, "db")],
            ..CgroupPressure::default()
        }
    }

    fn with(host: Pressure, cgroups: Vec<CgroupPressure>) -> Signals {
        let mut s = signals();
        s.saturation = Some(SaturationSignals {
            memory: Some(host),
            cgroups,
            ..SaturationSignals::default()
        });
        s
    }

    #[test]
    fn no_stall_is_quiet() {
        assert!(run(&MemoryReclaimStall, &signals()).is_empty());
        // Some stall, never every task at once: reclaim that keeps up.
        let s = with(psi(30.0, 0.0), vec![cg("/a", psi(40.0, 4.0))]);
        assert!(run(&MemoryReclaimStall, &s).is_empty());
    }

    #[test]
    fn a_cgroup_thrashing_is_named() {
        let s = with(
            psi(3.0, 0.5),
            vec![cg("/kerno", psi(60.0, 55.0)), cg("/", psi(60.0, 55.0))],
        );
        let f = one(run(&MemoryReclaimStall, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.subject.kind, "cgroup");
        assert_eq!(f.subject.cgroup.as_deref(), Some("/kerno"));
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 4121);
        assert_eq!(
            f.title,
            "cgroup /kerno stalls on memory reclaim 55% of the time: all its tasks wait for memory at once"
        );
        assert!(f.evidence.iter().any(|e| e.starts_with("its memory pressure over the window: full 55%, some 60%")));
        assert!(f.fix.iter().any(|x| x.starts_with("cat /sys/fs/cgroup/kerno/memory.pressure")));
    }

    #[test]
    fn boundaries_host_and_cgroup() {
        assert!(run(&MemoryReclaimStall, &with(psi(9.0, 5.0), vec![])).is_empty());
        let f = one(run(&MemoryReclaimStall, &with(psi(9.0, 5.01), vec![])));
        assert_eq!((f.severity, f.threshold, f.subject.kind.as_str()), (Severity::Warning, 5.0, "host"));
        let f = one(run(&MemoryReclaimStall, &with(psi(30.0, 20.0), vec![])));
        assert_eq!(f.severity, Severity::Warning);
        let f = one(run(&MemoryReclaimStall, &with(psi(30.0, 20.5), vec![])));
        assert_eq!(f.severity, Severity::Critical);
        assert!(run(&MemoryReclaimStall, &with(psi(0.0, 0.0), vec![cg("/a", psi(9.0, 5.0))])).is_empty());
        assert_eq!(
            run(&MemoryReclaimStall, &with(psi(0.0, 0.0), vec![cg("/a", psi(9.0, 5.01))])).len(),
            1
        );
    }

    #[test]
    fn memory_high_throttling_warns() {
        let mut c = cg("/system.slice/batch.service", psi(2.0, 0.0));
        c.memory_high_events = 37;
        c.memory_high_bytes = Some(256 << 20);
        let f = one(run(&MemoryReclaimStall, &with(psi(0.0, 0.0), vec![c.clone()])));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.value, 37.0);
        assert!(f.title.contains("throttled at its memory.high: 37 throttling events"), "{}", f.title);
        assert!(f.cause.contains("(256.0 MiB)"));
        c.memory_high_events = 0;
        assert!(run(&MemoryReclaimStall, &with(psi(0.0, 0.0), vec![c])).is_empty());
    }
}
