//! `disk-io`: durable writes are slow. Applications feel it in `fsync`/`fdatasync`; the
//! block layer sees it in each device's flush and write latency.

use kerno_core::{
    DiskDevice, Finding, Histogram, ProcessSlow, Rule, Severity, Signals, Subject, ThresholdSpec,
    Thresholds, human_bytes, human_ns, thousands,
};

use crate::common::{finding, grade, latency_line, ms, percentiles, proc_name, proc_where};

/// Disk I/O bottleneck: `fsync`/`fdatasync` p99 or a device's flush p99 above
/// `disk_sync_p99_ms`, or a device's write p99 above `disk_write_p99_ms`; critical above
/// `disk_critical_p99_ms`. A slow device is the subject, with the process that waited most in
/// `fsync` attached; slow syncs on fast devices get a finding of their own. Fewer than
/// `disk_min_samples` samples make it an informational, low-volume finding.
pub struct DiskIo;

/// The rule's id.
pub const ID: &str = "disk-io";

/// `disk_sync_p99_ms`: fsync/fdatasync or device flush p99 above this warns (ms).
pub const DISK_SYNC_P99_MS: ThresholdSpec = ThresholdSpec::number(
    "disk_sync_p99_ms",
    50.0,
    "ms",
    0.0,
    f64::MAX,
    "fsync/fdatasync or device flush p99 above this warns",
);
/// `disk_write_p99_ms`: device write p99 above this warns (ms).
pub const DISK_WRITE_P99_MS: ThresholdSpec = ThresholdSpec::number(
    "disk_write_p99_ms",
    200.0,
    "ms",
    0.0,
    f64::MAX,
    "device write p99 above this warns",
);
/// `disk_critical_p99_ms`: any of those p99s above this is critical (ms).
pub const DISK_CRITICAL_P99_MS: ThresholdSpec = ThresholdSpec::number(
    "disk_critical_p99_ms",
    200.0,
    "ms",
    0.0,
    f64::MAX,
    "any of those p99s above this is critical",
);
/// `disk_min_samples`: fewer samples than this in the window and the finding says so.
pub const DISK_MIN_SAMPLES: ThresholdSpec = ThresholdSpec::count(
    "disk_min_samples",
    20,
    "requests",
    "fewer samples than this in the window and the finding says so",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[
    DISK_SYNC_P99_MS,
    DISK_WRITE_P99_MS,
    DISK_CRITICAL_P99_MS,
    DISK_MIN_SAMPLES,
];

const SYNC_CALLS: [&str; 2] = ["fsync", "fdatasync"];

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Flush,
    Write,
    Sync,
}

/// One latency that crossed its threshold.
struct Breach {
    kind: Kind,
    /// `flush`, `write`, `fsync/fdatasync`.
    what: String,
    p99_ns: u64,
    warn_ms: f64,
    samples: u64,
    /// Requests or calls.
    noun: &'static str,
}

impl Breach {
    fn p99_ms(&self) -> f64 {
        ms(self.p99_ns)
    }
}

/// What applications saw in `fsync`/`fdatasync`.
struct SyncCalls {
    names: String,
    latency: Histogram,
    /// Slow callers, most slow calls first, without the collector.
    top: Vec<ProcessSlow>,
}

fn sync_calls(s: &Signals) -> Option<SyncCalls> {
    let sc = s.syscalls.as_ref()?;
    let stats: Vec<_> = SYNC_CALLS.iter().filter_map(|n| sc.get(n)).collect();
    if stats.is_empty() {
        return None;
    }
    let mut latency = Histogram::new();
    let mut top: Vec<ProcessSlow> = Vec::new();
    for st in &stats {
        latency.merge(&st.latency);
        for ps in st
            .top_slow
            .iter()
            .filter(|p| p.process.pid != s.collector_pid)
        {
            match top.iter_mut().find(|t| t.process.pid == ps.process.pid) {
                Some(t) => {
                    let total =
                        t.mean_ns as f64 * t.count as f64 + ps.mean_ns as f64 * ps.count as f64;
                    t.count += ps.count;
                    t.mean_ns = (total / t.count.max(1) as f64) as u64;
                    t.max_ns = t.max_ns.max(ps.max_ns);
                }
                None => top.push(ps.clone()),
            }
        }
    }
    top.sort_by(|a, b| b.count.cmp(&a.count).then(b.mean_ns.cmp(&a.mean_ns)));
    let names: Vec<&str> = stats.iter().map(|s| s.name.as_str()).collect();
    Some(SyncCalls {
        names: names.join("/"),
        latency,
        top,
    })
}

/// The grade of one breach: severity and the threshold that set it.
fn grade_of(b: &Breach, t: &Thresholds) -> (Severity, f64) {
    grade(b.p99_ms(), b.warn_ms, t.number(&DISK_CRITICAL_P99_MS))
        .unwrap_or((Severity::Warning, b.warn_ms))
}

/// Severity of a set of breaches, the one to headline, its threshold, and whether every
/// breach had too few samples to be sure.
fn judge<'a>(breaches: &'a [Breach], t: &Thresholds) -> (Severity, &'a Breach, f64, bool) {
    let enough: Vec<&Breach> = breaches
        .iter()
        .filter(|b| b.samples >= t.count(&DISK_MIN_SAMPLES))
        .collect();
    if enough.is_empty() {
        let b = breaches
            .iter()
            .max_by(|a, b| (a.p99_ms() / a.warn_ms).total_cmp(&(b.p99_ms() / b.warn_ms)))
            .expect("judged only with breaches");
        return (Severity::Info, b, b.warn_ms, true);
    }
    let (b, (sev, thr)) = enough
        .into_iter()
        .map(|b| (b, grade_of(b, t)))
        .max_by(|(a, ga), (b, gb)| {
            ga.0.cmp(&gb.0)
                .then((a.p99_ms() / ga.1).total_cmp(&(b.p99_ms() / gb.1)))
        })
        .expect("judged only with breaches");
    (sev, b, thr, false)
}

fn op_line(op: &kerno_core::DiskOp) -> String {
    // Flushes carry no data: their byte count is noise.
    let bytes = if op.bytes > 0 {
        format!(", {}", human_bytes(op.bytes))
    } else {
        String::new()
    };
    let mut line = format!(
        "{}: {} requests{bytes}; {}",
        op.op,
        thousands(op.count),
        percentiles(&op.latency)
    );
    if op.errors > 0 {
        line += &format!("; {} FAILED", thousands(op.errors));
    }
    line
}

fn sync_lines(sync: &SyncCalls) -> Vec<String> {
    let mut out = vec![format!(
        "{} as applications see it: {}",
        sync.names,
        latency_line(&sync.latency, "calls")
    )];
    for ps in sync.top.iter().take(3) {
        out.push(format!(
            "slow {} in {}: {} calls, mean {}, max {}",
            sync.names,
            proc_name(&ps.process),
            thousands(ps.count),
            human_ns(ps.mean_ns as f64),
            human_ns(ps.max_ns as f64)
        ));
    }
    out
}

/// Device-specific ways to look at the hardware under a name.
fn device_checks(name: &str) -> Option<String> {
    let dev = format!("/dev/{name}");
    if name.starts_with("loop") {
        Some(format!(
            "losetup -l {dev}  # the backing file: the device under its filesystem is the real bottleneck"
        ))
    } else if name.starts_with("nvme") {
        Some(format!(
            "nvme smart-log {dev}  # media errors, temperature, wear"
        ))
    } else if name.starts_with("sd") || name.starts_with("hd") {
        Some(format!(
            "smartctl -a {dev}  # reallocated or pending sectors, the error log"
        ))
    } else if name.starts_with("dm-") {
        Some("dmsetup ls --tree  # the physical devices under the device-mapper target".into())
    } else if name.starts_with("md") {
        Some("cat /proc/mdstat  # a degraded or resyncing RAID array".into())
    } else {
        None
    }
}

fn strace_sync(sync: &SyncCalls) -> Option<String> {
    sync.top.first().map(|ps| {
        format!(
            "strace -f -T -e trace=fsync,fdatasync -p {}  # the time of each sync call (adds overhead; stop with Ctrl-C)",
            ps.process.pid
        )
    })
}

fn sync_breach(sync: &SyncCalls, t: &Thresholds) -> Option<Breach> {
    let p99 = sync.latency.percentile(99.0)?;
    (ms(p99) > t.number(&DISK_SYNC_P99_MS)).then(|| Breach {
        kind: Kind::Sync,
        what: sync.names.clone(),
        p99_ns: p99,
        warn_ms: t.number(&DISK_SYNC_P99_MS),
        samples: sync.latency.count(),
        noun: "calls",
    })
}

fn device_breaches(d: &DiskDevice, t: &Thresholds) -> Vec<Breach> {
    d.ops
        .iter()
        .filter_map(|op| {
            let (kind, warn) = match op.op.as_str() {
                "flush" => (Kind::Flush, t.number(&DISK_SYNC_P99_MS)),
                "write" => (Kind::Write, t.number(&DISK_WRITE_P99_MS)),
                _ => return None,
            };
            let p99 = op.latency.percentile(99.0)?;
            (ms(p99) > warn).then(|| Breach {
                kind,
                what: op.op.clone(),
                p99_ns: p99,
                warn_ms: warn,
                samples: op.latency.count(),
                noun: "requests",
            })
        })
        .collect()
}

fn headline(b: &Breach, sync: Option<&SyncCalls>, t: &Thresholds) -> String {
    let mut s = format!(
        "{} p99 {} over {}{} {}",
        b.what,
        human_ns(b.p99_ns as f64),
        if b.samples < t.count(&DISK_MIN_SAMPLES) {
            "only "
        } else {
            ""
        },
        thousands(b.samples),
        b.noun
    );
    if b.kind == Kind::Sync
        && let Some(ps) = sync.and_then(|s| s.top.first())
    {
        s += &format!(", slowest in {}", proc_name(&ps.process));
    }
    s
}

fn device_finding(
    d: &DiskDevice,
    mut breaches: Vec<Breach>,
    sync: Option<&SyncCalls>,
    t: &Thresholds,
) -> Finding {
    let label = d.label();
    // The sync calls' breach, when attached, is part of this device's verdict.
    if let Some(b) = sync.and_then(|x| sync_breach(x, t)) {
        breaches.push(b);
    }
    let (severity, primary, threshold, low) = judge(&breaches, t);
    let mut subject = Subject {
        kind: "device".into(),
        name: label.clone(),
        ..Subject::default()
    };
    let waiter = sync.and_then(|x| x.top.first()).map(|ps| &ps.process);
    if let Some(p) = waiter {
        subject.process = Some(p.clone());
        subject.cgroup = p.cgroup.clone();
        subject.pod = p.pod.clone();
    }
    let mut f = finding(ID, severity, subject);
    let rest: Vec<String> = breaches
        .iter()
        .filter(|b| !std::ptr::eq(*b, primary))
        .map(|b| format!("{} p99 {}", b.what, human_ns(b.p99_ns as f64)))
        .collect();
    let is = if low { "may be slow" } else { "is slow" };
    f.title = format!("disk {label} {is}: {}", headline(primary, sync, t));
    if !rest.is_empty() {
        f.title += &format!("; {}", rest.join("; "));
    }
    let has = |k: Kind| breaches.iter().any(|b| b.kind == k);
    f.cause = if has(Kind::Flush) || primary.kind == Kind::Flush {
        "The device takes long to flush its write cache, and every fsync/fdatasync ends in such a flush, so each durable write waits for it. Usual causes: the device is saturated by other writes, a cloud or network volume is held at its IOPS or throughput cap, or the disk is failing.".to_string()
    } else if has(Kind::Write) {
        "Write requests spend long between issue and completion: the device is saturated (more writes queued than it can absorb), a cloud or network volume is held at its IOPS or throughput cap, or the disk is failing.".to_string()
    } else {
        format!(
            "Applications wait long in {}, and this device is the one with the slowest flushes and writes in the window. The device itself is within its thresholds, so part of the time goes above it: a filesystem journal commit that serialises syncs (ext4 jbd2, the XFS log), or a backlog of dirty page cache written out first.",
            sync.map(|x| x.names.as_str()).unwrap_or("fsync")
        )
    };
    if d.ops.iter().any(|o| o.errors > 0) {
        f.cause += " Some requests failed outright, which points at the device or its path.";
    }
    f.impact = if has(Kind::Flush) || has(Kind::Sync) {
        "Everything that waits for data to be durable stalls for the length of a flush: database commits (PostgreSQL, MySQL), etcd and Kafka writes, journald. Request latency rises with it; etcd expects fsync well under 10 ms and misses heartbeats far above that.".into()
    } else {
        "Dirty pages pile up in the page cache; when they reach the dirty limit, every writing process is throttled inside write() and stalls, and reads queued behind the writes on this device wait too.".into()
    };
    f.evidence = d.ops.iter().map(op_line).collect();
    if let Some(x) = sync {
        f.evidence.extend(sync_lines(x));
    }
    f.value = primary.p99_ms();
    f.threshold = threshold;
    f.unit = "ms".into();
    f.low_volume = low;
    let target = if d.name.is_empty() {
        String::new()
    } else {
        format!(" {}", d.name)
    };
    f.fix.push(format!(
        "iostat -x 1 5{target}  # w_await/f_await: write/flush latency; aqu-sz and %util: saturation"
    ));
    f.fix
        .push("pidstat -d 1 5  # who is writing (kB_wr/s per process)".into());
    if let Some(c) = device_checks(&d.name) {
        f.fix.push(c);
    }
    let grep = if d.name.is_empty() {
        "i/o error|timeout|reset".to_string()
    } else {
        format!("{}|i/o error|timeout|reset", d.name)
    };
    f.fix.push(format!(
        "dmesg -T | grep -iE '{grep}' | tail -n 20  # device errors and resets"
    ));
    if let Some(cmd) = sync.and_then(strace_sync) {
        f.fix.push(cmd);
    }
    f.fix.push("If the device is at its limit: spread the writers over other disks, or move to a volume with more IOPS/throughput; for a database, keep its WAL/journal on a dedicated low-latency disk.".into());
    f
}

fn sync_finding(sync: &SyncCalls, b: Breach, s: &Signals, t: &Thresholds) -> Finding {
    let breaches = [b];
    let (severity, primary, threshold, low) = judge(&breaches, t);
    let waiter = sync.top.first().map(|ps| &ps.process);
    let subject = match waiter {
        Some(p) => Subject::process(p),
        None => Subject::host(&s.host.hostname),
    };
    let mut f = finding(ID, severity, subject);
    let are = if low { "may be slow" } else { "are slow" };
    f.title = format!("durable writes {are}: {}", headline(primary, Some(sync), t));
    let devices = match &s.disk {
        None => "Block devices were not observed in this window, so whether the disk itself is slow is not known.".to_string(),
        Some(d) if d.devices.is_empty() => "No block device completed a request in the window.".to_string(),
        Some(_) => "Yet every block device completes flushes and writes within its thresholds.".to_string(),
    };
    f.cause = format!(
        "Applications wait long in {}. {devices} The time goes above the device: a filesystem journal commit that serialises every sync (ext4 jbd2, the XFS log), a backlog of dirty page cache written out before the sync returns, or I/O throttling of the cgroup (io.max).",
        sync.names
    );
    f.impact = "Everything that waits for data to be durable stalls: database commits, etcd and Kafka writes, journald. Request latency rises with it.".into();
    f.evidence = sync_lines(sync);
    if let Some(p) = waiter.and_then(proc_where) {
        f.evidence.push(format!("slowest caller runs in {p}"));
    }
    if let Some(d) = &s.disk {
        for dev in &d.devices {
            for op in dev
                .ops
                .iter()
                .filter(|o| o.op == "flush" || o.op == "write")
            {
                f.evidence.push(format!("{} {}", dev.label(), op_line(op)));
            }
        }
    }
    f.value = primary.p99_ms();
    f.threshold = threshold;
    f.unit = "ms".into();
    f.low_volume = low;
    f.fix.push("grep -E '^(Dirty|Writeback):' /proc/meminfo  # a large dirty backlog is written out by the next sync".into());
    if let Some(cmd) = strace_sync(sync) {
        f.fix.push(cmd);
    }
    if let Some(p) = waiter {
        f.fix.push(format!(
            "ls -l /proc/{}/fd | grep ' /'  # the files it writes; findmnt -T <file> names their filesystem and device",
            p.pid
        ));
    }
    f.fix
        .push("iostat -x 1 5  # confirm the devices stay fast while the syncs are slow".into());
    f
}

impl Rule for DiskIo {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(crate::common::RATE_WINDOW)
    }

    fn description(&self) -> &str {
        "fsync/fdatasync or device flush p99 above disk_sync_p99_ms, or device write p99 above disk_write_p99_ms (critical above disk_critical_p99_ms)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Durable writes: the p99 latency of fsync/fdatasync (per process) and of each block device's flushes, against disk_sync_p99_ms, and each device's write p99 against disk_write_p99_ms; above disk_critical_p99_ms it is critical. A slow device is the subject, with the process that waited most in fsync; slow syncs on fast devices get a finding of their own. Fewer than disk_min_samples samples make it an informational, low-volume finding.".into(),
            when_it_fires: vec![
                "See which device and which process the finding names: iostat -x 1 5 shows whether the device is saturated (%util near 100, long w_await) or just slow.".into(),
                "Check for a dirty-page backlog the next sync must write (grep -E '^(Dirty|Writeback):' /proc/meminfo) and for other writers on the same device (iotop -o).".into(),
                "If the device is at its limit, spread the writers, move to a volume with more IOPS, or keep a database's WAL on a dedicated low-latency disk; if it is failing, check its SMART data and the kernel log (kerno explain).".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let sync = sync_calls(s);
        let sync_slow = sync.as_ref().and_then(|x| sync_breach(x, t));
        let mut slow: Vec<(&DiskDevice, Vec<Breach>)> = s
            .disk
            .iter()
            .flat_map(|d| &d.devices)
            .map(|d| (d, device_breaches(d, t)))
            .filter(|(_, b)| !b.is_empty())
            .collect();
        // The worst device first: it is the one the sync calls most likely wait for.
        let worst = |b: &[Breach]| b.iter().map(|b| b.p99_ms() / b.warn_ms).fold(0.0, f64::max);
        slow.sort_by(|a, b| {
            worst(&b.1)
                .total_cmp(&worst(&a.1))
                .then(a.0.dev.cmp(&b.0.dev))
        });
        let mut out = Vec::new();
        for (i, (d, breaches)) in slow.into_iter().enumerate() {
            let attach = if i == 0 && sync_slow.is_some() {
                sync.as_ref()
            } else {
                None
            };
            out.push(device_finding(d, breaches, attach, t));
        }
        if out.is_empty()
            && let (Some(x), Some(b)) = (&sync, sync_slow)
        {
            out.push(sync_finding(x, b, s, t));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::{DiskDevice, DiskOp, DiskSignals, SyscallSignals, SyscallStat};

    use super::*;
    use crate::testutil::*;

    fn op(name: &str, ns: u64, n: u64) -> DiskOp {
        DiskOp {
            op: name.into(),
            count: n,
            bytes: n * 4096,
            errors: 0,
            latency: hist(ns, n),
        }
    }

    fn with_disk(ops: Vec<DiskOp>) -> Signals {
        let mut s = signals();
        s.disk = Some(DiskSignals {
            devices: vec![DiskDevice {
                dev: "7:0".into(),
                name: "loop0".into(),
                ops,
                ..Default::default()
            }],
        });
        s
    }

    fn with_fsync(s: &mut Signals, ns: u64, n: u64, who: Option<u32>) {
        let top_slow = who
            .map(|pid| {
                vec![ProcessSlow {
                    process: proc_(pid, "postgres"),
                    count: n,
                    mean_ns: ns,
                    max_ns: ns * 2,
                }]
            })
            .unwrap_or_default();
        s.syscalls = Some(SyscallSignals {
            total_calls: n,
            total_errors: 0,
            syscalls: vec![SyscallStat {
                nr: 74,
                name: "fsync".into(),
                count: n,
                latency: hist(ns, n),
                top_slow,
                ..SyscallStat::default()
            }],
            ..Default::default()
        });
    }

    #[test]
    fn quiet_machine_is_quiet() {
        assert!(run(&DiskIo, &signals()).is_empty());
        assert!(run(&DiskIo, &kerno_core::Signals::default()).is_empty());
        let mut s = with_disk(vec![
            op("write", 2 * MS, 500),
            op("flush", 3 * MS, 100),
            op("read", 900 * MS, 100),
        ]);
        with_fsync(&mut s, 4 * MS, 100, Some(812));
        assert!(
            run(&DiskIo, &s).is_empty(),
            "slow reads are not this rule's business"
        );
    }

    #[test]
    fn slow_flush_warns_on_the_device_with_the_fsync_caller() {
        let mut s = with_disk(vec![op("write", 2 * MS, 500), op("flush", 80 * MS, 100)]);
        with_fsync(&mut s, 90 * MS, 100, Some(812));
        let f = one(run(&DiskIo, &s));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject.kind, "device");
        assert_eq!(f.subject.name, "loop0 (7:0)");
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 812);
        assert!(
            f.title.starts_with("disk loop0 (7:0) is slow: fsync p99"),
            "{}",
            f.title
        );
        assert!(f.title.contains("flush p99"), "{}", f.title);
        assert!(f.title.contains("`postgres` (pid 812)"), "{}", f.title);
        assert_eq!(f.threshold, 50.0);
        assert!(f.value > 80.0 && f.value < 100.0, "{}", f.value);
        assert!(f.fix.iter().any(|x| x.starts_with("iostat -x 1 5 loop0")));
        assert!(f.fix.iter().any(|x| x.starts_with("losetup -l /dev/loop0")));
        assert!(f.fix.iter().any(|x| x.contains("-p 812")));
        assert!(!f.low_volume);
    }

    #[test]
    fn very_slow_writes_are_critical() {
        let s = with_disk(vec![op("write", 400 * MS, 500)]);
        let f = one(run(&DiskIo, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.threshold, 200.0);
        assert!(f.subject.process.is_none());
        assert!(f.impact.contains("throttled"), "{}", f.impact);
    }

    #[test]
    fn flush_past_the_critical_threshold_is_critical() {
        let s = with_disk(vec![op("flush", 300 * MS, 50)]);
        assert_eq!(one(run(&DiskIo, &s)).severity, Severity::Critical);
    }

    #[test]
    fn boundary_is_strict() {
        let s = with_disk(vec![op("flush", 80 * MS, 100)]);
        let p99 = ms(s.disk.as_ref().unwrap().devices[0].ops[0]
            .latency
            .percentile(99.0)
            .unwrap());
        let mut t = Thresholds::default().with(&DISK_SYNC_P99_MS, p99).unwrap();
        assert!(
            run_with(&DiskIo, &s, &t).is_empty(),
            "exactly at the threshold is fine"
        );
        t.set(&DISK_SYNC_P99_MS, p99 - 0.001).unwrap();
        assert_eq!(one(run_with(&DiskIo, &s, &t)).severity, Severity::Warning);
        t.set(&DISK_CRITICAL_P99_MS, p99).unwrap();
        assert_eq!(one(run_with(&DiskIo, &s, &t)).severity, Severity::Warning);
        t.set(&DISK_CRITICAL_P99_MS, p99 - 0.001).unwrap();
        assert_eq!(one(run_with(&DiskIo, &s, &t)).severity, Severity::Critical);
    }

    #[test]
    fn writes_between_the_sync_and_write_thresholds_are_fine() {
        // 100 ms is slow for a flush but not for a write.
        let s = with_disk(vec![op("write", 100 * MS, 500)]);
        assert!(run(&DiskIo, &s).is_empty());
    }

    #[test]
    fn few_samples_are_informational() {
        let s = with_disk(vec![op("flush", 400 * MS, 5)]);
        let f = one(run(&DiskIo, &s));
        assert_eq!(f.severity, Severity::Info);
        assert!(f.low_volume);
        // One confident breach decides even if another is low volume.
        let s = with_disk(vec![op("flush", 400 * MS, 5), op("write", 250 * MS, 100)]);
        let f = one(run(&DiskIo, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert!(!f.low_volume);
        assert!(f.title.contains("is slow: write p99"), "{}", f.title);
    }

    #[test]
    fn slow_fsync_on_fast_devices_blames_the_process() {
        let mut s = with_disk(vec![op("write", 2 * MS, 500), op("flush", 3 * MS, 100)]);
        with_fsync(&mut s, 120 * MS, 100, Some(812));
        let f = one(run(&DiskIo, &s));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject.kind, "process");
        assert_eq!(f.subject.name, "postgres (pid 812)");
        assert!(f.cause.contains("within its thresholds"), "{}", f.cause);
        // Without any caller known and without the disk domain, the host is the subject.
        let mut s = signals();
        with_fsync(&mut s, 300 * MS, 100, None);
        let f = one(run(&DiskIo, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.subject.kind, "host");
        assert!(f.cause.contains("not observed"), "{}", f.cause);
    }

    #[test]
    fn never_blames_the_collector() {
        let mut s = signals();
        with_fsync(&mut s, 120 * MS, 100, Some(COLLECTOR));
        let f = one(run(&DiskIo, &s));
        assert_eq!(f.subject.kind, "host");
    }

    #[test]
    fn only_the_worst_device_carries_the_sync_calls() {
        let mut s = with_disk(vec![op("write", 300 * MS, 100)]);
        s.disk.as_mut().unwrap().devices.push(DiskDevice {
            dev: "259:0".into(),
            name: "nvme0n1".into(),
            ops: vec![op("flush", 900 * MS, 100)],
            ..Default::default()
        });
        with_fsync(&mut s, 120 * MS, 100, Some(812));
        let out = run(&DiskIo, &s);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].subject.name, "nvme0n1 (259:0)");
        assert!(out[0].subject.process.is_some());
        assert!(out[1].subject.process.is_none());
        assert!(
            out[0]
                .fix
                .iter()
                .any(|x| x.starts_with("nvme smart-log /dev/nvme0n1"))
        );
    }
}
