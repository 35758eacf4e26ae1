//! Root tests: `kerno start`, the node agent, for real: readiness, a real scrape checked by
//! promtool, a real Prometheus server scraping it, `kerno doctor` answered from its window,
//! a forced probe failure, a clean stop, and memory under a storm of short-lived processes.
//! Needs root, promtool and prometheus (scripts/setup.sh installs them); scripts/test.sh
//! runs this binary with --test-threads=1 (one kernel, one test at a time).

mod support;

use std::{
    collections::HashMap,
    io::Write,
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{Agent, Get, Guard, Http, free_port, metric, temp_dir};

/// `GET path` on 127.0.0.1:`port`, with `accept` as the Accept header when given.
fn http_get(port: u16, path: &str, accept: Option<&str>) -> std::io::Result<Http> {
    let mut req = Get::new(port, path).read_timeout(Duration::from_secs(20));
    if let Some(a) = accept {
        req = req.header("Accept", a);
    }
    req.send()
}

/// A running `kerno start` (see [`Agent::start`]), whose GETs wait up to 20 s.
fn start_agent(name: &str, args: &[&str], env: &[(&str, &str)]) -> Agent {
    let mut agent = Agent::start(name, args, env);
    agent.read_timeout = Duration::from_secs(20);
    agent
}

impl Agent {
    /// Poll /readyz until 200; the statuses seen, in order (deduplicated).
    fn wait_ready_seen(&mut self) -> (Vec<u16>, Value) {
        let mut seen: Vec<u16> = Vec::new();
        let ready = self.poll(Duration::from_secs(30), Duration::from_millis(50), |port| {
            let r = http_get(port, "/readyz", None).ok()?;
            if seen.last() != Some(&r.status) {
                seen.push(r.status);
            }
            (r.status == 200).then(|| serde_json::from_str(&r.body).unwrap())
        });
        match ready {
            Some(r) => (seen, r),
            None => panic!("agent not ready after 30 s ({seen:?}):\n{}", self.log()),
        }
    }

    /// Wait until the agent's history reaches `secs`.
    fn wait_history(&self, secs: f64) {
        let deadline = Instant::now() + Duration::from_secs_f64(secs + 30.0);
        while Instant::now() < deadline {
            let r: Value = serde_json::from_str(&self.get("/readyz").body).unwrap();
            if r["history_secs"].as_f64().unwrap_or(0.0) >= secs {
                return;
            }
            sleep(Duration::from_millis(200));
        }
        panic!("history never reached {secs} s");
    }

    /// The ids of the BPF programs and links this process holds (from its fdinfo).
    fn bpf_ids(&self) -> (Vec<u32>, Vec<u32>) {
        let mut progs = Vec::new();
        let mut links = Vec::new();
        for e in std::fs::read_dir(format!("/proc/{}/fdinfo", self.pid())).unwrap() {
            let text = std::fs::read_to_string(e.unwrap().path()).unwrap_or_default();
            for l in text.lines() {
                let id = |p: &str| l.strip_prefix(p).and_then(|v| v.trim().parse::<u32>().ok());
                if let Some(i) = id("prog_id:") {
                    progs.push(i);
                }
                if let Some(i) = id("link_id:") {
                    links.push(i);
                }
            }
        }
        progs.sort_unstable();
        progs.dedup();
        links.sort_unstable();
        links.dedup();
        (progs, links)
    }
}

fn kerno(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kerno"));
    c.args(args)
        .env_remove("KERNO_CONFIG")
        .env_remove("KERNO_FAIL_PROBES")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run kerno")
}

/// `name{labels}` -> value, for the series of every metric whose TYPE is `kind`.
fn series_of_type(text: &str, kind: &str) -> HashMap<String, f64> {
    let mut types: HashMap<String, String> = HashMap::new();
    let mut out = HashMap::new();
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("# TYPE ") {
            let mut p = rest.split_whitespace();
            if let (Some(n), Some(t)) = (p.next(), p.next()) {
                types.insert(n.to_string(), t.to_string());
            }
            continue;
        }
        if l.starts_with('#') || l.is_empty() {
            continue;
        }
        let Some((key, value)) = l.rsplit_once(' ') else {
            continue;
        };
        let name = key.split('{').next().unwrap();
        let family = [
            name,
            name.trim_end_matches("_bucket"),
            name.trim_end_matches("_count"),
        ]
        .into_iter()
        .chain([name.trim_end_matches("_sum")])
        .find(|n| types.contains_key(*n));
        if family.is_some_and(|f| types[f] == kind) {
            out.insert(key.to_string(), value.parse().unwrap_or(f64::NAN));
        }
    }
    out
}

const REQUIRED: &[&str] = &[
    "kerno_info",
    "kerno_syscall_total",
    "kerno_syscall_errors_total",
    "kerno_syscall_duration_seconds_bucket",
    "kerno_tcp_rtt_seconds_bucket",
    "kerno_tcp_retransmits_total",
    "kerno_tcp_connections_total",
    "kerno_oom_kills_total",
    "kerno_disk_io_duration_seconds_bucket",
    "kerno_disk_io_bytes_total",
    "kerno_sched_delay_seconds_bucket",
    "kerno_fd_open_total",
    "kerno_fd_close_total",
    "kerno_cgroup_memory_pressure_pct",
    "kerno_collector_events_total",
    "kerno_collector_errors_total",
    "kerno_events_lost_total",
    "kerno_bpf_programs_loaded",
    "kerno_findings_firing",
];

/// A memory cgroup with a limit (v1 or v2, whichever has the memory controller), removed
/// when dropped: the per-cgroup gauge then has something to show on any machine.
struct LimitedCgroup(PathBuf);

impl LimitedCgroup {
    fn new() -> LimitedCgroup {
        let name = format!("kerno-test-{}", std::process::id());
        let v1 = PathBuf::from("/sys/fs/cgroup/memory");
        let (dir, file) = if v1.join("memory.limit_in_bytes").exists() {
            (v1.join(&name), "memory.limit_in_bytes")
        } else {
            (PathBuf::from("/sys/fs/cgroup").join(&name), "memory.max")
        };
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(file), "1073741824").unwrap();
        LimitedCgroup(dir)
    }
}

impl Drop for LimitedCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

#[test]
fn root_agent_readiness_scrape_and_clean_stop() {
    let cgroup = LimitedCgroup::new();
    let mut agent = start_agent("agent-main", &[], &[]);
    let (seen, ready) = agent.wait_ready_seen();
    assert_eq!(
        seen.first(),
        Some(&503),
        "not ready before the probes: {seen:?}"
    );
    assert_eq!(ready["status"], "ready", "{ready:#}");
    for d in ready["domains"].as_array().unwrap() {
        assert_eq!(d["state"], "attached", "{d}");
    }
    assert_eq!(agent.get("/healthz").status, 200);

    // A second agent on the same socket is refused.
    let second = kerno(
        &[
            "start",
            "--listen",
            &format!("127.0.0.1:{}", free_port()),
            "--socket",
            agent.socket.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));
    let bad = kerno(&["start", "--listen", "nowhere"], &[]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");

    // Some block I/O, so the disk series exist (/var/tmp: disk-backed where /tmp may not be).
    let io = PathBuf::from(format!("/var/tmp/kerno-test-io-{}", std::process::id()));
    let dd = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", io.display()))
        .args(["bs=4k", "count=64", "oflag=direct", "conv=fsync"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    let _ = std::fs::remove_file(&io);
    assert!(dd.success());

    // Let a metrics update happen, then scrape: Prometheus text by default...
    sleep(Duration::from_secs(6));
    let first = agent.get("/metrics");
    assert_eq!(first.status, 200);
    assert!(
        first.headers["content-type"].starts_with("text/plain; version=0.0.4"),
        "{:?}",
        first.headers
    );
    for name in REQUIRED {
        assert!(
            first.body.lines().any(|l| l.starts_with(name)),
            "{name} missing from the scrape:\n{}",
            first.body
        );
    }
    assert!(!first.body.contains("pid="), "no pid labels");
    let name = cgroup.0.file_name().unwrap().to_str().unwrap();
    assert!(
        first
            .body
            .lines()
            .any(|l| l.starts_with("kerno_cgroup_memory_pressure_pct{") && l.contains(name)),
        "the test's cgroup has a gauge"
    );
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/setup.sh installs it)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(first.body.as_bytes())
        .unwrap();
    let checked = promtool.wait_with_output().unwrap();
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // ...and OpenMetrics when asked, as Prometheus asks.
    let om = http_get(
        agent.port,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    )
    .unwrap();
    assert!(om.headers["content-type"].starts_with("application/openmetrics-text"));
    assert!(om.body.trim_end().ends_with("# EOF"));
    assert!(
        om.body
            .contains("# UNIT kerno_syscall_duration_seconds seconds")
    );

    // Counters and histogram buckets only go up.
    sleep(Duration::from_secs(6));
    let second = agent.get("/metrics").body;
    for kind in ["counter", "histogram"] {
        let (a, b) = (
            series_of_type(&first.body, kind),
            series_of_type(&second, kind),
        );
        assert!(!a.is_empty());
        for (k, v) in &a {
            if let Some(w) = b.get(k) {
                assert!(w >= v, "{k} went down: {v} -> {w}");
            }
        }
    }

    // Stop: every program and link the agent held is gone, and so is the socket.
    let (progs, links) = agent.bpf_ids();
    assert!(
        progs.len() >= 10 && links.len() >= 10,
        "{progs:?} {links:?}"
    );
    let status = agent.stop();
    assert!(status.success(), "{status}: {}", agent.log());
    assert!(agent.log().contains("probes detached"), "{}", agent.log());
    for id in progs {
        assert!(bpf_object_gone("prog", id), "program {id} still loaded");
    }
    for id in links {
        assert!(bpf_object_gone("link", id), "link {id} still attached");
    }
    assert!(!agent.socket.exists());
}

/// Whether `bpftool <kind> show id <id>` stops finding the object within 3 s: the kernel
/// frees a program or link after an RCU grace period, a moment after its last fd closes.
fn bpf_object_gone(kind: &str, id: u32) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let o = Command::new("bpftool")
            .args([kind, "show", "id", &id.to_string()])
            .output()
            .unwrap();
        if !o.status.success() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        sleep(Duration::from_millis(50));
    }
}

#[test]
fn root_agent_names_a_failed_probe_as_degraded() {
    let mut agent = start_agent("agent-degraded", &[], &[("KERNO_FAIL_PROBES", "tcp")]);
    let (seen, ready) = agent.wait_ready_seen();
    assert_eq!(seen.first(), Some(&503));
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["status"], "degraded", "{ready:#}");
    let tcp = ready["domains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["domain"] == "tcp")
        .unwrap();
    assert_eq!(tcp["state"], "degraded");
    assert!(
        tcp["reason"]
            .as_str()
            .unwrap()
            .contains("tcp probe not attached"),
        "{tcp}"
    );
    for d in ready["domains"].as_array().unwrap() {
        if d["domain"] != "tcp" {
            assert_eq!(d["state"], "attached", "{d}");
        }
    }
    sleep(Duration::from_secs(6));
    let m = agent.get("/metrics").body;
    assert_eq!(
        metric(&m, "kerno_bpf_programs_loaded{domain=\"tcp\"}"),
        Some(0.0)
    );
    assert!(metric(&m, "kerno_bpf_programs_loaded{domain=\"sched\"}").unwrap() >= 3.0);
    assert!(
        !m.contains("kerno_tcp_retransmits_total"),
        "an unobserved domain has no series"
    );
    assert!(agent.log().contains("degraded: tcp"), "{}", agent.log());
    // Ctrl-C stops it as cleanly as SIGTERM.
    let (progs, _) = agent.bpf_ids();
    assert!(agent.stop_with(libc::SIGINT).success());
    assert!(agent.log().contains("probes detached"), "{}", agent.log());
    for id in progs {
        assert!(bpf_object_gone("prog", id), "program {id} still loaded");
    }
}

/// A shell making `n` failing chdir calls (ENOTDIR: not a benign errno; chdir is rare on
/// a host, so the error rate of the window is the workload's).
fn chdir_errors(n: u32) -> Child {
    Command::new("sh")
        .args([
            "-c",
            &format!(
                "i=0; while [ $i -lt {n} ]; do cd /etc/hostname 2>/dev/null; i=$((i+1)); done"
            ),
        ])
        .spawn()
        .unwrap()
}

fn report(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "kerno doctor failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("JSON report")
}

fn chdir_finding(r: &Value) -> bool {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "syscall-errors" && f.to_string().contains("chdir"))
}

#[test]
fn root_doctor_answers_from_a_running_agent_with_its_own_thresholds() {
    // The agent's thresholds never fire syscall-errors; the doctor's defaults do.
    let mut agent = start_agent(
        "agent-doctor",
        &[
            "-t",
            "syscall_error_pct=100",
            "-t",
            "syscall_error_critical_pct=100",
        ],
        &[],
    );
    agent.wait_ready();
    let sock = agent.socket.to_str().unwrap().to_string();
    let env = [("KERNO_SOCKET", sock.as_str())];
    // A full 10 s of history, then the workload, then a 10 s window that covers it.
    agent.wait_history(10.0);
    let mut w = chdir_errors(2000);
    assert!(w.wait().unwrap().success());
    sleep(Duration::from_millis(1500));

    let t0 = Instant::now();
    let o = kerno(&["doctor", "--duration", "10s", "-o", "json"], &env);
    let took = t0.elapsed();
    let from_agent = report(&o);
    assert!(
        took < Duration::from_secs(1),
        "a 10 s window from the agent took {took:?}"
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("window from the running agent"));
    assert_eq!(from_agent["signals"]["collector_pid"], agent.pid());
    let ms = from_agent["window"]["duration_ms"].as_u64().unwrap();
    assert!((9_500..=11_500).contains(&ms), "window {ms} ms");
    let chdir = from_agent["signals"]["syscalls"]["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "chdir")
        .expect("chdir in the agent's window");
    assert!(
        chdir["errnos"]["ENOTDIR"].as_u64().unwrap() >= 2000,
        "{chdir}"
    );
    assert!(
        chdir_finding(&from_agent),
        "the doctor's default thresholds fire"
    );

    // The same window under the agent's thresholds: nothing.
    let quiet = report(&kerno(
        &[
            "doctor",
            "--duration",
            "10s",
            "-o",
            "json",
            "-t",
            "syscall_error_pct=100",
            "-t",
            "syscall_error_critical_pct=100",
        ],
        &env,
    ));
    assert!(!chdir_finding(&quiet));
    let agents_own =
        kerno_agent::get(&agent.socket, "/doctor?window=10s", Duration::from_secs(20)).unwrap();
    assert!(!chdir_finding(&serde_json::from_str(&agents_own).unwrap()));

    // A 30 s window, as the doctor asks by default: still instant.
    agent.wait_history(31.0);
    let t0 = Instant::now();
    let thirty = report(&kerno(&["doctor", "-o", "json", "--quiet"], &env));
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(1), "30 s window took {took:?}");
    assert!(thirty["window"]["duration_ms"].as_u64().unwrap() >= 29_500);

    // --domains keeps only those domains of the agent's window.
    let only = report(&kerno(
        &[
            "doctor",
            "--duration",
            "5s",
            "-o",
            "json",
            "--domains",
            "tcp",
        ],
        &env,
    ));
    assert!(only["signals"]["syscalls"].is_null() && !only["signals"]["tcp"].is_null());

    // --standalone collects here, as does a doctor with no agent to ask.
    let own = report(&kerno(
        &[
            "doctor",
            "--standalone",
            "--duration",
            "1s",
            "-o",
            "json",
            "--quiet",
        ],
        &env,
    ));
    assert_ne!(own["signals"]["collector_pid"], agent.pid());
    assert!(agent.stop().success());
    let alone = report(&kerno(
        &["doctor", "--duration", "1s", "-o", "json", "--quiet"],
        &env,
    ));
    assert_ne!(alone["signals"]["collector_pid"], agent.pid());
    assert_eq!(alone["window"]["duration_ms"].as_u64().unwrap() / 1000, 1);
}

fn prom_query(port: u16, q: &str) -> Option<f64> {
    let enc: String = q
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let r = http_get(port, &format!("/api/v1/query?query={enc}"), None).ok()?;
    let v: Value = serde_json::from_str(&r.body).ok()?;
    v["data"]["result"][0]["value"][1].as_str()?.parse().ok()
}

#[test]
fn root_prometheus_scrapes_the_agent_and_sees_a_workload() {
    let mut agent = start_agent("agent-prom", &[], &[]);
    agent.wait_ready();
    let dir = temp_dir("prometheus");
    let prom_port = free_port();
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: kerno\n    \
             static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            agent.port
        ),
    )
    .unwrap();
    let prom = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus (Debian package prometheus; scripts/setup.sh installs it)");
    let _prom = Guard(prom);
    let plog = || std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default();

    // Prometheus up and scraping the agent.
    let deadline = Instant::now() + Duration::from_secs(60);
    let series = "kerno_syscall_total{job=\"kerno\",syscall=\"write\"}";
    let before = loop {
        assert!(
            Instant::now() < deadline,
            "prometheus never got Kerno series:\n{}",
            plog()
        );
        if prom_query(prom_port, "up{job=\"kerno\"}") == Some(1.0)
            && let Some(v) = prom_query(prom_port, series)
        {
            break v;
        }
        sleep(Duration::from_millis(500));
    };
    // A workload of known size: 200,000 one-byte writes.
    let dd = Command::new("dd")
        .args(["if=/dev/zero", "of=/dev/null", "bs=1", "count=200000"])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(dd.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let after = loop {
        let v = prom_query(prom_port, series).unwrap_or(before);
        if v - before >= 200_000.0 || Instant::now() > deadline {
            break v;
        }
        sleep(Duration::from_millis(500));
    };
    assert!(
        after - before >= 200_000.0,
        "write calls seen by Prometheus moved {before} -> {after}"
    );
    // Other series arrive too, with their labels.
    for q in [
        "kerno_info",
        "kerno_sched_delay_seconds_count",
        "kerno_bpf_programs_loaded{domain=\"syscalls\"}",
    ] {
        assert!(prom_query(prom_port, q).is_some(), "{q} not in Prometheus");
    }
    assert!(agent.stop().success());
    drop(_prom);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn root_agent_memory_stays_bounded_under_a_process_storm() {
    // A 20 s window, so the storm outlasts it twice and old samples must go.
    let mut agent = start_agent("agent-storm", &["--window", "20s"], &[]);
    agent.wait_ready();
    let storm = |_| {
        Guard(
            Command::new("sh")
                .args(["-c", "while :; do /bin/true; done"])
                .spawn()
                .unwrap(),
        )
    };
    let storms: Vec<Guard> = (0..2).map(storm).collect();
    let mut rss = Vec::new();
    for _ in 0..50 {
        sleep(Duration::from_secs(1));
        rss.push(agent.rss_kb());
    }
    drop(storms);
    let m = agent.get("/metrics").body;
    let execs = metric(&m, "kerno_syscall_total{syscall=\"execve\"}").unwrap_or(0.0);
    assert!(execs > 1000.0, "the storm ran ({execs} execve)");
    let filled = *rss[20..30].iter().max().unwrap();
    let end = *rss[40..].iter().max().unwrap();
    let peak = *rss.iter().max().unwrap();
    eprintln!("agent RSS (kB) during the storm: {rss:?}");
    assert!(peak < 200 * 1024, "peak RSS {peak} kB");
    assert!(
        end <= filled + filled / 4 + 8 * 1024,
        "RSS kept growing after the window filled: {filled} kB -> {end} kB"
    );
    assert!(agent.stop().success());
}

#[test]
fn root_agent_without_privileges_is_one_clear_line() {
    let dir = temp_dir("agent-nopriv");
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_kerno"))
        .args(["start", "--listen", &format!("127.0.0.1:{}", free_port())])
        .arg("--socket")
        .arg(dir.join("agent.sock"))
        .env_remove("KERNO_CONFIG")
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
    assert!(!dir.join("agent.sock").exists(), "nothing created");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn root_agent_logs_one_json_object_a_line_with_log_format_json() {
    let mut agent = start_agent(
        "json-logs",
        &["--domains", "syscalls,tcp", "--log-format", "json"],
        &[("KERNO_FAIL_PROBES", "tcp")],
    );
    agent.wait_ready();
    assert!(agent.stop().success(), "{}", agent.log());
    let log = agent.log();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let find = |needle: &str| {
        lines
            .iter()
            .find(|v| v["message"].as_str().is_some_and(|m| m.contains(needle)))
            .unwrap_or_else(|| panic!("no {needle:?} in {log}"))
    };
    let serving = find("agent serving");
    assert_eq!(serving["level"], "INFO", "{serving}");
    assert_eq!(serving["http"], format!("127.0.0.1:{}", agent.port));
    assert!(serving["timestamp"].is_string(), "{serving}");
    // The degraded domain as fields a log collector can filter on.
    let degraded = find("degraded: tcp");
    assert_eq!(degraded["level"], "WARN");
    assert_eq!(degraded["domain"], "tcp");
    assert!(
        degraded["reason"]
            .as_str()
            .unwrap()
            .contains("tcp probe not attached")
    );
    find("probes detached");
    // --log-level error keeps the info lines out.
    let mut quiet = start_agent(
        "json-logs-error",
        &["--domains", "syscalls", "--log-level", "error"],
        &[],
    );
    quiet.wait_ready();
    assert!(quiet.stop().success());
    assert!(!quiet.log().contains("agent serving"), "{}", quiet.log());
}
