//! `filesystem-full`: a mounted filesystem is running out of space or inodes.

use kerno_core::{
    Filesystem, Finding, Rule, Severity, Signals, Subject, ThresholdSpec, Thresholds, human_bytes,
    human_secs, thousands, trend::Trend,
};

use crate::common::{finding, fmt_byte_rate, fmt_pct, fmt_rate, grade};

/// A writable, real filesystem whose space or inodes are more than `fs_used_warn_pct` used
/// (everything not available to unprivileged writers counts as used, as node-exporter and
/// the kubelet count it) warns, above `fs_used_crit_pct` it is critical; one filling
/// steadily (the trend of its per-second series) that will be full within
/// `fs_fill_eta_secs` warns once past `fs_fill_min_used_pct`, and is critical within
/// `fs_fill_crit_eta_secs` (the rate is read only from `fs_fill_min_secs` of window or
/// more). The filesystems holding the kubelet's (`/var/lib/kubelet`) and
/// the container runtime's (`/var/lib/containerd`, `/var/lib/docker`) state are named as
/// such: the kubelet evicts pods when they fill.
pub struct FilesystemFull;

/// The rule's id.
pub const ID: &str = "filesystem-full";

/// `fs_used_warn_pct`: space or inodes used above this share warns (%).
pub const FS_USED_WARN_PCT: ThresholdSpec = ThresholdSpec::number(
    "fs_used_warn_pct",
    90.0,
    "%",
    0.0,
    100.0,
    "a filesystem's space or inodes used (not available to unprivileged writers) above this share warns",
);
/// `fs_used_crit_pct`: space or inodes used above this share is critical (%).
pub const FS_USED_CRIT_PCT: ThresholdSpec = ThresholdSpec::number(
    "fs_used_crit_pct",
    95.0,
    "%",
    0.0,
    100.0,
    "a filesystem's space or inodes used above this share is critical",
);
/// `fs_fill_eta_secs`: a filesystem filling steadily that will be full sooner warns (s).
pub const FS_FILL_ETA_SECS: ThresholdSpec = ThresholdSpec::number(
    "fs_fill_eta_secs",
    3600.0,
    "s",
    0.0,
    f64::MAX,
    "a filesystem filling steadily that will be full within this time warns",
);
/// `fs_fill_crit_eta_secs`: ... and is critical when it will be full this soon (s).
pub const FS_FILL_CRIT_ETA_SECS: ThresholdSpec = ThresholdSpec::number(
    "fs_fill_crit_eta_secs",
    300.0,
    "s",
    0.0,
    f64::MAX,
    "a filesystem filling steadily that will be full within this time is critical",
);
/// `fs_fill_min_used_pct`: the fill-rate ETA is only read past this share used (%).
pub const FS_FILL_MIN_USED_PCT: ThresholdSpec = ThresholdSpec::number(
    "fs_fill_min_used_pct",
    60.0,
    "%",
    0.0,
    100.0,
    "the time-to-full is only considered for a filesystem more than this share used (bursts on an emptier one are not a countdown)",
);
/// `fs_fill_min_secs`: the fill rate is only read from a series this long (s).
pub const FS_FILL_MIN_SECS: ThresholdSpec = ThresholdSpec::number(
    "fs_fill_min_secs",
    20.0,
    "s",
    0.0,
    f64::MAX,
    "the time-to-full is only read from at least this much of a window (writes come in bursts: a few seconds' rate is not a fill rate)",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[
    FS_USED_WARN_PCT,
    FS_USED_CRIT_PCT,
    FS_FILL_ETA_SECS,
    FS_FILL_CRIT_ETA_SECS,
    FS_FILL_MIN_USED_PCT,
    FS_FILL_MIN_SECS,
];

/// Space or inodes: what a finding is about.
#[derive(Clone, Copy, PartialEq)]
enum Resource {
    Space,
    Inodes,
}

/// One resource of one filesystem, as the rule reads it.
struct Reading<'a> {
    fs: &'a Filesystem,
    what: Resource,
    used_pct: f64,
    /// Seconds to full at the steady fill rate, and that rate (units per second).
    filling: Option<(f64, f64)>,
}

fn reading<'a>(fs: &'a Filesystem, what: Resource, t: &Thresholds) -> Reading<'a> {
    let (used_pct, series, total) = match what {
        Resource::Space => (fs.used_pct(), &fs.used_series, fs.size_bytes as f64),
        Resource::Inodes => (
            fs.inodes_used_pct(),
            &fs.inodes_used_series,
            fs.inodes as f64,
        ),
    };
    let min_secs = t.number(&FS_FILL_MIN_SECS);
    let filling = Trend::of(series)
        .filter(|tr| tr.points >= 3 && tr.span_secs >= min_secs && tr.sustained(0.0))
        .and_then(|t| Some((t.eta_secs(total)?, t.slope_per_sec)));
    Reading {
        fs,
        what,
        used_pct,
        filling,
    }
}

/// The severity a reading earns, with the threshold it crossed and whether the countdown
/// (rather than the level) earned it.
fn judge(r: &Reading<'_>, t: &Thresholds) -> Option<(Severity, f64, bool)> {
    let level = grade(
        r.used_pct,
        t.number(&FS_USED_WARN_PCT),
        t.number(&FS_USED_CRIT_PCT),
    );
    let eta = r
        .filling
        .filter(|_| r.used_pct > t.number(&FS_FILL_MIN_USED_PCT))
        .map(|(eta, _)| eta)
        .filter(|eta| *eta < t.number(&FS_FILL_ETA_SECS));
    let by_eta = eta.map(|eta| {
        if eta < t.number(&FS_FILL_CRIT_ETA_SECS) {
            Severity::Critical
        } else {
            Severity::Warning
        }
    });
    match (level, by_eta) {
        (None, None) => None,
        (Some((s, th)), None) => Some((s, th, false)),
        (None, Some(s)) => Some((s, t.number(&FS_USED_WARN_PCT), true)),
        (Some((ls, th)), Some(es)) => Some((ls.max(es), th, es > ls)),
    }
}

/// How the filesystem's role reads in a title: `the kubelet's filesystem`.
fn role_words(fs: &Filesystem) -> Option<String> {
    let mut parts = Vec::new();
    if fs.roles.iter().any(|r| r == "kubelet") {
        parts.push("the kubelet's (nodefs)");
    }
    if fs.roles.iter().any(|r| r == "containerd") {
        parts.push("containerd's (imagefs)");
    }
    if fs.roles.iter().any(|r| r == "docker") {
        parts.push("Docker's (imagefs)");
    }
    (!parts.is_empty()).then(|| format!("{} filesystem", parts.join(" and ")))
}

fn subject(fs: &Filesystem) -> Subject {
    Subject {
        kind: "filesystem".into(),
        name: fs.label(),
        ..Subject::default()
    }
}

fn full(r: &Reading<'_>, severity: Severity, threshold: f64, by_eta: bool, s: &Signals) -> Finding {
    let fs = r.fs;
    let mut f = finding(ID, severity, subject(fs));
    let who = match role_words(fs) {
        Some(role) => format!("{role} {}", fs.mountpoint),
        None => format!("filesystem {}", fs.mountpoint),
    };
    let (noun, left) = match r.what {
        Resource::Space => (
            "space",
            format!("{} left of {}", human_bytes(fs.avail_bytes), human_bytes(fs.size_bytes)),
        ),
        Resource::Inodes => (
            "inodes",
            format!(
                "{} inodes left of {}",
                thousands(fs.inodes_free),
                thousands(fs.inodes)
            ),
        ),
    };
    let rate = |v: f64| match r.what {
        Resource::Space => fmt_byte_rate(v),
        Resource::Inodes => format!("{} inodes/s", fmt_rate(v)),
    };
    f.title = match (by_eta, r.filling) {
        (true, Some((eta, slope))) => format!(
            "{who} will be out of {noun} in about {}: {} used, {left}, filling {}",
            human_secs(eta),
            fmt_pct(r.used_pct),
            rate(slope)
        ),
        _ => format!(
            "{who} is {} full ({noun}): {left}",
            fmt_pct(r.used_pct)
        ),
    };
    f.cause = match r.what {
        Resource::Space => "Almost no space is left for ordinary processes on this filesystem (the blocks reserved for root are counted as used: unprivileged writers get ENOSPC there already). Something keeps writing to it: logs, caches, images, core dumps, or files deleted while a process still holds them open (their space is freed only when it closes them).".into(),
        Resource::Inodes => "The filesystem is running out of inodes, not bytes: every file, directory and symlink takes one, so millions of small files (caches, mail queues, session files, container layers) exhaust it while `df -h` still shows free space. When none is left, creating any file fails with ENOSPC.".into(),
    };
    if let Some((_, slope)) = r.filling {
        f.cause += &format!(
            " Over this window it filled steadily at {}; the time to full assumes that goes on.",
            rate(slope)
        );
    }
    f.impact = "Writes fail with ENOSPC: databases stop or corrupt their last transaction, logs are lost, applications crash on a failed write, and package updates or container image pulls break.".into();
    if fs.roles.iter().any(|r| r == "kubelet") {
        f.impact += " This is the kubelet's filesystem (nodefs): below its eviction threshold (`nodefs.available<10%`, `nodefs.inodesFree<5%` by default) the node is marked DiskPressure, no new pods are scheduled on it and the kubelet evicts running pods, BestEffort first.";
    }
    if fs.roles.iter().any(|r| r == "containerd" || r == "docker") {
        f.impact += " This is the container runtime's filesystem (imagefs): the kubelet garbage-collects images from 85% used and evicts pods below `imagefs.available<15%`; image pulls, and so new pods and restarts, fail once it is full.";
    }
    f.evidence.push(format!(
        "{}: {} used ({}), {} available to unprivileged writers",
        fs.label(),
        human_bytes(fs.used_bytes()),
        fmt_pct(fs.used_pct()),
        human_bytes(fs.avail_bytes)
    ));
    if fs.reserved_bytes() > 0 {
        f.evidence.push(format!(
            "{} more is free but reserved for root (counted as used)",
            human_bytes(fs.reserved_bytes())
        ));
    }
    if fs.inodes > 0 {
        f.evidence.push(format!(
            "inodes: {} of {} used ({})",
            thousands(fs.inodes_used()),
            thousands(fs.inodes),
            fmt_pct(fs.inodes_used_pct())
        ));
    }
    let secs = s.window_secs();
    let (start, end) = match r.what {
        Resource::Space => (
            fs.size_bytes.saturating_sub(fs.avail_start_bytes),
            fs.used_bytes(),
        ),
        Resource::Inodes => (
            fs.inodes.saturating_sub(fs.inodes_free_start),
            fs.inodes_used(),
        ),
    };
    let show = |v: u64| match r.what {
        Resource::Space => human_bytes(v),
        Resource::Inodes => format!("{} inodes", thousands(v)),
    };
    f.evidence.push(if start == end {
        format!("flat over the {} window", human_secs(secs))
    } else {
        format!(
            "{} used at the start of the {} window, {} at the end",
            show(start),
            human_secs(secs),
            show(end)
        )
    });
    if !fs.roles.is_empty() {
        f.evidence.push(format!(
            "holds {}",
            fs.roles
                .iter()
                .map(|r| format!("/var/lib/{r}"))
                .collect::<Vec<_>>()
                .join(" and ")
        ));
    }
    f.value = r.used_pct;
    f.threshold = threshold;
    f.unit = "%".into();
    f.eta_secs = r.filling.map(|(eta, _)| eta);
    let m = &fs.mountpoint;
    match r.what {
        Resource::Space => {
            f.fix.push(format!("df -h {m}  # size, used, available"));
            f.fix.push(format!(
                "du -xh --max-depth=2 {m} 2>/dev/null | sort -rh | head -n 20  # the biggest directories on this filesystem"
            ));
            f.fix.push(format!(
                "find /proc/[0-9]*/fd -lname '{}*(deleted)' -printf '%p -> %l\\n' 2>/dev/null  # deleted files still held open (restart their process to free the space)",
                if m == "/" { "/" } else { m.as_str() }
            ));
        }
        Resource::Inodes => {
            f.fix.push(format!("df -i {m}  # inodes used and free"));
            f.fix.push(format!(
                "du -x --inodes --max-depth=3 {m} 2>/dev/null | sort -rn | head -n 20  # the directories with the most files"
            ));
        }
    }
    if fs.roles.iter().any(|r| r == "kubelet") {
        f.fix.push("du -xsh /var/lib/kubelet/pods/*/volumes/* 2>/dev/null | sort -rh | head  # emptyDir volumes that grew; the pods writing them".into());
        f.fix.push("du -xsh /var/log/pods/* 2>/dev/null | sort -rh | head  # container logs (containerLogMaxSize / containerLogMaxFiles bound them)".into());
    }
    if fs.roles.iter().any(|r| r == "containerd") {
        f.fix.push("crictl rmi --prune  # remove images no container uses".into());
    }
    if fs.roles.iter().any(|r| r == "docker") {
        f.fix.push("docker system df; docker image prune -a  # what images, containers and build cache use; remove unused images".into());
    }
    f.fix.push("Free space (rotate and compress logs, remove old data, empty caches) or grow the filesystem; find and fix what writes so much.".into());
    f
}

impl Rule for FilesystemFull {
    fn id(&self) -> &str {
        ID
    }

    fn description(&self) -> &str {
        "a filesystem's space or inodes above fs_used_warn_pct used (critical above fs_used_crit_pct), or filling steadily to full within fs_fill_eta_secs"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Every writable, non-pseudo mounted filesystem (one per device): space and inodes used as node-exporter and the kubelet count them (1 - f_bavail / size). Above fs_used_warn_pct it warns, above fs_used_crit_pct it is critical. A steady fill (Theil-Sen slope over the window's per-second series, only when the window is at least fs_fill_min_secs long and the filesystem is past fs_fill_min_used_pct) that reaches full within fs_fill_eta_secs warns, within fs_fill_crit_eta_secs it is critical. The kubelet's and the runtime's filesystems are named: their filling evicts pods.".into(),
            when_it_fires: vec![
                "See what grows: du -xh --max-depth=2 <mountpoint> | sort -h | tail (and df -i <mountpoint> for inodes).".into(),
                "Free space first: rotate or truncate big logs (journalctl --vacuum-size=500M), prune images (crictl rmi --prune) on a kubelet or runtime filesystem.".into(),
                "Then fix the writer (a log without rotation, a growing cache, a core dump loop) or grow the filesystem.".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let Some(fs) = &s.filesystem else {
            return Vec::new();
        };
        fs.filesystems
            .iter()
            .filter(|f| f.size_bytes > 0)
            .filter_map(|f| {
                // The worse of space and inodes speaks for the filesystem.
                [Resource::Space, Resource::Inodes]
                    .into_iter()
                    .map(|w| reading(f, w, t))
                    .filter_map(|r| judge(&r, t).map(|j| (r, j)))
                    .max_by(|(a, ja), (b, jb)| {
                        ja.0.cmp(&jb.0).then(a.used_pct.total_cmp(&b.used_pct))
                    })
            })
            .map(|(r, (sev, th, by_eta))| full(&r, sev, th, by_eta, s))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::{FilesystemSignals, Series};

    use super::*;
    use crate::testutil::*;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    /// A filesystem of `size` bytes with `used` used, flat over the window.
    fn fs(mountpoint: &str, size: u64, used: u64) -> Filesystem {
        Filesystem {
            mountpoint: mountpoint.into(),
            device: "/dev/sda1".into(),
            dev: "8:1".into(),
            fstype: "ext4".into(),
            roles: Vec::new(),
            size_bytes: size,
            avail_bytes: size - used,
            avail_start_bytes: size - used,
            free_bytes: size - used,
            inodes: 1_000_000,
            inodes_free: 900_000,
            inodes_free_start: 900_000,
            used_series: Series::from_points((0..=30).map(|i| (i * 1000, used as f64))),
            inodes_used_series: Series::from_points((0..=30).map(|i| (i * 1000, 100_000.0))),
        }
    }

    /// Filling by `per_sec` bytes a second over a window of `secs`, ending at `used`.
    fn filling_for(mut f: Filesystem, per_sec: u64, secs: u64) -> Filesystem {
        let end = f.used_bytes();
        f.avail_start_bytes = f.avail_bytes + secs * per_sec;
        f.used_series = Series::from_points(
            (0..=secs).map(|i| (i * 1000, (end - (secs - i) * per_sec) as f64)),
        );
        f
    }

    /// Filling by `per_sec` bytes a second over the 30 s window, ending at `used`.
    fn filling(f: Filesystem, per_sec: u64) -> Filesystem {
        filling_for(f, per_sec, 30)
    }

    /// A 30 s window.
    fn with(list: Vec<Filesystem>) -> Signals {
        let mut s = signals();
        s.window.duration_ms = 30_000;
        s.filesystem = Some(FilesystemSignals { filesystems: list });
        s
    }

    #[test]
    fn roomy_is_quiet() {
        assert!(run(&FilesystemFull, &signals()).is_empty());
        assert!(run(&FilesystemFull, &with(vec![fs("/", 100 * GIB, 85 * GIB)])).is_empty());
        // Filling fast, but mostly empty: a burst, not a countdown.
        let burst = filling(fs("/data", 10 * GIB, 5 * GIB), 50 * MIB);
        assert!(run(&FilesystemFull, &with(vec![burst])).is_empty());
    }

    #[test]
    fn warns_past_90_and_is_critical_past_95() {
        let f = one(run(&FilesystemFull, &with(vec![fs("/", 100 * GIB, 92 * GIB)])));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject.kind, "filesystem");
        assert_eq!(f.subject.name, "/ (/dev/sda1, ext4)");
        assert_eq!(
            f.title,
            "filesystem / is 92% full (space): 8.0 GiB left of 100.0 GiB"
        );
        assert_eq!((f.value, f.threshold, f.eta_secs), (92.0, 90.0, None));
        assert!(f.evidence.iter().any(|e| e.starts_with("flat over")));
        assert!(f.fix.iter().any(|x| x.starts_with("du -xh --max-depth=2 / ")));
        let f = one(run(&FilesystemFull, &with(vec![fs("/", 100 * GIB, 96 * GIB)])));
        assert_eq!((f.severity, f.threshold), (Severity::Critical, 95.0));
    }

    #[test]
    fn boundary_is_strict() {
        let size = 1000 * MIB;
        assert!(run(&FilesystemFull, &with(vec![fs("/", size, 900 * MIB)])).is_empty());
        let f = one(run(
            &FilesystemFull,
            &with(vec![fs("/", size, 900 * MIB + 1)]),
        ));
        assert_eq!(f.severity, Severity::Warning);
        let f = one(run(&FilesystemFull, &with(vec![fs("/", size, 950 * MIB)])));
        assert_eq!(f.severity, Severity::Warning, "95% exactly is not above 95%");
    }

    #[test]
    fn reserved_blocks_count_as_used() {
        let mut f = fs("/", 100 * GIB, 80 * GIB);
        // 15 GiB free, of which only 5 GiB is available to ordinary writers.
        f.free_bytes = 20 * GIB;
        f.avail_bytes = 5 * GIB;
        f.avail_start_bytes = 5 * GIB;
        let out = one(run(&FilesystemFull, &with(vec![f])));
        assert_eq!(out.value, 95.0);
        assert!(
            out.evidence
                .iter()
                .any(|e| e == "15.0 GiB more is free but reserved for root (counted as used)")
        );
    }

    #[test]
    fn the_countdown_warns_before_the_level_does() {
        // 70% used, 3 GiB left, filling 2 MiB/s: full in ~26 min.
        let f = filling(fs("/var", 10 * GIB, 7 * GIB), 2 * MIB);
        let out = one(run(&FilesystemFull, &with(vec![f.clone()])));
        assert_eq!(out.severity, Severity::Warning);
        assert!(
            out.title.starts_with("filesystem /var will be out of space in about 26 min: 70% used"),
            "{}",
            out.title
        );
        assert!(out.eta_secs.unwrap() > 1500.0 && out.eta_secs.unwrap() < 1600.0);
        // 20 MiB/s: full in ~2.5 min, critical.
        let fast = filling(fs("/var", 10 * GIB, 7 * GIB), 20 * MIB);
        let out = one(run(&FilesystemFull, &with(vec![fast])));
        assert_eq!(out.severity, Severity::Critical);
        // Below the level gate the countdown is not read.
        let t = Thresholds::default()
            .with(&FS_FILL_MIN_USED_PCT, 75.0)
            .unwrap();
        assert!(run_with(&FilesystemFull, &with(vec![f.clone()]), &t).is_empty());
        // Nor from a few seconds of writes.
        let short = filling_for(fs("/var", 10 * GIB, 7 * GIB), 2 * MIB, 19);
        assert!(run(&FilesystemFull, &with(vec![short])).is_empty());
        let long = filling_for(fs("/var", 10 * GIB, 7 * GIB), 2 * MIB, 20);
        assert_eq!(run(&FilesystemFull, &with(vec![long])).len(), 1);
    }

    #[test]
    fn inodes_fill_too() {
        let mut f = fs("/srv", 100 * GIB, 10 * GIB);
        f.inodes_free = 30_000;
        let out = one(run(&FilesystemFull, &with(vec![f])));
        assert_eq!(out.severity, Severity::Critical);
        assert_eq!(
            out.title,
            "filesystem /srv is 97% full (inodes): 30,000 inodes left of 1,000,000"
        );
        assert!(out.fix.iter().any(|x| x.starts_with("df -i /srv")));
    }

    #[test]
    fn the_kubelet_and_runtime_filesystems_are_named() {
        let mut f = fs("/", 100 * GIB, 93 * GIB);
        f.roles = vec!["kubelet".into(), "containerd".into()];
        let out = one(run(&FilesystemFull, &with(vec![f])));
        assert!(
            out.title
                .starts_with("the kubelet's (nodefs) and containerd's (imagefs) filesystem / is 93% full"),
            "{}",
            out.title
        );
        assert!(out.impact.contains("DiskPressure") && out.impact.contains("imagefs"));
        assert!(out.fix.iter().any(|x| x.starts_with("crictl rmi --prune")));
        assert!(
            out.evidence
                .iter()
                .any(|e| e == "holds /var/lib/kubelet and /var/lib/containerd")
        );
    }
}
