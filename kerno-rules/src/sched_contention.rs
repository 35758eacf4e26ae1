//! `sched-contention`: runnable threads wait for a CPU.

use kerno_core::{
    DelayedProcess, Finding, Rule, Signals, Subject, ThresholdSpec, Thresholds, human_ns, thousands,
};

use crate::common::{finding, fmt_pct, grade, latency_line, ms, proc_name, proc_where};

/// Run-queue delay (wakeup to running) p99 above `runq_p99_ms` warns, above
/// `runq_critical_p99_ms` is critical. Quiet with fewer than `runq_min_samples` wakeups. The
/// subject is the process that waited longest in total, when the probe attributed any.
///
/// Waits that a CPU limit explains are not contention: the long waits the probe attributed
/// to processes in cgroups `cpu-throttling` reports (throttled in more than
/// `cpu_throttled_pct` of their periods) are taken out of the histogram, as its longest
/// samples, before the p99 is judged; what is left is the run queue's.
pub struct SchedContention;

/// The rule's id.
pub const ID: &str = "sched-contention";

/// `runq_p99_ms`: run-queue delay p99 above this warns (ms).
pub const RUNQ_P99_MS: ThresholdSpec = ThresholdSpec::number(
    "runq_p99_ms",
    5.0,
    "ms",
    0.0,
    f64::MAX,
    "run-queue delay p99 above this warns",
);
/// `runq_critical_p99_ms`: run-queue delay p99 above this is critical (ms).
pub const RUNQ_CRITICAL_P99_MS: ThresholdSpec = ThresholdSpec::number(
    "runq_critical_p99_ms",
    20.0,
    "ms",
    0.0,
    f64::MAX,
    "run-queue delay p99 above this is critical",
);
/// `runq_min_samples`: fewer wakeups than this and the rule stays quiet.
pub const RUNQ_MIN_SAMPLES: ThresholdSpec = ThresholdSpec::count(
    "runq_min_samples",
    200,
    "wakeups",
    "fewer wakeups than this and the rule stays quiet",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[RUNQ_P99_MS, RUNQ_CRITICAL_P99_MS, RUNQ_MIN_SAMPLES];

fn delayed_line(d: &DelayedProcess) -> String {
    format!(
        "{}: {} long waits, {} in total, longest {}",
        proc_name(&d.process),
        thousands(d.count),
        human_ns(d.total_ns as f64),
        human_ns(d.max_ns as f64)
    )
}

impl Rule for SchedContention {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(crate::common::RATE_WINDOW)
    }

    fn description(&self) -> &str {
        "run-queue delay p99 above runq_p99_ms (critical above runq_critical_p99_ms)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Run-queue delay, the time from a thread's wakeup to it running on a CPU, as a p99 over the window: above runq_p99_ms warns, above runq_critical_p99_ms is critical; quiet with fewer than runq_min_samples wakeups. The subject is the process that waited longest in total.".into(),
            when_it_fires: vec![
                "Check whether every CPU is busy (mpstat -P ALL 1 5: %idle near 0) or the process is throttled or pinned (cpu.stat nr_throttled, taskset -p <pid>).".into(),
                "Spread or shed the load, add CPUs, or raise the CPU limit of a throttled container (resources.limits.cpu, cpu.max).".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let Some(sched) = &s.sched else {
            return Vec::new();
        };
        let n = sched.runq_delay.count();
        if n == 0 || n < t.count(&RUNQ_MIN_SAMPLES) {
            return Vec::new();
        }
        // Long waits of threads whose cgroup's CPU limit throttled them: a throttled thread
        // waits out the rest of its period, the longest waits in the histogram.
        let throttled = crate::cpu_throttling::throttled(s, t);
        let in_throttled = |d: &DelayedProcess| {
            d.process
                .cgroup
                .as_deref()
                .is_some_and(|cg| throttled.iter().any(|c| c.path != "/" && c.contains(cg)))
        };
        let explained: u64 = sched
            .top_delayed
            .iter()
            .filter(|d| in_throttled(d))
            .map(|d| d.count)
            .sum();
        let runq = sched.runq_delay.without_top(explained);
        let Some(p99) = runq.percentile(99.0) else {
            return Vec::new();
        };
        let Some((severity, threshold)) = grade(
            ms(p99),
            t.number(&RUNQ_P99_MS),
            t.number(&RUNQ_CRITICAL_P99_MS),
        ) else {
            return Vec::new();
        };
        let mut delayed: Vec<&DelayedProcess> = sched
            .top_delayed
            .iter()
            .filter(|d| d.process.pid != s.collector_pid || s.collector_pid == 0)
            .filter(|d| !in_throttled(d))
            .collect();
        delayed.sort_by(|a, b| {
            b.total_ns
                .cmp(&a.total_ns)
                .then(a.process.pid.cmp(&b.process.pid))
        });
        let top = delayed.first().map(|d| &d.process);
        let subject = top
            .map(Subject::process)
            .unwrap_or_else(|| Subject::host(&s.host.hostname));
        let mut f = finding(ID, severity, subject);
        let cpus = s.host.cpus;
        f.title = format!(
            "CPU contention: 1% of wakeups wait {} or more for a CPU",
            human_ns(p99 as f64)
        );
        if let Some(p) = top {
            f.title += &format!("; {} waits most", proc_name(p));
        }
        let cpus_txt = if cpus > 0 {
            format!("the {cpus} CPUs")
        } else {
            "the CPUs".into()
        };
        f.cause = format!(
            "More threads are runnable than {cpus_txt} can run, so a woken thread queues before it runs. Either the host is CPU-saturated, or a CPU quota (a container's CPU limit, cpu.max) throttles a cgroup and its threads wait out each throttled period on the run queue."
        );
        if explained > 0 {
            f.cause += " The waits of threads their own CPU limit throttled are not counted here (cpu-throttling reports them): these are the run queue's.";
        }
        if let Some(psi) = sched.psi_cpu_some_avg10
            && psi >= 1.0
        {
            f.cause += &format!(
                " Pressure stall information agrees: some task waited for a CPU {} of the last 10 s.",
                fmt_pct(psi)
            );
        }
        f.impact = "Every wakeup (a request arriving, a lock released, a timer firing) waits before any work happens: latency rises for every service on the host, most for the threads listed here.".into();
        f.evidence.push(format!(
            "run-queue delay: {}",
            latency_line(&runq, "wakeups")
        ));
        if explained > 0 {
            let names: Vec<&str> = throttled.iter().map(|c| c.path.as_str()).collect();
            f.evidence.push(format!(
                "not counted: {} long waits of threads their CPU limit throttled (cgroup {}; see cpu-throttling)",
                thousands(explained),
                names.join(", ")
            ));
        }
        f.evidence.push(if cpus > 0 {
            format!("{cpus} CPUs online")
        } else {
            "CPU count unknown".into()
        });
        if let Some(psi) = sched.psi_cpu_some_avg10 {
            f.evidence.push(format!("PSI cpu some avg10: {psi:.2}%"));
        }
        for d in delayed.iter().take(5) {
            f.evidence.push(delayed_line(d));
        }
        if let Some(w) = top.and_then(proc_where) {
            f.evidence.push(format!(
                "{} runs in {w}",
                top.map(proc_name).unwrap_or_default()
            ));
        }
        f.value = ms(p99);
        f.threshold = threshold;
        f.unit = "ms".into();
        f.fix.push("mpstat -P ALL 1 5  # %idle near 0 on every CPU: saturated; idle CPUs left: throttling or pinning".into());
        f.fix
            .push("top -b -n 1 -o %CPU | head -n 20  # what uses the CPUs".into());
        if let Some(p) = top {
            f.fix.push(format!(
                "pidstat -w -p {} 1 5  # nvcswch/s: how often it is preempted",
                p.pid
            ));
            f.fix
                .push(format!("taskset -cp {}  # pinned to a few CPUs?", p.pid));
            if let Some(cg) = p.cgroup.as_deref().filter(|c| *c != "/") {
                f.fix.push(format!(
                    "grep . /sys/fs/cgroup{cg}/cpu.{{max,stat}}  # cgroup v2: nr_throttled, throttled_usec rising = its CPU limit throttles it"
                ));
            }
        }
        f.fix.push("Spread or shed the load, add CPUs, or raise the CPU limit of a throttled container (resources.limits.cpu, cpu.max).".into());
        vec![f]
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::{Process, SchedSignals, Severity};

    use super::*;
    use crate::testutil::*;

    fn with_runq(h: kerno_core::Histogram, top: Vec<DelayedProcess>) -> Signals {
        let mut s = signals();
        s.sched = Some(SchedSignals {
            runq_delay: h,
            top_delayed: top,
            psi_cpu_some_avg10: Some(42.0),
            ..Default::default()
        });
        s
    }

    fn delayed(pid: u32, comm: &str, total_ms: u64) -> DelayedProcess {
        DelayedProcess {
            process: Process {
                cgroup: Some("/system.slice/worker.service".into()),
                ..proc_(pid, comm)
            },
            count: 1_204,
            total_ns: total_ms * MS,
            max_ns: 94 * MS,
        }
    }

    #[test]
    fn idle_scheduler_is_quiet() {
        assert!(run(&SchedContention, &signals()).is_empty());
        assert!(run(&SchedContention, &with_runq(hist(20_000, 50_000), vec![])).is_empty());
    }

    #[test]
    fn warns_then_criticals() {
        let s = with_runq(
            hist2(50_000, 9_800, 8 * MS, 200),
            vec![delayed(977, "worker", 8_420)],
        );
        let f = one(run(&SchedContention, &s));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.threshold, 5.0);
        assert_eq!(f.subject.name, "worker (pid 977)");
        assert!(
            f.title.ends_with("; `worker` (pid 977) waits most"),
            "{}",
            f.title
        );
        assert!(f.cause.contains("the 4 CPUs"));
        assert!(f.cause.contains("42% of the last 10 s"), "{}", f.cause);
        assert!(f.evidence.iter().any(|e| e == "4 CPUs online"));
        assert!(f.evidence.iter().any(|e| e == "PSI cpu some avg10: 42.00%"));
        assert!(f.fix.iter().any(|x| {
            x.starts_with("grep . /sys/fs/cgroup/system.slice/worker.service/cpu.{max,stat}")
        }));

        let s = with_runq(hist2(50_000, 9_800, 40 * MS, 200), vec![]);
        let f = one(run(&SchedContention, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.threshold, 20.0);
        assert_eq!(f.subject.kind, "host");
    }

    #[test]
    fn too_few_wakeups_is_quiet() {
        assert!(run(&SchedContention, &with_runq(hist(40 * MS, 199), vec![])).is_empty());
        assert_eq!(
            run(&SchedContention, &with_runq(hist(40 * MS, 200), vec![])).len(),
            1
        );
    }

    #[test]
    fn boundary_is_strict() {
        let s = with_runq(hist(8 * MS, 1_000), vec![]);
        let p99 = ms(s
            .sched
            .as_ref()
            .unwrap()
            .runq_delay
            .percentile(99.0)
            .unwrap());
        let t = Thresholds::default().with(&RUNQ_P99_MS, p99).unwrap();
        assert!(run_with(&SchedContention, &s, &t).is_empty());
        let t = Thresholds::default()
            .with(&RUNQ_P99_MS, p99 - 0.001)
            .unwrap();
        assert_eq!(
            one(run_with(&SchedContention, &s, &t)).severity,
            Severity::Warning
        );
        let t = Thresholds::default()
            .with(&RUNQ_CRITICAL_P99_MS, p99)
            .unwrap();
        assert_eq!(
            one(run_with(&SchedContention, &s, &t)).severity,
            Severity::Warning
        );
        let t = Thresholds::default()
            .with(&RUNQ_CRITICAL_P99_MS, p99 - 0.001)
            .unwrap();
        assert_eq!(
            one(run_with(&SchedContention, &s, &t)).severity,
            Severity::Critical
        );
    }

    #[test]
    fn waits_a_cpu_limit_explains_are_not_contention() {
        use kerno_core::{CgroupCpu, SaturationSignals};
        // A spinner in a cgroup with a 20% quota on an idle machine: its 80 ms waits are the
        // quota's. 3,000 short wakeups elsewhere, 90 long ones of the spinner.
        let mut spinner = delayed(977, "spin", 90 * 78);
        spinner.count = 90;
        spinner.process.cgroup = Some("/kerno-chaos-1-2".into());
        let mut s = with_runq(hist2(20_000, 3_000, 78 * MS, 90), vec![spinner]);
        let one_f = one(run(&SchedContention, &s));
        assert_eq!(one_f.severity, Severity::Critical, "without the cgroup data: contention");
        s.saturation = Some(SaturationSignals {
            cpu_limited: vec![CgroupCpu {
                path: "/kerno-chaos-1-2".into(),
                version: 1,
                quota_us: 20_000,
                period_us: 100_000,
                periods: 100,
                throttled_periods: 99,
                throttled_ns: 7_800 * MS,
                ..CgroupCpu::default()
            }],
            ..SaturationSignals::default()
        });
        assert!(run(&SchedContention, &s).is_empty());
        let both = kerno_core::evaluate(&s, &crate::builtin(), &Thresholds::default());
        assert_eq!(both.findings[0].rule, "cpu-throttling");
        assert!(both.findings.iter().all(|f| f.rule != ID));

        // Real contention beside it still fires, naming the others, not the spinner.
        let mut spinner = delayed(977, "spin", 90 * 78);
        spinner.count = 90;
        spinner.process.cgroup = Some("/kerno-chaos-1-2".into());
        let mut h = hist2(20_000, 3_000, 78 * MS, 90);
        h.record_n(30 * MS, 200);
        let mut s2 = with_runq(h, vec![spinner, delayed(1200, "worker", 6_000)]);
        s2.saturation = s.saturation.clone();
        let f = one(run(&SchedContention, &s2));
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 1200);
        assert!(
            f.evidence
                .iter()
                .any(|e| e.starts_with("not counted: 90 long waits")),
            "{:?}",
            f.evidence
        );

        // A throttled cgroup the processes are not in explains nothing.
        let mut other = with_runq(hist2(20_000, 3_000, 78 * MS, 90), vec![delayed(5, "x", 7_000)]);
        other.saturation = s.saturation.clone();
        assert_eq!(run(&SchedContention, &other).len(), 1);
    }

    #[test]
    fn the_collector_is_skipped() {
        let s = with_runq(
            hist(40 * MS, 1_000),
            vec![
                delayed(COLLECTOR, "kerno", 9_000),
                delayed(977, "worker", 100),
            ],
        );
        let f = one(run(&SchedContention, &s));
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 977);
        assert!(!f.evidence.iter().any(|e| e.contains("kerno")));
    }
}
