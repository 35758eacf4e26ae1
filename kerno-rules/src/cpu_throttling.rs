//! `cpu-throttling`: a cgroup's CPU limit (CFS quota) stops it in many of its periods.

use kerno_core::{
    CgroupCpu, Finding, Rule, Signals, ThresholdSpec, Thresholds, human_ns, thousands,
};

use crate::common::{cgroup_label, cgroup_subject_of, finding, fmt_pct, grade, keep_deepest, processes_line};

/// A cgroup with a CPU limit that was throttled in more than `cpu_throttled_pct` of the CFS
/// periods it ran in (with throttled time) warns, above `cpu_throttled_critical_pct` is
/// critical. Quiet under `cpu_throttle_min_periods` periods. The subject is the cgroup (its
/// pod and container when it is one), with its limit.
pub struct CpuThrottling;

/// The rule's id.
pub const ID: &str = "cpu-throttling";

/// `cpu_throttled_pct`: throttled in more than this share of its periods warns (%).
pub const CPU_THROTTLED_PCT: ThresholdSpec = ThresholdSpec::number(
    "cpu_throttled_pct",
    25.0,
    "%",
    0.0,
    100.0,
    "a CPU-limited cgroup throttled in more than this share of the CFS periods it ran in warns",
);
/// `cpu_throttled_critical_pct`: throttled in more than this share is critical (%).
pub const CPU_THROTTLED_CRITICAL_PCT: ThresholdSpec = ThresholdSpec::number(
    "cpu_throttled_critical_pct",
    75.0,
    "%",
    0.0,
    100.0,
    "throttled in more than this share of its periods is critical: it runs at its limit nearly all the time",
);
/// `cpu_throttle_min_periods`: fewer periods than this in the window and the rule stays
/// quiet.
pub const CPU_THROTTLE_MIN_PERIODS: ThresholdSpec = ThresholdSpec::count(
    "cpu_throttle_min_periods",
    20,
    "periods",
    "fewer CFS periods than this in the window (2 s at the default 100 ms period) and the rule stays quiet",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[
    CPU_THROTTLED_PCT,
    CPU_THROTTLED_CRITICAL_PCT,
    CPU_THROTTLE_MIN_PERIODS,
];

/// The cgroups the rule fires on at these thresholds, deepest first (a container rather
/// than its pod).
pub(crate) fn throttled<'a>(s: &'a Signals, t: &Thresholds) -> Vec<&'a CgroupCpu> {
    let Some(sat) = &s.saturation else {
        return Vec::new();
    };
    let mut fired: Vec<&CgroupCpu> = sat
        .cpu_limited
        .iter()
        .filter(|c| {
            c.periods > 0
                && c.periods >= t.count(&CPU_THROTTLE_MIN_PERIODS)
                && c.throttled_ns > 0
                && c.throttled_pct() > t.number(&CPU_THROTTLED_PCT)
        })
        .collect();
    keep_deepest(&mut fired, |c| c.path.as_str());
    fired
}

/// `0.20 CPU`, `1.5 CPUs`.
fn cpus(v: f64) -> String {
    let n = if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    };
    format!("{n} CPU{}", if (v - 1.0).abs() < 1e-9 || v < 1.0 { "" } else { "s" })
}

fn throttle_finding(c: &CgroupCpu, s: &Signals, t: &Thresholds) -> Option<Finding> {
    let pct = c.throttled_pct();
    let (severity, threshold) = grade(
        pct,
        t.number(&CPU_THROTTLED_PCT),
        t.number(&CPU_THROTTLED_CRITICAL_PCT),
    )?;
    let name = cgroup_label(&c.path, &c.attribution);
    let mut f = finding(
        ID,
        severity,
        cgroup_subject_of(&c.path, &c.pod, &c.attribution, &c.processes, s.collector_pid),
    );
    let limit = cpus(c.limit_cpus());
    f.title = format!(
        "{name} is CPU-throttled in {} of its periods: its limit of {limit} stops it, not a lack of CPUs",
        fmt_pct(pct)
    );
    f.cause = format!(
        "The cgroup has a CPU limit (a CFS quota of {} µs every {} µs, {limit}: a container's resources.limits.cpu). Its threads used up that quota before the end of {} of the {} periods they ran in, and the kernel stopped all of them until the next period began, however idle the machine's other CPUs were.",
        thousands(c.quota_us),
        thousands(c.period_us),
        thousands(c.throttled_periods),
        thousands(c.periods)
    );
    f.impact = "Every request the workload handles while throttled waits for the next period (up to a whole period, 100 ms by default): latency rises in steps and timeouts appear, while CPU graphs of the host look fine. Waits of its threads on the run queue are the quota's, not contention.".into();
    f.evidence.push(format!(
        "{} of {} CFS periods throttled ({}) in the {} s window",
        thousands(c.throttled_periods),
        thousands(c.periods),
        fmt_pct(pct),
        (s.window_secs() * 10.0).round() / 10.0
    ));
    f.evidence.push(format!(
        "throttled for {} in total (summed over CPUs), {} per throttled period",
        human_ns(c.throttled_ns as f64),
        human_ns(c.throttled_ns as f64 / c.throttled_periods.max(1) as f64)
    ));
    f.evidence.push(format!(
        "limit: {limit} (quota {} µs per {} µs period, cgroup v{})",
        thousands(c.quota_us),
        thousands(c.period_us),
        c.version
    ));
    if let Some(used) = c.usage_ns {
        let used_cpus = used as f64 / 1e9 / s.window_secs();
        f.evidence.push(format!(
            "it used {} on average, {} of its limit",
            cpus(used_cpus),
            fmt_pct(used_cpus * 100.0 / c.limit_cpus().max(1e-9))
        ));
    }
    f.evidence.push(format!("cgroup {}", c.path));
    if let Some(who) = c.attribution.describe() {
        f.evidence.push(format!("whose: {who}"));
    }
    if let Some(line) = processes_line(&c.processes, s.collector_pid) {
        f.evidence.push(line);
    }
    f.value = pct;
    f.threshold = threshold;
    f.unit = "%".into();
    let dir = if c.version == 1 {
        format!("/sys/fs/cgroup/cpu{}", if c.path == "/" { "" } else { &c.path })
    } else {
        format!("/sys/fs/cgroup{}", if c.path == "/" { "" } else { &c.path })
    };
    let files = if c.version == 1 {
        "cpu.{cfs_quota_us,cfs_period_us,stat}"
    } else {
        "cpu.{max,stat}"
    };
    f.fix.push(format!(
        "grep . {dir}/{files}  # nr_throttled rising with nr_periods: it hits its quota"
    ));
    if let Some(p) = f.subject.process.as_ref() {
        f.fix.push(format!(
            "top -H -p {}  # which of its threads burn the quota",
            p.pid
        ));
    }
    match (&c.attribution.namespace, &c.attribution.pod_name, &c.attribution.unit) {
        (Some(ns), Some(pod), _) => f.fix.push(format!(
            "kubectl -n {ns} get pod {pod} -o jsonpath='{{.spec.containers[*].resources}}'  # its CPU request and limit"
        )),
        (_, _, Some(unit)) => f.fix.push(format!(
            "systemctl show -p CPUQuotaPerSecUSec {unit}  # the unit's CPUQuota="
        )),
        _ => {}
    }
    f.fix.push("Raise or remove the CPU limit (resources.limits.cpu, cpu.max, CPUQuota=), or make the workload need less CPU per period (fewer threads: GOMAXPROCS, worker pools sized to the limit); adding CPUs to the host does not help.".into());
    Some(f)
}

impl Rule for CpuThrottling {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(crate::common::RATE_WINDOW)
    }

    fn description(&self) -> &str {
        "a CPU-limited cgroup throttled in more than cpu_throttled_pct of its CFS periods (critical above cpu_throttled_critical_pct)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Every CPU-limited cgroup (CFS quota: cgroup v1 cpu.cfs_quota_us, v2 cpu.max) with at least cpu_throttle_min_periods periods in the window: throttled in more than cpu_throttled_pct of its periods warns, more than cpu_throttled_critical_pct is critical. Its waits are the quota's, not the run queue's: sched-contention does not blame contention for them.".into(),
            when_it_fires: vec![
                "Confirm: cat <cgroup>/cpu.stat (nr_throttled / nr_periods, throttled_time) and the limit (cpu.max or cpu.cfs_quota_us).".into(),
                "Raise the container's CPU limit (resources.limits.cpu) or remove it and keep the request; adding CPUs to the node does not help.".into(),
                "Or make the work fit: fewer threads than the quota allows CPUs, no busy polling.".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        throttled(s, t)
            .into_iter()
            .filter_map(|c| throttle_finding(c, s, t))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::{Attribution, SaturationSignals, Severity};

    use super::*;
    use crate::testutil::*;

    pub(crate) fn limited(path: &str, periods: u64, throttled: u64) -> CgroupCpu {
        CgroupCpu {
            path: path.into(),
            version: 1,
            quota_us: 20_000,
            period_us: 100_000,
            periods,
            throttled_periods: throttled,
            throttled_ns: throttled * 78 * MS,
            usage_ns: Some(2_000 * MS),
            processes: vec![proc_(4121, "spin")],
            ..CgroupCpu::default()
        }
    }

    fn with(cgroups: Vec<CgroupCpu>) -> Signals {
        let mut s = signals();
        s.saturation = Some(SaturationSignals {
            cpu_limited: cgroups,
            ..SaturationSignals::default()
        });
        s
    }

    #[test]
    fn unthrottled_or_unobserved_is_quiet() {
        assert!(run(&CpuThrottling, &signals()).is_empty());
        assert!(run(&CpuThrottling, &with(vec![limited("/a", 100, 0)])).is_empty());
        // Half its quota, throttled now and then: 10%.
        assert!(run(&CpuThrottling, &with(vec![limited("/a", 100, 10)])).is_empty());
    }

    #[test]
    fn a_spinner_at_a_fifth_of_a_cpu_is_critical() {
        let mut c = limited("/kubepods/burstable/pod1/ctr", 100, 99);
        c.attribution = Attribution {
            namespace: Some("shop".into()),
            pod_name: Some("cart-0".into()),
            container: Some("api".into()),
            ..Attribution::default()
        };
        c.pod = c.attribution.pod();
        let f = one(run(&CpuThrottling, &with(vec![c])));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.threshold, 75.0);
        assert_eq!(f.subject.kind, "cgroup");
        assert_eq!(f.subject.name, "shop/cart-0");
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 4121);
        assert_eq!(
            f.title,
            "pod shop/cart-0 (container api) is CPU-throttled in 99% of its periods: its limit of 0.20 CPU stops it, not a lack of CPUs"
        );
        assert!(f.evidence.iter().any(|e| e == "99 of 100 CFS periods throttled (99%) in the 10 s window"));
        assert!(f.evidence.iter().any(|e| e == "it used 0.20 CPU on average, 100% of its limit"), "{:?}", f.evidence);
        assert!(f.fix.iter().any(|x| x.starts_with("grep . /sys/fs/cgroup/cpu/kubepods/burstable/pod1/ctr/cpu.{cfs_quota_us")));
        assert!(f.fix.iter().any(|x| x.starts_with("kubectl -n shop get pod cart-0")));
    }

    #[test]
    fn boundary_and_minimum_periods() {
        // Exactly 25% is fine; just above warns; exactly 75% is still a warning.
        assert!(run(&CpuThrottling, &with(vec![limited("/a", 100, 25)])).is_empty());
        let f = one(run(&CpuThrottling, &with(vec![limited("/a", 100, 26)])));
        assert_eq!((f.severity, f.threshold), (Severity::Warning, 25.0));
        let f = one(run(&CpuThrottling, &with(vec![limited("/a", 100, 75)])));
        assert_eq!(f.severity, Severity::Warning);
        let f = one(run(&CpuThrottling, &with(vec![limited("/a", 100, 76)])));
        assert_eq!(f.severity, Severity::Critical);
        // Too few periods to judge, and throttled periods with no throttled time.
        assert!(run(&CpuThrottling, &with(vec![limited("/a", 19, 19)])).is_empty());
        assert_eq!(run(&CpuThrottling, &with(vec![limited("/a", 20, 20)])).len(), 1);
        let mut no_time = limited("/a", 100, 90);
        no_time.throttled_ns = 0;
        assert!(run(&CpuThrottling, &with(vec![no_time])).is_empty());
        let t = Thresholds::default().with(&CPU_THROTTLED_PCT, 90.0).unwrap();
        assert!(run_with(&CpuThrottling, &with(vec![limited("/a", 100, 90)]), &t).is_empty());
    }

    #[test]
    fn the_container_not_its_pod_and_v2_files() {
        let mut pod = limited("/kubepods/pod1", 100, 90);
        pod.version = 2;
        let mut ctr = limited("/kubepods/pod1/ctr", 100, 90);
        ctr.version = 2;
        let f = one(run(&CpuThrottling, &with(vec![pod, ctr])));
        assert_eq!(f.subject.cgroup.as_deref(), Some("/kubepods/pod1/ctr"));
        assert!(f.fix.iter().any(|x| x.starts_with("grep . /sys/fs/cgroup/kubepods/pod1/ctr/cpu.{max,stat}")));
        assert!(f.evidence.iter().any(|e| e.ends_with("cgroup v2)")));
    }
}
