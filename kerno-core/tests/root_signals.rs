//! Root tests: each collector against the kernel's own ground truth, with a workload the test
//! makes itself. They load the real probes; scripts/test.sh runs them with --test-threads=1,
//! and a lock keeps them serial under a plain `cargo test` too.

use std::{ffi::CString, sync::Mutex, time::Duration};

use kerno_core::{Engine, KernelOptions, Signals, procfs};

static SERIAL: Mutex<()> = Mutex::new(());

fn engine(domains: &[&str], slow_runq_ms: f64) -> Engine {
    let e = Engine::kernel(&KernelOptions {
        domains: domains.iter().map(|s| s.to_string()).collect(),
        slow_runq_ms,
        ..KernelOptions::default()
    })
    .expect("load probes (needs root)");
    assert!(e.degraded().is_empty(), "{:?}", e.degraded());
    e
}

fn collect(e: &mut Engine, secs: u64) -> Signals {
    e.collect(Duration::from_secs(secs), None, &mut |_, _| {})
        .expect("collect")
}

/// A forked child that sleeps `delay`, runs `work` (plain syscalls only), then waits to be
/// killed. Killed and reaped on drop.
struct Child(libc::pid_t);

impl Child {
    fn spawn(delay: Duration, work: impl FnOnce()) -> Child {
        // SAFETY: the child runs only `work` (raw syscalls) and pause(), never returning
        // into the test harness.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            std::thread::sleep(delay);
            work();
            loop {
                unsafe { libc::pause() };
            }
        }
        Child(pid)
    }
    fn pid(&self) -> u32 {
        self.0 as u32
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

#[test]
fn root_syscall_errors_equal_the_tests_own_failing_calls() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut e = engine(&["syscalls"], 1.0);
    const N: u64 = 211;
    let missing = CString::new("/nonexistent/kerno-ground-truth").unwrap();
    let present = CString::new("/etc/hostname").unwrap();
    let child = Child::spawn(Duration::from_millis(300), || {
        for _ in 0..N {
            unsafe { libc::openat(libc::AT_FDCWD, missing.as_ptr(), libc::O_RDONLY) };
        }
        for _ in 0..100 {
            let fd = unsafe { libc::openat(libc::AT_FDCWD, present.as_ptr(), libc::O_RDONLY) };
            unsafe { libc::close(fd) };
        }
    });
    let s = collect(&mut e, 2);
    let openat = s
        .syscalls
        .as_ref()
        .unwrap()
        .get("openat")
        .expect("openat seen");
    let mine: Vec<_> = openat
        .top_errors
        .iter()
        .filter(|p| p.process.pid == child.pid())
        .collect();
    assert_eq!(mine.len(), 1, "{:?}", openat.top_errors);
    assert_eq!(mine[0].errno, "ENOENT");
    assert_eq!(mine[0].count, N, "exactly the child's failing calls");
    assert!(openat.errors >= N && openat.count >= N + 100);
}

#[test]
fn root_fd_counts_match_proc() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut e = engine(&["fds"], 1.0);
    const K: u64 = 57;
    let devnull = CString::new("/dev/null").unwrap();
    let child = Child::spawn(Duration::from_millis(300), || {
        for _ in 0..K {
            unsafe { libc::openat(libc::AT_FDCWD, devnull.as_ptr(), libc::O_RDONLY) };
        }
    });
    let s = collect(&mut e, 2);
    let fds = s.fds.as_ref().unwrap();
    let p = fds
        .processes
        .iter()
        .find(|p| p.process.pid == child.pid())
        .unwrap_or_else(|| panic!("child {} not listed: {:?}", child.pid(), fds.processes));
    assert_eq!(p.opens, K);
    assert_eq!(p.closes, 0);
    let truth = procfs::fd_count(child.pid()).unwrap();
    assert_eq!(
        p.open_fds,
        Some(truth),
        "open descriptors vs /proc/<pid>/fd"
    );
    assert_eq!(p.soft_limit, procfs::nofile_soft_limit(child.pid()));
    assert_eq!(p.net_per_interval.iter().sum::<i64>(), K as i64);
}

/// Sum of run-queue wait (ns) over a process's threads: field 2 of each
/// /proc/<pid>/task/<tid>/schedstat.
fn schedstat_wait(pid: u32) -> u64 {
    let mut total = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap()
        .flatten()
    {
        let s = std::fs::read_to_string(t.path().join("schedstat")).unwrap_or_default();
        total += s
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    total
}

#[test]
fn root_runqueue_delay_matches_schedstat() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Attribute every delay (threshold 0), so the per-process total is comparable.
    let mut e = engine(&["sched"], 0.0);
    let cpus = std::thread::available_parallelism().unwrap().get();
    let threads = cpus * 2 + 2;
    // A child process with more busy threads than CPUs, so they queue for the CPUs.
    let mut child = std::process::Command::new("stress-ng")
        .args([
            "--cpu",
            &threads.to_string(),
            "--cpu-method",
            "int64",
            "--timeout",
            "20s",
            "--quiet",
        ])
        .spawn()
        .expect("stress-ng (scripts/setup.sh installs it)");
    std::thread::sleep(Duration::from_millis(800));
    // stress-ng forks one worker process per --cpu; compare the sum over all of them.
    let workers: Vec<u32> =
        std::fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
            .unwrap()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect();
    assert_eq!(workers.len(), threads, "stress-ng workers");
    let before: Vec<u64> = workers.iter().map(|p| schedstat_wait(*p)).collect();
    let s = collect(&mut e, 3);
    let after: Vec<u64> = workers.iter().map(|p| schedstat_wait(*p)).collect();
    let _ = child.kill();
    let _ = child.wait();
    let sched = s.sched.as_ref().unwrap();
    // The signals list the 5 most delayed processes: compare each listed worker with its own
    // schedstat, in total.
    let (mut kerno, mut truth) = (0u64, 0u64);
    for d in &sched.top_delayed {
        if let Some(i) = workers.iter().position(|w| *w == d.process.pid) {
            kerno += d.total_ns;
            truth += after[i] - before[i];
        }
    }
    assert!(
        truth > 0,
        "workers among the most delayed: {:?}",
        sched.top_delayed
    );
    let err = (kerno as f64 - truth as f64).abs() / truth as f64;
    eprintln!(
        "run-queue wait of the listed workers: kerno {kerno} ns, schedstat {truth} ns, error {:.1}%",
        err * 100.0
    );
    assert!(err < 0.10, "kerno {kerno} vs schedstat {truth}");
    assert!(
        sched.runq_delay.percentile(99.0).unwrap() > 5_000_000,
        "p99 above 5 ms with {threads} spinners on {cpus} CPUs"
    );
}
