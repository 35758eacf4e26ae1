//! The `Rule` trait and the thresholds rules read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Finding, Signals};

/// A diagnosis rule: a pure function of a window's [`Signals`] and the [`Thresholds`].
///
/// Rules do no I/O, read no clock and need no privileges, so they run the same on a live
/// window, a saved incident, in a unit test or a notebook.
///
/// ```
/// use kerno_core::{Finding, Rule, Severity, Signals, Subject, Thresholds};
///
/// /// Fires when the window saw any failed `connect`.
/// struct ConnectFailures;
///
/// impl Rule for ConnectFailures {
///     fn id(&self) -> &str { "connect-failures" }
///     fn description(&self) -> &str { "any connect() failed" }
///     fn evaluate(&self, s: &Signals, _t: &Thresholds) -> Vec<Finding> {
///         let Some(tcp) = &s.tcp else { return vec![] };
///         if tcp.connect_failed == 0 { return vec![] }
///         vec![Finding {
///             rule: self.id().into(),
///             severity: Severity::Warning,
///             title: format!("{} connects failed", tcp.connect_failed),
///             cause: "peers refused or did not answer".into(),
///             impact: "clients see errors".into(),
///             evidence: vec![],
///             value: tcp.connect_failed as f64,
///             threshold: 1.0,
///             unit: "connects".into(),
///             fix: vec!["ss -tan state syn-sent".into()],
///             eta_secs: None,
///             subject: Subject::host(&s.host.hostname),
///             low_volume: false,
///         }]
///     }
/// }
/// assert!(ConnectFailures.evaluate(&Signals::default(), &Thresholds::default()).is_empty());
/// ```
pub trait Rule: Send + Sync {
    /// A stable id, kebab-case (`fd-leak`). Used in reports, configuration and metrics.
    fn id(&self) -> &str;
    /// One line: when it fires.
    fn description(&self) -> &str;
    /// The findings for this window (empty when all is well).
    fn evaluate(&self, signals: &Signals, thresholds: &Thresholds) -> Vec<Finding>;
}

/// Every threshold the built-in rules use, with the defaults they ship with. Custom rules
/// read theirs from [`Thresholds::custom`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Thresholds {
    /// disk-io: fsync/fdatasync or device flush p99 above this warns (ms).
    pub disk_sync_p99_ms: f64,
    /// disk-io: device write p99 above this warns (ms).
    pub disk_write_p99_ms: f64,
    /// disk-io: any of those p99s above this is critical (ms).
    pub disk_critical_p99_ms: f64,
    /// disk-io: fewer samples than this in the window and the finding says so.
    pub disk_min_samples: u64,

    /// tcp-retransmits: retransmitted / sent segments above this is critical (%).
    pub tcp_retransmit_pct: f64,
    /// tcp-retransmits: fewer segments sent than this and the rule stays quiet.
    pub tcp_min_segments: u64,

    /// tcp-rtt: smoothed RTT p99 above this warns (ms).
    pub tcp_rtt_p99_ms: f64,
    /// tcp-rtt: fewer RTT samples than this and the rule stays quiet.
    pub tcp_rtt_min_samples: u64,

    /// sched-contention: run-queue delay p99 above this warns (ms).
    pub runq_p99_ms: f64,
    /// sched-contention: above this is critical (ms).
    pub runq_critical_p99_ms: f64,
    /// sched-contention: fewer wakeups than this and the rule stays quiet.
    pub runq_min_samples: u64,

    /// fd-leak: net descriptor growth above this warns (descriptors per second).
    pub fd_growth_per_sec: f64,
    /// fd-leak: the share of sample intervals that must grow, so a burst is not a leak.
    pub fd_sustained_ratio: f64,
    /// fd-leak: critical when the soft limit is this close (seconds).
    pub fd_critical_eta_secs: f64,

    /// syscall-latency: a syscall's p99 above this warns (ms); waits are excluded.
    pub syscall_p99_ms: f64,
    /// syscall-latency: above this is critical (ms).
    pub syscall_critical_p99_ms: f64,
    /// syscall-latency: fewer calls than this and the rule stays quiet.
    pub syscall_min_calls: u64,

    /// syscall-errors: a syscall's error rate above this warns (%).
    pub syscall_error_pct: f64,
    /// syscall-errors: above this is critical (%).
    pub syscall_error_critical_pct: f64,
    /// syscall-errors: fewer calls than this and the rule stays quiet.
    pub syscall_error_min_calls: u64,
    /// syscall-errors: fewer failures (not counting benign errnos) than this and the rule
    /// stays quiet, whatever the rate.
    pub syscall_error_min_errors: u64,
    /// syscall-errors: errnos that healthy programs return all day; not counted. An entry
    /// `syscall:ERRNO` (e.g. `close:EBADF`) makes an errno routine for that syscall only.
    pub benign_errnos: Vec<String>,

    /// oom-imminent: memory use above this share of the limit, and growing, warns (%).
    pub oom_imminent_pct: f64,
    /// oom-imminent: critical when the limit is this close (seconds).
    pub oom_critical_eta_secs: f64,

    /// memory-pressure: a cgroup's usage above this share of its limit warns (%).
    pub memory_pressure_pct: f64,

    /// network-latency: connect latency p99 above this warns (ms).
    pub connect_p99_ms: f64,
    /// network-latency: fewer connects than this and the finding says so.
    pub connect_min_samples: u64,

    /// Thresholds of custom rules, by name.
    pub custom: BTreeMap<String, f64>,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            disk_sync_p99_ms: 50.0,
            disk_write_p99_ms: 200.0,
            disk_critical_p99_ms: 200.0,
            disk_min_samples: 20,
            tcp_retransmit_pct: 2.0,
            tcp_min_segments: 500,
            tcp_rtt_p99_ms: 10.0,
            tcp_rtt_min_samples: 50,
            runq_p99_ms: 5.0,
            runq_critical_p99_ms: 20.0,
            runq_min_samples: 200,
            fd_growth_per_sec: 10.0,
            fd_sustained_ratio: 0.75,
            fd_critical_eta_secs: 600.0,
            syscall_p99_ms: 100.0,
            syscall_critical_p99_ms: 500.0,
            syscall_min_calls: 20,
            syscall_error_pct: 1.0,
            syscall_error_critical_pct: 10.0,
            syscall_error_min_calls: 100,
            syscall_error_min_errors: 10,
            benign_errnos: [
                "EAGAIN",
                "EINTR",
                "EINPROGRESS",
                "EALREADY",
                "ETIMEDOUT",
                "ERESTARTSYS",
                "ERESTARTNOINTR",
                "ERESTARTNOHAND",
                "ERESTART_RESTARTBLOCK",
                "ENOENT",
                "ENOTTY",
                "ECHILD",
                "ENODATA",
                "ESRCH",
                "EEXIST",
                "ENOSYS",
                "EOPNOTSUPP",
                "ENOTSUPP",
            ]
            .map(String::from)
            .to_vec(),
            oom_imminent_pct: 90.0,
            oom_critical_eta_secs: 300.0,
            memory_pressure_pct: 90.0,
            connect_p99_ms: 100.0,
            connect_min_samples: 5,
            custom: BTreeMap::new(),
        }
    }
}

impl Thresholds {
    /// Check that every threshold is a finite, non-negative number and the ratios are in
    /// range; the error names the offending key.
    pub fn validate(&self) -> Result<(), crate::ConfigError> {
        let checks: &[(&str, f64)] = &[
            ("disk_sync_p99_ms", self.disk_sync_p99_ms),
            ("disk_write_p99_ms", self.disk_write_p99_ms),
            ("disk_critical_p99_ms", self.disk_critical_p99_ms),
            ("tcp_retransmit_pct", self.tcp_retransmit_pct),
            ("tcp_rtt_p99_ms", self.tcp_rtt_p99_ms),
            ("runq_p99_ms", self.runq_p99_ms),
            ("runq_critical_p99_ms", self.runq_critical_p99_ms),
            ("fd_growth_per_sec", self.fd_growth_per_sec),
            ("fd_sustained_ratio", self.fd_sustained_ratio),
            ("fd_critical_eta_secs", self.fd_critical_eta_secs),
            ("syscall_p99_ms", self.syscall_p99_ms),
            ("syscall_critical_p99_ms", self.syscall_critical_p99_ms),
            ("syscall_error_pct", self.syscall_error_pct),
            (
                "syscall_error_critical_pct",
                self.syscall_error_critical_pct,
            ),
            ("oom_imminent_pct", self.oom_imminent_pct),
            ("oom_critical_eta_secs", self.oom_critical_eta_secs),
            ("memory_pressure_pct", self.memory_pressure_pct),
            ("connect_p99_ms", self.connect_p99_ms),
        ];
        for &(key, v) in checks {
            if !v.is_finite() || v < 0.0 {
                return Err(crate::ConfigError::Invalid {
                    key: format!("thresholds.{key}"),
                    reason: format!("must be a non-negative number, got {v}"),
                });
            }
        }
        for (key, v) in [
            ("tcp_retransmit_pct", self.tcp_retransmit_pct),
            ("syscall_error_pct", self.syscall_error_pct),
            (
                "syscall_error_critical_pct",
                self.syscall_error_critical_pct,
            ),
            ("oom_imminent_pct", self.oom_imminent_pct),
            ("memory_pressure_pct", self.memory_pressure_pct),
        ] {
            if v > 100.0 {
                return Err(crate::ConfigError::Invalid {
                    key: format!("thresholds.{key}"),
                    reason: format!("is a percentage, at most 100, got {v}"),
                });
            }
        }
        if self.fd_sustained_ratio > 1.0 {
            return Err(crate::ConfigError::Invalid {
                key: "thresholds.fd_sustained_ratio".into(),
                reason: format!("is a ratio from 0 to 1, got {}", self.fd_sustained_ratio),
            });
        }
        for (k, v) in &self.custom {
            if !v.is_finite() {
                return Err(crate::ConfigError::Invalid {
                    key: format!("thresholds.custom.{k}"),
                    reason: format!("must be a finite number, got {v}"),
                });
            }
        }
        Ok(())
    }
}
