//! Each provider format against a local HTTP server on loopback that checks the request
//! as the provider documents it (path, headers, JSON fields; see
//! `shared/reference/milestone2-designs.md` §6 and the providers' API references) and
//! answers with replies of the documented shapes: answers, 400/401, 429 with
//! `retry-after`, 5xx and 529, a server that never answers, malformed JSON.

use std::{
    collections::BTreeMap,
    io::{BufRead, BufReader, Read, Write},
    net::{TcpListener, TcpStream},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use kerno_ai::{Analysis, PostProcessor};
use kerno_core::{
    Attribution, Finding, Host, Process, Report, Severity, Signals, Subject, Window,
    config::{AiConfig, AiPrivacy, AiProvider},
};
use serde_json::{Value, json};

const KEY: &str = "sk-test-0123456789abcdefSECRET";
const POD: &str = "checkout-api-7d9f8b6c5-x2k4q";

/// A request as the server saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

/// What the server answers: status, extra headers, body; `None` never answers.
type Answer = Option<(u16, Vec<(&'static str, String)>, String)>;

struct Server {
    addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

fn read_request(s: &mut TcpStream) -> Option<Seen> {
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers.get("content-length")?.parse().ok()?;
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).ok()?,
    })
}

/// A server answering the n-th request with `answers[n]` (the last one repeats).
fn serve(answers: Vec<Answer>) -> Server {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", l.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for (n, conn) in l.incoming().enumerate() {
            let Ok(mut s) = conn else { continue };
            let Some(req) = read_request(&mut s) else {
                continue;
            };
            log.lock().unwrap().push(req);
            match answers[n.min(answers.len() - 1)].clone() {
                None => {
                    // Never answers: hold the connection open.
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(30));
                        drop(s);
                    });
                }
                Some((status, extra, body)) => {
                    let mut head = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                        body.len()
                    );
                    for (k, v) in extra {
                        head.push_str(&format!("{k}: {v}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = s.write_all(head.as_bytes());
                    let _ = s.write_all(body.as_bytes());
                }
            }
        }
    });
    Server { addr, seen }
}

impl Server {
    fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

fn report() -> Report {
    let process = Process {
        pid: 4121,
        comm: "checkoutd".into(),
        cgroup: Some("/kubepods/burstable/podab12/0123".into()),
        pod: Some(format!("payments/{POD}")),
        container: None,
        attribution: Attribution {
            namespace: Some("payments".into()),
            pod_name: Some(POD.into()),
            container: Some("api".into()),
            ..Attribution::default()
        },
    };
    let signals = Signals {
        host: Host {
            hostname: "worker-17".into(),
            kernel: "6.18.0".into(),
            cpus: 2,
            memory_bytes: 8 << 30,
            environment: "kubernetes".into(),
            node: "worker-17".into(),
        },
        window: Window {
            start_unix_ms: 1_796_000_000_000,
            duration_ms: 10_000,
        },
        ..Signals::default()
    };
    let f = Finding {
        rule: "fd-leak".into(),
        severity: Severity::Critical,
        title: format!(
            "process checkoutd (pid 4121) leaks file descriptors: +60/s in payments/{POD}"
        ),
        cause: "Descriptors opened and never closed; peer 10.20.30.40:5432.".into(),
        impact: "EMFILE at the limit.".into(),
        evidence: vec!["900 of 1024 open".into()],
        value: 60.0,
        threshold: 10.0,
        unit: "fd/s".into(),
        fix: vec!["ls /proc/4121/fd | wc -l".into()],
        eta_secs: Some(2.0),
        subject: Subject::process(&process),
        low_volume: false,
    };
    Report::new(signals, vec![f])
}

fn cfg(p: AiProvider, endpoint: &str, privacy: AiPrivacy) -> AiConfig {
    AiConfig {
        enabled: true,
        provider: p,
        endpoint: Some(endpoint.into()),
        privacy,
        timeout: Duration::from_secs(5),
        cache_ttl: Duration::ZERO,
        rate_per_minute: 600,
        ..AiConfig::default()
    }
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn anthropic_ok(text: &str) -> Answer {
    Some((
        200,
        vec![("request-id", "req_011CTest".into())],
        json!({"id": "msg_01Test", "type": "message", "role": "assistant",
               "model": "claude-sonnet-4-5",
               "content": [{"type": "text", "text": text}],
               "stop_reason": "end_turn", "stop_sequence": null,
               "usage": {"input_tokens": 812, "output_tokens": 96}})
        .to_string(),
    ))
}

fn anthropic_err(status: u16, kind: &str, msg: &str) -> Answer {
    Some((
        status,
        vec![("request-id", "req_011CErr".into())],
        json!({"type": "error", "error": {"type": kind, "message": msg}, "request_id": "req_011CErr"})
            .to_string(),
    ))
}

fn text_of(a: &Analysis) -> &str {
    match a {
        Analysis::Ok { text, .. } => text,
        Analysis::Failed { reason } => panic!("failed: {reason}"),
    }
}

fn reason_of(a: &Analysis) -> &str {
    match a {
        Analysis::Failed { reason } => reason,
        ok => panic!("expected a failure, got {ok:?}"),
    }
}

#[test]
fn anthropic_messages_request_and_answer() {
    let s = serve(vec![anthropic_ok(
        "The leak in <pod-1> (<comm-1>, pid <pid-1>) is the cause; restart it first.",
    )]);
    let pp = PostProcessor::with_key(
        &cfg(AiProvider::Anthropic, &s.addr, AiPrivacy::Redacted),
        Some(KEY.into()),
    )
    .unwrap();
    let a = pp.analyze(&report());
    let text = text_of(&a);
    assert_eq!(
        text,
        format!("The leak in {POD} (checkoutd, pid 4121) is the cause; restart it first.")
    );
    let r = &s.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/messages")
    );
    assert_eq!(r.headers["x-api-key"], KEY);
    assert_eq!(r.headers["anthropic-version"], "2023-06-01");
    assert_eq!(r.headers["content-type"], "application/json");
    assert!(!r.headers.contains_key("authorization"));
    let b = &r.body;
    for k in keys(b) {
        assert!(
            [
                "model",
                "max_tokens",
                "system",
                "messages",
                "temperature",
                "stop_sequences",
                "stream"
            ]
            .contains(&k.as_str()),
            "{k} is not a Messages field"
        );
    }
    assert_eq!(b["model"], "claude-sonnet-4-5");
    assert!(
        b["max_tokens"].as_u64().unwrap() > 0,
        "max_tokens is required"
    );
    assert!(b["system"].is_string(), "system is top-level, not a role");
    let m = b["messages"].as_array().unwrap();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0]["role"], "user");
    let content = m[0]["content"].as_str().unwrap();
    assert!(
        !content.contains(POD) && !content.contains("4121") && !content.contains("10.20.30.40")
    );
    assert!(content.contains("<pod-1>"), "{content}");
}

#[test]
fn openai_chat_completions_request_and_answer() {
    let s = serve(vec![Some((
        200,
        vec![],
        json!({"id": "chatcmpl-123", "object": "chat.completion", "created": 1_796_000_000,
               "model": "gpt-4o-mini",
               "choices": [{"index": 0, "message": {"role": "assistant", "content": "Restart first.", "refusal": null},
                            "logprobs": null, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 800, "completion_tokens": 3, "total_tokens": 803}})
        .to_string(),
    ))]);
    let pp = PostProcessor::with_key(
        &cfg(
            AiProvider::Openai,
            &format!("{}/v1", s.addr),
            AiPrivacy::Summary,
        ),
        Some(KEY.into()),
    )
    .unwrap();
    assert_eq!(text_of(&pp.analyze(&report())), "Restart first.");
    let r = &s.requests()[0];
    assert_eq!(
        (r.method.as_str(), r.path.as_str()),
        ("POST", "/v1/chat/completions")
    );
    assert_eq!(r.headers["authorization"], format!("Bearer {KEY}"));
    assert!(!r.headers.contains_key("x-api-key"));
    let b = &r.body;
    for k in keys(b) {
        assert!(
            [
                "model",
                "messages",
                "max_tokens",
                "max_completion_tokens",
                "temperature",
                "seed",
                "stream",
                "response_format"
            ]
            .contains(&k.as_str()),
            "{k} is not a Chat Completions field"
        );
    }
    let m = b["messages"].as_array().unwrap();
    assert_eq!(
        (m[0]["role"].as_str(), m[1]["role"].as_str()),
        (Some("system"), Some("user"))
    );
    let content = m[1]["content"].as_str().unwrap();
    // Summary mode: no text, no names, no placeholders.
    assert!(!content.contains(POD) && !content.contains("payments") && !content.contains('<'));
    assert!(content.contains("fd-leak") && content.contains("\"summary\""));
}

#[test]
fn ollama_chat_request_and_answer_without_a_key() {
    let s = serve(vec![Some((
        200,
        vec![],
        json!({"model": "llama3.1", "created_at": "2026-12-02T10:00:00Z",
               "message": {"role": "assistant", "content": "Look at <pod-1>."},
               "done": true, "done_reason": "stop", "total_duration": 1, "load_duration": 1,
               "prompt_eval_count": 1, "prompt_eval_duration": 1, "eval_count": 1, "eval_duration": 1})
        .to_string(),
    ))]);
    let pp = PostProcessor::with_key(&cfg(AiProvider::Ollama, &s.addr, AiPrivacy::Redacted), None)
        .unwrap();
    assert_eq!(text_of(&pp.analyze(&report())), format!("Look at {POD}."));
    let r = &s.requests()[0];
    assert_eq!(r.path, "/api/chat");
    assert!(!r.headers.contains_key("authorization") && !r.headers.contains_key("x-api-key"));
    assert_eq!(
        r.body["stream"], false,
        "stream defaults to true: it must be sent false"
    );
    assert!(r.body["options"]["num_predict"].as_u64().is_some());
    for k in keys(&r.body) {
        assert!(
            [
                "model",
                "messages",
                "stream",
                "format",
                "options",
                "keep_alive",
                "tools"
            ]
            .contains(&k.as_str()),
            "{k} is not an /api/chat field"
        );
    }
}

#[test]
fn client_errors_are_not_retried() {
    for (status, kind) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
    ] {
        let s = serve(vec![anthropic_err(status, kind, "bad")]);
        let pp = PostProcessor::with_key(
            &cfg(AiProvider::Anthropic, &s.addr, AiPrivacy::Summary),
            Some(KEY.into()),
        )
        .unwrap();
        let a = pp.analyze(&report());
        let r = reason_of(&a);
        assert!(
            r.contains(&format!("HTTP {status}")) && r.contains(kind),
            "{r}"
        );
        assert!(!r.contains(KEY));
        assert_eq!(s.requests().len(), 1, "{status} is not retried");
    }
}

#[test]
fn rate_limited_and_overloaded_are_retried_with_retry_after() {
    let s = serve(vec![
        Some((
            429,
            vec![("retry-after", "1".into())],
            json!({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}})
                .to_string(),
        )),
        anthropic_err(529, "overloaded_error", "Overloaded"),
        anthropic_ok("ok after retries"),
    ]);
    let pp = PostProcessor::with_key(
        &cfg(AiProvider::Anthropic, &s.addr, AiPrivacy::Summary),
        Some(KEY.into()),
    )
    .unwrap();
    let t = Instant::now();
    assert_eq!(text_of(&pp.analyze(&report())), "ok after retries");
    assert_eq!(s.requests().len(), 3);
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "1 s retry-after, then 2 s backoff: {:?}",
        t.elapsed()
    );
}

#[test]
fn server_errors_give_up_after_three_tries() {
    let s = serve(vec![anthropic_err(500, "api_error", "Internal")]);
    let mut c = cfg(AiProvider::Anthropic, &s.addr, AiPrivacy::Summary);
    c.timeout = Duration::from_secs(10);
    let pp = PostProcessor::with_key(&c, Some(KEY.into())).unwrap();
    let a = pp.analyze(&report());
    assert!(reason_of(&a).contains("after 3 tries"), "{a:?}");
    assert_eq!(s.requests().len(), 3);
}

#[test]
fn a_retry_after_longer_than_the_timeout_is_not_waited_for() {
    let s = serve(vec![Some((
        429,
        vec![("retry-after", "60".into())],
        json!({"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}).to_string(),
    ))]);
    let pp = PostProcessor::with_key(
        &cfg(AiProvider::Openai, &s.addr, AiPrivacy::Summary),
        Some(KEY.into()),
    )
    .unwrap();
    let t = Instant::now();
    let a = pp.analyze(&report());
    assert!(reason_of(&a).contains("rate_limit_exceeded"), "{a:?}");
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(s.requests().len(), 1);
}

#[test]
fn an_exhausted_quota_is_not_retried() {
    let s = serve(vec![Some((
        429,
        vec![],
        json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}}).to_string(),
    ))]);
    let pp = PostProcessor::with_key(
        &cfg(AiProvider::Openai, &s.addr, AiPrivacy::Summary),
        Some(KEY.into()),
    )
    .unwrap();
    assert!(reason_of(&pp.analyze(&report())).contains("insufficient_quota"));
    assert_eq!(s.requests().len(), 1);
}

#[test]
fn a_server_that_never_answers_times_out() {
    let s = serve(vec![None]);
    let mut c = cfg(AiProvider::Ollama, &s.addr, AiPrivacy::Summary);
    c.timeout = Duration::from_secs(2);
    let pp = PostProcessor::with_key(&c, None).unwrap();
    let t = Instant::now();
    let a = pp.analyze(&report());
    assert!(reason_of(&a).contains("within 2 s"), "{a:?}");
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
}

#[test]
fn malformed_replies_and_unreachable_servers() {
    let s = serve(vec![Some((
        200,
        vec![],
        "{\"id\": \"msg_01\", \"content\": [".into(),
    ))]);
    let pp = PostProcessor::with_key(
        &cfg(AiProvider::Anthropic, &s.addr, AiPrivacy::Summary),
        Some(KEY.into()),
    )
    .unwrap();
    assert!(reason_of(&pp.analyze(&report())).contains("not JSON"));
    let s = serve(vec![Some((
        200,
        vec![],
        json!({"choices": []}).to_string(),
    ))]);
    let pp = PostProcessor::with_key(&cfg(AiProvider::Openai, &s.addr, AiPrivacy::Summary), None)
        .unwrap();
    assert!(reason_of(&pp.analyze(&report())).contains("choices[0].message"));
    // Nothing listens on this port.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let pp = PostProcessor::with_key(
        &cfg(
            AiProvider::Ollama,
            &format!("http://127.0.0.1:{port}"),
            AiPrivacy::Summary,
        ),
        None,
    )
    .unwrap();
    assert!(reason_of(&pp.analyze(&report())).contains("cannot reach"));
}

#[test]
fn cache_hits_and_the_rate_limit() {
    let dir = std::env::temp_dir().join(format!("kerno-ai-providers-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let s = serve(vec![anthropic_ok("Restart <pod-1>.")]);
    let mut c = cfg(AiProvider::Anthropic, &s.addr, AiPrivacy::Redacted);
    c.cache_ttl = Duration::from_secs(600);
    c.cache_dir = Some(dir.clone());
    let pp = PostProcessor::with_key(&c, Some(KEY.into())).unwrap();
    let first = pp.analyze(&report());
    let second = pp.analyze(&report());
    assert!(
        matches!(first, Analysis::Ok { cached: false, .. }),
        "{first:?}"
    );
    assert!(
        matches!(second, Analysis::Ok { cached: true, .. }),
        "{second:?}"
    );
    assert_eq!(text_of(&second), format!("Restart {POD}."));
    assert_eq!(
        s.requests().len(),
        1,
        "the second answer came from the cache"
    );
    // On disk: the reply as sent, placeholders and all; no name, no key.
    for e in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        assert!(!text.contains(POD) && !text.contains(KEY), "{text}");
    }
    // Another report (a different payload) is not a hit; at 1 a minute the bucket is empty.
    let mut other = report();
    other.findings[0].value = 61.0;
    c.rate_per_minute = 1;
    c.cache_dir = Some(dir.join("rl"));
    let pp = PostProcessor::with_key(&c, Some(KEY.into())).unwrap();
    text_of(&pp.analyze(&other));
    let mut third = report();
    third.findings[0].value = 62.0;
    let a = pp.analyze(&third);
    assert!(reason_of(&a).contains("rate limit"), "{a:?}");
    assert_eq!(s.requests().len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_key_is_never_shown_and_dry_run_sends_nothing() {
    let s = serve(vec![anthropic_err(
        401,
        "authentication_error",
        "invalid x-api-key",
    )]);
    let pp = PostProcessor::with_key(
        &cfg(AiProvider::Anthropic, &s.addr, AiPrivacy::Redacted),
        Some(KEY.into()),
    )
    .unwrap();
    let dry = pp.dry_run(&report()).unwrap();
    assert!(s.requests().is_empty(), "a dry run sends nothing");
    assert!(
        dry.starts_with(&format!("POST {}/v1/messages\n", s.addr)),
        "{dry}"
    );
    assert!(dry.contains(&format!("x-api-key: <hidden: {} characters>", KEY.len())));
    assert!(!dry.contains(KEY) && !dry.contains(POD), "{dry}");
    assert!(!format!("{pp:?}").contains(KEY));
    let a = pp.analyze(&report());
    let json = serde_json::to_string(&a).unwrap();
    assert!(!json.contains(KEY), "{json}");
    // Anthropic needs a key: none is a clear error, not a request without one.
    let err = PostProcessor::with_key(
        &cfg(AiProvider::Anthropic, &s.addr, AiPrivacy::Summary),
        None,
    )
    .unwrap_err();
    assert!(err.to_string().contains("KERNO_AI_API_KEY"), "{err}");
}
