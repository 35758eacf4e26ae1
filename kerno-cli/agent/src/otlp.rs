//! OTLP export: the `/metrics` families pushed over OTLP/HTTP (protobuf) every interval,
//! and findings as log records when they start and stop firing.
//!
//! Nothing is computed here: the metrics are the same [`Family`] values `/metrics`
//! renders (so the two cannot drift), mapped one to one: counters to cumulative monotonic
//! sums, gauges to gauges, histograms to cumulative explicit-bounds histograms with the
//! same bounds as the Prometheus buckets, the info metric to a gauge of 1. Names are the
//! base names with the unit beside them (`kerno_syscall_duration`, unit `s`), which a
//! Collector's Prometheus exporter turns back into the `/metrics` names
//! (`kerno_syscall_duration_seconds`, `kerno_syscall_total`).
//!
//! The exporter runs on its own thread with its own HTTP client and a timeout: a receiver
//! that is down or slow delays only the next push, never sampling or `/metrics`. Failures
//! are counted (`kerno_otlp_export_failures_total`) and logged at most once a minute.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use kerno_core::{Finding, Host, Severity};
use opentelemetry_proto::tonic::{
    collector::{
        logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse},
        metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse},
    },
    common::v1::{AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value},
    logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber},
    metrics::v1::{
        AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
        ResourceMetrics, ScopeMetrics, Sum, metric, number_data_point,
    },
    resource::v1::Resource,
};
use prost::Message;
use thiserror::Error;

use crate::{
    metrics::{Family, Labels, OtlpCounts, Points},
    state::{Shared, lock},
};

/// The protobuf content type OTLP/HTTP speaks.
pub const CONTENT_TYPE: &str = "application/x-protobuf";

/// At most this many finding log records wait for a receiver that is down; older ones
/// are dropped first (and counted).
pub const MAX_PENDING_LOGS: usize = 1000;

/// Where and how to push.
#[derive(Clone, Debug)]
pub struct OtlpOptions {
    /// The base URL (`http://collector:4318`); `/v1/metrics` and `/v1/logs` are appended.
    pub endpoint: String,
    /// How often metrics are pushed.
    pub interval: Duration,
    /// Each request must finish within this.
    pub timeout: Duration,
    /// Extra request headers (an `Authorization` header for a hosted backend).
    pub headers: Vec<(String, String)>,
}

/// Why one push failed.
#[derive(Debug, Error)]
pub enum ExportError {
    /// No answer within the timeout.
    #[error("{url}: no answer within {secs:.1} s")]
    Timeout {
        /// The URL.
        url: String,
        /// The timeout.
        secs: f64,
    },
    /// Could not connect or send.
    #[error("{url}: {message}")]
    Transport {
        /// The URL.
        url: String,
        /// What the client said.
        message: String,
    },
    /// The receiver answered with an error status.
    #[error("{url}: HTTP {status}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The start of the body, as text.
        body: String,
    },
}

impl ExportError {
    /// Whether sending the same data again may succeed (OTLP/HTTP: 429, 502, 503, 504,
    /// and anything that never reached the receiver).
    pub fn retryable(&self) -> bool {
        match self {
            ExportError::Timeout { .. } | ExportError::Transport { .. } => true,
            ExportError::Status { status, .. } => matches!(status, 429 | 502 | 503 | 504),
        }
    }
}

/// The exporter's counts, shared with `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct OtlpStats {
    exports: [AtomicU64; 2],
    failures: [AtomicU64; 2],
    dropped_logs: AtomicU64,
}

const METRICS: usize = 0;
const LOGS: usize = 1;

impl OtlpStats {
    pub fn counts(&self) -> OtlpCounts {
        let get = |a: &[AtomicU64; 2]| [a[0].load(Ordering::Relaxed), a[1].load(Ordering::Relaxed)];
        OtlpCounts {
            exports: get(&self.exports),
            failures: get(&self.failures),
            dropped_logs: self.dropped_logs.load(Ordering::Relaxed),
        }
    }
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(v) }),
        ..KeyValue::default()
    }
}

fn kv_str(key: &str, v: impl Into<String>) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.into()))
}

fn attributes(labels: &Labels) -> Vec<KeyValue> {
    labels.iter().map(|(k, v)| kv_str(k, v.clone())).collect()
}

/// The resource every push carries: the node and host it observes, and Kerno itself.
/// `env` is the process's environment: in a pod, `POD_NAME` and `POD_NAMESPACE` (the
/// chart sets them from the downward API) name the agent's own pod, and the host is the
/// node (the pod's own hostname is the pod's name).
pub(crate) fn resource(host: &Host, env: &[(String, String)]) -> Resource {
    let node = if host.node.is_empty() {
        &host.hostname
    } else {
        &host.node
    };
    let kubernetes = host.environment == "kubernetes";
    let get = |k: &str| {
        env.iter()
            .find(|(n, v)| n == k && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_string())
    };
    let mut attributes = vec![
        kv_str("service.name", "kerno"),
        kv_str("service.version", env!("CARGO_PKG_VERSION")),
        kv_str("service.instance.id", node.clone()),
        kv_str(
            "host.name",
            if kubernetes { node } else { &host.hostname }.clone(),
        ),
        kv_str("k8s.node.name", node.clone()),
        kv_str("os.type", "linux"),
        kv_str("os.version", host.kernel.clone()),
    ];
    for (attr, var) in [
        ("k8s.pod.name", "POD_NAME"),
        ("k8s.namespace.name", "POD_NAMESPACE"),
    ] {
        if let Some(v) = get(var) {
            attributes.push(kv_str(attr, v));
        }
    }
    Resource {
        attributes,
        ..Resource::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "kerno".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..InstrumentationScope::default()
    }
}

/// The families as one OTLP request. Counters and histograms are cumulative from
/// `start_ns` (when the agent started); every point is stamped `now_ns`.
pub(crate) fn metrics_request(
    families: &[Family],
    resource: Resource,
    start_ns: u64,
    now_ns: u64,
) -> ExportMetricsServiceRequest {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let number = |labels: &Labels, v: number_data_point::Value, start: u64| NumberDataPoint {
        attributes: attributes(labels),
        start_time_unix_nano: start,
        time_unix_nano: now_ns,
        value: Some(v),
        ..NumberDataPoint::default()
    };
    let metrics = families
        .iter()
        .map(|f| {
            let data = match &f.points {
                Points::Info(labels) => metric::Data::Gauge(Gauge {
                    data_points: vec![number(labels, number_data_point::Value::AsInt(1), 0)],
                }),
                Points::Counter(series) => metric::Data::Sum(Sum {
                    data_points: series
                        .iter()
                        .map(|(l, v)| {
                            // An integer past i64::MAX cannot be sent as one; a double
                            // keeps its magnitude.
                            let v = i64::try_from(*v)
                                .map(number_data_point::Value::AsInt)
                                .unwrap_or(number_data_point::Value::AsDouble(*v as f64));
                            number(l, v, start_ns)
                        })
                        .collect(),
                    aggregation_temporality: cumulative,
                    is_monotonic: true,
                }),
                Points::Gauge(series) => metric::Data::Gauge(Gauge {
                    data_points: series
                        .iter()
                        .map(|(l, v)| number(l, number_data_point::Value::AsDouble(*v), 0))
                        .collect(),
                }),
                Points::Histogram(series) => metric::Data::Histogram(Histogram {
                    data_points: series
                        .iter()
                        .map(|(l, h)| HistogramDataPoint {
                            attributes: attributes(l),
                            start_time_unix_nano: start_ns,
                            time_unix_nano: now_ns,
                            count: h.count,
                            sum: Some(h.sum_s),
                            bucket_counts: h.buckets.iter().map(|(_, n)| *n).collect(),
                            // The last bucket is +Inf, implicit in OTLP.
                            explicit_bounds: h
                                .buckets
                                .iter()
                                .map(|(b, _)| *b)
                                .filter(|b| b.is_finite())
                                .collect(),
                            ..HistogramDataPoint::default()
                        })
                        .collect(),
                    aggregation_temporality: cumulative,
                }),
            };
            // The info metric's Prometheus name is `kerno_info`; OTLP carries names as
            // they are.
            let name = match f.points {
                Points::Info(_) => format!("{}_info", f.name),
                _ => f.name.to_string(),
            };
            Metric {
                name,
                description: f.help.into(),
                unit: f.unit.map(|u| u.ucum().to_string()).unwrap_or_default(),
                data: Some(data),
                ..Metric::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics,
                ..ScopeMetrics::default()
            }],
            ..ResourceMetrics::default()
        }],
    }
}

/// What a finding is about, across windows: its rule and subject. The value and the
/// severity may change while it fires.
type Key = (String, String, String);

fn key(f: &Finding) -> Key {
    (
        f.rule.clone(),
        f.subject.kind.clone(),
        f.subject.name.clone(),
    )
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

/// OTLP's severity for a firing finding: info is INFO, warning WARN, critical ERROR (the
/// node is failing something, not Kerno itself: FATAL would say Kerno died).
pub fn severity_number(s: Severity) -> SeverityNumber {
    match s {
        Severity::Info => SeverityNumber::Info,
        Severity::Warning => SeverityNumber::Warn,
        Severity::Critical => SeverityNumber::Error,
    }
}

/// The state of a finding a log record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FindingState {
    /// It started firing (or its severity changed).
    Firing,
    /// It stopped firing: the findings window no longer shows it.
    Resolved,
}

/// One finding as a log record. A resolved finding's record is INFO whatever the
/// finding's severity was (`kerno.finding.severity` keeps it), so a pipeline that keeps
/// WARN and above sees the incidents, not their ends.
pub(crate) fn log_record(f: &Finding, state: FindingState, now_ns: u64) -> LogRecord {
    let (number, body) = match state {
        FindingState::Firing => (severity_number(f.severity), f.title.clone()),
        FindingState::Resolved => (SeverityNumber::Info, format!("resolved: {}", f.title)),
    };
    let strings = |v: &[String]| {
        any_value::Value::ArrayValue(ArrayValue {
            values: v
                .iter()
                .map(|s| AnyValue {
                    value: Some(any_value::Value::StringValue(s.clone())),
                })
                .collect(),
        })
    };
    let mut attrs = vec![
        kv_str("kerno.finding.rule", f.rule.clone()),
        kv_str("kerno.finding.severity", severity_name(f.severity)),
        kv_str(
            "kerno.finding.state",
            match state {
                FindingState::Firing => "firing",
                FindingState::Resolved => "resolved",
            },
        ),
        kv_str("kerno.finding.title", f.title.clone()),
        kv(
            "kerno.finding.value",
            any_value::Value::DoubleValue(f.value),
        ),
        kv(
            "kerno.finding.threshold",
            any_value::Value::DoubleValue(f.threshold),
        ),
        kv_str("kerno.finding.unit", f.unit.clone()),
        kv_str("kerno.finding.cause", f.cause.clone()),
        kv("kerno.finding.evidence", strings(&f.evidence)),
        kv("kerno.finding.fix", strings(&f.fix)),
        kv_str("kerno.subject.kind", f.subject.kind.clone()),
        kv_str("kerno.subject.name", f.subject.name.clone()),
    ];
    if let Some(eta) = f.eta_secs {
        attrs.push(kv(
            "kerno.finding.eta_seconds",
            any_value::Value::DoubleValue(eta),
        ));
    }
    if let Some(p) = &f.subject.process {
        attrs.push(kv("process.pid", any_value::Value::IntValue(p.pid.into())));
        attrs.push(kv_str("process.executable.name", p.comm.clone()));
    }
    let a = &f.subject.attribution;
    for (k, v) in [
        ("k8s.namespace.name", &a.namespace),
        ("k8s.pod.name", &a.pod_name),
        ("k8s.pod.uid", &a.pod_uid),
        ("k8s.container.name", &a.container),
        ("container.id", &a.container_id),
    ] {
        if let Some(v) = v {
            attrs.push(kv_str(k, v.clone()));
        }
    }
    if let Some(c) = &f.subject.cgroup {
        attrs.push(kv_str("kerno.subject.cgroup", c.clone()));
    }
    LogRecord {
        time_unix_nano: now_ns,
        observed_time_unix_nano: now_ns,
        severity_number: number as i32,
        severity_text: number
            .as_str_name()
            .trim_start_matches("SEVERITY_NUMBER_")
            .into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(body)),
        }),
        attributes: attrs,
        event_name: "kerno.finding".into(),
        ..LogRecord::default()
    }
}

/// Which findings fire, from one findings window to the next.
#[derive(Default)]
pub(crate) struct Tracker {
    firing: BTreeMap<Key, Finding>,
}

impl Tracker {
    /// The records for what changed since the last window: findings that started firing
    /// (or changed severity), then findings that stopped.
    pub fn update(&mut self, now: &[Finding], now_ns: u64) -> Vec<LogRecord> {
        let mut out = Vec::new();
        let mut next = BTreeMap::new();
        for f in now {
            let k = key(f);
            if next.contains_key(&k) {
                continue;
            }
            match self.firing.get(&k) {
                Some(old) if old.severity == f.severity => {}
                _ => out.push(log_record(f, FindingState::Firing, now_ns)),
            }
            next.insert(k, f.clone());
        }
        for (k, f) in &self.firing {
            if !next.contains_key(k) {
                out.push(log_record(f, FindingState::Resolved, now_ns));
            }
        }
        self.firing = next;
        out
    }
}

/// Log records as one OTLP request.
pub(crate) fn logs_request(
    resource: Resource,
    records: Vec<LogRecord>,
) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource),
            scope_logs: vec![ScopeLogs {
                scope: Some(scope()),
                log_records: records,
                ..ScopeLogs::default()
            }],
            ..ResourceLogs::default()
        }],
    }
}

/// The HTTP side: one client, the two URLs, the headers.
pub(crate) struct Client {
    agent: ureq::Agent,
    timeout: Duration,
    headers: Vec<(String, String)>,
    pub metrics_url: String,
    pub logs_url: String,
}

impl Client {
    pub fn new(opts: &OtlpOptions) -> Client {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(opts.timeout))
            .http_status_as_error(false)
            .user_agent(concat!("kerno/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        let base = opts.endpoint.trim_end_matches('/');
        Client {
            agent,
            timeout: opts.timeout,
            headers: opts.headers.clone(),
            metrics_url: format!("{base}/v1/metrics"),
            logs_url: format!("{base}/v1/logs"),
        }
    }

    /// POST one encoded request; the response body (a protobuf `Export*ServiceResponse`)
    /// on 2xx.
    fn post(&self, url: &str, body: &[u8]) -> Result<Vec<u8>, ExportError> {
        let timeout = || ExportError::Timeout {
            url: url.into(),
            secs: self.timeout.as_secs_f64(),
        };
        let mut r = self.agent.post(url).header("Content-Type", CONTENT_TYPE);
        for (k, v) in &self.headers {
            r = r.header(k.as_str(), v.as_str());
        }
        let mut resp = match r.send(body) {
            Ok(resp) => resp,
            Err(ureq::Error::Timeout(_)) => return Err(timeout()),
            Err(e) => {
                return Err(ExportError::Transport {
                    url: url.into(),
                    message: e.to_string(),
                });
            }
        };
        let status = resp.status().as_u16();
        let bytes = match resp.body_mut().with_config().limit(1 << 20).read_to_vec() {
            Ok(b) => b,
            Err(ureq::Error::Timeout(_)) => return Err(timeout()),
            Err(e) if (200..300).contains(&status) => {
                return Err(ExportError::Transport {
                    url: url.into(),
                    message: format!("HTTP {status} with a body that could not be read: {e}"),
                });
            }
            Err(_) => Vec::new(),
        };
        if !(200..300).contains(&status) {
            let text: String = String::from_utf8_lossy(&bytes)
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect();
            return Err(ExportError::Status {
                url: url.into(),
                status,
                body: text,
            });
        }
        Ok(bytes)
    }

    /// Push metrics; a partial success's rejected count and message, if any.
    pub fn push_metrics(
        &self,
        req: &ExportMetricsServiceRequest,
    ) -> Result<Option<(i64, String)>, ExportError> {
        let body = self.post(&self.metrics_url, &req.encode_to_vec())?;
        Ok(ExportMetricsServiceResponse::decode(body.as_slice())
            .ok()
            .and_then(|r| r.partial_success)
            .filter(|p| p.rejected_data_points > 0 || !p.error_message.is_empty())
            .map(|p| (p.rejected_data_points, p.error_message)))
    }

    /// Push log records; a partial success's rejected count and message, if any.
    pub fn push_logs(
        &self,
        req: &ExportLogsServiceRequest,
    ) -> Result<Option<(i64, String)>, ExportError> {
        let body = self.post(&self.logs_url, &req.encode_to_vec())?;
        Ok(ExportLogsServiceResponse::decode(body.as_slice())
            .ok()
            .and_then(|r| r.partial_success)
            .filter(|p| p.rejected_log_records > 0 || !p.error_message.is_empty())
            .map(|p| (p.rejected_log_records, p.error_message)))
    }
}

/// Logs a signal's failures: the first at once, then at most one a minute (with how many
/// there were in between), and the recovery.
struct FailureLog {
    signal: &'static str,
    failing: u64,
    last: Option<Instant>,
}

impl FailureLog {
    fn new(signal: &'static str) -> FailureLog {
        FailureLog {
            signal,
            failing: 0,
            last: None,
        }
    }

    fn failed(&mut self, e: &ExportError) {
        self.failing += 1;
        let now = Instant::now();
        if self
            .last
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
        {
            tracing::warn!(
                signal = self.signal,
                failures = self.failing,
                "OTLP export of {} failed: {e} ({} in a row; sampling and /metrics go on)",
                self.signal,
                self.failing
            );
            self.last = Some(now);
        }
    }

    fn succeeded(&mut self) {
        if self.failing > 0 {
            tracing::info!(
                signal = self.signal,
                "OTLP export of {} works again after {} failures",
                self.signal,
                self.failing
            );
        }
        self.failing = 0;
        self.last = None;
    }
}

fn partial(signal: &str, p: Option<(i64, String)>) {
    if let Some((n, msg)) = p {
        tracing::warn!(
            signal,
            rejected = n,
            "the OTLP receiver rejected {n} {signal} items: {msg}"
        );
    }
}

/// Nanoseconds since the Unix epoch.
pub(crate) fn unix_ns_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The export loop, on its own thread until the agent stops: metrics every interval, and
/// log records as soon as a new findings window changes what fires. Records the receiver
/// could not take wait (at most [`MAX_PENDING_LOGS`]) and go with the next attempt.
pub(crate) fn exporter(shared: Arc<Shared>, opts: OtlpOptions, stats: Arc<OtlpStats>) {
    let client = Client::new(&opts);
    let env: Vec<(String, String)> = std::env::vars().collect();
    let resource = resource(&shared.host, &env);
    let mut tracker = Tracker::default();
    let mut last_recent = None;
    let mut pending: VecDeque<LogRecord> = VecDeque::new();
    let mut metrics_log = FailureLog::new("metrics");
    let mut logs_log = FailureLog::new("logs");
    let mut next_metrics = Instant::now() + opts.interval;
    let mut next_logs = Instant::now();
    // A receiver that failed is asked again for logs after this (metrics wait for their
    // next interval: each push carries everything since start anyway).
    let logs_retry = opts.interval.min(Duration::from_secs(5));
    while !shared.stop.load(Ordering::SeqCst) {
        let recent = lock(&shared.recent).clone();
        if let Some(r) = recent
            && last_recent.as_ref().is_none_or(|l| !Arc::ptr_eq(l, &r))
        {
            for rec in tracker.update(&r.list, unix_ns_now()) {
                if pending.len() >= MAX_PENDING_LOGS {
                    pending.pop_front();
                    stats.dropped_logs.fetch_add(1, Ordering::Relaxed);
                }
                pending.push_back(rec);
            }
            last_recent = Some(r);
        }
        let now = Instant::now();
        if !pending.is_empty() && now >= next_logs {
            let req = logs_request(resource.clone(), pending.iter().cloned().collect());
            match client.push_logs(&req) {
                Ok(p) => {
                    stats.exports[LOGS].fetch_add(1, Ordering::Relaxed);
                    logs_log.succeeded();
                    partial("logs", p);
                    pending.clear();
                }
                Err(e) => {
                    stats.failures[LOGS].fetch_add(1, Ordering::Relaxed);
                    logs_log.failed(&e);
                    if !e.retryable() {
                        // 400 and the like: the same records would be refused again.
                        stats
                            .dropped_logs
                            .fetch_add(pending.len() as u64, Ordering::Relaxed);
                        pending.clear();
                    }
                    next_logs = Instant::now() + logs_retry;
                }
            }
        }
        let now = Instant::now();
        if now >= next_metrics {
            let view = shared.view();
            let req = metrics_request(
                &view.families(),
                resource.clone(),
                shared.started_unix_ns,
                unix_ns_now(),
            );
            match client.push_metrics(&req) {
                Ok(p) => {
                    stats.exports[METRICS].fetch_add(1, Ordering::Relaxed);
                    metrics_log.succeeded();
                    partial("metrics", p);
                }
                Err(e) => {
                    stats.failures[METRICS].fetch_add(1, Ordering::Relaxed);
                    metrics_log.failed(&e);
                }
            }
            next_metrics += opts.interval;
            let now = Instant::now();
            if next_metrics < now {
                // A slow receiver made us miss ticks: skip them.
                next_metrics = now + opts.interval;
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[cfg(test)]
#[path = "../tests/support/otlp_receiver.rs"]
mod receiver;

#[cfg(test)]
mod tests {
    use kerno_core::{Process, Subject, Thresholds};

    use super::{receiver::*, *};
    use crate::metrics::{Format, Recent, render};

    fn finding(rule: &str, severity: Severity, pid: u32) -> Finding {
        Finding {
            rule: rule.into(),
            severity,
            title: format!("{rule} in api (pid {pid})"),
            cause: "a cause".into(),
            impact: "an impact".into(),
            evidence: vec!["e1".into(), "e2".into()],
            value: 61.0,
            threshold: 10.0,
            unit: "fd/s".into(),
            fix: vec!["kill it".into()],
            eta_secs: Some(120.0),
            subject: Subject {
                kind: "process".into(),
                name: format!("api (pid {pid})"),
                process: Some(Process {
                    pid,
                    comm: "api".into(),
                    ..Process::default()
                }),
                ..Subject::default()
            },
            low_volume: false,
        }
    }

    fn host() -> Host {
        Host {
            hostname: "box".into(),
            kernel: "6.18.0".into(),
            node: "node-a".into(),
            ..Host::default()
        }
    }

    #[test]
    fn the_otlp_request_carries_exactly_the_metrics_series() {
        let view = crate::metrics::tests::view();
        let text = render(view.clone(), Format::Prometheus);
        let env = [("POD_NAME".to_string(), "kerno-x1".to_string())];
        let req = metrics_request(&view.families(), resource(&host(), &env), 1, 2);
        // Through protobuf and back, as a receiver sees it.
        let req = ExportMetricsServiceRequest::decode(req.encode_to_vec().as_slice()).unwrap();
        assert_eq!(otlp_families(&req), prom_families(&text), "{text}");
        let (otlp, prom) = (otlp_series(&req), prom_series(&text));
        assert!(prom.len() > 20, "{prom:#?}");
        assert_eq!(otlp, prom);
        let metric = |n: &str| {
            req.resource_metrics[0].scope_metrics[0]
                .metrics
                .iter()
                .find(|m| m.name == n)
                .unwrap()
                .clone()
        };
        let Some(metric::Data::Histogram(h)) = metric("kerno_syscall_duration").data else {
            panic!("a histogram");
        };
        assert_eq!(
            h.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        let p = &h.data_points[0];
        assert_eq!(p.explicit_bounds.len() + 1, p.bucket_counts.len());
        assert_eq!(p.explicit_bounds[0], 1024e-9);
        assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
        assert_eq!((p.start_time_unix_nano, p.time_unix_nano), (1, 2));
        assert_eq!(metric("kerno_syscall_duration").unit, "s");
        let Some(metric::Data::Sum(s)) = metric("kerno_syscall").data else {
            panic!("a sum");
        };
        assert!(s.is_monotonic);
        let attrs = resource_attributes(&req);
        for (k, v) in [
            ("service.name", "kerno"),
            ("service.version", env!("CARGO_PKG_VERSION")),
            ("host.name", "box"),
            ("k8s.node.name", "node-a"),
            ("k8s.pod.name", "kerno-x1"),
        ] {
            assert!(attrs.contains(&(k.into(), v.into())), "{k}: {attrs:?}");
        }
        // In a pod, the hostname is the pod's: the host is the node.
        let pod = Host {
            hostname: "kerno-x1".into(),
            environment: "kubernetes".into(),
            ..host()
        };
        let r = metrics_request(&[], resource(&pod, &[]), 1, 2);
        assert!(resource_attributes(&r).contains(&("host.name".into(), "node-a".into())));
    }

    #[test]
    fn findings_give_a_record_when_they_start_change_and_stop() {
        let mut t = Tracker::default();
        let leak = finding("fd-leak", Severity::Warning, 7);
        let first = t.update(std::slice::from_ref(&leak), 5);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].severity_number, SeverityNumber::Warn as i32);
        assert_eq!(first[0].severity_text, "WARN");
        assert_eq!(first[0].time_unix_nano, 5);
        let a = log_attributes(&first[0]);
        for (k, v) in [
            ("kerno.finding.rule", "fd-leak"),
            ("kerno.finding.state", "firing"),
            ("kerno.finding.severity", "warning"),
            ("process.pid", "7"),
            ("kerno.finding.eta_seconds", "120"),
        ] {
            assert!(a.contains(&(k.into(), v.into())), "{k}: {a:?}");
        }
        // The same finding, a new value: nothing new.
        let mut again = leak.clone();
        again.value = 70.0;
        assert!(t.update(&[again.clone()], 6).is_empty());
        // Escalated: one record at the new severity.
        again.severity = Severity::Critical;
        let up = t.update(&[again], 7);
        assert_eq!(up.len(), 1);
        assert_eq!(up[0].severity_number, SeverityNumber::Error as i32);
        // Gone: resolved, at INFO.
        let down = t.update(&[], 8);
        assert_eq!(down.len(), 1);
        assert_eq!(down[0].severity_number, SeverityNumber::Info as i32);
        assert!(
            log_attributes(&down[0]).contains(&("kerno.finding.state".into(), "resolved".into()))
        );
        assert!(t.update(&[], 9).is_empty());
    }

    fn shared_with(findings: Vec<Finding>) -> Arc<Shared> {
        let stats = Arc::new(OtlpStats::default());
        let shared = Shared::new(
            Duration::from_secs(60),
            Duration::from_secs(30),
            Duration::from_secs(5),
            Vec::new(),
            Thresholds::default(),
        )
        .with_otlp(stats);
        *lock(&shared.totals) = crate::metrics::tests::view().totals;
        *lock(&shared.recent) = Some(Arc::new(Recent {
            list: findings,
            ..Recent::default()
        }));
        Arc::new(shared)
    }

    fn counts(s: &Shared) -> OtlpCounts {
        s.otlp.as_ref().unwrap().counts()
    }

    /// The exporter against a real OTLP/HTTP receiver on loopback: metrics every interval
    /// with the resource, findings as they start and stop; then the receiver fails, is
    /// slow, and is gone: each failure is counted and no push outlasts the timeout.
    #[test]
    fn the_exporter_pushes_to_a_real_receiver_and_counts_failures() {
        let rx = Receiver::start();
        let shared = shared_with(vec![finding("fd-leak", Severity::Critical, 42)]);
        let opts = OtlpOptions {
            endpoint: format!("{}/", rx.endpoint()),
            interval: Duration::from_millis(200),
            timeout: Duration::from_millis(500),
            headers: vec![("x-tenant".into(), "t1".into())],
        };
        let thread = {
            let (s, stats) = (shared.clone(), shared.otlp.clone().unwrap());
            std::thread::spawn(move || exporter(s, opts, stats))
        };
        assert!(rx.wait(Duration::from_secs(10), |r| r.metrics().len() >= 2));
        let m = rx.metrics();
        assert_eq!(m[0].content_type, CONTENT_TYPE);
        assert!(m[0].headers.contains(&("x-tenant".into(), "t1".into())));
        let names = otlp_families(&m[1].request);
        assert!(names.contains("kerno_syscall_total"), "{names:?}");
        assert!(
            names.contains("kerno_syscall_duration_seconds"),
            "{names:?}"
        );
        assert!(
            resource_attributes(&m[1].request).contains(&("service.name".into(), "kerno".into()))
        );
        // The finding fired before the first push.
        assert!(rx.wait(Duration::from_secs(5), |r| !r.logs().is_empty()));
        let rec = &rx.logs()[0].request.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(rec.severity_number, SeverityNumber::Error as i32);
        assert!(log_attributes(rec).contains(&("kerno.finding.rule".into(), "fd-leak".into())));
        // A new findings window without it: resolved.
        *lock(&shared.recent) = Some(Arc::new(Recent::default()));
        assert!(rx.wait(Duration::from_secs(5), |r| r.logs().len() >= 2));
        let rec = &rx.logs()[1].request.resource_logs[0].scope_logs[0].log_records[0];
        assert!(log_attributes(rec).contains(&("kerno.finding.state".into(), "resolved".into())));
        let ok = counts(&shared);
        assert!(ok.exports[METRICS] >= 2 && ok.exports[LOGS] == 2, "{ok:?}");
        assert_eq!(ok.failures, [0, 0]);

        // 503: counted as failures, metrics keep being tried every interval.
        rx.set_mode(Mode::Status(503));
        let before = counts(&shared).failures[METRICS];
        assert!(rx.wait(Duration::from_secs(5), |_| counts(&shared).failures
            [METRICS]
            >= before + 2));

        // Slow: every push gives up at the timeout, and is counted.
        rx.set_mode(Mode::Slow(Duration::from_secs(30)));
        let before = counts(&shared).failures[METRICS];
        let t0 = Instant::now();
        assert!(
            rx.wait(Duration::from_secs(10), |_| counts(&shared).failures
                [METRICS]
                >= before + 3)
        );
        let took = t0.elapsed();
        assert!(
            took < Duration::from_secs(4),
            "three pushes to a slow receiver took {took:?}: the timeout does not hold"
        );

        // Gone: connection refused, counted; a finding meanwhile waits for it.
        drop(rx);
        *lock(&shared.recent) = Some(Arc::new(Recent {
            list: vec![finding("oom-kill", Severity::Critical, 9)],
            ..Recent::default()
        }));
        let before = counts(&shared);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            let c = counts(&shared);
            if c.failures[METRICS] >= before.failures[METRICS] + 2
                && c.failures[LOGS] > before.failures[LOGS]
            {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let c = counts(&shared);
        assert!(c.failures[METRICS] >= before.failures[METRICS] + 2, "{c:?}");
        assert!(c.failures[LOGS] > before.failures[LOGS], "{c:?}");
        // The failure counters are in /metrics.
        let view = shared.view();
        let failed = view.otlp.unwrap().failures;
        let scraped = prom_series(&render(view, Format::Prometheus));
        assert_eq!(
            scraped[r#"kerno_otlp_export_failures_total{signal="metrics"}"#],
            failed[METRICS] as f64
        );
        assert_eq!(
            scraped[r#"kerno_otlp_export_failures_total{signal="logs"}"#],
            failed[LOGS] as f64
        );
        shared.stop.store(true, Ordering::SeqCst);
        thread.join().unwrap();
    }
}
