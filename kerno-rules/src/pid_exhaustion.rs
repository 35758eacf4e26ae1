//! `pid-exhaustion`: a pids cgroup (or the host) is running out of process ids, so fork()
//! and thread creation fail.

use kerno_core::{
    CgroupPids, Finding, PidSignals, Rule, Severity, Signals, Subject, ThresholdSpec, Thresholds,
    human_secs, thousands,
};

use crate::common::{finding, fmt_pct, grade, pct, systemd_unit};

/// A pids cgroup with more than `pids_cgroup_pct` of its `pids.max` in use warns; one at
/// its limit, or whose forks were refused (`pids.events` `max` rising by more than
/// `pids_fork_failures` in the window), is critical. The host's tasks above
/// `pids_host_warn_pct` of the smaller of `kernel.pid_max` and `kernel.threads-max` warn,
/// above `pids_host_crit_pct` they are critical.
pub struct PidExhaustion;

/// The rule's id.
pub const ID: &str = "pid-exhaustion";

/// `pids_cgroup_pct`: a pids cgroup using more than this share of `pids.max` warns (%).
pub const PIDS_CGROUP_PCT: ThresholdSpec = ThresholdSpec::number(
    "pids_cgroup_pct",
    90.0,
    "%",
    0.0,
    100.0,
    "a pids cgroup with more than this share of pids.max in use warns (at the limit it is critical)",
);
/// `pids_fork_failures`: more refused forks than this in the window are critical.
pub const PIDS_FORK_FAILURES: ThresholdSpec = ThresholdSpec::count(
    "pids_fork_failures",
    0,
    "forks",
    "more forks refused at a pids cgroup's limit (pids.events max) than this in the window are critical",
);
/// `pids_host_warn_pct`: host tasks above this share of the pid/thread limit warn (%).
pub const PIDS_HOST_WARN_PCT: ThresholdSpec = ThresholdSpec::number(
    "pids_host_warn_pct",
    80.0,
    "%",
    0.0,
    100.0,
    "the host's tasks above this share of min(kernel.pid_max, kernel.threads-max) warn",
);
/// `pids_host_crit_pct`: ... are critical above this share (%).
pub const PIDS_HOST_CRIT_PCT: ThresholdSpec = ThresholdSpec::number(
    "pids_host_crit_pct",
    95.0,
    "%",
    0.0,
    100.0,
    "the host's tasks above this share of min(kernel.pid_max, kernel.threads-max) are critical",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[
    PIDS_CGROUP_PCT,
    PIDS_FORK_FAILURES,
    PIDS_HOST_WARN_PCT,
    PIDS_HOST_CRIT_PCT,
];

/// The directory of a pids cgroup under the usual mount points.
fn pids_dir(c: &CgroupPids) -> String {
    let path = if c.path == "/" { "" } else { c.path.as_str() };
    if c.version == 1 {
        format!("/sys/fs/cgroup/pids{path}")
    } else {
        format!("/sys/fs/cgroup{path}")
    }
}

fn cgroup_subject(c: &CgroupPids, collector_pid: u32) -> Subject {
    let pod = c.attribution.pod();
    Subject {
        kind: "cgroup".into(),
        name: pod.clone().unwrap_or_else(|| c.path.clone()),
        process: c
            .processes
            .iter()
            .find(|p| p.pid != collector_pid || collector_pid == 0)
            .cloned(),
        cgroup: Some(c.path.clone()),
        pod,
        attribution: c.attribution.clone(),
        node: None,
    }
}

fn cgroup_finding(c: &CgroupPids, s: &Signals, t: &Thresholds) -> Option<Finding> {
    let fill = pct(c.current, c.limit);
    let allowed = t.count(&PIDS_FORK_FAILURES);
    let failing = c.fork_failures > allowed;
    let at_limit = c.limit > 0 && c.current >= c.limit;
    let warn = fill > t.number(&PIDS_CGROUP_PCT);
    if !(failing || at_limit || warn) {
        return None;
    }
    let severity = if failing || at_limit {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let subject = cgroup_subject(c, s.collector_pid);
    let name = match &subject.pod {
        Some(pod) => format!("pod {pod}"),
        None => format!("cgroup {}", c.path),
    };
    let mut f = finding(ID, severity, subject);
    f.title = if failing {
        format!(
            "{name} cannot fork: {} forks refused at its pids limit in the window ({} of {} tasks)",
            thousands(c.fork_failures),
            thousands(c.current),
            thousands(c.limit)
        )
    } else {
        format!(
            "{name} is {} of the way to its pids limit: {} of {} tasks; the next forks will fail",
            fmt_pct(fill),
            thousands(c.current),
            thousands(c.limit)
        )
    };
    f.cause = "Every process and every thread takes one of the cgroup's pids (pids.max; in Kubernetes the kubelet's --pod-max-pids, in systemd TasksMax=). At the limit, fork(), clone() and pthread_create() fail with EAGAIN. Usually a process leaks threads or children (zombies not reaped, a thread per request with no pool), or the limit is too low for the workload.".into();
    f.impact = "New processes and threads cannot start in it: shells print `fork: retry: Resource temporarily unavailable`, servers cannot spawn workers or threads and refuse or drop requests, JVMs die with `unable to create native thread`.".into();
    f.evidence.push(format!(
        "{} of {} tasks ({}) in cgroup {} (v{}); {} at the start of the {} window",
        thousands(c.current),
        thousands(c.limit),
        fmt_pct(fill),
        c.path,
        c.version,
        thousands(c.current_start),
        human_secs(s.window_secs())
    ));
    f.evidence.push(format!(
        "forks refused at the limit in the window: {} (pids.events max)",
        thousands(c.fork_failures)
    ));
    let procs: Vec<String> = c
        .processes
        .iter()
        .filter(|p| p.pid != s.collector_pid)
        .map(|p| format!("{} (pid {})", p.comm, p.pid))
        .collect();
    if !procs.is_empty() {
        f.evidence
            .push(format!("processes in it include {}", procs.join(", ")));
    }
    (f.value, f.threshold, f.unit) = if failing {
        (c.fork_failures as f64, allowed as f64, "forks".into())
    } else {
        (fill, t.number(&PIDS_CGROUP_PCT), "%".into())
    };
    let dir = pids_dir(c);
    f.fix.push(format!(
        "grep . {dir}/pids.current {dir}/pids.max {dir}/pids.events  # in use, limit, refused forks"
    ));
    f.fix.push(format!(
        "for p in $(cat {dir}/cgroup.procs); do echo \"$(ls /proc/$p/task 2>/dev/null | wc -l) $p $(cat /proc/$p/comm 2>/dev/null)\"; done | sort -rn | head  # threads per process"
    ));
    f.fix.push("ps -eo stat,ppid,pid,comm | awk '$1 ~ /^Z/'  # zombies: children their parent never reaped".into());
    if let Some((ns, pod)) = f.subject.pod.clone().as_deref().and_then(|p| p.split_once('/')) {
        f.fix.push(format!(
            "kubectl -n {ns} describe pod {pod}  # then fix the leak, or raise the kubelet's podPidsLimit"
        ));
    } else if let Some(unit) = systemd_unit(&c.path) {
        f.fix.push(format!(
            "systemctl set-property {unit} TasksMax=<n>  # more room if the workload needs it"
        ));
    }
    f.fix.push(format!(
        "echo <n> > {dir}/pids.max  # raise the limit, once the leak (if any) is understood"
    ));
    Some(f)
}

fn host_finding(p: &PidSignals, s: &Signals, t: &Thresholds) -> Option<Finding> {
    let limit = p.host_limit();
    if limit == 0 {
        return None;
    }
    let fill = pct(p.threads, limit);
    let (severity, threshold) = grade(
        fill,
        t.number(&PIDS_HOST_WARN_PCT),
        t.number(&PIDS_HOST_CRIT_PCT),
    )?;
    let which = if p.threads_max > 0 && p.threads_max < p.pid_max {
        "kernel.threads-max"
    } else {
        "kernel.pid_max"
    };
    let mut f = finding(ID, severity, Subject::host(&s.host.hostname));
    f.title = format!(
        "host {} is running out of process ids: {} tasks of {which} {} ({})",
        s.host.hostname,
        thousands(p.threads),
        thousands(limit),
        fmt_pct(fill)
    );
    f.cause = "Every process and thread on the host takes a pid; the kernel refuses new ones at kernel.pid_max (pids are numbered below it) or kernel.threads-max. Thousands of threads or unreaped children on one host usually come from a leak in one service.".into();
    f.impact = "When they run out, fork() and thread creation fail everywhere on the host, including sshd, the kubelet and the container runtime: nothing new can start and recovery needs an existing shell.".into();
    f.evidence.push(format!(
        "{} tasks at the end of the window, {} at the start; kernel.pid_max {}, kernel.threads-max {}",
        thousands(p.threads),
        thousands(p.threads_start),
        thousands(p.pid_max),
        thousands(p.threads_max)
    ));
    f.value = fill;
    f.threshold = threshold;
    f.unit = "%".into();
    f.fix.push("ps -eo nlwp,pid,comm --sort=-nlwp | head  # the processes with the most threads".into());
    f.fix.push("ps -eo stat,ppid,pid,comm | awk '$1 ~ /^Z/' | awk '{print $2}' | sort | uniq -c | sort -rn | head  # parents not reaping their children".into());
    f.fix.push(format!(
        "sysctl -w kernel.pid_max=4194304  # more room (the 64-bit maximum), while the leak is found; now {}",
        thousands(p.pid_max)
    ));
    Some(f)
}

impl Rule for PidExhaustion {
    fn id(&self) -> &str {
        ID
    }

    fn description(&self) -> &str {
        "a pids cgroup above pids_cgroup_pct of pids.max (critical at the limit or with more than pids_fork_failures refused forks), or the host's tasks above pids_host_warn_pct of pid_max/threads-max"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Every pids cgroup with a limit: tasks above pids_cgroup_pct of pids.max warn; at the limit, or more than pids_fork_failures refused forks (pids.events max) in the window, it is critical. The host: tasks above pids_host_warn_pct of min(pid_max, threads-max) warn, above pids_host_crit_pct critical.".into(),
            when_it_fires: vec![
                "Find who forks: ps -eLf | awk '{print $2}' | sort | uniq -c | sort -rn | head, and cat <cgroup>/pids.current <cgroup>/pids.max.".into(),
                "Stop the runaway (a fork loop, threads never joined, zombies a parent never reaps: ps -eo stat,ppid | grep '^Z').".into(),
                "Raise the limit (the pod's pids limit, TasksMax=, kernel.pid_max) only if the task count is legitimate.".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let Some(p) = &s.pids else {
            return Vec::new();
        };
        let mut out: Vec<Finding> = host_finding(p, s, t).into_iter().collect();
        // A parent whose child holds the same limit and fired says the same thing less
        // precisely.
        let fired: Vec<&CgroupPids> = p
            .cgroups
            .iter()
            .filter(|c| c.limit > 0)
            .filter(|c| cgroup_finding(c, s, t).is_some())
            .collect();
        for c in &fired {
            let shadowed = fired.iter().any(|d| {
                d.path != c.path
                    && d.path.starts_with(&format!("{}/", c.path.trim_end_matches('/')))
                    && d.limit == c.limit
            });
            if !shadowed {
                out.extend(cgroup_finding(c, s, t));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    fn cg(path: &str, current: u64, limit: u64, failures: u64) -> CgroupPids {
        CgroupPids {
            path: path.into(),
            version: 1,
            current_start: current,
            current,
            limit,
            fork_failures: failures,
            processes: vec![proc_(4121, "forker")],
            ..CgroupPids::default()
        }
    }

    fn with(threads: u64, cgroups: Vec<CgroupPids>) -> Signals {
        let mut s = signals();
        s.pids = Some(PidSignals {
            pid_max: 32768,
            threads_max: 192_724,
            threads_start: threads,
            threads,
            threads_series: Default::default(),
            cgroups,
        });
        s
    }

    #[test]
    fn roomy_is_quiet() {
        assert!(run(&PidExhaustion, &signals()).is_empty());
        assert!(run(&PidExhaustion, &with(400, vec![cg("/a", 40, 100, 0)])).is_empty());
    }

    #[test]
    fn near_the_limit_warns_and_at_it_is_critical() {
        assert!(run(&PidExhaustion, &with(400, vec![cg("/a", 90, 100, 0)])).is_empty());
        let f = one(run(&PidExhaustion, &with(400, vec![cg("/a", 91, 100, 0)])));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject.kind, "cgroup");
        assert_eq!(f.subject.process.as_ref().map(|p| p.pid), Some(4121));
        assert_eq!(
            f.title,
            "cgroup /a is 91% of the way to its pids limit: 91 of 100 tasks; the next forks will fail"
        );
        assert!(f.fix[0].starts_with("grep . /sys/fs/cgroup/pids/a/pids.current"));
        let f = one(run(&PidExhaustion, &with(400, vec![cg("/a", 100, 100, 0)])));
        assert_eq!(f.severity, Severity::Critical);
    }

    #[test]
    fn refused_forks_are_critical() {
        let f = one(run(&PidExhaustion, &with(400, vec![cg("/a", 64, 64, 250)])));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.title,
            "cgroup /a cannot fork: 250 forks refused at its pids limit in the window (64 of 64 tasks)"
        );
        assert_eq!((f.value, f.threshold, f.unit.as_str()), (250.0, 0.0, "forks"));
        // Forks refused earlier (a cgroup that shrank back) but with room now: only the
        // failures speak, and a tolerance silences them.
        let t = Thresholds::default()
            .with(&PIDS_FORK_FAILURES, 300u64)
            .unwrap();
        assert!(run_with(&PidExhaustion, &with(400, vec![cg("/a", 10, 64, 250)]), &t).is_empty());
    }

    #[test]
    fn a_parent_with_the_same_limit_is_shadowed() {
        let out = run(
            &PidExhaustion,
            &with(
                400,
                vec![cg("/pod1", 64, 64, 3), cg("/pod1/ctr", 64, 64, 3), cg("/pod10", 64, 64, 3)],
            ),
        );
        let paths: Vec<_> = out.iter().map(|f| f.subject.cgroup.clone().unwrap()).collect();
        assert_eq!(paths, ["/pod1/ctr", "/pod10"]);
    }

    #[test]
    fn the_host() {
        assert!(run(&PidExhaustion, &with(26_214, vec![])).is_empty());
        let f = one(run(&PidExhaustion, &with(26_215, vec![])));
        assert_eq!((f.severity, f.subject.kind.as_str()), (Severity::Warning, "host"));
        assert_eq!(
            f.title,
            "host node-1 is running out of process ids: 26,215 tasks of kernel.pid_max 32,768 (80%)"
        );
        let f = one(run(&PidExhaustion, &with(31_500, vec![])));
        assert_eq!(f.severity, Severity::Critical);
    }
}
