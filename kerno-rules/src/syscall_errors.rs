//! `syscall-errors`: a syscall fails often, with errnos that mean something is wrong.

use kerno_core::{
    Finding, ProcessErrors, Rule, Signals, Subject, SyscallStat, ThresholdSpec, Thresholds,
    thousands,
};

use crate::common::{finding, fmt_pct, grade, pct, proc_name, proc_where};

/// Per syscall with at least `syscall_error_min_calls` calls: the share of calls failing
/// with an errno not in `benign_errnos` above `syscall_error_pct` warns, above
/// `syscall_error_critical_pct` is critical. When the per-errno breakdown is missing every
/// failure counts; when it is there, only the non-benign errnos do. The subject is the
/// process with the most non-benign failures; the collector is never counted or named.
///
/// Errnos that answer a lookup with "not that one" (`probe_errnos`: ENXIO from opening a
/// socket or FIFO, ELOOP, ENOTDIR, EISDIR, ENAMETOOLONG) are what file scanners, indexers and
/// backup agents get all day from whatever they walk over; they count only when more than
/// `probe_errno_pct` of the syscall's calls fail with them (a program whose every open fails
/// with ENXIO is still caught).
pub struct SyscallErrors;

/// The rule's id.
pub const ID: &str = "syscall-errors";

/// `syscall_error_pct`: a syscall's error rate above this warns (%).
pub const SYSCALL_ERROR_PCT: ThresholdSpec = ThresholdSpec::number(
    "syscall_error_pct",
    1.0,
    "%",
    0.0,
    100.0,
    "a syscall's error rate above this warns",
);
/// `syscall_error_critical_pct`: a syscall's error rate above this is critical (%).
pub const SYSCALL_ERROR_CRITICAL_PCT: ThresholdSpec = ThresholdSpec::number(
    "syscall_error_critical_pct",
    10.0,
    "%",
    0.0,
    100.0,
    "a syscall's error rate above this is critical",
);
/// `syscall_error_min_calls`: fewer calls than this and the rule stays quiet.
pub const SYSCALL_ERROR_MIN_CALLS: ThresholdSpec = ThresholdSpec::count(
    "syscall_error_min_calls",
    100,
    "calls",
    "fewer calls than this and the rule stays quiet",
);
/// `syscall_error_min_errors`: fewer failures (not counting benign errnos) than this and the rule stays quiet, whatever the rate.
pub const SYSCALL_ERROR_MIN_ERRORS: ThresholdSpec = ThresholdSpec::count(
    "syscall_error_min_errors",
    10,
    "errors",
    "fewer failures (not counting benign errnos) than this and the rule stays quiet, whatever the rate",
);
/// `probe_errnos`: lookup answers that count only above `probe_errno_pct` of calls.
pub const PROBE_ERRNOS: ThresholdSpec = ThresholdSpec::list(
    "probe_errnos",
    &["ENXIO", "ELOOP", "ENOTDIR", "EISDIR", "ENAMETOOLONG"],
    "errnos that answer a path lookup with 'not that one' (scanners get them all day): they count only above probe_errno_pct of a syscall's calls",
);
/// `probe_errno_pct`: the share of calls failing with probe errnos above which they count (%).
pub const PROBE_ERRNO_PCT: ThresholdSpec = ThresholdSpec::number(
    "probe_errno_pct",
    10.0,
    "%",
    0.0,
    100.0,
    "probe_errnos count as failures only when more than this share of a syscall's calls fail with them",
);
/// `benign_errnos` by default.
const BENIGN_DEFAULT: &[&str] = &[
    "EAGAIN",
    "EINTR",
    "EINPROGRESS",
    "EALREADY",
    "ETIMEDOUT",
    "ERESTARTSYS",
    "ERESTARTNOINTR",
    "ERESTARTNOHAND",
    "ERESTART_RESTARTBLOCK",
    "ENOENT",
    "ENOTTY",
    "ECHILD",
    "ENODATA",
    "ESRCH",
    "EEXIST",
    "ENOSYS",
    "EOPNOTSUPP",
    "ENOTSUPP",
];
/// `benign_errnos`: errnos healthy programs return all day, not counted; `syscall:ERRNO` (e.g. `close:EBADF`) makes one routine for that syscall only.
pub const BENIGN_ERRNOS: ThresholdSpec = ThresholdSpec::list(
    "benign_errnos",
    BENIGN_DEFAULT,
    "errnos healthy programs return all day, not counted; `syscall:ERRNO` (e.g. `close:EBADF`) makes one routine for that syscall only",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[
    SYSCALL_ERROR_PCT,
    SYSCALL_ERROR_CRITICAL_PCT,
    SYSCALL_ERROR_MIN_CALLS,
    SYSCALL_ERROR_MIN_ERRORS,
    BENIGN_ERRNOS,
    PROBE_ERRNOS,
    PROBE_ERRNO_PCT,
];

/// What an errno means when a syscall returns it (a clause that follows "`connect`
/// returns ECONNREFUSED:"), and, for some, what it does to the program.
fn meaning(errno: &str) -> (&'static str, Option<&'static str>) {
    match errno {
        "EACCES" | "EPERM" => (
            "permission is denied by file modes or ownership, a missing capability, or a security policy (SELinux, AppArmor, a seccomp filter)",
            None,
        ),
        "EMFILE" => (
            "the process has as many descriptors open as its RLIMIT_NOFILE allows",
            Some(
                "It can open no file and accept no connection until it closes some: requests fail while the process looks alive.",
            ),
        ),
        "ENFILE" => (
            "the system-wide file table is full (fs.file-max)",
            Some("Every process on the host fails to open files and sockets."),
        ),
        "ENOSPC" => (
            "the file system is full, or out of inodes",
            Some("Writes fail: data is lost, logs stop, databases refuse commits."),
        ),
        "EDQUOT" => (
            "a disk quota is exhausted",
            Some("Writes fail for that user or project."),
        ),
        "EIO" => (
            "the device or file system returned an I/O error (a failing disk, a broken network file system, or a file system that hit an error)",
            Some("Reads and writes fail; data may already be damaged."),
        ),
        "EROFS" => (
            "the file system is read-only (often remounted read-only by the kernel after an error)",
            Some("Every write to it fails."),
        ),
        "ENOMEM" => (
            "the kernel could not allocate memory, or a limit such as vm.max_map_count was reached",
            None,
        ),
        "ECONNREFUSED" => (
            "nothing listens on the peer's port (the service is down or restarting, or the address is wrong)",
            Some("Every request to that peer fails at once; clients retry and add load."),
        ),
        "ECONNRESET" => (
            "the peer reset the connection (it crashed or restarted, closed with unread data, or a load balancer or firewall dropped the flow)",
            None,
        ),
        "EPIPE" => (
            "the program writes to a pipe or socket whose other end is already closed",
            None,
        ),
        "ENOTCONN" => (
            "the program uses a socket that is no longer connected",
            None,
        ),
        "EBADF" => (
            "the program uses a descriptor that is not open, a bug such as a double close or a use after close (which can hit an unrelated file that reused the number)",
            None,
        ),
        "EFAULT" => (
            "the program passed the kernel a bad pointer, a memory bug",
            None,
        ),
        "EINVAL" => (
            "the kernel rejects an argument (a bug, or a flag this kernel does not support)",
            None,
        ),
        "EADDRINUSE" => (
            "the address and port are already bound (another instance runs, or old sockets linger)",
            None,
        ),
        "EADDRNOTAVAIL" => (
            "no local address or port is free (short-lived outgoing connections used up the ephemeral port range)",
            Some("New outgoing connections fail until ports are released from TIME_WAIT."),
        ),
        "ENETUNREACH" | "EHOSTUNREACH" => (
            "there is no route to the destination (routing, an interface, or a firewall)",
            None,
        ),
        "ENOBUFS" => (
            "the kernel ran out of buffer space for the socket or device",
            None,
        ),
        "EBUSY" => (
            "the resource is busy (mounted, locked or in use by another process)",
            None,
        ),
        "ENOTDIR" | "EISDIR" => (
            "a path names the wrong kind of file (a bug, or a broken layout on disk)",
            None,
        ),
        "ENOTSOCK" => (
            "a socket call was made on a descriptor that is not a socket (a bug)",
            None,
        ),
        "ETXTBSY" => ("the file is an executable in use", None),
        "E2BIG" => ("the argument list or environment is too long", None),
        _ => ("the kernel refused the call with this errno", None),
    }
}

/// A command that looks at what an errno points to.
fn errno_check(errno: &str, pid: Option<u32>) -> Option<String> {
    let p = pid.map(|p| p.to_string()).unwrap_or_else(|| "<pid>".into());
    Some(match errno {
        "EMFILE" => format!("ls /proc/{p}/fd | wc -l; grep 'open files' /proc/{p}/limits  # open now vs the limit"),
        "ENFILE" => "cat /proc/sys/fs/file-nr  # allocated, free, maximum".into(),
        "ENOSPC" | "EDQUOT" => "df -h; df -i  # space and inodes per file system".into(),
        "EIO" => "dmesg -T | grep -iE 'i/o error|blk_update_request|ext4|xfs|btrfs|nfs' | tail -n 20  # what failed".into(),
        "EROFS" => "grep -E '\\sro[\\s,]' /proc/mounts  # file systems mounted read-only".into(),
        "EACCES" | "EPERM" => "journalctl -k --no-pager | grep -iE 'avc|apparmor|seccomp' | tail -n 20  # denials by a security policy".into(),
        "ENOMEM" => "free -m; sysctl vm.max_map_count vm.overcommit_memory".into(),
        "ECONNREFUSED" | "ECONNRESET" | "ENETUNREACH" | "EHOSTUNREACH" => format!(
            "strace -f -Z -e trace=connect -p {p}  # the peer addresses that fail; on the peer: ss -ltn"
        ),
        "EADDRNOTAVAIL" => "ss -tan state time-wait | wc -l; sysctl net.ipv4.ip_local_port_range  # ports in TIME_WAIT vs the range".into(),
        "EADDRINUSE" => "ss -ltnp  # who holds the port".into(),
        _ => return None,
    })
}

/// Errnos that are the expected answer of a probe, for the syscall that probes: healthy
/// programs get them all day. `readlink` on a path that is not a symlink (realpath), `lseek`
/// on a pipe, `fcntl(F_GETFD)` on a descriptor that may not be open (shells do it for every
/// command), `access` answering "no", feature probes of `ioctl`, `prctl`, `madvise` and
/// socket options.
const ROUTINE: &[(&str, &str)] = &[
    ("readlink", "EINVAL"),
    ("readlinkat", "EINVAL"),
    ("lseek", "ESPIPE"),
    ("fadvise64", "ESPIPE"),
    ("fcntl", "EBADF"),
    ("access", "EACCES"),
    ("faccessat", "EACCES"),
    ("faccessat2", "EACCES"),
    ("ioctl", "EINVAL"),
    ("prctl", "EINVAL"),
    ("madvise", "EINVAL"),
    ("setsockopt", "ENOPROTOOPT"),
    ("getsockopt", "ENOPROTOOPT"),
];

/// Whether `errno` from `syscall` is routine: in `benign_errnos` (an entry is an errno, or
/// `syscall:ERRNO` for one syscall only) or in [`ROUTINE`].
fn is_benign(syscall: &str, errno: &str, t: &Thresholds) -> bool {
    listed(&t.list(&BENIGN_ERRNOS), syscall, errno)
        || ROUTINE.iter().any(|(sc, e)| *sc == syscall && *e == errno)
}

/// Whether a list of `ERRNO` and `syscall:ERRNO` entries names this pair.
fn listed(list: &[&str], syscall: &str, errno: &str) -> bool {
    list.iter().any(|b| match b.split_once(':') {
        Some((sc, e)) => sc == syscall && e.eq_ignore_ascii_case(errno),
        None => b.eq_ignore_ascii_case(errno),
    })
}

/// Probe errnos of this syscall are routine when they are no more than `probe_errno_pct` of
/// its calls.
fn probes_are_routine(st: &SyscallStat, t: &Thresholds) -> bool {
    let probes = t.list(&PROBE_ERRNOS);
    let n: u64 = st
        .errnos
        .iter()
        .filter(|(e, _)| listed(&probes, &st.name, e))
        .map(|(_, n)| *n)
        .sum();
    pct(n, st.count) <= t.number(&PROBE_ERRNO_PCT)
}

/// The failures of one syscall that count.
struct Failures<'a> {
    /// Non-benign failures, the collector's taken out.
    bad: u64,
    /// Non-benign errnos, most first.
    errnos: Vec<(&'a str, u64)>,
    /// Benign errnos, most first.
    benign: Vec<(&'a str, u64)>,
    /// Processes with non-benign failures, most first, without the collector.
    procs: Vec<&'a ProcessErrors>,
}

fn failures<'a>(st: &'a SyscallStat, s: &Signals, t: &Thresholds) -> Failures<'a> {
    let probes = t.list(&PROBE_ERRNOS);
    let probes_routine = probes_are_routine(st, t);
    let benign_errno = |e: &str| {
        is_benign(&st.name, e, t) || (probes_routine && listed(&probes, &st.name, e))
    };
    let mut errnos: Vec<(&str, u64)> = Vec::new();
    let mut benign: Vec<(&str, u64)> = Vec::new();
    for (e, n) in &st.errnos {
        if benign_errno(e) {
            benign.push((e, *n));
        } else {
            errnos.push((e, *n));
        }
    }
    errnos.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    benign.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let is_collector = |p: &ProcessErrors| p.process.pid == s.collector_pid && s.collector_pid != 0;
    let mine = |benign_too: bool| -> u64 {
        st.top_errors
            .iter()
            .filter(|p| is_collector(p) && (benign_too || !benign_errno(&p.errno)))
            .map(|p| p.count)
            .sum()
    };
    let bad = if st.errnos.is_empty() {
        st.errors.saturating_sub(mine(true))
    } else {
        // The breakdown comes from per-process records read at slightly different moments
        // than the kernel's totals; it gives the share of each errno, the totals give how
        // many failed.
        let errors = st.errors.saturating_sub(mine(true));
        let listed: u64 = st.errnos.values().sum::<u64>().saturating_sub(mine(true));
        let bad_listed = errnos
            .iter()
            .map(|(_, n)| n)
            .sum::<u64>()
            .saturating_sub(mine(false));
        if listed == 0 {
            0
        } else {
            (errors as f64 * bad_listed as f64 / listed as f64).round() as u64
        }
    }
    .min(st.count);
    let mut procs: Vec<&ProcessErrors> = st
        .top_errors
        .iter()
        .filter(|p| !is_collector(p) && !benign_errno(&p.errno))
        .collect();
    procs.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then(a.process.pid.cmp(&b.process.pid))
    });
    Failures {
        bad,
        errnos,
        benign,
        procs,
    }
}

fn judge(st: &SyscallStat, s: &Signals, t: &Thresholds) -> Option<Finding> {
    let fl = failures(st, s, t);
    // A handful of failures is not a rate: two failed closes in 190 calls is 1%, and noise.
    if fl.bad < t.count(&SYSCALL_ERROR_MIN_ERRORS) {
        return None;
    }
    let rate = pct(fl.bad, st.count);
    let (severity, threshold) = grade(
        rate,
        t.number(&SYSCALL_ERROR_PCT),
        t.number(&SYSCALL_ERROR_CRITICAL_PCT),
    )?;
    let top = fl.procs.first().map(|p| &p.process);
    let name = &st.name;
    let subject = match top {
        Some(p) => Subject::process(p),
        None => Subject {
            kind: "syscall".into(),
            name: name.clone(),
            ..Subject::default()
        },
    };
    let mut f = finding(ID, severity, subject);
    let main = fl.errnos.first().map(|(e, _)| *e);
    f.title = match main {
        Some(e) => format!(
            "`{name}` fails {} of calls with {e} ({} of {})",
            fmt_pct(rate),
            thousands(fl.bad),
            thousands(st.count)
        ),
        None => format!(
            "`{name}` fails {} of calls ({} of {}; errno not recorded)",
            fmt_pct(rate),
            thousands(fl.bad),
            thousands(st.count)
        ),
    };
    if let Some(pe) = fl.procs.first() {
        // "Mostly" only when it is; otherwise name the biggest of several.
        if pe.count * 2 > fl.bad {
            f.title += &format!(", mostly in {}", proc_name(&pe.process));
        } else {
            f.title += &format!("; top process {}", proc_name(&pe.process));
        }
    }
    let (what, impact) = main.map(meaning).unwrap_or((
        "the per-errno breakdown was not recorded (the per-process map was full), so what failed is not known",
        None,
    ));
    f.cause = match main {
        Some(e) => format!("`{name}` returns {e}: {what}."),
        None => format!("`{name}` fails, but {what}."),
    };
    if fl.errnos.len() > 1 {
        let others: Vec<String> = fl.errnos[1..].iter().map(|(e, _)| e.to_string()).collect();
        f.cause += &format!(" It also fails with {}.", others.join(", "));
    }
    f.impact = impact.map(String::from).unwrap_or_else(|| {
        format!(
            "Every failed `{name}` is an operation the program could not do: it retries (more load and latency), logs, or fails the request it was serving."
        )
    });
    f.evidence.push(format!(
        "{} calls, {} failed; {} with errnos that point to a problem ({})",
        thousands(st.count),
        thousands(st.errors),
        thousands(fl.bad),
        fmt_pct(rate)
    ));
    if !fl.errnos.is_empty() || !fl.benign.is_empty() {
        let mut parts: Vec<String> = fl
            .errnos
            .iter()
            .map(|(e, n)| format!("{e} {}", thousands(*n)))
            .collect();
        parts.extend(
            fl.benign
                .iter()
                .map(|(e, n)| format!("{e} {} (routine, not counted)", thousands(*n))),
        );
        f.evidence.push(format!("by errno: {}", parts.join(", ")));
    }
    for pe in fl.procs.iter().take(5) {
        f.evidence.push(format!(
            "{}: {} × {}",
            proc_name(&pe.process),
            thousands(pe.count),
            pe.errno
        ));
    }
    if let Some(w) = top.and_then(proc_where) {
        f.evidence.push(format!(
            "{} runs in {w}",
            top.map(proc_name).unwrap_or_default()
        ));
    }
    f.value = rate;
    f.threshold = threshold;
    f.unit = "%".into();
    match top {
        Some(p) => f.fix.push(format!(
            "strace -f -Z -e trace={name} -p {}  # only the failing calls, with their arguments (Ctrl-C to stop)",
            p.pid
        )),
        None => f.fix.push(format!(
            "perf trace -a --failure -e {name} -- sleep 10  # (root) failing calls system-wide, with process and arguments"
        )),
    }
    if let Some(cmd) = main.and_then(|e| errno_check(e, top.map(|p| p.pid))) {
        // The errno's own check can be the trace above (connect refused, traced by connect).
        let command = |x: &str| x.split("  #").next().unwrap_or(x).trim().to_string();
        if !f.fix.iter().any(|x| command(x) == command(&cmd)) {
            f.fix.push(cmd);
        }
    }
    if let Some(p) = top {
        f.fix.push(format!(
            "journalctl _PID={} --since '10 min ago' --no-pager | tail -n 50  # what the program itself logged (if it logs to the journal)",
            p.pid
        ));
    }
    Some(f)
}

impl Rule for SyscallErrors {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(crate::common::RATE_WINDOW)
    }

    fn description(&self) -> &str {
        "a syscall failing with non-benign errnos above syscall_error_pct of calls (critical above syscall_error_critical_pct)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Per syscall with at least syscall_error_min_calls calls (and syscall_error_min_errors failures), the share of calls failing with an errno not in benign_errnos: above syscall_error_pct warns, above syscall_error_critical_pct is critical. Lookups that answer \"not that one\" (probe_errnos) count only when more than probe_errno_pct of the calls fail with them. The subject is the process with the most non-benign failures.".into(),
            when_it_fires: vec![
                "See the syscall and errno in the finding, then watch the process fail: strace -f -e trace=<syscall> -p <pid>.".into(),
                "Map the errno to its cause: EMFILE/ENFILE descriptor limits, ENOSPC a full disk, ECONNREFUSED a peer down, EACCES/EPERM permissions or a security policy, ETIMEDOUT the network.".into(),
                "Fix the cause; if the errno is expected for this workload, add it to benign_errnos.".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let Some(sc) = &s.syscalls else {
            return Vec::new();
        };
        sc.syscalls
            .iter()
            .filter(|st| {
                st.errors > 0 && st.count > 0 && st.count >= t.count(&SYSCALL_ERROR_MIN_CALLS)
            })
            .filter_map(|st| judge(st, s, t))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kerno_core::{Severity, SyscallSignals};

    use super::*;
    use crate::testutil::*;

    fn stat(
        name: &str,
        count: u64,
        errnos: &[(&str, u64)],
        top: Vec<ProcessErrors>,
    ) -> SyscallStat {
        let errnos: BTreeMap<String, u64> =
            errnos.iter().map(|(e, n)| (e.to_string(), *n)).collect();
        SyscallStat {
            name: name.into(),
            count,
            errors: errnos.values().sum(),
            errnos,
            top_errors: top,
            ..SyscallStat::default()
        }
    }

    fn perr(pid: u32, comm: &str, errno: &str, n: u64) -> ProcessErrors {
        ProcessErrors {
            process: proc_(pid, comm),
            errno: errno.into(),
            count: n,
        }
    }

    fn with(stats: Vec<SyscallStat>) -> Signals {
        let mut s = signals();
        s.syscalls = Some(SyscallSignals {
            syscalls: stats,
            ..SyscallSignals::default()
        });
        s
    }

    #[test]
    fn a_scanner_probing_paths_is_routine_but_an_open_that_always_fails_is_not() {
        // Seen on a shared CI machine: ~4,300 opens a second from one process, 1.1% of them
        // ENXIO (sockets and FIFOs in the tree it walks).
        let s = with(vec![stat(
            "openat",
            21_654,
            &[("ENXIO", 246), ("ENOENT", 90)],
            vec![perr(2211, "updatedb", "ENXIO", 246)],
        )]);
        assert!(run(&SyscallErrors, &s).is_empty(), "{:#?}", run(&SyscallErrors, &s));
        // ELOOP and ENOTDIR from the same walk, still a small share: routine.
        let s = with(vec![stat("openat", 10_000, &[("ELOOP", 300), ("ENOTDIR", 200)], vec![])]);
        assert!(run(&SyscallErrors, &s).is_empty());
        // Every open fails with ENXIO: that program cannot do its job.
        let s = with(vec![stat(
            "openat",
            2_000,
            &[("ENXIO", 2_000)],
            vec![perr(4121, "api", "ENXIO", 2_000)],
        )]);
        let f = one(run(&SyscallErrors, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 4121);
        // A client hammering a dead dependency stays a finding at a low share.
        let s = with(vec![stat(
            "connect",
            10_000,
            &[("ECONNREFUSED", 500)],
            vec![perr(4121, "api", "ECONNREFUSED", 500)],
        )]);
        assert_eq!(one(run(&SyscallErrors, &s)).severity, Severity::Warning);
        // The share is a threshold like the others.
        let s = with(vec![stat("openat", 10_000, &[("ENXIO", 500)], vec![])]);
        assert!(run(&SyscallErrors, &s).is_empty());
        let t = Thresholds::default().with(&PROBE_ERRNO_PCT, 2.0).unwrap();
        assert_eq!(one(run_with(&SyscallErrors, &s, &t)).severity, Severity::Warning);
    }

    #[test]
    fn benign_errnos_are_routine() {
        assert!(run(&SyscallErrors, &signals()).is_empty());
        // Half of all openat fail with ENOENT and most reads with EAGAIN: normal.
        let s = with(vec![
            stat("openat", 10_000, &[("ENOENT", 5_000)], vec![]),
            stat("recvfrom", 10_000, &[("EAGAIN", 9_000)], vec![]),
        ]);
        assert!(run(&SyscallErrors, &s).is_empty());
    }

    #[test]
    fn connection_refused_is_critical() {
        let s = with(vec![stat(
            "connect",
            20_000,
            &[
                ("ECONNREFUSED", 4_600),
                ("EINPROGRESS", 15_000),
                ("ETIMEDOUT", 100),
            ],
            vec![
                perr(4121, "api", "EINPROGRESS", 15_000),
                perr(4121, "api", "ECONNREFUSED", 4_500),
                perr(77, "curl", "ECONNREFUSED", 100),
            ],
        )]);
        let f = one(run(&SyscallErrors, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.title,
            "`connect` fails 23% of calls with ECONNREFUSED (4,600 of 20,000), mostly in `api` (pid 4121)"
        );
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 4121);
        assert!((f.value - 23.0).abs() < 1e-9);
        assert_eq!(f.threshold, 10.0);
        assert!(
            f.cause
                .starts_with("`connect` returns ECONNREFUSED: nothing listens"),
            "{}",
            f.cause
        );
        assert_eq!(
            f.fix.iter().filter(|x| x.starts_with("strace")).count(),
            1,
            "{:#?}",
            f.fix
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e.contains("EINPROGRESS 15,000 (routine, not counted)"))
        );
        assert!(!f.evidence.iter().any(|e| e.contains("× EINPROGRESS")));
        assert_eq!(
            f.fix[0],
            "strace -f -Z -e trace=connect -p 4121  # only the failing calls, with their arguments (Ctrl-C to stop)"
        );
    }

    #[test]
    fn boundaries_are_strict() {
        // 1% exactly: fine; 1.01%: warning; 10% exactly: warning; above: critical.
        let at = |bad: u64| with(vec![stat("write", 10_000, &[("EPIPE", bad)], vec![])]);
        assert!(run(&SyscallErrors, &at(100)).is_empty());
        assert_eq!(
            one(run(&SyscallErrors, &at(101))).severity,
            Severity::Warning
        );
        assert_eq!(
            one(run(&SyscallErrors, &at(1_000))).severity,
            Severity::Warning
        );
        let f = one(run(&SyscallErrors, &at(1_001)));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.subject.kind, "syscall");
        assert!(f.fix[0].starts_with("perf trace -a --failure -e write"));
    }

    #[test]
    fn too_few_failures_is_quiet() {
        // 2 of 190 is above 1%, but two failures say nothing about a rate.
        let st = stat(
            "close",
            190,
            &[("EBADF", 2)],
            vec![perr(7, "bash", "EBADF", 2)],
        );
        assert!(run(&SyscallErrors, &with(vec![st])).is_empty());
        let st = stat(
            "close",
            1_900,
            &[("EBADF", 20)],
            vec![perr(7, "bash", "EBADF", 20)],
        );
        assert_eq!(run(&SyscallErrors, &with(vec![st])).len(), 1);
    }

    #[test]
    fn too_few_calls_is_quiet() {
        assert!(
            run(
                &SyscallErrors,
                &with(vec![stat("openat", 99, &[("EACCES", 99)], vec![])])
            )
            .is_empty()
        );
        assert_eq!(
            run(
                &SyscallErrors,
                &with(vec![stat("openat", 100, &[("EACCES", 99)], vec![])])
            )
            .len(),
            1
        );
    }

    #[test]
    fn without_a_breakdown_every_failure_counts() {
        let mut st = stat("openat", 1_000, &[], vec![]);
        st.errors = 50;
        let f = one(run(&SyscallErrors, &with(vec![st])));
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.title.contains("errno not recorded"), "{}", f.title);
        // With a breakdown, failures it does not explain are not counted.
        let mut st = stat("openat", 1_000, &[("ENOENT", 10)], vec![]);
        st.errors = 50;
        assert!(run(&SyscallErrors, &with(vec![st])).is_empty());
    }

    #[test]
    fn probes_that_fail_by_design_are_routine() {
        // Seen on a real build machine: realpath() probing every path component.
        let s = with(vec![
            stat(
                "readlink",
                6_769,
                &[("EINVAL", 7_009), ("ENOENT", 94)],
                vec![],
            ),
            stat("lseek", 455, &[("ESPIPE", 20)], vec![]),
            stat("fcntl", 482, &[("EBADF", 9)], vec![]),
        ]);
        assert!(run(&SyscallErrors, &s).is_empty());
        // The same errno from another syscall is not.
        let s = with(vec![stat("close", 482, &[("EBADF", 19)], vec![])]);
        assert_eq!(one(run(&SyscallErrors, &s)).severity, Severity::Warning);
        // `syscall:ERRNO` in benign_errnos silences one pair only.
        let mut t = Thresholds::default();
        let mut benign: Vec<String> = t
            .list(&BENIGN_ERRNOS)
            .iter()
            .map(|e| e.to_string())
            .collect();
        benign.push("close:EBADF".into());
        t.set(&BENIGN_ERRNOS, benign).unwrap();
        assert!(run_with(&SyscallErrors, &s, &t).is_empty());
        let s = with(vec![stat("dup2", 482, &[("EBADF", 19)], vec![])]);
        assert_eq!(run_with(&SyscallErrors, &s, &t).len(), 1);
    }

    #[test]
    fn the_kernel_totals_bound_the_breakdown() {
        // Per-process records can add up to more than the kernel's count of the window.
        let mut st = stat("openat", 1_000, &[("EACCES", 300), ("ENOENT", 100)], vec![]);
        st.errors = 200;
        let f = one(run(&SyscallErrors, &with(vec![st])));
        assert_eq!(
            f.title,
            "`openat` fails 15% of calls with EACCES (150 of 1,000)"
        );
    }

    #[test]
    fn mostly_means_mostly() {
        let top = vec![
            perr(1, "a", "EACCES", 40),
            perr(2, "b", "EACCES", 30),
            perr(3, "c", "EACCES", 30),
        ];
        let f = one(run(
            &SyscallErrors,
            &with(vec![stat("openat", 1_000, &[("EACCES", 100)], top)]),
        ));
        assert!(
            f.title.ends_with("(100 of 1,000); top process `a` (pid 1)"),
            "{}",
            f.title
        );
    }

    #[test]
    fn custom_benign_list() {
        let s = with(vec![stat(
            "connect",
            1_000,
            &[("ECONNREFUSED", 500)],
            vec![],
        )]);
        let mut t = Thresholds::default();
        let mut benign: Vec<String> = t
            .list(&BENIGN_ERRNOS)
            .iter()
            .map(|e| e.to_string())
            .collect();
        benign.push("ECONNREFUSED".into());
        t.set(&BENIGN_ERRNOS, benign).unwrap();
        assert!(run_with(&SyscallErrors, &s, &t).is_empty());
    }

    #[test]
    fn the_collector_is_neither_counted_nor_named() {
        let s = with(vec![stat(
            "openat",
            1_000,
            &[("EACCES", 15)],
            vec![
                perr(COLLECTOR, "kerno", "EACCES", 10),
                perr(311, "nginx", "EACCES", 5),
            ],
        )]);
        // 15 EACCES, 10 of them the collector's: 0.5%, under 1%.
        assert!(run(&SyscallErrors, &s).is_empty());
        let s = with(vec![stat(
            "openat",
            1_000,
            &[("EACCES", 40)],
            vec![
                perr(COLLECTOR, "kerno", "EACCES", 10),
                perr(311, "nginx", "EACCES", 30),
            ],
        )]);
        let f = one(run(&SyscallErrors, &s));
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 311);
        assert!(f.title.contains("(30 of 1,000)"), "{}", f.title);
    }

    #[test]
    fn emfile_points_at_the_limit() {
        let s = with(vec![stat(
            "accept4",
            1_000,
            &[("EMFILE", 300)],
            vec![perr(4121, "api", "EMFILE", 300)],
        )]);
        let f = one(run(&SyscallErrors, &s));
        assert!(f.fix.iter().any(|x| {
            x.starts_with("ls /proc/4121/fd | wc -l; grep 'open files' /proc/4121/limits")
        }));
        assert!(f.impact.contains("accept no connection"));
    }
}
