//! Root tests: faults injected into `kerno start` and `kerno doctor`, and what must survive
//! them. Each domain failed in turn (only it degrades, `/readyz` names it, the rest report);
//! the agent killed with SIGKILL (no BPF object left, the next agent starts on the same
//! socket and port; the socket's mode, its directory, the listen address, what the TCP
//! port serves); the sampling loop stalled (`/healthz` fails) and readiness only once
//! `/metrics` has data; no outbound connection, watched by strace in a network namespace
//! that has only loopback. Needs root, bpftool, strace, unshare and nsenter
//! (scripts/setup.sh); scripts/test.sh runs it with --test-threads=1 (one kernel). Figures in
//! docs/reliability.md, "Faults and health".

mod support;

use std::{
    collections::{BTreeMap, BTreeSet},
    net::{Ipv4Addr, Ipv6Addr, TcpStream},
    os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Output, Stdio},
    sync::atomic::{AtomicUsize, Ordering},
    thread::sleep,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{
    Get, Guard, Http, KERNO, TempDir, free_port, kill_if_running, poll_running, read_log,
    signal_and_wait, start_args,
};

const DOMAINS: [&str; 10] = [
    "syscalls",
    "fds",
    "sched",
    "disk",
    "tcp",
    "oom",
    "memory",
    "filesystem",
    "pids",
    "conntrack",
];

/// The probe domains (`/readyz`'s `domains`).
const PROBE_DOMAINS: [&str; 5] = ["syscalls", "sched", "disk", "tcp", "oom"];

/// A fresh directory `kerno-faults-{name}-{pid}`, removed when dropped.
fn faults_dir(name: &str) -> TempDir {
    TempDir::new(&format!("faults-{name}"))
}

/// `GET path` on 127.0.0.1:`port`, waiting up to 20 s for the answer.
fn http_get(port: u16, path: &str) -> std::io::Result<Http> {
    Get::new(port, path)
        .read_timeout(Duration::from_secs(20))
        .send()
}

/// A running `kerno start` (started through `sh -c 'umask ...; exec kerno ...'`, so the
/// pid is the agent's), killed when dropped.
struct Agent {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Agent {
    fn start(dir: &Path, socket: &Path, port: u16, env: &[(&str, &str)]) -> Agent {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let log = dir.join(format!(
            "agent-{}.log",
            STARTED.fetch_add(1, Ordering::SeqCst)
        ));
        let mut c = Command::new("sh");
        c.args(["-c", "umask 000; exec \"$@\"", "sh"]).arg(KERNO);
        start_args(&mut c, &format!("127.0.0.1:{port}"), socket)
            .env_remove("KERNO_FAIL_SAMPLER")
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            c.env(k, v);
        }
        Agent {
            child: c.spawn().expect("spawn kerno start"),
            port,
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log(&self) -> String {
        read_log(&self.log)
    }

    fn get(&self, path: &str) -> Http {
        http_get(self.port, path)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\nagent log:\n{}", self.log()))
    }

    /// Poll /readyz every 20 ms until 200; its body, and /metrics fetched right after it.
    fn wait_ready(&mut self) -> (Value, String) {
        let port = self.port;
        let ready = poll_running(
            &mut self.child,
            "agent",
            || read_log(&self.log),
            Duration::from_secs(30),
            Duration::from_millis(20),
            || http_get(port, "/readyz").ok().filter(|r| r.status == 200),
        );
        let Some(r) = ready else {
            panic!("agent not ready after 30 s:\n{}", self.log());
        };
        let metrics = self.get("/metrics").body;
        (serde_json::from_str(&r.body).unwrap(), metrics)
    }

    fn signal(&mut self, signal: libc::c_int) -> ExitStatus {
        signal_and_wait(&mut self.child, signal, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("agent did not stop within 20 s:\n{}", self.log()))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        kill_if_running(&mut self.child);
    }
}

fn kerno(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kerno"));
    c.args(args)
        .env_remove("KERNO_CONFIG")
        .env_remove("KERNO_FAIL_PROBES")
        .env_remove("KERNO_FAIL_SAMPLER")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run kerno")
}

fn report(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "kerno doctor failed ({}): {}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("JSON report")
}

/// The report's domains: name -> observed.
fn observed(r: &Value) -> BTreeMap<String, bool> {
    r["domains"]
        .as_array()
        .expect("report.domains")
        .iter()
        .map(|d| {
            (
                d["domain"].as_str().unwrap().to_string(),
                d["observed"].as_bool().unwrap(),
            )
        })
        .collect()
}

fn unobserved(r: &Value) -> BTreeSet<String> {
    observed(r)
        .into_iter()
        .filter(|(_, o)| !o)
        .map(|(d, _)| d)
        .collect()
}

fn names<'a>(v: impl IntoIterator<Item = &'a str>) -> BTreeSet<String> {
    v.into_iter().map(String::from).collect()
}

/// The report domains failing `domain` takes out: itself, and for `syscalls` also `fds`,
/// whose collector reads the syscall probes.
fn expected_down(domain: &str) -> BTreeSet<String> {
    if domain == "syscalls" {
        names(["syscalls", "fds"])
    } else {
        names([domain])
    }
}

#[test]
fn root_faults_each_domain_failing_degrades_only_that_domain() {
    let dir = faults_dir("domains");
    // Conntrack is observed once the module is loaded (as on any node running a firewall or
    // kube-proxy); then every domain is observed when nothing fails.
    let _ = Command::new("modprobe").arg("nf_conntrack").status();
    let base = report(&kerno(
        &[
            "doctor",
            "--standalone",
            "-d",
            "1s",
            "-o",
            "json",
            "--quiet",
        ],
        &[],
    ));
    assert_eq!(
        unobserved(&base),
        BTreeSet::new(),
        "every domain observed with no fault: {:#}",
        base["domains"]
    );
    let mut took = Vec::new();
    for domain in DOMAINS {
        let t0 = Instant::now();
        let down = expected_down(domain);
        let socket = dir.0.join(format!("{domain}.sock"));
        let mut agent = Agent::start(
            &dir.0,
            &socket,
            free_port(),
            &[("KERNO_FAIL_PROBES", domain)],
        );
        // The standalone doctor (KERNO_FAIL_PROBES makes it collect itself) runs while the
        // agent loads its own probes.
        let alone = kerno(
            &["doctor", "-d", "1s", "-o", "json", "--quiet"],
            &[("KERNO_FAIL_PROBES", domain)],
        );
        let alone = report(&alone);
        assert_eq!(unobserved(&alone), down, "doctor, {domain} failed");
        for d in &alone["signals"]["degraded"].as_array().unwrap()[..] {
            assert!(
                down.contains(d["domain"].as_str().unwrap()),
                "doctor, {domain} failed: {d} degraded too"
            );
        }
        assert_ne!(alone["signals"]["collector_pid"], agent.pid());

        let (ready, _) = agent.wait_ready();
        assert_eq!(ready["ready"], true, "{domain}: {ready:#}");
        assert_eq!(ready["status"], "degraded", "{domain}: {ready:#}");
        let named: BTreeSet<String> = ready["degraded"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["domain"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(named, down, "/readyz names {domain}: {ready:#}");
        for d in ready["domains"].as_array().unwrap() {
            let name = d["domain"].as_str().unwrap();
            if name == domain {
                assert_eq!(d["state"], "degraded", "{d}");
                assert!(
                    d["reason"]
                        .as_str()
                        .unwrap()
                        .contains(&format!("{domain} probe not attached")),
                    "{d}"
                );
            } else {
                assert_eq!(d["state"], "attached", "{domain} failed: {d}");
            }
        }
        if !PROBE_DOMAINS.contains(&domain) {
            let reason = ready["degraded"][0]["reason"].as_str().unwrap();
            assert!(reason.contains("fails on purpose"), "{domain}: {reason}");
        }

        // The doctor answered from the agent's window: the rest report.
        let sock = socket.to_str().unwrap();
        let via = report(&kerno(
            &["doctor", "-d", "2s", "-o", "json", "--quiet"],
            &[("KERNO_SOCKET", sock)],
        ));
        assert_eq!(via["signals"]["collector_pid"], agent.pid(), "{domain}");
        assert_eq!(
            unobserved(&via),
            down,
            "doctor via the agent, {domain} failed"
        );
        let why = via["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["domain"] == domain)
            .unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            why.contains("probe not attached") || why.contains("fails on purpose"),
            "{domain}: {why}"
        );
        assert!(agent.signal(libc::SIGTERM).success(), "{}", agent.log());
        assert!(!socket.exists());
        took.push((domain, t0.elapsed().as_secs_f64()));
    }
    eprintln!("seconds per failed domain (agent + two doctors): {took:?}");
}

/// The ids of the BPF programs, links and maps process `pid` holds (from its fdinfo).
fn bpf_ids(pid: u32) -> BTreeMap<&'static str, Vec<u32>> {
    let mut ids: BTreeMap<&'static str, Vec<u32>> = BTreeMap::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/fdinfo")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap_or_default();
        for l in text.lines() {
            for (prefix, kind) in [
                ("prog_id:", "prog"),
                ("link_id:", "link"),
                ("map_id:", "map"),
            ] {
                if let Some(i) = l.strip_prefix(prefix).and_then(|v| v.trim().parse().ok()) {
                    ids.entry(kind).or_default().push(i);
                }
            }
        }
    }
    for v in ids.values_mut() {
        v.sort_unstable();
        v.dedup();
    }
    ids
}

/// Whether `bpftool <kind> show id <id>` stops finding the object within `wait`: the kernel
/// frees programs, links and maps a moment (an RCU grace period, a work item) after their
/// last reference goes.
fn bpf_object_gone(kind: &str, id: u32, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let o = Command::new("bpftool")
            .args([kind, "show", "id", &id.to_string()])
            .output()
            .expect("bpftool");
        if !o.status.success() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}

/// Everything under /sys/fs/bpf (pinned objects), recursively.
fn pinned() -> BTreeSet<PathBuf> {
    fn walk(p: &Path, out: &mut BTreeSet<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                out.insert(e.path());
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(Path::new("/sys/fs/bpf"), &mut out);
    out
}

/// The local addresses listening on `port` (from /proc/net/tcp and tcp6).
fn listeners(port: u16) -> Vec<String> {
    let mut out = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for l in std::fs::read_to_string(f)
            .unwrap_or_default()
            .lines()
            .skip(1)
        {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let (Some(local), Some(state)) = (cols.get(1), cols.get(3)) else {
                continue;
            };
            let Some((addr, p)) = local.split_once(':') else {
                continue;
            };
            if *state == "0A" && u16::from_str_radix(p, 16).ok() == Some(port) {
                out.push(addr.to_string());
            }
        }
    }
    out
}

#[test]
fn root_faults_sigkill_leaves_no_bpf_object_and_the_next_agent_starts_on_the_same_socket() {
    let dir = faults_dir("sigkill");
    // A directory the agent creates, under a umask of 000.
    let socket = dir.0.join("run").join("kerno").join("agent.sock");
    let port = free_port();
    let pinned_before = pinned();
    let mut agent = Agent::start(&dir.0, &socket, port, &[]);
    agent.wait_ready();

    // The socket: 0600, in a root-owned directory that only root may write.
    let meta = std::fs::symlink_metadata(&socket).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "socket mode");
    let parent = std::fs::metadata(socket.parent().unwrap()).unwrap();
    assert_eq!(parent.uid(), 0, "the socket's directory is root's");
    assert_eq!(
        parent.permissions().mode() & 0o777,
        0o755,
        "the socket's directory is 0755 whatever the umask"
    );
    let entries: Vec<_> = std::fs::read_dir(socket.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        entries,
        ["agent.sock"],
        "the socket alone, nothing staged left"
    );
    // --listen binds that address only: another loopback address is refused.
    assert_eq!(listeners(port), ["0100007F"], "one listener, on 127.0.0.1");
    let other = TcpStream::connect_timeout(
        &(Ipv4Addr::new(127, 0, 0, 2), port).into(),
        Duration::from_secs(2),
    );
    assert_eq!(
        other.map(|_| ()).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    // The TCP port serves metrics and health; windows and reports only on the socket.
    for path in ["/metrics", "/healthz", "/readyz"] {
        assert_eq!(agent.get(path).status, 200, "{path}");
    }
    for path in [
        "/doctor",
        "/doctor?window=5s",
        "/signals",
        "/signals?window=5s",
        "/levels",
    ] {
        assert_eq!(agent.get(path).status, 404, "{path} on the TCP port");
    }
    let doctor = kerno_agent::get(&socket, "/doctor?window=2s", Duration::from_secs(20)).unwrap();
    assert!(serde_json::from_str::<Value>(&doctor).unwrap()["findings"].is_array());

    let held = bpf_ids(agent.pid());
    for kind in ["prog", "link", "map"] {
        assert!(
            held.get(kind).is_some_and(|v| v.len() >= 5),
            "the agent holds {kind}s: {held:?}"
        );
    }
    let st = agent.signal(libc::SIGKILL);
    assert!(!st.success());
    let wait = Duration::from_secs(10);
    let mut gone = 0;
    for (kind, ids) in &held {
        for id in ids {
            assert!(
                bpf_object_gone(kind, *id, wait),
                "{kind} {id} outlived SIGKILL"
            );
            gone += 1;
        }
    }
    assert_eq!(pinned(), pinned_before, "nothing pinned under /sys/fs/bpf");
    assert!(socket.exists(), "SIGKILL leaves the socket file behind");
    eprintln!(
        "SIGKILL: {gone} BPF objects released ({} programs, {} links, {} maps)",
        held["prog"].len(),
        held["link"].len(),
        held["map"].len()
    );

    // The stale socket does not block the next agent, on the same socket and port.
    let t0 = Instant::now();
    let mut next = Agent::start(&dir.0, &socket, port, &[]);
    let (ready, _) = next.wait_ready();
    eprintln!(
        "restart after SIGKILL: ready in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    assert_eq!(ready["status"], "ready", "{ready:#}");
    assert!(!next.log().contains("already running"), "{}", next.log());
    let r = kerno_agent::fetch_readiness(&socket, Duration::from_secs(5)).unwrap();
    assert!(r.ready);
    assert!(next.signal(libc::SIGTERM).success(), "{}", next.log());
    assert!(!socket.exists());
}

/// Families each attached domain has on `/metrics` once it has data.
const FAMILIES: &[(&str, &str)] = &[
    ("syscalls", "kerno_syscall_total{"),
    ("syscalls", "kerno_syscall_duration_seconds_bucket{"),
    ("fds", "kerno_fd_open_total "),
    ("sched", "kerno_sched_delay_seconds_bucket{"),
    ("disk", "kerno_disk_io_duration_seconds_bucket{"),
    ("tcp", "kerno_tcp_retransmits_total "),
    ("tcp", "kerno_tcp_rtt_seconds_bucket{"),
    ("oom", "kerno_oom_kills_total "),
    ("findings", "kerno_findings_firing{"),
    ("agent", "kerno_collector_samples_total{"),
];

#[test]
fn root_faults_readyz_waits_for_metrics_and_healthz_fails_when_sampling_stalls() {
    let dir = faults_dir("health");
    // Block I/O all along, so the disk has series in the first interval.
    let io = PathBuf::from(format!("/var/tmp/kerno-faults-io-{}", std::process::id()));
    let _io = Guard(
        Command::new("sh")
            .args([
                "-c",
                &format!(
                    "while :; do dd if=/dev/zero of={} bs=4k count=16 oflag=direct conv=fsync 2>/dev/null; sleep 0.05; done",
                    io.display()
                ),
            ])
            .spawn()
            .unwrap(),
    );
    const STALL_AFTER_TICKS: u64 = 4;
    let mut agent = Agent::start(
        &dir.0,
        &dir.0.join("agent.sock"),
        free_port(),
        &[("KERNO_FAIL_SAMPLER", &STALL_AFTER_TICKS.to_string())],
    );
    let t0 = Instant::now();
    let (ready, metrics) = agent.wait_ready();
    let ready_at = t0.elapsed();
    assert_eq!(ready["status"], "ready", "{ready:#}");
    for (domain, family) in FAMILIES {
        assert!(
            metrics.lines().any(|l| l.starts_with(family)),
            "at the first 200 from /readyz, /metrics lacks {domain}'s {family}:\n{metrics}"
        );
    }
    assert_eq!(agent.get("/healthz").status, 200);

    // The loop stops after a few ticks; /healthz says so within STUCK_AFTER (10 s) and a
    // little.
    // The stall's moment: the last time the history grew.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (mut history, mut grew_at) = (-1.0, Instant::now());
    let stuck = loop {
        let r = agent.get("/healthz");
        if r.status != 200 {
            break r;
        }
        let h = serde_json::from_str::<Value>(&agent.get("/readyz").body).unwrap()["history_secs"]
            .as_f64()
            .unwrap();
        if h != history {
            (history, grew_at) = (h, Instant::now());
        }
        assert!(
            Instant::now() < deadline,
            "/healthz still 200 with the loop stalled:\n{}",
            agent.log()
        );
        sleep(Duration::from_millis(100));
    };
    let stall_secs = grew_at.elapsed().as_secs_f64();
    assert_eq!(stuck.status, 503);
    assert!(
        stuck
            .body
            .contains("stuck: the sampling loop has not completed a step"),
        "{}",
        stuck.body
    );
    assert!(agent.log().contains("stalls on purpose"), "{}", agent.log());
    // Not before STUCK_AFTER (10 s), and soon after it (the last tick came up to a
    // second after the history last grew).
    assert!(
        (9.5..=12.5).contains(&stall_secs),
        "unhealthy {stall_secs:.1} s after the loop stalled"
    );
    eprintln!(
        "ready (with every family on /metrics) after {:.2} s; /healthz 503 {:.1} s after the loop stalled",
        ready_at.as_secs_f64(),
        stall_secs
    );
    // A stuck loop still stops cleanly.
    assert!(agent.signal(libc::SIGTERM).success(), "{}", agent.log());
    assert!(agent.log().contains("probes detached"), "{}", agent.log());
    drop(_io);
    let _ = std::fs::remove_file(&io);
}

/// Every address a traced `connect`/`sendto`/`sendmsg` names: (syscall, family, address).
fn traced_addresses(log: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for l in log.lines() {
        let Some(call) = ["connect(", "sendto(", "sendmsg(", "sendmmsg("]
            .into_iter()
            .find(|c| l.contains(c))
        else {
            continue;
        };
        let family = l
            .split("sa_family=")
            .nth(1)
            .map(|r| r.split([',', '}']).next().unwrap_or("").to_string())
            .unwrap_or_default();
        let addr = if let Some(r) = l.split("inet_addr(\"").nth(1) {
            r.split('"').next().unwrap_or("").to_string()
        } else if let Some(r) = l.split("inet_pton(AF_INET6, \"").nth(1) {
            r.split('"').next().unwrap_or("").to_string()
        } else if let Some(r) = l.split("sun_path=\"").nth(1) {
            r.split('"').next().unwrap_or("").to_string()
        } else {
            String::new()
        };
        out.push((call.trim_end_matches('(').to_string(), family, addr));
    }
    out
}

fn loopback(family: &str, addr: &str) -> bool {
    match family {
        "AF_INET" => addr.parse::<Ipv4Addr>().is_ok_and(|a| a.is_loopback()),
        "AF_INET6" => addr
            .parse::<Ipv6Addr>()
            .is_ok_and(|a| a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v| v.is_loopback())),
        _ => false,
    }
}

/// The outbound (not unix, not netlink, not loopback) addresses in a trace.
fn outbound(trace: &[(String, String, String)]) -> Vec<&(String, String, String)> {
    trace
        .iter()
        .filter(|(_, family, addr)| {
            !matches!(family.as_str(), "AF_UNIX" | "AF_NETLINK" | "") && !loopback(family, addr)
        })
        .collect()
}

const TRACE: &str = "trace=connect,sendto,sendmsg,sendmmsg";

/// `kerno <args>` under strace, in the network namespace of `netns_pid`.
fn traced_kerno(netns_pid: u32, log: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new("nsenter");
    c.arg(format!("--net=/proc/{netns_pid}/ns/net"))
        .args(["strace", "-f", "-qq", "--seccomp-bpf", "-e", TRACE, "-o"])
        .arg(log)
        .arg(env!("CARGO_BIN_EXE_kerno"))
        .args(args)
        .env_remove("KERNO_CONFIG")
        .env_remove("KERNO_FAIL_PROBES")
        .env_remove("KERNO_FAIL_SAMPLER")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("nsenter + strace")
}

#[test]
fn root_faults_no_outbound_connection_without_ai_otlp_or_cluster() {
    let dir = faults_dir("netns");
    let socket = dir.0.join("agent.sock");
    let agent_log = dir.0.join("agent.strace");
    let port = free_port();
    // The agent under strace in a network namespace with only loopback (up), so any
    // outbound connect would fail there, and shows in the trace either way.
    let tracer = Command::new("unshare")
        .args([
            "--net",
            "sh",
            "-c",
            "ip link set lo up && exec \"$@\"",
            "sh",
        ])
        .args(["strace", "-f", "-qq", "--seccomp-bpf", "-e", TRACE, "-o"])
        .arg(&agent_log)
        .arg(env!("CARGO_BIN_EXE_kerno"))
        .args([
            "start",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--socket",
        ])
        .arg(&socket)
        .env_remove("KERNO_CONFIG")
        .env_remove("KERNO_FAIL_PROBES")
        .env_remove("KERNO_FAIL_SAMPLER")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.0.join("agent.log")).unwrap())
        .spawn()
        .expect("unshare + strace");
    let tracer_pid = tracer.id();
    let mut tracer = Guard(tracer);
    let agent_log_text = || std::fs::read_to_string(dir.0.join("agent.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(st) = tracer.0.try_wait().unwrap() {
            panic!("traced agent exited with {st}:\n{}", agent_log_text());
        }
        if kerno_agent::fetch_readiness(&socket, Duration::from_secs(2)).is_ok_and(|r| r.ready) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "traced agent not ready:\n{}",
            agent_log_text()
        );
        sleep(Duration::from_millis(100));
    }
    // The agent's pid: strace's child.
    let agent_pid: u32 =
        std::fs::read_to_string(format!("/proc/{tracer_pid}/task/{tracer_pid}/children"))
            .unwrap()
            .split_whitespace()
            .next()
            .expect("strace's child")
            .parse()
            .unwrap();
    // Scraped from inside the namespace, and asked by doctors there: through the agent, and
    // standalone.
    let sock = socket.to_str().unwrap();
    let scrape = traced_kerno(
        tracer_pid,
        &dir.0.join("scrape.strace"),
        &["doctor", "-d", "2s", "-o", "json", "--quiet"],
        &[("KERNO_SOCKET", sock)],
    );
    let via = report(&scrape);
    assert_eq!(via["signals"]["collector_pid"], agent_pid);
    let alone = traced_kerno(
        tracer_pid,
        &dir.0.join("standalone.strace"),
        &[
            "doctor",
            "--standalone",
            "-d",
            "1s",
            "-o",
            "json",
            "--quiet",
        ],
        &[],
    );
    report(&alone);
    // The observer sees an outbound connect when there is one: the same doctor with the
    // AI post-processor pointed at a TEST-NET address.
    let ai = traced_kerno(
        tracer_pid,
        &dir.0.join("ai.strace"),
        &[
            "doctor",
            "--standalone",
            "--ai",
            "-d",
            "1s",
            "-o",
            "json",
            "--quiet",
        ],
        &[
            ("KERNO_AI_PROVIDER", "ollama"),
            ("KERNO_AI_ENDPOINT", "http://203.0.113.7:11434"),
            ("KERNO_AI_PRIVACY", "redacted"),
        ],
    );
    let ai_trace = traced_addresses(&std::fs::read_to_string(dir.0.join("ai.strace")).unwrap());
    assert!(
        outbound(&ai_trace)
            .iter()
            .any(|(c, f, a)| c == "connect" && f == "AF_INET" && a == "203.0.113.7"),
        "the control: strace must see the AI connect: {ai_trace:?}\n{}",
        String::from_utf8_lossy(&ai.stderr)
    );
    // Stop the agent (strace's child), then read every trace.
    // SAFETY: kill(2) on the agent we started (strace's child).
    unsafe { libc::kill(agent_pid as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let st = loop {
        if let Some(st) = tracer.0.try_wait().unwrap() {
            break st;
        }
        assert!(Instant::now() < deadline, "traced agent did not stop");
        sleep(Duration::from_millis(50));
    };
    assert!(st.success(), "{st}: {}", agent_log_text());
    let mut counts = Vec::new();
    for name in ["agent.strace", "scrape.strace", "standalone.strace"] {
        let text = std::fs::read_to_string(dir.0.join(name)).unwrap();
        let trace = traced_addresses(&text);
        let out = outbound(&trace);
        assert!(out.is_empty(), "{name}: outbound {out:?}\n{text}");
        let mut by_family: BTreeMap<String, usize> = BTreeMap::new();
        for (call, family, addr) in &trace {
            *by_family
                .entry(format!("{call} {family} {addr}"))
                .or_default() += 1;
        }
        counts.push((name, by_family));
    }
    eprintln!("traced calls naming an address, by file: {counts:?}");
}
