//! Root tests: `kerno doctor` for real, against workloads the test runs itself. Needs root;
//! scripts/test.sh runs this binary with --test-threads=1 (one kernel, one test at a time).

use std::{
    process::{Child, Command, Output, Stdio},
    thread::sleep,
    time::Duration,
};

use serde_json::Value;

fn kerno(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kerno"));
    c.args(args).env_remove("KERNO_CONFIG").env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run kerno")
}

/// A shell (`true` is a regular builtin: a failed redirection does not end the shell, as it
/// would for the special builtin `:`) making `n` failing opens of a missing path and `ok` successful ones, starting
/// after `delay`.
fn openat_workload(n: u32, ok: u32, delay: Duration) -> Child {
    let script = format!(
        "sleep {}; i=0; while [ $i -lt {n} ]; do true < /nonexistent/kerno-e2e 2>/dev/null; i=$((i+1)); done; \
         i=0; while [ $i -lt {ok} ]; do true < /etc/hostname; i=$((i+1)); done",
        delay.as_secs_f64()
    );
    Command::new("sh")
        .args(["-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn sh")
}

fn json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "kerno failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("JSON report")
}

fn syscall<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["signals"]["syscalls"]["syscalls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in the report"))
}

#[test]
fn root_doctor_counts_the_failing_opens_of_a_workload() {
    const N: u32 = 300;
    let mut child = openat_workload(N, 100, Duration::from_millis(500));
    let pid = child.id();
    let o = kerno(
        &["doctor", "--duration", "3s", "--output", "json", "--quiet"],
        &[],
    );
    child.wait().unwrap();
    let report = json(&o);
    let openat = syscall(&report, "openat");
    assert!(openat["errors"].as_u64().unwrap() >= N as u64, "{openat}");
    assert!(
        openat["errnos"]["ENOENT"].as_u64().unwrap() >= N as u64,
        "{openat}"
    );
    let mine: u64 = openat["top_errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["process"]["pid"] == pid && e["errno"] == "ENOENT")
        .map(|e| e["count"].as_u64().unwrap())
        .sum();
    // The shell's own start-up may add a few lookups of missing files; never fewer than N.
    assert!(
        (N as u64..N as u64 + 20).contains(&mine),
        "ENOENT from pid {pid}: {mine}"
    );
    // Every domain observed on this kernel.
    for d in report["domains"].as_array().unwrap() {
        assert_eq!(d["observed"], true, "{d}");
    }
    // The per-second series the HTML report plots: one point per sample interval, and the
    // rates add up to the window's totals.
    let sys = &report["signals"]["syscalls"];
    let integral = |series: &Value| -> (usize, f64) {
        let pts = series.as_array().expect("a series");
        let mut prev = 0.0;
        let mut sum = 0.0;
        for p in pts {
            let (t, v) = (p[0].as_f64().unwrap(), p[1].as_f64().unwrap());
            sum += v * (t - prev) / 1000.0;
            prev = t;
        }
        (pts.len(), sum)
    };
    let (n, calls) = integral(&sys["calls_series"]);
    assert!(n >= 2, "{}", sys["calls_series"]);
    let total = sys["total_calls"].as_f64().unwrap();
    assert!(
        (calls - total).abs() < 1.0,
        "calls/s add up to {calls}, total {total}"
    );
    let (_, errors) = integral(&sys["errors_series"]);
    assert!(errors >= N as f64 - 0.5, "errors/s add up to {errors}");
    assert!(!sys["p99_series"].as_array().unwrap().is_empty());
    assert!(
        !report["signals"]["sched"]["p99_series"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        report["signals"]["tcp"]["retransmits_series"]
            .as_array()
            .unwrap()
            .len(),
        n
    );
}

#[test]
fn root_save_then_replay_gives_the_same_findings() {
    let dir = std::env::temp_dir().join(format!("kerno-replay-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("window.json");
    let f = file.to_str().unwrap();
    let live = json(&kerno(
        &[
            "doctor",
            "--duration",
            "2s",
            "--output",
            "json",
            "--quiet",
            "--save",
            f,
        ],
        &[],
    ));
    // Replay needs no privileges: run it as nobody.
    let replay = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_kerno"))
        .args(["doctor", "--from", f, "--output", "json"])
        .env("NO_COLOR", "1")
        .env_remove("KERNO_CONFIG")
        .current_dir("/")
        .output()
        .unwrap();
    std::fs::set_permissions(&file, std::os::unix::fs::PermissionsExt::from_mode(0o644)).ok();
    let replay = json(&replay);
    assert_eq!(live["findings"], replay["findings"]);
    assert_eq!(live["signals"], replay["signals"]);
    assert_eq!(live["status"], replay["status"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn root_a_failed_probe_degrades_only_its_domain() {
    let o = kerno(
        &["doctor", "--duration", "1s", "--output", "json"],
        &[("KERNO_FAIL_PROBES", "tcp")],
    );
    let report = json(&o);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("degraded: tcp"), "{stderr}");
    for d in report["domains"].as_array().unwrap() {
        let tcp = d["domain"] == "tcp";
        assert_eq!(d["observed"], !tcp, "{d}");
    }
    assert_eq!(report["degraded"][0]["domain"], "tcp");
    assert!(report["signals"]["tcp"].is_null());
    assert_ne!(
        report["status"], "healthy",
        "a report never calls an unobserved domain healthy"
    );

    let text = kerno(
        &["doctor", "--duration", "1s"],
        &[("KERNO_FAIL_PROBES", "tcp")],
    );
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(
        out.contains("Degraded (not observed)") && out.contains("tcp probe not attached"),
        "{out}"
    );
    assert!(!out.contains("HEALTHY"), "{out}");
    sleep(Duration::from_millis(10));
}

#[test]
fn root_doctor_shows_progress_on_a_terminal_only() {
    // script(1) gives kerno a terminal (stdout and stderr both go to it).
    let on_tty = |extra: &str| -> String {
        let cmd = format!(
            "{} doctor -d 2s --standalone --domains memory --no-color{extra}",
            env!("CARGO_BIN_EXE_kerno")
        );
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env_remove("KERNO_CONFIG")
            .output()
            .expect("script (util-linux)");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let shown = on_tty("");
    assert!(shown.contains("collecting kernel signals… "), "{shown}");
    assert!(shown.contains("s / 2s"), "{shown}");
    assert!(!on_tty(" -q").contains("collecting kernel signals"));
    // Not a terminal: nothing on stderr but the report's notes.
    let o = kerno(
        &["doctor", "-d", "2s", "--standalone", "--domains", "memory"],
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(!String::from_utf8_lossy(&o.stderr).contains("collecting"));
}

/// `kerno chaos --induce` for the three capacity rules, `kerno doctor` beside it: each rule
/// fires at the default thresholds about the scenario's own filesystem, namespace or cgroup,
/// and the scenario leaves nothing behind (the lowered nf_conntrack_max is put back).
#[test]
fn root_doctor_sees_the_capacity_incidents_kerno_chaos_induces() {
    let max = || std::fs::read_to_string("/proc/sys/net/netfilter/nf_conntrack_max").unwrap();
    let before = max();
    for (scenario, kind, subject) in [
        ("filesystem-full", "filesystem", "/dev/loop"),
        ("conntrack-full", "netns", "kchaos-ctfill"),
        ("pid-exhaustion", "cgroup", "/kerno-chaos-"),
    ] {
        let mut chaos = Command::new(env!("CARGO_BIN_EXE_kerno"))
            .args(["chaos", "--induce", scenario, "-d", "7s", "-y"])
            .env_remove("KERNO_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kerno chaos");
        sleep(Duration::from_millis(1500));
        let report = json(&kerno(
            &["doctor", "--duration", "3s", "--output", "json", "--quiet"],
            &[],
        ));
        let status = chaos.wait().unwrap();
        assert!(
            status.success(),
            "kerno chaos --induce {scenario}: {status}"
        );
        let found: Vec<&Value> = report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == scenario)
            .collect();
        assert!(
            found.iter().any(|f| f["subject"]["kind"] == kind
                && f["subject"]["name"].as_str().unwrap().contains(subject)
                && f["severity"] != "info"),
            "{scenario}: {found:?}"
        );
    }
    assert_eq!(max(), before, "nf_conntrack_max restored");
}
