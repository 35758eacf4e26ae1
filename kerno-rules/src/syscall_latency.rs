//! `syscall-latency`: syscalls that should be quick take long.

use kerno_core::{
    Finding, ProcessSlow, Rule, Signals, Subject, SyscallStat, ThresholdSpec, Thresholds, human_ns,
    thousands,
};

use crate::common::{finding, fmt_rate, grade, latency_line, ms, proc_name, proc_where};

/// Per syscall that does not wait by design, with at least `syscall_min_calls` calls: p99
/// above `syscall_p99_ms` warns, above `syscall_critical_p99_ms` is critical. The subject is
/// the process with the most slow calls. `fsync`/`fdatasync` are left to `disk-io`, which
/// holds them to a stricter threshold.
pub struct SyscallLatency;

/// The rule's id.
pub const ID: &str = "syscall-latency";

/// `syscall_p99_ms`: a syscall's p99 above this warns; waits are excluded (ms).
pub const SYSCALL_P99_MS: ThresholdSpec = ThresholdSpec::number(
    "syscall_p99_ms",
    100.0,
    "ms",
    0.0,
    f64::MAX,
    "a syscall's p99 above this warns; waits are excluded",
);
/// `syscall_critical_p99_ms`: a syscall p99 above this is critical (ms).
pub const SYSCALL_CRITICAL_P99_MS: ThresholdSpec = ThresholdSpec::number(
    "syscall_critical_p99_ms",
    500.0,
    "ms",
    0.0,
    f64::MAX,
    "a syscall p99 above this is critical",
);
/// `syscall_min_calls`: fewer calls than this and the rule stays quiet.
pub const SYSCALL_MIN_CALLS: ThresholdSpec = ThresholdSpec::count(
    "syscall_min_calls",
    20,
    "calls",
    "fewer calls than this and the rule stays quiet",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] =
    &[SYSCALL_P99_MS, SYSCALL_CRITICAL_P99_MS, SYSCALL_MIN_CALLS];

/// Syscalls another rule judges.
const ELSEWHERE: [&str; 2] = ["fsync", "fdatasync"];

/// What a syscall works on, which says where its time goes.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Class {
    Write,
    File,
    Memory,
    Socket,
    Process,
    Other,
}

fn class(name: &str) -> Class {
    match name {
        "write" | "writev" | "pwrite64" | "pwritev" | "pwritev2" | "sendfile" | "splice"
        | "copy_file_range" => Class::Write,
        "pread64" | "preadv" | "preadv2" | "open" | "openat" | "openat2" | "creat" | "stat"
        | "lstat" | "fstat" | "newfstatat" | "statx" | "access" | "faccessat" | "faccessat2"
        | "getdents64" | "unlink" | "unlinkat" | "rename" | "renameat" | "renameat2" | "mkdir"
        | "mkdirat" | "rmdir" | "truncate" | "ftruncate" | "fallocate" | "close" | "syncfs"
        | "sync_file_range" | "msync" | "readlink" | "readlinkat" | "chmod" | "fchmodat"
        | "chown" | "fchownat" | "link" | "linkat" | "symlink" | "symlinkat" | "utimensat" => {
            Class::File
        }
        "mmap" | "munmap" | "mprotect" | "mremap" | "brk" | "madvise" | "mlock" | "mlock2"
        | "munlock" | "mlockall" => Class::Memory,
        "sendto" | "sendmsg" | "sendmmsg" | "shutdown" | "bind" | "listen" | "socket"
        | "setsockopt" => Class::Socket,
        "clone" | "clone3" | "fork" | "vfork" | "execve" | "execveat" => Class::Process,
        _ => Class::Other,
    }
}

/// Why a syscall of this class is slow, in plain words.
fn why(c: Class) -> &'static str {
    match c {
        Class::Write => {
            "A write blocks when a pipe or socket buffer is full (the reader does not keep up) or when the page cache holds too much dirty data and the kernel throttles writers until a slow disk catches up."
        }
        Class::File => {
            "File system calls are slow when the storage under them is (a saturated or failing disk, a network file system such as NFS, CIFS or FUSE), or when they wait for a file system lock (a huge directory, a journal commit, a file being truncated or written back)."
        }
        Class::Memory => {
            "Memory mapping calls are slow when memory is short and the kernel reclaims pages inline (direct reclaim), or when many threads of one process contend for its address-space lock."
        }
        Class::Socket => {
            "Socket calls block when the send buffer is full (the peer or the network does not keep up) or on contended socket and protocol locks."
        }
        Class::Process => {
            "Creating processes is slow when a large address space has to be copied (fork of a big process), when memory is short, or when the binary is read from slow storage."
        }
        Class::Other => {
            "The kernel took long to complete the call: it blocked on I/O, on a kernel lock, or on memory reclaim."
        }
    }
}

/// Where to look next for this class, for the fix list.
fn class_check(c: Class) -> Option<&'static str> {
    match c {
        Class::Write | Class::File => Some(
            "iostat -x 1 5; findmnt -t nfs,nfs4,cifs,fuse  # slow devices, network file systems",
        ),
        Class::Memory => Some(
            "grep -E '^(allocstall|pgscan_direct)' /proc/vmstat  # direct reclaim counters: rising means memory is short",
        ),
        Class::Socket => Some("ss -tmp  # Send-Q and skmem per socket: full send buffers"),
        Class::Process | Class::Other => None,
    }
}

fn slow_line(ps: &ProcessSlow) -> String {
    format!(
        "{}: {} slow calls, mean {}, max {}",
        proc_name(&ps.process),
        thousands(ps.count),
        human_ns(ps.mean_ns as f64),
        human_ns(ps.max_ns as f64)
    )
}

fn judge(st: &SyscallStat, s: &Signals, t: &Thresholds) -> Option<Finding> {
    let p99 = st.latency.percentile(99.0)?;
    let (severity, threshold) = grade(
        ms(p99),
        t.number(&SYSCALL_P99_MS),
        t.number(&SYSCALL_CRITICAL_P99_MS),
    )?;
    let slow: Vec<&ProcessSlow> = st
        .top_slow
        .iter()
        .filter(|p| p.process.pid != s.collector_pid || s.collector_pid == 0)
        .collect();
    let top = slow.first().map(|ps| &ps.process);
    let subject = match top {
        Some(p) => Subject::process(p),
        None => Subject {
            kind: "syscall".into(),
            name: st.name.clone(),
            ..Subject::default()
        },
    };
    let name = &st.name;
    let mut f = finding(ID, severity, subject);
    f.title = format!(
        "syscall `{name}` is slow: p99 {} over {} calls",
        human_ns(p99 as f64),
        thousands(st.count)
    );
    if let Some(p) = top {
        f.title += &format!("; slowest in {}", proc_name(p));
    }
    f.cause = why(class(name)).into();
    f.impact = format!(
        "Each slow `{name}` holds its thread for the whole call: requests handled by that thread wait, and with a thread or connection pool the pool runs dry. {} calls per second pass through it.",
        fmt_rate(st.count as f64 / s.window_secs())
    );
    f.evidence
        .push(format!("`{name}`: {}", latency_line(&st.latency, "calls")));
    for ps in slow.iter().take(5) {
        f.evidence.push(slow_line(ps));
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
    match top {
        Some(p) => {
            f.fix.push(format!(
                "strace -f -T -e trace={name} -p {}  # each call's arguments and time (adds overhead; Ctrl-C to stop)",
                p.pid
            ));
            f.fix.push(format!(
                "cat /proc/{}/task/*/stack  # (root) where in the kernel its threads block",
                p.pid
            ));
        }
        None => f.fix.push(format!(
            "perf trace -a --duration {} -e {name} -- sleep 10  # (root) every {name} slower than the threshold, with its process and arguments",
            t.number(&SYSCALL_P99_MS)
        )),
    }
    if let Some(check) = class_check(class(name)) {
        f.fix.push(check.into());
    }
    Some(f)
}

impl Rule for SyscallLatency {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(crate::common::RATE_WINDOW)
    }

    fn description(&self) -> &str {
        "a non-waiting syscall's p99 above syscall_p99_ms (critical above syscall_critical_p99_ms)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Per syscall that does not wait by design (waits such as poll, futex or accept are excluded), with at least syscall_min_calls calls, the p99 latency: above syscall_p99_ms warns, above syscall_critical_p99_ms is critical. The subject is the process with the most slow calls; fsync/fdatasync are judged by disk-io.".into(),
            when_it_fires: vec![
                "Trace the slow calls of the process the finding names: strace -f -T -e trace=<syscall> -p <pid>, or perf trace for a system-wide view.".into(),
                "Look where that class of call spends its time: the disk for file I/O, memory reclaim for mmap/brk (allocstall in /proc/vmstat), lock contention in the kernel.".into(),
                "Fix the slow resource (disk, memory pressure, a slow network filesystem) the trace points at.".into(),
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
            .filter(|st| !st.wait && !ELSEWHERE.contains(&st.name.as_str()))
            .filter(|st| st.count > 0 && st.count >= t.count(&SYSCALL_MIN_CALLS))
            .filter_map(|st| judge(st, s, t))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::{Severity, SyscallSignals};

    use super::*;
    use crate::testutil::*;

    fn stat(name: &str, h: kerno_core::Histogram, top: Vec<ProcessSlow>) -> SyscallStat {
        SyscallStat {
            name: name.into(),
            count: h.count(),
            latency: h,
            top_slow: top,
            ..SyscallStat::default()
        }
    }

    fn slow(pid: u32, comm: &str) -> ProcessSlow {
        ProcessSlow {
            process: proc_(pid, comm),
            count: 120,
            mean_ns: 210 * MS,
            max_ns: 480 * MS,
        }
    }

    fn with(stats: Vec<SyscallStat>) -> Signals {
        let mut s = signals();
        s.syscalls = Some(SyscallSignals {
            total_calls: stats.iter().map(|s| s.count).sum(),
            syscalls: stats,
            ..SyscallSignals::default()
        });
        s
    }

    #[test]
    fn fast_syscalls_are_quiet() {
        assert!(run(&SyscallLatency, &signals()).is_empty());
        assert!(
            run(
                &SyscallLatency,
                &with(vec![stat("openat", hist(20_000, 5_000), vec![])])
            )
            .is_empty()
        );
    }

    #[test]
    fn waits_are_not_latency() {
        let mut st = stat("epoll_wait", hist(900 * MS, 5_000), vec![]);
        st.wait = true;
        assert!(run(&SyscallLatency, &with(vec![st])).is_empty());
    }

    #[test]
    fn fsync_is_left_to_disk_io() {
        assert!(
            run(
                &SyscallLatency,
                &with(vec![stat("fsync", hist(900 * MS, 5_000), vec![])])
            )
            .is_empty()
        );
    }

    #[test]
    fn slow_calls_warn_then_critical() {
        let s = with(vec![stat(
            "openat",
            hist2(20_000, 4_900, 250 * MS, 100),
            vec![slow(4121, "api")],
        )]);
        let f = one(run(&SyscallLatency, &s));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.threshold, 100.0);
        assert!(
            f.title.starts_with("syscall `openat` is slow: p99 2"),
            "{}",
            f.title
        );
        assert!(
            f.title
                .ends_with("over 5,000 calls; slowest in `api` (pid 4121)"),
            "{}",
            f.title
        );
        assert!(f.cause.starts_with("File system calls"));
        assert!(f.fix[0].starts_with("strace -f -T -e trace=openat -p 4121"));

        let s = with(vec![stat("mmap", hist(800 * MS, 100), vec![])]);
        let f = one(run(&SyscallLatency, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.threshold, 500.0);
        assert_eq!(f.subject.kind, "syscall");
        assert_eq!(f.subject.name, "mmap");
        assert!(f.fix[0].starts_with("perf trace -a --duration 100 -e mmap"));
        assert!(f.fix.iter().any(|x| x.contains("allocstall")));
    }

    #[test]
    fn too_few_calls_is_quiet() {
        assert!(
            run(
                &SyscallLatency,
                &with(vec![stat("openat", hist(800 * MS, 19), vec![])])
            )
            .is_empty()
        );
        assert_eq!(
            run(
                &SyscallLatency,
                &with(vec![stat("openat", hist(800 * MS, 20), vec![])])
            )
            .len(),
            1
        );
    }

    #[test]
    fn boundary_is_strict() {
        let s = with(vec![stat("write", hist(150 * MS, 1_000), vec![])]);
        let p99 = ms(s.syscalls.as_ref().unwrap().syscalls[0]
            .latency
            .percentile(99.0)
            .unwrap());
        let t = Thresholds::default().with(&SYSCALL_P99_MS, p99).unwrap();
        assert!(run_with(&SyscallLatency, &s, &t).is_empty());
        let t = Thresholds::default()
            .with(&SYSCALL_P99_MS, p99 - 0.001)
            .unwrap();
        assert_eq!(
            one(run_with(&SyscallLatency, &s, &t)).severity,
            Severity::Warning
        );
        let t = Thresholds::default()
            .with(&SYSCALL_CRITICAL_P99_MS, p99)
            .unwrap();
        assert_eq!(
            one(run_with(&SyscallLatency, &s, &t)).severity,
            Severity::Warning
        );
        let t = Thresholds::default()
            .with(&SYSCALL_CRITICAL_P99_MS, p99 - 0.001)
            .unwrap();
        assert_eq!(
            one(run_with(&SyscallLatency, &s, &t)).severity,
            Severity::Critical
        );
    }

    #[test]
    fn the_collector_is_skipped() {
        let s = with(vec![stat(
            "openat",
            hist(300 * MS, 100),
            vec![slow(COLLECTOR, "kerno"), slow(4121, "api")],
        )]);
        let f = one(run(&SyscallLatency, &s));
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 4121);
        assert!(!f.evidence.iter().any(|e| e.contains("kerno")));
    }
}
