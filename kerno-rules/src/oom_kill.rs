//! `oom-kill`: the kernel's OOM killer killed a process in the window.

use kerno_core::{
    CgroupMemory, Finding, MemorySignals, OomKill, Rule, Severity, Signals, Subject, Thresholds,
    human_bytes, render::utc, thousands,
};

use crate::common::{cgroup_dir, finding, proc_name, proc_where, systemd_unit};

/// Any OOM kill is critical: one finding per victim the probe recorded. When the probe
/// recorded none but the kernel's own `oom_kill` counter moved, one host-level finding says
/// so, naming the cgroups that counted kills.
pub struct OomKills;

/// The rule's id.
pub const ID: &str = "oom-kill";

/// The memory cgroup a victim was in, when the memory signals list it: its own cgroup or the
/// closest ancestor with a limit.
fn victim_cgroup<'a>(k: &OomKill, memory: Option<&'a MemorySignals>) -> Option<&'a CgroupMemory> {
    let path = k.process.cgroup.as_deref()?;
    memory?
        .cgroups
        .iter()
        .filter(|c| {
            path == c.path || path.starts_with(&format!("{}/", c.path.trim_end_matches('/')))
        })
        .max_by_key(|c| c.path.len())
}

fn rss(k: &OomKill) -> u64 {
    k.anon_rss_bytes + k.file_rss_bytes + k.shmem_rss_bytes
}

fn kill_finding(k: &OomKill, s: &Signals, recorded: usize, vmstat: u64) -> Finding {
    let p = &k.process;
    let cg = victim_cgroup(k, s.memory.as_ref());
    let limit = k.cgroup_limit_bytes.or(cg.map(|c| c.limit_bytes));
    let mut f = finding(ID, Severity::Critical, Subject::process(p));
    let place = match (&p.pod, &p.cgroup) {
        (Some(pod), _) => format!(" in pod {pod}"),
        (None, Some(c)) if c != "/" => format!(" in cgroup {c}"),
        _ => String::new(),
    };
    f.title = format!(
        "OOM killer killed {}{place}: {} resident at the kill",
        proc_name(p),
        human_bytes(rss(k))
    );
    if let Some(l) = limit {
        f.title += &format!(", memory limit {}", human_bytes(l));
    }
    f.cause = match (limit, cg) {
        (Some(l), Some(c)) => format!(
            "The memory cgroup {} reached its limit of {} and the kernel could not reclaim enough, so the OOM killer chose the process with the highest OOM score in it and killed it.",
            c.path,
            human_bytes(l)
        ),
        (Some(l), None) => format!(
            "The process's memory cgroup reached its limit of {} and the kernel could not reclaim enough, so the OOM killer chose the process with the highest OOM score in it and killed it.",
            human_bytes(l)
        ),
        _ => "The kernel could not find memory to reclaim for an allocation (the host, or a memory cgroup without a limit Kerno could read, ran out), so the OOM killer chose the process with the highest OOM score and killed it.".into(),
    };
    f.impact = "The process died with SIGKILL: requests in flight were lost and nothing was flushed or cleaned up. A supervisor (systemd, the kubelet) restarts it, and it is killed again if its memory demand does not change (OOMKilled, then CrashLoopBackOff in Kubernetes).".into();
    f.evidence.push(format!("killed at {}", utc(k.at_unix_ms)));
    f.evidence.push(format!(
        "resident memory at the kill: {} (anonymous {}, file {}, shared {}); virtual {}",
        human_bytes(rss(k)),
        human_bytes(k.anon_rss_bytes),
        human_bytes(k.file_rss_bytes),
        human_bytes(k.shmem_rss_bytes),
        human_bytes(k.total_vm_bytes)
    ));
    if let Some(l) = limit {
        f.evidence
            .push(format!("memory limit of its cgroup: {}", human_bytes(l)));
    }
    if let Some(c) = cg {
        f.evidence.push(format!(
            "cgroup {} now uses {} of {}; {} OOM kill(s) counted there in the window",
            c.path,
            human_bytes(c.usage_bytes),
            human_bytes(c.limit_bytes),
            thousands(c.oom_kills)
        ));
    }
    if let Some(w) = proc_where(p) {
        f.evidence.push(format!("victim ran in {w}"));
    }
    if vmstat as usize > recorded {
        f.evidence.push(format!(
            "the kernel counted {} OOM kills in the window, the probe recorded {recorded}",
            thousands(vmstat)
        ));
    }
    f.value = 1.0;
    f.threshold = 0.0;
    f.unit = "kill".into();
    f.fix.push(
        "journalctl -k --no-pager | grep -iE 'out of memory|oom-kill|killed process' | tail -n 20  # the kernel's account: the allocation, the cgroup, the victim"
            .into(),
    );
    match cg {
        Some(c) if c.version == 1 => f.fix.push(format!(
            "grep . {dir}/memory.{{max_usage_in_bytes,limit_in_bytes,failcnt}}  # peak, limit, times the limit was hit",
            dir = cgroup_dir(1, &c.path)
        )),
        Some(c) => f.fix.push(format!(
            "grep . {dir}/memory.{{events,peak}}  # how often it hit memory.high/max, OOM kills, the peak",
            dir = cgroup_dir(2, &c.path)
        )),
        None => {
            if let Some(path) = &p.cgroup {
                f.fix.push(format!(
                    "cat {}/memory.events  # cgroup v2: how often it hit its limit, OOM kills",
                    cgroup_dir(2, path)
                ));
            }
        }
    }
    if let Some((ns, name)) = p.pod.as_deref().and_then(|pod| pod.split_once('/')) {
        f.fix.push(format!(
            "kubectl -n {ns} describe pod {name}  # Last State: OOMKilled, restarts, the memory limit"
        ));
        f.fix.push("Raise resources.limits.memory if the working set is legitimately larger, or find what grows: a heap, a cache without a bound, a leak.".into());
    } else if let Some(unit) = p.cgroup.as_deref().and_then(systemd_unit) {
        f.fix
            .push(format!("systemctl status {unit}  # restarted? how often?"));
        f.fix.push(format!(
            "systemctl set-property {unit} MemoryMax=<bytes>  # if the working set is legitimately larger than the limit"
        ));
    }
    if !p.comm.is_empty() && p.comm != "?" {
        f.fix.push(format!(
            "watch -n 5 'ps -o pid,rss,vsz,cmd -C {}'  # after the restart: memory that only grows is a leak",
            p.comm
        ));
    }
    f
}

fn uncounted_finding(s: &Signals, oom_kills: u64) -> Finding {
    let mut f = finding(ID, Severity::Critical, Subject::host(&s.host.hostname));
    let n = thousands(oom_kills);
    let counted: Vec<&CgroupMemory> = s
        .memory
        .iter()
        .flat_map(|m| &m.cgroups)
        .filter(|c| c.oom_kills > 0)
        .collect();
    f.title = format!(
        "the kernel OOM-killed {n} process{} in the window; the probe did not record {}",
        if oom_kills == 1 { "" } else { "es" },
        if oom_kills == 1 { "it" } else { "them" },
    );
    if let Some(c) = counted.first() {
        f.title += &format!(" (cgroup {})", c.path);
    }
    f.cause = "The OOM killer ran: an allocation found no memory to reclaim, on the host or in a memory cgroup at its limit, and the kernel killed a process to free some. The OOM probe recorded no victim (it was not attached yet, or its events were lost), so who died is not known from this window.".into();
    f.impact = "A process died with SIGKILL, losing its requests in flight; if it is supervised it restarts and may be killed again.".into();
    f.evidence.push(format!(
        "oom_kill in /proc/vmstat grew by {n} during the window"
    ));
    for c in &counted {
        f.evidence.push(format!(
            "cgroup {} counted {} kill(s); it uses {} of {}",
            c.path,
            thousands(c.oom_kills),
            human_bytes(c.usage_bytes),
            human_bytes(c.limit_bytes)
        ));
    }
    if s.lost.oom_kills > 0 {
        f.evidence.push(format!(
            "{} OOM events were lost in the probe's ring buffer",
            thousands(s.lost.oom_kills)
        ));
    }
    f.value = oom_kills as f64;
    f.threshold = 0.0;
    f.unit = if oom_kills == 1 { "kill" } else { "kills" }.into();
    f.fix.push("journalctl -k --no-pager | grep -iE 'out of memory|oom-kill|killed process' | tail -n 20  # who was killed, in which cgroup".into());
    f.fix
        .push("grep oom_kill /proc/vmstat  # the kernel's running count".into());
    if s.host.environment == "kubernetes" {
        f.fix.push(
            "kubectl get pods -A | grep -E 'OOMKilled|CrashLoopBackOff'  # the pods that died"
                .into(),
        );
    }
    f
}

impl Rule for OomKills {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(crate::common::RATE_WINDOW)
    }

    fn description(&self) -> &str {
        "any OOM kill in the window (one finding per victim; the kernel's counter when the probe saw none)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Whether the kernel's OOM killer killed a process in the window: any OOM kill is critical, one finding per victim the probe recorded, with its memory cgroup and limit. When the probe recorded none but the kernel's oom_kill counter moved, one host-level finding says so, naming the cgroups that counted kills. It has no threshold: a kill is never normal.".into(),
            when_it_fires: vec![
                "Read the kernel's own report of the kill: kerno explain (or dmesg | grep -A40 'invoked oom-killer') names the victim, its cgroup or pod, and usage against limit.".into(),
                "Compare the cgroup's peak with its limit (memory.max_usage_in_bytes or memory.peak) and check the pod's restarts (kubectl describe pod: Last State OOMKilled).".into(),
                "Raise the memory limit if the working set is legitimately larger, or fix what grows; set runtime heap limits below the cgroup limit.".into(),
            ],
        }
    }

    fn evaluate(&self, s: &Signals, _t: &Thresholds) -> Vec<Finding> {
        let Some(oom) = &s.oom else {
            return Vec::new();
        };
        let recorded = oom.kills.len();
        let mut out: Vec<Finding> = oom
            .kills
            .iter()
            .filter(|k| k.process.pid != s.collector_pid || s.collector_pid == 0)
            .map(|k| kill_finding(k, s, recorded, oom.vmstat_oom_kills))
            .collect();
        if oom.kills.is_empty() && oom.vmstat_oom_kills > 0 {
            out.push(uncounted_finding(s, oom.vmstat_oom_kills));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::{MemorySignals, OomSignals, Process};

    use super::*;
    use crate::testutil::*;

    fn kill(pid: u32, comm: &str, cgroup: Option<&str>) -> OomKill {
        OomKill {
            process: Process {
                cgroup: cgroup.map(String::from),
                ..proc_(pid, comm)
            },
            at_unix_ms: 1_796_000_004_000,
            anon_rss_bytes: 1900 << 20,
            file_rss_bytes: 12 << 20,
            shmem_rss_bytes: 0,
            total_vm_bytes: 3 << 30,
            cgroup_limit_bytes: None,
        }
    }

    fn with_kills(kills: Vec<OomKill>, vmstat: u64) -> Signals {
        let mut s = signals();
        s.oom = Some(OomSignals {
            kills,
            vmstat_oom_kills: vmstat,
        });
        s
    }

    #[test]
    fn no_kills_no_findings() {
        assert!(run(&OomKills, &with_kills(vec![], 0)).is_empty());
        assert!(
            run(&OomKills, &signals()).is_empty(),
            "not observed: nothing to say"
        );
    }

    #[test]
    fn each_kill_is_critical() {
        let s = with_kills(
            vec![kill(8812, "java", None), kill(8813, "python3", None)],
            2,
        );
        let out = run(&OomKills, &s);
        assert_eq!(out.len(), 2);
        assert!(out.iter().all(|f| f.severity == Severity::Critical));
        assert_eq!(out[0].subject.process.as_ref().unwrap().pid, 8812);
        assert_eq!(
            out[0].title,
            "OOM killer killed `java` (pid 8812): 1.9 GiB resident at the kill"
        );
        assert!(
            out[0]
                .evidence
                .iter()
                .any(|e| e.contains("anonymous 1.9 GiB"))
        );
        assert!(out[0].fix.iter().any(|x| x.contains("-C java")));
    }

    #[test]
    fn kill_in_a_limited_cgroup_names_the_limit() {
        let path = "/system.slice/api.service";
        let mut s = with_kills(vec![kill(4121, "api", Some(path))], 1);
        s.memory = Some(MemorySignals {
            cgroups: vec![CgroupMemory {
                path: path.into(),
                version: 2,
                usage_start_bytes: 1 << 30,
                usage_bytes: 100 << 20,
                limit_bytes: 2 << 30,
                oom_kills: 1,
                ..CgroupMemory::default()
            }],
            ..MemorySignals::default()
        });
        let f = one(run(&OomKills, &s));
        assert!(f.title.ends_with("memory limit 2.0 GiB"), "{}", f.title);
        assert!(
            f.title.contains("in cgroup /system.slice/api.service"),
            "{}",
            f.title
        );
        assert!(
            f.cause.contains("reached its limit of 2.0 GiB"),
            "{}",
            f.cause
        );
        assert!(f.fix.iter().any(|x| {
            x.starts_with("grep . /sys/fs/cgroup/system.slice/api.service/memory.{events,peak}")
        }));
        assert!(
            f.fix
                .iter()
                .any(|x| x.starts_with("systemctl status api.service"))
        );
    }

    #[test]
    fn pod_victims_get_kubectl() {
        let mut k = kill(77, "node", Some("/kubepods/burstable/podabc/ctr"));
        k.process.pod = Some("shop/cart-7d9f".into());
        k.cgroup_limit_bytes = Some(512 << 20);
        let f = one(run(&OomKills, &with_kills(vec![k], 1)));
        assert!(f.title.contains("in pod shop/cart-7d9f"), "{}", f.title);
        assert!(
            f.fix
                .iter()
                .any(|x| x.starts_with("kubectl -n shop describe pod cart-7d9f"))
        );
        assert_eq!(f.subject.pod.as_deref(), Some("shop/cart-7d9f"));
    }

    #[test]
    fn kernel_counted_kills_the_probe_missed() {
        let f = one(run(&OomKills, &with_kills(vec![], 2)));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.subject.kind, "host");
        assert_eq!(f.value, 2.0);
        assert!(f.title.contains("did not record them"), "{}", f.title);
        let f = one(run(&OomKills, &with_kills(vec![], 1)));
        assert!(
            f.title
                .starts_with("the kernel OOM-killed 1 process in the window"),
            "{}",
            f.title
        );
    }

    #[test]
    fn missing_kills_are_noted_on_recorded_ones() {
        let f = one(run(&OomKills, &with_kills(vec![kill(1, "a", None)], 3)));
        assert!(f.evidence.iter().any(|e| e.contains("counted 3 OOM kills")));
    }

    #[test]
    fn the_collector_is_never_a_subject() {
        assert!(
            run(
                &OomKills,
                &with_kills(vec![kill(COLLECTOR, "kerno", None)], 1)
            )
            .is_empty()
        );
    }
}
