//! `fd-leak`: a process opens file descriptors faster than it closes them, steadily.

use kerno_core::{
    FdCount, FdProcess, Finding, Process, Rule, Severity, Signals, Subject, ThresholdSpec, Thresholds, human_secs,
    thousands, trend::Trend,
};

use crate::common::{finding, fmt_rate, proc_name, proc_where, systemd_unit};

/// Net descriptor growth ((opens − closes) / window) above `fd_growth_per_sec`, sustained
/// over at least `fd_sustained_ratio` of the sample intervals, warns. With the open count
/// and the soft `RLIMIT_NOFILE` known, the ETA to the limit is `(limit − open) / growth`;
/// under `fd_critical_eta_secs` it is critical.
pub struct FdLeak;

/// The rule's id.
pub const ID: &str = "fd-leak";

/// `fd_growth_per_sec`: net descriptor growth above this warns (fds/s).
pub const FD_GROWTH_PER_SEC: ThresholdSpec = ThresholdSpec::number(
    "fd_growth_per_sec",
    10.0,
    "fds/s",
    0.0,
    f64::MAX,
    "net descriptor growth above this warns",
);
/// `fd_sustained_ratio`: the share of sample intervals that must grow, so a burst is not a leak (ratio).
pub const FD_SUSTAINED_RATIO: ThresholdSpec = ThresholdSpec::number(
    "fd_sustained_ratio",
    0.75,
    "ratio",
    0.0,
    1.0,
    "the share of sample intervals that must grow, so a burst is not a leak",
);
/// `fd_critical_eta_secs`: critical when the soft limit is this close (s).
pub const FD_CRITICAL_ETA_SECS: ThresholdSpec = ThresholdSpec::number(
    "fd_critical_eta_secs",
    600.0,
    "s",
    0.0,
    f64::MAX,
    "critical when the soft limit is this close",
);
/// The rule's short window ([`Rule::min_window`]): eight sample intervals, so at the default
/// `fd_sustained_ratio` a burst must grow for six seconds on end to pass for a leak (the
/// benign corpus holds the rule silent over six), while a leak fires about six seconds
/// after it starts rather than once it fills most of the agent's findings window.
pub const SUSTAINED_WINDOW: std::time::Duration = std::time::Duration::from_secs(8);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] =
    &[FD_GROWTH_PER_SEC, FD_SUSTAINED_RATIO, FD_CRITICAL_ETA_SECS];

/// The share of sample intervals in which the process grew (from the trend of its net
/// descriptor series; from its per-interval counts in a window saved without the series),
/// or `None` without intervals.
fn grown_share(p: &FdProcess) -> Option<f64> {
    if let Some(t) = Trend::of(&p.net_series) {
        return Some(t.rising);
    }
    let n = p.net_per_interval.len();
    (n > 0).then(|| p.net_per_interval.iter().filter(|v| **v > 0).count() as f64 / n as f64)
}

/// Seconds until the soft limit at this growth, when both ends are known.
pub(crate) fn eta_secs(p: &FdProcess, growth: f64) -> Option<f64> {
    let (open, limit) = (p.open_fds?, p.soft_limit?);
    (growth > 0.0).then(|| limit.saturating_sub(open) as f64 / growth)
}

/// A leak seen through the syscall probe: opens and closes counted in the kernel.
fn leak_finding(p: &FdProcess, growth: f64, s: &Signals, t: &Thresholds) -> Finding {
    let rate = fmt_rate(growth);
    let cause = format!(
        "It created {} descriptors and closed {} in {}: {} more stay open every second, {}. {LEAK}",
        thousands(p.opens),
        thousands(p.closes),
        human_secs(s.window_secs()),
        rate,
        match grown_share(p) {
            Some(_) => format!(
                "and the count grew in {} of {} sample intervals",
                p.net_per_interval.iter().filter(|v| **v > 0).count(),
                p.net_per_interval.len()
            ),
            None => "over the whole window".into(),
        }
    );
    let net = p.opens as i64 - p.closes as i64;
    let mut evidence = vec![format!(
        "{} opened, {} closed in {}: net +{} ({rate}/s)",
        thousands(p.opens),
        thousands(p.closes),
        human_secs(s.window_secs()),
        thousands(net.max(0) as u64)
    )];
    if !p.net_per_interval.is_empty() {
        let grew = p.net_per_interval.iter().filter(|v| **v > 0).count();
        let series: Vec<String> = p
            .net_per_interval
            .iter()
            .map(|v| format!("{v:+}"))
            .collect();
        evidence.push(format!(
            "grew in {grew} of {} sample intervals: {}",
            p.net_per_interval.len(),
            series.join(" ")
        ));
    }
    let eta = eta_secs(p, growth);
    finish(
        &p.process,
        (p.open_fds, p.soft_limit, eta),
        growth,
        cause,
        evidence,
        t,
    )
}

/// A leak seen in `/proc/<pid>/fd` alone (no syscall probe: a plain user's doctor): the
/// open count at every sample, not the opens and closes behind it.
fn count_finding(c: &FdCount, growth: f64, s: &Signals, t: &Thresholds) -> Finding {
    let first = c.series.0.first().map(|p| p.1).unwrap_or(0.0) as u64;
    let steps: Vec<i64> = c
        .series
        .0
        .windows(2)
        .map(|w| w[1].1 as i64 - w[0].1 as i64)
        .collect();
    let grew = steps.iter().filter(|v| **v > 0).count();
    let rate = fmt_rate(growth);
    let cause = format!(
        "Its open descriptors went from {} to {} in {}: {} more stay open every second, and the count grew in {grew} of {} sample intervals (counted in /proc/{}/fd: without the syscall probe the opens and closes themselves are not seen). {LEAK}",
        thousands(first),
        thousands(c.open_fds),
        human_secs(s.window_secs()),
        rate,
        steps.len(),
        c.process.pid
    );
    let series: Vec<String> = steps.iter().map(|v| format!("{v:+}")).collect();
    let evidence = vec![
        format!(
            "{} -> {} open descriptors in {} ({rate}/s), counted in /proc/{}/fd",
            thousands(first),
            thousands(c.open_fds),
            human_secs(s.window_secs()),
            c.process.pid
        ),
        format!(
            "grew in {grew} of {} sample intervals: {}",
            steps.len(),
            series.join(" ")
        ),
    ];
    let eta = c
        .soft_limit
        .filter(|_| growth > 0.0)
        .map(|limit| limit.saturating_sub(c.open_fds) as f64 / growth);
    finish(
        &c.process,
        (Some(c.open_fds), c.soft_limit, eta),
        growth,
        cause,
        evidence,
        t,
    )
}

/// What a leak is, after what was seen.
const LEAK: &str = "Descriptors that are opened and never closed are a leak: a socket, file or pipe kept after its last use (a missing close on an error path, a connection pool that only grows, a client per request that is never shut down).";

/// The finding for a process growing at `growth` descriptors a second, with its open count,
/// soft limit and ETA to it (`(open, limit, eta)`), the cause and the first evidence lines.
fn finish(
    proc_: &Process,
    (open_fds, soft_limit, eta): (Option<u64>, Option<u64>, Option<f64>),
    growth: f64,
    cause: String,
    mut evidence: Vec<String>,
    t: &Thresholds,
) -> Finding {
    let severity = match eta {
        Some(e) if e < t.number(&FD_CRITICAL_ETA_SECS) => Severity::Critical,
        _ => Severity::Warning,
    };
    let pid = proc_.pid;
    let mut f = finding(ID, severity, Subject::process(proc_));
    let rate = fmt_rate(growth);
    f.title = format!(
        "process {} leaks file descriptors: +{rate}/s",
        proc_name(proc_)
    );
    match (open_fds, soft_limit, eta) {
        (Some(open), Some(limit), _) if open >= limit => {
            f.title += &format!(
                ", {} of {} open: at the limit, new opens fail with EMFILE",
                thousands(open),
                thousands(limit)
            );
        }
        (Some(open), Some(limit), Some(e)) => {
            f.title += &format!(
                ", {} of {} open, limit in about {}",
                thousands(open),
                thousands(limit),
                human_secs(e)
            );
        }
        (Some(open), _, _) => f.title += &format!(", {} open", thousands(open)),
        (None, _, _) => {
            f.title += " (open count unknown: the process has exited or /proc was unreadable)"
        }
    }
    f.cause = cause;
    f.impact = match soft_limit {
        Some(limit) => format!(
            "At {} open descriptors (its soft RLIMIT_NOFILE) every open(), socket() and accept() fails with EMFILE: the process stops accepting connections and cannot open files, usually while still looking alive to its health checks.",
            thousands(limit)
        ),
        None => "At its open-file limit every open(), socket() and accept() fails with EMFILE: the process stops accepting connections and cannot open files, usually while still looking alive to its health checks.".into(),
    };
    match (open_fds, soft_limit) {
        (Some(open), Some(limit)) => evidence.push(format!(
            "{} descriptors open of a soft limit of {} ({} left)",
            thousands(open),
            thousands(limit),
            thousands(limit.saturating_sub(open))
        )),
        (Some(open), None) => evidence.push(format!(
            "{} descriptors open; limit unknown",
            thousands(open)
        )),
        (None, Some(limit)) => evidence.push(format!(
            "soft limit {}; open count unknown",
            thousands(limit)
        )),
        (None, None) => {}
    }
    if let Some(w) = proc_where(proc_) {
        evidence.push(format!("runs in {w}"));
    }
    f.evidence = evidence;
    f.value = growth;
    f.threshold = t.number(&FD_GROWTH_PER_SEC);
    f.unit = "fd/s".into();
    f.eta_secs = eta;
    f.fix.push(format!(
        "ls /proc/{pid}/fd | wc -l  # the count now; run it again to see it climb"
    ));
    f.fix.push(format!(
        "ls -l /proc/{pid}/fd | awk 'NR>1 {{print $NF}}' | sed -E 's/[0-9]+]$//' | sort | uniq -c | sort -rn | head  # what leaks: socket:[, pipe:[, a path"
    ));
    f.fix.push(format!(
        "ss -tanp | grep 'pid={pid},' | awk '{{print $1}}' | sort | uniq -c  # many CLOSE-WAIT: it never closes sockets the peer closed"
    ));
    f.fix.push(format!("grep 'open files' /proc/{pid}/limits"));
    f.fix.push(format!(
        "prlimit --pid {pid} --nofile=<soft>:<hard>  # stopgap: more headroom (the leak continues)"
    ));
    if let Some(unit) = proc_.cgroup.as_deref().and_then(systemd_unit) {
        f.fix.push(format!(
            "systemctl restart {unit}  # last resort: frees the descriptors until the leak fills them again"
        ));
    }
    f.fix.push("Fix the code path that opens without closing: the listing above shows what kind of descriptor it is.".into());
    f
}

impl FdLeak {
    /// Without the syscall probe (`fds` not observed), the same test on the open counts of
    /// `/proc/<pid>/fd` at every sample: their net growth over the window and the share of
    /// intervals in which they grew.
    fn evaluate_open_counts(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let Some(counts) = &s.fd_counts else {
            return Vec::new();
        };
        let secs = s.window_secs();
        counts
            .processes
            .iter()
            .filter(|c| c.process.pid != s.collector_pid || s.collector_pid == 0)
            .filter_map(|c| {
                let (first, last) = (c.series.0.first()?.1, c.series.0.last()?.1);
                let growth = (last - first) / secs.max(0.001);
                if growth <= t.number(&FD_GROWTH_PER_SEC) || growth <= 0.0 {
                    return None;
                }
                let sustained = Trend::of(&c.series)
                    .is_none_or(|tr| tr.rising >= t.number(&FD_SUSTAINED_RATIO));
                sustained.then(|| count_finding(c, growth, s, t))
            })
            .collect()
    }
}

impl Rule for FdLeak {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(SUSTAINED_WINDOW)
    }

    fn description(&self) -> &str {
        "a process's net descriptor growth above fd_growth_per_sec, sustained (critical when its limit is under fd_critical_eta_secs away)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Per process, the net growth of open file descriptors (opens minus closes over the window) against fd_growth_per_sec, and whether it grew in at least fd_sustained_ratio of the sample intervals, so a burst is not a leak. With the open count and the soft RLIMIT_NOFILE known, the ETA to the limit is (limit - open) / growth; under fd_critical_eta_secs it is critical. Without the syscall probe (kerno doctor as a plain user), the same test runs on the open counts of /proc/<pid>/fd at every sample.".into(),
            when_it_fires: vec![
                "List what the process holds: ls -l /proc/<pid>/fd | awk '{print $NF}' | sed 's/[0-9]*//g' | sort | uniq -c | sort -rn (sockets, pipes, files).".into(),
                "Compare with its limit: grep 'open files' /proc/<pid>/limits; a restart buys time until the limit again.".into(),
                "Fix the code path that opens without closing (connections not returned to a pool, files opened per request); raise the limit only if the growth is legitimate.".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let secs = s.window_secs();
        let Some(fds) = &s.fds else {
            return self.evaluate_open_counts(s, t);
        };
        fds.processes
            .iter()
            .filter(|p| p.process.pid != s.collector_pid || s.collector_pid == 0)
            .filter_map(|p| {
                let growth = p.growth_per_sec(secs);
                if growth <= t.number(&FD_GROWTH_PER_SEC) || growth <= 0.0 {
                    return None;
                }
                // A burst (a pool warming up, a batch of files) grows in a few intervals
                // and then stops; a leak grows in most of them.
                let sustained =
                    grown_share(p).is_none_or(|share| share >= t.number(&FD_SUSTAINED_RATIO));
                sustained.then(|| leak_finding(p, growth, s, t))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::{FdSignals, Process, Series};

    use super::*;
    use crate::testutil::*;

    fn leaky(
        opens: u64,
        closes: u64,
        open: Option<u64>,
        limit: Option<u64>,
        intervals: Vec<i64>,
    ) -> FdProcess {
        FdProcess {
            process: Process {
                cgroup: Some("/system.slice/api.service".into()),
                ..proc_(4121, "api")
            },
            opens,
            closes,
            open_fds: open,
            soft_limit: limit,
            // What the collector derives from the same counts: the running net growth.
            net_series: Series::from_points(
                std::iter::once((0, 0.0)).chain(intervals.iter().enumerate().scan(
                    0i64,
                    |net, (i, d)| {
                        *net += d;
                        Some(((i as u64 + 1) * 1000, *net as f64))
                    },
                )),
            ),
            net_per_interval: intervals,
        }
    }

    fn with_fds(procs: Vec<FdProcess>) -> Signals {
        let mut s = signals();
        s.fds = Some(FdSignals { processes: procs });
        s
    }

    #[test]
    fn balanced_processes_are_quiet() {
        assert!(run(&FdLeak, &signals()).is_empty());
        assert!(run(&FdLeak, &with_fds(vec![])).is_empty());
        assert!(
            run(
                &FdLeak,
                &with_fds(vec![leaky(
                    5_000,
                    4_990,
                    Some(100),
                    Some(1024),
                    vec![1; 10]
                )])
            )
            .is_empty()
        );
    }

    #[test]
    fn the_brief_example() {
        // +37/s for 10 s, 48,210 of 65,536 open: (65,536 − 48,210) / 37 = 468 s, under 600 s.
        let s = with_fds(vec![leaky(
            400,
            30,
            Some(48_210),
            Some(65_536),
            vec![37; 10],
        )]);
        let f = one(run(&FdLeak, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.title,
            "process `api` (pid 4121) leaks file descriptors: +37/s, 48,210 of 65,536 open, limit in about 8 min"
        );
        let eta = f.eta_secs.unwrap();
        assert!((eta - 17_326.0 / 37.0).abs() < 1e-6, "{eta}");
        assert_eq!(f.value, 37.0);
        assert_eq!(f.unit, "fd/s");
        assert!(
            f.fix
                .iter()
                .any(|x| x.starts_with("ls /proc/4121/fd | wc -l"))
        );
        assert!(
            f.fix
                .iter()
                .any(|x| x.starts_with("systemctl restart api.service"))
        );
    }

    #[test]
    fn far_limit_only_warns() {
        // 20/s with 1,000,000 left: about 14 h.
        let s = with_fds(vec![leaky(
            210,
            10,
            Some(48_576),
            Some(1_048_576),
            vec![20; 10],
        )]);
        let f = one(run(&FdLeak, &s));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.eta_secs, Some(50_000.0));
        assert!(f.title.ends_with("limit in about 13.9 h"), "{}", f.title);
    }

    #[test]
    fn eta_boundary() {
        // 6,000 left at 10/s is 600 s: not under 600. One fewer left is.
        let t = Thresholds::default().with(&FD_GROWTH_PER_SEC, 9.0).unwrap();
        let s = with_fds(vec![leaky(100, 0, Some(4_000), Some(10_000), vec![10; 10])]);
        let f = one(run_with(&FdLeak, &s, &t));
        assert_eq!(f.eta_secs, Some(600.0));
        assert_eq!(f.severity, Severity::Warning);
        let s = with_fds(vec![leaky(100, 0, Some(4_001), Some(10_000), vec![10; 10])]);
        assert_eq!(one(run_with(&FdLeak, &s, &t)).severity, Severity::Critical);
    }

    #[test]
    fn at_the_limit_is_critical_now() {
        let s = with_fds(vec![leaky(200, 0, Some(1_024), Some(1_024), vec![20; 10])]);
        let f = one(run(&FdLeak, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.eta_secs, Some(0.0));
        assert!(
            f.title
                .ends_with("at the limit, new opens fail with EMFILE"),
            "{}",
            f.title
        );
    }

    #[test]
    fn growth_boundary_is_strict() {
        // Exactly 10/s over 10 s does not fire; 101 opens does.
        assert!(
            run(
                &FdLeak,
                &with_fds(vec![leaky(100, 0, None, None, vec![10; 10])])
            )
            .is_empty()
        );
        let f = one(run(
            &FdLeak,
            &with_fds(vec![leaky(101, 0, None, None, vec![10; 10])]),
        ));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.eta_secs, None);
        assert!(f.title.contains("open count unknown"), "{}", f.title);
    }

    #[test]
    fn bursts_are_not_leaks() {
        // 500 in two intervals, then flat: 20% of intervals grew.
        let burst = vec![250, 250, 0, 0, 0, 0, 0, 0, 0, 0];
        assert!(
            run(
                &FdLeak,
                &with_fds(vec![leaky(500, 0, Some(600), Some(1_024), burst)])
            )
            .is_empty()
        );
        // Exactly the sustained ratio (75%) counts as sustained.
        let mostly = vec![40, 40, 40, 40, 40, 40, 0, 0];
        let f = one(run(
            &FdLeak,
            &with_fds(vec![leaky(240, 0, Some(600), Some(100_000), mostly)]),
        ));
        assert_eq!(f.severity, Severity::Warning);
        let less = vec![48, 48, 48, 48, 48, 0, 0, 0];
        assert!(
            run(
                &FdLeak,
                &with_fds(vec![leaky(240, 0, Some(600), Some(100_000), less)])
            )
            .is_empty()
        );
    }

    #[test]
    fn without_intervals_positive_growth_counts_as_sustained() {
        let f = one(run(
            &FdLeak,
            &with_fds(vec![leaky(300, 0, Some(600), None, vec![])]),
        ));
        assert!(f.title.ends_with("+30/s, 600 open"), "{}", f.title);
    }

    #[test]
    fn the_collector_is_skipped() {
        let mut p = leaky(5_000, 0, Some(600), Some(1_024), vec![500; 10]);
        p.process.pid = COLLECTOR;
        assert!(run(&FdLeak, &with_fds(vec![p])).is_empty());
    }

    /// A process's open descriptors at one sample a second, as the procfs counter saw them.
    fn counted(counts: &[u64], limit: Option<u64>) -> kerno_core::FdCount {
        kerno_core::FdCount {
            process: proc_(4121, "api"),
            open_fds: *counts.last().unwrap(),
            soft_limit: limit,
            series: Series::from_points(
                counts
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (i as u64 * 1000, *c as f64)),
            ),
        }
    }

    fn with_counts(procs: Vec<kerno_core::FdCount>) -> Signals {
        let mut s = signals();
        s.fd_counts = Some(kerno_core::FdCountSignals {
            processes_counted: procs.len(),
            processes: procs,
        });
        s
    }

    #[test]
    fn without_the_syscall_probe_the_open_counts_show_a_leak() {
        // 1,000 -> 1,400 in 10 s: +40/s, 600 left of 2,000: 15 s to EMFILE.
        let counts: Vec<u64> = (0..=10).map(|i| 1_000 + 40 * i).collect();
        let f = one(run(&FdLeak, &with_counts(vec![counted(&counts, Some(2_000))])));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.title,
            "process `api` (pid 4121) leaks file descriptors: +40/s, 1,400 of 2,000 open, limit in about 15 s"
        );
        assert_eq!(f.eta_secs, Some(15.0));
        assert!(f.cause.contains("/proc/4121/fd"), "{}", f.cause);
        assert!(f.cause.contains("grew in 10 of 10"), "{}", f.cause);
        assert!(
            !f.cause.contains("created") && !f.evidence.iter().any(|e| e.contains("closed")),
            "no opens or closes claimed: {f:#?}"
        );
        // A far limit warns; the growth threshold is strict as with the probe.
        let f = one(run(&FdLeak, &with_counts(vec![counted(&counts, Some(1_000_000))])));
        assert_eq!(f.severity, Severity::Warning);
        let exactly: Vec<u64> = (0..=10).map(|i| 1_000 + 10 * i).collect();
        assert!(run(&FdLeak, &with_counts(vec![counted(&exactly, None)])).is_empty());
    }

    #[test]
    fn open_counts_of_a_burst_or_a_steady_process_are_not_leaks() {
        let burst = [100, 350, 600, 600, 600, 600, 600, 600, 600, 600, 600];
        assert!(run(&FdLeak, &with_counts(vec![counted(&burst, Some(1_024))])).is_empty());
        assert!(run(&FdLeak, &with_counts(vec![counted(&[50; 11], Some(1_024))])).is_empty());
        let mut me = counted(&(0..=10).map(|i| 40 * i).collect::<Vec<_>>(), None);
        me.process.pid = COLLECTOR;
        assert!(run(&FdLeak, &with_counts(vec![me])).is_empty());
    }

    #[test]
    fn the_syscall_probe_wins_over_the_open_counts() {
        let counts: Vec<u64> = (0..=10).map(|i| 1_000 + 40 * i).collect();
        let mut s = with_counts(vec![counted(&counts, Some(2_000))]);
        s.fds = Some(FdSignals { processes: vec![] });
        assert!(run(&FdLeak, &s).is_empty());
    }
}
