//! `kerno predict` as a user runs it, without root: help, bad flags, forecasts of saved
//! windows (leaks, a sawtooth, a steady level), the exit code, and sampling as nobody.

use std::{
    path::PathBuf,
    process::{Command, Output},
};

use kerno_core::{
    CgroupMemory, FdCount, FdCountSignals, Host, MemorySignals, Process, Series, Signals, Window,
};
use serde_json::Value;

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

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kerno-predict-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

const MIB: f64 = 1048576.0;

fn series(values: impl IntoIterator<Item = f64>) -> Series {
    Series::from_points(
        values
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i as u64 * 1000, v)),
    )
}

/// 20 one-second samples: a cgroup leaking 1 MiB/s towards 64 MiB, a process leaking a
/// descriptor every 2 s towards 256, a cgroup whose cache fills and is reclaimed, a steady
/// host.
fn window(with_leaks: bool) -> Signals {
    let leak = |from: f64, per: f64| series((0..20).map(move |i| from + per * i as f64));
    let saw = series((0..20).map(|i| (20.0 + 3.0 * (i % 5) as f64) * MIB));
    let mut cgroups = vec![CgroupMemory {
        path: "/cache-heavy".into(),
        version: 1,
        limit_bytes: 64 << 20,
        usage_bytes: 32 << 20,
        working_set_series: saw.clone(),
        usage_series: saw,
        ..CgroupMemory::default()
    }];
    let mut processes = Vec::new();
    if with_leaks {
        cgroups.push(CgroupMemory {
            path: "/kubepods/burstable/pod1234/leaky".into(),
            version: 2,
            limit_bytes: 64 << 20,
            usage_bytes: 29 << 20,
            pod: Some("shop/checkout-7d9f".into()),
            working_set_series: leak(10.0 * MIB, MIB),
            usage_series: leak(10.0 * MIB, MIB),
            ..CgroupMemory::default()
        });
        processes.push(FdCount {
            process: Process {
                pid: 4242,
                comm: "fdleaker".into(),
                ..Process::default()
            },
            open_fds: 159,
            soft_limit: Some(256),
            series: series((0..20).map(|i| 150.0 + (i / 2) as f64)),
        });
    }
    Signals {
        schema: kerno_core::SCHEMA_VERSION,
        host: Host {
            hostname: "node-1".into(),
            kernel: "6.18.0".into(),
            cpus: 4,
            memory_bytes: 8 << 30,
            environment: "bare-metal".into(),
            node: String::new(),
        },
        window: Window {
            start_unix_ms: 1_796_000_000_000,
            duration_ms: 19_000,
        },
        collector_pid: 1,
        memory: Some(MemorySignals {
            total_bytes: 8 << 30,
            available_start_bytes: 6 << 30,
            available_end_bytes: 6 << 30,
            used_series: series((0..20).map(|_| 2.0 * 1024.0 * MIB)),
            cgroups,
            ..MemorySignals::default()
        }),
        fd_counts: Some(FdCountSignals {
            processes_counted: 120,
            processes,
        }),
        ..Signals::default()
    }
}

fn saved(name: &str, s: &Signals) -> (PathBuf, String) {
    let dir = temp_dir(name);
    let f = dir.join("window.json");
    kerno_core::save_signals(s, &f).unwrap();
    let path = f.to_str().unwrap().to_string();
    (dir, path)
}

#[test]
fn predict_help() {
    let o = kerno(&["predict", "--help"]);
    assert!(o.status.success());
    insta::assert_snapshot!("predict_help", String::from_utf8_lossy(&o.stdout));
}

#[test]
fn predict_bad_flags_are_usage_errors() {
    for (args, needle) in [
        (&["predict", "--snapshots", "2"][..], "--snapshots"),
        (&["predict", "--snapshots", "many"][..], "many"),
        (&["predict", "--interval", "10ms"][..], "--interval"),
        (&["predict", "--interval", "2h"][..], "--interval"),
        (&["predict", "--interval", "soon"][..], "--interval"),
        (&["predict", "--horizon", "0s"][..], "--horizon"),
        (
            &["predict", "--horizon", "99999999999999999999"][..],
            "--horizon",
        ),
        (&["predict", "--warn-within", "x"][..], "--warn-within"),
        (&["predict", "--window", "2h"][..], "--window"),
        (&["predict", "-o", "xml"][..], "xml"),
        (
            &["predict", "--from", "w.json", "-n", "5"][..],
            "--snapshots",
        ),
        (&["predict", "--bogus"][..], "--bogus"),
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
    let o = kerno(&["predict", "--from", "/nonexistent/window.json"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("/nonexistent/window.json"));
}

#[test]
fn predict_a_saved_window_ranks_leaks_by_eta_and_ignores_the_sawtooth() {
    let (dir, f) = saved("leaks", &window(true));
    let o = kerno(&["predict", "--from", &f]);
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!("predict_leaks", String::from_utf8_lossy(&o.stdout));

    let o = kerno(&["predict", "--from", &f, "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = v["predictions"].as_array().unwrap();
    assert_eq!(p.len(), 2, "{v:#}");
    // 35 MiB left at 1 MiB/s; 97 descriptors left at 0.5/s.
    assert_eq!(p[0]["resource"], "cgroup_memory");
    assert_eq!(p[0]["pod"], "shop/checkout-7d9f");
    assert_eq!(p[0]["eta_secs"], 35.0);
    assert_eq!(p[0]["confidence"], "high");
    assert_eq!(p[1]["resource"], "fds");
    assert_eq!(p[1]["process"]["pid"], 4242);
    assert!(
        (p[1]["eta_secs"].as_f64().unwrap() - 194.0).abs() < 1.0,
        "{}",
        p[1]
    );
    assert_eq!(
        p[0]["at_unix_ms"].as_u64().unwrap(),
        1_796_000_000_000 + 19_000 + 35_000
    );
    assert_eq!(v["not_predicted"]["sawtooth"], 1, "{v:#}");
    // The host, and the 119 processes whose count never grew, are steady.
    assert_eq!(v["not_predicted"]["steady"], 120, "{v:#}");
    assert_eq!(v["watched"], 123);

    // --exit-code: 3 when something runs out within --warn-within, 0 otherwise.
    let o = kerno(&["predict", "--from", &f, "--exit-code", "-q"]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let o = kerno(&[
        "predict",
        "--from",
        &f,
        "--exit-code",
        "--warn-within",
        "30s",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // A horizon shorter than both ETAs predicts nothing.
    let o = kerno(&["predict", "--from", &f, "--horizon", "30s", "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["predictions"].as_array().unwrap().len(), 0);
    assert_eq!(v["not_predicted"]["beyond_horizon"], 2, "{v:#}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn predict_nothing_when_nothing_leaks() {
    let (dir, f) = saved("steady", &window(false));
    let o = kerno(&["predict", "--from", &f, "--exit-code"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    insta::assert_snapshot!("predict_nothing", String::from_utf8_lossy(&o.stdout));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn predict_samples_here_without_root() {
    let args = ["predict", "-n", "5", "-i", "100ms", "-o", "json", "-q"];
    let o = if unsafe { libc::geteuid() } == 0 {
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
            .output()
            .expect("setpriv (util-linux)")
    } else {
        kerno(&args)
    };
    assert!(o.status.success(), "{}", stderr(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["source"]["kind"], "snapshots");
    assert_eq!(v["source"]["snapshots"], 5);
    // Its own process at least, and the host's memory.
    assert!(v["watched"].as_u64().unwrap() >= 2, "{v:#}");
    let ms = v["window"]["duration_ms"].as_u64().unwrap();
    assert!((400..2000).contains(&ms), "{ms}");
}

#[test]
fn predict_every_resource_from_a_saved_window() {
    use kerno_core::{
        CgroupPids, ConntrackNetns, ConntrackSignals, Filesystem, FilesystemSignals, PidSignals,
    };
    let leak = |from: f64, per: f64| series((0..20).map(move |i| from + per * i as f64));
    let mut s = window(true);
    s.host.environment = "kubernetes".into();
    s.filesystem = Some(FilesystemSignals {
        filesystems: vec![Filesystem {
            mountpoint: "/var/lib/kubelet".into(),
            device: "/dev/sda1".into(),
            dev: "8:1".into(),
            fstype: "ext4".into(),
            roles: vec!["kubelet".into()],
            size_bytes: 10 << 30,
            inodes: 655_360,
            used_series: leak(8.0 * 1024.0 * MIB, 4.0 * MIB),
            inodes_used_series: leak(600_000.0, 300.0),
            ..Filesystem::default()
        }],
    });
    s.pids = Some(PidSignals {
        pid_max: 4_194_304,
        threads_max: 100_000,
        threads_series: series((0..20).map(|_| 900.0)),
        cgroups: vec![CgroupPids {
            path: "/kubepods/besteffort/pod42/forker".into(),
            version: 1,
            limit: 1024,
            current_series: leak(900.0, 2.0),
            ..CgroupPids::default()
        }],
        ..PidSignals::default()
    });
    s.conntrack = Some(ConntrackSignals {
        max: 262_144,
        namespaces: vec![ConntrackNetns {
            netns: 4026531840,
            host: true,
            count_series: leak(250_000.0, 150.0),
            ..ConntrackNetns::default()
        }],
    });
    let (dir, f) = saved("every", &s);
    let o = kerno(&["predict", "--from", &f]);
    assert!(o.status.success(), "{}", stderr(&o));
    insta::assert_snapshot!("predict_every_resource", String::from_utf8_lossy(&o.stdout));
    let o = kerno(&["predict", "--from", &f, "-o", "json"]);
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    let kinds: Vec<&str> = v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["resource"].as_str().unwrap())
        .collect();
    for k in [
        "cgroup_memory",
        "fds",
        "fs_space",
        "fs_inodes",
        "cgroup_pids",
        "conntrack",
    ] {
        assert!(kinds.contains(&k), "{k} not predicted: {kinds:?}");
    }
    // The kubelet's filesystem runs out at nodefs.available < 10%: 1 GiB left of 10 GiB.
    let fs = v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["resource"] == "fs_space")
        .unwrap();
    assert_eq!(fs["limit"], 9.0 * 1024.0 * MIB);
    let etas: Vec<f64> = v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["eta_secs"].as_f64().unwrap())
        .collect();
    assert!(
        etas.windows(2).all(|w| w[0] <= w[1]),
        "ranked by ETA: {etas:?}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
