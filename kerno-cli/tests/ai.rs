//! `kerno doctor --ai` as a user runs it, on a saved window (no root), against a local
//! Ollama-format server (`POST /api/chat`, `stream: false`, as Ollama's API documents
//! it): the analysis after the report; with the provider down, the report byte-identical
//! to the one without `--ai`, one line on stderr and the same exit code; `--dry-run`
//! sends nothing; the key never shows.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Output},
    sync::{Arc, Mutex},
};

use kerno_core::{Host, OomKill, OomSignals, Process, Signals, Window};

const KEY: &str = "sk-cli-test-key-DO-NOT-SHOW-0123456789";

fn window(dir: &Path) -> PathBuf {
    let s = Signals {
        schema: kerno_core::SCHEMA_VERSION,
        host: Host {
            hostname: "worker-3".into(),
            kernel: "6.18.0".into(),
            cpus: 2,
            memory_bytes: 8 << 30,
            environment: "bare-metal".into(),
            node: String::new(),
        },
        window: Window {
            start_unix_ms: 1_796_000_000_000,
            duration_ms: 10_000,
        },
        oom: Some(OomSignals {
            kills: vec![OomKill {
                process: Process {
                    pid: 31337,
                    comm: "ledgerd".into(),
                    cgroup: Some("/kerno-test/ledger".into()),
                    ..Process::default()
                },
                at_unix_ms: 1_796_000_005_000,
                anon_rss_bytes: 900 << 20,
                cgroup_limit_bytes: Some(1 << 30),
                ..OomKill::default()
            }],
            vmstat_oom_kills: 1,
        }),
        ..Signals::default()
    };
    let path = dir.join("window.json");
    kerno_core::save_signals(&s, &path).unwrap();
    path
}

/// A one-request-at-a-time Ollama-format server; the bodies it received.
fn ollama(answer: &'static str) -> (String, Arc<Mutex<Vec<serde_json::Value>>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut s) = conn else { continue };
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            assert!(line.starts_with("POST /api/chat "), "{line}");
            let mut len = 0;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["stream"], false);
            log.lock().unwrap().push(v);
            let reply = serde_json::json!({
                "model": "llama3.1", "created_at": "2026-12-02T10:00:00Z",
                "message": {"role": "assistant", "content": answer},
                "done": true, "done_reason": "stop"
            })
            .to_string();
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (url, seen)
}

fn kerno(dir: &Path, endpoint: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kerno"))
        .args(args)
        .env_remove("KERNO_CONFIG")
        .env("HOME", dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("NO_COLOR", "1")
        .env("KERNO_AI_PROVIDER", "ollama")
        .env("KERNO_AI_ENDPOINT", endpoint)
        .env("KERNO_AI_PRIVACY", "redacted")
        .env("KERNO_AI_TIMEOUT", "3s")
        .env("KERNO_AI_API_KEY", KEY)
        .output()
        .expect("run kerno")
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kerno-cli-ai-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn out(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn err(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn analysis_follows_the_report_and_names_come_back() {
    let dir = tmp("ok");
    let w = window(&dir);
    let (url, seen) = ollama("<comm-1> (pid <pid-1>) was killed at its cgroup's limit: raise it.");
    let from = w.to_str().unwrap();
    let plain = kerno(&dir, &url, &["doctor", "--from", from]);
    let with = kerno(&dir, &url, &["doctor", "--from", from, "--ai"]);
    assert!(with.status.success(), "{}", err(&with));
    let text = out(&with);
    assert!(
        text.starts_with(&out(&plain)),
        "the report comes first, unchanged"
    );
    assert!(
        text.contains("Analysis (AI: ollama llama3.1, privacy redacted; advice, not a finding)"),
        "{text}"
    );
    assert!(text.contains("ledgerd (pid 31337) was killed"), "{text}");
    let sent = seen.lock().unwrap()[0].to_string();
    assert!(
        !sent.contains("ledgerd") && !sent.contains("31337") && !sent.contains("worker-3"),
        "{sent}"
    );
    // JSON: the analysis, and the same answer from the cache the second time.
    let j = kerno(
        &dir,
        &url,
        &["doctor", "--from", from, "--ai", "-o", "json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["analysis"]["status"], "ok");
    assert_eq!(v["analysis"]["cached"], true);
    assert_eq!(seen.lock().unwrap().len(), 1);
    for o in [&plain, &with, &j] {
        assert!(!out(o).contains(KEY) && !err(o).contains(KEY));
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_failing_provider_leaves_the_report_as_it_is() {
    let dir = tmp("down");
    let w = window(&dir);
    let from = w.to_str().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let plain = kerno(&dir, &url, &["doctor", "--from", from, "--exit-code"]);
    let with = kerno(
        &dir,
        &url,
        &["doctor", "--from", from, "--exit-code", "--ai"],
    );
    assert_eq!(plain.status.code(), Some(3), "{}", err(&plain));
    assert_eq!(
        with.status.code(),
        plain.status.code(),
        "the exit code is the report's"
    );
    assert_eq!(out(&with), out(&plain), "byte-identical report");
    let (with_err, plain_err) = (err(&with), err(&plain));
    let extra: Vec<&str> = with_err
        .lines()
        .filter(|l| !plain_err.contains(l))
        .collect();
    assert_eq!(extra.len(), 1, "one line says why: {extra:?}");
    assert!(
        extra[0].starts_with("kerno: no AI analysis: cannot reach"),
        "{extra:?}"
    );
    let j = kerno(
        &dir,
        &url,
        &["doctor", "--from", from, "--ai", "-o", "json"],
    );
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["analysis"]["status"], "failed");
    assert!(
        v["analysis"]["reason"]
            .as_str()
            .unwrap()
            .contains("cannot reach")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn dry_run_prints_the_request_and_sends_nothing() {
    let dir = tmp("dry");
    let w = window(&dir);
    let from = w.to_str().unwrap();
    let (url, seen) = ollama("unused");
    let o = kerno(&dir, &url, &["doctor", "--from", from, "--ai", "--dry-run"]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.starts_with(&format!("POST {url}/api/chat\n")),
        "{text}"
    );
    assert!(
        text.contains("\"stream\": false") && text.contains("<comm-1>"),
        "{text}"
    );
    assert!(!text.contains("ledgerd") && !text.contains(KEY));
    assert!(err(&o).contains("nothing was sent"));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(seen.lock().unwrap().is_empty());
    // Without --ai, --dry-run is a usage error.
    let o = kerno(&dir, &url, &["doctor", "--from", from, "--dry-run"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("add --ai"), "{}", err(&o));
    // A bad setting is a usage error naming it.
    let o = Command::new(env!("CARGO_BIN_EXE_kerno"))
        .args(["doctor", "--from", from, "--ai"])
        .env("KERNO_AI_PRIVACY", "everything")
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(err(&o).contains("KERNO_AI_PRIVACY"), "{}", err(&o));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The `connect()` calls of `kerno args...` to internet addresses, as strace sees them.
fn inet_connects(dir: &Path, endpoint: &str, args: &[&str]) -> Vec<String> {
    let trace = dir.join("connects.trace");
    let mut full = vec![
        "-f",
        "-qq",
        "-e",
        "trace=connect",
        "-o",
        trace.to_str().unwrap(),
    ];
    full.push(env!("CARGO_BIN_EXE_kerno"));
    full.extend_from_slice(args);
    let o = Command::new("strace")
        .args(&full)
        .env_remove("KERNO_CONFIG")
        .env("HOME", dir)
        .env("XDG_CACHE_HOME", dir.join("cache"))
        .env("KERNO_AI_PROVIDER", "ollama")
        .env("KERNO_AI_ENDPOINT", endpoint)
        .env("KERNO_AI_CACHE_TTL", "0s")
        .output()
        .expect("strace (scripts/setup.sh installs it)");
    assert!(
        o.status.success() || o.status.code() == Some(3),
        "{}",
        err(&o)
    );
    std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter(|l| l.contains("AF_INET"))
        .map(String::from)
        .collect()
}

/// With AI off, a doctor opens no network connection, even with a provider configured and
/// listening; with `--ai`, the observer sees the one it makes (so it would see others).
#[test]
fn no_connection_without_ai_seen_by_an_observer() {
    let dir = tmp("observer");
    let w = window(&dir);
    let from = w.to_str().unwrap();
    let (url, seen) = ollama("fine");
    let off = inet_connects(&dir, &url, &["doctor", "--from", from, "-o", "json"]);
    assert!(off.is_empty(), "connections with AI off: {off:?}");
    let off = inet_connects(&dir, &url, &["doctor", "--from", from, "--ai", "--dry-run"]);
    assert!(off.is_empty(), "connections in a dry run: {off:?}");
    let on = inet_connects(&dir, &url, &["doctor", "--from", from, "--ai"]);
    let port = url.rsplit(':').next().unwrap();
    assert_eq!(on.len(), 1, "{on:?}");
    assert!(on[0].contains(&format!("sin_port=htons({port})")), "{on:?}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `kerno explain --ai`: only the lines the knowledge base does not know are sent
/// (redacted), the known ones are explained offline; `summary` mode sends no text, so it
/// says it cannot ask about log lines.
#[test]
fn explain_sends_only_unknown_lines() {
    let dir = tmp("explain");
    let (url, seen) = ollama("<comm-1> on <ip-1> is a vendor driver message: harmless.");
    let known = "Out of memory: Killed process 4121 (java) total-vm:100kB, anon-rss:90kB, file-rss:0kB, shmem-rss:0kB, UID:1000 pgtables:8kB oom_score_adj:0";
    let unknown = r#"frobnicator: comm="vendord" peer 10.9.8.7 said hello"#;
    let lines = format!("{known}\n{unknown}\n");
    let o = kerno(&dir, &url, &["explain", "--ai", &lines]);
    assert!(o.status.success(), "{}", err(&o));
    let text = out(&o);
    assert!(
        text.contains("Analysis of the unknown lines (AI: ollama"),
        "{text}"
    );
    assert!(
        text.contains("vendord on 10.9.8.7 is a vendor driver message"),
        "{text}"
    );
    let sent = seen.lock().unwrap();
    assert_eq!(sent.len(), 1);
    let content = sent[0]["messages"][1]["content"].as_str().unwrap();
    assert!(
        content.contains("frobnicator") && !content.contains("vendord"),
        "{content}"
    );
    assert!(
        !content.contains("10.9.8.7") && !content.contains("Killed process"),
        "{content}"
    );
    drop(sent);
    // JSON carries the analysis too.
    let j = kerno(&dir, &url, &["explain", "--ai", "-o", "json", &lines]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(v["analysis"]["status"], "ok", "{v}");
    assert_eq!(
        v["analysis"]["cached"], true,
        "the same lines: the cached answer"
    );
    // Known lines only: nothing to ask.
    let o = kerno(&dir, &url, &["explain", "--ai", known]);
    assert!(err(&o).contains("nothing was sent"), "{}", err(&o));
    // Summary mode cannot ask about text.
    let o = Command::new(env!("CARGO_BIN_EXE_kerno"))
        .args(["explain", "--ai", unknown])
        .env_remove("KERNO_CONFIG")
        .env("HOME", &dir)
        .env("KERNO_AI_PROVIDER", "ollama")
        .env("KERNO_AI_ENDPOINT", &url)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(err(&o).contains("summary sends no text"), "{}", err(&o));
    assert_eq!(seen.lock().unwrap().len(), 1, "no request in summary mode");
    std::fs::remove_dir_all(&dir).unwrap();
}
