//! A real OTLP/HTTP receiver for tests, with no Collector: axum on 127.0.0.1:0 serving
//! `POST /v1/metrics` and `POST /v1/logs`, decoding the protobuf bodies with
//! opentelemetry-proto and answering as the OTLP/HTTP specification says (200 with an
//! `Export*ServiceResponse`, 400 on a body that does not decode). It can be told to fail
//! (an HTTP status) or to be slow, and stops (closing its port) when dropped.
//!
//! Shared by the agent's unit tests and the root tests of `kerno start` (included with
//! `#[path]`).
#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use opentelemetry_proto::tonic::collector::{
    logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse},
    metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse},
};
use prost::Message;

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Accept and decode.
    Ok,
    /// Answer every request with this status (nothing is kept).
    Status(u16),
    /// Wait this long before answering (and keep what came).
    Slow(Duration),
}

/// One request as it arrived.
#[derive(Clone, Debug)]
pub struct Seen<T> {
    pub at: Instant,
    pub content_type: String,
    pub headers: Vec<(String, String)>,
    /// The body's size, bytes.
    pub bytes: usize,
    pub request: T,
}

#[derive(Default)]
struct Inner {
    mode: Mutex<Option<Mode>>,
    metrics: Mutex<Vec<Seen<ExportMetricsServiceRequest>>>,
    logs: Mutex<Vec<Seen<ExportLogsServiceRequest>>>,
    /// Every request, kept or not (path, when).
    hits: Mutex<Vec<(String, Instant)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A running receiver.
pub struct Receiver {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

fn headers_of(h: &HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect()
}

async fn answer<Req: Message + Default, Resp: Message + Default>(
    inner: &Inner,
    path: &str,
    headers: &HeaderMap,
    body: &Bytes,
    keep: impl FnOnce(Seen<Req>),
) -> Response {
    lock(&inner.hits).push((path.to_string(), Instant::now()));
    let mode = lock(&inner.mode).unwrap_or(Mode::Ok);
    match mode {
        Mode::Status(s) => {
            return (
                StatusCode::from_u16(s).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
                "told to fail",
            )
                .into_response();
        }
        Mode::Slow(d) => tokio::time::sleep(d).await,
        Mode::Ok => {}
    }
    let request = match Req::decode(body.as_ref()) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    keep(Seen {
        at: Instant::now(),
        content_type: headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string(),
        headers: headers_of(headers),
        bytes: body.len(),
        request,
    });
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Resp::default().encode_to_vec(),
    )
        .into_response()
}

async fn metrics(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let i = inner.clone();
    answer::<ExportMetricsServiceRequest, ExportMetricsServiceResponse>(
        &inner,
        "/v1/metrics",
        &headers,
        &body,
        move |s| lock(&i.metrics).push(s),
    )
    .await
}

async fn logs(State(inner): State<Arc<Inner>>, headers: HeaderMap, body: Bytes) -> Response {
    let i = inner.clone();
    answer::<ExportLogsServiceRequest, ExportLogsServiceResponse>(
        &inner,
        "/v1/logs",
        &headers,
        &body,
        move |s| lock(&i.logs).push(s),
    )
    .await
}

impl Receiver {
    /// Listen on a free loopback port.
    pub fn start() -> Receiver {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let inner = Arc::new(Inner::default());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state = inner.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                let app = Router::new()
                    .route("/v1/metrics", post(metrics))
                    .route("/v1/logs", post(logs))
                    .with_state(state);
                // Stopping drops every connection at once, as a receiver that goes down does.
                tokio::select! {
                    _ = axum::serve(listener, app).into_future() => {}
                    _ = rx => {}
                }
            });
            // Connections still open (a slow answer sleeping) are dropped with the runtime.
            rt.shutdown_background();
        });
        Receiver {
            addr,
            inner,
            stop: Some(tx),
            thread: Some(thread),
        }
    }

    /// The base URL to give the exporter.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_mode(&self, m: Mode) {
        *lock(&self.inner.mode) = Some(m);
    }

    pub fn metrics(&self) -> Vec<Seen<ExportMetricsServiceRequest>> {
        lock(&self.inner.metrics).clone()
    }

    pub fn logs(&self) -> Vec<Seen<ExportLogsServiceRequest>> {
        lock(&self.inner.logs).clone()
    }

    /// How many requests came to `path`, kept or not.
    pub fn hits(&self, path: &str) -> usize {
        lock(&self.inner.hits)
            .iter()
            .filter(|(p, _)| p == path)
            .count()
    }

    /// Wait up to `timeout` for `f` to hold.
    pub fn wait(&self, timeout: Duration, mut f: impl FnMut(&Receiver) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if f(self) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        f(self)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `name{k="v",...}` with the labels sorted and `le` written as Rust writes the f64: one
/// spelling for a series however it was encoded.
fn series_key(name: &str, mut labels: Vec<(String, String)>) -> String {
    for (k, v) in labels.iter_mut() {
        if k == "le" {
            let f: f64 = if v == "+Inf" {
                f64::INFINITY
            } else {
                v.parse().unwrap_or(f64::NAN)
            };
            *v = format!("{f:?}");
        }
    }
    labels.sort();
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// The Prometheus name of an OTLP metric, as a Collector's Prometheus exporter writes it:
/// the unit's suffix, and `_total` for a monotonic sum.
pub fn prometheus_name(m: &opentelemetry_proto::tonic::metrics::v1::Metric) -> String {
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    let mut n = m.name.clone();
    match m.unit.as_str() {
        "s" => n.push_str("_seconds"),
        "By" => n.push_str("_bytes"),
        _ => {}
    }
    if let Some(Data::Sum(s)) = &m.data
        && s.is_monotonic
    {
        n.push_str("_total");
    }
    n
}

fn attrs(a: &[opentelemetry_proto::tonic::common::v1::KeyValue]) -> Vec<(String, String)> {
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    a.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(Value::StringValue(s)) => s.clone(),
                Some(Value::IntValue(i)) => i.to_string(),
                Some(Value::DoubleValue(d)) => d.to_string(),
                Some(Value::BoolValue(b)) => b.to_string(),
                _ => String::new(),
            };
            (kv.key.clone(), v)
        })
        .collect()
}

/// A resource's attributes.
pub fn resource_attributes(req: &ExportMetricsServiceRequest) -> Vec<(String, String)> {
    req.resource_metrics
        .iter()
        .filter_map(|r| r.resource.as_ref())
        .flat_map(|r| attrs(&r.attributes))
        .collect()
}

/// A log record's attributes.
pub fn log_attributes(
    r: &opentelemetry_proto::tonic::logs::v1::LogRecord,
) -> Vec<(String, String)> {
    attrs(&r.attributes)
}

/// Every series of a metrics request, keyed as the Prometheus text format would name it
/// (histograms as cumulative `_bucket` series with `le`, `_sum` and `_count`).
pub fn otlp_series(req: &ExportMetricsServiceRequest) -> std::collections::BTreeMap<String, f64> {
    use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value};
    let mut out = std::collections::BTreeMap::new();
    let num = |v: &Option<Value>| match v {
        Some(Value::AsInt(i)) => *i as f64,
        Some(Value::AsDouble(d)) => *d,
        None => f64::NAN,
    };
    for m in req
        .resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
    {
        let name = prometheus_name(m);
        match &m.data {
            Some(Data::Sum(s)) => {
                for p in &s.data_points {
                    out.insert(series_key(&name, attrs(&p.attributes)), num(&p.value));
                }
            }
            Some(Data::Gauge(g)) => {
                for p in &g.data_points {
                    out.insert(series_key(&name, attrs(&p.attributes)), num(&p.value));
                }
            }
            Some(Data::Histogram(h)) => {
                for p in &h.data_points {
                    let base = attrs(&p.attributes);
                    let mut cum = 0u64;
                    for (i, n) in p.bucket_counts.iter().enumerate() {
                        cum += n;
                        let le = p
                            .explicit_bounds
                            .get(i)
                            .map(|b| b.to_string())
                            .unwrap_or_else(|| "+Inf".into());
                        let mut l = base.clone();
                        l.push(("le".into(), le));
                        out.insert(series_key(&format!("{name}_bucket"), l), cum as f64);
                    }
                    out.insert(
                        series_key(&format!("{name}_sum"), base.clone()),
                        p.sum.unwrap_or(f64::NAN),
                    );
                    out.insert(series_key(&format!("{name}_count"), base), p.count as f64);
                }
            }
            _ => {}
        }
    }
    out
}

/// The metric names a request carries, as Prometheus names them.
pub fn otlp_families(req: &ExportMetricsServiceRequest) -> std::collections::BTreeSet<String> {
    req.resource_metrics
        .iter()
        .flat_map(|r| &r.scope_metrics)
        .flat_map(|s| &s.metrics)
        .map(prometheus_name)
        .collect()
}

/// The families of a Prometheus text scrape (its `# TYPE` lines).
pub fn prom_families(text: &str) -> std::collections::BTreeSet<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Every series of a Prometheus text scrape, keyed as [`otlp_series`] keys them.
pub fn prom_series(text: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => continue,
        };
        let mut labels = Vec::new();
        let mut rest = rest;
        if let Some(r) = rest.strip_prefix('{') {
            // k="v" pairs, values with \" \\ \n escapes.
            let mut chars = r.char_indices().peekable();
            let mut end = r.len();
            loop {
                let mut k = String::new();
                for (i, c) in chars.by_ref() {
                    if c == '}' {
                        end = i + 1;
                        break;
                    }
                    if c == '=' {
                        break;
                    }
                    if c != ',' {
                        k.push(c);
                    }
                }
                if end != r.len() || k.is_empty() {
                    break;
                }
                chars.next(); // the opening quote
                let mut v = String::new();
                while let Some((_, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next().map(|(_, c)| c) {
                            Some('n') => v.push('\n'),
                            Some(o) => v.push(o),
                            None => {}
                        },
                        '"' => break,
                        o => v.push(o),
                    }
                }
                labels.push((k, v));
                if let Some((i, '}')) = chars.peek().copied() {
                    end = i + 1;
                    break;
                }
            }
            rest = &r[end..];
        }
        let Some(v) = rest.split_whitespace().next() else {
            continue;
        };
        let v = match v {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            o => o.parse().unwrap_or(f64::NAN),
        };
        out.insert(series_key(name, labels), v);
    }
    out
}
