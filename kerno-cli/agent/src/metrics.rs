//! `/metrics`: the agent's state rendered with prometheus-client, as the Prometheus text
//! format (0.0.4) or OpenMetrics by content negotiation. Nothing is computed here: counters
//! and histograms are the [`Totals`] of the agent's windows, gauges are read off the last
//! findings window's [`kerno_core::Signals`] and report. Names, labels and their bounds are
//! documented in docs/metrics.md.

use std::{collections::BTreeMap, sync::Arc};

use kerno_core::Severity;
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
}

type Labels = Vec<(&'static str, String)>;

fn counters(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    series: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, unit, MetricType::Counter)?;
    for (labels, v) in series {
        m.encode_family(labels)?
            .encode_counter::<NoLabelSet, u64, u64>(v, None)?;
    }
    Ok(())
}

fn gauges(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: &[(Labels, f64)],
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in series {
        m.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

fn histograms(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    bounds: &[u64],
    series: &[(Labels, &HistTotal)],
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut m = enc.encode_descriptor(name, help, Some(&Unit::Seconds), MetricType::Histogram)?;
    for (labels, h) in series {
        m.encode_family(labels)?.encode_histogram::<NoLabelSet>(
            h.sum_ns / 1e9,
            h.hist.count(),
            &h.buckets(bounds),
            None,
        )?;
    }
    Ok(())
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

impl Collector for View {
    /// The families in a fixed order: the agent's identity, each probe domain's counters
    /// and histograms, the last findings window's gauges, then the agent's own health.
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let enc = &mut enc;
        let t = &self.totals;
        info(enc, &self.info)?;
        syscalls(enc, t)?;
        sched(enc, t)?;
        tcp(enc, t)?;
        oom(enc, t)?;
        disk(enc, t)?;
        if let Some(r) = &self.recent {
            host(enc, r)?;
            findings(enc, r, &self.rules)?;
        }
        agent(enc, self)
    }
}

/// `kerno_info`: the agent's version and the node it observes.
fn info(enc: &mut DescriptorEncoder, info: &Labels) -> Result<(), std::fmt::Error> {
    let mut m = enc.encode_descriptor(
        "kerno",
        "Kerno agent version and the node it observes.",
        None,
        MetricType::Info,
    )?;
    m.encode_info(info)
}

/// Syscalls: calls, errors and latency by syscall, and descriptors opened and closed.
fn syscalls(enc: &mut DescriptorEncoder, t: &Totals) -> Result<(), std::fmt::Error> {
    if let Some(sys) = &t.syscalls {
        let calls: Vec<(Labels, u64)> = sys
            .iter()
            .map(|(n, s)| (vec![("syscall", n.clone())], s.count))
            .collect();
        counters(
            enc,
            "kerno_syscall",
            "Syscalls completed, by syscall (only syscalls seen since the agent started).",
            None,
            &calls,
        )?;
        let errors: Vec<(Labels, u64)> = sys
            .iter()
            .map(|(n, s)| (vec![("syscall", n.clone())], s.errors))
            .collect();
        counters(
            enc,
            "kerno_syscall_errors",
            "Syscalls that returned an error, by syscall.",
            None,
            &errors,
        )?;
        let lat: Vec<(Labels, &HistTotal)> = sys
            .iter()
            .map(|(n, s)| (vec![("syscall", n.clone())], &s.latency))
            .collect();
        histograms(
            enc,
            "kerno_syscall_duration",
            "Syscall latency, entry to exit (waits by design such as epoll_wait included; \
             buckets are powers of four in ns).",
            &syscall_bounds_ns(),
            &lat,
        )?;
    }
    if let Some((opens, closes)) = t.fds {
        counters(
            enc,
            "kerno_fd_open",
            "File descriptors created (successful open, socket, pipe, dup, accept, ... calls), all processes.",
            None,
            &[(none(), opens)],
        )?;
        counters(
            enc,
            "kerno_fd_close",
            "File descriptors closed (successful close and close_range calls), all processes.",
            None,
            &[(none(), closes)],
        )?;
    }
    Ok(())
}

/// The scheduler: run-queue delay.
fn sched(enc: &mut DescriptorEncoder, t: &Totals) -> Result<(), std::fmt::Error> {
    let Some(h) = &t.sched else {
        return Ok(());
    };
    histograms(
        enc,
        "kerno_sched_delay",
        "Run-queue delay: wakeup to running, every task.",
        &fine_bounds_ns(),
        &[(none(), h)],
    )
}

/// TCP: RTT and connect latency, retransmits, segments sent, connection events.
fn tcp(enc: &mut DescriptorEncoder, t: &Totals) -> Result<(), std::fmt::Error> {
    let Some(tcp) = &t.tcp else {
        return Ok(());
    };
    let fine = fine_bounds_ns();
    histograms(
        enc,
        "kerno_tcp_rtt",
        "Smoothed TCP round-trip time, one observation per ACK processed.",
        &fine,
        &[(none(), &tcp.rtt)],
    )?;
    histograms(
        enc,
        "kerno_tcp_connect_duration",
        "TCP connect latency, SYN sent to ESTABLISHED.",
        &fine,
        &[(none(), &tcp.connect)],
    )?;
    counters(
        enc,
        "kerno_tcp_retransmits",
        "TCP segments retransmitted (all network namespaces).",
        None,
        &[(none(), tcp.retransmits)],
    )?;
    counters(
        enc,
        "kerno_tcp_segments_sent",
        "TCP segments sent (OutSegs, summed over the network namespaces with processes).",
        None,
        &[(none(), tcp.segments_out)],
    )?;
    let ev = |e: &str, n| (vec![("event", e.to_string())], n);
    counters(
        enc,
        "kerno_tcp_connections",
        "TCP connection events: active_open and passive_open (reached ESTABLISHED), \
         closed, connect_failed (SYN_SENT to CLOSE).",
        None,
        &[
            ev("active_open", tcp.active_opens),
            ev("passive_open", tcp.passive_opens),
            ev("closed", tcp.closes),
            ev("connect_failed", tcp.connect_failed),
        ],
    )
}

/// OOM kills.
fn oom(enc: &mut DescriptorEncoder, t: &Totals) -> Result<(), std::fmt::Error> {
    let Some(n) = t.oom_kills else {
        return Ok(());
    };
    counters(
        enc,
        "kerno_oom_kills",
        "Processes killed by the OOM killer.",
        None,
        &[(none(), n)],
    )
}

/// Block I/O: latency, bytes and errors by device and operation.
fn disk(enc: &mut DescriptorEncoder, t: &Totals) -> Result<(), std::fmt::Error> {
    let Some(disk) = &t.disk else {
        return Ok(());
    };
    let labels = |(dev, op): &(String, String)| vec![("device", dev.clone()), ("op", op.clone())];
    let lat: Vec<(Labels, &HistTotal)> =
        disk.iter().map(|(k, d)| (labels(k), &d.latency)).collect();
    histograms(
        enc,
        "kerno_disk_io_duration",
        "Block I/O latency, request issue to completion, by device and operation.",
        &fine_bounds_ns(),
        &lat,
    )?;
    let bytes: Vec<(Labels, u64)> = disk.iter().map(|(k, d)| (labels(k), d.bytes)).collect();
    counters(
        enc,
        "kerno_disk_io",
        "Block I/O bytes completed, by device and operation.",
        Some(&Unit::Bytes),
        &bytes,
    )?;
    let errors: Vec<(Labels, u64)> = disk.iter().map(|(k, d)| (labels(k), d.errors)).collect();
    counters(
        enc,
        "kerno_disk_io_errors",
        "Block I/O requests that completed with an error, by device and operation.",
        None,
        &errors,
    )
}

/// The last findings window's host gauges: the fullest memory cgroups, PSI, and the
/// processes whose descriptors grow fastest.
fn host(enc: &mut DescriptorEncoder, r: &Recent) -> Result<(), std::fmt::Error> {
    let cg: Vec<(Labels, f64)> = r
        .cgroups
        .iter()
        .map(|(path, workload, pct)| {
            let mut l = vec![("cgroup", path.clone())];
            l.extend(workload.iter().cloned());
            (l, *pct)
        })
        .collect();
    gauges(
        enc,
        "kerno_cgroup_memory_pressure_pct",
        "Memory cgroup usage as a percentage of its limit (the fullest cgroups with a limit).",
        &cg,
    )?;
    let psi: Vec<(Labels, f64)> = r
        .psi
        .iter()
        .map(|(res, kind, v)| {
            (
                vec![("resource", res.to_string()), ("kind", kind.to_string())],
                *v,
            )
        })
        .collect();
    gauges(
        enc,
        "kerno_psi_avg10_pct",
        "Host pressure stall information, avg10: share of time tasks stalled on the resource.",
        &psi,
    )?;
    let fd: Vec<(Labels, f64)> = r
        .fd_growth
        .iter()
        .map(|(comm, v)| (vec![("comm", comm.clone())], *v))
        .collect();
    gauges(
        enc,
        "kerno_process_fd_growth_per_second",
        "Net descriptor growth (opens minus closes) per second over the findings window, \
         for the processes growing fastest, by command name.",
        &fd,
    )
}

/// The last findings window's findings, by rule and severity (0 for every pair without).
fn findings(
    enc: &mut DescriptorEncoder,
    r: &Recent,
    rules: &[String],
) -> Result<(), std::fmt::Error> {
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
    gauges(
        enc,
        "kerno_findings_firing",
        "Findings the rules give for the last findings window, by rule and severity.",
        &firing,
    )
}

/// The agent's own health: events and readings per collector, lost events, attached
/// programs per domain, and how far back its history reaches.
fn agent(enc: &mut DescriptorEncoder, v: &View) -> Result<(), std::fmt::Error> {
    let t = &v.totals;
    let events: Vec<(Labels, u64)> = t
        .events
        .iter()
        .map(|(d, n)| (vec![("collector", d.clone())], *n))
        .collect();
    counters(
        enc,
        "kerno_collector_events",
        "Kernel events behind each collector's signals: syscalls completed, descriptor \
         opens and closes, run-queue delays, block requests, TCP events, OOM kills.",
        None,
        &events,
    )?;
    let samples: Vec<(Labels, u64)> = v
        .collectors
        .iter()
        .map(|c| (vec![("collector", c.name.clone())], c.samples))
        .collect();
    counters(
        enc,
        "kerno_collector_samples",
        "Readings each collector took (one a second).",
        None,
        &samples,
    )?;
    let errors: Vec<(Labels, u64)> = v
        .collectors
        .iter()
        .map(|c| (vec![("collector", c.name.clone())], c.errors))
        .collect();
    counters(
        enc,
        "kerno_collector_errors",
        "Readings that failed (a map or file could not be read); the agent keeps going.",
        None,
        &errors,
    )?;
    let l = &t.lost;
    let lost = |c: &str, r: &str, n| (vec![("collector", c.into()), ("reason", r.into())], n);
    counters(
        enc,
        "kerno_events_lost",
        "Events the probes could not record, by collector and reason (never silently lost).",
        None,
        &[
            lost("syscalls", "thread_slot_taken", l.syscall_samples),
            lost("sched", "thread_slot_taken", l.sched_samples),
            lost("syscalls", "map_full", l.map_full),
            lost("disk", "unmatched_completion", l.block_unmatched),
            lost("oom", "ring_overwritten", l.oom_kills),
        ],
    )?;
    let progs: Vec<(Labels, f64)> = v
        .probes
        .iter()
        .map(|p| {
            (
                vec![("domain", p.domain.clone())],
                if p.attached { p.programs as f64 } else { 0.0 },
            )
        })
        .collect();
    gauges(
        enc,
        "kerno_bpf_programs_loaded",
        "eBPF programs attached, by probe domain (0: the domain is degraded, see /readyz).",
        &progs,
    )?;
    gauges(
        enc,
        "kerno_agent_history_seconds",
        "How far back the agent's window of samples reaches.",
        &[(none(), v.history_secs)],
    )
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
    registry.register_collector(Box::new(view));
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
mod tests {
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

    fn view() -> View {
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
