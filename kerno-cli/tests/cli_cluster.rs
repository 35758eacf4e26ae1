//! `kerno doctor --cluster` as a user runs it, against fake agents on loopback (no root):
//! the merged report, the exit codes of a partial, a critical and an empty answer, the
//! token sent, `KERNO_AGENTS`, and usage errors.

use std::{
    io::{Read, Write},
    net::TcpListener,
    process::{Command, Output},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

/// An agent on 127.0.0.1 answering every request with `status` and `body`; the requests
/// it got, for the test to read.
fn fake_agent(status: &'static str, body: String) -> (String, Arc<Mutex<Vec<String>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { break };
            let mut req = Vec::new();
            let mut b = [0u8; 1];
            while !req.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                req.push(b[0]);
            }
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&req).into_owned());
            let _ = write!(
                s,
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (addr, seen)
}

/// A node's JSON report with these findings (rule, severity).
fn report(node: &str, findings: &[(&str, &str)]) -> String {
    let findings: Vec<Value> = findings
        .iter()
        .map(|(rule, severity)| {
            json!({
                "rule": rule, "severity": severity, "title": format!("{rule} on {node}"),
                "cause": "c", "impact": "i", "evidence": [], "value": 20.0, "threshold": 10.0,
                "unit": "fd/s", "fix": [], "subject": {"kind": "host", "name": node, "node": node},
            })
        })
        .collect();
    let mut signals_v = kerno_core::Signals::default();
    signals_v.host.hostname = node.into();
    signals_v.host.node = node.into();
    signals_v.window.duration_ms = 10_000;
    // A report as an agent serves it: the JSON of kerno_core::Report.
    let mut r = kerno_core::Report::new(signals_v, Vec::new());
    r.findings = serde_json::from_value(Value::Array(findings)).unwrap();
    r.summary.critical = r
        .findings
        .iter()
        .filter(|f| f.severity == kerno_core::Severity::Critical)
        .count();
    kerno_core::render::json(&r)
}

fn token_file(name: &str, token: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("kerno-cl-{name}-{}", std::process::id()));
    std::fs::write(&p, format!("{token}\n")).unwrap();
    p
}

fn kerno(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_kerno"));
    c.args(args)
        .env_remove("KERNO_CONFIG")
        .env_remove("KERNO_AGENTS")
        .env_remove("KERNO_DOCTOR_TOKEN_FILE")
        .env("NO_COLOR", "1");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n{}\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn cluster_doctor_merges_partial_answers_and_exits_as_doctor_does() {
    let (a, seen_a) = fake_agent(
        "200 OK",
        report(
            "node-a",
            &[("fd-leak", "critical"), ("syscall-errors", "warning")],
        ),
    );
    let (b, _) = fake_agent("200 OK", report("node-b", &[("syscall-errors", "warning")]));
    let (denied, _) = fake_agent("401 Unauthorized", r#"{"error":"unauthorized"}"#.into());
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let tf = token_file("ok", "s3cret-token");
    let agents = format!("{a},{b},{denied},{closed}");
    let start = Instant::now();
    let o = kerno(
        &[
            "doctor",
            "--cluster",
            "--agents",
            &agents,
            "--token-file",
            tf.to_str().unwrap(),
            "-d",
            "10s",
            "-o",
            "json",
            "-q",
        ],
        &[],
    );
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(
        o.status.code(),
        Some(0),
        "partial is not an error: {}",
        show(&o)
    );
    let r: Value = serde_json::from_slice(&o.stdout).unwrap();
    let order: Vec<(&str, &str)> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap(), f["node"].as_str().unwrap()))
        .collect();
    assert_eq!(
        order,
        [
            ("fd-leak", "node-a"),
            ("syscall-errors", "node-a"),
            ("syscall-errors", "node-b")
        ]
    );
    assert_eq!(r["summary"]["warning"], 2);
    assert_eq!(r["status"], "critical");
    let missing: Vec<(&str, &str)> = r["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["observed"] == false)
        .map(|n| {
            (
                n["address"].as_str().unwrap(),
                n["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(missing.len(), 2, "{}", show(&o));
    assert!(
        missing
            .iter()
            .any(|(ad, why)| *ad == denied && why.contains("401"))
    );
    assert!(missing.iter().any(|(ad, _)| *ad == closed));
    // The agent was asked for the window, without signals, with the token.
    let req = seen_a.lock().unwrap()[0].clone();
    assert!(
        req.starts_with("GET /doctor?window=10000ms&signals=0 "),
        "{req}"
    );
    assert!(req.contains("Bearer s3cret-token"), "{req}");

    // --exit-code: a critical finding on any node is exit 3.
    let o = kerno(
        &[
            "doctor",
            "--cluster",
            "--agents",
            &agents,
            "--token-file",
            tf.to_str().unwrap(),
            "--exit-code",
            "-q",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(3), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("2 nodes of 4 answered"), "{text}");
    assert!(text.contains("node:     node-b"), "{text}");
    assert!(text.contains("2 nodes of 4 not observed"), "{text}");

    // KERNO_AGENTS names the agents when --agents does not; nobody answering is exit 1.
    let o = kerno(
        &["doctor", "--cluster", "-q"],
        &[
            ("KERNO_AGENTS", &format!("{denied},{closed}")),
            ("KERNO_DOCTOR_TOKEN_FILE", tf.to_str().unwrap()),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no agent answered"));
    assert!(String::from_utf8_lossy(&o.stdout).contains("0 nodes of 2 answered"));
    let _ = std::fs::remove_file(&tf);
}

#[test]
fn cluster_doctor_usage_errors() {
    let empty = token_file("empty", "");
    for (args, want, code) in [
        (
            &["doctor", "--cluster", "--agents", "127.0.0.1:1"][..],
            "--token-file",
            2,
        ),
        (&["doctor", "--agents", "127.0.0.1:1"][..], "--cluster", 2),
        (
            &["doctor", "--cluster", "--from", "x.json"][..],
            "cannot be used",
            2,
        ),
        (
            &[
                "doctor",
                "--cluster",
                "--token-file",
                "/t",
                "--deadline",
                "soon",
            ][..],
            "--deadline",
            2,
        ),
        (
            &[
                "doctor",
                "--cluster",
                "--token-file",
                empty.to_str().unwrap(),
            ][..],
            "empty",
            1,
        ),
        (&["start", "--serve-doctor"][..], "doctor_token_file", 2),
    ] {
        let o = kerno(args, &[]);
        assert_eq!(o.status.code(), Some(code), "{args:?}: {}", show(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(want),
            "{args:?}: {}",
            show(&o)
        );
    }
    let _ = std::fs::remove_file(&empty);
}
