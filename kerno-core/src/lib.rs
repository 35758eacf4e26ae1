//! Kerno's SDK.
//!
//! Kerno turns a window of kernel signals into a ranked, plain-English diagnosis. This
//! crate is the library every frontend (the `kerno` CLI, the Prometheus agent, the Python
//! bindings) and every embedding program uses:
//!
//! - [`Signals`]: one window of observations, serde-serialisable, the one source of truth;
//! - [`Collector`]: something that fills part of [`Signals`] (built-ins over the eBPF
//!   probes and procfs in [`collectors`]);
//! - [`Rule`]: a pure function of [`Signals`] and [`Thresholds`] returning [`Finding`]s
//!   (the built-in rules live in the `kerno-rules` crate);
//! - [`Engine`]: runs collectors for a window and rules over it, giving a [`Report`];
//! - [`render`]: the pretty, JSON and HTML renderings of a report;
//! - [`Config`]: configuration from file, `KERNO_*` environment and flags;
//! - [`attribution`]: whose a process or cgroup is (pod, container, systemd unit), from
//!   node-local files alone; [`host`]: the host root, node name and environment;
//! - [`readiness`]: a running agent's `/readyz`, shared by the agent and its clients;
//! - [`explain`]: kernel log messages explained offline (`kerno explain`), and what each
//!   rule checks;
//! - [`preflight`]: whether this node can run Kerno, check by check, with the fixes;
//! - [`predict`]: what will run out (memory, descriptors, ...) and when, from a window.
//! - [`cluster`]: many nodes' reports merged into one ranked report (`kerno doctor
//!   --cluster`).
//! - [`stream`]: live streams (syscalls, OOM kills, descriptor growth) as typed async
//!   `Stream`s, with loss accounting.
//!
//! ```
//! use kerno_core::{Signals, Thresholds, evaluate};
//!
//! // Rules run anywhere, on any window, without root.
//! let report = evaluate(&Signals::default(), &[], &Thresholds::default());
//! assert!(report.findings.is_empty());
//! ```
#![deny(missing_docs)]

pub mod attribution;
pub mod cluster;
mod collector;
pub mod collectors;
pub mod config;
mod domain;
mod engine;
mod error;
pub mod explain;
mod finding;
mod histogram;
pub mod host;
pub mod predict;
pub mod preflight;
pub mod procfs;
pub mod readiness;
pub mod render;
mod report;
mod rule;
mod signals;
mod snapshot;
pub mod stream;
mod threshold;
pub mod trend;

pub use attribution::{Attribution, Scope, Workload};
pub use collector::{Collector, Sample};
pub use config::Config;
pub use domain::Domain;
pub use engine::{
    Engine, KernelOptions, check_privileges, evaluate, evaluate_windows, findings_windows,
};
pub use error::{CollectorError, ConfigError, CoreError};
pub use finding::{Finding, Severity, Subject, human_bytes, human_ns, human_secs, rank, thousands};
pub use histogram::Histogram;
pub use report::{Analysis, DomainStatus, Report, Status, Summary, domain_statuses};
pub use rule::{Rule, RuleDoc};
pub use signals::*;
pub use snapshot::{load_signals, parse_signals, save_signals};
pub use threshold::{
    ThresholdDefault, ThresholdRegistry, ThresholdSpec, ThresholdValue, Thresholds,
};
pub use trend::Series;

/// Unix time now, in milliseconds.
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
