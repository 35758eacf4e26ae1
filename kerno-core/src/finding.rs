//! Findings: what a rule says about a window, in words an on-call engineer can act on.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{Attribution, Process, Signals, attribution::Scope};

/// How bad a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is wrong yet (or too little data to say).
    Info,
    /// Degraded: users may feel it.
    Warning,
    /// Broken or about to break.
    Critical,
}

impl Severity {
    /// `INFO`, `WARN`, `CRIT`.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "INFO",
            Severity::Warning => "WARN",
            Severity::Critical => "CRIT",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What a finding is about.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// `process`, `cgroup`, `device`, `flow`, `syscall`, `listener` (a listening socket's
    /// process and port), `netns` or `host`.
    pub kind: String,
    /// How to name it in one line, e.g. `api (pid 4121)` or `loop0 (7:0)`.
    pub name: String,
    /// The process, when the subject is one or belongs to one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    /// The cgroup, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// The Kubernetes pod, `namespace/name`, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Whose it is (`namespace`, `pod_name`, `pod_uid`, `container`, `container_id`,
    /// `runtime`, `qos`, `workload`, `unit`, `slice`), flattened into the subject.
    #[serde(flatten)]
    pub attribution: Attribution,
    /// The node the finding is on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Subject {
    /// The whole host.
    pub fn host(name: &str) -> Subject {
        Subject {
            kind: "host".into(),
            name: name.into(),
            ..Subject::default()
        }
    }

    /// A process (its cgroup and pod copied up for convenience).
    pub fn process(p: &Process) -> Subject {
        Subject {
            kind: "process".into(),
            name: format!("{} (pid {})", p.comm, p.pid),
            cgroup: p.cgroup.clone(),
            pod: p.pod.clone(),
            attribution: p.attribution.clone(),
            process: Some(p.clone()),
            node: None,
        }
    }

    /// Fill what the rule left out from the window: the attribution of the subject's cgroup
    /// (a `cgroup` subject) or process, its `pod`, and the node. The engine calls it on
    /// every finding, so rules need not.
    pub fn complete(&mut self, signals: &Signals) {
        if self.attribution.is_empty() {
            let of_cgroup = || {
                let path = self.cgroup.as_deref()?;
                let m = signals.memory.as_ref()?;
                m.cgroups
                    .iter()
                    .find(|c| c.path == path)
                    .map(|c| c.attribution.clone())
                    .filter(|a| !a.is_empty())
            };
            let of_process = || {
                self.process
                    .as_ref()
                    .map(|p| p.attribution.clone())
                    .filter(|a| !a.is_empty())
            };
            let found = if self.kind == "cgroup" {
                of_cgroup().or_else(of_process)
            } else {
                of_process().or_else(of_cgroup)
            };
            if let Some(a) = found {
                self.attribution = a;
            }
        }
        if self.pod.is_none() {
            self.pod = self.attribution.pod();
        }
        if self.node.is_none() && !signals.host.node.is_empty() {
            self.node = Some(signals.host.node.clone());
        }
    }

    /// `(namespace, pod name)` of the subject: its attribution's, else its `pod`
    /// (`namespace/name`).
    pub fn pod_names(&self) -> (Option<&str>, Option<&str>) {
        if self.attribution.namespace.is_some() {
            return (
                self.attribution.namespace.as_deref(),
                self.attribution.pod_name.as_deref(),
            );
        }
        match self.pod.as_deref().and_then(|p| p.split_once('/')) {
            Some((ns, name)) => (Some(ns), Some(name)),
            None => (None, None),
        }
    }

    /// Whether the subject is in `scope`.
    pub fn in_scope(&self, scope: &Scope) -> bool {
        let (ns, pod) = self.pod_names();
        scope.contains(ns, pod)
    }

    /// One short line saying whose it is (`payments/checkout-api-7d9f8b6c5-x2k4q (container
    /// api)`, `unit nginx.service`), `None` when nothing is known beyond the name.
    pub fn whose(&self) -> Option<String> {
        self.attribution.describe().or_else(|| self.pod.clone())
    }
}

/// One diagnosis.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The rule's id, e.g. `fd-leak`.
    pub rule: String,
    /// Severity.
    pub severity: Severity,
    /// One line, specific: who, what, how much.
    pub title: String,
    /// Why this is happening, in plain English.
    pub cause: String,
    /// What it does to users and services.
    pub impact: String,
    /// The numbers behind it.
    pub evidence: Vec<String>,
    /// The measured value the threshold applies to.
    pub value: f64,
    /// The threshold it crossed.
    pub threshold: f64,
    /// Unit of `value` and `threshold` (`ms`, `%`, `fd/s`, ...).
    pub unit: String,
    /// Steps to take, copy-paste commands first.
    pub fix: Vec<String>,
    /// Seconds until the limit is hit, when the rule can tell.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<f64>,
    /// What it is about.
    pub subject: Subject,
    /// The window had few samples: the finding is less certain.
    #[serde(default)]
    pub low_volume: bool,
}

impl Finding {
    /// How far past its threshold the value is (1.0 = at the threshold).
    pub fn excess(&self) -> f64 {
        if self.threshold > 0.0 {
            self.value / self.threshold
        } else {
            self.value
        }
    }
}

/// Orders findings for a report: severity first, then urgency (sooner ETA first, findings
/// with an ETA before those without), then distance past the threshold.
pub fn rank(findings: &mut [Finding]) {
    findings.sort_by(urgency);
}

/// The order [`rank`] sorts by: `Less` when `a` is the more urgent.
pub(crate) fn urgency(a: &Finding, b: &Finding) -> std::cmp::Ordering {
    b.severity
        .cmp(&a.severity)
        .then_with(|| match (a.eta_secs, b.eta_secs) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        })
        .then_with(|| b.excess().total_cmp(&a.excess()))
        .then_with(|| a.rule.cmp(&b.rule))
        .then_with(|| a.subject.name.cmp(&b.subject.name))
}

/// `1234567` -> `1,234,567`.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `n` with the noun that agrees with it: `1 device`, `3 devices`, `1,200 requests`.
pub fn counted(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", thousands(n), if n == 1 { one } else { many })
}

/// A duration in ns as a short human string: `850 ns`, `12.3 µs`, `4.56 ms`, `1.20 s`.
pub fn human_ns(ns: f64) -> String {
    if ns < 1_000.0 {
        format!("{ns:.0} ns")
    } else if ns < 1_000_000.0 {
        format!("{:.1} µs", ns / 1e3)
    } else if ns < 1_000_000_000.0 {
        format!("{:.2} ms", ns / 1e6)
    } else {
        format!("{:.2} s", ns / 1e9)
    }
}

/// Bytes as a short human string (binary units).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Seconds as `45 s`, `7 min`, `2.5 h`, `3.0 days`.
pub fn human_secs(s: f64) -> String {
    if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 90.0 * 60.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 48.0 * 3600.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(rule: &str, sev: Severity, eta: Option<f64>, value: f64) -> Finding {
        Finding {
            rule: rule.into(),
            severity: sev,
            title: rule.into(),
            cause: String::new(),
            impact: String::new(),
            evidence: vec![],
            value,
            threshold: 1.0,
            unit: String::new(),
            fix: vec![],
            eta_secs: eta,
            subject: Subject::host("h"),
            low_volume: false,
        }
    }

    #[test]
    fn subjects_are_completed_from_the_window_and_scoped() {
        let attribution = Attribution {
            namespace: Some("payments".into()),
            pod_name: Some("checkout-api-7d9f8b6c5-x2k4q".into()),
            container: Some("api".into()),
            ..Attribution::default()
        };
        let p = Process {
            pid: 7,
            comm: "api".into(),
            attribution: attribution.clone(),
            ..Process::default()
        };
        let mut s = Subject {
            kind: "process".into(),
            name: "api (pid 7)".into(),
            process: Some(p),
            ..Subject::default()
        };
        let mut signals = Signals::default();
        signals.host.node = "node-1".into();
        s.complete(&signals);
        assert_eq!(s.attribution, attribution);
        assert_eq!(
            s.pod.as_deref(),
            Some("payments/checkout-api-7d9f8b6c5-x2k4q")
        );
        assert_eq!(s.node.as_deref(), Some("node-1"));
        assert_eq!(
            s.whose().as_deref(),
            Some("payments/checkout-api-7d9f8b6c5-x2k4q (container api)")
        );
        assert!(s.in_scope(&Scope::namespace("payments").unwrap()));
        assert!(s.in_scope(&Scope::pod("payments/checkout-api-7d9f8b6c5-x2k4q").unwrap()));
        assert!(!s.in_scope(&Scope::pod("payments/other").unwrap()));
        assert!(!s.in_scope(&Scope::namespace("shop").unwrap()));
        // A subject that only carries the legacy `pod` is scoped by it.
        let legacy = Subject {
            pod: Some("shop/cart-7d9f".into()),
            ..Subject::host("x")
        };
        assert!(legacy.in_scope(&Scope::namespace("shop").unwrap()));
        assert!(!Subject::host("h").in_scope(&Scope::namespace("shop").unwrap()));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["namespace"], "payments");
        assert_eq!(json["container"], "api");
        assert_eq!(json["pod"], "payments/checkout-api-7d9f8b6c5-x2k4q");
        let back: Subject = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn ranks_by_severity_then_eta_then_excess() {
        let mut v = vec![
            f("a", Severity::Warning, None, 50.0),
            f("b", Severity::Critical, None, 2.0),
            f("c", Severity::Warning, Some(600.0), 1.1),
            f("d", Severity::Warning, Some(60.0), 1.1),
            f("e", Severity::Warning, None, 3.0),
            f("g", Severity::Info, Some(1.0), 100.0),
        ];
        rank(&mut v);
        let order: Vec<&str> = v.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(order, ["b", "d", "c", "a", "e", "g"]);
    }

    #[test]
    fn human_units() {
        assert_eq!(thousands(48210), "48,210");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(human_ns(4_560_000.0), "4.56 ms");
        assert_eq!(human_bytes(3 * 1024 * 1024), "3.0 MiB");
        assert_eq!(human_secs(420.0), "7 min");
    }
}
