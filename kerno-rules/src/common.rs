//! Small helpers the rules share: units, names of things, and the pieces of a finding that
//! every rule phrases the same way.

use kerno_core::{
    CgroupMemory, Finding, Histogram, Process, Series, Severity, Signals, Subject, human_bytes,
    human_ns, thousands, trend::Trend,
};

/// The short window of a rule over a rate, a percentile, a pressure average or an event
/// count ([`kerno_core::Rule::min_window`]): a few seconds hold enough samples for each at
/// the default thresholds, and it is the doctor window the benign corpus
/// (`tests/root_benign.rs`) holds every rule silent over, so evaluating it in the agent adds
/// no noise that corpus has not been checked against.
pub(crate) const RATE_WINDOW: std::time::Duration = std::time::Duration::from_secs(6);

/// Nanoseconds to milliseconds.
pub(crate) fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

/// `n / d` as a percentage (0 when `d` is 0).
pub(crate) fn pct(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 * 100.0 / d as f64
    }
}

/// A percentage for prose: `4.8%`, `0.35%`, `96%`.
pub(crate) fn fmt_pct(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}%")
    } else if v >= 1.0 {
        format!("{v:.1}%")
    } else {
        format!("{v:.2}%")
    }
}

/// A rate for prose: `37`, `4.5`, `1,200`.
pub(crate) fn fmt_rate(v: f64) -> String {
    if v >= 1000.0 {
        thousands(v.round() as u64)
    } else if v.abs() >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// A byte rate: `1.2 MiB/s`.
pub(crate) fn fmt_byte_rate(bytes_per_sec: f64) -> String {
    format!("{}/s", human_bytes(bytes_per_sec.max(0.0).round() as u64))
}

/// A histogram percentile as a human duration (`-` when empty).
pub(crate) fn p(h: &Histogram, q: f64) -> String {
    h.percentile(q)
        .map(|v| human_ns(v as f64))
        .unwrap_or_else(|| "-".into())
}

/// `p50 1.20 ms, p90 3.40 ms, p99 62.13 ms, max 210.00 ms`.
pub(crate) fn percentiles(h: &Histogram) -> String {
    format!(
        "p50 {}, p90 {}, p99 {}, max {}",
        p(h, 50.0),
        p(h, 90.0),
        p(h, 99.0),
        h.max()
            .map(|v| human_ns(v as f64))
            .unwrap_or_else(|| "-".into()),
    )
}

/// `p50 1.20 ms, p90 3.40 ms, p99 62.13 ms, max 210.00 ms over 1,234 samples`.
pub(crate) fn latency_line(h: &Histogram, samples: &str) -> String {
    format!("{} over {} {samples}", percentiles(h), thousands(h.count()))
}

/// The severity a value earns against a warning and a critical threshold (strictly above
/// each), with the threshold it crossed; `None` when it is at or below the warning
/// threshold (a finding needs that one crossed whatever the critical one says).
pub(crate) fn grade(value: f64, warn: f64, crit: f64) -> Option<(Severity, f64)> {
    if value > warn && value > crit {
        Some((Severity::Critical, crit))
    } else if value > warn {
        Some((Severity::Warning, warn))
    } else {
        None
    }
}

/// A process in prose: `` `api` (pid 4121) ``.
pub(crate) fn proc_name(p: &Process) -> String {
    format!("`{}` (pid {})", p.comm, p.pid)
}

/// Where a process lives, for evidence: `pod shop/cart-7d9f, cgroup /kubepods/...`.
pub(crate) fn proc_where(p: &Process) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(pod) = &p.pod {
        parts.push(format!("pod {pod}"));
    }
    if let Some(c) = &p.container {
        parts.push(format!("container {}", short_id(c)));
    }
    if let Some(cg) = &p.cgroup {
        parts.push(format!("cgroup {cg}"));
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Container ids are 64 hex digits; 12 are enough to find one (`crictl ps`, `docker ps`).
fn short_id(id: &str) -> &str {
    if id.len() > 12 && id.chars().all(|c| c.is_ascii_hexdigit()) {
        &id[..12]
    } else {
        id
    }
}

/// The directory of a memory cgroup under the usual mount points.
pub(crate) fn cgroup_dir(version: u8, path: &str) -> String {
    let path = if path == "/" { "" } else { path };
    if version == 1 {
        format!("/sys/fs/cgroup/memory{path}")
    } else {
        format!("/sys/fs/cgroup{path}")
    }
}

/// A cgroup in prose: `pod shop/cart-7d9f` when it is one, else `cgroup /system.slice/x`.
pub(crate) fn cgroup_name(c: &CgroupMemory) -> String {
    match &c.pod {
        Some(pod) => format!("pod {pod}"),
        None => format!("cgroup {}", c.path),
    }
}

/// The systemd unit a cgroup path ends in, if any (`api.service`).
pub(crate) fn systemd_unit(path: &str) -> Option<&str> {
    let last = path.rsplit('/').next()?;
    (last.ends_with(".service") || last.ends_with(".scope")).then_some(last)
}

/// A memory cgroup as the subject of a finding (its first process other than the collector
/// attached, so a reader sees who lives there).
pub(crate) fn cgroup_subject(c: &CgroupMemory, collector_pid: u32) -> Subject {
    Subject {
        kind: "cgroup".into(),
        name: c.pod.clone().unwrap_or_else(|| c.path.clone()),
        process: c
            .processes
            .iter()
            .find(|p| p.pid != collector_pid || collector_pid == 0)
            .cloned(),
        cgroup: Some(c.path.clone()),
        pod: c.pod.clone(),
        attribution: c.attribution.clone(),
        node: None,
    }
}

/// Of the cgroups that fired, drop a parent whose child fired with the same limit: the child
/// is the more specific name for the same problem (a one-container pod and its container).
pub(crate) fn drop_shadowed(fired: &mut Vec<&CgroupMemory>) {
    let keep: Vec<bool> = fired
        .iter()
        .map(|parent| {
            let prefix = format!("{}/", parent.path.trim_end_matches('/'));
            !fired.iter().any(|child| {
                child.path.starts_with(&prefix) && child.limit_bytes == parent.limit_bytes
            })
        })
        .collect();
    let mut it = keep.into_iter();
    fired.retain(|_| it.next().unwrap_or(true));
}

/// Something with a memory limit: a cgroup, or the host (its limit is its memory). What
/// counts against the limit is the working set (usage minus inactive page cache, as the
/// kubelet decides evictions) for a cgroup, and total − `MemAvailable` for the host: page
/// cache the kernel can drop at the limit is not memory that runs out.
pub(crate) struct MemTarget<'a> {
    /// The cgroup, `None` for the host.
    pub cg: Option<&'a CgroupMemory>,
    /// What counts at the start of the window, bytes.
    pub start: u64,
    /// What counts at the end, bytes.
    pub usage: u64,
    /// The limit, bytes.
    pub limit: u64,
    /// What counts, about once a second (empty for a window saved without series).
    pub series: &'a Series,
}

impl<'a> MemTarget<'a> {
    fn cgroup(c: &'a CgroupMemory) -> Self {
        MemTarget {
            cg: Some(c),
            start: c.working_set_start(),
            usage: c.working_set(),
            limit: c.limit_bytes,
            series: c.working_set_or_usage_series(),
        }
    }

    /// Usage as a share of the limit, percent.
    pub fn fill_pct(&self) -> f64 {
        if self.limit == 0 {
            0.0
        } else {
            self.usage as f64 * 100.0 / self.limit as f64
        }
    }

    /// Growth over the window, bytes per second (negative when it shrank).
    pub fn growth_per_sec(&self, window_secs: f64) -> f64 {
        (self.usage as f64 - self.start as f64) / window_secs.max(0.001)
    }

    /// Growth that goes on, bytes per second: the trend of the series when it has three
    /// points or more ([`Trend::sustained`]: at least `min_per_sec`, a good fit, mostly
    /// rising, no sawtooth), else the two ends of the window (at least `min_per_sec`).
    pub fn sustained_growth(&self, window_secs: f64, min_per_sec: f64) -> Option<f64> {
        match Trend::of(self.series).filter(|t| t.points >= 3) {
            Some(t) => t.sustained(min_per_sec).then_some(t.slope_per_sec),
            None => {
                let g = self.growth_per_sec(window_secs);
                (g > 0.0 && g >= min_per_sec).then_some(g)
            }
        }
    }

    /// What counts against the limit, in words: `working set` (a cgroup), `usage` (a cgroup
    /// from a window saved without its working set), `used` (the host).
    pub fn what(&self) -> &'static str {
        match self.cg {
            Some(c) if c.working_set_bytes.is_some() => "working set",
            Some(_) => "usage",
            None => "used",
        }
    }

    /// `126.8 MiB used, 3.1 MiB working set, the rest reclaimable page cache`, for a cgroup
    /// whose usage is mostly cache; `None` when the working set is unknown or most of usage.
    pub fn cache_line(&self) -> Option<String> {
        let c = self.cg?;
        c.working_set_bytes?;
        let cache = c.usage_bytes.saturating_sub(c.working_set());
        (cache > 0).then(|| {
            format!(
                "{} used, {} working set, the rest ({}) reclaimable page cache",
                human_bytes(c.usage_bytes),
                human_bytes(c.working_set()),
                human_bytes(cache)
            )
        })
    }

    /// `pod shop/cart-7d9f`, `cgroup /system.slice/api.service` or `host node-1`.
    pub fn name(&self, s: &Signals) -> String {
        match self.cg {
            Some(c) => cgroup_name(c),
            None => format!("host {}", s.host.hostname),
        }
    }

    /// The finding's subject.
    pub fn subject(&self, s: &Signals) -> Subject {
        match self.cg {
            Some(c) => cgroup_subject(c, s.collector_pid),
            None => Subject::host(&s.host.hostname),
        }
    }
}

/// The memory cgroups (and the host) that `fires` picks, a parent dropped when a child with
/// the same limit fired too.
pub(crate) fn memory_targets<'a>(
    s: &'a Signals,
    fires: impl Fn(&MemTarget<'_>) -> bool,
) -> Vec<MemTarget<'a>> {
    let Some(m) = &s.memory else {
        return Vec::new();
    };
    let mut fired: Vec<&CgroupMemory> = m
        .cgroups
        .iter()
        .filter(|c| fires(&MemTarget::cgroup(c)))
        .collect();
    drop_shadowed(&mut fired);
    let mut out: Vec<MemTarget<'a>> = fired.into_iter().map(MemTarget::cgroup).collect();
    if m.total_bytes > 0 {
        let host = MemTarget {
            cg: None,
            start: m.total_bytes.saturating_sub(m.available_start_bytes),
            usage: m.used_bytes(),
            limit: m.total_bytes,
            series: &m.used_series,
        };
        if fires(&host) {
            out.push(host);
        }
    }
    out
}

/// The host's PSI memory line, when the kernel has PSI.
pub(crate) fn psi_memory_line(s: &Signals) -> Option<String> {
    let m = s.memory.as_ref()?;
    match (m.psi_some_avg10, m.psi_full_avg10) {
        (None, None) => None,
        (some, full) => Some(format!(
            "host memory pressure (PSI avg10): some {}, full {}",
            some.map(|v| format!("{v:.2}%"))
                .unwrap_or_else(|| "n/a".into()),
            full.map(|v| format!("{v:.2}%"))
                .unwrap_or_else(|| "n/a".into()),
        )),
    }
}

/// The evidence line for the cgroup's processes, when any are known.
pub(crate) fn cgroup_processes_line(c: &CgroupMemory, collector_pid: u32) -> Option<String> {
    let names: Vec<String> = c
        .processes
        .iter()
        .filter(|p| p.pid != collector_pid || collector_pid == 0)
        .map(proc_name)
        .collect();
    (!names.is_empty()).then(|| format!("processes in it: {}", names.join(", ")))
}

/// `1.8 GiB of 2.0 GiB (92%)`.
pub(crate) fn of_limit(used: u64, limit: u64) -> String {
    format!(
        "{} of {} ({})",
        human_bytes(used),
        human_bytes(limit),
        fmt_pct(pct(used, limit))
    )
}

/// The host part of `address:port` (IPv6 keeps its brackets, as `ss` wants them).
pub(crate) fn addr_host(addr: &str) -> &str {
    match addr.rfind(':') {
        Some(i) if addr.starts_with('[') && addr[..i].ends_with(']') => &addr[..i],
        Some(i) if !addr.starts_with('[') => &addr[..i],
        _ => addr,
    }
}

/// A cgroup in prose for the saturation rules: `pod shop/cart-7d9f (container api)`,
/// `unit api.service`, else `cgroup /path`.
pub(crate) fn cgroup_label(path: &str, attribution: &kerno_core::Attribution) -> String {
    match attribution.describe() {
        Some(who) if attribution.pod().is_some() => format!("pod {who}"),
        Some(who) => format!("{who} (cgroup {path})"),
        None => format!("cgroup {path}"),
    }
}

/// A cgroup as a finding's subject, with its first process other than the collector.
pub(crate) fn cgroup_subject_of(
    path: &str,
    pod: &Option<String>,
    attribution: &kerno_core::Attribution,
    processes: &[Process],
    collector_pid: u32,
) -> Subject {
    Subject {
        kind: "cgroup".into(),
        name: pod.clone().unwrap_or_else(|| path.to_string()),
        process: processes
            .iter()
            .find(|p| p.pid != collector_pid || collector_pid == 0)
            .cloned(),
        cgroup: Some(path.to_string()),
        pod: pod.clone(),
        attribution: attribution.clone(),
        node: None,
    }
}

/// The processes of a cgroup in prose, the collector left out: `processes in it: ...`.
pub(crate) fn processes_line(processes: &[Process], collector_pid: u32) -> Option<String> {
    let names: Vec<String> = processes
        .iter()
        .filter(|p| p.pid != collector_pid || collector_pid == 0)
        .map(proc_name)
        .collect();
    (!names.is_empty()).then(|| format!("processes in it: {}", names.join(", ")))
}

/// Of the cgroup paths that fired, keep the deepest: drop a path when one below it fired
/// too (the container is the more specific name for its pod's problem).
pub(crate) fn keep_deepest<T>(fired: &mut Vec<T>, path: impl Fn(&T) -> &str) {
    let paths: Vec<String> = fired.iter().map(|t| path(t).to_string()).collect();
    let keep: Vec<bool> = paths
        .iter()
        .map(|p| {
            let prefix = format!("{}/", p.trim_end_matches('/'));
            !paths.iter().any(|q| q.starts_with(&prefix))
        })
        .collect();
    let mut it = keep.into_iter();
    fired.retain(|_| it.next().unwrap_or(true));
}

/// A finding with the parts every rule fills; the rule sets the rest.
pub(crate) fn finding(rule: &str, severity: Severity, subject: Subject) -> Finding {
    Finding {
        rule: rule.into(),
        severity,
        title: String::new(),
        cause: String::new(),
        impact: String::new(),
        evidence: Vec::new(),
        value: 0.0,
        threshold: 0.0,
        unit: String::new(),
        fix: Vec::new(),
        eta_secs: None,
        subject,
        low_volume: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grade_is_strict() {
        assert_eq!(grade(5.0, 5.0, 20.0), None);
        assert_eq!(grade(5.01, 5.0, 20.0), Some((Severity::Warning, 5.0)));
        assert_eq!(grade(20.0, 5.0, 20.0), Some((Severity::Warning, 5.0)));
        assert_eq!(grade(20.5, 5.0, 20.0), Some((Severity::Critical, 20.0)));
        // A critical threshold set below the warning one: the warning one still has to be
        // crossed, and then it is critical.
        assert_eq!(grade(3.0, 5.0, 2.0), None);
        assert_eq!(grade(6.0, 5.0, 2.0), Some((Severity::Critical, 2.0)));
    }

    #[test]
    fn addresses_lose_their_port() {
        assert_eq!(addr_host("10.0.0.9:5432"), "10.0.0.9");
        assert_eq!(addr_host("[2001:db8::1]:443"), "[2001:db8::1]");
        assert_eq!(addr_host("[2001:db8::1]"), "[2001:db8::1]");
        assert_eq!(addr_host("host"), "host");
    }

    #[test]
    fn cgroup_paths() {
        assert_eq!(
            cgroup_dir(2, "/system.slice/api.service"),
            "/sys/fs/cgroup/system.slice/api.service"
        );
        assert_eq!(
            cgroup_dir(1, "/docker/abc"),
            "/sys/fs/cgroup/memory/docker/abc"
        );
        assert_eq!(cgroup_dir(2, "/"), "/sys/fs/cgroup");
        assert_eq!(
            systemd_unit("/system.slice/api.service"),
            Some("api.service")
        );
        assert_eq!(systemd_unit("/kubepods/burstable/pod1"), None);
    }

    #[test]
    fn shadowed_parents_are_dropped() {
        let cg = |path: &str, limit: u64| CgroupMemory {
            path: path.into(),
            limit_bytes: limit,
            ..CgroupMemory::default()
        };
        let (pod, ctr, other) = (
            cg("/kubepods/pod1", 100),
            cg("/kubepods/pod1/ctr", 100),
            cg("/kubepods/pod10", 100),
        );
        let mut fired = vec![&pod, &ctr, &other];
        drop_shadowed(&mut fired);
        let paths: Vec<&str> = fired.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["/kubepods/pod1/ctr", "/kubepods/pod10"]);
        // A parent with a different limit is its own problem.
        let tight = cg("/kubepods/pod1/ctr", 50);
        let mut fired = vec![&pod, &tight];
        drop_shadowed(&mut fired);
        assert_eq!(fired.len(), 2);
    }

    #[test]
    fn the_deepest_cgroups_are_kept() {
        let mut v = vec![
            "/kubepods/pod1",
            "/kubepods/pod1/ctr",
            "/kubepods/pod10",
            "/a",
        ];
        keep_deepest(&mut v, |p| p);
        assert_eq!(v, ["/kubepods/pod1/ctr", "/kubepods/pod10", "/a"]);
        let a = kerno_core::Attribution {
            namespace: Some("shop".into()),
            pod_name: Some("cart-0".into()),
            container: Some("api".into()),
            ..Default::default()
        };
        assert_eq!(cgroup_label("/x", &a), "pod shop/cart-0 (container api)");
        assert_eq!(cgroup_label("/x", &Default::default()), "cgroup /x");
    }

    #[test]
    fn human_numbers() {
        assert_eq!(fmt_pct(4.8), "4.8%");
        assert_eq!(fmt_pct(96.2), "96%");
        assert_eq!(fmt_pct(0.349), "0.35%");
        assert_eq!(fmt_rate(37.2), "37");
        assert_eq!(fmt_rate(4.46), "4.5");
        assert_eq!(fmt_rate(1200.4), "1,200");
    }
}
