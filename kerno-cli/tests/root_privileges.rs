//! Root tests: Kerno's capability set (docs/reliability.md, "Least privilege"). `kerno
//! doctor` and `kerno start` run with exactly CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH and
//! CAP_SYS_PTRACE (as uid 0 with a reduced bounding set, and as `nobody` with them as ambient
//! capabilities), and with CAP_SYS_ADMIN alone removed from full root: every domain
//! attached, and another user's descriptor leak found with its open count. Without
//! CAP_DAC_READ_SEARCH that open count is unknown. A plain user with no capability at all
//! still gets a report from procfs, cgroupfs and PSI: its own process's leak is found from
//! `/proc/<pid>/fd`, and the probe domains are listed as not observed with the capabilities
//! they need. Needs root and setpriv (util-linux); scripts/test.sh runs this binary with
//! --test-threads=1 (one kernel, one test at a time).

mod support;

use std::{
    ffi::CString,
    os::unix::fs::chown,
    process::{Command, Output, Stdio},
    thread::sleep,
    time::Duration,
};

use serde_json::Value;
use support::{Guard, TempDir, free_port, http_get, poll_running, read_log, signal_and_wait};

/// The four capabilities, as setpriv names them.
const FOUR: &str = "-all,+bpf,+perfmon,+dac_read_search,+sys_ptrace";
/// Their bits in CapEff (CAP_DAC_READ_SEARCH 2, CAP_SYS_PTRACE 19, CAP_PERFMON 38, CAP_BPF 39).
const FOUR_BITS: u64 = (1 << 2) | (1 << 19) | (1 << 38) | (1 << 39);
const NOBODY: u32 = 65534;
/// The uid the leaking process runs as: another user than Kerno's in every case.
const OTHER: u32 = 65533;

/// How Kerno is started: setpriv's arguments before the binary.
struct Identity {
    name: &'static str,
    setpriv: Vec<String>,
    uid: u32,
    /// The exact effective set the agent must have, when it is one.
    cap_eff: Option<u64>,
}

fn identities() -> Vec<Identity> {
    vec![
        Identity {
            name: "uid 0, bounding set of the four",
            setpriv: vec![format!("--bounding-set={FOUR}")],
            uid: 0,
            cap_eff: Some(FOUR_BITS),
        },
        Identity {
            name: "nobody, the four as ambient capabilities",
            setpriv: vec![
                format!("--reuid={NOBODY}"),
                format!("--regid={NOBODY}"),
                "--clear-groups".into(),
                format!("--inh-caps={FOUR}"),
                format!("--ambient-caps={FOUR}"),
                format!("--bounding-set={FOUR}"),
            ],
            uid: NOBODY,
            cap_eff: Some(FOUR_BITS),
        },
        Identity {
            name: "full root without CAP_SYS_ADMIN",
            setpriv: vec!["--bounding-set=-sys_admin".into()],
            uid: 0,
            cap_eff: None,
        },
    ]
}

/// `kerno args` started by setpriv with `setpriv` arguments, from `/` (any user may be there).
fn kerno_as(setpriv: &[String], args: &[&str]) -> Command {
    let mut c = Command::new("setpriv");
    c.args(setpriv)
        .arg(env!("CARGO_BIN_EXE_kerno"))
        .args(args)
        .current_dir("/")
        .env_remove("KERNO_CONFIG")
        .env_remove("KERNO_FAIL_PROBES")
        .env("NO_COLOR", "1");
    c
}

fn run(setpriv: &[String], args: &[&str]) -> Output {
    kerno_as(setpriv, args)
        .output()
        .expect("setpriv (util-linux)")
}

/// A forked child that, as `uid`, opens `/dev/null` `per_sec` times a second up to `max`
/// descriptors with a soft and hard `RLIMIT_NOFILE` of `limit`, then waits. Killed and
/// reaped on drop.
struct Leaker(libc::pid_t);

impl Leaker {
    fn start(uid: u32, per_sec: i64, max: u32, limit: u64) -> Leaker {
        let path = CString::new("/dev/null").unwrap();
        // SAFETY: the child makes plain system calls only, then never returns.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork");
        if pid == 0 {
            // SAFETY: system calls on valid arguments, in the forked child.
            unsafe {
                let rl = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: limit,
                };
                libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
                libc::syscall(libc::SYS_setgroups, 0, std::ptr::null::<libc::gid_t>());
                libc::syscall(libc::SYS_setresgid, uid, uid, uid);
                libc::syscall(libc::SYS_setresuid, uid, uid, uid);
                // A credential change makes a process non-dumpable (its /proc files root's);
                // an ordinary process of that user is dumpable.
                libc::prctl(libc::PR_SET_DUMPABLE, 1);
                let ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 1_000_000_000 / per_sec,
                };
                for _ in 0..max {
                    libc::open(path.as_ptr(), libc::O_RDONLY);
                    libc::nanosleep(&ts, std::ptr::null_mut());
                }
                loop {
                    libc::pause();
                }
            }
        }
        Leaker(pid)
    }
}

impl Drop for Leaker {
    fn drop(&mut self) {
        // SAFETY: our own child.
        unsafe {
            libc::kill(self.0, libc::SIGKILL);
            libc::waitpid(self.0, std::ptr::null_mut(), 0);
        }
    }
}

fn report(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "not a JSON report ({e}): {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

/// The fd-leak finding about `pid`, if any.
fn leak_of(r: &Value, pid: i32) -> Option<Value> {
    r["findings"]
        .as_array()?
        .iter()
        .find(|f| f["rule"] == "fd-leak" && f["subject"]["process"]["pid"] == pid)
        .cloned()
}

/// A temporary directory `uid` owns, removed on drop.
fn owned_dir(name: &str, uid: u32) -> TempDir {
    let d = TempDir::new(name);
    chown(&d.0, Some(uid), Some(uid)).unwrap();
    d
}

fn cap_eff(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap()
}

fn check_doctor(id: &Identity) {
    // Another user's process leaking 40 descriptors a second toward a limit of 1,024.
    let leak = Leaker::start(OTHER, 40, 400, 1024);
    sleep(Duration::from_millis(500));
    let o = run(
        &id.setpriv,
        &["doctor", "-d", "2s", "-o", "json", "--standalone"],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{}: {err}", id.name);
    let r = report(&o);
    assert_eq!(r["degraded"], serde_json::json!([]), "{}: {err}", id.name);
    for d in r["domains"].as_array().unwrap() {
        assert_eq!(d["observed"], true, "{}: {d}", id.name);
    }
    // The leak, with its open count: another user's /proc/<pid>/fd was read.
    let f = leak_of(&r, leak.0).unwrap_or_else(|| {
        panic!(
            "{}: no fd-leak of pid {}: {:#}",
            id.name, leak.0, r["findings"]
        )
    });
    let title = f["title"].as_str().unwrap();
    assert!(title.contains("of 1,024 open"), "{}: {title}", id.name);
}

fn check_agent(id: &Identity) {
    let dir = owned_dir("privileges-agent", id.uid);
    let port = free_port();
    let socket = dir.0.join("agent.sock");
    let listen = format!("127.0.0.1:{port}");
    let log = std::fs::File::create(dir.0.join("agent.log")).unwrap();
    let child = kerno_as(
        &id.setpriv,
        &[
            "start",
            "--listen",
            &listen,
            "--socket",
            socket.to_str().unwrap(),
        ],
    )
    .stdout(Stdio::null())
    .stderr(log)
    .spawn()
    .expect("setpriv (util-linux)");
    let mut agent = Guard(child);
    let log = || read_log(&dir.0.join("agent.log"));
    let ready = poll_running(
        &mut agent.0,
        &format!("{}: the agent", id.name),
        log,
        Duration::from_secs(30),
        Duration::from_millis(100),
        || {
            let r = http_get(port, "/readyz").ok().filter(|r| r.status == 200)?;
            Some(serde_json::from_str::<Value>(&r.body).unwrap())
        },
    );
    assert!(ready.is_some(), "{}: not ready:\n{}", id.name, log());
    let ready = ready.unwrap();
    let domains = ready["domains"].as_array().unwrap();
    assert!(domains.len() >= 5, "{}: {ready:#}", id.name);
    for d in domains {
        assert_eq!(d["state"], "attached", "{}: {d}", id.name);
    }
    // setpriv execs kerno: the agent's pid is the child's.
    if let Some(want) = id.cap_eff {
        assert_eq!(
            cap_eff(agent.0.id()),
            want,
            "{}: CapEff of the agent",
            id.name
        );
    }
    // A window with data for every domain family reaches /metrics.
    let metrics = http_get(port, "/metrics").unwrap();
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.body.contains("kerno_bpf_programs_loaded"),
        "{}",
        id.name
    );
    let st = signal_and_wait(&mut agent.0, libc::SIGTERM, Duration::from_secs(20));
    assert!(st.is_some(), "{}: did not stop", id.name);
    let st = st.unwrap();
    assert!(st.success(), "{}: {st}\n{}", id.name, log());
    assert!(!socket.exists(), "{}: socket removed", id.name);
}

#[test]
fn root_doctor_and_agent_run_with_exactly_the_four_capabilities() {
    for id in identities() {
        check_doctor(&id);
        check_agent(&id);
    }
}

#[test]
fn root_without_cap_dac_read_search_another_users_open_count_is_unknown() {
    // The measurement behind CAP_DAC_READ_SEARCH: uid 0 with the three others.
    let leak = Leaker::start(OTHER, 40, 400, 1024);
    sleep(Duration::from_millis(500));
    let three = vec!["--bounding-set=-all,+bpf,+perfmon,+sys_ptrace".to_string()];
    let o = run(
        &three,
        &["doctor", "-d", "2s", "-o", "json", "--standalone"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = report(&o);
    let f = leak_of(&r, leak.0).expect("the leak, from the syscall probe");
    let title = f["title"].as_str().unwrap();
    assert!(title.contains("open count unknown"), "{title}");
}

#[test]
fn root_a_plain_user_doctor_reports_procfs_and_names_what_it_cannot_observe() {
    // nobody, no capability at all, with its own process leaking toward a low limit.
    let plain = vec![
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".to_string(),
        "--inh-caps=-all".to_string(),
        "--bounding-set=-all".to_string(),
    ];
    let leak = Leaker::start(NOBODY, 40, 400, 1024);
    sleep(Duration::from_millis(500));
    let o = run(
        &plain,
        &[
            "doctor",
            "-d",
            "3s",
            "-o",
            "json",
            "--standalone",
            "--exit-code",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    // --exit-code as ever: 3 on a critical finding (the leak, about 20 s from EMFILE).
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("missing CAP_BPF and CAP_PERFMON"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let r = report(&o);
    let f = leak_of(&r, leak.0)
        .unwrap_or_else(|| panic!("no fd-leak of pid {}: {:#}", leak.0, r["findings"]));
    assert_eq!(f["severity"], "critical", "{f:#}");
    assert!(
        f["cause"]
            .as_str()
            .unwrap()
            .contains(&format!("/proc/{}/fd", leak.0)),
        "{f:#}"
    );
    assert!(
        f["title"].as_str().unwrap().contains("of 1,024 open"),
        "{f:#}"
    );
    // The kernel domains not observed, each with the capabilities it needs.
    let degraded = r["degraded"].as_array().unwrap();
    let names: Vec<&str> = degraded
        .iter()
        .map(|d| d["domain"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["syscalls", "fds", "sched", "disk", "tcp", "oom"]);
    for d in degraded {
        let why = d["reason"].as_str().unwrap();
        assert!(
            why.contains("CAP_BPF") && why.contains("CAP_PERFMON"),
            "{d}"
        );
    }
    // What procfs, cgroupfs and PSI show is there.
    for name in ["memory", "filesystem", "pids", "conntrack"] {
        let d = r["domains"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["domain"] == name)
            .unwrap();
        assert_eq!(d["observed"], true, "{d}");
    }
    let s = &r["signals"];
    assert!(s["memory"]["total_bytes"].as_u64().unwrap() > 0);
    assert!(
        s["saturation"]["cpu"]["some_avg10"].is_number(),
        "PSI: {}",
        s["saturation"]
    );
    assert!(s["fd_counts"]["processes_counted"].as_u64().unwrap() >= 1);

    // Without --exit-code the same report exits 0.
    let o = run(
        &plain,
        &["doctor", "-d", "1s", "-o", "json", "--standalone"],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn root_without_cap_dac_read_search_a_non_root_uid_cannot_read_tracefs() {
    // nobody with the four but CAP_DAC_READ_SEARCH: the syscall and scheduler probes
    // (tp_btf, offsets from BTF, no tracefs) attach; the classic tracepoint domains (tcp)
    // say what they miss.
    let three = "-all,+bpf,+perfmon,+sys_ptrace";
    let ids = vec![
        format!("--reuid={NOBODY}"),
        format!("--regid={NOBODY}"),
        "--clear-groups".to_string(),
        format!("--inh-caps={three}"),
        format!("--ambient-caps={three}"),
        format!("--bounding-set={three}"),
    ];
    let o = run(
        &ids,
        &[
            "doctor",
            "-d",
            "1s",
            "-o",
            "json",
            "--standalone",
            "--domains",
            "syscalls,sched,tcp",
        ],
    );
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let r = report(&o);
    let degraded = r["degraded"].as_array().unwrap();
    assert_eq!(degraded.len(), 1, "{degraded:?}");
    assert_eq!(degraded[0]["domain"], "tcp");
    assert!(
        degraded[0]["reason"]
            .as_str()
            .unwrap()
            .contains("CAP_DAC_READ_SEARCH"),
        "{degraded:?}"
    );
}

#[test]
fn root_without_cap_sys_ptrace_other_network_namespaces_are_not_seen() {
    // A full-root process in a network namespace of its own.
    let mut ns = Command::new("unshare")
        .args(["--net", "sleep", "60"])
        .spawn()
        .expect("unshare (util-linux)");
    sleep(Duration::from_millis(300));
    let netns = |bounding: &str| {
        let o = run(
            &[format!("--bounding-set={bounding}")],
            &[
                "doctor",
                "-d",
                "1s",
                "-o",
                "json",
                "--standalone",
                "--domains",
                "tcp",
            ],
        );
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
        report(&o)["signals"]["tcp"]["netns_count"]
            .as_u64()
            .unwrap()
    };
    let with = netns(FOUR);
    let without = netns("-all,+bpf,+perfmon,+dac_read_search");
    let _ = ns.kill();
    let _ = ns.wait();
    assert!(
        with >= 2,
        "the test's namespace is seen with the four: {with}"
    );
    assert!(
        without < with,
        "without CAP_SYS_PTRACE: {without}, with: {with}"
    );
}

#[test]
fn root_the_probes_load_under_a_64_kib_memlock_limit_without_cap_sys_resource() {
    // 5.11+ charges BPF memory to the memory cgroup: RLIMIT_MEMLOCK does not matter, and
    // Kerno's attempt to raise it (which needs CAP_SYS_RESOURCE) may fail harmlessly.
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    let mut v = release.trim().split(|c: char| !c.is_ascii_digit());
    let (maj, min): (u32, u32) = (
        v.next().unwrap().parse().unwrap(),
        v.next().unwrap().parse().unwrap(),
    );
    if (maj, min) < (5, 11) {
        eprintln!("kernel {release}: maps count against RLIMIT_MEMLOCK here; not applicable");
        return;
    }
    let o = Command::new("prlimit")
        .args([
            "--memlock=65536:65536",
            "setpriv",
            &format!("--bounding-set={FOUR}"),
        ])
        .arg(env!("CARGO_BIN_EXE_kerno"))
        .args(["doctor", "-d", "1s", "-o", "json", "--standalone"])
        .current_dir("/")
        .env_remove("KERNO_CONFIG")
        .env_remove("KERNO_FAIL_PROBES")
        .output()
        .expect("prlimit (util-linux)");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(report(&o)["degraded"], serde_json::json!([]));
}
