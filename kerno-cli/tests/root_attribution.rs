//! Root tests: attribution for real. Each test builds a kubelet (or systemd) cgroup layout
//! on this kernel, lays down the kubelet's `/var/log/pods` and `/var/log/containers`
//! entries, moves a process that leaks descriptors into the container's cgroup, and
//! checks that `kerno doctor`'s fd-leak finding names the namespace, pod, container and
//! container id, in the pretty and the JSON report. Everything created is removed when a
//! test ends, failed or not (the guards' `Drop`).
//!
//! Run under the kernel lock, one at a time:
//! `cargo test -p kerno-cli --test root_attribution -- --test-threads=1` (as root, alone: it shares the kernel with every other root test).

use std::{
    fs,
    os::unix::fs::symlink,
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    thread::sleep,
    time::Duration,
};

use serde_json::Value;

const NS: &str = "payments";
const POD: &str = "checkout-api-7d9f8b6c5-x2k4q";
const CONTAINER: &str = "api";

/// A 64-hex container id and a pod uid unique to this run.
fn ids(tag: u32) -> (String, String) {
    let n = std::process::id() * 16 + tag;
    let id = format!("{n:08x}{}", "ab".repeat(28));
    let uid = format!("{n:08x}-4b5a-4978-8a9b-0c1d2e3f4a5b");
    (id, uid)
}

/// Where the cgroup v2 hierarchy is mounted here (`/sys/fs/cgroup/unified` on this hybrid
/// host, `/sys/fs/cgroup` on a unified one).
fn cgroup2_mount() -> PathBuf {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        })
        .expect("a cgroup2 mount")
}

/// v1 controllers mounted here (`memory`, `cpu`, `pids`), by mount point.
fn cgroup1_mounts() -> Vec<PathBuf> {
    let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let opts = f.get(3)?;
            (f.get(2) == Some(&"cgroup")
                && opts
                    .split(',')
                    .any(|o| ["memory", "cpu", "pids"].contains(&o)))
            .then(|| PathBuf::from(f[1]))
        })
        .collect()
}

/// Cgroups this test made, removed innermost first; their processes are moved back to the
/// root of their hierarchy first.
struct Cgroups(Vec<PathBuf>);

impl Cgroups {
    /// `mount/rel`, each level created (and remembered) when missing.
    fn make(&mut self, mount: &Path, rel: &str) -> PathBuf {
        let mut p = mount.to_path_buf();
        for seg in rel.trim_matches('/').split('/') {
            p.push(seg);
            if !p.exists() {
                fs::create_dir(&p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
                self.0.push(p.clone());
            }
        }
        p
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            if let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) {
                let root = dir
                    .ancestors()
                    .find(|a| a.join("cgroup.procs").exists() && !self.0.iter().any(|d| d == a))
                    .map(Path::to_path_buf);
                for pid in procs.lines() {
                    if let Some(r) = &root {
                        let _ = fs::write(r.join("cgroup.procs"), pid);
                    }
                }
            }
            for _ in 0..50 {
                if fs::remove_dir(dir).is_ok() || !dir.exists() {
                    break;
                }
                sleep(Duration::from_millis(20));
            }
        }
    }
}

/// Files and directories this test made, removed when it ends.
struct Paths(Vec<PathBuf>);

impl Drop for Paths {
    fn drop(&mut self) {
        for p in self.0.iter().rev() {
            if p.is_dir() && !p.is_symlink() {
                let _ = fs::remove_dir_all(p);
            } else {
                let _ = fs::remove_file(p);
            }
        }
    }
}

/// The kubelet's log entries for one container under `root`: the pod's directory
/// (`<ns>_<pod>_<uid>/<container>/0.log`) and the `/var/log/containers` link to it.
fn kubelet_logs(root: &Path, uid: &str, id: &str, made: &mut Paths) {
    for d in ["var/log/pods", "var/log/containers"] {
        let p = root.join(d);
        if !p.exists() {
            fs::create_dir_all(&p).unwrap();
            made.0.push(p);
        }
    }
    let pod_dir = root.join(format!("var/log/pods/{NS}_{POD}_{uid}"));
    fs::create_dir_all(pod_dir.join(CONTAINER)).unwrap();
    made.0.push(pod_dir.clone());
    fs::write(pod_dir.join(CONTAINER).join("0.log"), "").unwrap();
    let link = root.join(format!(
        "var/log/containers/{POD}_{NS}_{CONTAINER}-{id}.log"
    ));
    symlink(
        format!("/var/log/pods/{NS}_{POD}_{uid}/{CONTAINER}/0.log"),
        &link,
    )
    .unwrap();
    made.0.push(link);
}

/// A process that opens ~60 descriptors a second and keeps them, after `delay`, for `secs`.
struct Leaker(Child);

impl Leaker {
    fn spawn(delay: Duration, secs: u32) -> Leaker {
        // perl's open is one openat and keeps the descriptor (bash's `exec {fd}<` dups and
        // closes, which nets nothing in the syscall counts).
        let script = format!(
            "select(undef, undef, undef, {}); my @keep; for (1..{}) {{ open(my $h, '<', '/etc/hostname') or die; push @keep, $h; select(undef, undef, undef, 0.016) }} sleep 2",
            delay.as_secs_f64(),
            secs * 60
        );
        let child = Command::new("perl")
            .args(["-e", &script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn perl");
        Leaker(child)
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Move it into `dir` (a cgroup).
    fn join(&self, dir: &Path) {
        fs::write(dir.join("cgroup.procs"), self.pid().to_string())
            .unwrap_or_else(|e| panic!("move into {}: {e}", dir.display()));
    }
}

impl Drop for Leaker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kerno(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kerno"))
        .args(args)
        .env_remove("KERNO_CONFIG")
        .env_remove("NODE_NAME")
        .env_remove("KERNO_NODE_NAME")
        .env_remove("KERNO_HOST_ROOT")
        .env("NO_COLOR", "1")
        .output()
        .expect("run kerno")
}

/// `kerno doctor` over a window, JSON then the same window rendered pretty (`--from`).
fn doctor(extra: &[&str]) -> (Value, String) {
    let dir = std::env::temp_dir().join(format!("kerno-attr-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("window.json");
    let mut args = vec![
        "doctor",
        "--standalone",
        "--duration",
        "5s",
        "--domains",
        "syscalls,fds,memory",
        "--output",
        "json",
        "--quiet",
        "--save",
        saved.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let o = kerno(&args);
    assert!(
        o.status.success(),
        "kerno doctor failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let report: Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    let pretty = kerno(&["doctor", "--from", saved.to_str().unwrap()]);
    let _ = fs::remove_dir_all(&dir);
    (report, String::from_utf8_lossy(&pretty.stdout).into_owned())
}

/// Run `kerno start` on a free loopback port and return the memory-pressure series line of
/// the cgroup `path` from its /metrics, once it shows up (the agent publishes its cgroup
/// view every 5 s).
fn agent_metrics_line(path: &str) -> String {
    use std::io::{Read, Write};
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let socket = std::env::temp_dir().join(format!("kerno-attr-{}.sock", std::process::id()));
    struct Agent(Child);
    impl Drop for Agent {
        fn drop(&mut self) {
            // SIGTERM detaches the probes; kill if it does not go.
            let _ = Command::new("kill").arg(self.0.id().to_string()).status();
            for _ in 0..50 {
                if matches!(self.0.try_wait(), Ok(Some(_))) {
                    return;
                }
                sleep(Duration::from_millis(100));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _agent = Agent(
        Command::new(env!("CARGO_BIN_EXE_kerno"))
            .args([
                "start",
                "--domains",
                "memory",
                "--window",
                "10s",
                "--listen",
            ])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--socket")
            .arg(&socket)
            .env_remove("KERNO_CONFIG")
            .env_remove("KERNO_HOST_ROOT")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("kerno start"),
    );
    let want = format!("kerno_cgroup_memory_pressure_pct{{cgroup=\"{path}\"");
    let mut last = String::new();
    for _ in 0..60 {
        sleep(Duration::from_millis(500));
        let Ok(mut c) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            continue;
        };
        let _ = c.write_all(b"GET /metrics HTTP/1.0\r\nHost: localhost\r\n\r\n");
        last.clear();
        let _ = c.read_to_string(&mut last);
        if let Some(l) = last.lines().find(|l| l.starts_with(&want)) {
            return l.to_string();
        }
    }
    panic!("no {want} line in /metrics:\n{last}");
}

/// The fd-leak finding about `pid`.
fn leak_of(report: &Value, pid: u32) -> Value {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "fd-leak" && f["subject"]["process"]["pid"] == pid)
        .unwrap_or_else(|| panic!("no fd-leak finding for pid {pid}: {:#}", report["findings"]))
        .clone()
}

/// The finding's subject names the pod's namespace, name, uid, container and id, and the
/// pretty report says so in its one line.
fn assert_attributed(report: &Value, pretty: &str, pid: u32, uid: &str, id: &str, qos: &str) {
    let f = leak_of(report, pid);
    let s = &f["subject"];
    assert_eq!(s["namespace"], NS, "{s:#}");
    assert_eq!(s["pod_name"], POD, "{s:#}");
    assert_eq!(s["pod"], format!("{NS}/{POD}"), "{s:#}");
    assert_eq!(s["pod_uid"], uid, "{s:#}");
    assert_eq!(s["container"], CONTAINER, "{s:#}");
    assert_eq!(s["container_id"], id, "{s:#}");
    assert_eq!(s["qos"], qos, "{s:#}");
    assert_eq!(s["workload"]["kind"], "Deployment", "{s:#}");
    assert_eq!(s["workload"]["name"], "checkout-api", "{s:#}");
    assert_eq!(s["workload"]["inferred"], true, "{s:#}");
    assert!(s["node"].as_str().is_some_and(|n| !n.is_empty()), "{s:#}");
    let line = format!("in:       {NS}/{POD} (container {CONTAINER})");
    assert!(pretty.contains(&line), "no {line:?} in:\n{pretty}");
}

/// A temporary host root: the real `/proc` and `/sys` linked in, the kubelet's log
/// directories its own.
fn temp_host_root(made: &mut Paths) -> PathBuf {
    let root = std::env::temp_dir().join(format!("kerno-hostroot-{}", std::process::id()));
    let _ = fs::remove_dir_all(&root);
    fs::create_dir_all(&root).unwrap();
    made.0.push(root.clone());
    symlink("/proc", root.join("proc")).unwrap();
    symlink("/sys", root.join("sys")).unwrap();
    root
}

/// kubelet systemd driver on cgroup v2: `kubepods.slice/kubepods-burstable.slice/
/// kubepods-burstable-pod<uid_>.slice/cri-containerd-<id>.scope`, names from a host root.
#[test]
fn root_systemd_driver_on_cgroup_v2_under_a_host_root() {
    let (id, uid) = ids(1);
    let mut made = Paths(Vec::new());
    let root = temp_host_root(&mut made);
    kubelet_logs(&root, &uid, &id, &mut made);
    let mut cgroups = Cgroups(Vec::new());
    let uid_ = uid.replace('-', "_");
    let leaf = cgroups.make(
        &cgroup2_mount(),
        &format!(
            "kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{uid_}.slice/cri-containerd-{id}.scope"
        ),
    );
    let leaker = Leaker::spawn(Duration::from_millis(300), 9);
    leaker.join(&leaf);
    let (report, pretty) = doctor(&[
        "--host-root",
        root.to_str().unwrap(),
        "--node-name",
        "node-7",
    ]);
    assert_attributed(&report, &pretty, leaker.pid(), &uid, &id, "burstable");
    let s = &leak_of(&report, leaker.pid())["subject"];
    assert_eq!(s["runtime"], "containerd", "{s:#}");
    assert_eq!(s["node"], "node-7", "{s:#}");
    assert_eq!(report["host"]["node"], "node-7");
    // The kubelet's cgroup tree now exists on this host: it is a Kubernetes node.
    assert_eq!(report["host"]["environment"], "kubernetes");

    // --pod and --namespace keep it; another namespace drops it, and the domains stay.
    let dir = std::env::temp_dir().join(format!("kerno-attr-scope-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let saved = dir.join("w.json");
    fs::write(&saved, report["signals"].to_string()).unwrap();
    let scoped = |args: &[&str]| -> Value {
        let mut a = vec![
            "doctor",
            "--from",
            saved.to_str().unwrap(),
            "--output",
            "json",
        ];
        a.extend_from_slice(args);
        serde_json::from_slice(&kerno(&a).stdout).unwrap()
    };
    let pod = format!("{NS}/{POD}");
    let mine = scoped(&["--pod", &pod]);
    assert!(
        mine["findings"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["subject"]["pod"] == pod)
    );
    leak_of(&mine, leaker.pid());
    leak_of(&scoped(&["--namespace", NS]), leaker.pid());
    let other = scoped(&["--namespace", "kube-system"]);
    assert!(
        other["findings"].as_array().unwrap().is_empty(),
        "{:#}",
        other["findings"]
    );
    assert_eq!(other["scope"], "namespace kube-system");
    assert_eq!(other["domains"], report["domains"]);
    let _ = fs::remove_dir_all(&dir);
}

/// kubelet cgroupfs driver on the cgroup v1 controllers (`kubepods/besteffort/pod<uid>/
/// <id>`, the shape k3s and microk8s use), v2 left at the root; names at the real
/// `/var/log/pods` and `/var/log/containers`, removed afterwards.
#[test]
fn root_cgroupfs_driver_on_cgroup_v1_at_the_real_paths() {
    let (id, uid) = ids(2);
    let v1 = cgroup1_mounts();
    assert!(!v1.is_empty(), "no v1 memory/cpu/pids controller mounted");
    let mut made = Paths(Vec::new());
    kubelet_logs(Path::new("/"), &uid, &id, &mut made);
    let mut cgroups = Cgroups(Vec::new());
    let leaker = Leaker::spawn(Duration::from_millis(300), 9);
    for mount in &v1 {
        let leaf = cgroups.make(mount, &format!("kubepods/besteffort/pod{uid}/{id}"));
        leaker.join(&leaf);
    }
    // A memory limit on the container's cgroup, so it is among the memory cgroups the
    // agent's /metrics lists with namespace and pod labels.
    let memory = v1
        .iter()
        .find(|m| m.to_string_lossy().contains("memory"))
        .expect("the v1 memory controller");
    let mem_leaf = memory.join(format!("kubepods/besteffort/pod{uid}/{id}"));
    fs::write(
        mem_leaf.join("memory.limit_in_bytes"),
        (1u64 << 30).to_string(),
    )
    .unwrap();
    let (report, pretty) = doctor(&[]);
    assert_attributed(&report, &pretty, leaker.pid(), &uid, &id, "besteffort");
    let line = agent_metrics_line(&format!("/kubepods/besteffort/pod{uid}/{id}"));
    for label in [
        format!("namespace=\"{NS}\""),
        format!("pod=\"{POD}\""),
        format!("container=\"{CONTAINER}\""),
    ] {
        assert!(line.contains(&label), "no {label} in {line}");
    }
    assert!(!line.contains("pid"), "no pid label: {line}");
    let s = &leak_of(&report, leaker.pid())["subject"];
    // cgroupfs names no runtime, and no bundle of one exists here.
    assert!(s.get("runtime").is_none(), "{s:#}");
    assert!(
        s["process"]["cgroup"]
            .as_str()
            .unwrap()
            .contains(&format!("pod{uid}")),
        "{s:#}"
    );
}

/// A process in `system.slice/foo.service` is reported as unit foo.service.
#[test]
fn root_a_systemd_service_is_named_by_its_unit() {
    let mut cgroups = Cgroups(Vec::new());
    let unit = format!("kerno-test-{}.service", std::process::id());
    let leaf = cgroups.make(&cgroup2_mount(), &format!("system.slice/{unit}"));
    let leaker = Leaker::spawn(Duration::from_millis(300), 9);
    leaker.join(&leaf);
    let (report, pretty) = doctor(&[]);
    let s = &leak_of(&report, leaker.pid())["subject"];
    assert_eq!(s["unit"], unit.as_str(), "{s:#}");
    assert_eq!(s["slice"], "system.slice", "{s:#}");
    assert!(s.get("namespace").is_none(), "{s:#}");
    let line = format!("in:       unit {unit}");
    assert!(pretty.contains(&line), "no {line:?} in:\n{pretty}");
}
