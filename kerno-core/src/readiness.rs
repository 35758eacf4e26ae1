//! Whether a running agent can answer: the body of its `/readyz`. The agent builds a
//! [`Readiness`]; `kerno doctor` and any other client read it back with serde.

use serde::{Deserialize, Serialize};

use crate::Degraded;

/// An agent's readiness, as `/readyz` serves it (documented in docs/metrics.md).
// Fields in alphabetical order, as /readyz has always listed them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    /// Each collector's readings.
    pub collectors: Vec<CollectorHealth>,
    /// Report domains that cannot be observed, and why.
    pub degraded: Vec<Degraded>,
    /// Each probe domain's state.
    pub domains: Vec<ProbeDomain>,
    /// How far back the agent's kept samples reach, seconds.
    pub history_secs: f64,
    /// Whether the agent answers with windows: [`ReadyStatus::is_ready`].
    pub ready: bool,
    /// Where the agent is.
    pub status: ReadyStatus,
    /// Seconds since the agent started.
    pub uptime_secs: f64,
}

impl Readiness {
    /// The readiness for `status`, `ready` following from it.
    pub fn new(
        status: ReadyStatus,
        domains: Vec<ProbeDomain>,
        degraded: Vec<Degraded>,
        collectors: Vec<CollectorHealth>,
        uptime_secs: f64,
        history_secs: f64,
    ) -> Readiness {
        Readiness {
            collectors,
            degraded,
            domains,
            history_secs,
            ready: status.is_ready(),
            status,
            uptime_secs,
        }
    }
}

/// Where an agent is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReadyStatus {
    /// Loading and attaching the probes.
    Loading,
    /// Sampling, but fewer than two samples are in: no window yet.
    WarmingUp,
    /// Sampling, every domain observed.
    Ready,
    /// Sampling, but some domains cannot be observed (their probes failed).
    Degraded,
    /// Every probe domain failed: nothing to observe.
    Failed,
    /// Shutting down.
    Stopping,
}

impl ReadyStatus {
    /// The status of a sampling agent: `failed` when it has probe domains and none
    /// attached, `warming_up` until two samples are in (a window has two ends),
    /// `degraded` when some probe domain failed or some report domain is unobserved, else
    /// `ready`.
    pub fn sampling(domains: &[ProbeDomain], degraded: &[Degraded], samples: usize) -> Self {
        if !domains.is_empty() && !domains.iter().any(ProbeDomain::attached) {
            ReadyStatus::Failed
        } else if samples < 2 {
            ReadyStatus::WarmingUp
        } else if !domains.iter().all(ProbeDomain::attached) || !degraded.is_empty() {
            ReadyStatus::Degraded
        } else {
            ReadyStatus::Ready
        }
    }

    /// Whether an agent in this status answers with windows (`ready` or `degraded`).
    pub fn is_ready(self) -> bool {
        matches!(self, ReadyStatus::Ready | ReadyStatus::Degraded)
    }
}

/// One probe domain's state.
// Fields in alphabetical order, as /readyz has always listed them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeDomain {
    /// The probe domain (`syscalls`, `sched`, `disk`, `tcp`, `oom`).
    pub domain: String,
    /// Its programs.
    pub programs: Vec<String>,
    /// Why it is not attached (only when it is not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Attached or not.
    pub state: AttachState,
}

impl ProbeDomain {
    /// Whether all its programs are attached.
    pub fn attached(&self) -> bool {
        self.state == AttachState::Attached
    }
}

impl From<&kerno_probes::ProbeStatus> for ProbeDomain {
    fn from(p: &kerno_probes::ProbeStatus) -> Self {
        ProbeDomain {
            domain: p.domain.name().to_string(),
            programs: p.programs.clone(),
            reason: (!p.attached).then(|| {
                crate::engine::not_attached(p.domain, p.error.as_deref().unwrap_or("unknown error"))
            }),
            state: if p.attached {
                AttachState::Attached
            } else {
                AttachState::Degraded
            },
        }
    }
}

/// Whether a probe domain's programs are attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttachState {
    /// All attached.
    Attached,
    /// Not attached: the domain is not observed.
    Degraded,
}

/// One collector's readings since the agent started.
// Fields in alphabetical order, as /readyz has always listed them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CollectorHealth {
    /// Readings that failed.
    pub errors: u64,
    /// Why the last failed reading failed.
    pub last_error: Option<String>,
    /// The collector.
    pub name: String,
    /// Readings taken.
    pub samples: u64,
}

#[cfg(test)]
mod tests {
    use kerno_probes::{Domain, ProbeStatus};

    use super::*;

    fn probe(domain: Domain, error: Option<&str>) -> ProbeDomain {
        ProbeDomain::from(&ProbeStatus {
            domain,
            attached: error.is_none(),
            programs: vec![format!("{}_prog", domain.name())],
            error: error.map(String::from),
        })
    }

    #[test]
    fn status_follows_the_probes_and_the_samples() {
        let ok = probe(Domain::Sched, None);
        let bad = probe(Domain::Tcp, Some("no tracepoint"));
        let gone = Degraded {
            domain: "memory".into(),
            reason: "no procfs".into(),
        };
        let st = ReadyStatus::sampling;
        let one = std::slice::from_ref(&ok);
        let both = [ok.clone(), bad.clone()];
        assert_eq!(st(one, &[], 1), ReadyStatus::WarmingUp);
        assert_eq!(st(one, &[], 2), ReadyStatus::Ready);
        assert_eq!(st(&both, &[], 2), ReadyStatus::Degraded);
        assert_eq!(st(one, &[gone], 2), ReadyStatus::Degraded);
        assert_eq!(st(&[bad], &[], 5), ReadyStatus::Failed);
        assert_eq!(
            st(&[], &[], 2),
            ReadyStatus::Ready,
            "no probes: nothing failed"
        );
        let ready: Vec<bool> = [
            ReadyStatus::Loading,
            ReadyStatus::WarmingUp,
            ReadyStatus::Ready,
            ReadyStatus::Degraded,
            ReadyStatus::Failed,
            ReadyStatus::Stopping,
        ]
        .map(ReadyStatus::is_ready)
        .into();
        assert_eq!(ready, [false, false, true, true, false, false]);
    }

    #[test]
    fn readyz_keeps_its_shape() {
        let r = Readiness::new(
            ReadyStatus::Degraded,
            vec![
                probe(Domain::Sched, None),
                ProbeDomain::from(&ProbeStatus {
                    domain: Domain::Tcp,
                    attached: false,
                    programs: Vec::new(),
                    error: None,
                }),
            ],
            vec![Degraded {
                domain: "tcp".into(),
                reason: "tcp probe not attached: unknown error".into(),
            }],
            vec![CollectorHealth {
                name: "sched".into(),
                samples: 3,
                ..CollectorHealth::default()
            }],
            1.5,
            1.0,
        );
        let text = serde_json::to_string(&r).unwrap();
        assert_eq!(
            text,
            concat!(
                r#"{"collectors":[{"errors":0,"last_error":null,"name":"sched","samples":3}],"#,
                r#""degraded":[{"domain":"tcp","reason":"tcp probe not attached: unknown error"}],"#,
                r#""domains":[{"domain":"sched","programs":["sched_prog"],"state":"attached"},"#,
                r#"{"domain":"tcp","programs":[],"reason":"tcp probe not attached: unknown error","state":"degraded"}],"#,
                r#""history_secs":1.0,"ready":true,"status":"degraded","uptime_secs":1.5}"#
            )
        );
        let back: Readiness = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r, "a client reads back what the agent served");
        assert_eq!(
            serde_json::to_string(&ReadyStatus::WarmingUp).unwrap(),
            r#""warming_up""#
        );
    }
}
