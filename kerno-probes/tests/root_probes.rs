//! Root tests: load and attach the real probes and check them against workloads this test
//! makes itself. They need root (CAP_BPF + CAP_PERFMON) and a kernel with BTF; CI runs
//! them. Tests in this binary share one kernel, so they take a lock and run one at a time.

use std::{ffi::CString, sync::Mutex};

use kerno_probes::{Domain, LoadOptions, Probes, syscalls};

static SERIAL: Mutex<()> = Mutex::new(());

fn load(domains: &[Domain]) -> Probes {
    let opts = LoadOptions {
        domains: domains.to_vec(),
        ..LoadOptions::default()
    };
    let p = Probes::load(&opts).expect("load probes (these tests need root)");
    for s in p.status() {
        assert!(s.attached, "{} not attached: {:?}", s.domain, s.error);
    }
    p
}

/// Runs `f` in a child process (so its syscalls are not filtered as the loader's own) and
/// returns the child's pid.
fn in_child(f: impl FnOnce()) -> u32 {
    // SAFETY: the child only runs `f` (plain syscalls) and exits without unwinding.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        f();
        unsafe { libc::_exit(0) };
    }
    let mut st = 0;
    unsafe { libc::waitpid(pid, &mut st, 0) };
    pid as u32
}

#[test]
fn root_openat_errors_are_counted_per_process_and_errno() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = load(&[Domain::Syscalls]);
    let r = p.take_syscalls().unwrap();
    let openat = syscalls::number("openat").unwrap();
    let before = r.totals().unwrap();
    const N: usize = 137;
    const OK: usize = 50;
    let missing = CString::new("/nonexistent/kerno-test-missing").unwrap();
    let present = CString::new("/proc/self/stat").unwrap();
    let child = in_child(|| {
        for _ in 0..N {
            unsafe { libc::openat(libc::AT_FDCWD, missing.as_ptr(), libc::O_RDONLY) };
        }
        for _ in 0..OK {
            let fd = unsafe { libc::openat(libc::AT_FDCWD, present.as_ptr(), libc::O_RDONLY) };
            unsafe { libc::close(fd) };
        }
    });
    let after = r.totals().unwrap();
    let calls = after.count[openat as usize] - before.count[openat as usize];
    let errors = after.errors[openat as usize] - before.errors[openat as usize];
    assert!(calls >= (N + OK) as u64, "openat calls {calls}");
    assert!(errors >= N as u64, "openat errors {errors}");

    let rows = r.per_process().unwrap();
    let enoent = rows
        .iter()
        .find(|(k, _)| k.tgid == child && k.nr as u32 == openat && k.errno == 2)
        .map(|(_, v)| v.count)
        .unwrap_or(0);
    assert_eq!(enoent, N as u64, "ENOENT from the child");
    let other_errors: u64 = rows
        .iter()
        .filter(|(k, _)| k.tgid == child && k.nr as u32 == openat && k.errno != 2)
        .map(|(_, v)| v.count)
        .sum();
    assert_eq!(
        other_errors, 0,
        "successful openat calls must not count as errors"
    );

    let fds = r.fd_activity().unwrap();
    let (_, fd) = fds
        .iter()
        .find(|(t, _)| *t == child)
        .expect("child fd activity");
    assert_eq!(fd.opens, OK as u64);
    assert!(fd.closes >= OK as u64);
}

#[test]
fn root_every_domain_attaches_and_a_forced_failure_degrades_only_its_domain() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let opts = LoadOptions {
        fail_on_purpose: vec![Domain::Tcp],
        ..LoadOptions::default()
    };
    let mut p = Probes::load(&opts).unwrap();
    for s in p.status() {
        if s.domain == Domain::Tcp {
            assert!(!s.attached);
            let err = s.error.as_deref().unwrap();
            assert!(err.contains("tcp_retransmit_skb"), "{err}");
        } else {
            assert!(s.attached, "{}: {:?}", s.domain, s.error);
        }
    }
    assert!(p.take_tcp().is_none());
    let sched = p.take_sched().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let n: u64 = sched.histogram().unwrap().iter().sum();
    assert!(n > 0, "some run-queue delays in 200 ms");
}

/// Latency is timed for every call of a syscall made at a low rate, and sampled with weights
/// in a storm, where the histogram's total still matches the exact call count.
#[test]
fn root_latency_is_exact_at_low_rates_and_weighted_in_a_storm() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = load(&[Domain::Syscalls]);
    let r = p.take_syscalls().unwrap();
    let hist_total = |nr: u32| -> u64 { r.histogram(nr).unwrap().iter().sum() };

    // A rarely used syscall, 400 times: far below the per-CPU budget, so each is timed.
    let getpgid = syscalls::number("getpgid").unwrap();
    let (c0, h0) = (
        r.totals().unwrap().count[getpgid as usize],
        hist_total(getpgid),
    );
    // The loader's own calls are left out (its threads are recognised in the kernel).
    for _ in 0..300 {
        unsafe { libc::syscall(libc::SYS_getpgid, 0) };
    }
    let own = r.totals().unwrap().count[getpgid as usize] - c0;
    assert_eq!(
        own, 0,
        "the collecting process's own getpgid calls were counted"
    );
    in_child(|| {
        for _ in 0..400 {
            unsafe { libc::syscall(libc::SYS_getpgid, 0) };
        }
    });
    let calls = r.totals().unwrap().count[getpgid as usize] - c0;
    let timed = hist_total(getpgid) - h0;
    assert!(calls >= 400, "getpgid calls {calls}");
    assert_eq!(timed, calls, "every getpgid call timed");

    // A storm: 2,000,000 getppid calls. Counts stay exact; the histogram is sampled and
    // weighted, and its total must land within 1% of the count.
    const STORM: u64 = 2_000_000;
    let getppid = syscalls::number("getppid").unwrap();
    let (c0, h0) = (
        r.totals().unwrap().count[getppid as usize],
        hist_total(getppid),
    );
    in_child(|| {
        for _ in 0..STORM {
            unsafe { libc::syscall(libc::SYS_getppid) };
        }
    });
    let calls = r.totals().unwrap().count[getppid as usize] - c0;
    let estimated = hist_total(getppid) - h0;
    assert!(calls >= STORM, "getppid calls {calls}");
    let off = (estimated as f64 - calls as f64).abs() / calls as f64;
    assert!(
        off < 0.01,
        "weighted histogram total {estimated} vs {calls} calls ({:.2}% off)",
        off * 100.0
    );
}

/// The per-process maps are read in batches of 1,024: more entries than that (one per
/// child here) must all come back, each once, with its own count.
#[test]
fn root_per_process_rows_span_several_batches() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut p = load(&[Domain::Syscalls]);
    let r = p.take_syscalls().unwrap();
    let openat = syscalls::number("openat").unwrap();
    let missing = CString::new("/nonexistent/kerno-test-batch").unwrap();
    const CHILDREN: usize = 2_500;
    let mut pids = std::collections::HashSet::new();
    for _ in 0..CHILDREN {
        pids.insert(in_child(|| {
            unsafe { libc::openat(libc::AT_FDCWD, missing.as_ptr(), libc::O_RDONLY) };
        }));
    }
    let rows = r.per_process().unwrap();
    let mut seen = std::collections::HashMap::new();
    for (k, v) in &rows {
        if pids.contains(&k.tgid) && k.nr as u32 == openat && k.errno == 2 {
            *seen.entry(k.tgid).or_insert(0u64) += v.count;
        }
    }
    assert_eq!(
        seen.len(),
        CHILDREN,
        "children with an ENOENT row ({} rows read)",
        rows.len()
    );
    assert!(
        seen.values().all(|&c| c == 1),
        "each child's row counts its one failed call"
    );
}
