//! `predict`: what will run out, and when.
//!
//! Levels that have a limit (memory of each cgroup and of the host, descriptors of each
//! process, ...) are read from a window's [`Signals`] as [`Level`]s, each a [`Series`] of
//! what is used and the limit it runs into. [`forecast`] fits each with the [`trend`]
//! module's Theil–Sen line and keeps only growth that is real, lasting, large enough and
//! due inside the horizon; each [`Prediction`] has its trend, ETA (with a range from the
//! slope's confidence interval) and a confidence, ranked by ETA. Why each gate exists is in
//! `docs/predict.md`: every one answers a false alarm users of other tools complained of.
//!
//! ```
//! use kerno_core::{Series, predict::{Level, Resource, PredictOptions, forecast_levels}};
//!
//! // A cgroup growing 1 MiB a second towards its 64 MiB limit, sampled each second.
//! let mib = 1048576.0;
//! let leak = Level::new(Resource::CgroupMemory, "/leaky", 64.0 * mib,
//!     Series::from_points((0..=20).map(|i| (i * 1000, (20 + i) as f64 * mib))));
//! let f = forecast_levels(vec![leak], &PredictOptions::default());
//! assert_eq!(f.predictions.len(), 1);
//! assert_eq!(f.predictions[0].eta_secs.round(), 24.0);
//! ```
//!
//! [`trend`]: crate::trend

mod levels;
mod method;
mod render;
mod sample;

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

pub use levels::levels;
pub use method::{Verdict, judge};
pub use render::{PredictRenderOptions, pretty};
pub use sample::{collect_snapshots, engine};

use crate::{Host, Process, Series, Signals, Window};

/// What runs out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// Host memory in use (total − `MemAvailable`) against `MemTotal`.
    HostMemory,
    /// A cgroup's working set (or usage) against its memory limit.
    CgroupMemory,
    /// A process's open descriptors against its soft `RLIMIT_NOFILE`.
    Fds,
    /// A filesystem's space used (size − available to unprivileged writers) against its
    /// size.
    FsSpace,
    /// A filesystem's inodes used against its inode count.
    FsInodes,
    /// A pids cgroup's tasks against its `pids.max`.
    CgroupPids,
    /// The host's tasks against the smaller of `pid_max` and `threads-max`.
    HostPids,
    /// A network namespace's tracked connections against `nf_conntrack_max`.
    Conntrack,
}

/// How a resource's amounts are counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Bytes.
    Bytes,
    /// Things counted one by one (descriptors, processes, entries).
    Count,
}

impl Resource {
    /// A stable short name (`cgroup_memory`, `fds`, ...), as in the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Resource::HostMemory => "host_memory",
            Resource::CgroupMemory => "cgroup_memory",
            Resource::Fds => "fds",
            Resource::FsSpace => "fs_space",
            Resource::FsInodes => "fs_inodes",
            Resource::CgroupPids => "cgroup_pids",
            Resource::HostPids => "host_pids",
            Resource::Conntrack => "conntrack",
        }
    }

    /// What people call it.
    pub fn noun(self) -> &'static str {
        match self {
            Resource::HostMemory => "host memory",
            Resource::CgroupMemory => "memory",
            Resource::Fds => "file descriptors",
            Resource::FsSpace => "space",
            Resource::FsInodes => "inodes",
            Resource::CgroupPids => "pids",
            Resource::HostPids => "host pids",
            Resource::Conntrack => "conntrack entries",
        }
    }

    /// Whether its noun is plural (`file descriptors run out`).
    pub fn plural(self) -> bool {
        matches!(
            self,
            Resource::Fds
                | Resource::FsInodes
                | Resource::CgroupPids
                | Resource::HostPids
                | Resource::Conntrack
        )
    }

    /// Its unit.
    pub fn unit(self) -> Unit {
        match self {
            Resource::HostMemory | Resource::CgroupMemory | Resource::FsSpace => Unit::Bytes,
            Resource::Fds
            | Resource::FsInodes
            | Resource::CgroupPids
            | Resource::HostPids
            | Resource::Conntrack => Unit::Count,
        }
    }

    /// What happens when it runs out.
    pub fn consequence(self) -> &'static str {
        match self {
            Resource::HostMemory => {
                "the kernel's OOM killer picks a victim (the kubelet evicts pods first, at 100 MiB available by default)"
            }
            Resource::CgroupMemory => "the cgroup's processes are OOM-killed",
            Resource::Fds => "open(), socket() and accept() fail with EMFILE",
            Resource::FsSpace => {
                "writes fail with ENOSPC (the kubelet evicts pods first when it is its nodefs or imagefs: 10% and 15% available by default)"
            }
            Resource::FsInodes => {
                "file creation fails with ENOSPC though space is left (the kubelet evicts at 5% inodes free on its nodefs)"
            }
            Resource::CgroupPids => "fork() and pthread_create() in the cgroup fail with EAGAIN",
            Resource::HostPids => "fork() and pthread_create() fail with EAGAIN on the whole host",
            Resource::Conntrack => {
                "new connections are dropped (\"nf_conntrack: table full, dropping packet\")"
            }
        }
    }

    /// The least growth over the observed span that counts (`limit` in the resource's
    /// unit): a few pages or a handful of descriptors is not a trend worth a warning.
    pub fn min_growth(self, limit: f64) -> f64 {
        match self {
            Resource::HostMemory | Resource::CgroupMemory | Resource::FsSpace => {
                (1024.0 * 1024.0f64).max(0.005 * limit)
            }
            Resource::Fds => 8f64.max(0.005 * limit),
            Resource::CgroupPids | Resource::HostPids => 4f64.max(0.005 * limit),
            Resource::FsInodes | Resource::Conntrack => 64f64.max(0.005 * limit),
        }
    }
}

/// One level to watch: what is used over time, and the limit it runs into.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Level {
    /// What runs out.
    pub resource: Resource,
    /// Which one: the cgroup path, `pid 123 (comm)`, `host`.
    pub what: String,
    /// The process, for a per-process level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    /// The cgroup, for a per-cgroup level (or the process's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// The Kubernetes pod (`namespace/name`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// The limit, in the resource's unit.
    pub limit: f64,
    /// What happens at the limit, when it is not the resource's usual consequence (a
    /// kubelet eviction threshold rather than the hard limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consequence: Option<String>,
    /// What is used, oldest first (ms since the window's start).
    pub series: Series,
}

impl Level {
    /// A level with no process, cgroup or pod named.
    pub fn new(resource: Resource, what: impl Into<String>, limit: f64, series: Series) -> Level {
        Level {
            resource,
            what: what.into(),
            process: None,
            cgroup: None,
            pod: None,
            limit,
            consequence: None,
            series,
        }
    }
}

/// How sure a prediction is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// A rough line, or an ETA far beyond what was observed.
    Low,
    /// A good line, extrapolated moderately.
    Medium,
    /// A near-perfect line, a tight slope, and an ETA not far beyond the observed span.
    High,
}

impl Confidence {
    /// `low`, `medium`, `high`.
    pub fn label(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// Something that will run out inside the horizon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    /// What runs out.
    pub resource: Resource,
    /// Its unit.
    pub unit: Unit,
    /// Which one.
    pub what: String,
    /// The process, for a per-process level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    /// The cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// The Kubernetes pod (`namespace/name`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Used now (the last sample).
    pub current: f64,
    /// The limit.
    pub limit: f64,
    /// Growth, units per second (Theil–Sen).
    pub per_sec: f64,
    /// Seconds until the limit at that rate, from the last sample.
    pub eta_secs: f64,
    /// The soonest it may run out (the slope interval's upper end).
    pub eta_low_secs: f64,
    /// The latest (the slope interval's lower end).
    pub eta_high_secs: f64,
    /// When, as Unix time in ms: the window's end plus the ETA ([`forecast`]; 0 from
    /// [`forecast_levels`], whose levels carry no clock).
    pub at_unix_ms: u64,
    /// How sure.
    pub confidence: Confidence,
    /// The line's R² (0 to 1).
    pub fit: f64,
    /// Points the line was fitted on.
    pub points: usize,
    /// Seconds those points span.
    pub span_secs: f64,
    /// Whether it runs out within `--warn-within`.
    pub warn: bool,
    /// What happens then.
    pub consequence: String,
}

impl Prediction {
    /// Used now as a percentage of the limit.
    pub fn fill_pct(&self) -> f64 {
        100.0 * self.current / self.limit.max(f64::MIN_POSITIVE)
    }
}

/// How to predict.
#[derive(Clone, Debug, PartialEq)]
pub struct PredictOptions {
    /// Only what runs out within this is predicted (`--horizon`, 24 h).
    pub horizon: Duration,
    /// Predictions due within this are warnings (`--warn-within`, 1 h): `--exit-code`
    /// exits 3.
    pub warn_within: Duration,
    /// A level needs at least this many points.
    pub min_points: usize,
    /// The line must explain at least this share of the variance (R²).
    pub min_fit: f64,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions {
            horizon: Duration::from_secs(24 * 3600),
            warn_within: Duration::from_secs(3600),
            min_points: 5,
            min_fit: 0.8,
        }
    }
}

/// Where the data came from.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ForecastSource {
    /// `snapshots` (sampled here), `agent` (the running agent's history) or `file`.
    pub kind: String,
    /// Samples taken.
    pub snapshots: usize,
    /// Between samples, ms.
    pub interval_ms: u64,
}

/// What will run out, soonest first, and what was watched.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Forecast {
    /// The machine.
    pub host: Host,
    /// The span observed.
    pub window: Window,
    /// Where the data came from.
    pub source: ForecastSource,
    /// The horizon, seconds.
    pub horizon_secs: f64,
    /// The warning threshold, seconds.
    pub warn_within_secs: f64,
    /// Predictions, soonest first.
    pub predictions: Vec<Prediction>,
    /// Levels watched.
    pub watched: usize,
    /// Levels not predicted, by reason (`steady`, `sawtooth`, `beyond_horizon`, ...).
    pub not_predicted: BTreeMap<String, usize>,
    /// Domains that could not be observed, and why.
    #[serde(default)]
    pub degraded: Vec<crate::Degraded>,
}

impl Forecast {
    /// Whether something runs out within `warn_within`.
    pub fn any_warning(&self) -> bool {
        self.predictions.iter().any(|p| p.warn)
    }
}

/// Predict from levels: judge each ([`judge`]), keep what runs out, count the rest by
/// reason, rank by ETA. Pure: no kernel, no clock.
pub fn forecast_levels(levels: Vec<Level>, opts: &PredictOptions) -> Forecast {
    let mut f = Forecast {
        horizon_secs: opts.horizon.as_secs_f64(),
        warn_within_secs: opts.warn_within.as_secs_f64(),
        watched: levels.len(),
        ..Forecast::default()
    };
    for l in levels {
        match judge(&l, opts) {
            Verdict::RunsOut(p) => f.predictions.push(*p),
            v => *f.not_predicted.entry(v.reason().to_string()).or_insert(0) += 1,
        }
    }
    f.predictions.sort_by(|a, b| {
        a.eta_secs
            .total_cmp(&b.eta_secs)
            .then(a.resource.cmp(&b.resource))
            .then(a.what.cmp(&b.what))
    });
    f
}

/// Predict from a window's signals: every level they hold ([`levels`]), judged. Processes
/// whose descriptor count never grew are not listed in the signals; they count as watched
/// and steady.
pub fn forecast(signals: &Signals, opts: &PredictOptions) -> Forecast {
    let mut f = forecast_levels(levels(signals), opts);
    if let Some(fc) = &signals.fd_counts {
        let unlisted = fc.processes_counted.saturating_sub(fc.processes.len());
        f.watched += unlisted;
        if unlisted > 0 {
            *f.not_predicted.entry("steady".into()).or_insert(0) += unlisted;
        }
    }
    let end = signals
        .window
        .start_unix_ms
        .saturating_add(signals.window.duration_ms);
    for p in &mut f.predictions {
        p.at_unix_ms = end + (p.eta_secs * 1000.0) as u64;
    }
    f.host = signals.host.clone();
    f.window = signals.window.clone();
    f.degraded = signals.degraded.clone();
    f
}
