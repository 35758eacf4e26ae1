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

#[test]
fn help_texts() {
    let top = kerno(&["--help"]);
    assert!(top.status.success());
    insta::assert_snapshot!("help", String::from_utf8_lossy(&top.stdout));
    let doctor = kerno(&["doctor", "--help"]);
    assert!(doctor.status.success());
    insta::assert_snapshot!("doctor_help", String::from_utf8_lossy(&doctor.stdout));
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
fn not_root_is_a_clear_error_naming_the_capabilities() {
    if unsafe { libc::geteuid() } != 0 {
        // Already unprivileged: run directly.
        let o = kerno(&["doctor", "--duration", "1s"]);
        assert_eq!(o.status.code(), Some(1));
        assert!(stderr(&o).contains("CAP_BPF"), "{}", stderr(&o));
        return;
    }
    let o = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_kerno"))
        .args(["doctor", "--duration", "1s"])
        .output()
        .expect("setpriv (util-linux)");
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("CAP_BPF") && err.contains("CAP_PERFMON"),
        "{err}"
    );
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one clear line: {err}");
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
