//! Root tests: each collector against the kernel's own ground truth, with a workload the test
//! makes itself. They load the real probes; scripts/test.sh runs them with --test-threads=1,
//! and a lock keeps them serial under a plain `cargo test` too.

use std::{ffi::CString, sync::Mutex, time::Duration};

use kerno_core::{Engine, KernelOptions, Signals, procfs};

static SERIAL: Mutex<()> = Mutex::new(());

fn engine(domains: &[&str], slow_runq_ms: f64) -> Engine {
    let e = Engine::kernel(&KernelOptions {
        domains: domains.iter().map(|s| s.parse().unwrap()).collect(),
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
    // The host-wide histogram holds every wakeup on the machine, most of them short, so its
    // p99 depends on what else runs; the spinners' own waits were checked above.
    assert!(sched.runq_delay.count() > 0);
    assert!(
        sched.runq_delay.max().unwrap() > 1_000_000,
        "some waits over 1 ms with {threads} spinners on {cpus} CPUs"
    );
}

mod with_chaos {
    //! Ground truth for the domains whose incidents need a set-up (a lossy link, a memory
    //! cgroup, a slow device): made by `kerno_chaos`, torn down by its guards.

    use std::{
        ffi::CString,
        os::unix::ffi::OsStrExt,
        time::{Duration, Instant},
    };

    use kerno_chaos::{self as chaos, ChaosOptions, Intensity, SlowDevice};

    use super::{SERIAL, collect, engine};

    #[test]
    fn root_tcp_retransmits_match_retranssegs_in_the_namespace() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut e = engine(&["tcp"], 1.0);
        let running = chaos::start(
            "tcp-loss",
            &ChaosOptions::new(Intensity::Medium, Duration::from_secs(20)),
        )
        .expect("tcp-loss scenario");
        let sender = running.pids[0];
        // The probe counts retransmitted socket buffers; RetransSegs counts segments, and with
        // GSO one buffer carries several segments (here about three: 91 buffers for 280
        // segments in a measured run). Limit buffers to one segment on the scenario's links,
        // so both count the same thing and can be compared exactly.
        for ns in &running.netns {
            let links = std::process::Command::new("ip")
                .args(["-n", ns, "-o", "link", "show"])
                .output()
                .expect("ip");
            for line in String::from_utf8_lossy(&links.stdout).lines() {
                let Some(dev) = line
                    .split(": ")
                    .nth(1)
                    .map(|d| d.split('@').next().unwrap_or(d))
                else {
                    continue;
                };
                if dev != "lo" {
                    let st = std::process::Command::new("ip")
                        .args(["-n", ns, "link", "set", "dev", dev, "gso_max_segs", "1"])
                        .status()
                        .expect("ip link set");
                    assert!(st.success(), "gso_max_segs on {ns}/{dev}");
                }
            }
        }
        // Let buffers queued before the change drain.
        std::thread::sleep(Duration::from_secs(1));
        // Read the kernel's counter right next to the probe's two samples, so both cover the
        // same interval (a `collect` would also resolve flow owners before returning).
        let start = std::time::Instant::now();
        let (_, before) = chaos::tcp_segments(sender).expect("sender's netns counters");
        let first = e.sample_all();
        std::thread::sleep(Duration::from_secs(4));
        let last = e.sample_all();
        let (_, after) = chaos::tcp_segments(sender).expect("sender's netns counters");
        let series: Vec<Vec<&kerno_core::Sample>> = first
            .iter()
            .zip(&last)
            .map(|(a, b)| a.iter().chain(b.iter()).collect())
            .collect();
        let s = e.signals_from(&series, kerno_core::unix_ms_now(), start.elapsed());
        running.stop().expect("teardown");
        let truth = after - before;
        let seen = s.tcp.as_ref().unwrap().retransmits;
        let err = (seen as f64 - truth as f64).abs() / truth as f64;
        eprintln!(
            "retransmits: probe {seen}, RetransSegs in the sender's namespace {truth}, {:.1}% apart",
            err * 100.0
        );
        assert!(truth > 50, "the lossy link retransmits: {truth}");
        // Systematic, and explained: the probe counts retransmitted buffers, RetransSegs
        // segments; a few buffers still seem to carry two segments after gso_max_segs is set
        // (probably because the stream's connection was set up before it; not verified):
        // measured 0.4-8% below, never above (docs/probes.md).
        assert!(
            seen <= truth + 2,
            "the probe never counts more: {seen} vs {truth}"
        );
        assert!(err <= 0.10, "probe {seen} vs RetransSegs {truth}");
    }

    /// `(pid, comm)` of every "Killed process" line the kernel logged after `since_us`
    /// (microseconds since boot, as /dev/kmsg stamps them).
    fn kernel_log_kills(since_us: u64) -> Vec<(u32, String)> {
        use std::io::Read;
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .expect("/dev/kmsg");
        let mut f = f;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    let (head, msg) = rec.split_once(';').unwrap_or(("", ""));
                    let ts: u64 = head
                        .split(',')
                        .nth(2)
                        .and_then(|t| t.parse().ok())
                        .unwrap_or(0);
                    if ts < since_us {
                        continue;
                    }
                    // "Out of memory: Killed process 1234 (name) total-vm:..." or
                    // "Memory cgroup out of memory: Killed process 1234 (name) ..."
                    if let Some(rest) = msg.split("Killed process ").nth(1) {
                        let pid = rest.split_whitespace().next().and_then(|p| p.parse().ok());
                        let comm = rest.split('(').nth(1).and_then(|c| c.split(')').next());
                        if let (Some(pid), Some(comm)) = (pid, comm) {
                            out.push((pid, comm.to_string()));
                        }
                    }
                }
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
        out
    }

    use std::os::unix::fs::OpenOptionsExt;

    fn boot_us() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
        ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
    }

    #[test]
    fn root_oom_kills_match_vmstat_and_the_kernel_log() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut e = engine(&["oom"], 1.0);
        let since = boot_us();
        let running = chaos::start(
            "oom",
            &ChaosOptions::new(Intensity::High, Duration::from_secs(20)),
        )
        .expect("oom scenario");
        let s = collect(&mut e, 4);
        running.stop().expect("teardown");
        let oom = s.oom.as_ref().unwrap();
        assert!(
            !oom.kills.is_empty(),
            "the scenario OOM-kills once a second"
        );
        assert_eq!(
            oom.kills.len() as u64,
            oom.vmstat_oom_kills,
            "probe vs /proc/vmstat oom_kill"
        );
        let logged = kernel_log_kills(since);
        for k in &oom.kills {
            assert!(
                logged.contains(&(k.process.pid, k.process.comm.clone())),
                "kill of {} ({}) not in the kernel log {logged:?}",
                k.process.pid,
                k.process.comm
            );
            assert!(k.anon_rss_bytes > 0, "RSS at the kill");
        }
        eprintln!(
            "OOM kills: probe {:?}",
            oom.kills
                .iter()
                .map(|k| (k.process.pid, &k.process.comm))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn root_block_latency_is_the_injected_delay() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let delay = Duration::from_millis(40);
        let dev = SlowDevice::new(16 << 20, delay).expect("slow device (root, FUSE, loop)");
        let mut e = engine(&["disk"], 1.0);
        let path = CString::new(dev.device().as_os_str().as_bytes()).unwrap();
        let name = dev.name();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            // SAFETY: opening the loop device for direct I/O; an aligned buffer, freed below.
            let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_DIRECT) };
            assert!(fd >= 0);
            let layout = std::alloc::Layout::from_size_align(4096, 4096).unwrap();
            let buf = unsafe { std::alloc::alloc_zeroed(layout) };
            let t = Instant::now();
            for i in 0..30 {
                let n = unsafe { libc::pwrite(fd, buf.cast(), 4096, i * 4096 * 16) };
                assert_eq!(n, 4096);
            }
            unsafe {
                libc::close(fd);
                std::alloc::dealloc(buf, layout);
            }
            t.elapsed()
        });
        let s = collect(&mut e, 3);
        let took = writer.join().unwrap();
        let disk = s.disk.as_ref().unwrap();
        let d = disk
            .devices
            .iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("{name} in {:?}", disk.devices));
        let w = d.ops.iter().find(|o| o.op == "write").expect("writes");
        let (p50, p99) = (
            w.latency.percentile(50.0).unwrap(),
            w.latency.percentile(99.0).unwrap(),
        );
        eprintln!(
            "{name}: {} writes, p50 {p50} ns, p99 {p99} ns, injected {delay:?}, 30 writes took {took:?}",
            w.count
        );
        assert!(w.count >= 30);
        let inj = delay.as_nanos() as u64;
        assert!(p50 >= inj && p50 < inj + 15_000_000, "p50 {p50} near {inj}");
        assert!(p99 >= inj && p99 < inj + 25_000_000, "p99 {p99} near {inj}");
        drop(dev);
    }

    /// The capacity domains (filesystem, pids, conntrack) against `statvfs`, `pids.*` and
    /// `net/stat/nf_conntrack` read by the test itself, each on its chaos scenario.
    #[test]
    fn root_capacity_signals_match_statvfs_pids_and_conntrack_files() {
        let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let mut e = engine(&["filesystem", "pids", "conntrack"], 1.0);
        let low = ChaosOptions::new(Intensity::Low, Duration::from_secs(20));

        let fs = chaos::start("filesystem-full", &low).expect("filesystem-full scenario");
        let at = fs.mounts[0].clone();
        let dev = format!("/dev/{}", fs.devices[0]);
        std::thread::sleep(Duration::from_millis(500));
        let s = collect(&mut e, 2);
        let truth = kerno_core::procfs::statvfs(&at).expect("statvfs");
        let seen = s
            .filesystem
            .as_ref()
            .and_then(|f| f.filesystems.iter().find(|f| f.device == dev))
            .unwrap_or_else(|| panic!("{dev} not in {:?}", s.filesystem));
        eprintln!(
            "filesystem: {} {:.2}% used; statvfs size {} avail {}",
            seen.label(),
            seen.used_pct(),
            truth.size,
            truth.avail
        );
        assert_eq!(seen.mountpoint, at.display().to_string());
        assert_eq!(
            (seen.size_bytes, seen.fstype.as_str()),
            (truth.size, "ext4")
        );
        assert_eq!(seen.avail_bytes, truth.avail, "flat at low intensity");
        assert!(seen.used_pct() > 90.0 && seen.used_series.len() >= 2);
        fs.stop().expect("stop filesystem-full");

        let medium = ChaosOptions::new(Intensity::Medium, Duration::from_secs(20));
        let pids = chaos::start("pid-exhaustion", &medium).expect("pid-exhaustion scenario");
        let path = pids.cgroup.clone().unwrap();
        let dir =
            std::path::PathBuf::from("/sys/fs/cgroup/pids").join(path.trim_start_matches('/'));
        let refused =
            || kerno_core::procfs::read_keyed(&dir.join("pids.events"), "max").unwrap_or(0);
        std::thread::sleep(Duration::from_millis(800));
        let r0 = refused();
        let s = collect(&mut e, 2);
        let r1 = refused();
        let c = s
            .pids
            .as_ref()
            .and_then(|p| p.cgroups.iter().find(|c| c.path == path))
            .unwrap_or_else(|| panic!("{path} not in {:?}", s.pids));
        eprintln!(
            "pids: {} {}/{} with {} refused forks (pids.events max {r0} -> {r1})",
            c.path, c.current, c.limit, c.fork_failures
        );
        assert_eq!((c.current, c.limit, c.version), (64, 64, 1));
        assert!(
            c.fork_failures <= r1 - r0 && c.fork_failures + 3 >= r1 - r0 && c.fork_failures >= 10,
            "{} refused in the window, {} around it",
            c.fork_failures,
            r1 - r0
        );
        assert!(c.processes.iter().any(|p| pids.pids.contains(&p.pid)));
        pids.stop().expect("stop pid-exhaustion");

        let ct = chaos::start("conntrack-full", &medium).expect("conntrack-full scenario");
        let pid = ct.pids[0];
        std::thread::sleep(Duration::from_millis(800));
        // The flows are sent again every 5 s, and the ones past the limit dropped then.
        let s = collect(&mut e, 6);
        let stat = std::fs::read_to_string(format!("/proc/{pid}/net/stat/nf_conntrack"))
            .ok()
            .as_deref()
            .and_then(kerno_core::procfs::parse_conntrack_stat)
            .expect("the namespace's conntrack stat");
        let max = kerno_core::procfs::sysctl_u64("net/netfilter/nf_conntrack_max").unwrap();
        let c = s.conntrack.as_ref().expect("conntrack observed");
        let n = c
            .namespaces
            .iter()
            .find(|n| n.process.pid == pid)
            .unwrap_or_else(|| panic!("pid {pid}'s namespace not in {c:?}"));
        eprintln!(
            "conntrack: {} {} of {} (stat entries {}), {} drops, {} early drops",
            n.label(),
            n.count,
            c.max,
            stat.entries,
            n.drops,
            n.early_drops
        );
        assert_eq!((c.max, n.count), (max, stat.entries));
        assert!(
            !n.host && n.count == max,
            "the scenario's namespace is full"
        );
        assert!(n.drops + n.early_drops > 0, "and drops");
        ct.stop().expect("stop conntrack-full");
    }
}
