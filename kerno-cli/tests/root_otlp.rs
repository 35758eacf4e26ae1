//! Root test: `kerno start --otlp-endpoint` for real, against a real OTLP/HTTP receiver on
//! loopback (axum, decoding protobuf with opentelemetry-proto): the pushed metrics are the
//! series `/metrics` serves at the same moment, with the node's resource attributes; an
//! induced incident (chdir errors) arrives as a log record when it starts and when it
//! stops firing; a receiver that is slow, then gone, leaves sampling and `/metrics` alone
//! and is counted in `kerno_otlp_export_failures_total`. Needs root; scripts/test.sh runs
//! it with --test-threads=1 (one kernel, one test at a time).

#[path = "../agent/tests/support/otlp_receiver.rs"]
mod receiver;
mod support;

use std::{
    collections::BTreeMap,
    process::Command,
    thread::sleep,
    time::{Duration, Instant},
};

use opentelemetry_proto::tonic::logs::v1::LogRecord;
use receiver::*;
use support::Agent;

/// Series that change between two updates of the totals (every 5 s) without a new
/// reading: per-tick collector counts, the history's length, and the exporter's own
/// counts (a push itself changes them). Every other series must match exactly.
fn moving(key: &str) -> bool {
    [
        "kerno_collector_samples_total",
        "kerno_collector_errors_total",
        "kerno_agent_history_seconds",
        "kerno_otlp_",
    ]
    .iter()
    .any(|p| key.starts_with(p))
}

fn stable(series: BTreeMap<String, f64>) -> BTreeMap<String, f64> {
    series.into_iter().filter(|(k, _)| !moving(k)).collect()
}

fn records(rx: &Receiver) -> Vec<LogRecord> {
    rx.logs()
        .into_iter()
        .flat_map(|s| s.request.resource_logs)
        .flat_map(|r| r.scope_logs)
        .flat_map(|s| s.log_records)
        .collect()
}

fn has(r: &LogRecord, k: &str, v: &str) -> bool {
    log_attributes(r).contains(&(k.to_string(), v.to_string()))
}

/// The chdir errors' finding: syscall-errors, naming chdir.
fn is_chdir(r: &LogRecord) -> bool {
    has(r, "kerno.finding.rule", "syscall-errors") && format!("{r:?}").contains("chdir")
}

fn series(text: &str, key: &str) -> f64 {
    prom_series(text).get(key).copied().unwrap_or(f64::NAN)
}

#[test]
fn root_otlp_pushes_what_metrics_serves_findings_as_logs_and_survives_a_bad_receiver() {
    let rx = Receiver::start();
    let endpoint = rx.endpoint();
    // A 10 s window: the findings window is then 10 s, so the incident stops firing soon.
    let mut agent = Agent::start(
        "otlp",
        &[
            "--window",
            "10s",
            "--otlp-endpoint",
            &endpoint,
            "--otlp-interval",
            "1s",
            "--node-name",
            "otlp-test-node",
        ],
        &[("KERNO_OTLP_TIMEOUT", "1s")],
    );
    agent.wait_ready();
    // Past the first update of the totals, so every domain's series exist.
    sleep(Duration::from_secs(6));

    // 1. Names and values: a push, and a scrape right after it, agree on every series
    //    (but the few that move between updates); a push and scrape straddling an update
    //    differ, so a few pairs are tried.
    let mut last_diff = String::new();
    let mut matched = None;
    for _ in 0..10 {
        let n = rx.metrics().len();
        assert!(
            rx.wait(Duration::from_secs(5), |r| r.metrics().len() > n),
            "no push within 5 s:\n{}",
            agent.log()
        );
        let support::Http {
            status, body: text, ..
        } = agent.get("/metrics");
        assert_eq!(status, 200);
        let push = rx.metrics().last().unwrap().clone();
        let (o, p) = (
            stable(otlp_series(&push.request)),
            stable(prom_series(&text)),
        );
        if o == p && otlp_families(&push.request) == prom_families(&text) {
            matched = Some((push, text));
            break;
        }
        let only_o: Vec<_> = o
            .iter()
            .filter(|(k, v)| p.get(*k) != Some(v))
            .take(5)
            .collect();
        let only_p: Vec<_> = p
            .iter()
            .filter(|(k, v)| o.get(*k) != Some(v))
            .take(5)
            .collect();
        last_diff = format!("OTLP only/different: {only_o:?}\n/metrics only/different: {only_p:?}");
        sleep(Duration::from_millis(300));
    }
    let Some((push, text)) = matched else {
        panic!("no push matched the scrape after it in 10 tries; last:\n{last_diff}");
    };
    assert_eq!(push.content_type, "application/x-protobuf");
    eprintln!(
        "otlp: a metrics push is {} bytes, {} series",
        push.bytes,
        otlp_series(&push.request).len()
    );
    let families = otlp_families(&push.request);
    for name in [
        "kerno_info",
        "kerno_syscall_total",
        "kerno_syscall_duration_seconds",
        "kerno_sched_delay_seconds",
        "kerno_findings_firing",
        "kerno_otlp_export_failures_total",
    ] {
        assert!(families.contains(name), "{name} not pushed: {families:?}");
    }
    // A counter with real counts in it (which syscalls the first updates saw depends on the
    // machine: the busiest one is taken).
    let calls = prom_series(&text)
        .into_iter()
        .filter(|(k, _)| k.starts_with("kerno_syscall_total{"))
        .map(|(_, v)| v)
        .fold(0.0, f64::max);
    assert!(calls > 0.0, "a stable counter with real counts: {calls}");
    let res = resource_attributes(&push.request);
    let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    for (k, v) in [
        ("service.name", "kerno"),
        ("service.version", env!("CARGO_PKG_VERSION")),
        ("k8s.node.name", "otlp-test-node"),
        ("host.name", hostname.trim()),
    ] {
        assert!(res.contains(&(k.into(), v.into())), "{k}={v}: {res:?}");
    }
    // Counters only go up, push after push.
    let pushes = rx.metrics();
    for w in pushes.windows(2) {
        let (a, b) = (otlp_series(&w[0].request), otlp_series(&w[1].request));
        for (k, v) in &a {
            if k.contains("_total{")
                && let Some(nv) = b.get(k)
            {
                assert!(nv >= v, "{k} went from {v} to {nv}");
            }
        }
    }

    // 2. An incident: chdir errors fire syscall-errors; its record comes when it starts,
    //    and another when the 10 s findings window no longer shows it.
    let t0 = Instant::now();
    let mut w = Command::new("sh")
        .args([
            "-c",
            "i=0; while [ $i -lt 3000 ]; do cd /etc/hostname 2>/dev/null; i=$((i+1)); done",
        ])
        .spawn()
        .unwrap();
    assert!(w.wait().unwrap().success());
    let firing = |r: &LogRecord| is_chdir(r) && has(r, "kerno.finding.state", "firing");
    assert!(
        rx.wait(Duration::from_secs(20), |r| records(r).iter().any(firing)),
        "no firing record for the chdir errors in 20 s: {:#?}\n{}",
        records(&rx),
        agent.log()
    );
    let fired_after = t0.elapsed();
    let rec = records(&rx).into_iter().find(firing).unwrap();
    assert!(
        rec.severity_number >= 13,
        "a warning or worse: {}",
        rec.severity_text
    );
    assert!(has(&rec, "kerno.subject.kind", "syscall") || format!("{rec:?}").contains("chdir"));
    let resolved = |r: &LogRecord| is_chdir(r) && has(r, "kerno.finding.state", "resolved");
    assert!(
        rx.wait(Duration::from_secs(30), |r| records(r).iter().any(resolved)),
        "no resolved record in 30 s: {:#?}",
        records(&rx)
    );
    eprintln!(
        "otlp: chdir errors' firing record {:.1} s after the workload started, resolved {:.1} s",
        fired_after.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );

    // 3. A slow receiver: pushes time out (1 s) and are counted; /metrics answers at once
    //    and sampling goes on.
    rx.set_mode(Mode::Slow(Duration::from_secs(30)));
    let failures = |t: &str| series(t, r#"kerno_otlp_export_failures_total{signal="metrics"}"#);
    let samples = |t: &str| {
        prom_series(t)
            .iter()
            .filter(|(k, _)| k.starts_with("kerno_collector_samples_total"))
            .map(|(_, v)| v)
            .sum::<f64>()
    };
    let before = agent.get("/metrics").body;
    let (f0, s0) = (failures(&before), samples(&before));
    assert_eq!(f0, 0.0, "no failures while the receiver was fine");
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut slowest = Duration::ZERO;
    let mut now_text = before.clone();
    while Instant::now() < deadline && failures(&now_text) < f0 + 2.0 {
        let t = Instant::now();
        let support::Http {
            status, body: text, ..
        } = agent.get("/metrics");
        slowest = slowest.max(t.elapsed());
        assert_eq!(status, 200);
        now_text = text;
        sleep(Duration::from_millis(250));
    }
    assert!(
        failures(&now_text) >= f0 + 2.0,
        "slow pushes not counted:\n{}",
        agent.log()
    );
    assert!(
        samples(&now_text) > s0,
        "sampling stopped while the receiver was slow"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "/metrics took {slowest:?} while the receiver was slow"
    );

    // 4. Gone: connection refused, counted, the agent unmoved.
    drop(rx);
    let f1 = failures(&now_text);
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && failures(&now_text) < f1 + 2.0 {
        let support::Http {
            status, body: text, ..
        } = agent.get("/metrics");
        assert_eq!(status, 200);
        now_text = text;
        sleep(Duration::from_millis(250));
    }
    assert!(failures(&now_text) >= f1 + 2.0, "{}", agent.log());
    assert_eq!(agent.get("/readyz").status, 200);
    // One warning for the whole failing streak (rate-limited), not one per push.
    let warned = agent.log().matches("OTLP export of metrics failed").count();
    assert_eq!(warned, 1, "{}", agent.log());

    // And it stops cleanly with the receiver gone.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(agent.child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(st) = agent.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            Instant::now() < deadline,
            "no stop in 20 s:\n{}",
            agent.log()
        );
        sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}:\n{}", agent.log());
}
