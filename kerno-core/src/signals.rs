//! `Signals`: everything Kerno observed in one window. The one source of truth that rules,
//! renderers, `/metrics`, the Python bindings and saved incidents all read.
//!
//! A domain that was not observed is `None`, and `degraded` says why; a report never calls
//! such a domain healthy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{Attribution, Domain, Histogram, Series};

/// The schema version of [`Signals`] and of the JSON report. Bumped on incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// One window of kernel signals.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Signals {
    /// [`SCHEMA_VERSION`] of the producer.
    pub schema: u32,
    /// The machine.
    pub host: Host,
    /// When and how long.
    pub window: Window,
    /// The pid of the Kerno process that collected this window (its own activity is
    /// excluded from the syscall signals in the kernel, and rules skip it elsewhere).
    pub collector_pid: u32,
    /// Domains that could not be observed, and why.
    #[serde(default)]
    pub degraded: Vec<Degraded>,
    /// Samples the probes could not record (never silently lost).
    #[serde(default)]
    pub lost: Lost,
    /// Syscall counts, errors and latency.
    #[serde(default)]
    pub syscalls: Option<SyscallSignals>,
    /// TCP retransmits, RTT, connections.
    #[serde(default)]
    pub tcp: Option<TcpSignals>,
    /// OOM kills.
    #[serde(default)]
    pub oom: Option<OomSignals>,
    /// Block I/O.
    #[serde(default)]
    pub disk: Option<DiskSignals>,
    /// Run-queue delay.
    #[serde(default)]
    pub sched: Option<SchedSignals>,
    /// File descriptors per process.
    #[serde(default)]
    pub fds: Option<FdSignals>,
    /// Memory: host, cgroups, PSI.
    #[serde(default)]
    pub memory: Option<MemorySignals>,
    /// Signals from custom collectors, by collector name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, serde_json::Value>,
}

impl Signals {
    /// The window length in seconds (at least a millisecond, so rates are finite).
    pub fn window_secs(&self) -> f64 {
        (self.window.duration_ms.max(1)) as f64 / 1000.0
    }

    /// Whether a domain was observed.
    pub fn observed(&self, domain: Domain) -> bool {
        match domain {
            Domain::Syscalls => self.syscalls.is_some(),
            Domain::Tcp => self.tcp.is_some(),
            Domain::Oom => self.oom.is_some(),
            Domain::Disk => self.disk.is_some(),
            Domain::Sched => self.sched.is_some(),
            Domain::Fds => self.fds.is_some(),
            Domain::Memory => self.memory.is_some(),
        }
    }

    /// Whether a domain, or a custom collector's part, was observed, by name.
    pub fn observed_name(&self, name: &str) -> bool {
        match name.parse::<Domain>() {
            Ok(d) => self.observed(d),
            Err(_) => self.custom.contains_key(name),
        }
    }

    /// Keep only the `domains` given (all when empty), as a window collected with only those
    /// probes would look: the others become unobserved.
    pub fn keep_domains(&mut self, domains: &[Domain]) {
        if domains.is_empty() {
            return;
        }
        for d in Domain::ALL.into_iter().filter(|d| !domains.contains(d)) {
            match d {
                Domain::Syscalls => self.syscalls = None,
                Domain::Tcp => self.tcp = None,
                Domain::Oom => self.oom = None,
                Domain::Disk => self.disk = None,
                Domain::Sched => self.sched = None,
                Domain::Fds => self.fds = None,
                Domain::Memory => self.memory = None,
            }
        }
        self.degraded
            .retain(|g| domains.iter().any(|d| g.domain == *d));
    }

    /// The kernel events behind each observed probe domain in the window: syscalls
    /// completed, descriptor opens and closes, run-queue delays measured, block requests
    /// completed, TCP events (retransmits, RTT samples, connection state changes) and OOM
    /// kills. Domains read from procfs alone (memory) have none.
    pub fn events(&self) -> Vec<(Domain, u64)> {
        let mut out = Vec::new();
        if let Some(s) = &self.syscalls {
            out.push((Domain::Syscalls, s.total_calls));
        }
        if self.fds.is_some() {
            let (o, c) = self
                .syscalls
                .as_ref()
                .map(|s| (s.fd_opens(), s.fd_closes()))
                .unwrap_or((0, 0));
            out.push((Domain::Fds, o + c));
        }
        if let Some(s) = &self.sched {
            out.push((Domain::Sched, s.runq_delay.count()));
        }
        if let Some(d) = &self.disk {
            out.push((
                Domain::Disk,
                d.devices.iter().flat_map(|d| &d.ops).map(|o| o.count).sum(),
            ));
        }
        if let Some(t) = &self.tcp {
            out.push((
                Domain::Tcp,
                t.retransmits
                    + t.rtt.count()
                    + t.active_opens
                    + t.passive_opens
                    + t.closes
                    + t.connect_failed,
            ));
        }
        if let Some(n) = self.oom_kills() {
            out.push((Domain::Oom, n));
        }
        out
    }

    /// OOM kills in the window, those overwritten in the ring before they were read
    /// included (they were kills all the same); `None` when OOM kills were not observed.
    pub fn oom_kills(&self) -> Option<u64> {
        self.oom
            .as_ref()
            .map(|o| o.kills.len() as u64 + self.lost.oom_kills)
    }
}

/// The machine the window was collected on.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Host {
    /// Hostname.
    pub hostname: String,
    /// Kernel release (`uname -r`).
    pub kernel: String,
    /// Online CPUs.
    pub cpus: u32,
    /// Total memory, bytes.
    pub memory_bytes: u64,
    /// `bare-metal`, `kubernetes`, `systemd` or `container` (told from cgroup and pid
    /// namespace facts, the kubelet's files and the service account: see
    /// [`crate::host::detect_environment`]).
    pub environment: String,
    /// The node name: `--node-name`, `KERNO_NODE_NAME`, `NODE_NAME` (the downward API),
    /// config `node_name`, else the host's name. Empty in windows saved before it existed.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node: String,
}

/// The window's position and length.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Window {
    /// Start, Unix milliseconds.
    pub start_unix_ms: u64,
    /// Length, milliseconds.
    pub duration_ms: u64,
}

/// A domain that could not be observed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Degraded {
    /// The domain (a [`Domain`]'s name: `syscalls`, `tcp`, ...), or a custom collector's
    /// name.
    pub domain: String,
    /// Why.
    pub reason: String,
}

/// Samples the probes could not record in the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Lost {
    /// Syscalls whose per-thread slot was taken by another thread.
    pub syscall_samples: u64,
    /// Run-queue delays whose per-thread slot was taken by another thread.
    pub sched_samples: u64,
    /// Per-process records that did not fit a full map.
    pub map_full: u64,
    /// Block completions with no matching issue (issued before the probes attached, or
    /// evicted).
    pub block_unmatched: u64,
    /// OOM kills overwritten in the ring before they were read.
    pub oom_kills: u64,
}

impl std::ops::AddAssign<&Lost> for Lost {
    /// Add another window's losses (a daemon's totals since start).
    fn add_assign(&mut self, other: &Lost) {
        self.syscall_samples += other.syscall_samples;
        self.sched_samples += other.sched_samples;
        self.map_full += other.map_full;
        self.block_unmatched += other.block_unmatched;
        self.oom_kills += other.oom_kills;
    }
}

/// A process, as precisely as it could be identified.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Process {
    /// Process id (tgid).
    pub pid: u32,
    /// Command name.
    pub comm: String,
    /// cgroup path (v2 path where available, else the memory controller's v1 path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// Kubernetes pod, `namespace/name` (or `pod<uid>` when only the uid is known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Container id, when the cgroup names one (the same as `attribution.container_id`;
    /// the container's name is `attribution.container`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Whose process it is: pod, container, runtime, QoS, workload, or systemd unit
    /// (absent when unattributed).
    #[serde(default, skip_serializing_if = "Attribution::is_empty")]
    pub attribution: Attribution,
}

// ---- syscalls --------------------------------------------------------------------------

/// Syscall signals for the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SyscallSignals {
    /// Calls completed in the window.
    pub total_calls: u64,
    /// Calls that failed.
    pub total_errors: u64,
    /// Per syscall, busiest first; only syscalls that ran in the window.
    pub syscalls: Vec<SyscallStat>,
    /// Calls per second (all syscalls), at each sample after the first: the calls since the
    /// previous sample over the time between them.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub calls_series: Series,
    /// Failed calls per second (all syscalls), per sample interval like `calls_series`.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub errors_series: Series,
    /// p99 latency (ns) of the calls completed in each sample interval, every non-waiting
    /// syscall together (waits such as epoll_wait are left out: their length is not
    /// latency); intervals without such calls have no point.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub p99_series: Series,
}

impl SyscallSignals {
    /// The stats of one syscall by name.
    pub fn get(&self, name: &str) -> Option<&SyscallStat> {
        self.syscalls.iter().find(|s| s.name == name)
    }

    /// Successful calls of syscalls in a class ([`kerno_probes::common::class`]), e.g. the
    /// descriptor-creating ones.
    pub fn successful_calls_of_class(&self, class: u8) -> u64 {
        self.syscalls
            .iter()
            .filter(|s| kerno_probes::syscalls::class_of(s.nr) & class != 0)
            .map(|s| s.count.saturating_sub(s.errors))
            .sum()
    }

    /// Descriptors created (successful open, socket, pipe, dup, accept, ... calls), every
    /// process.
    pub fn fd_opens(&self) -> u64 {
        self.successful_calls_of_class(kerno_probes::common::class::FD_CREATE)
    }

    /// Descriptors closed (successful close and close_range calls), every process.
    pub fn fd_closes(&self) -> u64 {
        self.successful_calls_of_class(kerno_probes::common::class::FD_CLOSE)
    }
}

/// One syscall's window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SyscallStat {
    /// Syscall number.
    pub nr: u32,
    /// Name.
    pub name: String,
    /// Waits by design (epoll_wait, futex, nanosleep, read on sockets, ...): its duration
    /// is not latency.
    pub wait: bool,
    /// Calls.
    pub count: u64,
    /// Failed calls.
    pub errors: u64,
    /// Failed calls by errno name (from the per-process records).
    #[serde(default)]
    pub errnos: BTreeMap<String, u64>,
    /// Latency (ns), enter to exit. Exact for a syscall made fewer than about 1,000 times a
    /// second per CPU; above that the probe times one call in 64 and counts it 64 times, so
    /// the histogram's count is an estimate close to `count` (see docs/probes.md).
    pub latency: Histogram,
    /// Processes with the most failed calls, by errno.
    #[serde(default)]
    pub top_errors: Vec<ProcessErrors>,
    /// Processes with the most slow successful calls.
    #[serde(default)]
    pub top_slow: Vec<ProcessSlow>,
}

/// A process's failed calls of one syscall and errno.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessErrors {
    /// The process.
    pub process: Process,
    /// Errno name.
    pub errno: String,
    /// Failed calls in the window.
    pub count: u64,
}

/// A process's slow successful calls of one syscall.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProcessSlow {
    /// The process.
    pub process: Process,
    /// Calls at or above the in-kernel slow threshold (an estimate when the syscall's rate
    /// made the probe sample its latency, as for [`SyscallStat::latency`]).
    pub count: u64,
    /// Their mean latency, ns.
    pub mean_ns: u64,
    /// The slowest, ns (since the probes were loaded).
    pub max_ns: u64,
}

// ---- TCP ---------------------------------------------------------------------------------

/// TCP signals for the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TcpSignals {
    /// Retransmitted segments seen by the probe (all network namespaces).
    pub retransmits: u64,
    /// Segments sent (`OutSegs`), summed over the network namespaces that have processes.
    pub segments_out: u64,
    /// Retransmitted segments (`RetransSegs`), summed the same way.
    pub retrans_segs: u64,
    /// Network namespaces read for the two counters above.
    pub netns_count: u32,
    /// Smoothed RTT, one sample per ACK processed (ns).
    pub rtt: Histogram,
    /// Connect latency, SYN sent to ESTABLISHED (ns).
    pub connect_latency: Histogram,
    /// Active opens (connect) that completed.
    pub active_opens: u64,
    /// Passive opens (accept side).
    pub passive_opens: u64,
    /// Connections closed.
    pub closes: u64,
    /// Connects that failed (SYN_SENT to CLOSE).
    pub connect_failed: u64,
    /// Flows with the most retransmits.
    #[serde(default)]
    pub top_flows: Vec<TcpFlow>,
    /// Flows with the most ACKs at a smoothed RTT of 5 ms or more (the in-kernel
    /// attribution threshold), slowest first.
    #[serde(default)]
    pub slow_rtt_flows: Vec<TcpRttFlow>,
    /// Processes and peers with connects of 50 ms or more, slowest first.
    #[serde(default)]
    pub slow_connects: Vec<SlowConnect>,
    /// Retransmitted segments per second seen by the probe, per sample interval.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub retransmits_series: Series,
}

/// A flow whose smoothed RTT was slow.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TcpRttFlow {
    /// Local `address:port`.
    pub local: String,
    /// Remote `address:port`.
    pub remote: String,
    /// ACKs in the window with a smoothed RTT at or above the attribution threshold.
    pub samples: u64,
    /// Their mean smoothed RTT, ns.
    pub mean_rtt_ns: u64,
    /// The largest smoothed RTT seen on the flow, ns (since the probes were loaded).
    pub max_rtt_ns: u64,
    /// The process owning the socket, when found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
}

/// Slow connects from one process to one peer.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SlowConnect {
    /// The connecting process.
    pub process: Process,
    /// The peer, `address:port`.
    pub remote: String,
    /// Slow connects in the window.
    pub count: u64,
    /// Their mean latency, ns.
    pub mean_ns: u64,
    /// The slowest, ns (since the probes were loaded).
    pub max_ns: u64,
}

/// A TCP flow and its retransmits in the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct TcpFlow {
    /// Local `address:port`.
    pub local: String,
    /// Remote `address:port`.
    pub remote: String,
    /// Retransmitted segments in the window.
    pub retransmits: u64,
    /// The process owning the socket, when found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
}

// ---- OOM ---------------------------------------------------------------------------------

/// OOM kills in the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct OomSignals {
    /// Each kill seen by the probe.
    pub kills: Vec<OomKill>,
    /// The kernel's own count (`oom_kill` in /proc/vmstat) over the window.
    pub vmstat_oom_kills: u64,
}

/// One OOM kill.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct OomKill {
    /// The victim.
    pub process: Process,
    /// Unix milliseconds.
    pub at_unix_ms: u64,
    /// Victim anonymous RSS, bytes.
    pub anon_rss_bytes: u64,
    /// Victim file RSS, bytes.
    pub file_rss_bytes: u64,
    /// Victim shmem RSS, bytes.
    pub shmem_rss_bytes: u64,
    /// Victim total virtual memory, bytes.
    pub total_vm_bytes: u64,
    /// The memory cgroup's limit, bytes, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup_limit_bytes: Option<u64>,
}

// ---- disk --------------------------------------------------------------------------------

/// Block I/O signals.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DiskSignals {
    /// Devices with I/O in the window.
    pub devices: Vec<DiskDevice>,
}

/// One block device.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DiskDevice {
    /// `major:minor`.
    pub dev: String,
    /// Kernel name (`sda`, `loop0`, `nvme0n1`), when known.
    pub name: String,
    /// Per operation.
    pub ops: Vec<DiskOp>,
    /// p99 latency (ns) of the requests this device completed in each sample interval,
    /// every operation together; intervals without any have no point.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub p99_series: Series,
}

impl DiskDevice {
    /// The device as findings name it: `sda (8:0)`, or `8:0` when the kernel name is
    /// unknown.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            self.dev.clone()
        } else {
            format!("{} ({})", self.name, self.dev)
        }
    }

    /// The device in one word, as the domain line, `/metrics` and the Python bindings name
    /// it: `sda`, or `8:0` when the kernel name is unknown.
    pub fn short_label(&self) -> &str {
        if self.name.is_empty() {
            &self.dev
        } else {
            &self.name
        }
    }
}

/// One device's operation (`read`, `write`, `flush`, `discard`, `other`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DiskOp {
    /// Operation.
    pub op: String,
    /// Requests completed.
    pub count: u64,
    /// Bytes.
    pub bytes: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Issue-to-complete latency (ns).
    pub latency: Histogram,
}

// ---- scheduler ---------------------------------------------------------------------------

/// Scheduler signals.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SchedSignals {
    /// Wakeup-to-run delay, every runnable task (ns).
    pub runq_delay: Histogram,
    /// Processes with the most time waiting on a run queue (delays above the slow
    /// threshold).
    #[serde(default)]
    pub top_delayed: Vec<DelayedProcess>,
    /// PSI `cpu some avg10` at the end of the window, percent.
    #[serde(default)]
    pub psi_cpu_some_avg10: Option<f64>,
    /// p99 run-queue delay (ns) of the delays measured in each sample interval; intervals
    /// without any have no point.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub p99_series: Series,
}

/// A process's run-queue waits.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct DelayedProcess {
    /// The process.
    pub process: Process,
    /// Delays above the slow threshold in the window.
    pub count: u64,
    /// Their total, ns.
    pub total_ns: u64,
    /// The longest, ns (since the probes were loaded).
    pub max_ns: u64,
}

// ---- descriptors -------------------------------------------------------------------------

/// File descriptor signals: the processes that opened more than they closed.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FdSignals {
    /// Processes by net descriptor growth, largest first.
    pub processes: Vec<FdProcess>,
}

/// One process's descriptors.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FdProcess {
    /// The process.
    pub process: Process,
    /// Descriptor-creating calls in the window.
    pub opens: u64,
    /// Closing calls in the window.
    pub closes: u64,
    /// Open descriptors at the end of the window (`/proc/<pid>/fd`); `None` if it exited.
    pub open_fds: Option<u64>,
    /// Soft `RLIMIT_NOFILE`.
    pub soft_limit: Option<u64>,
    /// Net growth (opens − closes) per sample interval, oldest first.
    pub net_per_interval: Vec<i64>,
    /// Net descriptors opened since the window's start (opens − closes), about once a
    /// second: the series its growth trend is read from.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub net_series: Series,
}

impl FdSignals {
    /// Net descriptor growth per second by command name (processes with the same command
    /// summed), for the commands that grew: fastest first, then by name.
    pub fn growth_by_comm(&self, window_secs: f64) -> Vec<(String, f64)> {
        let mut by_comm: BTreeMap<String, f64> = BTreeMap::new();
        for p in &self.processes {
            *by_comm.entry(p.process.comm.clone()).or_insert(0.0) += p.growth_per_sec(window_secs);
        }
        let mut v: Vec<(String, f64)> = by_comm.into_iter().filter(|(_, g)| *g > 0.0).collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        v
    }
}

impl FdProcess {
    /// Net growth per second over the window.
    pub fn growth_per_sec(&self, window_secs: f64) -> f64 {
        (self.opens as f64 - self.closes as f64) / window_secs.max(0.001)
    }
}

// ---- memory ------------------------------------------------------------------------------

/// Memory signals.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MemorySignals {
    /// Total memory, bytes.
    pub total_bytes: u64,
    /// `MemAvailable` at the start of the window, bytes.
    pub available_start_bytes: u64,
    /// `MemAvailable` at the end, bytes.
    pub available_end_bytes: u64,
    /// PSI `memory some avg10`, percent.
    pub psi_some_avg10: Option<f64>,
    /// PSI `memory full avg10`, percent.
    pub psi_full_avg10: Option<f64>,
    /// Memory cgroups that have a limit, fullest first.
    pub cgroups: Vec<CgroupMemory>,
    /// Host memory in use (total − `MemAvailable`), bytes, about once a second.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub used_series: Series,
}

impl MemorySignals {
    /// Used (total − available) at the end, bytes.
    pub fn used_bytes(&self) -> u64 {
        self.total_bytes.saturating_sub(self.available_end_bytes)
    }
}

/// One memory cgroup with a limit.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CgroupMemory {
    /// Path below the controller's mount.
    pub path: String,
    /// 1 or 2.
    pub version: u8,
    /// Usage at the start of the window, bytes.
    pub usage_start_bytes: u64,
    /// Usage at the end, bytes.
    pub usage_bytes: u64,
    /// Limit, bytes.
    pub limit_bytes: u64,
    /// OOM kills in this cgroup during the window (memory.events / memory.oom_control).
    pub oom_kills: u64,
    /// Processes in the cgroup (at most a few), when any.
    #[serde(default)]
    pub processes: Vec<Process>,
    /// Kubernetes pod, when the path names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Whose cgroup it is: pod, container, QoS, workload, or systemd unit (absent when
    /// unattributed).
    #[serde(default, skip_serializing_if = "Attribution::is_empty")]
    pub attribution: Attribution,
    /// The working set at the start of the window: usage minus the inactive file-backed
    /// pages (`memory.stat` `total_inactive_file` on v1, `inactive_file` on v2), as the
    /// kubelet and cAdvisor count it. The rest of usage is page cache the kernel drops at the
    /// limit instead of killing anything. `None` when `memory.stat` could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_set_start_bytes: Option<u64>,
    /// The working set at the end of the window, bytes (see `working_set_start_bytes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_set_bytes: Option<u64>,
    /// How often usage hit the limit in the window (`memory.failcnt` on v1, `memory.events`
    /// `max` on v2): the kernel reclaimed to stay under it. Not an OOM by itself.
    #[serde(default)]
    pub limit_hits: u64,
    /// Usage, bytes, about once a second over the window.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub usage_series: Series,
    /// The working set, bytes, about once a second over the window.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub working_set_series: Series,
}

impl CgroupMemory {
    /// Prometheus labels naming whose cgroup it is: `namespace` and `pod` (the pod's name),
    /// and `container` for a container's own cgroup; none for a cgroup outside
    /// Kubernetes. Only for per-cgroup series, which list a bounded top N.
    pub fn workload_labels(&self) -> Vec<(&'static str, String)> {
        let a = &self.attribution;
        let (ns, pod) = match (&a.namespace, &a.pod_name) {
            (Some(ns), Some(p)) => (Some(ns.clone()), Some(p.clone())),
            _ => match self.pod.as_deref().and_then(|p| p.split_once('/')) {
                Some((ns, p)) => (Some(ns.to_string()), Some(p.to_string())),
                None => (None, self.pod.clone()),
            },
        };
        let mut l = Vec::new();
        if let Some(ns) = ns {
            l.push(("namespace", ns));
        }
        if let Some(p) = pod {
            l.push(("pod", p));
        }
        if let Some(c) = &a.container {
            l.push(("container", c.clone()));
        }
        l
    }

    /// Usage at the end of the window as a percentage of the limit.
    pub fn fill_pct(&self) -> f64 {
        self.usage_bytes as f64 * 100.0 / self.limit_bytes.max(1) as f64
    }

    /// The working set at the end, bytes; usage where the working set is unknown.
    pub fn working_set(&self) -> u64 {
        self.working_set_bytes.unwrap_or(self.usage_bytes)
    }

    /// The working set at the start, bytes; usage where the working set is unknown.
    pub fn working_set_start(&self) -> u64 {
        self.working_set_start_bytes
            .unwrap_or(self.usage_start_bytes)
    }

    /// The working set's series; usage's where the working set is unknown.
    pub fn working_set_or_usage_series(&self) -> &Series {
        if self.working_set_bytes.is_some() {
            &self.working_set_series
        } else {
            &self.usage_series
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_domains_unobserves_the_rest() {
        let mut s = Signals {
            syscalls: Some(SyscallSignals::default()),
            tcp: Some(TcpSignals::default()),
            degraded: vec![Degraded {
                domain: "oom".into(),
                reason: "x".into(),
            }],
            ..Signals::default()
        };
        s.keep_domains(&[]);
        assert!(s.observed(Domain::Tcp));
        s.keep_domains(&[Domain::Syscalls]);
        assert!(s.observed(Domain::Syscalls) && !s.observed(Domain::Tcp));
        assert!(s.observed_name("syscalls") && !s.observed_name("nope"));
        assert!(s.degraded.is_empty());
    }

    #[test]
    fn fd_growth_is_summed_by_command_fastest_first() {
        let p = |pid, comm: &str, opens, closes| FdProcess {
            process: Process {
                pid,
                comm: comm.into(),
                ..Process::default()
            },
            opens,
            closes,
            ..FdProcess::default()
        };
        let fds = FdSignals {
            processes: vec![
                p(1, "nginx", 30, 10),
                p(2, "nginx", 10, 0),
                p(3, "api", 60, 0),
                p(4, "cron", 0, 50),
                p(5, "batch", 5, 25),
                p(6, "batch", 25, 0),
                p(7, "idle", 4, 4),
                p(8, "zed", 30, 0),
            ],
        };
        // Over 10 s: api 6/s; nginx 2+1 = 3/s; zed 3/s (after nginx by name); batch
        // -2+2.5 = 0.5/s; cron shrank and idle held steady, so neither is listed.
        assert_eq!(
            fds.growth_by_comm(10.0),
            vec![
                ("api".to_string(), 6.0),
                ("nginx".to_string(), 3.0),
                ("zed".to_string(), 3.0),
                ("batch".to_string(), 0.5),
            ]
        );
        assert!(FdSignals::default().growth_by_comm(10.0).is_empty());
    }

    #[test]
    fn cgroup_fill_disk_labels_and_oom_kills() {
        let cg = CgroupMemory {
            usage_bytes: 768,
            limit_bytes: 1024,
            ..CgroupMemory::default()
        };
        assert_eq!(cg.fill_pct(), 75.0);
        assert!(cg.workload_labels().is_empty());
        let legacy = CgroupMemory {
            pod: Some("shop/cart".into()),
            ..CgroupMemory::default()
        };
        let l = |v: &[(&'static str, &str)]| -> Vec<(&'static str, String)> {
            v.iter().map(|(k, v)| (*k, v.to_string())).collect()
        };
        assert_eq!(
            legacy.workload_labels(),
            l(&[("namespace", "shop"), ("pod", "cart")])
        );
        let ctr = CgroupMemory {
            attribution: Attribution {
                namespace: Some("payments".into()),
                pod_name: Some("api-0".into()),
                container: Some("api".into()),
                ..Attribution::default()
            },
            ..CgroupMemory::default()
        };
        assert_eq!(
            ctr.workload_labels(),
            l(&[
                ("namespace", "payments"),
                ("pod", "api-0"),
                ("container", "api")
            ])
        );
        let named = DiskDevice {
            dev: "8:0".into(),
            name: "sda".into(),
            ops: Vec::new(),
            ..Default::default()
        };
        assert_eq!(
            (named.label(), named.short_label()),
            ("sda (8:0)".into(), "sda")
        );
        let bare = DiskDevice {
            name: String::new(),
            ..named
        };
        assert_eq!((bare.label(), bare.short_label()), ("8:0".into(), "8:0"));

        let mut s = Signals::default();
        s.lost.oom_kills = 2;
        assert_eq!(s.oom_kills(), None, "not observed: no count");
        s.oom = Some(OomSignals {
            kills: vec![OomKill::default()],
            vmstat_oom_kills: 1,
        });
        assert_eq!(s.oom_kills(), Some(3), "kills lost from the ring count too");
        assert_eq!(s.events(), vec![(Domain::Oom, 3)]);
    }

    #[test]
    fn losses_add_field_by_field() {
        let one = Lost {
            syscall_samples: 1,
            sched_samples: 2,
            map_full: 3,
            block_unmatched: 4,
            oom_kills: 5,
        };
        let mut total = one.clone();
        total += &one;
        assert_eq!(
            total,
            Lost {
                syscall_samples: 2,
                sched_samples: 4,
                map_full: 6,
                block_unmatched: 8,
                oom_kills: 10,
            }
        );
    }

    #[test]
    fn fd_calls_and_events_come_from_the_syscall_counts() {
        let nr = |n: &str| kerno_probes::syscalls::number(n).unwrap_or(0);
        let stat = |name: &str, count, errors| SyscallStat {
            nr: nr(name),
            name: name.into(),
            count,
            errors,
            ..SyscallStat::default()
        };
        let s = Signals {
            syscalls: Some(SyscallSignals {
                total_calls: 17,
                total_errors: 3,
                syscalls: vec![
                    stat("openat", 10, 3),
                    stat("close", 5, 0),
                    stat("read", 2, 0),
                ],
                ..Default::default()
            }),
            fds: Some(FdSignals::default()),
            ..Signals::default()
        };
        if cfg!(target_arch = "x86_64") {
            let sys = s.syscalls.as_ref().unwrap();
            assert_eq!((sys.fd_opens(), sys.fd_closes()), (7, 5));
            assert_eq!(s.events(), vec![(Domain::Syscalls, 17), (Domain::Fds, 12)]);
        }
    }
}
