//! `oom-imminent`: memory is close to its limit and still growing; the OOM killer is next.

use kerno_core::{
    Finding, Rule, Severity, Signals, ThresholdSpec, Thresholds, human_bytes, human_secs, thousands,
};

use crate::common::{
    MemTarget, cgroup_dir, cgroup_processes_line, finding, fmt_byte_rate, fmt_pct, memory_targets,
    of_limit, psi_memory_line, systemd_unit,
};

/// A memory cgroup whose working set (usage minus reclaimable page cache) is above
/// `oom_imminent_pct` of its limit (or the host: total − available against total), and
/// growing steadily by at least `oom_min_growth_kib_per_sec` over the window (the trend of its
/// per-second series: a good fit, mostly rising, no sawtooth), warns, with the ETA to the
/// limit at that rate; under `oom_critical_eta_secs` it is critical. A cgroup held at its
/// limit by page cache, or one that hits the limit and reclaims (failcnt rising), is not
/// about to be OOM-killed.
pub struct OomImminent;

/// The rule's id.
pub const ID: &str = "oom-imminent";

/// `oom_imminent_pct`: memory use above this share of the limit, and growing, warns (%).
pub const OOM_IMMINENT_PCT: ThresholdSpec = ThresholdSpec::number(
    "oom_imminent_pct",
    90.0,
    "%",
    0.0,
    100.0,
    "memory use above this share of the limit, and growing, warns",
);
/// `oom_critical_eta_secs`: critical when the limit is this close (s).
pub const OOM_CRITICAL_ETA_SECS: ThresholdSpec = ThresholdSpec::number(
    "oom_critical_eta_secs",
    300.0,
    "s",
    0.0,
    f64::MAX,
    "critical when the limit is this close",
);
/// `oom_min_growth_kib_per_sec`: slower growth than this is not an OOM on its way (KiB/s).
pub const OOM_MIN_GROWTH_KIB_PER_SEC: ThresholdSpec = ThresholdSpec::number(
    "oom_min_growth_kib_per_sec",
    16.0,
    "KiB/s",
    0.0,
    f64::MAX,
    "the working set must grow at least this fast, steadily, for an OOM to be on its way",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] =
    &[OOM_IMMINENT_PCT, OOM_CRITICAL_ETA_SECS, OOM_MIN_GROWTH_KIB_PER_SEC];

fn min_growth(t: &Thresholds) -> f64 {
    t.number(&OOM_MIN_GROWTH_KIB_PER_SEC) * 1024.0
}

/// Seconds until `usage` reaches `limit` at `growth` bytes per second.
pub(crate) fn eta_secs(usage: u64, limit: u64, growth: f64) -> Option<f64> {
    (growth > 0.0).then(|| limit.saturating_sub(usage) as f64 / growth)
}

fn imminent(m: &MemTarget<'_>, s: &Signals, t: &Thresholds) -> Finding {
    let secs = s.window_secs();
    let growth = m
        .sustained_growth(secs, min_growth(t))
        .unwrap_or_else(|| m.growth_per_sec(secs));
    let eta = eta_secs(m.usage, m.limit, growth).unwrap_or(0.0);
    let severity = if eta < t.number(&OOM_CRITICAL_ETA_SECS) {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let name = m.name(s);
    let mut f = finding(ID, severity, m.subject(s));
    let (what, of) = match m.cg {
        Some(_) => (
            "will reach its memory limit",
            format!("{} {}", m.what(), of_limit(m.usage, m.limit)),
        ),
        None => (
            "will run out of memory",
            format!("{} used", of_limit(m.usage, m.limit)),
        ),
    };
    f.title = format!(
        "{name} {what} in about {}: {of}, growing {}",
        human_secs(eta),
        fmt_byte_rate(growth)
    );
    let grew = m.usage.saturating_sub(m.start);
    f.cause = match m.cg {
        Some(_) => format!(
            "Its {} grew by {} in {}, steadily, and only {} is left under its limit. When it gets there the kernel cannot reclaim enough (page cache can be dropped; anonymous memory without swap cannot), and the OOM killer kills a process in it. The ETA assumes the growth continues at this window's rate.",
            match m.what() {
                "working set" => "working set (the memory it cannot give back: usage minus reclaimable page cache)",
                other => other,
            },
            human_bytes(grew),
            human_secs(secs),
            human_bytes(m.limit.saturating_sub(m.usage))
        ),
        None => format!(
            "Memory in use on the host grew by {} in {} and only {} is still available (MemAvailable counts the cache the kernel can drop). When it runs out, the kernel swaps or reclaims hard and then the OOM killer kills a process. The ETA assumes the growth continues at this window's rate.",
            human_bytes(grew),
            human_secs(secs),
            human_bytes(m.limit.saturating_sub(m.usage))
        ),
    };
    f.impact = match m.cg {
        Some(_) => format!(
            "The OOM killer will SIGKILL the largest process in {name}, dropping its requests in flight; until then, every allocation in it has to reclaim first and slows down."
        ),
        None => "The OOM killer will SIGKILL the process with the highest OOM score on the host, which need not be the one that grows; before that the whole host slows down in reclaim and swap.".into(),
    };
    f.evidence.push(format!(
        "{} {} → {} in {} (+{}, {})",
        m.what(),
        human_bytes(m.start),
        human_bytes(m.usage),
        human_secs(secs),
        human_bytes(grew),
        fmt_byte_rate(growth)
    ));
    f.evidence.push(format!(
        "{} {} of a limit of {} ({}); {} left",
        human_bytes(m.usage),
        m.what(),
        human_bytes(m.limit),
        fmt_pct(m.fill_pct()),
        human_bytes(m.limit.saturating_sub(m.usage))
    ));
    if let Some(line) = m.cache_line() {
        f.evidence.push(line);
    }
    if let Some(c) = m.cg {
        f.evidence
            .push(format!("cgroup {} (v{})", c.path, c.version));
        if let Some(line) = cgroup_processes_line(c, s.collector_pid) {
            f.evidence.push(line);
        }
        if c.oom_kills > 0 {
            f.evidence.push(format!(
                "{} OOM kill(s) already counted in it during the window",
                thousands(c.oom_kills)
            ));
        }
    }
    if let Some(line) = psi_memory_line(s) {
        f.evidence.push(line);
    }
    f.value = m.fill_pct();
    f.threshold = t.number(&OOM_IMMINENT_PCT);
    f.unit = "%".into();
    f.eta_secs = Some(eta);
    match m.cg {
        Some(c) => {
            let dir = cgroup_dir(c.version, &c.path);
            if c.version == 1 {
                f.fix.push(format!(
                    "grep . {dir}/memory.{{usage,limit}}_in_bytes  # watch it climb"
                ));
                f.fix.push(format!(
                    "grep -E '^total_(rss|cache|shmem|mapped_file) ' {dir}/memory.stat  # rss growing: the program's heap; cache: reclaimable"
                ));
            } else {
                f.fix.push(format!(
                    "grep . {dir}/memory.{{current,max}}  # watch it climb"
                ));
                f.fix.push(format!(
                    "grep -E '^(anon|file|shmem|slab|sock) ' {dir}/memory.stat  # anon growing: the program's heap; file: reclaimable cache"
                ));
            }
            let pids: Vec<String> = c
                .processes
                .iter()
                .filter(|p| p.pid != s.collector_pid || s.collector_pid == 0)
                .map(|p| p.pid.to_string())
                .collect();
            if !pids.is_empty() {
                f.fix.push(format!(
                    "ps -o pid,rss,vsz,cmd -p {}  # which process grows",
                    pids.join(",")
                ));
            }
            if let Some((ns, pod)) = c.pod.as_deref().and_then(|p| p.split_once('/')) {
                f.fix.push(format!(
                    "kubectl -n {ns} describe pod {pod}  # its memory limit and restarts"
                ));
                f.fix.push("Raise resources.limits.memory if the growth is legitimate; otherwise restart it in a quiet moment before the OOM killer does, and find the leak.".into());
            } else if let Some(unit) = systemd_unit(&c.path) {
                f.fix.push(format!(
                    "systemctl set-property {unit} MemoryMax=<bytes>  # more room if the growth is legitimate"
                ));
                f.fix.push(format!(
                    "systemctl restart {unit}  # in a quiet moment, before the OOM killer does it mid-request"
                ));
            }
        }
        None => {
            f.fix.push("free -m  # used, cache, available, swap".into());
            f.fix.push(
                "ps -eo pid,rss,comm --sort=-rss | head -n 10  # the biggest processes".into(),
            );
            f.fix.push("grep -E '^(Shmem|Slab|SUnreclaim|AnonHugePages):' /proc/meminfo  # memory no process shows: tmpfs, kernel slab".into());
        }
    }
    f
}

impl Rule for OomImminent {
    fn id(&self) -> &str {
        ID
    }

    fn description(&self) -> &str {
        "a working set above oom_imminent_pct of its limit and growing steadily (critical when the limit is under oom_critical_eta_secs away)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Per memory cgroup (and the host), the working set (usage minus reclaimable page cache) against oom_imminent_pct of the limit, and whether it grows steadily by at least oom_min_growth_kib_per_sec (a good trend fit, mostly rising, no sawtooth). It warns with the ETA to the limit at that rate; under oom_critical_eta_secs it is critical. A cgroup held at its limit by page cache, or one that reclaims at the limit (failcnt rising), is not about to be OOM-killed.".into(),
            when_it_fires: vec![
                "Check the ETA and the growing process the finding names; confirm with the cgroup's memory.current (v2) or memory.usage_in_bytes (v1) a few seconds apart.".into(),
                "If the growth is legitimate, raise the limit (resources.limits.memory, MemoryMax=) before the ETA; otherwise restart the process in a quiet moment before the OOM killer does.".into(),
                "Then find the leak: heap profile, unbounded caches or queues.".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let secs = s.window_secs();
        memory_targets(s, |m| {
            m.limit > 0
                && m.fill_pct() > t.number(&OOM_IMMINENT_PCT)
                && m.sustained_growth(secs, min_growth(t)).is_some()
        })
        .iter()
        .map(|m| imminent(m, s, t))
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
            processes: vec![proc_(COLLECTOR, "kerno"), proc_(4121, "api")],
            ..CgroupMemory::default()
        }
    }

    fn with(cgroups: Vec<CgroupMemory>) -> Signals {
        let mut s = signals();
        s.memory = Some(MemorySignals {
            total_bytes: 8 * GIB,
            available_start_bytes: 6 * GIB,
            available_end_bytes: 6 * GIB,
            psi_some_avg10: Some(4.2),
            psi_full_avg10: Some(1.0),
            cgroups,
            used_series: Default::default(),
        });
        s
    }

    /// A cgroup with a known working set and per-second series: `ws(i)` and `usage(i)`
    /// for i = 0..=10 over the 10 s window.
    fn with_series(limit: u64, usage: impl Fn(u64) -> u64, ws: impl Fn(u64) -> u64) -> CgroupMemory {
        let points = |f: &dyn Fn(u64) -> u64| {
            kerno_core::Series::from_points((0..=10).map(|i| (i * 1000, f(i) as f64)))
        };
        CgroupMemory {
            usage_start_bytes: usage(0),
            usage_bytes: usage(10),
            working_set_start_bytes: Some(ws(0)),
            working_set_bytes: Some(ws(10)),
            usage_series: points(&usage),
            working_set_series: points(&ws),
            ..cg("/kubepods/burstable/pod1/c1", 0, 0, limit)
        }
    }

    #[test]
    fn a_cgroup_full_of_page_cache_is_neither_pressure_nor_an_oom() {
        // As seen for real: a 128 MiB cgroup reading a 400 MiB file in a loop, usage at
        // 126.8 MiB "growing 8 KiB/s", but only 3.1 MiB of it is the working set.
        let s = with(vec![with_series(
            128 * MIB,
            |i| 126 * MIB + 819 * 1024 - (10 - i) * 8192,
            |i| 3 * MIB + 100 * 1024 + (i % 2) * 4096,
        )]);
        assert!(run(&OomImminent, &s).is_empty());
        assert!(run(&crate::MemoryPressure, &s).is_empty());
    }

    #[test]
    fn an_anonymous_hog_near_its_limit_is_caught_with_the_working_set_shown() {
        // 93% and +100 KiB/s, no cache: both rules speak.
        let s = with(vec![with_series(
            512 * MIB,
            |i| 476 * MIB + i * 100 * 1024,
            |i| 476 * MIB + i * 100 * 1024,
        )]);
        let f = one(run(&OomImminent, &s));
        assert_eq!(f.severity, Severity::Warning);
        assert!((f.eta_secs.unwrap() - (36.0 * 1024.0 - 1000.0) / 100.0).abs() < 0.01, "{:?}", f.eta_secs);
        assert!(f.evidence.iter().any(|e| e.starts_with("working set 476.0 MiB → ")), "{:#?}", f.evidence);
        assert_eq!(one(run(&crate::MemoryPressure, &s)).severity, Severity::Warning);
        // With some cache beside it, the evidence says how much of usage is reclaimable.
        let s = with(vec![with_series(
            512 * MIB,
            |i| 496 * MIB + i * 100 * 1024,
            |i| 476 * MIB + i * 100 * 1024,
        )]);
        let f = one(run(&OomImminent, &s));
        assert!(
            f.evidence.iter().any(|e| e == "497.0 MiB used, 477.0 MiB working set, the rest (20.0 MiB) reclaimable page cache"),
            "{:#?}",
            f.evidence
        );
    }

    #[test]
    fn noise_at_the_limit_and_a_sawtooth_are_not_growth() {
        // At 97% of its limit, up and down by a few pages: full, but not on its way up.
        let noise = with(vec![with_series(
            512 * MIB,
            |i| 497 * MIB + (i % 3) * 8192,
            |i| 497 * MIB + (i % 3) * 8192,
        )]);
        assert!(run(&OomImminent, &noise).is_empty());
        assert_eq!(run(&crate::MemoryPressure, &noise).len(), 1, "still under pressure");
        // A garbage collector: fills by 2 MiB/s, collects every 4 s; ends higher than it began.
        let saw = with(vec![with_series(
            512 * MIB,
            |i| 470 * MIB + (i % 4) * 2 * MIB + i * 64 * 1024,
            |i| 470 * MIB + (i % 4) * 2 * MIB + i * 64 * 1024,
        )]);
        assert!(run(&OomImminent, &saw).is_empty());
        // Growth under the minimum rate is not an OOM on its way.
        let slow = with(vec![with_series(
            512 * MIB,
            |i| 480 * MIB + i * 8 * 1024,
            |i| 480 * MIB + i * 8 * 1024,
        )]);
        assert!(run(&OomImminent, &slow).is_empty());
        let t = Thresholds::default().with(&OOM_MIN_GROWTH_KIB_PER_SEC, 4.0).unwrap();
        assert_eq!(run_with(&OomImminent, &slow, &t).len(), 1);
    }

    #[test]
    fn roomy_or_flat_is_quiet() {
        assert!(run(&OomImminent, &signals()).is_empty());
        assert!(
            run(&OomImminent, &with(vec![cg("/a", GIB, GIB + MIB, 2 * GIB)])).is_empty(),
            "50% full"
        );
        assert!(
            run(
                &OomImminent,
                &with(vec![cg("/a", 1950 * MIB, 1950 * MIB, 2 * GIB)])
            )
            .is_empty(),
            "full but flat"
        );
        assert!(
            run(
                &OomImminent,
                &with(vec![cg("/a", 1960 * MIB, 1950 * MIB, 2 * GIB)])
            )
            .is_empty(),
            "full but shrinking"
        );
    }

    #[test]
    fn eta_math() {
        // 1,900 MiB of 2,048 MiB, +100 MiB in 10 s: 148 MiB left at 10 MiB/s is 14.8 s.
        let s = with(vec![cg(
            "/system.slice/api.service",
            1800 * MIB,
            1900 * MIB,
            2048 * MIB,
        )]);
        let f = one(run(&OomImminent, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert!(
            (f.eta_secs.unwrap() - 14.8).abs() < 1e-9,
            "{:?}",
            f.eta_secs
        );
        assert_eq!(
            f.title,
            "cgroup /system.slice/api.service will reach its memory limit in about 15 s: usage 1.9 GiB of 2.0 GiB (93%), growing 10.0 MiB/s"
        );
        assert_eq!(f.subject.kind, "cgroup");
        assert_eq!(
            f.subject.process.as_ref().unwrap().pid,
            4121,
            "never the collector"
        );
        assert!(f.fix.iter().any(|x| {
            x.starts_with("grep . /sys/fs/cgroup/system.slice/api.service/memory.{current,max}")
        }));
        assert!(
            f.fix
                .iter()
                .any(|x| x.starts_with("ps -o pid,rss,vsz,cmd -p 4121 "))
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e == "host memory pressure (PSI avg10): some 4.20%, full 1.00%")
        );
    }

    #[test]
    fn slow_growth_only_warns() {
        // 148 MiB left at 0.1 MiB/s: 1,480 s.
        let s = with(vec![cg("/a", 1899 * MIB, 1900 * MIB, 2048 * MIB)]);
        let f = one(run(&OomImminent, &s));
        assert_eq!(f.severity, Severity::Warning);
        assert!((f.eta_secs.unwrap() - 1480.0).abs() < 1e-9);
    }

    #[test]
    fn eta_boundary() {
        // 300 MiB left at 1 MiB/s is exactly 300 s: not under it.
        let limit = 4000 * MIB;
        let s = with(vec![cg("/a", 3690 * MIB, 3700 * MIB, limit)]);
        let f = one(run(&OomImminent, &s));
        assert_eq!(f.eta_secs, Some(300.0));
        assert_eq!(f.severity, Severity::Warning);
        let s = with(vec![cg("/a", 3691 * MIB, 3701 * MIB, limit)]);
        assert_eq!(one(run(&OomImminent, &s)).severity, Severity::Critical);
    }

    #[test]
    fn fill_boundary_is_strict() {
        // Exactly 90% of 1,000 MiB does not fire; a byte more does.
        let limit = 1000 * MIB;
        let at = limit / 10 * 9;
        assert!(run(&OomImminent, &with(vec![cg("/a", at - MIB, at, limit)])).is_empty());
        assert_eq!(
            run(&OomImminent, &with(vec![cg("/a", at - MIB, at + 1, limit)])).len(),
            1
        );
    }

    #[test]
    fn pods_and_nesting() {
        let mut pod = cg(
            "/kubepods/burstable/podabc",
            1800 * MIB,
            1900 * MIB,
            2048 * MIB,
        );
        pod.pod = Some("shop/cart-7d9f".into());
        let mut ctr = cg(
            "/kubepods/burstable/podabc/ctr1",
            1800 * MIB,
            1900 * MIB,
            2048 * MIB,
        );
        ctr.pod = Some("shop/cart-7d9f".into());
        let f = one(run(&OomImminent, &with(vec![pod, ctr])));
        assert_eq!(
            f.subject.cgroup.as_deref(),
            Some("/kubepods/burstable/podabc/ctr1")
        );
        assert_eq!(f.subject.name, "shop/cart-7d9f");
        assert!(
            f.title.starts_with("pod shop/cart-7d9f will reach"),
            "{}",
            f.title
        );
        assert!(
            f.fix
                .iter()
                .any(|x| x.starts_with("kubectl -n shop describe pod cart-7d9f"))
        );
    }

    #[test]
    fn the_host_counts_too() {
        let mut s = with(vec![]);
        let m = s.memory.as_mut().unwrap();
        m.available_start_bytes = 600 * MIB;
        m.available_end_bytes = 500 * MIB;
        let f = one(run(&OomImminent, &s));
        assert_eq!(f.subject.kind, "host");
        assert!(
            f.title
                .starts_with("host node-1 will run out of memory in about 50 s"),
            "{}",
            f.title
        );
        assert_eq!(f.severity, Severity::Critical);
    }

    #[test]
    fn v1_cgroups_get_v1_files() {
        let mut c = cg("/docker/abc", 1800 * MIB, 1900 * MIB, 2048 * MIB);
        c.version = 1;
        let f = one(run(&OomImminent, &with(vec![c])));
        assert!(f.fix.iter().any(|x| {
            x.starts_with("grep . /sys/fs/cgroup/memory/docker/abc/memory.{usage,limit}_in_bytes")
        }));
    }
}
