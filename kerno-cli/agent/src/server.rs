//! The HTTP endpoints. On the TCP address: `/metrics`, `/healthz`, `/readyz`. On the unix
//! socket (root only): the same, plus `/signals` and `/doctor`, which carry process names,
//! cgroups and pods and so stay off the network.

use std::{
    sync::{Arc, atomic::Ordering},
    time::{Duration, Instant},
};

use axum::{
    Router,
    extract::{RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use kerno_core::{
    Degraded,
    readiness::{CollectorHealth, Readiness, ReadyStatus},
};
use serde_json::json;
use tokio::sync::watch;

use crate::{
    metrics::{Format, render},
    state::{Phase, STUCK_AFTER, Shared, lock},
};

type St = State<Arc<Shared>>;

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn json_reply(status: StatusCode, body: String) -> Response {
    reply(status, "application/json", body)
}

fn error(status: StatusCode, message: String) -> Response {
    json_reply(status, json!({ "error": message }).to_string())
}

async fn metrics(State(s): St, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let view = s.view();
    let body = render(view, format);
    reply(StatusCode::OK, format.content_type(), body)
}

/// Alive while loading and stopping, and while sampling as long as the sampling loop
/// completes a step within [`STUCK_AFTER`]; a stuck loop is a 503 that says so.
async fn healthz(State(s): St) -> Response {
    let running = lock(&s.status).phase == Phase::Running;
    let since = lock(&s.heartbeat).elapsed();
    if running && since > STUCK_AFTER {
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            format!(
                "stuck: the sampling loop has not completed a step for {:.0} s (it ticks every second; unhealthy after {} s)\n",
                since.as_secs_f64(),
                STUCK_AFTER.as_secs()
            ),
        );
    }
    reply(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into())
}

/// Ready once the probes are attached, two ticks are in (a window can then be built) and
/// `/metrics` has the first interval's counters. Degraded probe domains, and collectors
/// whose latest reading failed, are named with their reason; the agent is ready with them,
/// unless every probe domain failed.
async fn readyz(State(s): St) -> Response {
    let st = lock(&s.status);
    let (ticks, history) = {
        let h = lock(&s.history);
        (h.len(), h.span().as_secs_f64())
    };
    let mut degraded = st.degraded.clone();
    for c in st.collectors.iter().filter(|c| c.failing) {
        if !degraded.iter().any(|d| d.domain == c.name) {
            degraded.push(Degraded {
                domain: c.name.clone(),
                reason: format!(
                    "collector failed: {}",
                    c.last_error.as_deref().unwrap_or("unknown error")
                ),
            });
        }
    }
    // Samples count once the metrics show them: until then, warming up.
    let samples = if st.published { ticks } else { 0 };
    let status = match st.phase {
        Phase::Loading => ReadyStatus::Loading,
        Phase::Stopping => ReadyStatus::Stopping,
        Phase::Running => ReadyStatus::sampling(&st.probes, &degraded, samples),
    };
    let collectors = st
        .collectors
        .iter()
        .map(|c| CollectorHealth {
            errors: c.errors,
            last_error: c.last_error.clone(),
            name: c.name.clone(),
            samples: c.samples,
        })
        .collect();
    let body = Readiness::new(
        status,
        st.probes.clone(),
        degraded,
        collectors,
        st.started.elapsed().as_secs_f64(),
        history,
    );
    let code = if body.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_reply(
        code,
        serde_json::to_string_pretty(&body).unwrap_or_default(),
    )
}

/// The `window` query parameter: 1 s to 5 min, 30 s when absent.
fn window_param(query: Option<&str>) -> Result<Duration, String> {
    let raw = query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("window="));
    let Some(raw) = raw else {
        return Ok(Duration::from_secs(30));
    };
    let d = kerno_core::config::parse_duration(raw).map_err(|e| format!("window: {e}"))?;
    kerno_core::config::check_window("window", d).map_err(|e| e.to_string())?;
    Ok(d)
}

/// Wait (at most the window's length) until the history covers `length`, or is as long as
/// it will ever be: a doctor asking a just-started agent gets the window it asked for.
async fn covered(s: &Shared, length: Duration) {
    let deadline = Instant::now() + length + Duration::from_secs(2);
    let want = length.min(s.keep);
    while Instant::now() < deadline && !s.stop.load(Ordering::SeqCst) {
        let (phase, span) = (lock(&s.status).phase, lock(&s.history).span());
        if phase == Phase::Running && span >= want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn window(s: Arc<Shared>, query: Option<String>) -> Result<kerno_core::Signals, Response> {
    let length = window_param(query.as_deref()).map_err(|e| error(StatusCode::BAD_REQUEST, e))?;
    covered(&s, length).await;
    let built = tokio::task::spawn_blocking(move || s.window_signals(length)).await;
    match built {
        Ok(Some(signals)) => Ok(signals),
        Ok(None) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the agent has no window yet (probes loading or fewer than two samples)".into(),
        )),
        Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())),
    }
}

/// `GET /signals?window=30s`: the window's [`kerno_core::Signals`] (the doctor runs its own
/// rules over it).
async fn signals(State(s): St, RawQuery(q): RawQuery) -> Response {
    match window(s, q).await {
        Ok(signals) => json_reply(
            StatusCode::OK,
            serde_json::to_string(&signals).unwrap_or_default(),
        ),
        Err(r) => r,
    }
}

/// The `ai` query parameter: `ai=1` or `ai=true` asks for the AI analysis.
fn ai_param(query: Option<&str>) -> Result<bool, String> {
    match query
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("ai="))
    {
        None => Ok(false),
        Some(v) => kerno_core::config::parse_bool(v).map_err(|e| format!("ai: {e}")),
    }
}

/// `GET /doctor?window=30s[&ai=1]`: the JSON report with the agent's rules and
/// thresholds; with `ai=1`, and `ai.enabled` in the agent's configuration, the AI
/// post-processor's analysis in it.
async fn doctor(State(s): St, RawQuery(q): RawQuery) -> Response {
    let ai = match ai_param(q.as_deref()) {
        Ok(ai) => ai,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match window(s.clone(), q).await {
        Ok(signals) => {
            let mut report = s.evaluate(&signals);
            if ai {
                let cfg = s.ai.clone();
                let done = tokio::task::spawn_blocking(move || {
                    let analysis = if !cfg.enabled {
                        kerno_core::Analysis::Failed {
                            reason:
                                "AI is not enabled on this agent (ai.enabled in its configuration)"
                                    .into(),
                        }
                    } else {
                        kerno_ai::analyze(&cfg, &report)
                    };
                    report.analysis = Some(analysis);
                    report
                })
                .await;
                match done {
                    Ok(r) => report = r,
                    Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
                }
            }
            json_reply(StatusCode::OK, kerno_core::render::json(&report))
        }
        Err(r) => r,
    }
}

/// Whether two byte strings are equal, in a time that depends only on their lengths (a
/// token compared byte by byte with an early exit tells an attacker how much of a guess
/// was right).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Whether the request bears `Authorization: Bearer <token>`.
fn authorised(headers: &HeaderMap, token: &[u8]) -> bool {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return false;
    };
    let v = value.as_bytes();
    let Some(given) = v
        .get(..7)
        .filter(|scheme| scheme.eq_ignore_ascii_case(b"bearer "))
        .map(|_| &v[7..])
    else {
        return false;
    };
    constant_time_eq(given.trim_ascii(), token)
}

/// `GET /doctor?window=30s` on the TCP address (with `--serve-doctor`): the JSON report,
/// to requests bearing the agent's token; 401 with nothing about the node otherwise. No
/// AI there (it stays a local, explicit request); `signals=0` leaves the window's signals
/// out (the cluster doctor needs only the findings and the domains).
async fn network_doctor(State(s): St, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let ok = s
        .doctor_token
        .as_deref()
        .is_some_and(|t| authorised(&headers, t));
    if !ok {
        return (
            StatusCode::UNAUTHORIZED,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::WWW_AUTHENTICATE, "Bearer"),
            ],
            json!({ "error": "unauthorized" }).to_string(),
        )
            .into_response();
    }
    if ai_param(q.as_deref()) != Ok(false) {
        return error(
            StatusCode::BAD_REQUEST,
            "ai: the AI analysis is asked for on the agent's unix socket only".into(),
        );
    }
    let keep_signals = match q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("signals="))
    {
        None => true,
        Some(v) => match kerno_core::config::parse_bool(v) {
            Ok(b) => b,
            Err(e) => return error(StatusCode::BAD_REQUEST, format!("signals: {e}")),
        },
    };
    match window(s.clone(), q).await {
        Ok(signals) => {
            let mut report = s.evaluate(&signals);
            if !keep_signals {
                report.signals = kerno_core::Signals::default();
            }
            json_reply(StatusCode::OK, kerno_core::render::json(&report))
        }
        Err(r) => r,
    }
}

/// `GET /levels?window=1h`: the levels `kerno predict` projects (memory per cgroup and
/// host, descriptors per process), as [`kerno_core::Signals`] over the last `window` (1 s
/// to 1 h, 1 h when absent) of the agent's level history.
async fn levels(State(s): St, RawQuery(q): RawQuery) -> Response {
    let raw = q
        .as_deref()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("window="))
        .unwrap_or("1h")
        .to_string();
    let length = match kerno_core::config::parse_duration(&raw) {
        Ok(d) if d >= Duration::from_secs(1) && d <= crate::state::LEVELS_KEEP => d,
        Ok(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("window: {raw} is out of range: use 1s to 1h"),
            );
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("window: {e}")),
    };
    match tokio::task::spawn_blocking(move || s.levels_signals(length)).await {
        Ok(Some(signals)) => json_reply(
            StatusCode::OK,
            serde_json::to_string(&signals).unwrap_or_default(),
        ),
        Ok(None) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the agent has fewer than two level samples yet".into(),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn index(State(s): St) -> Response {
    let doctor = if s.doctor_token.is_some() {
        " /doctor (with the bearer token)"
    } else {
        ""
    };
    reply(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        format!(
            "kerno agent: /metrics /healthz /readyz{doctor} (and /signals, /doctor, /levels on the unix socket)\n"
        ),
    )
}

fn public(shared: Arc<Shared>) -> Router {
    let mut r = Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz));
    if shared.doctor_token.is_some() {
        r = r.route("/doctor", get(network_doctor));
    }
    r.with_state(shared)
}

fn local(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/signals", get(signals))
        .route("/doctor", get(doctor))
        .route("/levels", get(levels))
        .with_state(shared)
}

/// Serve both listeners until `stop` turns true.
pub(crate) async fn serve(
    tcp: tokio::net::TcpListener,
    unix: tokio::net::UnixListener,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let until = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|v| *v).await;
    };
    let a = axum::serve(tcp, public(shared.clone())).with_graceful_shutdown(until(stop.clone()));
    let b = axum::serve(unix, local(shared)).with_graceful_shutdown(until(stop));
    let (ra, rb) = tokio::join!(a.into_future(), b.into_future());
    ra.and(rb)
}

#[cfg(test)]
mod tests {
    use kerno_core::{Collector, CollectorError, Engine, Sample, Signals, Thresholds};

    use super::*;

    /// Its readings fail while `fail` is set.
    struct Switch(Arc<std::sync::atomic::AtomicBool>);

    impl Collector for Switch {
        fn name(&self) -> &str {
            "memory"
        }
        fn sample(&mut self) -> Result<Sample, CollectorError> {
            if self.0.load(Ordering::SeqCst) {
                return Err(CollectorError::Source {
                    source_name: "/proc/meminfo".into(),
                    reason: "gone".into(),
                });
            }
            Ok(Sample::now(0u64))
        }
        fn fill(&self, _: &[&Sample], _: &mut Signals) -> Result<(), CollectorError> {
            Ok(())
        }
    }

    fn shared(fail: &Arc<std::sync::atomic::AtomicBool>) -> Arc<Shared> {
        let s = Shared::new(
            Duration::from_secs(60),
            Duration::from_secs(30),
            Duration::from_secs(5),
            Vec::new(),
            Thresholds::default(),
        );
        let mut engine = Engine::new();
        engine.add_collector(Box::new(Switch(fail.clone())));
        s.install(engine);
        Arc::new(s)
    }

    async fn body(r: Response) -> (StatusCode, String) {
        let status = r.status();
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn healthz_fails_with_a_reason_once_the_loop_is_stuck() {
        let s = shared(&Arc::default());
        assert_eq!(
            body(healthz(State(s.clone())).await).await.0,
            StatusCode::OK
        );
        let stuck_since = Instant::now()
            .checked_sub(STUCK_AFTER + Duration::from_secs(2))
            .unwrap();
        *lock(&s.heartbeat) = stuck_since;
        let (status, text) = body(healthz(State(s.clone())).await).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(text.starts_with("stuck: the sampling loop"), "{text}");
        // Loading probes is not being stuck.
        lock(&s.status).phase = Phase::Loading;
        assert_eq!(body(healthz(State(s)).await).await.0, StatusCode::OK);
    }

    #[tokio::test]
    async fn readyz_waits_for_the_first_interval_and_names_a_failing_collector() {
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = shared(&fail);
        let mut last_log = Vec::new();
        let mut accounted = Vec::new();
        let newest = crate::state::tick(&s, &mut last_log);
        crate::state::update(&s, &mut accounted, &newest, true);
        let newest = crate::state::tick(&s, &mut last_log);
        let (status, _) = body(readyz(State(s.clone())).await).await;
        assert_eq!(
            status,
            StatusCode::SERVICE_UNAVAILABLE,
            "two ticks, no metrics"
        );
        crate::state::update(&s, &mut accounted, &newest, true);
        let (status, text) = body(readyz(State(s.clone())).await).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let r: Readiness = serde_json::from_str(&text).unwrap();
        assert_eq!(r.status, ReadyStatus::Ready);

        fail.store(true, Ordering::SeqCst);
        crate::state::tick(&s, &mut last_log);
        let r: Readiness =
            serde_json::from_str(&body(readyz(State(s.clone())).await).await.1).unwrap();
        assert_eq!(r.status, ReadyStatus::Degraded);
        assert_eq!(r.degraded.len(), 1, "{:?}", r.degraded);
        assert_eq!(r.degraded[0].domain, "memory");
        assert_eq!(
            r.degraded[0].reason,
            "collector failed: /proc/meminfo: gone"
        );
        // A reading that works again clears it.
        fail.store(false, Ordering::SeqCst);
        crate::state::tick(&s, &mut last_log);
        let r: Readiness = serde_json::from_str(&body(readyz(State(s)).await).await.1).unwrap();
        assert_eq!(r.status, ReadyStatus::Ready);
    }

    #[test]
    fn the_token_is_compared_whole() {
        assert!(constant_time_eq(b"s3cret", b"s3cret"));
        assert!(!constant_time_eq(b"s3cret", b"s3creT"));
        assert!(!constant_time_eq(b"s3cre", b"s3cret"));
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, v.parse().unwrap());
            h
        };
        assert!(authorised(&with("Bearer s3cret"), b"s3cret"));
        assert!(authorised(&with("bearer  s3cret "), b"s3cret"));
        assert!(!authorised(&with("Bearer wrong!"), b"s3cret"));
        assert!(!authorised(&with("Basic s3cret"), b"s3cret"));
        assert!(!authorised(&with("Bearer"), b"s3cret"));
        assert!(!authorised(&HeaderMap::new(), b"s3cret"));
    }

    #[test]
    fn window_parameter() {
        assert_eq!(window_param(None).unwrap(), Duration::from_secs(30));
        assert_eq!(
            window_param(Some("window=5000ms")).unwrap(),
            Duration::from_secs(5)
        );
        assert_eq!(
            window_param(Some("x=1&window=2m")).unwrap(),
            Duration::from_secs(120)
        );
        assert!(window_param(Some("window=10m")).is_err());
        assert!(window_param(Some("window=soon")).is_err());
    }

    /// The query strings the socket's `/signals`, `/doctor` and `/levels` read: any text
    /// is an answer (a window or a 400), never a panic (docs/reliability.md).
    #[test]
    fn fuzz_query_parameters() {
        let corpus: Vec<Vec<u8>> = [
            "window=30s",
            "window=5000ms&ai=1",
            "x=1&window=2m",
            "ai=true",
            "window=99999999999999999999",
            "",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        let f = kerno_fuzz::run(
            "agent-query",
            &corpus,
            &["&", "=", "window=", "ai=", "%", "%00", "+", "#"],
            kerno_fuzz::Budget::from_env(100_000, 5.0),
            |b| {
                let q = String::from_utf8_lossy(b);
                if let Ok(d) = window_param(Some(&q)) {
                    assert!(d >= Duration::from_secs(1) && d <= Duration::from_secs(300));
                }
                let _ = ai_param(Some(&q));
            },
        );
        kerno_fuzz::assert_no_panics(&f);
    }
}
