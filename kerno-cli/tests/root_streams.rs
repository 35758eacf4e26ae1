//! Root tests: the live streams (`kerno trace ...`, `kerno watch ...`) for real, against
//! workloads the tests make themselves. Needs root; scripts/test.sh runs this binary with
//! --test-threads=1 (one kernel, one test at a time).

use std::{
    ffi::CString,
    io::{BufRead, BufReader, Read},
    process::{Child, ChildStderr, Command, Stdio},
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use serde_json::Value;

/// A forked child that waits on a pipe, then makes `failing_opens` failing `openat` calls
/// and `sleeps` `nanosleep(sleep_ms)` calls (raw syscalls: glibc's nanosleep() is
/// clock_nanosleep), and exits. Its comm is `comm`.
struct Workload {
    pid: libc::pid_t,
    release: libc::c_int,
}

impl Workload {
    fn fork(comm: &str, failing_opens: u32, sleeps: u32, sleep_ms: i64) -> Workload {
        let name = CString::new(comm).unwrap();
        let path = CString::new("/nonexistent/kerno-stream-test").unwrap();
        let mut fds = [0; 2];
        // SAFETY: a valid pointer to two ints.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: the child only makes raw syscalls on memory prepared before the fork
        // (async-signal-safe), then _exits.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            // SAFETY: raw syscalls on valid pointers, in the forked child.
            unsafe {
                libc::close(fds[1]);
                libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
                let mut b = [0u8; 1];
                libc::read(fds[0], b.as_mut_ptr() as *mut libc::c_void, 1);
                for _ in 0..failing_opens {
                    libc::syscall(
                        libc::SYS_openat,
                        libc::AT_FDCWD,
                        path.as_ptr(),
                        libc::O_RDONLY,
                    );
                }
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: sleep_ms * 1_000_000,
                };
                for _ in 0..sleeps {
                    libc::syscall(libc::SYS_nanosleep, &ts as *const libc::timespec, 0usize);
                }
                libc::_exit(0);
            }
        }
        // SAFETY: closing our copy of the read end.
        unsafe { libc::close(fds[0]) };
        Workload {
            pid,
            release: fds[1],
        }
    }

    fn pid(&self) -> u32 {
        self.pid as u32
    }

    fn release(&mut self) {
        // SAFETY: a one-byte write to our pipe, then closing it.
        unsafe {
            libc::write(self.release, b"x".as_ptr() as *const libc::c_void, 1);
            libc::close(self.release);
        }
        self.release = -1;
    }

    fn wait(&mut self) {
        if self.pid > 0 {
            // SAFETY: waiting for our own child.
            unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
            self.pid = 0;
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        if self.pid > 0 {
            // SAFETY: killing and reaping our own child.
            unsafe {
                libc::kill(self.pid, libc::SIGKILL);
                libc::waitpid(self.pid, std::ptr::null_mut(), 0);
            }
        }
        if self.release >= 0 {
            // SAFETY: closing our pipe end.
            unsafe { libc::close(self.release) };
        }
    }
}

/// A running `kerno` stream whose stdout is collected.
struct Stream {
    child: Child,
    stdout: Option<thread::JoinHandle<String>>,
    stderr: mpsc::Receiver<String>,
    stderr_seen: Vec<String>,
}

impl Stream {
    /// Starts `kerno ARGS` and waits until it says it is attached (its ready line).
    fn start(args: &[&str]) -> Stream {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kerno"))
            .args(args)
            .env_remove("KERNO_CONFIG")
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kerno");
        let mut out = child.stdout.take().unwrap();
        let stdout = thread::spawn(move || {
            let mut s = String::new();
            out.read_to_string(&mut s).unwrap();
            s
        });
        let err: ChildStderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut s = Stream {
            child,
            stdout: Some(stdout),
            stderr: rx,
            stderr_seen: Vec::new(),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match s.stderr.recv_timeout(left) {
                Ok(l) => {
                    let ready = l.contains("(Ctrl-C to stop)");
                    s.stderr_seen.push(l);
                    if ready {
                        break;
                    }
                }
                Err(_) => panic!(
                    "kerno {args:?} never said it was ready; stderr: {:?}",
                    s.stderr_seen
                ),
            }
        }
        s
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, sig) };
    }

    /// Waits for it to end (at most `limit`): exit code, stdout, stderr lines.
    fn finish(mut self, limit: Duration) -> (i32, String, Vec<String>) {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                self.child.kill().ok();
                panic!("kerno did not end within {limit:?}");
            }
            thread::sleep(Duration::from_millis(20));
        };
        let out = self.stdout.take().unwrap().join().unwrap();
        while let Ok(l) = self.stderr.recv_timeout(Duration::from_millis(200)) {
            self.stderr_seen.push(l);
        }
        (
            status.code().unwrap_or(-1),
            out,
            std::mem::take(&mut self.stderr_seen),
        )
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// JSON lines: the events, and the summary (the last line).
fn json_lines(out: &str) -> (Vec<Value>, Value) {
    let mut lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let last = lines.pop().expect("no summary line");
    assert!(
        last.get("summary").is_some(),
        "last line is not the summary: {last}"
    );
    (lines, last["summary"].clone())
}

#[test]
fn root_trace_syscall_shows_exactly_the_workloads_calls() {
    const OPENS: usize = 500;
    const SLEEPS: usize = 300;
    let t0 = Instant::now();
    let mut victim = Workload::fork("kerno-victim", OPENS as u32, SLEEPS as u32, 20);
    // The same calls from another process, which no filter lets through.
    let mut noise = Workload::fork("kerno-noise", OPENS as u32, 50, 20);
    let pid = victim.pid().to_string();
    // By pid, syscall and result: every failing openat of the victim, as JSON.
    let errors = Stream::start(&[
        "trace",
        "syscall",
        "--pid",
        &pid,
        "--syscall",
        "openat",
        "--errors",
        "-o",
        "json",
    ]);
    // By comm and latency (the seed's --threshold name), in columns; ended by SIGTERM.
    let slow = Stream::start(&[
        "trace",
        "syscall",
        "--comm",
        "kerno-victim",
        "--threshold",
        "10ms",
    ]);
    victim.release();
    noise.release();
    victim.wait();
    noise.wait();
    // The --pid trace ends by itself when its process exits.
    let (code, out, _) = errors.finish(Duration::from_secs(10));
    assert_eq!(code, 0);
    let (events, summary) = json_lines(&out);
    assert_eq!(events.len(), OPENS, "{out}");
    for e in &events {
        assert_eq!(e["pid"], victim_pid(&pid), "{e}");
        assert_eq!(e["comm"], "kerno-victim", "{e}");
        assert_eq!(e["syscall"], "openat", "{e}");
        assert_eq!(e["errno"], "ENOENT", "{e}");
        assert_eq!(e["ret"], -2, "{e}");
    }
    assert_eq!(summary["shown"], OPENS as u64, "{summary}");
    assert_eq!(summary["lost"], 0, "{summary}");
    assert!(summary["filtered"].as_u64().unwrap() > 0, "{summary}");

    thread::sleep(Duration::from_millis(300));
    slow.signal(libc::SIGTERM);
    let (code, out, _) = slow.finish(Duration::from_secs(10));
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("TIME(UTC)"), "{out}");
    let rows = &lines[1..lines.len() - 1];
    assert_eq!(rows.len(), SLEEPS, "{out}");
    for r in rows {
        let cols: Vec<&str> = r.split_whitespace().collect();
        // TIME PID COMM SYSCALL LATENCY(value unit) RESULT POD
        assert_eq!(cols[1], pid, "{r}");
        assert_eq!(cols[2], "kerno-victim", "{r}");
        assert_eq!(cols[3], "nanosleep", "{r}");
        assert_eq!(cols[5], "ms", "{r}");
        let ms: f64 = cols[4].parse().unwrap();
        // Never shorter than the sleep; longer by whatever the busy machine's scheduler adds.
        assert!((20.0..500.0).contains(&ms), "{r}");
        assert_eq!(cols[6], "0", "{r}");
        // Aligned: the syscall column starts at the same place on every line.
        assert_eq!(r.find("nanosleep"), lines[0].find("SYSCALL"), "{r}");
    }
    let last = lines[lines.len() - 1];
    assert!(
        last.starts_with(&format!("-- {SLEEPS} shown, ")) && last.ends_with(", 0 lost"),
        "{last}"
    );
    eprintln!("trace syscall test: {:.1} s", t0.elapsed().as_secs_f64());
}

fn victim_pid(pid: &str) -> Value {
    Value::from(pid.parse::<u64>().unwrap())
}

#[test]
fn root_a_flood_into_a_small_ring_is_counted_as_shown_plus_lost() {
    // Known matching events: N failing openat calls of one process. The ring holds about
    // fifty of them, so most are lost, and every one is either shown or counted lost.
    const N: u64 = 200_000;
    let t0 = Instant::now();
    let mut w = Workload::fork("kerno-flood", N as u32, 0, 0);
    let pid = w.pid().to_string();
    let s = Stream::start(&[
        "trace",
        "syscall",
        "--pid",
        &pid,
        "--syscall",
        "openat",
        "--errors",
        "--ring-size",
        "4K",
        "-o",
        "json",
    ]);
    w.release();
    w.wait();
    let (code, out, stderr) = s.finish(Duration::from_secs(20));
    assert_eq!(code, 0);
    let (events, summary) = json_lines(&out);
    let shown = summary["shown"].as_u64().unwrap();
    let lost = summary["lost"].as_u64().unwrap();
    assert_eq!(events.len() as u64, shown);
    assert_eq!(shown + lost, N, "{summary}");
    assert!(lost > 0, "a 4 KiB ring kept up with {N} events: {summary}");
    assert!(
        stderr.iter().any(|l| l.contains("events lost")),
        "no loss warning on stderr: {stderr:?}"
    );
    eprintln!(
        "flood: {shown} shown + {lost} lost = {N} in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// A memory cgroup (v1 where the memory controller is there, else v2) with a small limit
/// and no swap, removed when dropped.
struct SmallMemcg {
    dir: std::path::PathBuf,
    v1: bool,
}

impl SmallMemcg {
    const LIMIT: u64 = 64 << 20;

    fn new() -> SmallMemcg {
        let name = format!("kerno-stream-oom-{}", std::process::id());
        let v1root = std::path::Path::new("/sys/fs/cgroup/memory");
        let v1 = v1root.join("memory.limit_in_bytes").exists();
        let dir = if v1 {
            v1root.join(&name)
        } else {
            std::path::Path::new("/sys/fs/cgroup").join(&name)
        };
        std::fs::create_dir_all(&dir).unwrap();
        if v1 {
            std::fs::write(dir.join("memory.limit_in_bytes"), Self::LIMIT.to_string()).unwrap();
            // No swap to spill into, where swap accounting exists.
            let _ = std::fs::write(
                dir.join("memory.memsw.limit_in_bytes"),
                Self::LIMIT.to_string(),
            );
            let _ = std::fs::write(dir.join("memory.swappiness"), "0");
        } else {
            std::fs::write(dir.join("memory.max"), Self::LIMIT.to_string()).unwrap();
            let _ = std::fs::write(dir.join("memory.swap.max"), "0");
        }
        SmallMemcg { dir, v1 }
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for SmallMemcg {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// A forked child that waits on a pipe, then touches `mb` MiB of anonymous memory.
fn fork_hog(mb: usize) -> Workload {
    let name = CString::new("kerno-oom-hog").unwrap();
    let mut fds = [0; 2];
    // SAFETY: a valid pointer to two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only makes raw syscalls and writes to memory it mapped.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: raw syscalls in the forked child; writes stay inside the mapping.
        unsafe {
            libc::close(fds[1]);
            libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
            let mut b = [0u8; 1];
            libc::read(fds[0], b.as_mut_ptr() as *mut libc::c_void, 1);
            let len = mb << 20;
            let p = libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            ) as *mut u8;
            if p as *mut libc::c_void != libc::MAP_FAILED {
                let mut i = 0;
                while i < len {
                    *p.add(i) = 1;
                    i += 4096;
                }
            }
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the read end.
    unsafe { libc::close(fds[0]) };
    Workload {
        pid,
        release: fds[1],
    }
}

#[test]
fn root_watch_oom_reports_the_kill_of_our_own_process_and_alerts() {
    let t0 = Instant::now();
    let cg = SmallMemcg::new();
    let s = Stream::start(&["watch", "oom", "--alert", "-o", "json"]);
    let mut hog = fork_hog(512);
    let pid = hog.pid();
    cg.add(pid);
    // What the child already holds from its parent (copy-on-write pages of this test
    // process, charged elsewhere): the kill's RSS counts them too.
    let inherited: u64 = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    hog.release();
    let mut status = 0;
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(hog.pid, &mut status, 0) };
    hog.pid = 0;
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGKILL,
        "the hog was not OOM-killed (status {status:#x})"
    );
    let (code, out, stderr) = s.finish(Duration::from_secs(10));
    assert_eq!(code, 3, "--alert exits 3 on a kill: {out} {stderr:?}");
    let (events, summary) = json_lines(&out);
    assert_eq!(events.len(), 1, "{out}");
    let e = &events[0];
    assert_eq!(e["pid"], pid, "{e}");
    assert_eq!(e["comm"], "kerno-oom-hog", "{e}");
    assert_eq!(e["trigger_pid"], pid, "{e}");
    assert_eq!(e["constraint"], "memcg", "{e}");
    let name = cg.dir.file_name().unwrap().to_str().unwrap();
    assert!(e["memcg"].as_str().unwrap().ends_with(name), "{e}");
    assert!(e["oom_memcg"].as_str().unwrap().ends_with(name), "{e}");
    assert_eq!(e["limit_bytes"], SmallMemcg::LIMIT, "{e}");
    // Killed at the limit: about the 64 MiB is the hog's anonymous memory (the kernel
    // charges in batches, so a little over the limit is possible).
    let rss = e["anon_rss_bytes"]
        .as_u64()
        .unwrap()
        .saturating_sub(inherited);
    assert!(
        (SmallMemcg::LIMIT / 2..=SmallMemcg::LIMIT + (8 << 20)).contains(&rss),
        "{e} (inherited {inherited} bytes)"
    );
    assert_eq!(summary["shown"], 1);
    assert_eq!(summary["lost"], 0);
    eprintln!(
        "watch oom (cgroup v{}): {:.1} s",
        if cg.v1 { 1 } else { 2 },
        t0.elapsed().as_secs_f64()
    );
}

/// A forked child that opens /dev/null exactly `per_sec` times a second (absolute-time
/// pacing) for `secs` seconds, keeping every descriptor.
fn fork_fd_leaker(per_sec: i64, secs: i64) -> Workload {
    let name = CString::new("kerno-fd-leaker").unwrap();
    let path = CString::new("/dev/null").unwrap();
    // SAFETY: the child only makes raw syscalls on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: raw syscalls on valid pointers, in the forked child.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
            let mut next = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut next);
            let step = 1_000_000_000 / per_sec;
            for _ in 0..per_sec * secs {
                next.tv_nsec += step;
                if next.tv_nsec >= 1_000_000_000 {
                    next.tv_nsec -= 1_000_000_000;
                    next.tv_sec += 1;
                }
                libc::clock_nanosleep(
                    libc::CLOCK_MONOTONIC,
                    libc::TIMER_ABSTIME,
                    &next,
                    std::ptr::null_mut(),
                );
                libc::open(path.as_ptr(), libc::O_RDONLY);
            }
            libc::_exit(0);
        }
    }
    Workload { pid, release: -1 }
}

#[test]
fn root_watch_fd_finds_the_leaker_at_its_rate_and_a_quiet_table_is_empty() {
    const RATE: f64 = 50.0;
    let t0 = Instant::now();
    let mut leaker = fork_fd_leaker(RATE as i64, 8);
    let pid = leaker.pid();
    // Nothing on this machine grows by a million descriptors a second: empty tables.
    let quiet = Stream::start(&[
        "watch",
        "fd",
        "--min-rate",
        "1000000",
        "--interval",
        "1s",
        "--count",
        "2",
        "-o",
        "json",
    ]);
    let quiet_pretty = Stream::start(&[
        "watch",
        "fd",
        "--threshold",
        "1000000",
        "--interval",
        "1s",
        "--count",
        "2",
    ]);
    let s = Stream::start(&[
        "watch",
        "fd",
        "--min-rate",
        "10",
        "--interval",
        "1s",
        "--count",
        "6",
        "-o",
        "json",
    ]);
    let (code, out, _) = s.finish(Duration::from_secs(20));
    assert_eq!(code, 0, "{out}");
    let (tables, _) = json_lines(&out);
    assert_eq!(tables.len(), 6, "{out}");
    let last = &tables[tables.len() - 1];
    let me = last["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == pid)
        .unwrap_or_else(|| panic!("the leaker {pid} is not in {last}"));
    assert_eq!(me["comm"], "kerno-fd-leaker", "{me}");
    let rate = me["rate_per_sec"].as_f64().unwrap();
    assert!(
        (rate - RATE).abs() <= RATE * 0.1,
        "rate {rate}/s, truth {RATE}/s: {me}"
    );
    assert!(me["fds"].as_u64().unwrap() > 100, "{me}");
    let limit = me["limit"].as_u64().unwrap();
    let eta = me["eta_secs"].as_f64().unwrap();
    let expect = (limit - me["fds"].as_u64().unwrap()) as f64 / rate;
    assert!((eta - expect).abs() < 1.0, "{me}");

    let (code, out, _) = quiet.finish(Duration::from_secs(10));
    assert_eq!(code, 0, "{out}");
    let (tables, summary) = json_lines(&out);
    assert_eq!(tables.len(), 2, "{out}");
    for t in &tables {
        assert_eq!(t["processes"], serde_json::json!([]), "{t}");
    }
    assert_eq!(summary["shown"], 0);
    let (code, out, _) = quiet_pretty.finish(Duration::from_secs(10));
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.matches("(no process's descriptors grow").count(),
        2,
        "{out}"
    );
    leaker.wait();
    eprintln!("watch fd: {:.1} s", t0.elapsed().as_secs_f64());
}

/// A forked child pinned to CPU 0 that waits on a pipe, then spins for `ms`.
fn fork_spinner(ms: i64) -> Workload {
    let name = CString::new("kerno-spinner").unwrap();
    let mut fds = [0; 2];
    // SAFETY: a valid pointer to two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child only makes raw syscalls on its own stack memory.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        // SAFETY: raw syscalls on valid pointers, in the forked child.
        unsafe {
            libc::close(fds[1]);
            libc::prctl(libc::PR_SET_NAME, name.as_ptr() as libc::c_ulong, 0, 0, 0);
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(0, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
            let mut b = [0u8; 1];
            libc::read(fds[0], b.as_mut_ptr() as *mut libc::c_void, 1);
            let mut now = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
            let end = now.tv_sec * 1000 + now.tv_nsec / 1_000_000 + ms;
            loop {
                libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
                if now.tv_sec * 1000 + now.tv_nsec / 1_000_000 >= end {
                    break;
                }
            }
            libc::_exit(0);
        }
    }
    // SAFETY: closing our copy of the read end.
    unsafe { libc::close(fds[0]) };
    Workload {
        pid,
        release: fds[1],
    }
}

#[test]
fn root_trace_sched_reports_spinners_that_wait_for_their_cpu() {
    let t0 = Instant::now();
    // Four spinners on one CPU: each waits about three slices of the others.
    let mut spinners: Vec<Workload> = (0..4).map(|_| fork_spinner(2000)).collect();
    let pids: Vec<u32> = spinners.iter().map(|w| w.pid()).collect();
    let all = Stream::start(&["trace", "sched", "--min-latency", "5ms", "-o", "json"]);
    let one_pid = pids[0].to_string();
    let one = Stream::start(&[
        "trace",
        "sched",
        "--threshold",
        "5ms",
        "--pid",
        &one_pid,
        "-o",
        "json",
    ]);
    for s in &mut spinners {
        s.release();
    }
    for s in &mut spinners {
        s.wait();
    }
    all.signal(libc::SIGINT);
    let (code, out, _) = all.finish(Duration::from_secs(10));
    assert_eq!(code, 0);
    let (events, summary) = json_lines(&out);
    let mut per_spinner = std::collections::HashMap::new();
    for e in &events {
        assert!(e["delay_ns"].as_u64().unwrap() >= 5_000_000, "{e}");
        let pid = e["pid"].as_u64().unwrap() as u32;
        if pids.contains(&pid) {
            assert_eq!(e["comm"], "kerno-spinner", "{e}");
            assert_eq!(e["cpu"], 0, "{e}");
            *per_spinner.entry(pid).or_insert(0) += 1;
        }
    }
    for p in &pids {
        assert!(
            per_spinner.get(p).copied().unwrap_or(0) >= 5,
            "spinner {p} waited past 5 ms only {:?} times: {summary}",
            per_spinner.get(p)
        );
    }
    // The --pid stream ends by itself when its process exits, with only its events.
    let (code, out, _) = one.finish(Duration::from_secs(10));
    assert_eq!(code, 0);
    let (events, summary) = json_lines(&out);
    assert!(events.len() >= 5, "{summary}");
    for e in &events {
        assert_eq!(e["pid"], pids[0], "{e}");
    }
    assert!(summary["filtered"].as_u64().unwrap() > 0, "{summary}");
    eprintln!(
        "trace sched: {} waits of the spinners in {:.1} s",
        per_spinner.values().sum::<u32>(),
        t0.elapsed().as_secs_f64()
    );
}

#[test]
fn root_watch_tcp_shows_opens_and_failures_over_ipv4_and_ipv6() {
    use std::net::{TcpListener, TcpStream};
    let t0 = Instant::now();
    let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
    let v6 = TcpListener::bind("[::1]:0").unwrap();
    // A port with no listener: bound, then closed.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let s = Stream::start(&["watch", "tcp", "--state-changes", "-o", "json"]);
    for l in [&v4, &v6] {
        let c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let (a, _) = l.accept().unwrap();
        drop(c);
        drop(a);
    }
    assert!(TcpStream::connect(closed).is_err());
    thread::sleep(Duration::from_millis(300));
    s.signal(libc::SIGTERM);
    let (code, out, _) = s.finish(Duration::from_secs(10));
    assert_eq!(code, 0);
    let (events, _) = json_lines(&out);
    let me = std::process::id();
    let find = |event: &str, daddr: &str, dport: u16| {
        events.iter().find(|e| {
            e["event"] == event && e["daddr"] == daddr && e["dport"] == dport && e["pid"] == me
        })
    };
    for (l, addr) in [(&v4, "127.0.0.1"), (&v6, "::1")] {
        let port = l.local_addr().unwrap().port();
        let open = find("open", addr, port)
            .unwrap_or_else(|| panic!("no open to {addr}:{port} by {me}: {out}"));
        assert_eq!(open["state"], "ESTABLISHED", "{open}");
        assert_eq!(open["old_state"], "SYN_SENT", "{open}");
        assert!(find("connect", addr, port).is_some(), "{out}");
        // The server side's accept (in whichever context the handshake completed).
        assert!(
            events
                .iter()
                .any(|e| e["event"] == "accept" && e["sport"] == port),
            "no accept on {port}: {out}"
        );
    }
    assert!(
        find("failed", "127.0.0.1", closed.port()).is_some(),
        "no failed connect to {closed}: {out}"
    );
    eprintln!("watch tcp states: {:.1} s", t0.elapsed().as_secs_f64());
}

/// A network namespace of our own with only loopback, deleted when dropped.
struct LossyNetns(String);

impl LossyNetns {
    /// Loopback loses `percent`% of the packets sent to `port` (dropped on input, after
    /// they were sent: a drop on output would only make TCP send later, not resend).
    fn new(port: u16, percent: u32) -> LossyNetns {
        let name = format!("kerno-rtx-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        let ns = LossyNetns(name);
        ns.run(&["ip", "netns", "add", &ns.0], false);
        ns.run(&["ip", "link", "set", "lo", "up"], true);
        ns.run(&["nft", "add", "table", "inet", "kerno"], true);
        ns.run(
            &[
                "nft",
                "add chain inet kerno lossy { type filter hook input priority 0; }",
            ],
            true,
        );
        let rule = format!(
            "add rule inet kerno lossy tcp dport {port} numgen random mod 100 < {percent} drop"
        );
        ns.run(&["nft", &rule], true);
        ns
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).args(args);
        c
    }

    fn run(&self, args: &[&str], inside: bool) {
        let o = if inside {
            self.command(args).output().unwrap()
        } else {
            Command::new(args[0]).args(&args[1..]).output().unwrap()
        };
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// `Tcp: RetransSegs` of this namespace.
    fn retrans_segs(&self) -> u64 {
        let o = self.command(&["cat", "/proc/net/snmp"]).output().unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
        let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
        let i = names
            .split_whitespace()
            .position(|n| n == "RetransSegs")
            .unwrap();
        values.split_whitespace().nth(i).unwrap().parse().unwrap()
    }
}

impl Drop for LossyNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[test]
fn root_watch_tcp_counts_retransmits_as_the_kernel_does() {
    const PORT: u16 = 5555;
    let t0 = Instant::now();
    let ns = LossyNetns::new(PORT, 5);
    let s = Stream::start(&["watch", "tcp", "--retransmits", "-o", "json"]);
    // A bulk transfer over the lossy loopback (MTU 64 KiB: one segment per buffer, so
    // the kernel's segment count and the tracepoint's buffer count agree).
    let script = format!(
        "import socket, threading\n\
         srv = socket.socket(); srv.bind(('127.0.0.1', {PORT})); srv.listen(1)\n\
         def rx():\n    c, _ = srv.accept()\n    while c.recv(1 << 20): pass\n\
         t = threading.Thread(target=rx); t.start()\n\
         c = socket.create_connection(('127.0.0.1', {PORT}))\n\
         buf = b'x' * (1 << 20)\n\
         for _ in range(48): c.sendall(buf)\n\
         c.close(); t.join()\n"
    );
    let o = ns.command(&["python3", "-c", &script]).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let kernel = ns.retrans_segs();
    thread::sleep(Duration::from_millis(300));
    s.signal(libc::SIGTERM);
    let (code, out, _) = s.finish(Duration::from_secs(10));
    assert_eq!(code, 0);
    let (events, summary) = json_lines(&out);
    let ours: Vec<&Value> = events
        .iter()
        .filter(|e| (e["dport"] == PORT || e["sport"] == PORT) && e["daddr"] == "127.0.0.1")
        .collect();
    for e in &ours {
        assert_eq!(e["event"], "retransmit", "{e}");
        assert_eq!(e["saddr"], "127.0.0.1", "{e}");
    }
    assert!(kernel >= 10, "too few retransmits to compare: {kernel}");
    let n = ours.len() as u64;
    assert!(
        n.abs_diff(kernel) <= (kernel / 20).max(2),
        "{n} retransmits shown, the kernel counted {kernel}: {summary}"
    );
    assert_eq!(summary["lost"], 0);
    eprintln!(
        "watch tcp retransmits: {n} shown, RetransSegs {kernel}, in {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}

/// Requests completed by a block device: reads, writes, discards and flushes in
/// `/sys/block/NAME/stat`.
fn block_requests(name: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/sys/block/{name}/stat")).unwrap();
    let f: Vec<u64> = s.split_whitespace().map(|v| v.parse().unwrap()).collect();
    [0, 4, 11, 15].iter().filter_map(|i| f.get(*i)).sum()
}

#[test]
fn root_trace_disk_names_the_issuer_and_the_slow_device_latency() {
    const WRITES: usize = 20;
    const DELAY_MS: u64 = 20;
    let t0 = Instant::now();
    let dev = kerno_chaos::SlowDevice::new(16 << 20, Duration::from_millis(DELAY_MS))
        .expect("a loop device on the slow FUSE filesystem");
    let name = dev.name();
    // Let the device settle (udev's probe reads) before counting.
    thread::sleep(Duration::from_millis(500));
    let s = Stream::start(&["trace", "disk", "--device", &name, "-o", "json"]);
    let before = block_requests(&name);
    let mut dd = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", dev.device().display()))
        .args(["bs=4k", &format!("count={WRITES}"), "oflag=direct"])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let dd_pid = dd.id();
    assert!(dd.wait().unwrap().success());
    thread::sleep(Duration::from_millis(300));
    let after = block_requests(&name);
    s.signal(libc::SIGINT);
    let (code, out, _) = s.finish(Duration::from_secs(10));
    assert_eq!(code, 0);
    let (events, summary) = json_lines(&out);
    for e in &events {
        assert_eq!(e["device"], name.as_str(), "{e}");
    }
    // Every request the device completed, no more, no fewer.
    assert_eq!(events.len() as u64, after - before, "{out}");
    let writes: Vec<&Value> = events
        .iter()
        .filter(|e| e["op"] == "write" && e["pid"] == dd_pid)
        .collect();
    assert_eq!(writes.len(), WRITES, "{out}");
    for w in &writes {
        assert_eq!(w["comm"], "dd", "{w}");
        assert_eq!(w["bytes"], 4096, "{w}");
        let ms = w["latency_ns"].as_u64().unwrap() as f64 / 1e6;
        // The injected delay, plus whatever the loop and FUSE round trip add.
        assert!(
            (DELAY_MS as f64 * 0.9..DELAY_MS as f64 * 10.0).contains(&ms),
            "{w}"
        );
    }
    assert_eq!(summary["lost"], 0);
    eprintln!(
        "trace disk: {} requests on {name} in {:.1} s",
        events.len(),
        t0.elapsed().as_secs_f64()
    );
}

/// A pod as the kubelet (cgroupfs driver) lays it out, made by hand: its log directory
/// (`/var/log/pods/<ns>_<name>_<uid>/<container>/`, where Kerno reads pod names) and its
/// cgroups in the cgroup v2 hierarchy (`/kubepods/burstable/pod<uid>/<container id>`).
/// Removed on drop.
struct FakePod {
    logs: std::path::PathBuf,
    /// `/var/log/pods`, when this test made it.
    made_log_root: bool,
    cgroups: Vec<std::path::PathBuf>,
    container: std::path::PathBuf,
}

impl FakePod {
    fn new(ns: &str, name: &str) -> FakePod {
        let n = std::process::id();
        let uid = format!("7e57ab1e-0000-4000-8000-{n:012x}");
        let logs = std::path::PathBuf::from(format!("/var/log/pods/{ns}_{name}_{uid}"));
        let made_log_root = !std::path::Path::new("/var/log/pods").exists();
        std::fs::create_dir_all(logs.join("app")).unwrap();
        let root = kerno_cgroup2_root();
        let mut cgroups = Vec::new();
        let mut dir = root.clone();
        for part in [
            "kubepods".to_string(),
            "burstable".to_string(),
            format!("pod{uid}"),
            format!("{n:064x}"),
        ] {
            dir = dir.join(part);
            if !dir.exists() {
                std::fs::create_dir(&dir).unwrap();
                cgroups.push(dir.clone());
            }
        }
        FakePod {
            logs,
            made_log_root,
            cgroups,
            container: dir,
        }
    }

    fn add(&self, pid: u32) {
        std::fs::write(self.container.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for FakePod {
    fn drop(&mut self) {
        // Any process still inside goes back to the root first.
        let root = kerno_cgroup2_root();
        if let Ok(procs) = std::fs::read_to_string(self.container.join("cgroup.procs")) {
            for p in procs.lines() {
                let _ = std::fs::write(root.join("cgroup.procs"), p);
            }
        }
        for d in self.cgroups.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
        let _ = std::fs::remove_dir_all(&self.logs);
        if self.made_log_root {
            let _ = std::fs::remove_dir("/var/log/pods");
        }
    }
}

/// The cgroup v2 mount (`/sys/fs/cgroup`, or `/sys/fs/cgroup/unified` on a hybrid host).
fn kerno_cgroup2_root() -> std::path::PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| std::path::PathBuf::from(f[1]))
        })
        .expect("a cgroup v2 hierarchy")
}

#[test]
fn root_trace_syscall_pod_sees_only_that_pods_tasks() {
    const OPENS: usize = 200;
    let t0 = Instant::now();
    let name = format!("tracepod-{}", std::process::id());
    let pod = FakePod::new("kerno-test", &name);
    let mut inside = Workload::fork("kerno-inpod", OPENS as u32, 0, 0);
    let mut outside = Workload::fork("kerno-outpod", OPENS as u32, 0, 0);
    pod.add(inside.pid());
    let spec = format!("kerno-test/{name}");
    let s = Stream::start(&[
        "trace",
        "syscall",
        "--pod",
        &spec,
        "--syscall",
        "openat",
        "--errors",
        "-o",
        "json",
    ]);
    inside.release();
    outside.release();
    inside.wait();
    outside.wait();
    thread::sleep(Duration::from_millis(300));
    s.signal(libc::SIGTERM);
    let (code, out, stderr) = s.finish(Duration::from_secs(10));
    assert_eq!(code, 0, "{out} {stderr:?}");
    let (events, summary) = json_lines(&out);
    assert_eq!(events.len(), OPENS, "{out}");
    for e in &events {
        assert_eq!(e["comm"], "kerno-inpod", "{e}");
    }
    assert_eq!(summary["shown"], OPENS as u64, "{summary}");
    // The outside process's calls were dropped in the kernel.
    assert!(
        summary["filtered"].as_u64().unwrap() >= OPENS as u64,
        "{summary}"
    );
    // A pod that is not on this node is a usage error before anything loads.
    let o = Command::new(env!("CARGO_BIN_EXE_kerno"))
        .args(["trace", "syscall", "--pod", "kerno-test/not-here"])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("no cgroup of pod kerno-test/not-here"));
    drop(pod);
    eprintln!(
        "trace syscall --pod test: {:.1} s",
        t0.elapsed().as_secs_f64()
    );
}
