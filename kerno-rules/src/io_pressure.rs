//! `io-pressure`: tasks lose wall time waiting for I/O (PSI io "full").

use kerno_core::{CgroupPressure, Finding, Pressure, Rule, Signals, Subject, ThresholdSpec, Thresholds};

use crate::common::{
    cgroup_dir, cgroup_label, cgroup_subject_of, finding, fmt_pct, grade, keep_deepest,
    processes_line,
};

/// PSI io `full` (every non-idle task of the host, or of a v2 cgroup, waiting for I/O at
/// once) above `io_full_pct` of the window warns, above `io_full_critical_pct` is critical.
/// A host finding names the cgroups with the most I/O pressure where cgroup PSI exists.
pub struct IoPressure;

/// The rule's id.
pub const ID: &str = "io-pressure";

/// `io_full_pct`: io "full" stall above this share of the window warns (%).
pub const IO_FULL_PCT: ThresholdSpec = ThresholdSpec::number(
    "io_full_pct",
    10.0,
    "%",
    0.0,
    100.0,
    "PSI io full (all non-idle tasks waiting for I/O at once) above this share of the window warns, host or cgroup",
);
/// `io_full_critical_pct`: above this share is critical (%).
pub const IO_FULL_CRITICAL_PCT: ThresholdSpec = ThresholdSpec::number(
    "io_full_critical_pct",
    30.0,
    "%",
    0.0,
    100.0,
    "PSI io full above this share of the window is critical",
);
/// `io_host_disk_p99_ms`: a host-wide stall is blamed on the disk only when a device's p99
/// request latency in the window reaches this (ms).
pub const IO_HOST_DISK_P99_MS: ThresholdSpec = ThresholdSpec::number(
    "io_host_disk_p99_ms",
    50.0,
    "ms",
    0.0,
    f64::MAX,
    "a host-wide io full stall is reported only when some disk's p99 request latency in the window reaches this: one task streaming from a fast disk (a backup, a page-cache read) is all the host does, not a stall",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[IO_FULL_PCT, IO_FULL_CRITICAL_PCT, IO_HOST_DISK_P99_MS];

/// The slowest device's p99 request latency in the window (ms), over devices with at least
/// 20 requests; `None` when the disk domain was not observed.
fn slowest_disk_p99_ms(s: &Signals) -> Option<(f64, String)> {
    let disk = s.disk.as_ref()?;
    let mut best: Option<(f64, String)> = None;
    for d in &disk.devices {
        let mut all = kerno_core::Histogram::new();
        for op in &d.ops {
            all.merge(&op.latency);
        }
        if all.count() < 20 {
            continue;
        }
        let ms = all.percentile(99.0).unwrap_or(0) as f64 / 1e6;
        if best.as_ref().is_none_or(|(b, _)| ms > *b) {
            best = Some((ms, d.label()));
        }
    }
    Some(best.unwrap_or((0.0, String::new())))
}

fn psi_line(who: &str, p: &Pressure) -> String {
    format!(
        "{who} I/O pressure over the window: full {}, some {}{}",
        fmt_pct(p.full()),
        fmt_pct(p.some_pct),
        match (p.full_avg10, p.some_avg10) {
            (Some(f), Some(so)) => format!(" (kernel avg10: full {f:.2}%, some {so:.2}%)"),
            _ => String::new(),
        }
    )
}

fn top_cgroups(cgroups: &[CgroupPressure]) -> Vec<&CgroupPressure> {
    let v = |c: &CgroupPressure| c.io.as_ref().map(|p| (p.full(), p.some_pct)).unwrap_or((0.0, 0.0));
    let mut top: Vec<&CgroupPressure> = cgroups
        .iter()
        .filter(|c| v(c).1 > 0.0)
        .collect();
    top.sort_by(|a, b| {
        v(b).0
            .total_cmp(&v(a).0)
            .then(v(b).1.total_cmp(&v(a).1))
            .then(a.path.cmp(&b.path))
    });
    top
}

fn fix(f: &mut Finding, cgroup: Option<&str>, pid: Option<u32>) {
    f.fix.push("iostat -x 1 5  # per device: r_await/w_await (latency), aqu-sz (queue), %util".into());
    if let Some(path) = cgroup {
        let dir = cgroup_dir(2, path);
        f.fix.push(format!(
            "cat {dir}/io.pressure {dir}/io.stat  # its own stall, and its bytes and IOs per device"
        ));
        let v1 = format!("/sys/fs/cgroup/blkio{}", if path == "/" { "" } else { path });
        f.fix.push(format!(
            "grep . {v1}/blkio.throttle.*_device {dir}/io.max 2>/dev/null  # an I/O limit (v1 blkio throttle, v2 io.max) makes it wait by design"
        ));
    }
    if let Some(pid) = pid {
        f.fix.push(format!(
            "cat /proc/{pid}/io; cat /proc/{pid}/stack  # how much it reads and writes, and where it waits"
        ));
    }
    f.fix.push("Raise or remove the I/O limit, move the workload to a faster or less busy device, or make it do less I/O (bigger, fewer requests; more cache).".into());
}

fn cgroup_finding(c: &CgroupPressure, p: &Pressure, s: &Signals, t: &Thresholds) -> Option<Finding> {
    let (severity, threshold) = grade(p.full(), t.number(&IO_FULL_PCT), t.number(&IO_FULL_CRITICAL_PCT))?;
    let name = cgroup_label(&c.path, &c.attribution);
    let mut f = finding(
        ID,
        severity,
        cgroup_subject_of(&c.path, &c.pod, &c.attribution, &c.processes, s.collector_pid),
    );
    f.title = format!(
        "{name} waits for I/O {} of the time: all its tasks blocked on the disk at once",
        fmt_pct(p.full())
    );
    f.cause = "The cgroup's tasks are blocked on block I/O instead of running: its reads and writes take long to complete, because the device is slow or busy, or because an I/O limit (blkio throttle, io.max) holds its requests back. PSI's \"full\" counts the time in which all of its non-idle tasks waited for I/O together: wall time none of them ran.".into();
    f.impact = "Everything the cgroup does that touches the disk is slower by that share; requests queue behind I/O and time out.".into();
    f.evidence.push(psi_line("its", p));
    if let Some(host) = s.saturation.as_ref().and_then(|x| x.io.as_ref()) {
        f.evidence.push(psi_line("host", host));
    }
    f.evidence.push(format!("cgroup {} (v2 io.pressure)", c.path));
    if let Some(line) = processes_line(&c.processes, s.collector_pid) {
        f.evidence.push(line);
    }
    f.value = p.full();
    f.threshold = threshold;
    f.unit = "%".into();
    let pid = f.subject.process.as_ref().map(|p| p.pid);
    fix(&mut f, Some(&c.path), pid);
    Some(f)
}

impl Rule for IoPressure {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(crate::common::RATE_WINDOW)
    }

    fn description(&self) -> &str {
        "PSI io full above io_full_pct of the window, host or cgroup (critical above io_full_critical_pct)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Pressure stall information for I/O, host and every cgroup that has it: the share of the window in which all non-idle tasks stalled on I/O (full) above io_full_pct warns, above io_full_critical_pct is critical; the cgroups with the most pressure are named. The host-wide finding also needs a device whose p99 request latency reaches io_host_disk_p99_ms (when the disk domain is observed): one task streaming from a fast disk makes full equal some without any stall.".into(),
            when_it_fires: vec![
                "Confirm: cat /proc/pressure/io and <cgroup>/io.pressure; iostat -x 1 for the device's utilisation and queue.".into(),
                "Find the I/O: pidstat -d 1 or iotop -o for who reads and writes; a throttled cgroup shows in blkio.throttle.* or io.max.".into(),
                "Lift an I/O limit that is too tight, move the heavy writer off the device, or give the disk more throughput.".into(),
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
        let warn = t.number(&IO_FULL_PCT);
        let mut stalled: Vec<(&CgroupPressure, &Pressure)> = sat
            .cgroups
            .iter()
            .filter_map(|c| Some((c, c.io.as_ref().filter(|p| p.full() > warn)?)))
            .collect();
        keep_deepest(&mut stalled, |(c, _)| c.path.as_str());
        let mut out: Vec<Finding> = stalled
            .iter()
            .filter_map(|(c, p)| cgroup_finding(c, p, s, t))
            .collect();
        // "Every task waited for I/O" is a stall only when the I/O is slow: on a host where
        // one task streams from a fast disk, that task is all that runs, and full equals
        // some without anything waiting on anything else.
        let disk = slowest_disk_p99_ms(s);
        let disk_slow = disk
            .as_ref()
            .is_none_or(|(ms, _)| *ms >= t.number(&IO_HOST_DISK_P99_MS));
        if let Some(host) = &sat.io
            && disk_slow
            && let Some((severity, threshold)) =
                grade(host.full(), warn, t.number(&IO_FULL_CRITICAL_PCT))
        {
            let top = top_cgroups(&sat.cgroups);
            let mut f = finding(ID, severity, Subject::host(&s.host.hostname));
            f.title = format!(
                "host {} waits for I/O {} of the time: every running task blocked on the disk at once",
                s.host.hostname,
                fmt_pct(host.full())
            );
            if let Some(c) = top.first() {
                f.title += &format!("; {} waits most", cgroup_label(&c.path, &c.attribution));
            }
            f.cause = "Block I/O does not keep up: the device is saturated or slow, so every task that reads or writes queues behind it. PSI's \"full\" counts the time in which every non-idle task on the host waited for I/O together.".into();
            f.impact = "Wall time lost to every workload on the host at once: file reads, writes, fsyncs, page faults of file-backed memory and swap all wait.".into();
            f.evidence.push(psi_line("host", host));
            match &disk {
                Some((ms, dev)) => f.evidence.push(format!(
                    "slowest disk in the window: {dev}, p99 request latency {ms:.1} ms"
                )),
                None => f.evidence.push(
                    "the disk domain was not observed: no device latency confirms the stall".into(),
                ),
            }
            for c in top.iter().take(3) {
                if let Some(p) = &c.io {
                    f.evidence.push(format!(
                        "{}: full {}, some {}",
                        cgroup_label(&c.path, &c.attribution),
                        fmt_pct(p.full()),
                        fmt_pct(p.some_pct)
                    ));
                }
            }
            if top.is_empty() {
                f.evidence.push("no cgroup PSI (cgroup v2 with PSI) to say which workload waits".into());
            }
            f.value = host.full();
            f.threshold = threshold;
            f.unit = "%".into();
            let first = top.first().map(|c| c.path.as_str());
            let pid = top.first().and_then(|c| c.processes.first()).map(|p| p.pid);
            fix(&mut f, first, pid);
            out.push(f);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::{SaturationSignals, Severity};

    use super::*;
    use crate::testutil::*;

    fn psi(some: f64, full: f64) -> Pressure {
        Pressure {
            some_pct: some,
            full_pct: Some(full),
            some_avg10: None,
            full_avg10: None,
        }
    }

    fn cg(path: &str, io: Pressure) -> CgroupPressure {
        CgroupPressure {
            path: path.into(),
            io: Some(io),
            processes: vec![proc_(777, "backup")],
            ..CgroupPressure::default()
        }
    }

    fn with(host: Pressure, cgroups: Vec<CgroupPressure>) -> Signals {
        let mut s = signals();
        s.saturation = Some(SaturationSignals {
            io: Some(host),
            cgroups,
            ..SaturationSignals::default()
        });
        s
    }

    #[test]
    fn some_waiting_is_not_full_stall() {
        assert!(run(&IoPressure, &signals()).is_empty());
        assert!(run(&IoPressure, &with(psi(50.0, 2.0), vec![cg("/a", psi(50.0, 8.0))])).is_empty());
    }

    #[test]
    fn a_throttled_cgroup_is_named() {
        let s = with(psi(20.0, 1.0), vec![cg("/kerno-io", psi(95.0, 93.0))]);
        let f = one(run(&IoPressure, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.subject.cgroup.as_deref(), Some("/kerno-io"));
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 777);
        assert!(f.title.starts_with("cgroup /kerno-io waits for I/O 93% of the time"), "{}", f.title);
        assert!(f.fix.iter().any(|x| x.contains("/sys/fs/cgroup/blkio/kerno-io/blkio.throttle.*_device")));
        assert!(f.fix.iter().any(|x| x.starts_with("cat /proc/777/io")));
    }

    #[test]
    fn the_host_names_its_most_stalled_cgroups() {
        let s = with(
            psi(60.0, 35.0),
            vec![cg("/quiet", psi(1.0, 0.0)), cg("/busy", psi(40.0, 9.0))],
        );
        let f = one(run(&IoPressure, &s));
        assert_eq!((f.severity, f.subject.kind.as_str()), (Severity::Critical, "host"));
        assert!(f.title.ends_with("; cgroup /busy waits most"), "{}", f.title);
        assert_eq!(f.evidence[2], "cgroup /busy: full 9.0%, some 40%");
    }

    /// One task streaming from a fast disk: full equals some, and no device is slow, so the
    /// host is not stalled; a slow device (or no disk signal at all) keeps the finding.
    #[test]
    fn a_host_stall_needs_a_slow_disk_when_the_disk_is_observed() {
        use kerno_core::{DiskDevice, DiskOp, DiskSignals, Histogram};
        let disk = |p99_ms: u64| {
            let mut h = Histogram::new();
            h.record_n(500_000, 980);
            h.record_n(p99_ms * 1_000_000, 20);
            DiskSignals {
                devices: vec![DiskDevice {
                    dev: "7:0".into(),
                    name: "loop0".into(),
                    ops: vec![DiskOp {
                        op: "read".into(),
                        count: 1000,
                        latency: h,
                        ..DiskOp::default()
                    }],
                    ..DiskDevice::default()
                }],
            }
        };
        let mut s = with(psi(70.0, 70.0), vec![]);
        s.disk = Some(disk(2));
        assert!(run(&IoPressure, &s).is_empty(), "a fast disk: one busy reader, no stall");
        s.disk = Some(disk(21));
        assert!(run(&IoPressure, &s).is_empty(), "21 ms: a streaming reader's large requests");
        s.disk = Some(disk(80));
        let f = one(run(&IoPressure, &s));
        assert!(f.evidence.iter().any(|e| e.contains("p99 request latency 8")), "{:?}", f.evidence);
        s.disk = None;
        let f = one(run(&IoPressure, &s));
        assert!(f.evidence.iter().any(|e| e.starts_with("the disk domain was not observed")));
    }

    #[test]
    fn boundaries() {
        assert!(run(&IoPressure, &with(psi(20.0, 10.0), vec![])).is_empty());
        assert_eq!(one(run(&IoPressure, &with(psi(20.0, 10.01), vec![]))).severity, Severity::Warning);
        assert_eq!(one(run(&IoPressure, &with(psi(40.0, 30.0), vec![]))).severity, Severity::Warning);
        assert_eq!(one(run(&IoPressure, &with(psi(40.0, 30.01), vec![]))).severity, Severity::Critical);
        let f = one(run(&IoPressure, &with(psi(20.0, 11.0), vec![])));
        assert!(f.evidence.iter().any(|e| e.starts_with("no cgroup PSI")));
    }
}
