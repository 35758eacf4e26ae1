//! Root tests for `kerno_chaos`: each scenario is started briefly and checked against
//! the kernel's own counters (not Kerno's probes: this is the ground truth the probes are
//! judged by), then stopped, and nothing may be left behind. They need root, FUSE, TUN,
//! loop devices and cgroups; CI runs them. Tests share one kernel: a lock keeps them serial
//! under a plain `cargo test` too (scripts/test.sh uses --test-threads=1).

use std::{
    collections::HashMap,
    ffi::CString,
    net::{SocketAddr, TcpStream},
    os::{fd::AsRawFd as _, unix::ffi::OsStrExt as _},
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};

use kerno_chaos::{self as chaos, ChaosOptions, Intensity, Running, SlowDevice};

static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn start(name: &str, intensity: Intensity) -> Running {
    let opts = ChaosOptions::new(intensity, Duration::from_secs(20));
    chaos::start(name, &opts)
        .unwrap_or_else(|e| panic!("starting {name} (these tests need root): {e}"))
}

/// Stop the scenario and check that nothing of it (or of any other scenario of this
/// process) is left: processes, namespaces, cgroups, mounts, loop devices, directories.
fn stop_and_check(r: Running) {
    let pids: Vec<u32> = r.pids.iter().chain(&r.helper_pids).copied().collect();
    let netns = r.netns.clone();
    let devices = r.devices.clone();
    r.stop().expect("stop cleans up");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} outlived the scenario"
        );
    }
    let listed = cmd("ip", &["netns", "list"]);
    for n in netns {
        assert!(!listed.contains(&n), "netns {n} left: {listed}");
    }
    let loops = cmd("losetup", &["-a"]);
    for d in devices {
        assert!(
            !loops.contains(&format!("/dev/{d}:")),
            "{d} still attached: {loops}"
        );
    }
    let left = chaos::leftovers(std::process::id());
    assert!(left.is_empty(), "left behind: {left:?}");
}

fn cmd(tool: &str, args: &[&str]) -> String {
    let out = std::process::Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{tool}: {e}"));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()))
}

fn read_u64(path: impl AsRef<Path>) -> u64 {
    read(path).trim().parse().expect("a number")
}

/// `key value` lines (vmstat, memory.stat, memory.oom_control).
fn keyed(path: impl AsRef<Path>, key: &str) -> u64 {
    read(path)
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

/// The `Tcp:` counters of the network namespace `pid` is in.
fn tcp_mib(pid: u32) -> HashMap<String, u64> {
    let text = read(format!("/proc/{pid}/net/snmp"));
    let mut lines = text.lines().filter(|l| l.starts_with("Tcp:"));
    let keys: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    let vals: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    keys.iter()
        .zip(vals)
        .skip(1)
        .map(|(k, v)| (k.to_string(), v.parse().unwrap_or(0)))
        .collect()
}

/// `/proc/<pid>/schedstat`: (time on CPU, time waiting on a run queue, timeslices).
fn schedstat(pid: u32) -> (u64, u64, u64) {
    let s = read(format!("/proc/{pid}/schedstat"));
    let v: Vec<u64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();
    (v[0], v[1], v[2])
}

fn memory_cgroup_dir(cgroup: &str) -> PathBuf {
    Path::new("/sys/fs/cgroup/memory").join(cgroup.trim_start_matches('/'))
}

fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    f()
}

/// Run `f` on a thread that entered network namespace `netns` (setns on a thread changes
/// only that thread's namespace).
fn in_netns<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = Path::new("/run/netns").join(netns);
    std::thread::spawn(move || {
        let ns = std::fs::File::open(&path).expect("open netns");
        // SAFETY: setns on this thread with a namespace fd we hold.
        assert_eq!(
            unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) },
            0
        );
        f()
    })
    .join()
    .expect("netns thread")
}

fn server_addr() -> SocketAddr {
    "10.201.0.6:5001".parse().unwrap()
}

// ---- scenarios ---------------------------------------------------------------------------

#[test]
fn root_chaos_cpu_makes_its_processes_wait_on_the_run_queue() {
    let _g = serial();
    let r = start("cpu", Intensity::Medium);
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(r.pids.len(), 4 * cpus);
    let cg = r.cgroup.clone().expect("a cgroup");
    for pid in &r.pids {
        assert!(read(format!("/proc/{pid}/cgroup")).contains(&cg));
    }
    let before: Vec<_> = r.pids.iter().map(|p| schedstat(*p)).collect();
    std::thread::sleep(Duration::from_secs(3));
    let (mut run, mut wait, mut slices) = (0, 0, 0);
    for (pid, b) in r.pids.iter().zip(before) {
        let a = schedstat(*pid);
        run += a.0 - b.0;
        wait += a.1 - b.1;
        slices += a.2 - b.2;
    }
    let per_slice_ms = wait as f64 / slices.max(1) as f64 / 1e6;
    eprintln!(
        "cpu medium: {} spinners ran {:.2} s, waited {:.2} s on run queues, {per_slice_ms:.1} ms per wait",
        r.pids.len(),
        run as f64 / 1e9,
        wait as f64 / 1e9
    );
    // Spinners outnumber CPUs 4 to 1: each waits about 3 times as long as it runs. (The
    // mean wait is a few ms; the p99 the rule reads is over 20 ms.)
    assert!(wait > 2 * run, "waited {wait} ns, ran {run} ns");
    assert!(per_slice_ms > 3.0, "{per_slice_ms} ms per wait");
    stop_and_check(r);
}

#[test]
fn root_chaos_disk_sat_makes_fsync_slow_on_a_slow_device() {
    let _g = serial();
    let r = start("disk-sat", Intensity::Low);
    assert_eq!(r.devices.len(), 1);
    let dev = r.devices[0].clone();
    let mnt = r.mounts[0].clone();
    let stat = |f: usize| -> u64 {
        read(format!("/sys/block/{dev}/stat"))
            .split_whitespace()
            .nth(f)
            .unwrap()
            .parse()
            .unwrap()
    };
    // Fields 4 and 7 (from 0): writes completed, milliseconds spent writing.
    let (w0, t0) = (stat(4), stat(7));
    // The test's own fsync on the same filesystem, timed.
    let file = mnt.join("probe");
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        std::fs::write(&file, vec![7u8; 64 << 10]).unwrap();
        let t = Instant::now();
        std::fs::File::open(&file).unwrap().sync_all().unwrap();
        worst = worst.max(t.elapsed());
    }
    let (w1, t1) = (stat(4), stat(7));
    let avg_ms = (t1 - t0) as f64 / (w1 - w0).max(1) as f64;
    eprintln!(
        "disk-sat low: {dev} {} writes, {avg_ms:.1} ms each on average; slowest fsync {worst:?}",
        w1 - w0
    );
    assert!(w1 - w0 >= 10, "the writers keep the device busy");
    assert!(
        avg_ms >= 8.0,
        "device writes take the injected 8 ms: {avg_ms}"
    );
    assert!(
        worst > Duration::from_millis(50),
        "fsync over 50 ms: {worst:?}"
    );
    stop_and_check(r);
}

#[test]
fn root_chaos_slow_device_latency_is_the_injected_delay() {
    let _g = serial();
    let delay = Duration::from_millis(30);
    let dev = SlowDevice::new(16 << 20, delay).expect("slow device (root, FUSE, loop)");
    let path = CString::new(dev.device().as_os_str().as_bytes()).unwrap();
    // SAFETY: opening the loop device for direct I/O.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_DIRECT) };
    assert!(fd >= 0, "open {}", dev.device().display());
    let layout = std::alloc::Layout::from_size_align(4096, 4096).unwrap();
    // SAFETY: an aligned buffer for O_DIRECT, freed below.
    let buf = unsafe { std::alloc::alloc_zeroed(layout) };
    let before = dev.stats().writes;
    let mut lat = Vec::new();
    for i in 0..12 {
        let t = Instant::now();
        // SAFETY: writing our aligned buffer.
        let n = unsafe { libc::pwrite(fd, buf.cast(), 4096, i * 4096 * 16) };
        assert_eq!(n, 4096);
        lat.push(t.elapsed());
    }
    // SAFETY: closing our fd and freeing our buffer.
    unsafe {
        libc::close(fd);
        std::alloc::dealloc(buf, layout);
    }
    lat.sort();
    let (p50, max) = (lat[lat.len() / 2], lat[lat.len() - 1]);
    eprintln!("slow device {}: p50 {p50:?}, max {max:?}", dev.name());
    assert!(dev.stats().writes >= before + 12);
    assert!(
        p50 >= delay && p50 < delay + Duration::from_millis(25),
        "{p50:?}"
    );
    let name = dev.name();
    drop(dev);
    assert!(!cmd("losetup", &["-a"]).contains(&format!("/dev/{name}:")));
    assert!(chaos::leftovers(std::process::id()).is_empty());
}

#[test]
fn root_chaos_fd_leak_grows_descriptors_towards_a_limit() {
    let _g = serial();
    let r = start("fd-leak", Intensity::High);
    let pid = r.pids[0];
    let count = || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .count()
    };
    let n0 = count();
    std::thread::sleep(Duration::from_secs(2));
    let n1 = count();
    let limits = read(format!("/proc/{pid}/limits"));
    let soft: u64 = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap();
    eprintln!("fd-leak high: {n0} -> {n1} descriptors in 2 s, soft limit {soft}");
    assert!(n1 >= n0 + 300, "about 200/s: {n0} -> {n1}");
    assert!(soft <= 65536);
    assert_eq!(read(format!("/proc/{pid}/comm")).trim(), "kchaos-fdleak");
    stop_and_check(r);
}

#[test]
fn root_chaos_memory_fills_a_cgroup_past_90_percent_and_keeps_growing() {
    let _g = serial();
    let r = start("memory", Intensity::High);
    let dir = memory_cgroup_dir(r.cgroup.as_deref().unwrap());
    let limit = read_u64(dir.join("memory.limit_in_bytes"));
    let usage = || read_u64(dir.join("memory.usage_in_bytes"));
    assert!(
        wait_for(Duration::from_secs(5), || usage() as f64
            > 0.9 * limit as f64),
        "usage {} of {limit}",
        usage()
    );
    let u0 = usage();
    std::thread::sleep(Duration::from_secs(3));
    let u1 = usage();
    eprintln!(
        "memory high: {:.2}% -> {:.2}% of {} MiB in 3 s",
        100.0 * u0 as f64 / limit as f64,
        100.0 * u1 as f64 / limit as f64,
        limit >> 20
    );
    assert!(u1 > u0, "still growing");
    assert!((u1 as f64) < 0.99 * limit as f64, "never at the limit");
    assert_eq!(keyed(dir.join("memory.oom_control"), "oom_kill"), 0);
    assert!(read(dir.join("cgroup.procs")).contains(&r.pids[0].to_string()));
    stop_and_check(r);
    assert!(!dir.exists(), "cgroup {} removed", dir.display());
}

#[test]
fn root_chaos_oom_gets_processes_oom_killed() {
    let _g = serial();
    let before = keyed("/proc/vmstat", "oom_kill");
    let r = start("oom", Intensity::High);
    let dir = memory_cgroup_dir(r.cgroup.as_deref().unwrap());
    assert!(
        wait_for(Duration::from_secs(8), || keyed("/proc/vmstat", "oom_kill")
            >= before + 2),
        "two OOM kills in /proc/vmstat"
    );
    let in_cgroup = keyed(dir.join("memory.oom_control"), "oom_kill");
    eprintln!(
        "oom high: vmstat oom_kill {before} -> {}, cgroup oom_kill {in_cgroup}",
        keyed("/proc/vmstat", "oom_kill")
    );
    assert!(in_cgroup >= 2, "the kills were in the scenario's cgroup");
    stop_and_check(r);
}

#[test]
fn root_chaos_tcp_loss_makes_the_sender_retransmit() {
    let _g = serial();
    let r = start("tcp-loss", Intensity::Medium);
    assert_eq!(r.netns.len(), 3);
    let sender = r.pids[0];
    let a = tcp_mib(sender);
    std::thread::sleep(Duration::from_secs(4));
    let b = tcp_mib(sender);
    let out = b["OutSegs"] - a["OutSegs"];
    let retrans = b["RetransSegs"] - a["RetransSegs"];
    let pct = 100.0 * retrans as f64 / out.max(1) as f64;
    eprintln!("tcp-loss medium: {retrans} of {out} segments retransmitted ({pct:.1}%)");
    assert!(out >= 500, "enough segments for the rule: {out}");
    assert!(pct > 2.0, "{pct}%");
    // The host's own namespace saw none of it.
    stop_and_check(r);
}

/// `rtt:12.3/...` of the established connections `ss` lists in a namespace, ms.
fn ss_rtts(netns: &str) -> Vec<f64> {
    cmd("ss", &["-N", netns, "-tin", "state", "established"])
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("rtt:"))
        .filter_map(|v| v.split('/').next()?.parse().ok())
        .collect()
}

#[test]
fn root_chaos_tcp_rtt_delays_the_stream() {
    let _g = serial();
    let r = start("tcp-rtt", Intensity::Low);
    let client = r.netns[0].clone();
    std::thread::sleep(Duration::from_secs(2));
    let rtts = ss_rtts(&client);
    eprintln!("tcp-rtt low: smoothed RTTs {rtts:?} ms");
    assert!(!rtts.is_empty(), "the stream is established");
    assert!(rtts.iter().all(|r| *r >= 18.0 && *r < 60.0), "{rtts:?}");
    let a = tcp_mib(r.pids[0]);
    std::thread::sleep(Duration::from_secs(1));
    let b = tcp_mib(r.pids[0]);
    assert!(b["OutSegs"] - a["OutSegs"] > 200, "the stream flows");
    stop_and_check(r);
}

#[test]
fn root_chaos_network_latency_makes_connect_slow() {
    let _g = serial();
    let r = start("network-latency", Intensity::Low);
    let client = r.netns[0].clone();
    let times = in_netns(&client, || {
        (0..5)
            .map(|_| {
                let t = Instant::now();
                TcpStream::connect_timeout(&server_addr(), Duration::from_secs(5))
                    .expect("connect through the delay line");
                t.elapsed()
            })
            .collect::<Vec<_>>()
    });
    eprintln!("network-latency low: connect took {times:?}");
    assert!(
        times
            .iter()
            .all(|t| *t >= Duration::from_millis(150) && *t < Duration::from_millis(400)),
        "{times:?}"
    );
    let opens = |pid| tcp_mib(pid)["ActiveOpens"];
    let o0 = opens(r.pids[0]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(opens(r.pids[0]) >= o0 + 5, "the prober connects ~10/s");
    stop_and_check(r);
}

#[test]
fn root_chaos_tcp_churn_opens_and_closes_connections() {
    let _g = serial();
    let r = start("tcp-churn", Intensity::Low);
    let pid = r.pids[0];
    let a = tcp_mib(pid);
    std::thread::sleep(Duration::from_secs(2));
    let b = tcp_mib(pid);
    let opens = b["ActiveOpens"] - a["ActiveOpens"];
    eprintln!(
        "tcp-churn low: {opens} connections in 2 s, {} retransmitted segments, {} failed",
        b["RetransSegs"] - a["RetransSegs"],
        b["AttemptFails"] - a["AttemptFails"]
    );
    assert!(opens >= 300, "about 200/s: {opens}");
    assert_eq!(
        b["AttemptFails"] - a["AttemptFails"],
        0,
        "all connects succeed"
    );
    stop_and_check(r);
}

#[test]
fn root_chaos_syscall_errors_fail_connects_with_econnrefused() {
    let _g = serial();
    let r = start("syscall-errors", Intensity::Medium);
    let pid = r.pids[0];
    let a = tcp_mib(pid);
    std::thread::sleep(Duration::from_secs(2));
    let b = tcp_mib(pid);
    let fails = b["AttemptFails"] - a["AttemptFails"];
    let opened = b["ActiveOpens"] - a["ActiveOpens"];
    let pct = 100.0 * fails as f64 / opened.max(1) as f64;
    eprintln!(
        "syscall-errors medium: {fails} of {opened} connection attempts refused in 2 s ({pct:.1}%)"
    );
    // 1000 connects a second, 30% of them to a port nobody listens on: a RST answers
    // each of those SYNs.
    assert!(opened >= 1500, "about 1000/s: {opened}");
    assert!((25.0..35.0).contains(&pct), "{pct}%");
    assert!(b["OutRsts"] - a["OutRsts"] >= fails);
    stop_and_check(r);
}

#[test]
fn root_chaos_slow_syscalls_block_stat_and_statfs() {
    let _g = serial();
    let r = start("slow-syscalls", Intensity::Low);
    let mnt = r.mounts[0].clone();
    // The workers are blocked in the FUSE filesystem.
    let blocked = r
        .pids
        .iter()
        .filter(|p| read(format!("/proc/{p}/stat")).contains(") S "))
        .count();
    let t = Instant::now();
    std::fs::metadata(mnt.join("slow")).expect("stat");
    let stat = t.elapsed();
    let c = CString::new(mnt.as_os_str().as_bytes()).unwrap();
    let t = Instant::now();
    // SAFETY: statfs into a zeroed struct.
    let rc = unsafe {
        let mut sf: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut sf)
    };
    let statfs = t.elapsed();
    eprintln!("slow-syscalls low: stat {stat:?}, statfs {statfs:?}, {blocked} workers sleeping");
    assert_eq!(rc, 0);
    assert!(stat >= Duration::from_millis(150), "{stat:?}");
    assert!(statfs >= Duration::from_millis(150), "{statfs:?}");
    assert!(
        statfs < Duration::from_millis(400),
        "served concurrently: {statfs:?}"
    );
    stop_and_check(r);
}

#[test]
fn root_chaos_cascade_runs_its_stages_and_cleans_all_of_them() {
    let _g = serial();
    let opts = ChaosOptions::new(Intensity::Low, Duration::from_secs(4));
    let r = chaos::start("cascade", &opts).expect("cascade");
    let names: Vec<&str> = r.stages.iter().map(|s| s.scenario.as_str()).collect();
    assert_eq!(names, ["fd-leak", "memory", "disk-sat", "tcp-loss"]);
    let leak = r.stages[0].pids[0];
    let tx = r.stages[3].pids[0];
    let fds = || {
        std::fs::read_dir(format!("/proc/{leak}/fd"))
            .unwrap()
            .count()
    };
    let (f0, t0) = (fds(), tcp_mib(tx)["OutSegs"]);
    // The last stage starts 3 s after its set-up (a dropped SYN can add a second or two).
    let started = wait_for(Duration::from_secs(9), || tcp_mib(tx)["OutSegs"] > t0 + 100);
    let (f1, t1) = (fds(), tcp_mib(tx)["OutSegs"]);
    eprintln!("cascade: fds {f0} -> {f1}, tcp segments {t0} -> {t1}");
    assert!(f1 > f0 + 40, "the first stage leaks");
    assert!(started, "the last stage started");
    stop_and_check(r);
}

#[test]
fn root_chaos_filesystem_full_fills_a_loop_mounted_filesystem() {
    let _g = serial();
    let r = start("filesystem-full", Intensity::High);
    let at = r.mounts[0].clone();
    let used = || {
        let st = kerno_core::procfs::statvfs(&at).expect("statvfs of the scenario's mount");
        1.0 - st.avail as f64 / st.size as f64
    };
    assert!(
        wait_for(Duration::from_secs(5), || used() > 0.95),
        "used {:.3}",
        used()
    );
    let u0 = used();
    std::thread::sleep(Duration::from_secs(2));
    let u1 = used();
    eprintln!(
        "filesystem-full high: {:.2}% -> {:.2}% used in 2 s",
        u0 * 100.0,
        u1 * 100.0
    );
    assert!(u1 > u0, "still filling");
    assert!(u1 < 0.995, "never completely full");
    let mounted = read("/proc/self/mountinfo");
    assert!(
        mounted.contains(&format!("/dev/{} ", r.devices[0])),
        "the loop device is what is mounted: {mounted}"
    );
    stop_and_check(r);
    assert!(!at.exists(), "{} removed", at.display());
}

fn conntrack_max() -> u64 {
    read_u64("/proc/sys/net/netfilter/nf_conntrack_max")
}

/// The namespace's conntrack entries (first column of its stat file, hexadecimal).
fn conntrack_entries(pid: u32) -> u64 {
    let stat = read(format!("/proc/{pid}/net/stat/nf_conntrack"));
    let line = stat.lines().nth(1).unwrap_or_default();
    u64::from_str_radix(line.split_whitespace().next().unwrap_or("0"), 16).unwrap_or(0)
}

#[test]
fn root_chaos_conntrack_full_fills_a_lowered_limit_and_restores_it() {
    let _g = serial();
    let before = conntrack_max();
    let r = start("conntrack-full", Intensity::Medium);
    let lowered = conntrack_max();
    assert!(
        lowered < before,
        "the limit is lowered: {before} -> {lowered}"
    );
    let pid = r.pids[0];
    assert!(
        wait_for(Duration::from_secs(5), || conntrack_entries(pid) >= lowered),
        "entries {} of {lowered}",
        conntrack_entries(pid)
    );
    let drops = |pid: u32| {
        let stat = read(format!("/proc/{pid}/net/stat/nf_conntrack"));
        let header: Vec<&str> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .collect();
        let (d, e) = (
            header.iter().position(|h| *h == "drop").unwrap(),
            header.iter().position(|h| *h == "early_drop").unwrap(),
        );
        stat.lines()
            .skip(1)
            .map(|l| {
                let v: Vec<u64> = l
                    .split_whitespace()
                    .map(|x| u64::from_str_radix(x, 16).unwrap_or(0))
                    .collect();
                v[d] + v[e]
            })
            .sum::<u64>()
    };
    assert!(
        wait_for(Duration::from_secs(8), || drops(pid) > 0),
        "the full table drops or evicts"
    );
    eprintln!(
        "conntrack-full medium: limit {before} -> {lowered}, {} entries, {} drops",
        conntrack_entries(pid),
        drops(pid)
    );
    stop_and_check(r);
    assert_eq!(conntrack_max(), before, "the limit is restored on stop");

    // A crashed run's limit is restored by the next cleanup.
    let mut fds = [0; 2];
    // SAFETY: a pipe to hear from the child.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child starts the scenario, reports, and waits to be killed; it never
    // returns into the test harness.
    let child = unsafe { libc::fork() };
    assert!(child >= 0);
    if child == 0 {
        let opts = ChaosOptions::new(Intensity::Low, Duration::from_secs(30));
        let r = chaos::start("conntrack-full", &opts);
        let byte = [u8::from(r.is_ok())];
        std::mem::forget(r);
        // SAFETY: reporting to the parent, then waiting for SIGKILL.
        unsafe {
            libc::write(fds[1], byte.as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    let mut byte = [0u8];
    // SAFETY: reading the child's report, then killing and reaping it: a crash.
    unsafe {
        libc::close(fds[1]);
        libc::read(fds[0], byte.as_mut_ptr().cast(), 1);
        libc::close(fds[0]);
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    assert_eq!(byte[0], 1, "the child started the scenario");
    assert!(conntrack_max() < before, "still lowered after the crash");
    let removed = chaos::clean_stale().expect("stale cleanup");
    eprintln!("cleaned: {removed:?}");
    assert!(
        removed
            .iter()
            .any(|l| l.contains("nf_conntrack_max restored")),
        "{removed:?}"
    );
    assert_eq!(conntrack_max(), before, "restored by the cleanup");
    assert!(chaos::leftovers(child as u32).is_empty());
}

#[test]
fn root_chaos_pid_exhaustion_refuses_forks_at_the_limit() {
    let _g = serial();
    let r = start("pid-exhaustion", Intensity::High);
    let dir = PathBuf::from("/sys/fs/cgroup/pids")
        .join(r.cgroup.as_deref().unwrap().trim_start_matches('/'));
    let (limit, current) = (read_u64(dir.join("pids.max")), || {
        read_u64(dir.join("pids.current"))
    });
    assert!(
        wait_for(Duration::from_secs(5), || current() >= limit),
        "pids.current {} of {limit}",
        current()
    );
    let e0 = keyed(dir.join("pids.events"), "max");
    std::thread::sleep(Duration::from_secs(1));
    let e1 = keyed(dir.join("pids.events"), "max");
    eprintln!(
        "pid-exhaustion high: {} of {limit} tasks, {} refused forks in 1 s",
        current(),
        e1 - e0
    );
    assert!(e1 > e0 + 20, "forks are refused at the limit: {e0} -> {e1}");
    stop_and_check(r);
    assert!(!dir.exists(), "cgroup {} removed", dir.display());
}

#[test]
fn root_chaos_a_crashed_run_is_cleaned_by_the_next() {
    let _g = serial();
    let mut fds = [0; 2];
    // SAFETY: a pipe to hear from the child.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    // SAFETY: the child starts scenarios, reports, and waits to be killed; it never
    // returns into the test harness.
    let child = unsafe { libc::fork() };
    assert!(child >= 0);
    if child == 0 {
        let opts = ChaosOptions::new(Intensity::Low, Duration::from_secs(30));
        let ok = ["disk-sat", "tcp-loss", "memory"]
            .iter()
            .map(|n| chaos::start(n, &opts))
            .collect::<Result<Vec<_>, _>>();
        let byte = [u8::from(ok.is_ok())];
        // SAFETY: reporting to the parent, then waiting for SIGKILL.
        unsafe {
            libc::write(fds[1], byte.as_ptr().cast(), 1);
            loop {
                libc::pause();
            }
        }
    }
    let mut byte = [0u8];
    // SAFETY: reading the child's report, then killing and reaping it: a crash.
    unsafe {
        libc::close(fds[1]);
        libc::read(fds[0], byte.as_mut_ptr().cast(), 1);
        libc::close(fds[0]);
        libc::kill(child, libc::SIGKILL);
        libc::waitpid(child, std::ptr::null_mut(), 0);
    }
    assert_eq!(byte[0], 1, "the child started its scenarios");
    let owner = child as u32;
    let left = chaos::leftovers(owner);
    eprintln!("after the crash: {left:?}");
    assert!(left.iter().any(|l| l.starts_with("network namespace")));
    assert!(left.iter().any(|l| l.starts_with("mount")));
    assert!(left.iter().any(|l| l.starts_with("cgroup")));
    // Workers die with their owner.
    assert!(
        wait_for(Duration::from_secs(5), || {
            !chaos::leftovers(owner)
                .iter()
                .any(|l| l.starts_with("process"))
        }),
        "workers outlived their owner"
    );
    let removed = chaos::clean_stale().expect("stale cleanup");
    eprintln!("cleaned: {removed:?}");
    let left = chaos::leftovers(owner);
    assert!(left.is_empty(), "left after cleanup: {left:?}");
    assert!(!cmd("losetup", &["-a"]).contains(&format!("kerno-chaos-{owner}-")));
}

#[test]
fn root_chaos_unknown_scenario_and_catalogue() {
    assert!(matches!(
        chaos::start("nope", &ChaosOptions::default()),
        Err(chaos::ChaosError::UnknownScenario(_))
    ));
    for s in chaos::SCENARIOS {
        assert!(chaos::scenario(s.name).is_some());
        assert!(!s.summary.is_empty() && !s.intensities.is_empty());
    }
    assert_eq!(chaos::SCENARIOS.len(), 19);
    assert_eq!("high".parse::<Intensity>(), Ok(Intensity::High));
}

// ---- saturation scenarios -----------------------------------------------------------------

/// The `some`/`full` totals (µs) of a PSI file.
fn psi_totals(path: impl AsRef<Path>) -> (u64, u64) {
    let text = read(path);
    let total = |kind: &str| {
        text.lines()
            .find(|l| l.starts_with(kind))
            .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("total=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (total("some"), total("full"))
}

/// The scenario's cgroup in the v2 hierarchy (every scenario makes one there).
fn v2_dir(cgroup: &str) -> PathBuf {
    kerno_core::procfs::cgroup2_root()
        .expect("a cgroup v2 hierarchy")
        .join(cgroup.trim_start_matches('/'))
}

#[test]
fn root_chaos_cpu_throttle_stops_its_spinner_at_its_quota() {
    let _g = serial();
    let r = start("cpu-throttle", Intensity::Medium);
    let cg = r.cgroup.clone().expect("a cgroup");
    let dir = kerno_core::procfs::cgroup1_root("cpu", "cpu.cfs_quota_us")
        .map(|root| root.join(cg.trim_start_matches('/')))
        .unwrap_or_else(|| v2_dir(&cg));
    let stat = dir.join("cpu.stat");
    let (p0, t0) = (keyed(&stat, "nr_periods"), keyed(&stat, "nr_throttled"));
    let run0 = schedstat(r.pids[0]).0;
    std::thread::sleep(Duration::from_secs(3));
    let (p1, t1) = (keyed(&stat, "nr_periods"), keyed(&stat, "nr_throttled"));
    let ran = (schedstat(r.pids[0]).0 - run0) as f64 / 1e9;
    eprintln!(
        "cpu-throttle medium: {} of {} periods throttled, the spinner ran {ran:.2} s of 3 s",
        t1 - t0,
        p1 - p0
    );
    assert!(p1 - p0 >= 25, "{} periods", p1 - p0);
    assert!(
        (t1 - t0) * 10 >= (p1 - p0) * 9,
        "throttled {} of {}",
        t1 - t0,
        p1 - p0
    );
    // 20% of a CPU for 3 s.
    assert!((0.4..0.8).contains(&ran), "ran {ran} s");
    stop_and_check(r);
}

#[test]
fn root_chaos_memory_reclaim_stalls_its_cgroup_on_memory() {
    let _g = serial();
    let r = start("memory-reclaim", Intensity::Medium);
    let psi = v2_dir(r.cgroup.as_deref().expect("a cgroup")).join("memory.pressure");
    std::thread::sleep(Duration::from_secs(1));
    let (_, f0) = psi_totals(&psi);
    std::thread::sleep(Duration::from_secs(4));
    let (_, f1) = psi_totals(&psi);
    let full = (f1 - f0) as f64 / 4e6 * 100.0;
    eprintln!("memory-reclaim medium: memory full {full:.1}% of 4 s in its cgroup");
    assert!(full > 10.0, "memory full {full}%");
    stop_and_check(r);
}

#[test]
fn root_chaos_io_throttle_keeps_its_reader_waiting_for_io() {
    let _g = serial();
    let r = start("io-throttle", Intensity::Medium);
    assert_eq!(r.devices.len(), 1);
    let psi = v2_dir(r.cgroup.as_deref().expect("a cgroup")).join("io.pressure");
    std::thread::sleep(Duration::from_secs(1));
    let (_, f0) = psi_totals(&psi);
    let io0 = read(format!("/proc/{}/io", r.pids[0]));
    std::thread::sleep(Duration::from_secs(3));
    let (_, f1) = psi_totals(&psi);
    let io1 = read(format!("/proc/{}/io", r.pids[0]));
    let rb = |t: &str| {
        t.lines()
            .find_map(|l| l.strip_prefix("read_bytes: "))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0)
    };
    let rate = (rb(&io1) - rb(&io0)) as f64 / 3.0 / 1024.0;
    let full = (f1 - f0) as f64 / 3e6 * 100.0;
    eprintln!("io-throttle medium: read {rate:.0} KiB/s, io full {full:.1}% in its cgroup");
    // Measured 49.9-51.9% at medium on the CI kind of machine (2 CPUs, 6.18; the same run to
    // run): the bound was 50, at the measured value itself, and failed half the time. What
    // the test checks is that the reader waits on I/O for a large share of the window, well
    // above the io-pressure rule's critical 30% (whose threshold is not changed).
    assert!(full > 40.0, "io full {full}%");
    assert!(
        rate < 1.5 * 1024.0,
        "read {rate} KiB/s, over its 1 MiB/s limit"
    );
    stop_and_check(r);
}

#[test]
fn root_chaos_listen_overflow_drops_handshakes() {
    let _g = serial();
    let r = start("listen-overflow", Intensity::Medium);
    let counters = |pid: u32| {
        let text = read(format!("/proc/{pid}/net/netstat"));
        let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
        let (h, v) = (lines.next().unwrap_or(""), lines.next().unwrap_or(""));
        let get = |k: &str| {
            h.split_whitespace()
                .position(|x| x == k)
                .and_then(|i| v.split_whitespace().nth(i)?.parse::<u64>().ok())
                .unwrap_or(0)
        };
        (get("ListenOverflows"), get("ListenDrops"))
    };
    let server = r.pids[0];
    let (o0, d0) = counters(server);
    std::thread::sleep(Duration::from_secs(3));
    let (o1, d1) = counters(server);
    eprintln!(
        "listen-overflow medium: {} overflows, {} drops in 3 s",
        o1 - o0,
        d1 - d0
    );
    assert!(
        o1 - o0 >= 20 && d1 - d0 >= o1 - o0,
        "{o0}->{o1}, {d0}->{d1}"
    );
    stop_and_check(r);
}
