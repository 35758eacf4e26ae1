//! `/metrics`: the agent's state rendered with prometheus-client, as the Prometheus text
//! format (0.0.4) or OpenMetrics by content negotiation. Nothing is computed here: counters
//! and histograms are the [`Totals`] of the agent's windows, gauges are read off the last
//! findings window's [`kerno_core::Signals`] and report. Names, labels and their bounds are
//! documented in docs/metrics.md.

use std::{collections::BTreeMap, sync::Arc};

use kerno_core::{Finding, Severity};
use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, NoLabelSet},
    metrics::MetricType,
    registry::{Registry, Unit},
};

use crate::totals::{HistTotal, Totals};

/// Per-process gauges list at most this many commands: enough to name the processes an
/// incident is about, few enough that a node's series stay in the hundreds. The doctor's
/// report has the full lists.
pub const TOP_PROCESSES: usize = 10;
/// Per-cgroup gauges list at most this many (the fullest): on a node with hundreds of pods,
/// the ones near their limit.
pub const TOP_CGROUPS: usize = 20;

/// Bucket bounds (ns) of the syscall latency histograms: powers of four from 1 µs to 17 s.
/// Powers of two are kernel bucket edges, so each Prometheus bucket is an exact sum of
/// kernel buckets. Coarser than the others because there is one histogram per syscall.
pub fn syscall_bounds_ns() -> Vec<u64> {
    (10..=34).step_by(2).map(|e| 1u64 << e).collect()
}

/// Bucket bounds (ns) of the other latency histograms: powers of two from 1 µs to 8.6 s.
pub fn fine_bounds_ns() -> Vec<u64> {
    (10..=33).map(|e| 1u64 << e).collect()
}

/// What the last findings window said, for the gauges.
#[derive(Clone, Debug, Default)]
pub(crate) struct Recent {
    /// Findings by (rule, severity).
    pub findings: BTreeMap<(String, Severity), u64>,
    /// The findings themselves, for the OTLP exporter's log records.
    pub list: Vec<Finding>,
    /// The fullest memory cgroups: (path, `namespace`/`pod`/`container` labels, usage as %
    /// of the limit).
    pub cgroups: Vec<(String, Labels, f64)>,
    /// PSI avg10: (resource, kind, percent).
    pub psi: Vec<(&'static str, &'static str, f64)>,
    /// Net descriptor growth per second by command, largest first.
    pub fd_growth: Vec<(String, f64)>,
}

/// One probe domain's state.
#[derive(Clone, Debug)]
pub(crate) struct ProbeState {
    pub domain: String,
    pub attached: bool,
    pub programs: usize,
}

/// One collector's readings.
#[derive(Clone, Debug, Default)]
pub(crate) struct CollectorStat {
    pub name: String,
    pub samples: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    /// The latest reading failed: `/readyz` names the domain as degraded until one works.
    pub failing: bool,
}

/// Everything one scrape renders.
#[derive(Clone, Debug, Default)]
pub(crate) struct View {
    pub info: Vec<(&'static str, String)>,
    pub probes: Vec<ProbeState>,
    pub collectors: Vec<CollectorStat>,
    pub rules: Vec<String>,
    pub totals: Arc<Totals>,
    pub recent: Option<Arc<Recent>>,
    pub history_secs: f64,
    /// The OTLP exporter's counts, when it runs.
    pub otlp: Option<OtlpCounts>,
}

/// The OTLP exporter's pushes so far; index 0 is metrics, 1 is logs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OtlpCounts {
    pub exports: [u64; 2],
    pub failures: [u64; 2],
    pub dropped_logs: u64,
}

pub(crate) type Labels = Vec<(&'static str, String)>;

/// The unit a family's name carries (`_seconds`, `_bytes` in Prometheus; `s`, `By` in
/// OTLP).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MetricUnit {
    Seconds,
    Bytes,
}

impl MetricUnit {
    fn prometheus(self) -> Unit {
        match self {
            MetricUnit::Seconds => Unit::Seconds,
            MetricUnit::Bytes => Unit::Bytes,
        }
    }

    /// The UCUM code OTLP carries.
    pub fn ucum(self) -> &'static str {
        match self {
            MetricUnit::Seconds => "s",
            MetricUnit::Bytes => "By",
        }
    }
}

/// One histogram series, ready for either encoder: buckets in seconds, each with its own
/// count (not cumulative), ending with `+Inf`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HistPoint {
    pub sum_s: f64,
    pub count: u64,
    pub buckets: Vec<(f64, u64)>,
}

impl HistPoint {
    fn of(h: &HistTotal, bounds_ns: &[u64]) -> HistPoint {
        HistPoint {
            sum_s: h.sum_ns / 1e9,
            count: h.hist.count(),
            buckets: h.buckets(bounds_ns),
        }
    }
}

/// A family's series.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Points {
    /// An info metric: one series of labels (value 1).
    Info(Labels),
    /// Monotonic counters since the agent started.
    Counter(Vec<(Labels, u64)>),
    Gauge(Vec<(Labels, f64)>),
    /// Histograms since the agent started.
    Histogram(Vec<(Labels, HistPoint)>),
}

/// One metric family: the one source both `/metrics` and the OTLP exporter render, so the
/// two cannot differ in names, labels or values.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Family {
    /// The base name: Prometheus adds the unit and `_total` for counters; OTLP sends it
    /// as it is, with the unit beside it.
    pub name: &'static str,
    pub help: &'static str,
    pub unit: Option<MetricUnit>,
    pub points: Points,
}

/// The families of one view, built in a fixed order; empty families are left out.
#[derive(Default)]
struct Families(Vec<Family>);

impl Families {
    fn push(
        &mut self,
        name: &'static str,
        help: &'static str,
        unit: Option<MetricUnit>,
        points: Points,
    ) {
        let empty = match &points {
            Points::Info(_) => false,
            Points::Counter(s) => s.is_empty(),
            Points::Gauge(s) => s.is_empty(),
            Points::Histogram(s) => s.is_empty(),
        };
        if !empty {
            self.0.push(Family {
                name,
                help,
                unit,
                points,
            });
        }
    }

    fn counters(
        &mut self,
        name: &'static str,
        help: &'static str,
        unit: Option<MetricUnit>,
        series: Vec<(Labels, u64)>,
    ) {
        self.push(name, help, unit, Points::Counter(series));
    }

    fn gauges(&mut self, name: &'static str, help: &'static str, series: Vec<(Labels, f64)>) {
        self.push(name, help, None, Points::Gauge(series));
    }

    fn histograms(
        &mut self,
        name: &'static str,
        help: &'static str,
        bounds: &[u64],
        series: Vec<(Labels, &HistTotal)>,
    ) {
        let points = series
            .into_iter()
            .map(|(l, h)| (l, HistPoint::of(h, bounds)))
            .collect();
        self.push(
            name,
            help,
            Some(MetricUnit::Seconds),
            Points::Histogram(points),
        );
    }
}

fn none() -> Labels {
    Vec::new()
}

fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

impl View {
    /// The families in a fixed order: the agent's identity, each probe domain's counters
    /// and histograms, the last findings window's gauges, then the agent's own health.
    pub(crate) fn families(&self) -> Vec<Family> {
        let mut f = Families::default();
        let t = &self.totals;
        f.push(
            "kerno",
            "Kerno agent version and the node it observes.",
            None,
            Points::Info(self.info.clone()),
        );
        syscalls(&mut f, t);
        sched(&mut f, t);
        tcp(&mut f, t);
        oom(&mut f, t);
        disk(&mut f, t);
        if let Some(r) = &self.recent {
            host(&mut f, r);
            findings(&mut f, r, &self.rules);
        }
        agent(&mut f, self);
        f.0
    }
}

/// The families, encoded for Prometheus.
#[derive(Debug)]
struct Encoded(Vec<Family>);

impl Collector for Encoded {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for fam in &self.0 {
            let unit = fam.unit.map(MetricUnit::prometheus);
            let kind = match fam.points {
                Points::Info(_) => MetricType::Info,
                Points::Counter(_) => MetricType::Counter,
                Points::Gauge(_) => MetricType::Gauge,
                Points::Histogram(_) => MetricType::Histogram,
            };
            let mut m = enc.encode_descriptor(fam.name, fam.help, unit.as_ref(), kind)?;
            match &fam.points {
                Points::Info(labels) => m.encode_info(labels)?,
                Points::Counter(series) => {
                    for (labels, v) in series {
                        m.encode_family(labels)?
                            .encode_counter::<NoLabelSet, u64, u64>(v, None)?;
                    }
                }
                Points::Gauge(series) => {
                    for (labels, v) in series {
                        m.encode_family(labels)?.encode_gauge(v)?;
                    }
                }
                Points::Histogram(series) => {
                    for (labels, h) in series {
                        m.encode_family(labels)?
                            .encode_histogram::<NoLabelSet>(h.sum_s, h.count, &h.buckets, None)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Syscalls: calls, errors and latency by syscall, and descriptors opened and closed.
fn syscalls(f: &mut Families, t: &Totals) {
    if let Some(sys) = &t.syscalls {
        let by = |n: &String| vec![("syscall", n.clone())];
        f.counters(
            "kerno_syscall",
            "Syscalls completed, by syscall (only syscalls seen since the agent started).",
            None,
            sys.iter().map(|(n, s)| (by(n), s.count)).collect(),
        );
        f.counters(
            "kerno_syscall_errors",
            "Syscalls that returned an error, by syscall.",
            None,
            sys.iter().map(|(n, s)| (by(n), s.errors)).collect(),
        );
        f.histograms(
            "kerno_syscall_duration",
            "Syscall latency, entry to exit (waits by design such as epoll_wait included; \
             buckets are powers of four in ns).",
            &syscall_bounds_ns(),
            sys.iter().map(|(n, s)| (by(n), &s.latency)).collect(),
        );
    }
    if let Some((opens, closes)) = t.fds {
        f.counters(
            "kerno_fd_open",
            "File descriptors created (successful open, socket, pipe, dup, accept, ... calls), all processes.",
            None,
            vec![(none(), opens)],
        );
        f.counters(
            "kerno_fd_close",
            "File descriptors closed (successful close and close_range calls), all processes.",
            None,
            vec![(none(), closes)],
        );
    }
}

/// The scheduler: run-queue delay.
fn sched(f: &mut Families, t: &Totals) {
    let Some(h) = &t.sched else {
        return;
    };
    f.histograms(
        "kerno_sched_delay",
        "Run-queue delay: wakeup to running, every task.",
        &fine_bounds_ns(),
        vec![(none(), h)],
    );
}

/// TCP: RTT and connect latency, retransmits, segments sent, connection events.
fn tcp(f: &mut Families, t: &Totals) {
    let Some(tcp) = &t.tcp else {
        return;
    };
    let fine = fine_bounds_ns();
    f.histograms(
        "kerno_tcp_rtt",
        "Smoothed TCP round-trip time, one observation per ACK processed.",
        &fine,
        vec![(none(), &tcp.rtt)],
    );
    f.histograms(
        "kerno_tcp_connect_duration",
        "TCP connect latency, SYN sent to ESTABLISHED.",
        &fine,
        vec![(none(), &tcp.connect)],
    );
    f.counters(
        "kerno_tcp_retransmits",
        "TCP segments retransmitted (all network namespaces).",
        None,
        vec![(none(), tcp.retransmits)],
    );
    f.counters(
        "kerno_tcp_segments_sent",
        "TCP segments sent (OutSegs, summed over the network namespaces with processes).",
        None,
        vec![(none(), tcp.segments_out)],
    );
    let ev = |e: &str, n| (vec![("event", e.to_string())], n);
    f.counters(
        "kerno_tcp_connections",
        "TCP connection events: active_open and passive_open (reached ESTABLISHED), \
         closed, connect_failed (SYN_SENT to CLOSE).",
        None,
        vec![
            ev("active_open", tcp.active_opens),
            ev("passive_open", tcp.passive_opens),
            ev("closed", tcp.closes),
            ev("connect_failed", tcp.connect_failed),
        ],
    );
}

/// OOM kills.
fn oom(f: &mut Families, t: &Totals) {
    let Some(n) = t.oom_kills else {
        return;
    };
    f.counters(
        "kerno_oom_kills",
        "Processes killed by the OOM killer.",
        None,
        vec![(none(), n)],
    );
}

/// Block I/O: latency, bytes and errors by device and operation.
fn disk(f: &mut Families, t: &Totals) {
    let Some(disk) = &t.disk else {
        return;
    };
    let labels = |(dev, op): &(String, String)| vec![("device", dev.clone()), ("op", op.clone())];
    f.histograms(
        "kerno_disk_io_duration",
        "Block I/O latency, request issue to completion, by device and operation.",
        &fine_bounds_ns(),
        disk.iter().map(|(k, d)| (labels(k), &d.latency)).collect(),
    );
    f.counters(
        "kerno_disk_io",
        "Block I/O bytes completed, by device and operation.",
        Some(MetricUnit::Bytes),
        disk.iter().map(|(k, d)| (labels(k), d.bytes)).collect(),
    );
    f.counters(
        "kerno_disk_io_errors",
        "Block I/O requests that completed with an error, by device and operation.",
        None,
        disk.iter().map(|(k, d)| (labels(k), d.errors)).collect(),
    );
}

/// The last findings window's host gauges: the fullest memory cgroups, PSI, and the
/// processes whose descriptors grow fastest.
fn host(f: &mut Families, r: &Recent) {
    f.gauges(
        "kerno_cgroup_memory_pressure_pct",
        "Memory cgroup usage as a percentage of its limit (the fullest cgroups with a limit).",
        r.cgroups
            .iter()
            .map(|(path, workload, pct)| {
                let mut l = vec![("cgroup", path.clone())];
                l.extend(workload.iter().cloned());
                (l, *pct)
            })
            .collect(),
    );
    f.gauges(
        "kerno_psi_avg10_pct",
        "Host pressure stall information, avg10: share of time tasks stalled on the resource.",
        r.psi
            .iter()
            .map(|(res, kind, v)| {
                (
                    vec![("resource", res.to_string()), ("kind", kind.to_string())],
                    *v,
                )
            })
            .collect(),
    );
    f.gauges(
        "kerno_process_fd_growth_per_second",
        "Net descriptor growth (opens minus closes) per second over the findings window, \
         for the processes growing fastest, by command name.",
        r.fd_growth
            .iter()
            .map(|(comm, v)| (vec![("comm", comm.clone())], *v))
            .collect(),
    );
}

/// The last findings window's findings, by rule and severity (0 for every pair without).
fn findings(f: &mut Families, r: &Recent, rules: &[String]) {
    let mut firing: Vec<(Labels, f64)> = Vec::new();
    for rule in rules {
        for sev in [Severity::Info, Severity::Warning, Severity::Critical] {
            let n = r.findings.get(&(rule.clone(), sev)).copied().unwrap_or(0);
            firing.push((
                vec![("rule", rule.clone()), ("severity", severity(sev).into())],
                n as f64,
            ));
        }
    }
    f.gauges(
        "kerno_findings_firing",
        "Findings the rules give for the last findings window, by rule and severity.",
        firing,
    );
}

/// The agent's own health: events and readings per collector, lost events, attached
/// programs per domain, how far back its history reaches, and the OTLP exporter's
/// pushes when it runs.
fn agent(f: &mut Families, v: &View) {
    let t = &v.totals;
    let by_collector = |c: &String| vec![("collector", c.clone())];
    f.counters(
        "kerno_collector_events",
        "Kernel events behind each collector's signals: syscalls completed, descriptor \
         opens and closes, run-queue delays, block requests, TCP events, OOM kills.",
        None,
        t.events
            .iter()
            .map(|(d, n)| (by_collector(d), *n))
            .collect(),
    );
    f.counters(
        "kerno_collector_samples",
        "Readings each collector took (one a second).",
        None,
        v.collectors
            .iter()
            .map(|c| (by_collector(&c.name), c.samples))
            .collect(),
    );
    f.counters(
        "kerno_collector_errors",
        "Readings that failed (a map or file could not be read); the agent keeps going.",
        None,
        v.collectors
            .iter()
            .map(|c| (by_collector(&c.name), c.errors))
            .collect(),
    );
    // Every counter, zeros included, so a rate() over any pair exists from the start.
    let lost = t
        .lost
        .entries()
        .into_iter()
        .map(|e| {
            (
                vec![
                    ("collector", e.collector.into()),
                    ("reason", e.reason.into()),
                ],
                e.count,
            )
        })
        .collect();
    f.counters(
        "kerno_events_lost",
        "Events the probes could not record, by collector and reason (never silently lost): \
         thread_slot_taken, map_full, evicted (LRU entries pushed out, at least), \
         unmatched_completion, unmatched_connect, read_failed, recursion_miss, ring_overwritten.",
        None,
        lost,
    );
    f.gauges(
        "kerno_bpf_programs_loaded",
        "eBPF programs attached, by probe domain (0: the domain is degraded, see /readyz).",
        v.probes
            .iter()
            .map(|p| {
                (
                    vec![("domain", p.domain.clone())],
                    if p.attached { p.programs as f64 } else { 0.0 },
                )
            })
            .collect(),
    );
    f.gauges(
        "kerno_agent_history_seconds",
        "How far back the agent's window of samples reaches.",
        vec![(none(), v.history_secs)],
    );
    if let Some(o) = &v.otlp {
        let by_signal = |s: &str, n| (vec![("signal", s.to_string())], n);
        f.counters(
            "kerno_otlp_exports",
            "OTLP export requests the collector accepted, by signal (metrics, logs).",
            None,
            vec![
                by_signal("metrics", o.exports[0]),
                by_signal("logs", o.exports[1]),
            ],
        );
        f.counters(
            "kerno_otlp_export_failures",
            "OTLP export requests that failed (unreachable, timed out, or an HTTP error), \
             by signal; the agent keeps going.",
            None,
            vec![
                by_signal("metrics", o.failures[0]),
                by_signal("logs", o.failures[1]),
            ],
        );
        f.counters(
            "kerno_otlp_log_records_dropped",
            "Finding log records dropped because the collector could not take them for \
             too long (the queue holds 1000).",
            None,
            vec![(none(), o.dropped_logs)],
        );
    }
}

/// The negotiated exposition format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0 text.
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// The format an `Accept` header asks for: OpenMetrics when it ranks
    /// `application/openmetrics-text` above `text/plain` (by q-value, then order), else the
    /// Prometheus text format.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else {
            return Format::Prometheus;
        };
        let mut best: Option<(f64, Format)> = None;
        for item in accept.split(',') {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("").to_ascii_lowercase();
            let mut q = 1.0;
            for p in parts {
                if let Some(v) = p.strip_prefix("q=") {
                    q = v.parse().unwrap_or(0.0);
                }
            }
            let f = match media.as_str() {
                "application/openmetrics-text" => Format::OpenMetrics,
                "text/plain" | "text/*" | "*/*" => Format::Prometheus,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, f));
            }
        }
        best.map(|(_, f)| f).unwrap_or(Format::Prometheus)
    }
}

/// Render a view.
pub(crate) fn render(view: View, format: Format) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Encoded(view.families())));
    let mut out = String::new();
    let r = match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry),
    };
    r.expect("writing to a String does not fail");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use kerno_core::Histogram;

    use super::*;
    use crate::totals::SyscallTotal;

    #[test]
    fn negotiation_follows_q_values() {
        let prom = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                    version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prom)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(None), Format::Prometheus);
        assert_eq!(Format::negotiate(Some("*/*")), Format::Prometheus);
        assert_eq!(
            Format::negotiate(Some("text/plain;q=0.9, application/openmetrics-text;q=0.5")),
            Format::Prometheus
        );
        assert_eq!(
            Format::negotiate(Some("application/json")),
            Format::Prometheus
        );
    }

    pub(crate) fn view() -> View {
        let mut h = Histogram::new();
        h.record_n(3_000, 4);
        let mut sys = BTreeMap::new();
        let mut read = SyscallTotal {
            count: 4,
            errors: 1,
            ..SyscallTotal::default()
        };
        read.latency.hist = h;
        read.latency.sum_ns = 12_000.0;
        sys.insert("read".to_string(), read);
        let mut recent = Recent::default();
        recent
            .findings
            .insert(("fd-leak".into(), Severity::Critical), 1);
        recent.cgroups.push((
            "/kubepods/burstable/podx".into(),
            vec![("namespace", "shop".into()), ("pod", "cart-7d9f".into())],
            75.0,
        ));
        View {
            info: vec![("version", "0.1.0".into())],
            rules: vec!["fd-leak".into()],
            totals: Arc::new(Totals {
                syscalls: Some(sys),
                fds: Some((3, 2)),
                ..Totals::default()
            }),
            recent: Some(Arc::new(recent)),
            ..View::default()
        }
    }

    #[test]
    fn renders_both_formats() {
        let text = render(view(), Format::Prometheus);
        assert!(
            text.contains("# TYPE kerno_syscall_total counter"),
            "{text}"
        );
        assert!(
            text.contains("kerno_syscall_total{syscall=\"read\"} 4"),
            "{text}"
        );
        assert!(
            text.contains(
                "kerno_syscall_duration_seconds_bucket{syscall=\"read\",le=\"4.096e-06\"} 4"
            ),
            "{text}"
        );
        assert!(text.contains("kerno_fd_open_total 3"), "{text}");
        assert!(text.contains("kerno_info{version=\"0.1.0\"} 1"), "{text}");
        assert!(
            text.contains("kerno_findings_firing{rule=\"fd-leak\",severity=\"critical\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "kerno_cgroup_memory_pressure_pct{cgroup=\"/kubepods/burstable/podx\",namespace=\"shop\",pod=\"cart-7d9f\"} 75"
            ),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
        let om = render(view(), Format::OpenMetrics);
        assert!(
            om.contains("# UNIT kerno_syscall_duration_seconds seconds"),
            "{om}"
        );
        assert!(om.trim_end().ends_with("# EOF"), "{om}");
    }
}
