//! Root tests: `kerno predict` against slow leaks the test makes itself, each with a known
//! rate and limit, so the moment it runs out is known: a process opening a descriptor a
//! second under a soft RLIMIT_NOFILE of 64, a memory-limited cgroup (v1) growing 1 MiB/s,
//! a 64 MiB loop-mounted ext4 filling 1 MiB/s, a pids cgroup forking once a second. Each
//! predicted time must be within 20% of the true time left; the errors are printed. A
//! sawtooth allocator and steady processes must not be predicted. Needs root; scripts/test.sh
//! runs it with --test-threads=1 (one kernel, one test at a time). Each test takes ~12 s.

use std::{
    ffi::CString,
    path::{Path, PathBuf},
    process::{Command, Output},
    time::Duration,
};

use kerno_core::predict::{Resource, Verdict, judge, levels};
use serde_json::Value;

const MIB: u64 = 1 << 20;
const SNAPSHOTS: &str = "10";

fn unix_ms() -> u64 {
    kerno_core::unix_ms_now()
}

fn kerno(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kerno"))
        .args(args)
        .env_remove("KERNO_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run kerno")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kerno-rpredict-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `kerno predict` sampling here, 10 snapshots a second apart; the forecast and the saved
/// window.
fn predict(dir: &Path) -> (Value, kerno_core::Signals) {
    let save = dir.join("window.json");
    let o = kerno(&[
        "predict",
        "--standalone",
        "-n",
        SNAPSHOTS,
        "-i",
        "1s",
        "-o",
        "json",
        "-q",
        "--save",
        save.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "kerno predict failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: Value = serde_json::from_slice(&o.stdout).expect("JSON forecast");
    (v, kerno_core::load_signals(&save).unwrap())
}

fn window_end(v: &Value) -> u64 {
    v["window"]["start_unix_ms"].as_u64().unwrap() + v["window"]["duration_ms"].as_u64().unwrap()
}

/// The prediction for `resource` whose `field` equals `value`.
fn find<'a>(v: &'a Value, resource: &str, pick: impl Fn(&Value) -> bool) -> &'a Value {
    v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["resource"] == resource && pick(p))
        .unwrap_or_else(|| panic!("no {resource} prediction in {v:#}"))
}

/// The predicted time left against the true time left (from the window's end); the
/// relative error, printed for the record.
fn eta_error(name: &str, v: &Value, p: &Value, true_at_ms: u64) -> f64 {
    let end = window_end(v);
    let truth = (true_at_ms as f64 - end as f64) / 1000.0;
    let predicted = p["eta_secs"].as_f64().unwrap();
    let err = (predicted - truth).abs() / truth;
    println!(
        "{name}: predicted {predicted:.1} s left, true {truth:.1} s, error {:.1}% (confidence {}, R² {:.3})",
        err * 100.0,
        p["confidence"],
        p["fit"].as_f64().unwrap()
    );
    assert!(truth > 10.0, "{name}: the test's leak is too far along");
    err
}

// ---- workers: forked children that only make raw system calls ------------------------------

/// A forked worker, killed (with whatever it forked, for a cgroup's) when dropped.
struct Worker {
    pid: libc::pid_t,
    /// The write end of the start gate.
    gate: libc::c_int,
}

impl Worker {
    /// Fork a child that waits at a gate, then runs `body` (which must only make system
    /// calls: the test process has other threads) and never returns.
    fn fork(body: impl FnOnce()) -> Worker {
        let mut fds = [0; 2];
        // SAFETY: a pipe for the gate, then fork; the child only makes system calls.
        unsafe {
            assert_eq!(libc::pipe(fds.as_mut_ptr()), 0);
            let pid = libc::fork();
            assert!(pid >= 0, "fork failed");
            if pid == 0 {
                libc::close(fds[1]);
                let mut b = 0u8;
                libc::read(fds[0], (&mut b as *mut u8).cast(), 1);
                libc::close(fds[0]);
                body();
                libc::_exit(0);
            }
            libc::close(fds[0]);
            Worker { pid, gate: fds[1] }
        }
    }

    /// Open the gate: the worker starts now. Returns the Unix time, ms.
    fn start(&mut self) -> u64 {
        let at = unix_ms();
        // SAFETY: writing one byte to our pipe.
        unsafe {
            libc::write(self.gate, [1u8].as_ptr().cast(), 1);
            libc::close(self.gate);
        }
        self.gate = -1;
        at
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // SAFETY: our own child.
        unsafe {
            if self.gate >= 0 {
                libc::close(self.gate);
            }
            libc::kill(self.pid, libc::SIGKILL);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

/// Now on the monotonic clock.
fn mono_now() -> libc::timespec {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut t) };
    t
}

/// Sleep until `start + ns` on the monotonic clock (system calls only).
fn sleep_until(start: libc::timespec, ns: u64) {
    let total = start.tv_nsec as u64 + ns;
    let t = libc::timespec {
        tv_sec: start.tv_sec + (total / 1_000_000_000) as libc::time_t,
        tv_nsec: (total % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: valid pointers; an interrupted sleep just ends early.
    unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &t,
            std::ptr::null_mut(),
        )
    };
}

/// A cgroup v1 directory under a controller, removed (its tasks killed) when dropped.
struct Cgroup(PathBuf);

impl Cgroup {
    fn v1(controller: &str, name: &str) -> Cgroup {
        let root = Path::new("/sys/fs/cgroup").join(controller);
        assert!(
            root.join("cgroup.procs").exists(),
            "cgroup v1 {controller} is not mounted"
        );
        let dir = root.join(format!("kerno-predict-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).unwrap();
        Cgroup(dir)
    }

    fn set(&self, file: &str, value: &str) {
        std::fs::write(self.0.join(file), value)
            .unwrap_or_else(|e| panic!("{}/{file}: {e}", self.0.display()));
    }

    fn add(&self, pid: libc::pid_t) {
        self.set("cgroup.procs", &pid.to_string());
    }

    fn read(&self, file: &str) -> u64 {
        std::fs::read_to_string(self.0.join(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The path as the collectors report it (`/kerno-predict-...`).
    fn path(&self) -> String {
        format!("/{}", self.0.file_name().unwrap().to_string_lossy())
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        for _ in 0..100 {
            let procs = std::fs::read_to_string(self.0.join("cgroup.procs")).unwrap_or_default();
            let pids: Vec<i32> = procs
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                // SAFETY: the test's own workers.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Touch `pages` pages from `base` (system calls and plain stores only).
fn touch(base: *mut u8, from: usize, bytes: usize) {
    let mut off = from;
    while off < from + bytes {
        // SAFETY: inside the worker's own mapping.
        unsafe { std::ptr::write_volatile(base.add(off), 1) };
        off += 4096;
    }
}

fn map(bytes: usize) -> *mut u8 {
    // SAFETY: a private anonymous mapping.
    let p = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            bytes,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    assert_ne!(p, libc::MAP_FAILED);
    p.cast()
}

// ---- the tests -----------------------------------------------------------------------------

#[test]
fn root_predict_fd_leak_eta_within_20_percent() {
    const LIMIT: u64 = 64;
    let dev_null = CString::new("/dev/null").unwrap();
    let mut w = Worker::fork(|| {
        // SAFETY: system calls only. Keep 0-2, close what the test process left open, so
        // the count is 3 + the leaked ones.
        unsafe {
            for fd in 3..4096 {
                libc::close(fd);
            }
            let lim = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            let start = mono_now();
            let mut k = 0u64;
            loop {
                sleep_until(start, k * 1_000_000_000);
                libc::open(dev_null.as_ptr(), libc::O_RDONLY);
                k += 1;
            }
        }
    });
    let pid = w.pid;
    let t0 = w.start();
    let dir = temp_dir("fd");
    let (v, _) = predict(&dir);
    // Open k (k = 0, 1, ...) at t0 + k s makes 4 + k descriptors: the 61st leaked one,
    // at t0 + 60 s, is the 64th descriptor.
    let true_at = t0 + (LIMIT - 4) * 1000;
    let p = find(&v, "fds", |p| p["process"]["pid"] == pid);
    assert_eq!(p["limit"], LIMIT as f64);
    let err = eta_error("fd leak, 1/s to 64", &v, p, true_at);
    assert!(err < 0.2, "{p:#}");
    assert!((p["per_sec"].as_f64().unwrap() - 1.0).abs() < 0.1, "{p:#}");
    drop(w);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn root_predict_memory_cgroup_v1_eta_within_20_percent() {
    const LIMIT: u64 = 64 * MIB;
    let cg = Cgroup::v1("memory", "mem");
    cg.set("memory.limit_in_bytes", &LIMIT.to_string());
    let mut w = Worker::fork(|| {
        let base = map(LIMIT as usize);
        let start = mono_now();
        for k in 0..(LIMIT / MIB - 8) as usize {
            sleep_until(start, k as u64 * 1_000_000_000);
            touch(base, k * MIB as usize, MIB as usize);
        }
        loop {
            // SAFETY: parks the worker.
            unsafe { libc::pause() };
        }
    });
    cg.add(w.pid);
    let before = cg.read("memory.usage_in_bytes");
    let t0 = w.start();
    let dir = temp_dir("mem");
    let (v, _) = predict(&dir);
    // MiB k is touched at t0 + k s: usage is before + (k + 1) MiB, the limit at
    // k = (limit − before) / MiB − 1.
    let true_at = t0 + (((LIMIT - before) as f64 / MIB as f64 - 1.0) * 1000.0) as u64;
    let p = find(&v, "cgroup_memory", |p| p["cgroup"] == cg.path());
    let err = eta_error("memory, 1 MiB/s to 64 MiB (cgroup v1)", &v, p, true_at);
    assert!(err < 0.2, "{p:#}");
    drop(w);
    drop(cg);
    std::fs::remove_dir_all(dir).unwrap();
}

/// A loop device with a mounted ext4, undone when dropped.
struct LoopFs {
    dir: PathBuf,
    mnt: PathBuf,
    dev: String,
}

impl LoopFs {
    fn new(size_mib: u64) -> LoopFs {
        let dir = temp_dir("fs");
        let img = dir.join("fs.img");
        let f = std::fs::File::create(&img).unwrap();
        f.set_len(size_mib * MIB).unwrap();
        drop(f);
        let run = |cmd: &str, args: &[&str]| -> String {
            let o = Command::new(cmd).args(args).output().expect(cmd);
            assert!(
                o.status.success(),
                "{cmd} {args:?}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        let dev = run("losetup", &["--find", "--show", img.to_str().unwrap()]);
        let mnt = dir.join("mnt");
        std::fs::create_dir(&mnt).unwrap();
        let fs = LoopFs { dir, mnt, dev };
        run("mkfs.ext4", &["-q", "-F", &fs.dev]);
        run("mount", &[&fs.dev, fs.mnt.to_str().unwrap()]);
        fs
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mnt).status();
        let _ = Command::new("losetup").args(["-d", &self.dev]).status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `(size, used)` as the collector counts them: used = size − available to unprivileged
/// writers.
fn statvfs(path: &Path) -> (u64, u64) {
    let c = CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid path and out-pointer.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statvfs(c.as_ptr(), &mut s) }, 0);
    let size = s.f_blocks * s.f_frsize;
    (size, size - s.f_bavail * s.f_frsize)
}

#[test]
fn root_predict_loop_filesystem_filling_eta_within_20_percent() {
    let fs = LoopFs::new(64);
    let (size, before) = statvfs(&fs.mnt);
    let file = fs.mnt.join("fill");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let t0 = unix_ms();
    let writer = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut f = std::fs::File::create(&file).unwrap();
            let chunk = vec![7u8; MIB as usize];
            let start = std::time::Instant::now();
            let mut k = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let due = start + Duration::from_secs(k as u64);
                if let Some(wait) = due.checked_duration_since(std::time::Instant::now()) {
                    std::thread::sleep(wait);
                }
                if f.write_all(&chunk).and_then(|_| f.sync_data()).is_err() {
                    break;
                }
                k += 1;
            }
        })
    };
    let dir = temp_dir("fsout");
    let (v, _) = predict(&dir);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.join().unwrap();
    // MiB k is written at t0 + k s: used is before + (k + 1) MiB (plus a little metadata),
    // full when used reaches the size.
    let true_at = t0 + (((size - before) as f64 / MIB as f64 - 1.0) * 1000.0) as u64;
    let mnt = fs.mnt.to_str().unwrap().to_string();
    let p = find(&v, "fs_space", |p| {
        p["what"].as_str().unwrap().starts_with(&format!("{mnt} "))
    });
    let err = eta_error("filesystem, 1 MiB/s into a 64 MiB ext4", &v, p, true_at);
    assert!(err < 0.2, "{p:#}");
    drop(fs);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn root_predict_pids_cgroup_forking_eta_within_20_percent() {
    const MAX: u64 = 40;
    let cg = Cgroup::v1("pids", "pids");
    cg.set("pids.max", &MAX.to_string());
    let mut w = Worker::fork(|| {
        let start = mono_now();
        for k in 0..MAX - 5 {
            sleep_until(start, k * 1_000_000_000);
            // SAFETY: the grandchild only parks.
            unsafe {
                if libc::fork() == 0 {
                    loop {
                        libc::pause();
                    }
                }
            }
        }
        loop {
            // SAFETY: parks the worker.
            unsafe { libc::pause() };
        }
    });
    cg.add(w.pid);
    let before = cg.read("pids.current");
    let t0 = w.start();
    let dir = temp_dir("pids");
    let (v, _) = predict(&dir);
    // Fork k at t0 + k s makes before + k + 1 tasks: pids.max at k = max − before − 1.
    let true_at = t0 + (MAX - before - 1) * 1000;
    let p = find(&v, "cgroup_pids", |p| p["cgroup"] == cg.path());
    let err = eta_error(
        "pids cgroup, a fork a second to pids.max 40",
        &v,
        p,
        true_at,
    );
    assert!(err < 0.2, "{p:#}");
    drop(w);
    drop(cg);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn root_predict_sawtooth_and_steady_levels_are_not_predicted() {
    const LIMIT: u64 = 64 * MIB;
    // Fills 4 MiB a second to 16 MiB, gives it all back, again and again (a GC heap).
    let saw = Cgroup::v1("memory", "saw");
    saw.set("memory.limit_in_bytes", &LIMIT.to_string());
    let mut sw = Worker::fork(|| {
        let base = map(16 * MIB as usize);
        let start = mono_now();
        let mut k = 0u64;
        loop {
            sleep_until(start, k * 250_000_000);
            let step = (k % 16) as usize;
            if step == 15 {
                // SAFETY: the worker's own mapping.
                unsafe { libc::madvise(base.cast(), 16 * MIB as usize, libc::MADV_DONTNEED) };
            } else {
                touch(base, step * MIB as usize, MIB as usize);
            }
            k += 1;
        }
    });
    saw.add(sw.pid);
    // Holds 20 MiB and 30 descriptors, and does nothing more.
    let steady = Cgroup::v1("memory", "steady");
    steady.set("memory.limit_in_bytes", &LIMIT.to_string());
    let dev_null = CString::new("/dev/null").unwrap();
    let mut st = Worker::fork(|| {
        touch(map(20 * MIB as usize), 0, 20 * MIB as usize);
        for _ in 0..30 {
            // SAFETY: a static path.
            unsafe { libc::open(dev_null.as_ptr(), libc::O_RDONLY) };
        }
        loop {
            // SAFETY: parks the worker.
            unsafe { libc::pause() };
        }
    });
    steady.add(st.pid);
    sw.start();
    st.start();
    std::thread::sleep(Duration::from_millis(500));
    let dir = temp_dir("saw");
    let (v, signals) = predict(&dir);
    for p in v["predictions"].as_array().unwrap() {
        assert_ne!(p["cgroup"], saw.path(), "the sawtooth was predicted: {p:#}");
        assert_ne!(
            p["cgroup"],
            steady.path(),
            "a steady level was predicted: {p:#}"
        );
        assert_ne!(
            p["process"]["pid"], st.pid,
            "steady descriptors predicted: {p:#}"
        );
    }
    // Both were watched, and the saw was seen for what it is.
    let opts = kerno_core::predict::PredictOptions::default();
    let all = levels(&signals);
    let of = |path: String| {
        all.iter()
            .find(|l| l.resource == Resource::CgroupMemory && l.cgroup.as_deref() == Some(&path))
            .unwrap_or_else(|| panic!("{path} was not watched"))
    };
    let saw_level = of(saw.path());
    let max = saw_level.series.max().unwrap();
    assert!(max >= 8.0 * MIB as f64, "the saw filled: {max}");
    assert_eq!(judge(saw_level, &opts), Verdict::Sawtooth);
    let v = judge(of(steady.path()), &opts);
    assert!(
        matches!(
            v,
            Verdict::Steady | Verdict::Noise | Verdict::TooLittleGrowth
        ),
        "{v:?}"
    );
    drop((sw, st, saw, steady));
    std::fs::remove_dir_all(dir).unwrap();
}

/// A `kerno start` agent recording levels every second, on its own socket and port;
/// stopped (SIGTERM) when dropped.
struct Agent {
    child: std::process::Child,
    dir: PathBuf,
    config: PathBuf,
}

impl Agent {
    fn start() -> Agent {
        let dir = temp_dir("agent");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.join("kerno.yaml");
        std::fs::write(
            &config,
            format!(
                "agent:\n  listen: 127.0.0.1:{port}\n  socket: {}\n  levels_every: 1s\n",
                dir.join("agent.sock").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.join("agent.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kerno"))
            .args(["start", "--config", config.to_str().unwrap()])
            .env_remove("KERNO_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kerno start");
        Agent { child, dir, config }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // SAFETY: our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        for _ in 0..200 {
            if self.child.try_wait().ok().flatten().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn root_predict_from_the_agents_level_history() {
    const LIMIT: u64 = 64;
    let agent = Agent::start();
    let dev_null = CString::new("/dev/null").unwrap();
    let mut w = Worker::fork(|| {
        // SAFETY: system calls only, as in the descriptor test.
        unsafe {
            for fd in 3..4096 {
                libc::close(fd);
            }
            let lim = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            let start = mono_now();
            let mut k = 0u64;
            loop {
                sleep_until(start, k * 1_000_000_000);
                libc::open(dev_null.as_ptr(), libc::O_RDONLY);
                k += 1;
            }
        }
    });
    let pid = w.pid;
    let t0 = w.start();
    // The agent records a level sample a second from its start; ten or more make a line.
    std::thread::sleep(Duration::from_secs(11));
    let started = std::time::Instant::now();
    let o = kerno(&[
        "predict",
        "--config",
        agent.config.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered from the agent's history at once"
    );
    assert!(err.contains("levels from the running agent"), "{err}");
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["source"]["kind"], "agent", "{v:#}");
    assert!(v["source"]["snapshots"].as_u64().unwrap() >= 10, "{v:#}");
    let p = find(&v, "fds", |p| p["process"]["pid"] == pid);
    let true_at = t0 + (LIMIT - 4) * 1000;
    let e = eta_error("fd leak from the agent's history", &v, p, true_at);
    assert!(e < 0.2, "{p:#}");
    drop(w);
    drop(agent);
}
