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

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

use kerno_chaos::{ChaosOptions, Intensity};
use serde_json::Value;
use support::{Agent, Get, Guard, TempDir, free_port};

/// A GET on loopback: (status, body). Bodies here are never chunked: `Connection: close`
/// with HTTP/1.0.
fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    Get::new(port, path)
        .http10()
        .send()
        .map(|r| (r.status, r.body))
}

/// A running `kerno start` with default settings on a loopback port (killed when dropped),
/// once its history reaches `history_secs`.
fn start_agent(name: &str, history_secs: f64) -> Agent {
    let mut a = Agent::start_with(name, &[], |c| {
        c.env_remove("KERNO_FINDINGS_WINDOW");
    });
    a.wait_history(history_secs);
    a
}

impl Agent {
    fn wait_history(&mut self, history_secs: f64) {
        self.poll(
            Duration::from_secs(60),
            Duration::from_millis(200),
            |port| {
                let Ok((200, body)) = http_get(port, "/readyz") else {
                    return None;
                };
                let r: Value = serde_json::from_str(&body).unwrap();
                (r["history_secs"].as_f64().unwrap_or(0.0) >= history_secs).then_some(())
            },
        )
        .unwrap_or_else(|| {
            panic!(
                "agent not ready with {history_secs} s of history:\n{}",
                self.log()
            )
        });
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
        Command::new("sh")
            .args([
                "-c",
                // 60 descriptors a second, kept forever: a leak (with room for minutes).
                "ulimit -n \"$(ulimit -Hn)\"; exec perl -e 'my @keep; while (1) { if (open(my $f, \"<\", \"/dev/null\")) \
                 { push @keep, $f } select(undef, undef, undef, 1/60) }'",
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("perl (Debian's perl-base)"),
    )
}

#[test]
fn root_time_to_detection_at_default_thresholds() {
    // The short windows full, so the times are not those of a young agent.
    let agent = start_agent("ttd", 10.0);
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

/// Percent-encode a PromQL expression for a query string.
fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query through Prometheus's HTTP API: each series' labels and value, or the
/// error Prometheus gives.
fn prom_query(port: u16, q: &str) -> Result<Vec<(Value, f64)>, String> {
    let (status, body) =
        http_get(port, &format!("/api/v1/query?query={}", encode(q))).map_err(|e| e.to_string())?;
    let v: Value = serde_json::from_str(&body).map_err(|e| format!("{status}: {e}: {body}"))?;
    if v["status"] != "success" {
        return Err(format!("{status}: {}", v["error"]));
    }
    Ok(v["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let value = r["value"][1].as_str().and_then(|x| x.parse().ok());
            (r["metric"].clone(), value.unwrap_or(f64::NAN))
        })
        .collect())
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// What a panel must show during the incidents: some series with a number, or some series
/// above zero (the panel is about one of the incidents).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Shows {
    Data,
    AboveZero,
}

/// Every panel of deploy/grafana/kerno-node.json by title, with what it must show while the
/// incidents run (a panel missing here fails the test: add it with its incident).
const PANELS: &[(&str, Shows)] = &[
    (
        "Findings firing (warning and critical), by node",
        Shows::AboveZero,
    ),
    ("Nodes with a critical finding", Shows::AboveZero),
    ("eBPF programs attached, by node", Shows::AboveZero),
    ("TCP retransmit rate, by node", Shows::AboveZero),
    ("OOM kills, by node", Shows::AboveZero),
    ("Events lost, by node", Shows::Data),
    ("Findings firing, by rule", Shows::AboveZero),
    ("Syscall errors per second (top 10)", Shows::AboveZero),
    ("Syscall latency p99 (top 10)", Shows::AboveZero),
    ("Run-queue delay p50 and p99", Shows::AboveZero),
    ("Disk latency p99, by device and op", Shows::AboveZero),
    ("TCP smoothed RTT p99", Shows::AboveZero),
    ("TCP retransmits per second", Shows::AboveZero),
    (
        "Descriptor growth per second, by command (top 10)",
        Shows::AboveZero,
    ),
    ("Descriptors opened and closed per second", Shows::AboveZero),
    (
        "Memory cgroups nearest their limit (top 10)",
        Shows::AboveZero,
    ),
    ("Pressure stall (PSI avg10)", Shows::Data),
];

/// Why a panel's expression does not show what it must, or `None` when it does.
fn panel_problem(port: u16, expr: &str, shows: Shows) -> Option<String> {
    match prom_query(port, expr) {
        Err(e) => Some(format!("error: {e}")),
        Ok(r) if r.is_empty() => Some("no data".into()),
        Ok(r) => {
            let ok = match shows {
                Shows::Data => r.iter().any(|(_, v)| v.is_finite()),
                Shows::AboveZero => r.iter().any(|(_, v)| *v > 0.0),
            };
            (!ok).then(|| {
                format!(
                    "{} series, none {}: {:?}",
                    r.len(),
                    if shows == Shows::Data {
                        "with a number"
                    } else {
                        "above zero"
                    },
                    r.iter().map(|(_, v)| *v).collect::<Vec<_>>()
                )
            })
        }
    }
}

/// Disk writes that wait for the device (O_DSYNC), in a loop, for as long as the guard lives.
fn disk_writer(dir: &Path) -> Guard {
    Guard(
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while :; do dd if=/dev/zero of={}/dsync bs=4k count=200 oflag=dsync 2>/dev/null; done",
                dir.display()
            ))
            .spawn()
            .expect("sh"),
    )
}

/// Failing opens (ENOENT), about 1000 a second, for as long as the guard lives.
fn perl_errors() -> Guard {
    Guard(
        Command::new("perl")
            .args([
                "-e",
                "while (1) { open(my $f, '<', '/nonexistent/kerno-test'); select(undef, undef, undef, 0.001) }",
            ])
            .spawn()
            .expect("perl"),
    )
}

#[test]
fn root_grafana_panels_and_alert_rules_against_a_real_prometheus() {
    let started = Instant::now();
    let mut agent = start_agent("grafana", 2.0);
    let dir = TempDir::new("grafana-prometheus");
    let prom_port = free_port();
    let rules = repo().join("deploy/prometheus/kerno-rules.yaml");
    std::fs::write(
        dir.0.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {}\n\
             scrape_configs:\n  - job_name: kerno\n    static_configs:\n      - targets: ['127.0.0.1:{}']\n",
            rules.display(),
            agent.port
        ),
    )
    .unwrap();
    let prom = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.0.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.0.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{prom_port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.0.join("prometheus.log")).unwrap())
        .spawn()
        .expect("prometheus (Debian package prometheus; scripts/setup.sh installs it)");
    let _prom = Guard(prom);
    let plog = || std::fs::read_to_string(dir.0.join("prometheus.log")).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(60);
    let node = loop {
        assert!(
            Instant::now() < deadline,
            "prometheus never scraped the agent:\n{}",
            plog()
        );
        if let Ok(r) = prom_query(prom_port, "kerno_info{job=\"kerno\"}")
            && let Some(n) = r.first().and_then(|(m, _)| m["node"].as_str())
        {
            break n.to_string();
        }
        sleep(Duration::from_millis(500));
    };

    // The dashboard, with its variables as Grafana substitutes them: this node, every
    // namespace, a rate interval a few scrapes long.
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("deploy/grafana/kerno-node.json")).unwrap(),
    )
    .unwrap();
    let mut exprs: Vec<(String, String, Shows)> = Vec::new();
    for p in dashboard["panels"].as_array().unwrap() {
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap();
        let shows = PANELS
            .iter()
            .find(|(t, _)| *t == title)
            .unwrap_or_else(|| panic!("panel {title:?} has no incident in PANELS"))
            .1;
        for t in p["targets"].as_array().unwrap() {
            let e = t["expr"]
                .as_str()
                .unwrap()
                .replace("$node", &node)
                .replace("$namespace", ".*")
                .replace("$__rate_interval", "10s");
            assert!(!e.contains('$'), "{title}: a variable left in {e}");
            exprs.push((title.to_string(), e, shows));
        }
    }
    assert_eq!(
        exprs
            .iter()
            .map(|e| &e.0)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        PANELS.len(),
        "every panel listed in PANELS is in the dashboard"
    );

    // The incidents, together: an fd leak, failing opens, synchronous disk writes, an OOM
    // kill, a lossy link and more spinners than CPUs.
    // On the target's disk (a /tmp on tmpfs has no block device).
    let scratch_dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("kerno-grafana-{}", std::process::id()));
    std::fs::create_dir_all(&scratch_dir).unwrap();
    let _disk_dir = TempDir(scratch_dir.clone());
    let opts = ChaosOptions::new(Intensity::Medium, Duration::from_secs(60));
    let _leak = perl_fd_leak();
    let _errors = perl_errors();
    let _disk = disk_writer(&scratch_dir);
    let _oom = kerno_chaos::start("oom", &opts).expect("start oom");
    let _loss = kerno_chaos::start("tcp-loss", &opts).expect("start tcp-loss");
    let _cpu = kerno_chaos::start("cpu", &opts).expect("start cpu");

    // Every panel shows its incident, within a minute.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut problems: Vec<String>;
    loop {
        problems = exprs
            .iter()
            .filter_map(|(title, e, shows)| {
                panel_problem(prom_port, e, *shows).map(|p| format!("{title}: {p}\n    {e}"))
            })
            .collect();
        if problems.is_empty() || Instant::now() > deadline {
            break;
        }
        sleep(Duration::from_secs(1));
    }
    assert!(
        problems.is_empty(),
        "panels without what they are about:\n{}",
        problems.join("\n")
    );

    // The alert rules load and evaluate without error, and the critical-finding alert is on
    // its way (pending for its `for`, or firing).
    let (_, body) = http_get(prom_port, "/api/v1/rules").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    let loaded: Vec<&Value> = v["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|g| g["rules"].as_array().unwrap())
        .collect();
    assert_eq!(loaded.len(), 6, "{body}");
    for r in &loaded {
        assert_eq!(r["health"], "ok", "{}: {}", r["name"], r["lastError"]);
    }
    let (_, body) = http_get(prom_port, "/api/v1/alerts").unwrap();
    let v: Value = serde_json::from_str(&body).unwrap();
    let critical: Vec<&Value> = v["data"]["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["labels"]["alertname"] == "KernoCriticalFinding")
        .collect();
    assert!(
        critical
            .iter()
            .any(|a| a["labels"]["node"] == node.as_str()),
        "no KernoCriticalFinding for {node}: {body}"
    );
    assert!(agent.child.try_wait().unwrap().is_none(), "{}", agent.log());
    agent.child.kill().ok();
    eprintln!(
        "{} panels, {} expressions checked; {:.1} s in all",
        PANELS.len(),
        exprs.len(),
        started.elapsed().as_secs_f64()
    );
}
