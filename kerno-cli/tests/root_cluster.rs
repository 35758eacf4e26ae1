//! Root test: `kerno doctor --cluster` against three real agents on this machine, each in
//! its own network namespace with its own address and node name, and one name (lines this
//! test adds to /etc/hosts, and removes) resolving to all three. They watch the same
//! kernel, so they differ by configuration: only node-a observes the fds domain, so an fd
//! leak must appear once, on node-a. Then a wrong token gets 401, and a node that stops
//! answering leaves a partial report in time. Needs root, `ip` and `nsenter`;
//! scripts/test.sh runs it with --test-threads=1.

mod support;

use std::{
    path::PathBuf,
    process::{Child, Command, Output},
    thread::sleep,
    time::{Duration, Instant},
};

use serde_json::Value;
use support::{Get, KERNO, poll_running, read_log, start_args, temp_dir};

const TOKEN: &str = "kerno-cluster-test-token-0123456789";

fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn must(cmd: &str, args: &[&str]) {
    let o = run(cmd, args);
    assert!(
        o.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Three network namespaces, each joined to this one by a veth pair with its own /24, and
/// the /etc/hosts lines naming all three; everything removed when dropped (a failing test
/// included).
struct Netns {
    names: Vec<String>,
    hosts_marker: String,
    dir: PathBuf,
}

impl Netns {
    fn new(n: usize, hostname: &str) -> Netns {
        let id = std::process::id() % 10_000;
        let dir = temp_dir("cluster");
        let mut me = Netns {
            names: Vec::new(),
            hosts_marker: format!("# kerno-cluster-test {}", std::process::id()),
            dir,
        };
        let mut hosts = std::fs::read_to_string("/etc/hosts").unwrap();
        if !hosts.ends_with('\n') && !hosts.is_empty() {
            hosts.push('\n');
        }
        for i in 0..n {
            let ns = format!("kcl{id}n{i}");
            let (outer, inner) = (format!("kcl{id}o{i}"), format!("kcl{id}i{i}"));
            must("ip", &["netns", "add", &ns]);
            me.names.push(ns.clone());
            must(
                "ip",
                &[
                    "link", "add", &outer, "type", "veth", "peer", "name", &inner, "netns", &ns,
                ],
            );
            let net = format!("10.234.{}", 10 + i);
            must(
                "ip",
                &["addr", "add", &format!("{net}.1/24"), "dev", &outer],
            );
            must("ip", &["link", "set", &outer, "up"]);
            let addr = format!("{net}.2/24");
            for args in [
                ["addr", "add", addr.as_str(), "dev", inner.as_str()],
                ["link", "set", inner.as_str(), "up", ""],
                ["link", "set", "lo", "up", ""],
            ] {
                let mut full = vec!["-n", ns.as_str()];
                full.extend(args.iter().filter(|a| !a.is_empty()));
                must("ip", &full);
            }
            hosts += &format!("{net}.2 {hostname} {}\n", me.hosts_marker);
        }
        std::fs::write("/etc/hosts", hosts).unwrap();
        me
    }

    fn address(i: usize) -> String {
        format!("10.234.{}.2", 10 + i)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(hosts) = std::fs::read_to_string("/etc/hosts") {
            let kept: String = hosts
                .lines()
                .filter(|l| !l.contains(&self.hosts_marker))
                .map(|l| format!("{l}\n"))
                .collect();
            let _ = std::fs::write("/etc/hosts", kept);
        }
        for ns in &self.names {
            // Deleting the namespace deletes its end of the veth, and so the pair.
            let _ = run("ip", &["netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A `kerno start` inside a network namespace (only the network: `nsenter --net` keeps
/// this mount namespace, so /sys/fs/cgroup and tracefs stay as they are); killed when
/// dropped.
struct Agent {
    child: Child,
    address: String,
    log: PathBuf,
}

impl Agent {
    fn start(net: &Netns, i: usize, node: &str, domains: &str, token_file: &str) -> Agent {
        let log = net.dir.join(format!("{node}.log"));
        let socket = net.dir.join(format!("{node}.sock"));
        let mut c = Command::new("nsenter");
        c.arg(format!("--net=/run/netns/{}", net.names[i]))
            .arg(KERNO);
        let child = start_args(&mut c, "0.0.0.0:9090", &socket)
            .args([
                "--node-name",
                node,
                "--domains",
                domains,
                "--serve-doctor",
                "--doctor-token-file",
                token_file,
            ])
            .env_remove("NODE_NAME")
            .env_remove("KERNO_NODE_NAME")
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn nsenter kerno start");
        Agent {
            child,
            address: Netns::address(i),
            log,
        }
    }

    fn log(&self) -> String {
        read_log(&self.log)
    }

    fn wait_ready(&mut self) {
        let address = &self.address;
        let ready = poll_running(
            &mut self.child,
            &format!("agent {address}"),
            || read_log(&self.log),
            Duration::from_secs(60),
            Duration::from_millis(100),
            || {
                get(address, "/readyz", None)
                    .is_ok_and(|(s, _)| s == 200)
                    .then_some(())
            },
        );
        if ready.is_none() {
            panic!(
                "agent {} not ready after 60 s:\n{}",
                self.address,
                self.log()
            );
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill(2) on our own child (nsenter execs kerno: the same pid).
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.signal(libc::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on `addr`:9090, with `token` as bearer when given: status and body.
fn get(addr: &str, path: &str, token: Option<&str>) -> std::io::Result<(u16, String)> {
    let mut req = Get::new(9090, path)
        .host(addr)
        .connect_timeout(Duration::from_secs(2))
        .read_timeout(Duration::from_secs(20));
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    req.send().map(|r| (r.status, r.body))
}

fn cluster(args: &[&str]) -> (Output, Duration) {
    let start = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_kerno"))
        .args(["doctor", "--cluster"])
        .args(args)
        .env_remove("KERNO_CONFIG")
        .env_remove("KERNO_AGENTS")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (o, start.elapsed())
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn root_cluster_doctor_three_agents_one_leak_a_wrong_token_and_a_silent_node() {
    let name = format!("kerno-agents-{}.test", std::process::id());
    let net = Netns::new(3, &name);
    let token_file = net.dir.join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let wrong_file = net.dir.join("wrong");
    std::fs::write(&wrong_file, "not-the-token\n").unwrap();
    let tf = token_file.to_str().unwrap();
    // Only node-a observes descriptors; the other two observe other domains (eBPF too).
    let mut agents = vec![
        Agent::start(&net, 0, "node-a", "fds,memory", tf),
        Agent::start(&net, 1, "node-b", "syscalls,memory", tf),
        Agent::start(&net, 2, "node-c", "sched,memory", tf),
    ];
    for a in &mut agents {
        a.wait_ready();
    }

    // Without the token, or with a wrong one: 401, and nothing about the node.
    for token in [None, Some("not-the-token"), Some(&TOKEN[..TOKEN.len() - 1])] {
        let (status, body) = get(&agents[0].address, "/doctor?window=5s", token).unwrap();
        assert_eq!(status, 401, "{token:?}: {body}");
        let host = hostname();
        for leak in ["node-a", "findings", "host", host.as_str()] {
            if leak.len() < 4 {
                continue;
            }
            assert!(
                !body.contains(leak),
                "{token:?}: the 401 body names {leak}: {body}"
            );
        }
    }
    let (status, body) = get(&agents[0].address, "/doctor?window=5s", Some(TOKEN)).unwrap();
    assert_eq!(status, 200, "{body}");

    let leak = kerno_chaos::start(
        "fd-leak",
        &kerno_chaos::ChaosOptions::new(kerno_chaos::Intensity::Medium, Duration::from_secs(30)),
    )
    .expect("start the fd leak");
    sleep(Duration::from_secs(12));

    let target = format!("{name}:9090");
    let (o, took) = cluster(&[
        "--agents",
        &target,
        "--token-file",
        tf,
        "-d",
        "10s",
        "-o",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let r: Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&o)));
    let nodes: Vec<&str> = r["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["node"].as_str().unwrap())
        .collect();
    assert_eq!(nodes, ["node-a", "node-b", "node-c"], "{}", text(&o));
    let leaks: Vec<&Value> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "fd-leak")
        .collect();
    assert_eq!(
        leaks.len(),
        1,
        "the leak once, on the node that observes fds: {}",
        text(&o)
    );
    assert_eq!(leaks[0]["node"], "node-a");
    assert!(
        leaks[0]["title"]
            .as_str()
            .unwrap()
            .contains("kchaos-fdleak"),
        "{}",
        leaks[0]
    );
    for n in &r["nodes"].as_array().unwrap()[1..] {
        let fds = n["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["domain"] == "fds")
            .unwrap();
        assert_eq!(fds["observed"], false, "{n}");
    }
    eprintln!("three agents answered in {took:?}");

    // The pretty report says the node of each finding.
    let (o, _) = cluster(&["--agents", &target, "--token-file", tf, "-d", "10s"]);
    let out = String::from_utf8_lossy(&o.stdout);
    eprintln!("{out}");
    assert!(out.contains("3 nodes of 3 answered"), "{}", text(&o));
    assert!(out.contains("node:     node-a"), "{}", text(&o));

    // A wrong token: every agent refuses; nobody answered is exit 1.
    let (o, _) = cluster(&[
        "--agents",
        &target,
        "--token-file",
        wrong_file.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).matches("401").count(),
        3,
        "{}",
        text(&o)
    );

    // node-c stops mid-way (SIGSTOP: it accepts connections and never answers): the
    // report comes by the deadline with two nodes, node-c not observed, exit 0.
    agents[2].signal(libc::SIGSTOP);
    let (o, took) = cluster(&[
        "--agents",
        &target,
        "--token-file",
        tf,
        "-d",
        "10s",
        "-o",
        "json",
        "--node-timeout",
        "3s",
        "--deadline",
        "6s",
    ]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "a partial answer is not an error: {}",
        text(&o)
    );
    assert!(took < Duration::from_secs(8), "took {took:?}");
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let silent: Vec<&Value> = r["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["observed"] == false)
        .collect();
    assert_eq!(silent.len(), 1, "{}", text(&o));
    assert_eq!(silent[0]["address"], format!("{}:9090", Netns::address(2)));
    assert!(
        silent[0]["reason"]
            .as_str()
            .unwrap()
            .contains("no answer within 3 s"),
        "{}",
        silent[0]
    );
    assert_eq!(
        r["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == "fd-leak" && f["node"] == "node-a")
            .count(),
        1
    );
    eprintln!("partial report (one node silent) in {took:?}");
    leak.stop().unwrap();
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}
