//! The `kerno` binary as a user runs it: help text, bad input, replay. No root needed.

use std::process::{Command, Output};

fn kerno(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kerno"))
        .args(args)
        .env_remove("KERNO_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run kerno")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The commands `kerno --help` lists (but `help`).
fn commands() -> Vec<String> {
    let top = String::from_utf8_lossy(&kerno(&["--help"]).stdout).into_owned();
    top.lines()
        .skip_while(|l| *l != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

#[test]
fn help_texts() {
    let top = kerno(&["--help"]);
    assert!(top.status.success());
    insta::assert_snapshot!("help", String::from_utf8_lossy(&top.stdout));
    // Every command's help, each its own snapshot (a new command gets one).
    let cmds = commands();
    for must in [
        "doctor",
        "rules",
        "start",
        "chaos",
        "version",
        "preflight",
        "completions",
        "man",
    ] {
        assert!(cmds.iter().any(|c| c == must), "{must} not in {cmds:?}");
    }
    for c in &cmds {
        let o = kerno(&[c, "--help"]);
        assert!(o.status.success(), "{c} --help: {}", stderr(&o));
        insta::assert_snapshot!(format!("{c}_help"), String::from_utf8_lossy(&o.stdout));
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[test]
fn version_names_the_build_the_ebpf_object_and_the_kernel() {
    let o = kerno(&["version", "-o", "json"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    // The hash embedded at build time is the hash of the object the binary embeds.
    assert_eq!(
        v["ebpf_object_sha256"],
        sha256_hex(kerno_probes::EBPF_OBJECT)
    );
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    let rev = v["revision"].as_str().unwrap();
    let head = Command::new("git")
        .args([
            "-C",
            env!("CARGO_MANIFEST_DIR"),
            "rev-parse",
            "--short=12",
            "HEAD",
        ])
        .output();
    match head {
        Ok(h) if h.status.success() => {
            let head = String::from_utf8_lossy(&h.stdout).trim().to_string();
            // Built from this checkout (HEAD may have moved on since: same length, hex).
            assert_eq!(rev.trim_end_matches("-dirty").len(), 12, "{rev}");
            assert!(
                rev.chars().take(12).all(|c| c.is_ascii_hexdigit()),
                "{rev} (HEAD {head})"
            );
        }
        _ => assert_eq!(rev, "unknown"),
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
    assert_eq!(v["kernel"]["release"], release.trim());
    assert_eq!(
        v["kernel"]["btf"],
        std::path::Path::new("/sys/kernel/btf/vmlinux").exists()
    );
    assert!(["v2", "hybrid", "v1", "none"].contains(&v["kernel"]["cgroup"].as_str().unwrap()));
    // The global flag before the command gives the same.
    let before = kerno(&["-o", "json", "version"]);
    let b: serde_json::Value = serde_json::from_slice(&before.stdout).expect("JSON");
    assert_eq!(b["ebpf_object_sha256"], v["ebpf_object_sha256"]);
    // -V: one line; --version: the long form.
    let short = String::from_utf8_lossy(&kerno(&["-V"]).stdout).into_owned();
    assert_eq!(short.lines().count(), 1, "{short}");
    assert!(
        short.contains(&v["ebpf_object_sha256"].as_str().unwrap()[..12]),
        "{short}"
    );
    assert!(short.contains(rev), "{short}");
    let long = String::from_utf8_lossy(&kerno(&["--version"]).stdout).into_owned();
    for needle in [
        "revision",
        "eBPF object   sha256",
        "kernel",
        "BTF",
        "tracefs",
        "cgroup",
    ] {
        assert!(long.contains(needle), "{needle}: {long}");
    }
    let pretty = String::from_utf8_lossy(&kerno(&["version"]).stdout).into_owned();
    assert_eq!(pretty, long);
}

#[test]
fn an_output_a_command_cannot_write_is_a_usage_error_naming_those_it_can() {
    for (args, can) in [
        (&["rules", "-o", "json"][..], "it can write: pretty"),
        (&["-o", "json", "rules"][..], "it can write: pretty"),
        (
            &["chaos", "--list", "-o", "json"][..],
            "it can write: pretty",
        ),
        (&["start", "--output", "json"][..], "--log-format"),
    ] {
        let o = kerno(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(can), "{args:?}: {}", stderr(&o));
    }
    let o = kerno(&["version", "-o", "yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("pretty") && stderr(&o).contains("json"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn global_flags_go_before_or_after_the_command() {
    for args in [
        &["--no-color", "rules"][..],
        &["rules", "--no-color"][..],
        &["--log-level", "debug", "--log-format", "json", "rules"][..],
        &["rules", "--log-level", "warn", "--log-format", "text"][..],
    ] {
        let o = kerno(args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    }
    let o = kerno(&["--config", "/nonexistent/kerno.yaml", "rules"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/kerno.yaml"),
        "{}",
        stderr(&o)
    );
    let o = kerno(&["--log-format", "xml", "rules"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("text") && stderr(&o).contains("json"),
        "{}",
        stderr(&o)
    );
}

/// Run `kerno args` in bash with its completion loaded, completing the last word.
fn complete(words: &[&str]) -> Vec<String> {
    let script = kerno(&["completions", "bash"]);
    assert!(script.status.success(), "{}", stderr(&script));
    let dir = std::env::temp_dir().join(format!(
        "kerno-compl-{}-{}",
        std::process::id(),
        words.len()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kerno.bash");
    std::fs::write(&file, &script.stdout).unwrap();
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let cword = words.len() - 1;
    let prev = if cword > 0 { words[cword - 1] } else { "" };
    let cmd = format!(
        "source '{}' && COMP_WORDS=({}) && COMP_CWORD={cword} && COMP_LINE='{}' && COMP_POINT=${{#COMP_LINE}} \
         && _kerno kerno '{}' '{prev}' && printf '%s\n' \"${{COMPREPLY[@]}}\"",
        file.display(),
        quoted.join(" "),
        words.join(" "),
        words[cword]
    );
    let o = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &cmd])
        .output()
        .expect("bash");
    std::fs::remove_dir_all(&dir).unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_commands_and_flag_values() {
    assert_eq!(complete(&["kerno", "pref"]), ["preflight"]);
    assert_eq!(
        complete(&["kerno", "doctor", "--output", ""]),
        ["pretty", "json", "html"]
    );
    let shells = complete(&["kerno", "completions", ""]);
    for sh in ["bash", "zsh", "fish"] {
        assert!(shells.contains(&sh.to_string()), "{shells:?}");
    }
    assert!(!shells.contains(&"doctor".to_string()), "{shells:?}");
    assert!(complete(&["kerno", "doctor", "--ex"]).contains(&"--exit-code".to_string()));
    for shell in ["zsh", "fish"] {
        let o = kerno(&["completions", shell]);
        assert!(o.status.success() && String::from_utf8_lossy(&o.stdout).contains("preflight"));
    }
}

#[test]
fn man_pages_come_from_the_clap_definitions() {
    let o = kerno(&["man"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(page.contains(".TH kerno 1"), "{page}");
    assert!(
        page.contains("preflight") && page.contains("\\-\\-log\\-format"),
        "{page}"
    );
    let dir = std::env::temp_dir().join(format!("kerno-man-{}", std::process::id()));
    let o = kerno(&["man", "--out", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    for c in commands() {
        let p = std::fs::read_to_string(dir.join(format!("kerno-{c}.1")))
            .unwrap_or_else(|e| panic!("kerno-{c}.1: {e}"));
        assert!(p.contains(&format!(".TH kerno-{c} 1")), "{p}");
    }
    assert!(dir.join("kerno.1").is_file());
    // man(1) renders it (man-db).
    let m = Command::new("man")
        .arg("-l")
        .arg(dir.join("kerno-preflight.1"))
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man (man-db)");
    let shown = String::from_utf8_lossy(&m.stdout);
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    assert!(
        shown.contains("kerno-preflight") && shown.contains("--listen"),
        "{shown}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `kerno args` as an unprivileged user (nobody, no capabilities) when the tests run as root.
fn kerno_unprivileged(args: &[&str]) -> Output {
    if unsafe { libc::geteuid() } != 0 {
        return kerno(args);
    }
    Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_kerno"))
        .args(args)
        .env_remove("KERNO_CONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("setpriv (util-linux)")
}

#[test]
fn preflight_names_every_tracepoint_and_fails_without_capabilities() {
    let o = kerno_unprivileged(&["preflight", "--listen", "127.0.0.1:0", "-o", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["ok"], false);
    let checks = v["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    // Each tracepoint of the probes' own table, once.
    for d in kerno_probes::Domain::ALL {
        for tp in d.tracepoints() {
            let n = format!("tracepoint {tp}");
            assert_eq!(
                names.iter().filter(|x| **x == n).count(),
                1,
                "{n} in {names:?}"
            );
        }
    }
    for n in [
        "kernel",
        "btf",
        "tracefs",
        "capabilities",
        "bpf syscall",
        "cgroup",
        "host mounts",
        "agent port",
        "memlock",
    ] {
        assert!(names.contains(&n), "{n} in {names:?}");
    }
    let caps = checks.iter().find(|c| c["name"] == "capabilities").unwrap();
    assert_eq!(caps["verdict"], "fail");
    assert!(
        caps["detail"]
            .as_str()
            .unwrap()
            .contains("CAP_BPF and CAP_PERFMON"),
        "{caps}"
    );
    for c in checks {
        if c["verdict"] != "pass" {
            assert!(
                c["fix"].as_str().is_some_and(|f| !f.is_empty()),
                "no fix: {c}"
            );
        }
    }
    assert_eq!(
        v["failed"],
        checks.iter().filter(|c| c["verdict"] == "fail").count()
    );
    // The port taken: a FAIL naming the process that holds it.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let o = kerno(&["preflight", "--listen", &addr, "-o", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    let port = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "agent port")
        .unwrap()
        .clone();
    assert_eq!(port["verdict"], "fail", "{port}");
    assert!(
        port["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("pid {}", std::process::id())),
        "{port}"
    );
    assert_eq!(o.status.code(), Some(1));
    drop(l);
    let o = kerno(&["preflight", "--listen", "nonsense"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn preflight_text_unprivileged() {
    let o = kerno_unprivileged(&["preflight", "--listen", "127.0.0.1:0"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    // What depends on the machine, not on being unprivileged, is redacted.
    insta::with_settings!({filters => vec![
        (r"(PASS|WARN|FAIL)  (kernel +)\S+ .*", "[..]  $2[RELEASE]"),
        (r"(PASS|WARN|FAIL)  (btf +).*", "[..]  $2[BTF]"),
        (r"(PASS|WARN|FAIL)  (lockdown +).*", "[..]  $2[LOCKDOWN]"),
        (r"(PASS|WARN|FAIL)  (cgroup +).*", "[..]  $2[CGROUP]"),
        (r"(PASS|WARN|FAIL)  (host mounts +).*", "[..]  $2[HOST MOUNTS]"),
        (r"(PASS|WARN|FAIL)  (memlock +).*", "[..]  $2[MEMLOCK]"),
        (r"\n +fix: .*(CONFIG_DEBUG_INFO_BTF|lockdown=|cgroup2|memory controller|LimitMEMLOCK|KERNO_HOST_ROOT|read-only|hostPID|5.8 or later kernel).*", ""),
        (r"\d+ passed, \d+ warnings, \d+ failed", "[N] passed, [N] warnings, [N] failed"),
    ]}, {
        insta::assert_snapshot!("preflight_unprivileged", text);
    });
}

#[test]
fn no_color_is_honoured_on_a_terminal() {
    // script(1) gives kerno a terminal: colours there, none with NO_COLOR or --no-color.
    let run = |env_no_color: bool, flag: bool| -> String {
        let mut cmd = format!(
            "{} preflight --listen 127.0.0.1:0",
            env!("CARGO_BIN_EXE_kerno")
        );
        if flag {
            cmd.push_str(" --no-color");
        }
        let mut c = Command::new("script");
        c.args(["-qec", &cmd, "/dev/null"]).env_remove("NO_COLOR");
        if env_no_color {
            c.env("NO_COLOR", "1");
        }
        String::from_utf8_lossy(&c.output().expect("script (util-linux)").stdout).into_owned()
    };
    assert!(
        run(false, false).contains("\x1b["),
        "no colour on a terminal"
    );
    assert!(!run(true, false).contains("\x1b["), "NO_COLOR not honoured");
    assert!(
        !run(false, true).contains("\x1b["),
        "--no-color not honoured"
    );
}

#[test]
fn rules_list_every_threshold_from_the_rules_declarations() {
    let o = kerno(&["rules"]);
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!("rules", String::from_utf8_lossy(&o.stdout));
    // An override shows, with the default beside it.
    let o = kerno(&["rules", "-t", "runq_p99_ms=7.5"]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.lines().any(|l| l.split_whitespace().collect::<Vec<_>>()
            == ["runq_p99_ms", "7.5", "ms", "[default", "5]"]),
        "{out}"
    );
}

#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kerno"))
        .arg("rules")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader goes away before kerno writes
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    child.wait().unwrap();
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn bad_flags_are_usage_errors_without_panics() {
    for (args, needle) in [
        (&["doctor", "--duration", "10y"][..], "--duration"),
        (&["doctor", "--duration", "10m"][..], "--duration"),
        (&["doctor", "--duration", "0s"][..], "--duration"),
        (&["doctor", "-d", "99999999999999999999"][..], "too long"),
        (&["doctor", "-d", "6000000000000000h"][..], "too long"),
        (
            &["start", "--window", "99999999999999999999"][..],
            "--window",
        ),
        (
            &["chaos", "--induce", "cpu", "-d", "6000000000000000h"][..],
            "duration",
        ),
        (
            &["start", "--otlp-endpoint", "collector:4318"][..],
            "export.otlp.endpoint",
        ),
        (
            &["start", "--otlp-interval", "0s"][..],
            "export.otlp.interval",
        ),
        (&["start", "--otlp-interval", "soon"][..], "--otlp-interval"),
        (&["doctor", "--output", "xml"][..], "xml"),
        (&["doctor", "--threshold", "nope=1"][..], "nope"),
        (
            &["doctor", "--threshold", "syscall_p99_ms"][..],
            "KEY=VALUE",
        ),
        (
            &["doctor", "--threshold", "runq_p99_ms=fast"][..],
            "runq_p99_ms",
        ),
        (&["doctor", "--domains", "syscalls,bogus"][..], "bogus"),
        (&["doctor", "--bogus-flag"][..], "--bogus-flag"),
        (&["frobnicate"][..], "frobnicate"),
    ] {
        let o = kerno(args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(
            err.contains(needle),
            "{args:?} should mention {needle}: {err}"
        );
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn bad_config_files_name_the_file_or_key() {
    let dir = std::env::temp_dir().join(format!("kerno-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "thresholds:\n  syscall_p99_msec: 3\n").unwrap();
    let o = kerno(&["doctor", "--config", bad.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("bad.yaml") && stderr(&o).contains("syscall_p99_msec"),
        "{}",
        stderr(&o)
    );

    let o = kerno(&["doctor", "--config", "/nonexistent/kerno.yaml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("/nonexistent/kerno.yaml"),
        "{}",
        stderr(&o)
    );

    let o = kerno(&["doctor", "--from", "/nonexistent/window.json"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/window.json"),
        "{}",
        stderr(&o)
    );

    let junk = dir.join("junk.json");
    std::fs::write(&junk, "{\"schema\": 1, \"host\": 7}").unwrap();
    let o = kerno(&["doctor", "--from", junk.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("junk.json") && stderr(&o).contains("host"),
        "{}",
        stderr(&o)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn not_root_doctor_reports_what_it_can_and_names_the_capabilities() {
    // A plain user: no probes, the procfs domains, and each probe domain named with the
    // capabilities it needs, instead of a refusal (root_privileges tests the rest).
    let o = kerno_unprivileged(&[
        "doctor",
        "--duration",
        "1s",
        "--domains",
        "syscalls,memory",
        "-o",
        "json",
        "--standalone",
    ]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON");
    assert_eq!(v["degraded"][0]["domain"], "syscalls", "{v:#}");
    assert!(
        v["degraded"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("needs CAP_BPF and CAP_PERFMON"),
        "{v:#}"
    );
    assert_eq!(v["degraded"].as_array().unwrap().len(), 1, "{v:#}");
    assert!(v["signals"]["memory"]["total_bytes"].as_u64().unwrap() > 0);
}

fn kerno_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_kerno"))
        .args(args)
        .env_remove("KERNO_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run kerno");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    out
}

/// A pod's OOM kill as the kernel reports it (its cgroup names the pod), a hung task with
/// its stack, a suppressed burst of I/O errors, and a line nobody knows.
const EXPLAIN_INPUT: &str = "\
[ 5011.902114] java invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=936
[ 5011.902150] CPU: 1 UID: 1000 PID: 4121 Comm: java Not tainted 6.18.44 #1
[ 5011.902199] memory: usage 1048576kB, limit 1048576kB, failcnt 112
[ 5011.903001] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=x,mems_allowed=0,oom_memcg=/kubepods/burstable/pod7c1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b,task_memcg=/kubepods/burstable/pod7c1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/9a8b7c6d5e4f3a2b1c0d9a8b7c6d5e4f3a2b1c0d9a8b7c6d5e4f3a2b1c0d9a8b,task=java,pid=4121,uid=1000
[ 5011.903122] Memory cgroup out of memory: Killed process 4121 (java) total-vm:4194304kB, anon-rss:1043788kB, file-rss:19456kB, shmem-rss:0kB, UID:1000 pgtables:2448kB oom_score_adj:936
[ 5200.000001] I/O error, dev sdb, sector 81920 op 0x0:(READ) flags 0x0 phys_seg 8 prio class 0
[ 5205.000001] blk_print_req_error: 9 callbacks suppressed
[ 5205.000002] I/O error, dev sdb, sector 81928 op 0x0:(READ) flags 0x0 phys_seg 8 prio class 0
[ 5300.000001] some_driver: frobnicated the widget
";

#[test]
fn explain_text_input_pretty_and_json() {
    let help = kerno(&["explain", "--help"]);
    assert!(help.status.success());
    insta::assert_snapshot!("explain_help", String::from_utf8_lossy(&help.stdout));

    let o = kerno_stdin(&["explain"], EXPLAIN_INPUT.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!("explain_pretty", String::from_utf8_lossy(&o.stdout));

    let o = kerno_stdin(&["explain", "-o", "json"], EXPLAIN_INPUT.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    insta::assert_json_snapshot!("explain_json", v);
    assert_eq!(
        v["unknown"][0]["text"],
        "some_driver: frobnicated the widget"
    );

    // A message as arguments, words joined.
    let o = kerno(&[
        "explain",
        "nf_conntrack:",
        "table",
        "full,",
        "dropping",
        "packet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!("explain_argument", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn explain_unknown_and_binary_input_answers_clearly() {
    let o = kerno(&["explain", "hello from user space"]);
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!("explain_unknown", String::from_utf8_lossy(&o.stdout));

    let mut garbage: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    garbage.extend_from_slice(b"\n\xff\xfe\x00\x01\n");
    let o = kerno_stdin(&["explain"], &garbage);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("not text (binary data, skipped)"), "{out}");
    assert!(!stderr(&o).contains("panicked"));

    let o = kerno_stdin(&["explain"], b"");
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("Nothing to explain"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn explain_rule_shows_its_declared_thresholds() {
    let o = kerno(&["explain", "--rule", "fd-leak"]);
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!("explain_rule_fd_leak", String::from_utf8_lossy(&o.stdout));
    // The values in force, with the default beside a changed one.
    let o = kerno(&[
        "explain",
        "--rule",
        "fd-leak",
        "-o",
        "json",
        "-t",
        "fd_growth_per_sec=25",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["thresholds"][0]["key"], "fd_growth_per_sec");
    assert_eq!(v["thresholds"][0]["value"], 25.0);
    assert_eq!(v["thresholds"][0]["default"], 10.0);
    assert!(!v["when_it_fires"].as_array().unwrap().is_empty());
    // Every built-in rule has its own explanation.
    for id in [
        "disk-io",
        "oom-kill",
        "tcp-retransmits",
        "tcp-rtt",
        "sched-contention",
        "fd-leak",
        "syscall-latency",
        "oom-imminent",
        "syscall-errors",
        "memory-pressure",
        "network-latency",
    ] {
        let o = kerno(&["explain", "--rule", id]);
        assert!(o.status.success(), "{id}: {}", stderr(&o));
        assert!(String::from_utf8_lossy(&o.stdout).contains("When it fires:\n  1. "));
    }
}

#[test]
fn explain_usage_errors() {
    let o = kerno(&["explain", "--rule", "fd-leek"]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(
        err.contains("unknown rule \"fd-leek\"") && err.contains("fd-leak, syscall-latency"),
        "{err}"
    );
    for (args, needle) in [
        (&["explain", "--since", "soon"][..], "--since"),
        (&["explain", "--since", "0s"][..], "--since"),
        (&["explain", "--since", "1h", "some message"][..], "--since"),
        (
            &["explain", "--rule", "fd-leak", "some message"][..],
            "--rule",
        ),
        (&["explain", "-o", "xml", "x"][..], "xml"),
    ] {
        let o = kerno(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"));
    }
}

#[test]
fn explain_needs_no_root_for_text_input() {
    let run = |args: &[&str], input: &[u8]| {
        use std::io::Write;
        let mut c = if unsafe { libc::geteuid() } == 0 {
            let mut c = Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(env!("CARGO_BIN_EXE_kerno"));
            c
        } else {
            Command::new(env!("CARGO_BIN_EXE_kerno"))
        };
        let mut child = c
            .args(args)
            .env_remove("KERNO_CONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().unwrap()
    };
    let o = run(&["explain"], EXPLAIN_INPUT.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("OOM kill"));
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds.
fn iso_utc(t: u64) -> String {
    let days = (t / 86_400) as i64;
    let rem = t % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[test]
fn explain_names_the_pod_from_the_nodes_files_and_counts_its_kills() {
    let uid = "5a1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
    let id = "3c".repeat(32);
    let root = std::env::temp_dir().join(format!("kerno-explain-root-{}", std::process::id()));
    let pod_dir = root.join(format!(
        "var/log/pods/payments_checkout-api-7d9f8b6c5-x2k4q_{uid}/api"
    ));
    std::fs::create_dir_all(&pod_dir).unwrap();
    std::fs::write(pod_dir.join("0.log"), "").unwrap();
    std::fs::create_dir_all(root.join("var/log/containers")).unwrap();
    std::os::unix::fs::symlink(
        pod_dir.join("0.log"),
        root.join(format!(
            "var/log/containers/checkout-api-7d9f8b6c5-x2k4q_payments_api-{id}.log"
        )),
    )
    .unwrap();
    let cg = format!(
        "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{}.slice/cri-containerd-{id}.scope",
        uid.replace('-', "_")
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut log = String::new();
    for (i, min) in [10u64, 7, 4].iter().enumerate() {
        let stamp = iso_utc(now - min * 60);
        let pid = 7000 + i;
        log.push_str(&format!(
            "{stamp} node-1 kernel: oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=x,mems_allowed=0,oom_memcg={cg},task_memcg={cg},task=java,pid={pid},uid=1000\n\
             {stamp} node-1 kernel: Memory cgroup out of memory: Killed process {pid} (java) total-vm:4194304kB, anon-rss:1043788kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:2448kB oom_score_adj:936\n"
        ));
    }
    let o = kerno_stdin(
        &[
            "explain",
            "--host-root",
            root.to_str().unwrap(),
            "-o",
            "json",
        ],
        log.as_bytes(),
    );
    std::fs::remove_dir_all(&root).unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let g = &v["groups"][0];
    assert_eq!(v["groups"].as_array().unwrap().len(), 1, "{v:#}");
    assert_eq!(
        g["summary"],
        "3 OOM kills in payments/checkout-api-7d9f8b6c5-x2k4q (container api), last 4 min ago"
    );
    let a = &g["events"][2]["fields"]["attribution"];
    assert_eq!(a["namespace"], "payments");
    assert_eq!(a["workload"]["kind"], "Deployment");
    assert_eq!(a["workload"]["name"], "checkout-api");
    assert!(
        g["check"].as_array().unwrap().iter().any(|c| c
            .as_str()
            .unwrap()
            .starts_with("kubectl describe pod -n payments checkout-api-7d9f8b6c5-x2k4q")),
        "{}",
        g["check"]
    );
}

#[test]
fn explain_without_input_as_an_unprivileged_user_says_where_it_read() {
    if unsafe { libc::geteuid() } != 0 {
        return; // needs root to become another user; scripts/test.sh runs as root
    }
    let restricted =
        std::fs::read_to_string("/proc/sys/kernel/dmesg_restrict").is_ok_and(|s| s.trim() == "1");
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_kerno"))
        .arg("explain")
        .env_remove("KERNO_CONFIG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let err = stderr(&o);
    assert!(!err.contains("panicked"), "{err}");
    if !restricted {
        assert!(o.status.success(), "{err}");
        assert!(out.starts_with("Kernel log (/dev/kmsg"), "{out}");
        return;
    }
    // /dev/kmsg is closed to this user: the journal is read instead, or both failures are
    // named.
    match o.status.code() {
        Some(0) => assert!(
            out.starts_with("Kernel log (journalctl -k, last 60m; /dev/kmsg: ")
                && out.contains("CAP_SYSLOG"),
            "{out}"
        ),
        Some(1) => assert!(
            err.contains("/dev/kmsg")
                && err.contains("journalctl -k")
                && err.contains("CAP_SYSLOG"),
            "{err}"
        ),
        c => panic!("exit {c:?}: {err}"),
    }
}

#[test]
fn bad_stream_flags_are_usage_errors_before_anything_loads() {
    for args in [
        &["trace", "syscall", "--syscall", "frobnicate"][..],
        &["trace", "syscall", "--min-latency", "-5ms"],
        &["trace", "syscall", "--threshold=-1s"],
        &["trace", "syscall", "--pid", "4000000000"],
        &["trace", "syscall", "--pid"],
        &["trace", "syscall", "--ring-size", "5000"],
        &["trace", "syscall", "--comm", "a-name-longer-than-15"],
        &["watch", "fd", "--min-rate", "-3"],
        &["watch", "fd", "--interval", "0s"],
    ] {
        let o = Command::new(env!("CARGO_BIN_EXE_kerno"))
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
    }
}

#[test]
fn stream_help_texts() {
    for (name, args) in [
        ("trace_syscall_help", &["trace", "syscall", "--help"][..]),
        ("watch_oom_help", &["watch", "oom", "--help"]),
        ("watch_fd_help", &["watch", "fd", "--help"]),
    ] {
        let o = kerno(args);
        assert!(o.status.success(), "{}", stderr(&o));
        insta::assert_snapshot!(name, String::from_utf8_lossy(&o.stdout));
    }
}
