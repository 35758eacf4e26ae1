//! A rule from a crate of its own gets the built-in rules' threshold mechanism: its
//! declared threshold shows in `kerno rules`, is set by `-t`, `KERNO_THRESHOLD_*` and the
//! config file, is range-checked, and changes what `doctor --from` reports.

use std::process::{Command, Output};

use kerno_core::{Signals, SyscallSignals, SyscallStat};

fn kerno(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kerno-test-rule"));
    c.args(args)
        .env("HOME", std::env::temp_dir())
        .env_remove("KERNO_CONFIG")
        .env_remove("XDG_CONFIG_HOME");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run the test binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The line of `kerno rules` that shows the threshold's value.
fn value_line(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    stdout(o)
        .lines()
        .find(|l| l.trim_start().starts_with("open_storm_per_sec"))
        .unwrap_or_else(|| panic!("no open_storm_per_sec in:\n{}", stdout(o)))
        .split_whitespace()
        .skip(1)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn the_declared_threshold_is_listed_with_its_default_unit_range_and_doc() {
    let o = kerno(&["rules"], &[]);
    let out = stdout(&o);
    assert!(
        out.contains("open-storm: descriptors are created faster"),
        "{out}"
    );
    assert_eq!(value_line(&o), "50000 calls/s");
    assert!(
        out.contains("descriptor-creating calls per second above this warn (1 to 10000000)"),
        "{out}"
    );
    // The built-in rules are still all there.
    assert!(
        out.contains("syscall_p99_ms") && out.contains("benign_errnos"),
        "{out}"
    );
}

#[test]
fn it_is_set_by_flag_env_and_config_file_in_that_order_of_precedence() {
    let dir = std::env::temp_dir().join(format!("kerno-test-rule-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("k.yaml");
    std::fs::write(&file, "thresholds:\n  open_storm_per_sec: 400\n").unwrap();
    let f = file.to_str().unwrap();
    let env = [("KERNO_THRESHOLD_OPEN_STORM_PER_SEC", "300")];

    assert_eq!(
        value_line(&kerno(&["rules", "-c", f], &[])),
        "400 calls/s [default 50000]"
    );
    assert_eq!(
        value_line(&kerno(&["rules", "-c", f], &env)),
        "300 calls/s [default 50000]"
    );
    assert_eq!(
        value_line(&kerno(
            &["rules", "-c", f, "-t", "open_storm_per_sec=200"],
            &env
        )),
        "200 calls/s [default 50000]"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bad_values_are_usage_errors_that_name_the_key_and_the_range() {
    for (args, env, want) in [
        (
            vec!["rules", "-t", "open_storm_per_sec=0"],
            vec![],
            "out of range: use 1 to 10000000",
        ),
        (
            vec!["rules", "-t", "open_storm_per_sec=lots"],
            vec![],
            "expected a number",
        ),
        (
            vec!["rules"],
            vec![("KERNO_THRESHOLD_OPEN_STORM_PER_SEC", "-5")],
            "KERNO_THRESHOLD_OPEN_STORM_PER_SEC",
        ),
    ] {
        let o = kerno(&args, &env);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn the_threshold_decides_what_a_replayed_window_reports() {
    // 10,000 openat calls in one second: below the default, above 5,000/s.
    let nr = kerno_probes_nr("openat");
    let s = Signals {
        schema: kerno_core::SCHEMA_VERSION,
        syscalls: Some(SyscallSignals {
            total_calls: 10_000,
            total_errors: 0,
            syscalls: vec![SyscallStat {
                nr,
                name: "openat".into(),
                count: 10_000,
                ..SyscallStat::default()
            }],
            ..Default::default()
        }),
        window: kerno_core::Window {
            start_unix_ms: 1_700_000_000_000,
            duration_ms: 1_000,
        },
        ..Signals::default()
    };
    let path = std::env::temp_dir().join(format!("kerno-test-rule-{}.json", std::process::id()));
    std::fs::write(&path, serde_json::to_string(&s).unwrap()).unwrap();
    let p = path.to_str().unwrap();
    let fired = |extra: &[&str]| {
        let mut args = vec!["doctor", "--from", p, "-o", "json"];
        args.extend_from_slice(extra);
        let o = kerno(&args, &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "open-storm")
    };
    assert!(!fired(&[]), "10,000/s is below the default of 50,000/s");
    assert!(fired(&["-t", "open_storm_per_sec=5000"]));
    std::fs::remove_file(&path).unwrap();
}

fn kerno_probes_nr(name: &str) -> u32 {
    kerno_probes::syscalls::number(name).expect("a known syscall")
}
