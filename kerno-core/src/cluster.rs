//! The cluster-wide doctor: the reports of many nodes' agents merged into one ranked
//! report, each finding with its node, and the nodes that did not answer listed as not
//! observed.
//!
//! Pure: asking the agents is the frontend's job (`kerno doctor --cluster`, over HTTP);
//! [`merge`] only turns what came back into a [`ClusterReport`].
//!
//! ```
//! use kerno_core::cluster::{NodeReply, merge};
//!
//! let replies = vec![NodeReply {
//!     address: "10.0.0.3:9090".into(),
//!     answer: Err("connection refused".into()),
//! }];
//! let report = merge(replies);
//! assert_eq!(report.answered(), 0);
//! assert!(!report.nodes[0].observed);
//! ```

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use crate::{
    Degraded, DomainStatus, Finding, Host, Lost, Report, Scope, Severity, Status, Summary, Window,
    finding::urgency,
};

/// What one agent answered, or why it did not.
#[derive(Clone, Debug)]
pub struct NodeReply {
    /// The address asked (`10.0.0.1:9090`).
    pub address: String,
    /// Its report, or why there is none (timeout, refused, 401, not a report).
    pub answer: Result<Report, String>,
}

/// One finding of a cluster report: the node's finding as its own report has it, plus
/// the node it is on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterFinding {
    /// The node the finding is on (its agent's node name).
    pub node: String,
    /// The finding.
    #[serde(flatten)]
    pub finding: Finding,
}

/// One node of a cluster report: what it observed, or why it was not observed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// The node name its agent reported; the address when it did not answer.
    pub node: String,
    /// The address its agent was asked at.
    pub address: String,
    /// Whether it answered with a report.
    pub observed: bool,
    /// Why it was not observed (timeout, refused, unauthorised...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Its report's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// Its report's findings by severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Summary>,
    /// The machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<Host>,
    /// Its window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// Each domain on it: observed or not.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<DomainStatus>,
    /// Domains it could not observe, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degraded: Vec<Degraded>,
    /// Samples its probes could not record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost: Option<Lost>,
}

impl NodeStatus {
    /// The domains this node did not observe (empty when the node itself was not).
    pub fn unobserved_domains(&self) -> Vec<&str> {
        self.domains
            .iter()
            .filter(|d| !d.observed)
            .map(|d| d.domain.as_str())
            .collect()
    }
}

/// Many nodes' reports as one: findings ranked across nodes, each with its node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClusterReport {
    /// [`crate::SCHEMA_VERSION`].
    pub schema: u32,
    /// `kerno <version>`.
    pub generator: String,
    /// Overall status: critical or warning when any node's finding is; degraded when a
    /// node, or a domain on a node, was not observed; healthy otherwise.
    pub status: Status,
    /// Findings by severity, over every node.
    pub summary: Summary,
    /// Findings of every node, most urgent first (the order a one-node report ranks by,
    /// then the node's name).
    pub findings: Vec<ClusterFinding>,
    /// Every node asked, observed ones first, each by name.
    pub nodes: Vec<NodeStatus>,
    /// The scope the findings were narrowed to, when they were.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

impl ClusterReport {
    /// How many nodes answered.
    pub fn answered(&self) -> usize {
        self.nodes.iter().filter(|n| n.observed).count()
    }

    /// The nodes that did not answer.
    pub fn not_observed(&self) -> impl Iterator<Item = &NodeStatus> {
        self.nodes.iter().filter(|n| !n.observed)
    }

    /// Keep only the findings about `scope` (a namespace or a pod); the summary and status
    /// count those, each node's own entry stays node-wide.
    pub fn scoped(mut self, scope: &Scope) -> ClusterReport {
        self.findings.retain(|f| f.finding.subject.in_scope(scope));
        (self.summary, self.status) = tally(&self.findings, &self.nodes);
        self.scope = Some(scope.describe());
        self
    }

    /// Keep only critical findings (the summary keeps the full counts).
    pub fn only_critical(mut self) -> ClusterReport {
        self.findings
            .retain(|f| f.finding.severity == Severity::Critical);
        self
    }
}

/// The name a report gives its node: `host.node`, else the hostname, else `fallback`.
fn node_name(report: &Report, fallback: &str) -> String {
    [&report.host.node, &report.host.hostname]
        .into_iter()
        .find(|n| !n.trim().is_empty())
        .cloned()
        .unwrap_or_else(|| fallback.to_string())
}

/// Merge the agents' replies into one report. A node that answered contributes its
/// findings (each tagged with its node) and its domains; one that did not is listed with
/// the reason. Replies from the same address are counted once (the first is kept).
pub fn merge(replies: Vec<NodeReply>) -> ClusterReport {
    let mut seen = std::collections::HashSet::new();
    let mut nodes = Vec::new();
    let mut findings = Vec::new();
    let mut scope = None;
    for reply in replies {
        if !seen.insert(reply.address.clone()) {
            continue;
        }
        match reply.answer {
            Ok(report) => {
                let node = node_name(&report, &reply.address);
                for mut f in report.findings {
                    if f.subject.node.is_none() {
                        f.subject.node = Some(node.clone());
                    }
                    findings.push(ClusterFinding {
                        node: node.clone(),
                        finding: f,
                    });
                }
                if scope.is_none() {
                    scope = report.scope;
                }
                nodes.push(NodeStatus {
                    node,
                    address: reply.address,
                    observed: true,
                    reason: None,
                    status: Some(report.status),
                    summary: Some(report.summary),
                    host: Some(report.host),
                    window: Some(report.window),
                    domains: report.domains,
                    degraded: report.degraded,
                    lost: Some(report.lost),
                });
            }
            Err(reason) => nodes.push(NodeStatus {
                node: reply.address.clone(),
                address: reply.address,
                observed: false,
                reason: Some(reason),
                status: None,
                summary: None,
                host: None,
                window: None,
                domains: Vec::new(),
                degraded: Vec::new(),
                lost: None,
            }),
        }
    }
    findings.sort_by(compare);
    nodes.sort_by(|a, b| {
        b.observed
            .cmp(&a.observed)
            .then_with(|| a.node.cmp(&b.node))
            .then_with(|| a.address.cmp(&b.address))
    });
    let (summary, status) = tally(&findings, &nodes);
    ClusterReport {
        schema: crate::SCHEMA_VERSION,
        generator: format!("kerno {}", env!("CARGO_PKG_VERSION")),
        status,
        summary,
        findings,
        nodes,
        scope,
    }
}

/// Findings by severity, and the status they and the nodes give.
fn tally(findings: &[ClusterFinding], nodes: &[NodeStatus]) -> (Summary, Status) {
    let count = |s: Severity| findings.iter().filter(|f| f.finding.severity == s).count();
    let summary = Summary {
        critical: count(Severity::Critical),
        warning: count(Severity::Warning),
        info: count(Severity::Info),
    };
    let status = if summary.critical > 0 {
        Status::Critical
    } else if summary.warning > 0 {
        Status::Warning
    } else if nodes.is_empty()
        || nodes
            .iter()
            .any(|n| !n.observed || n.domains.iter().any(|d| !d.observed))
    {
        Status::Degraded
    } else {
        Status::Healthy
    };
    (summary, status)
}

/// Compare two nodes' findings as [`merge`] ranks them (`Less`: `a` first).
pub fn compare(a: &ClusterFinding, b: &ClusterFinding) -> Ordering {
    urgency(&a.finding, &b.finding).then_with(|| a.node.cmp(&b.node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Domain, FdSignals, Signals, Subject};

    pub(crate) fn finding(rule: &str, severity: Severity, value: f64) -> Finding {
        Finding {
            rule: rule.into(),
            severity,
            title: format!("{rule} at {value}"),
            cause: "cause".into(),
            impact: "impact".into(),
            evidence: vec!["evidence".into()],
            value,
            threshold: 10.0,
            unit: "fd/s".into(),
            fix: vec!["fix".into()],
            eta_secs: None,
            subject: Subject::host("h"),
            low_volume: false,
        }
    }

    fn report(node: &str, findings: Vec<Finding>, fds: bool) -> Report {
        let mut s = Signals::default();
        s.host.node = node.into();
        s.host.hostname = "same-kernel".into();
        s.window.duration_ms = 30_000;
        if fds {
            s.fds = Some(FdSignals::default());
        }
        Report::new(s, findings)
    }

    #[test]
    fn findings_are_ranked_across_nodes_with_their_node() {
        let replies = vec![
            NodeReply {
                address: "10.0.0.1:9090".into(),
                answer: Ok(report(
                    "node-a",
                    vec![finding("syscall-errors", Severity::Warning, 20.0)],
                    false,
                )),
            },
            NodeReply {
                address: "10.0.0.2:9090".into(),
                answer: Ok(report(
                    "node-b",
                    vec![
                        finding("fd-leak", Severity::Critical, 60.0),
                        finding("syscall-errors", Severity::Warning, 30.0),
                    ],
                    true,
                )),
            },
        ];
        let r = merge(replies);
        let order: Vec<(&str, &str)> = r
            .findings
            .iter()
            .map(|f| (f.finding.rule.as_str(), f.node.as_str()))
            .collect();
        // Severity first, then how far past the threshold, across nodes.
        assert_eq!(
            order,
            [
                ("fd-leak", "node-b"),
                ("syscall-errors", "node-b"),
                ("syscall-errors", "node-a")
            ]
        );
        assert_eq!(
            r.findings[0].finding.subject.node.as_deref(),
            Some("node-b")
        );
        assert_eq!(
            r.summary,
            Summary {
                critical: 1,
                warning: 2,
                info: 0
            }
        );
        assert_eq!(r.status, Status::Critical);
        assert_eq!(r.answered(), 2);
        assert_eq!(r.nodes[0].node, "node-a");
        assert!(
            r.nodes[0]
                .unobserved_domains()
                .contains(&Domain::Fds.as_str())
        );
        assert!(
            !r.nodes[1]
                .unobserved_domains()
                .contains(&Domain::Fds.as_str())
        );
    }

    #[test]
    fn a_silent_node_is_listed_not_observed_and_degrades_a_quiet_cluster() {
        let all = |r: &mut Report| {
            // Every domain observed: a healthy node.
            r.domains.iter_mut().for_each(|d| d.observed = true);
            r.status = Status::Healthy;
        };
        let mut a = report("node-a", vec![], true);
        all(&mut a);
        let healthy = merge(vec![NodeReply {
            address: "a:9090".into(),
            answer: Ok(a.clone()),
        }]);
        assert_eq!(healthy.status, Status::Healthy);
        let r = merge(vec![
            NodeReply {
                address: "c:9090".into(),
                answer: Err("no answer within 5 s".into()),
            },
            NodeReply {
                address: "a:9090".into(),
                answer: Ok(a.clone()),
            },
            // The same address twice (a list and a name) is asked and counted once.
            NodeReply {
                address: "a:9090".into(),
                answer: Ok(a),
            },
        ]);
        assert_eq!(r.status, Status::Degraded);
        assert_eq!(r.nodes.len(), 2);
        assert_eq!(r.answered(), 1);
        let miss: Vec<_> = r.not_observed().collect();
        assert_eq!(miss.len(), 1);
        assert_eq!(miss[0].node, "c:9090");
        assert_eq!(miss[0].reason.as_deref(), Some("no answer within 5 s"));
        assert_eq!(merge(Vec::new()).status, Status::Degraded);
    }

    #[test]
    fn the_json_is_a_report_s_findings_plus_their_node() {
        let r = merge(vec![NodeReply {
            address: "10.0.0.2:9090".into(),
            answer: Ok(report(
                "node-b",
                vec![finding("fd-leak", Severity::Critical, 60.0)],
                true,
            )),
        }]);
        let v = serde_json::to_value(&r).unwrap();
        let f = &v["findings"][0];
        assert_eq!(f["node"], "node-b");
        // Every field of a one-node report's finding, flattened beside `node`.
        let one = serde_json::to_value(&r.findings[0].finding).unwrap();
        for (k, val) in one.as_object().unwrap() {
            assert_eq!(&f[k], val, "{k}");
        }
        let back: ClusterReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let crit = r.clone().only_critical();
        assert_eq!(crit.findings.len(), 1);
    }
}
