//! The report: ranked findings, what was and was not observed, and the signals behind it.

use serde::{Deserialize, Serialize};

use crate::{
    Degraded, Domain, Finding, Host, Lost, Scope, Severity, Signals, Window,
    finding::{counted, human_bytes, human_ns, thousands},
};

/// Overall status of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// No warning or critical finding, and every domain was observed.
    Healthy,
    /// No warning or critical finding, but some domains could not be observed.
    Degraded,
    /// At least one warning, no critical.
    Warning,
    /// At least one critical finding.
    Critical,
}

/// Counts of findings by severity.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Critical findings.
    pub critical: usize,
    /// Warnings.
    pub warning: usize,
    /// Informational findings.
    pub info: usize,
}

/// One domain's one-line state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainStatus {
    /// The domain.
    pub domain: Domain,
    /// Whether it was observed in this window.
    pub observed: bool,
    /// What was seen (or why it was not).
    pub detail: String,
    /// Why it was not observed, when known: the reason its [`Degraded`] entry gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A diagnosis report for one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`crate::SCHEMA_VERSION`].
    pub schema: u32,
    /// `kerno <version>`.
    pub generator: String,
    /// Overall status.
    pub status: Status,
    /// The machine.
    pub host: Host,
    /// The window.
    pub window: Window,
    /// Findings by severity.
    pub summary: Summary,
    /// Findings, most urgent first.
    pub findings: Vec<Finding>,
    /// Each domain: observed or not, and a one-line summary.
    pub domains: Vec<DomainStatus>,
    /// Domains that could not be observed, and why.
    pub degraded: Vec<Degraded>,
    /// Samples the probes could not record.
    pub lost: Lost,
    /// The signals the findings were computed from.
    pub signals: Signals,
    /// The scope the findings were narrowed to (`namespace payments`,
    /// `pod payments/checkout-api-7d9f8b6c5-x2k4q`), when they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The AI post-processor's analysis, when one was asked for (`--ai`): advice added
    /// after the findings, never a finding itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Analysis>,
}

/// What the AI post-processor added to a report (`docs/ai.md`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Analysis {
    /// The provider answered.
    Ok {
        /// `anthropic`, `openai` or `ollama`.
        provider: String,
        /// The model that answered.
        model: String,
        /// The privacy mode the payload was built in.
        privacy: String,
        /// The answer, with placeholders mapped back to the real names.
        text: String,
        /// Whether the answer came from the local cache.
        #[serde(default)]
        cached: bool,
    },
    /// No analysis: the report stands on its own.
    Failed {
        /// Why, in one line.
        reason: String,
    },
}

impl Report {
    /// Build a report from a window and its (already ranked) findings.
    pub fn new(signals: Signals, findings: Vec<Finding>) -> Report {
        let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
        let summary = Summary {
            critical: count(Severity::Critical),
            warning: count(Severity::Warning),
            info: count(Severity::Info),
        };
        let domains = domain_statuses(&signals);
        let status = if summary.critical > 0 {
            Status::Critical
        } else if summary.warning > 0 {
            Status::Warning
        } else if domains.iter().any(|d| !d.observed) {
            Status::Degraded
        } else {
            Status::Healthy
        };
        Report {
            schema: crate::SCHEMA_VERSION,
            generator: format!("kerno {}", env!("CARGO_PKG_VERSION")),
            status,
            host: signals.host.clone(),
            window: signals.window.clone(),
            summary,
            findings,
            domains,
            degraded: signals.degraded.clone(),
            lost: signals.lost.clone(),
            signals,
            scope: None,
            analysis: None,
        }
    }

    /// Keep only the findings about `scope` (a namespace or a pod); the summary and status
    /// count those. What each domain observed host-wide stays as it is.
    pub fn scoped(self, scope: &Scope) -> Report {
        let findings = self
            .findings
            .into_iter()
            .filter(|f| f.subject.in_scope(scope))
            .collect();
        let mut r = Report::new(self.signals, findings);
        r.scope = Some(scope.describe());
        r
    }

    /// Keep only critical findings (the summary keeps the full counts).
    pub fn only_critical(mut self) -> Report {
        self.findings.retain(|f| f.severity == Severity::Critical);
        self
    }
}

fn pct(n: u64, d: u64) -> f64 {
    if d == 0 {
        0.0
    } else {
        n as f64 * 100.0 / d as f64
    }
}

/// The one-line state of every domain, observed or not.
pub fn domain_statuses(s: &Signals) -> Vec<DomainStatus> {
    let secs = s.window_secs();
    Domain::ALL
        .into_iter()
        .map(|d| {
            let detail = match d {
                Domain::Syscalls => s.syscalls.as_ref().map(|x| {
                    let slowest = x
                        .syscalls
                        .iter()
                        .filter(|c| !c.wait && c.count >= 20)
                        .filter_map(|c| Some((c.latency.percentile(99.0)?, c)))
                        .max_by_key(|(p, _)| *p);
                    let mut line = format!(
                        "{} calls ({}/s), {} failed ({:.2}%)",
                        thousands(x.total_calls),
                        thousands((x.total_calls as f64 / secs) as u64),
                        thousands(x.total_errors),
                        pct(x.total_errors, x.total_calls)
                    );
                    if let Some((p99, c)) = slowest {
                        line += &format!("; slowest p99: {} {}", c.name, human_ns(p99 as f64));
                    }
                    line
                }),
                Domain::Fds => s.fds.as_ref().map(|x| match x.processes.first() {
                    None => "no process opened more descriptors than it closed".into(),
                    Some(p) => format!(
                        "{} opened more than {} closed; most: {} (pid {}) +{}",
                        counted(x.processes.len() as u64, "process", "processes"),
                        if x.processes.len() == 1 { "it" } else { "they" },
                        p.process.comm,
                        p.process.pid,
                        p.opens.saturating_sub(p.closes)
                    ),
                }),
                Domain::Sched => s.sched.as_ref().map(|x| {
                    format!(
                        "{} wakeups, run-queue delay p50 {} p99 {}",
                        thousands(x.runq_delay.count()),
                        x.runq_delay
                            .percentile(50.0)
                            .map(|v| human_ns(v as f64))
                            .unwrap_or("-".into()),
                        x.runq_delay
                            .percentile(99.0)
                            .map(|v| human_ns(v as f64))
                            .unwrap_or("-".into()),
                    )
                }),
                Domain::Disk => s.disk.as_ref().map(|x| {
                    let reqs: u64 = x
                        .devices
                        .iter()
                        .flat_map(|d| &d.ops)
                        .fold(0u64, |n, o| n.saturating_add(o.count));
                    let worst = x
                        .devices
                        .iter()
                        .flat_map(|d| d.ops.iter().map(move |o| (d, o)))
                        .filter_map(|(d, o)| Some((o.latency.percentile(99.0)?, d, o)))
                        .max_by_key(|(p, _, _)| *p);
                    match worst {
                        None => "no block I/O in the window".into(),
                        Some((p99, d, o)) => format!(
                            "{} on {}; worst p99: {} {} {}",
                            counted(reqs, "request", "requests"),
                            counted(x.devices.len() as u64, "device", "devices"),
                            d.short_label(),
                            o.op,
                            human_ns(p99 as f64)
                        ),
                    }
                }),
                Domain::Tcp => s.tcp.as_ref().map(|x| {
                    format!(
                        "{} segments sent, {} retransmitted ({:.2}%), RTT p99 {}, {} connects",
                        thousands(x.segments_out),
                        thousands(x.retrans_segs.max(x.retransmits)),
                        pct(x.retrans_segs.max(x.retransmits), x.segments_out),
                        x.rtt
                            .percentile(99.0)
                            .map(|v| human_ns(v as f64))
                            .unwrap_or("-".into()),
                        thousands(x.active_opens),
                    )
                }),
                Domain::Oom => s.oom.as_ref().map(|x| match x.kills.len() {
                    0 => "no OOM kills".into(),
                    1 => "1 OOM kill".into(),
                    n => format!("{n} OOM kills"),
                }),
                Domain::Memory => s.memory.as_ref().map(|m| {
                    let limited = m.cgroups.len();
                    format!(
                        "{} of {} used ({:.0}%), {} with limits, PSI some {}",
                        human_bytes(m.used_bytes()),
                        human_bytes(m.total_bytes),
                        pct(m.used_bytes(), m.total_bytes),
                        counted(limited as u64, "memory cgroup", "memory cgroups"),
                        m.psi_some_avg10
                            .map(|v| format!("{v:.2}%"))
                            .unwrap_or("n/a".into())
                    )
                }),
                Domain::Filesystem => s.filesystem.as_ref().map(|x| match x.filesystems.first() {
                    None => "no writable filesystem with a size".into(),
                    Some(f) => format!(
                        "{}; fullest: {} {:.0}% of {} used, inodes {:.0}%",
                        counted(x.filesystems.len() as u64, "filesystem", "filesystems"),
                        f.mountpoint,
                        f.used_pct(),
                        human_bytes(f.size_bytes),
                        f.inodes_used_pct()
                    ),
                }),
                Domain::Pids => s.pids.as_ref().map(|x| {
                    let mut line = format!(
                        "{} tasks of {} allowed ({:.1}%)",
                        thousands(x.threads),
                        thousands(x.host_limit()),
                        pct(x.threads, x.host_limit())
                    );
                    match x.cgroups.first() {
                        Some(c) => {
                            line += &format!(
                                ", {}; fullest: {} {}/{}",
                                counted(x.cgroups.len() as u64, "pids cgroup", "pids cgroups"),
                                c.path,
                                c.current,
                                c.limit
                            )
                        }
                        None => line += ", no pids cgroup with a limit",
                    }
                    line
                }),
                Domain::Conntrack => s.conntrack.as_ref().map(|x| {
                    let drops: u64 = x
                        .namespaces
                        .iter()
                        .map(|n| n.drops + n.early_drops + n.insert_failed)
                        .sum();
                    let fullest = x.namespaces.first().map(|n| n.count).unwrap_or(0);
                    format!(
                        "{} tracked at most ({:.1}% of nf_conntrack_max {}) in {}, {} dropped",
                        thousands(fullest),
                        pct(fullest, x.max),
                        thousands(x.max),
                        counted(
                            x.namespaces.len() as u64,
                            "network namespace",
                            "network namespaces"
                        ),
                        thousands(drops)
                    )
                }),
            };
            match detail {
                Some(detail) => DomainStatus {
                    domain: d,
                    observed: true,
                    detail,
                    reason: None,
                },
                None => {
                    let reason = s
                        .degraded
                        .iter()
                        .find(|g| g.domain == d)
                        .map(|g| g.reason.clone());
                    DomainStatus {
                        domain: d,
                        observed: false,
                        detail: match &reason {
                            Some(why) => format!("not observed: {why}"),
                            None => "not observed".into(),
                        },
                        reason,
                    }
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unobserved_domain_carries_its_reason() {
        let s = Signals {
            degraded: vec![Degraded {
                domain: "tcp".into(),
                reason: "tcp probe not attached: no BTF".into(),
            }],
            ..Signals::default()
        };
        let domains = domain_statuses(&s);
        let get = |name: &str| domains.iter().find(|d| d.domain == *name).unwrap();
        let tcp = get("tcp");
        assert!(!tcp.observed);
        assert_eq!(
            tcp.reason.as_deref(),
            Some("tcp probe not attached: no BTF")
        );
        assert_eq!(tcp.detail, "not observed: tcp probe not attached: no BTF");
        let oom = get("oom");
        assert_eq!(
            (oom.reason.as_deref(), oom.detail.as_str()),
            (None, "not observed")
        );

        // The JSON field is there only when there is a reason, and older reports (without
        // it) still read.
        let json = serde_json::to_value(tcp).unwrap();
        assert_eq!(json["reason"], "tcp probe not attached: no BTF");
        assert!(serde_json::to_value(oom).unwrap().get("reason").is_none());
        let old: DomainStatus =
            serde_json::from_str(r#"{"domain":"tcp","observed":false,"detail":"not observed"}"#)
                .unwrap();
        assert_eq!(old.reason, None);
    }
}
