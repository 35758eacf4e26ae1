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
use kerno_core::readiness::{CollectorHealth, Readiness, ReadyStatus};
use serde_json::json;
use tokio::sync::watch;

use crate::{
    metrics::{Format, render},
    state::{Phase, Shared, lock},
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

async fn healthz() -> Response {
    reply(StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into())
}

/// Ready once the probes are attached and two ticks are in: a window can then be built.
/// Degraded probe domains are named with their reason; the agent is ready with them, unless
/// every probe domain failed.
async fn readyz(State(s): St) -> Response {
    let st = lock(&s.status);
    let (ticks, history) = {
        let h = lock(&s.history);
        (h.len(), h.span().as_secs_f64())
    };
    let status = match st.phase {
        Phase::Loading => ReadyStatus::Loading,
        Phase::Stopping => ReadyStatus::Stopping,
        Phase::Running => ReadyStatus::sampling(&st.probes, &st.degraded, ticks),
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
        st.degraded.clone(),
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

async fn index() -> Response {
    reply(
        StatusCode::OK,
        "text/plain; charset=utf-8",
        "kerno agent: /metrics /healthz /readyz (and /signals, /doctor, /levels on the unix socket)\n"
            .into(),
    )
}

fn public(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(shared)
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
    use super::*;

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
