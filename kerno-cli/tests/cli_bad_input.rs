//! Bad input to every number-taking flag, `KERNO_*` variable and config key, of the whole
//! class a new user finds first (overflow, NaN, infinities, negatives, empty, huge, junk
//! units): each is a usage error (exit 2) with a message naming the flag or key, never a
//! panic. Unknown `KERNO_*` variables warn once and the command goes on. No root needed.

use std::{
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

/// Run kerno with a hard time limit: a value wrongly accepted must not start a real run.
fn kerno_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kerno"));
    c.args(args)
        .env_remove("KERNO_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("run kerno");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A plain run of digits: a valid (huge) real number, though no valid duration or count.
fn digits(s: &str) -> bool {
    s.bytes().all(|c| c.is_ascii_digit())
}

const BAD: &[&str] = &[
    "99999999999999999999",
    "6000000000000000h",
    "1e309",
    "NaN",
    "inf",
    "-1",
    "-5s",
    "",
    " ",
    "10y",
    "1e400ms",
    "18446744073709551616",
];

#[test]
fn every_number_flag_rejects_the_whole_class() {
    let flags: &[(&[&str], &str)] = &[
        (&["doctor", "--duration"], "--duration"),
        (&["rules", "--threshold"], "--threshold"),
        (&["start", "--window"], "--window"),
        (&["chaos", "--induce", "cpu", "--duration"], "duration"),
        (&["predict", "--horizon"], "--horizon"),
        (&["predict", "--warn-within"], "--warn-within"),
        (&["predict", "--window"], "--window"),
        (&["predict", "--interval"], "--interval"),
        (&["predict", "--snapshots"], "snapshots"),
        (&["explain", "--since"], "--since"),
        (&["trace", "syscall", "--min-latency"], "latency"),
        (&["trace", "syscall", "--duration"], "--duration"),
        (&["trace", "syscall", "--count"], "count"),
        (&["trace", "syscall", "--ring-size"], "--ring-size"),
        (&["trace", "syscall", "--pid"], "pid"),
        (&["watch", "fd", "--min-rate"], "--min-rate"),
        (&["watch", "fd", "--interval"], "--interval"),
    ];
    let mut checked = 0;
    for (args, needle) in flags {
        for bad in BAD {
            // A real-number threshold or rate may be as large as an f64 (1e20 ms never fires);
            // infinities, NaN, negatives and junk are still refused.
            if matches!(args.last(), Some(&"--threshold") | Some(&"--min-rate")) && digits(bad) {
                continue;
            }
            let value = if args.last() == Some(&"--threshold") {
                format!("syscall_p99_ms={bad}")
            } else {
                bad.to_string()
            };
            let mut full: Vec<&str> = args.to_vec();
            full.push(&value);
            let o = kerno_env(&full, &[]);
            let err = stderr(&o);
            assert!(!err.contains("panicked"), "{full:?}: {err}");
            // `--threshold syscall_p99_ms=` with a space is the empty list; `-1` for a
            // count is read by clap as a flag: both are still exit 2.
            assert_eq!(o.status.code(), Some(2), "{full:?}: {err}");
            assert!(
                err.contains(needle)
                    || err.contains("unexpected argument")
                    || err.contains("invalid value"),
                "{full:?} should name {needle}: {err}"
            );
            checked += 1;
        }
    }
    eprintln!("{checked} bad flag values: all exit 2, no panic");
}

#[test]
fn every_duration_variable_and_config_key_rejects_the_whole_class() {
    let dir = std::env::temp_dir().join(format!("kerno-bad-input-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for var in [
        "KERNO_DURATION",
        "KERNO_WINDOW",
        "KERNO_AI_TIMEOUT",
        "KERNO_AI_CACHE_TTL",
        "KERNO_AI_MAX_TOKENS",
        "KERNO_AI_RATE_PER_MINUTE",
        "KERNO_THRESHOLD_SYSCALL_P99_MS",
        "KERNO_THRESHOLD_DISK_MIN_SAMPLES",
    ] {
        for bad in BAD.iter().filter(|b| {
            (!b.trim().is_empty() || var.starts_with("KERNO_AI_"))
                && !(var == "KERNO_THRESHOLD_SYSCALL_P99_MS"
                    && b.bytes().all(|c| c.is_ascii_digit()))
        }) {
            let o = kerno_env(&["rules"], &[(var, bad)]);
            let err = stderr(&o);
            assert!(!err.contains("panicked"), "{var}={bad}: {err}");
            assert_eq!(o.status.code(), Some(2), "{var}={bad:?}: {err}");
            assert!(err.contains(var), "{var}={bad:?}: {err}");
        }
    }
    for key in [
        "duration",
        "agent:\n  window",
        "ai:\n  timeout",
        "ai:\n  max_tokens",
        "thresholds:\n  syscall_p99_ms",
    ] {
        for bad in BAD.iter().filter(|b| {
            let number_ok = key.ends_with("syscall_p99_ms") && digits(b);
            !b.trim().is_empty() && !number_ok
        }) {
            let file = dir.join("k.yaml");
            std::fs::write(&file, format!("{key}: \"{bad}\"\n")).unwrap();
            let o = kerno_env(&["rules", "--config", file.to_str().unwrap()], &[]);
            let err = stderr(&o);
            assert!(!err.contains("panicked"), "{key}: {bad}: {err}");
            assert_eq!(o.status.code(), Some(2), "{key}: {bad:?}: {err}");
            let leaf = key.rsplit(' ').next().unwrap();
            assert!(
                err.contains(leaf) && err.contains("k.yaml"),
                "{key}: {bad:?}: {err}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_kerno_variables_warn_once_and_go_on() {
    let o = kerno_env(&["rules"], &[("KERNO_FOO", "1"), ("KERNO_DURATON", "10s")]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert!(!o.stdout.is_empty(), "the rules are listed");
    assert_eq!(err.matches("KERNO_FOO").count(), 1, "warned once: {err}");
    assert!(
        err.contains("warning") && err.contains("did you mean KERNO_DURATION?"),
        "{err}"
    );
    // A known variable with a bad value is still an error naming it.
    let o = kerno_env(
        &["rules"],
        &[("KERNO_FOO", "1"), ("KERNO_DURATION", "soon")],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("KERNO_DURATION"));
    // An unknown key in a config file stays an error with its name and line.
    let dir = std::env::temp_dir().join(format!("kerno-unknown-key-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("k.yaml");
    std::fs::write(&file, "duration: 10s\nagent:\n  windw: 5m\n").unwrap();
    let o = kerno_env(&["rules", "--config", file.to_str().unwrap()], &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("windw") && err.contains("line 3") && err.contains("k.yaml"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
