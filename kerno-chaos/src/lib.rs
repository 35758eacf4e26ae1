//! Kerno's chaos scenarios: induce real kernel-level incidents on purpose, so Kerno's
//! diagnosis can be checked end to end against the kernel itself (and shown to people who
//! want to see it work). `kerno chaos` and the root tests use it; the SDK (`kerno-core`),
//! the agent and the Python bindings do not link it.
//!
//! Each scenario makes the kernel really do what a rule looks for, at the default
//! thresholds: processes really wait on the run queue, fsyncs really take 100 ms because
//! the block device behind them is slow, TCP really retransmits because packets are really
//! dropped on a link, a cgroup really fills up and the OOM killer really kills. Nothing is
//! simulated in Kerno's own data path.
//!
//! ```no_run
//! use std::time::Duration;
//! use kerno_chaos::{ChaosOptions, Intensity};
//!
//! // Needs root.
//! let opts = ChaosOptions::new(Intensity::Medium, Duration::from_secs(30));
//! let running = kerno_chaos::start("tcp-loss", &opts)?;
//! println!("workload pids: {:?}, namespaces: {:?}", running.pids, running.netns);
//! // ... run `kerno doctor`, or collect signals with the engine ...
//! running.stop()?; // or just drop it
//! # Ok::<(), kerno_chaos::ChaosError>(())
//! ```
//!
//! # Cleanup
//!
//! Nothing a scenario creates outlives it. Every object (network namespaces with their
//! veths, nftables rules and qdiscs; cgroups; mounts; loop devices; temporary directories;
//! worker processes) is owned by a guard in the [`Running`] value and removed, in reverse
//! order of creation, by [`Running::stop`] or when it is dropped (also while unwinding from
//! a panic). Worker processes get `PR_SET_PDEATHSIG(SIGKILL)`, so they die with their owner
//! even when it is SIGKILLed; every object is named `kerno-chaos-<owner pid>-<n>`, and
//! [`start`] first removes whatever a crashed earlier run left ([`clean_stale`]).
//!
//! Workers are forked from the calling thread and die when *that thread* exits: start and
//! stop a scenario from a thread that outlives it (the main thread, a test's thread).
#![deny(missing_docs)]

mod cgroup;
mod cleanup;
mod device;
mod error;
mod fsguard;
mod fuse;
mod loopdev;
mod net;
mod sys;

mod cascade;
mod conntrack_full;
mod cpu;
mod cpu_throttle;
mod disk_sat;
mod fd_leak;
mod filesystem_full;
mod io_throttle;
mod listen_overflow;
mod memory;
mod memory_reclaim;
mod network_latency;
mod oom;
mod pid_exhaustion;
mod slow_syscalls;
mod syscall_errors;
mod tcp_churn;
mod tcp_loss;
mod tcp_rtt;

use std::{
    fmt,
    str::FromStr,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

pub use cleanup::{clean_stale, leftovers};
pub use device::SlowDevice;
pub use error::ChaosError;
pub use fuse::{SlowFs, SlowFsStats};
pub use net::tcp_segments;

use sys::Worker;

/// How hard a scenario pushes. Every level crosses the default threshold of the rule the
/// scenario targets; higher levels go further past it (most reach the critical level).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Intensity {
    /// Just past the warning threshold.
    Low,
    /// Clearly past it.
    #[default]
    Medium,
    /// Far past it, usually critical.
    High,
}

impl Intensity {
    /// Every level, lowest first.
    pub const ALL: [Intensity; 3] = [Intensity::Low, Intensity::Medium, Intensity::High];

    /// `low`, `medium` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Intensity::Low => "low",
            Intensity::Medium => "medium",
            Intensity::High => "high",
        }
    }

    /// Pick one of three values by level.
    pub(crate) fn pick<T>(self, low: T, medium: T, high: T) -> T {
        match self {
            Intensity::Low => low,
            Intensity::Medium => medium,
            Intensity::High => high,
        }
    }
}

impl fmt::Display for Intensity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Intensity {
    type Err = String;
    fn from_str(s: &str) -> Result<Intensity, String> {
        match s.to_ascii_lowercase().as_str() {
            "low" => Ok(Intensity::Low),
            "medium" | "med" => Ok(Intensity::Medium),
            "high" => Ok(Intensity::High),
            other => Err(format!(
                "unknown intensity {other:?} (expected low, medium or high)"
            )),
        }
    }
}

/// How to run a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChaosOptions {
    /// How hard.
    pub intensity: Intensity,
    /// How long the caller means to keep it running. Scenarios that build up (memory
    /// growth, a cascade's stages) plan with it; none stops by itself.
    pub duration: Duration,
    /// Workers wait this long before they start misbehaving (the setup is done at once).
    pub start_after: Duration,
}

impl ChaosOptions {
    /// Options with no start delay.
    pub fn new(intensity: Intensity, duration: Duration) -> ChaosOptions {
        ChaosOptions {
            intensity,
            duration,
            start_after: Duration::ZERO,
        }
    }
}

impl Default for ChaosOptions {
    fn default() -> Self {
        ChaosOptions::new(Intensity::Medium, Duration::from_secs(30))
    }
}

/// A scenario in the catalogue. Each scenario's file declares its own, and [`SCENARIOS`]
/// lists them: that list is the one place a new scenario is registered.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// Its name (`kerno chaos --induce NAME`).
    pub name: &'static str,
    /// The rule ids it should make fire at the default thresholds (empty: none).
    pub rules: &'static [&'static str],
    /// What it does to the kernel, in a sentence or two.
    pub summary: &'static str,
    /// What low, medium and high mean for it, and what was measured.
    pub intensities: &'static str,
    /// Sets the incident up and returns it running (root already checked, stale objects
    /// already removed: [`Scenario::start`] does both first).
    induce: fn(&ChaosOptions) -> Result<Running, ChaosError>,
}

impl Scenario {
    /// Start this scenario. Needs root. Returns once every worker runs; the incident goes
    /// on until the returned [`Running`] is stopped or dropped.
    ///
    /// Removes what crashed earlier runs left ([`clean_stale`]) first.
    pub fn start(&self, opts: &ChaosOptions) -> Result<Running, ChaosError> {
        sys::require_root()?;
        cleanup::clean_stale_quietly();
        (self.induce)(opts)
    }
}

/// Every scenario, in the order `kerno chaos --list` shows them.
pub const SCENARIOS: &[Scenario] = &[
    cpu::SCENARIO,
    disk_sat::SCENARIO,
    fd_leak::SCENARIO,
    memory::SCENARIO,
    oom::SCENARIO,
    tcp_loss::SCENARIO,
    tcp_rtt::SCENARIO,
    network_latency::SCENARIO,
    tcp_churn::SCENARIO,
    syscall_errors::SCENARIO,
    slow_syscalls::SCENARIO,
    cascade::SCENARIO,
    filesystem_full::SCENARIO,
    conntrack_full::SCENARIO,
    pid_exhaustion::SCENARIO,
    cpu_throttle::SCENARIO,
    memory_reclaim::SCENARIO,
    io_throttle::SCENARIO,
    listen_overflow::SCENARIO,
];

/// The scenario named `name`.
pub fn scenario(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|s| s.name == name)
}

/// Start the scenario named `name` ([`Scenario::start`]). Needs root. Returns once every
/// worker runs; the incident goes on until the returned [`Running`] is stopped or dropped.
///
/// Removes what crashed earlier runs left ([`clean_stale`]) first.
pub fn start(name: &str, opts: &ChaosOptions) -> Result<Running, ChaosError> {
    scenario(name)
        .ok_or_else(|| ChaosError::UnknownScenario(name.to_string()))?
        .start(opts)
}

/// What a running scenario holds; dropped in reverse order of creation.
enum Guard {
    /// A workload process (reported in `pids`).
    Workload(Worker),
    /// A helper process (a server, a receiver; reported in `helper_pids`).
    Helper(Worker),
    /// A slow device (its FUSE server is watched).
    Device(SlowDevice),
    /// Anything else that undoes itself on drop (held only for its `Drop`).
    #[allow(dead_code)]
    Other(Box<dyn Send>),
}

/// A running scenario. Dropping it (or [`Running::stop`]) tears everything down.
pub struct Running {
    /// The scenario's name.
    pub scenario: String,
    /// How hard it pushes.
    pub intensity: Intensity,
    /// The workload processes: the subjects Kerno's findings should name (a cascade's
    /// lists its stages').
    pub pids: Vec<u32>,
    /// Helper processes (FUSE servers, TCP receivers): part of the set-up, not the
    /// incident.
    pub helper_pids: Vec<u32>,
    /// The scenario's cgroup path (`/kerno-chaos-<pid>-<n>`, the same below every
    /// controller), which every workload process is in, when one was made.
    pub cgroup: Option<String>,
    /// Network namespaces it made.
    pub netns: Vec<String>,
    /// Block devices it made (`loop3`).
    pub devices: Vec<String>,
    /// Filesystems it mounted (the slow ext4 or FUSE filesystem the workload uses).
    pub mounts: Vec<std::path::PathBuf>,
    /// What was set up, one line each, for people.
    pub notes: Vec<String>,
    /// A cascade's stages, in order (empty for other scenarios).
    pub stages: Vec<Running>,
    guards: Vec<Guard>,
    _owner: sys::OwnerToken,
}

impl fmt::Debug for Running {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Running")
            .field("scenario", &self.scenario)
            .field("intensity", &self.intensity)
            .field("pids", &self.pids)
            .field("helper_pids", &self.helper_pids)
            .field("cgroup", &self.cgroup)
            .field("netns", &self.netns)
            .field("devices", &self.devices)
            .field("mounts", &self.mounts)
            .field("notes", &self.notes)
            .field("stages", &self.stages)
            .finish_non_exhaustive()
    }
}

impl Running {
    pub(crate) fn new(scenario: &str, intensity: Intensity) -> Running {
        Running {
            scenario: scenario.to_string(),
            intensity,
            pids: Vec::new(),
            helper_pids: Vec::new(),
            cgroup: None,
            netns: Vec::new(),
            devices: Vec::new(),
            mounts: Vec::new(),
            notes: Vec::new(),
            stages: Vec::new(),
            guards: Vec::new(),
            _owner: sys::OwnerToken::take(),
        }
    }

    pub(crate) fn workload(&mut self, w: Worker) {
        self.pids.push(w.pid());
        self.guards.push(Guard::Workload(w));
    }

    pub(crate) fn helper(&mut self, w: Worker) {
        self.helper_pids.push(w.pid());
        self.guards.push(Guard::Helper(w));
    }

    pub(crate) fn device(&mut self, d: SlowDevice) {
        let (ma, mi) = d.dev();
        self.devices.push(d.name());
        self.mounts.extend(d.mountpoint().map(|m| m.to_path_buf()));
        self.helper_pids.push(d.server_pid());
        self.notes.push(format!(
            "{} ({ma}:{mi}): a loop device over a file on a FUSE filesystem that waits {} ms per request",
            d.name(),
            d.delay().as_millis()
        ));
        self.guards.push(Guard::Device(d));
    }

    pub(crate) fn guard(&mut self, g: impl Send + 'static) {
        self.guards.push(Guard::Other(Box::new(g)));
    }

    pub(crate) fn note(&mut self, s: impl Into<String>) {
        self.notes.push(s.into());
    }

    /// Fails when a worker or helper died (the incident is no longer what it claims).
    pub fn check(&mut self) -> Result<(), ChaosError> {
        for s in &mut self.stages {
            s.check()?;
        }
        for g in &mut self.guards {
            match g {
                Guard::Workload(w) | Guard::Helper(w) => {
                    if let Some(status) = w.poll_exit().map(str::to_string) {
                        return Err(ChaosError::WorkerDied {
                            name: w.comm().to_string(),
                            pid: w.pid(),
                            status,
                        });
                    }
                }
                Guard::Device(d) => {
                    if let Some(status) = d.server_exit() {
                        return Err(ChaosError::WorkerDied {
                            name: "kchaos-fuse".into(),
                            pid: d.server_pid(),
                            status,
                        });
                    }
                }
                Guard::Other(_) => {}
            }
        }
        Ok(())
    }

    /// Keep the incident going for `duration`, checking the workers, or until `stop`
    /// becomes true (a Ctrl-C handler's flag). `Ok(true)` when stopped early.
    pub fn wait(
        &mut self,
        duration: Duration,
        stop: Option<&AtomicBool>,
    ) -> Result<bool, ChaosError> {
        let end = Instant::now() + duration;
        loop {
            if stop.is_some_and(|s| s.load(Ordering::SeqCst)) {
                return Ok(true);
            }
            self.check()?;
            let now = Instant::now();
            if now >= end {
                return Ok(false);
            }
            std::thread::sleep((end - now).min(Duration::from_millis(100)));
        }
    }

    /// Tear everything down now; fails naming anything that is still there afterwards.
    pub fn stop(mut self) -> Result<(), ChaosError> {
        let mut cgroups: Vec<String> = self.cgroup.iter().cloned().collect();
        cgroups.extend(self.stages.iter().filter_map(|s| s.cgroup.clone()));
        let (pids, helpers) = (self.pids.clone(), self.helper_pids.clone());
        let (netns, mounts) = (self.netns.clone(), self.mounts.clone());
        let devices = self.devices.clone();
        self.teardown();
        let mut left = Vec::new();
        for pid in pids.iter().chain(&helpers) {
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                left.push(format!("process {pid}"));
            }
        }
        for n in &netns {
            if std::path::Path::new("/run/netns").join(n).exists() {
                left.push(format!("network namespace {n}"));
            }
        }
        let now_mounted = fsguard::mount_points();
        for m in &mounts {
            if now_mounted.contains(m) {
                left.push(format!("mount {}", m.display()));
            }
        }
        let owner = format!("{}{}-", sys::PREFIX, std::process::id());
        for d in &devices {
            let backing = std::fs::read_to_string(format!("/sys/block/{d}/loop/backing_file"))
                .unwrap_or_default();
            if backing.contains(&owner) {
                left.push(format!("loop device {d}"));
            }
        }
        for line in leftovers(std::process::id()) {
            if cgroups
                .iter()
                .any(|c| line.starts_with("cgroup ") && line.contains(&format!("{c} (")))
            {
                left.push(line);
            }
        }
        if left.is_empty() {
            Ok(())
        } else {
            Err(ChaosError::Teardown(left))
        }
    }

    fn teardown(&mut self) {
        while let Some(g) = self.guards.pop() {
            drop(g);
        }
        while let Some(s) = self.stages.pop() {
            drop(s);
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_scenario_is_registered_once_and_found_by_its_name() {
        for s in SCENARIOS {
            let same = SCENARIOS.iter().filter(|t| t.name == s.name).count();
            assert_eq!(same, 1, "{} is registered {same} times", s.name);
            assert_eq!(scenario(s.name).map(|t| t.name), Some(s.name));
            assert!(!s.summary.is_empty(), "{}: summary", s.name);
            assert!(!s.intensities.is_empty(), "{}: intensities", s.name);
        }
        assert!(scenario("nope").is_none());
    }

    #[test]
    fn an_unknown_name_is_refused_before_anything_is_touched() {
        // Before the root check too: the answer is the same for root and for anyone else.
        match start("nope", &ChaosOptions::default()) {
            Err(ChaosError::UnknownScenario(name)) => assert_eq!(name, "nope"),
            other => panic!("expected UnknownScenario, got {other:?}"),
        }
    }

    #[test]
    fn intensities_parse_from_their_names() {
        for i in Intensity::ALL {
            assert_eq!(i.as_str().parse::<Intensity>(), Ok(i));
            assert_eq!(i.to_string().to_uppercase().parse::<Intensity>(), Ok(i));
        }
        assert_eq!("med".parse::<Intensity>(), Ok(Intensity::Medium));
        let err = "extreme".parse::<Intensity>().unwrap_err();
        assert!(err.contains("\"extreme\""), "{err}");
    }
}
