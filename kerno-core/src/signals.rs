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
    /// Open descriptors per process counted in /proc (no eBPF), with their limits and
    /// series: what `kerno predict` projects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fd_counts: Option<FdCountSignals>,
    /// Space and inodes of the mounted filesystems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FilesystemSignals>,
    /// Process ids and threads: the host's limits and every pids cgroup with a limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pids: Option<PidSignals>,
    /// Connection tracking (netfilter conntrack) per network namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conntrack: Option<ConntrackSignals>,
    /// Where work waits for a resource: pressure stall time (PSI) of the host and of each
    /// cgroup, CPU quota throttling, TCP accept queues. Read from procfs and cgroupfs
    /// alone, so it is there when probes fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturation: Option<SaturationSignals>,
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
            Domain::Filesystem => self.filesystem.is_some(),
            Domain::Pids => self.pids.is_some(),
            Domain::Conntrack => self.conntrack.is_some(),
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
                Domain::Filesystem => self.filesystem = None,
                Domain::Pids => self.pids = None,
                Domain::Conntrack => self.conntrack = None,
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
                d.devices
                    .iter()
                    .flat_map(|d| &d.ops)
                    .fold(0u64, |t, o| t.saturating_add(o.count)),
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

/// Defines [`Lost`] from one table: each counter's JSON field, the `collector` and `reason`
/// labels it has in `kerno_events_lost_total`, and its meaning. Fields added after the
/// first five default to 0, so windows saved before them still load.
macro_rules! lost_counters {
    ($( $(#[$attr:meta])* $field:ident: $collector:literal, $reason:literal, $doc:literal; )*) => {
        /// What the probes could not record in the window, by collector and reason. Every
        /// counter is exact (bumped in the kernel where the record failed), except the
        /// `*_evicted` ones: entries a full LRU map pushed out, at least this many (new keys
        /// inserted minus entries found when the map was read; docs/json-report.md).
        ///
        /// In JSON each counter is a field, plus `total` (all of them: non-zero when the
        /// window lost anything) and `events` (the non-zero ones, labelled as in
        /// `/metrics`). Both are written, never read back.
        #[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
        pub struct Lost {
            $( #[doc = $doc] $(#[$attr])* pub $field: u64, )*
        }

        impl Lost {
            /// Every counter: `(collector, reason, count)`, in a fixed order.
            pub fn entries(&self) -> Vec<LostEvent> {
                vec![$( LostEvent { collector: $collector, reason: $reason, count: self.$field }, )*]
            }
        }

        impl std::ops::AddAssign<&Lost> for Lost {
            /// Add another window's losses (a daemon's totals since start).
            fn add_assign(&mut self, other: &Lost) {
                $( self.$field = self.$field.saturating_add(other.$field); )*
            }
        }

        impl Serialize for Lost {
            fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
                use serde::ser::SerializeMap;
                let mut m = ser.serialize_map(None)?;
                $( m.serialize_entry(stringify!($field), &self.$field)?; )*
                m.serialize_entry("total", &self.total())?;
                let events: Vec<LostEvent> =
                    self.entries().into_iter().filter(|e| e.count > 0).collect();
                m.serialize_entry("events", &events)?;
                m.end()
            }
        }
    };
}

lost_counters! {
    syscall_samples: "syscalls", "thread_slot_taken",
        "Syscalls whose per-thread slot was taken by another thread (their latency is lost).";
    sched_samples: "sched", "thread_slot_taken",
        "Run-queue delays whose per-thread slot was taken by another thread.";
    map_full: "syscalls", "map_full",
        "Per-process syscall records (errors, slow calls) the per-process map refused.";
    block_unmatched: "disk", "unmatched_completion",
        "Block completions with no matching issue (issued before the probes attached, or evicted from the in-flight map).";
    oom_kills: "oom", "ring_overwritten",
        "OOM kills overwritten in the ring before they were read.";
    #[serde(default)]
    syscalls_evicted: "syscalls", "evicted",
        "Per-process syscall records evicted from the full LRU map (at least this many).";
    #[serde(default)]
    syscalls_recursion: "syscalls", "recursion_miss",
        "Syscall program runs the kernel skipped because a BPF program already ran on that CPU (`recursion_misses`).";
    #[serde(default)]
    fds_map_full: "fds", "map_full",
        "Per-process descriptor records the map refused.";
    #[serde(default)]
    fds_evicted: "fds", "evicted",
        "Per-process descriptor records evicted from the full LRU map (at least this many).";
    #[serde(default)]
    sched_map_full: "sched", "map_full",
        "Slow run-queue records (per thread) the map refused.";
    #[serde(default)]
    sched_evicted: "sched", "evicted",
        "Slow run-queue records evicted from the full LRU map (at least this many).";
    #[serde(default)]
    sched_read_failed: "sched", "read_failed",
        "Scheduler tracepoint records that could not be read.";
    #[serde(default)]
    sched_recursion: "sched", "recursion_miss",
        "Scheduler program runs the kernel skipped (`recursion_misses`).";
    #[serde(default)]
    disk_map_full: "disk", "map_full",
        "Block requests a block map (in flight, or per device) refused.";
    #[serde(default)]
    disk_read_failed: "disk", "read_failed",
        "Block tracepoint records that could not be read.";
    #[serde(default)]
    disk_recursion: "disk", "recursion_miss",
        "Block program runs the kernel skipped (`recursion_misses`).";
    #[serde(default)]
    tcp_map_full: "tcp", "map_full",
        "TCP records (flows, connects in flight, slow RTTs, slow connects) a map refused.";
    #[serde(default)]
    tcp_evicted: "tcp", "evicted",
        "TCP flow, slow-RTT and slow-connect records evicted from their full LRU maps (at least this many).";
    #[serde(default)]
    tcp_unmatched_connect: "tcp", "unmatched_connect",
        "Connects that reached ESTABLISHED with no recorded start (begun before the probes attached, or evicted): their latency is lost.";
    #[serde(default)]
    tcp_read_failed: "tcp", "read_failed",
        "TCP tracepoint records that could not be read.";
    #[serde(default)]
    tcp_recursion: "tcp", "recursion_miss",
        "TCP program runs the kernel skipped (`recursion_misses`).";
    #[serde(default)]
    oom_read_failed: "oom", "read_failed",
        "OOM tracepoint records that could not be read.";
    #[serde(default)]
    oom_recursion: "oom", "recursion_miss",
        "OOM program runs the kernel skipped (`recursion_misses`).";
}

impl Lost {
    /// Everything lost in the window, all collectors and reasons (0: nothing was);
    /// saturating, as a corrupted saved window may hold counts near `u64::MAX`.
    pub fn total(&self) -> u64 {
        self.entries()
            .iter()
            .fold(0u64, |t, e| t.saturating_add(e.count))
    }
}

/// One [`Lost`] counter, labelled as `kerno_events_lost_total` labels it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct LostEvent {
    /// The collector: `syscalls`, `fds`, `sched`, `disk`, `tcp`, `oom`.
    pub collector: &'static str,
    /// Why: `thread_slot_taken`, `map_full`, `evicted`, `unmatched_completion`,
    /// `unmatched_connect`, `read_failed`, `recursion_miss`, `ring_overwritten`.
    pub reason: &'static str,
    /// How many.
    pub count: u64,
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
            .fold(0u64, u64::saturating_add)
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

/// Open descriptors counted in `/proc/<pid>/fd` at each sample (no eBPF needed).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FdCountSignals {
    /// How many processes were counted.
    pub processes_counted: usize,
    /// The processes whose count grew over the window, fastest first (at most a few dozen).
    pub processes: Vec<FdCount>,
}

/// One process's open descriptors over the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FdCount {
    /// The process.
    pub process: Process,
    /// Open descriptors at the last sample.
    pub open_fds: u64,
    /// Soft `RLIMIT_NOFILE` at the end (`None`: unreadable).
    pub soft_limit: Option<u64>,
    /// Open descriptors at every sample, oldest first.
    pub series: Series,
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

// ---- filesystems ---------------------------------------------------------------------

/// The mounted filesystems that can fill: writable, not pseudo (proc, sysfs, cgroup, ...),
/// not overlay (a container's root is its lower filesystem's space), with a size; one entry
/// per device even when it is mounted in several places.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct FilesystemSignals {
    /// Fullest first (by the larger of space and inodes used).
    pub filesystems: Vec<Filesystem>,
}

/// One mounted filesystem's space and inodes.
///
/// "Used" is as node-exporter's alerts and the kubelet's eviction signals count it:
/// everything not available to an unprivileged writer (`1 − f_bavail / f_blocks`), so the
/// blocks ext4 reserves for root count as used: ordinary processes get `ENOSPC` there.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Filesystem {
    /// Where it is mounted (the shortest of its mount points).
    pub mountpoint: String,
    /// The mount source (`/dev/sda1`, `/dev/loop3`, `tmpfs`).
    pub device: String,
    /// `major:minor` of the device.
    pub dev: String,
    /// Filesystem type (`ext4`, `xfs`, `tmpfs`, ...).
    pub fstype: String,
    /// What a Kubernetes node keeps on it, when it holds one of those directories:
    /// `kubelet` (`/var/lib/kubelet`: the kubelet's nodefs), `containerd`
    /// (`/var/lib/containerd`) or `docker` (`/var/lib/docker`), the runtime's imagefs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Size, bytes (`f_blocks × f_frsize`).
    pub size_bytes: u64,
    /// Available to unprivileged writers at the end of the window, bytes (`f_bavail`).
    pub avail_bytes: u64,
    /// Available at the start of the window, bytes.
    pub avail_start_bytes: u64,
    /// Free at the end of the window, bytes (`f_bfree`: what root may still write; free −
    /// available is the reserve for root).
    pub free_bytes: u64,
    /// Inodes in all (`f_files`; 0 where the filesystem has no fixed inode table, as btrfs).
    pub inodes: u64,
    /// Inodes free for unprivileged use at the end of the window (`f_favail`).
    pub inodes_free: u64,
    /// Inodes free at the start of the window.
    pub inodes_free_start: u64,
    /// Bytes used (size − available), about once a second.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub used_series: Series,
    /// Inodes used (inodes − free), about once a second.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub inodes_used_series: Series,
}

impl Filesystem {
    /// Bytes used at the end of the window (size − available).
    pub fn used_bytes(&self) -> u64 {
        self.size_bytes.saturating_sub(self.avail_bytes)
    }

    /// Space used at the end of the window, percent of the size.
    pub fn used_pct(&self) -> f64 {
        if self.size_bytes == 0 {
            return 0.0;
        }
        self.used_bytes() as f64 * 100.0 / self.size_bytes as f64
    }

    /// Inodes used at the end of the window.
    pub fn inodes_used(&self) -> u64 {
        self.inodes.saturating_sub(self.inodes_free)
    }

    /// Inodes used, percent; 0 where the filesystem has no inode table.
    pub fn inodes_used_pct(&self) -> f64 {
        if self.inodes == 0 {
            return 0.0;
        }
        self.inodes_used() as f64 * 100.0 / self.inodes as f64
    }

    /// Bytes reserved for root at the end of the window (free − available).
    pub fn reserved_bytes(&self) -> u64 {
        self.free_bytes.saturating_sub(self.avail_bytes)
    }

    /// The filesystem as findings name it: `/var/lib/kubelet (/dev/sda1, ext4)`.
    pub fn label(&self) -> String {
        format!("{} ({}, {})", self.mountpoint, self.device, self.fstype)
    }
}

// ---- pids --------------------------------------------------------------------------------

/// Process ids and threads: every task (thread) takes a pid.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PidSignals {
    /// `kernel.pid_max`: pids are numbered below it.
    pub pid_max: u64,
    /// `kernel.threads-max`: the most tasks the kernel allows at once.
    pub threads_max: u64,
    /// Tasks (threads) on the host at the start of the window (`/proc/loadavg`).
    pub threads_start: u64,
    /// Tasks at the end of the window.
    pub threads: u64,
    /// Tasks on the host, about once a second.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub threads_series: Series,
    /// pids cgroups with a limit (`pids.max` not `max`), fullest first.
    pub cgroups: Vec<CgroupPids>,
}

impl PidSignals {
    /// The host-wide limit on tasks: the smaller of `pid_max` and `threads-max` (0 when
    /// neither was read).
    pub fn host_limit(&self) -> u64 {
        match (self.pid_max, self.threads_max) {
            (0, t) => t,
            (p, 0) => p,
            (p, t) => p.min(t),
        }
    }
}

/// One pids cgroup with a limit.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CgroupPids {
    /// Path below the controller's mount.
    pub path: String,
    /// 1 or 2.
    pub version: u8,
    /// Tasks in it at the start of the window (`pids.current`).
    pub current_start: u64,
    /// Tasks in it at the end.
    pub current: u64,
    /// `pids.max`.
    pub limit: u64,
    /// Forks and clones refused at the limit in the window (`pids.events` `max`): each is a
    /// `fork()` or `pthread_create()` that failed with `EAGAIN`.
    pub fork_failures: u64,
    /// Processes in the cgroup (at most a few), when any.
    #[serde(default)]
    pub processes: Vec<Process>,
    /// Whose cgroup it is: pod, container, QoS, workload, or systemd unit (absent when
    /// unattributed).
    #[serde(default, skip_serializing_if = "Attribution::is_empty")]
    pub attribution: Attribution,
    /// Tasks in it, about once a second.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub current_series: Series,
}

impl CgroupPids {
    /// Tasks at the end of the window, percent of the limit.
    pub fn fill_pct(&self) -> f64 {
        self.current as f64 * 100.0 / self.limit.max(1) as f64
    }
}

// ---- conntrack ---------------------------------------------------------------------------

/// Netfilter connection tracking, per network namespace (each has its own table count and
/// statistics; the limit, `nf_conntrack_max`, is the host's).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ConntrackSignals {
    /// `net.netfilter.nf_conntrack_max`, the most entries a namespace may track.
    pub max: u64,
    /// Namespaces with processes, fullest first (then by most drops).
    pub namespaces: Vec<ConntrackNetns>,
}

/// One network namespace's connection tracking (`/proc/<pid>/net/stat/nf_conntrack`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ConntrackNetns {
    /// The namespace's inode number (`ls -l /proc/<pid>/ns/net`).
    pub netns: u64,
    /// Whether it is the host's (initial) namespace, or the collector's where that is
    /// unknown.
    pub host: bool,
    /// A process in it (the lowest pid), to name it and enter it (`nsenter -t PID -n`).
    pub process: Process,
    /// Tracked connections at the start of the window.
    pub count_start: u64,
    /// Tracked connections at the end.
    pub count: u64,
    /// New connections dropped in the window because the table was full (`drop`).
    pub drops: u64,
    /// Old entries evicted in the window to make room (`early_drop`).
    pub early_drops: u64,
    /// Entries that could not be inserted in the window (`insert_failed`).
    pub insert_failed: u64,
    /// Tracked connections, about once a second.
    #[serde(default, skip_serializing_if = "Series::is_empty")]
    pub count_series: Series,
}

impl ConntrackNetns {
    /// The namespace as findings name it: `the host network namespace` or
    /// `network namespace 4026532301 (pid 812 nginx)`.
    pub fn label(&self) -> String {
        if self.host {
            "the host network namespace".into()
        } else {
            format!(
                "network namespace {} (pid {} {})",
                self.netns, self.process.pid, self.process.comm
            )
        }
    }
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

// ---- saturation --------------------------------------------------------------------------

/// Where work waited for a resource in the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SaturationSignals {
    /// The host's CPU pressure (`/proc/pressure/cpu`), when the kernel has PSI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Pressure>,
    /// The host's memory pressure (`/proc/pressure/memory`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Pressure>,
    /// The host's I/O pressure (`/proc/pressure/io`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<Pressure>,
    /// Cgroups of the v2 hierarchy (`*.pressure` files; on a hybrid host the unified
    /// hierarchy has them even with no controller enabled) with any stall in the window,
    /// the most stalled first (at most a few dozen).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroups: Vec<CgroupPressure>,
    /// Cgroups with a CPU limit (v1 `cpu.cfs_quota_us`, v2 `cpu.max`) that ran in the
    /// window, the most throttled first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cpu_limited: Vec<CgroupCpu>,
    /// TCP listen queues, per network namespace; `None` when not read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub listen: Option<ListenSignals>,
}

/// Pressure stall information of one resource over the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Pressure {
    /// Share of the window in which at least one task stalled on the resource, percent
    /// (from the `some` line's `total` counter at the two ends of the window).
    pub some_pct: f64,
    /// Share of the window in which every non-idle task stalled at once, percent (the
    /// `full` line; `None` where the kernel has none, as for the host's CPU before 5.13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_pct: Option<f64>,
    /// The kernel's own `some avg10` at the end of the window, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub some_avg10: Option<f64>,
    /// The kernel's own `full avg10` at the end of the window, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub full_avg10: Option<f64>,
}

impl Pressure {
    /// `full` where the kernel has it, else 0.
    pub fn full(&self) -> f64 {
        self.full_pct.unwrap_or(0.0)
    }
}

/// One v2 cgroup's pressure stall information.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CgroupPressure {
    /// Path below the v2 mount.
    pub path: String,
    /// CPU pressure (`cpu.pressure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<Pressure>,
    /// Memory pressure (`memory.pressure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Pressure>,
    /// I/O pressure (`io.pressure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io: Option<Pressure>,
    /// Times the cgroup went over its `memory.high` in the window and the kernel throttled
    /// its allocations into reclaim (`memory.events` `high`; needs the v2 memory
    /// controller, so always 0 on a hybrid host).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub memory_high_events: u64,
    /// Its `memory.high`, bytes, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_high_bytes: Option<u64>,
    /// Processes in the cgroup (at most a few), for a cgroup with a noticeable stall.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<Process>,
    /// Kubernetes pod, when the path names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Whose cgroup it is.
    #[serde(default, skip_serializing_if = "Attribution::is_empty")]
    pub attribution: Attribution,
}

/// One cgroup with a CPU limit, over the window.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CgroupCpu {
    /// Path below the controller's mount (v1 `cpu`, or v2).
    pub path: String,
    /// 1 or 2.
    pub version: u8,
    /// CPU time allowed per period, µs (`cpu.cfs_quota_us`, the first field of `cpu.max`).
    pub quota_us: u64,
    /// The period, µs (`cpu.cfs_period_us`, the second field of `cpu.max`).
    pub period_us: u64,
    /// CFS periods in the window in which the cgroup had runnable tasks (`nr_periods`).
    pub periods: u64,
    /// Of those, the periods in which it used up its quota and was stopped (`nr_throttled`).
    pub throttled_periods: u64,
    /// Time its run queues spent throttled in the window, ns (`throttled_time` on v1,
    /// `throttled_usec` on v2; summed over CPUs).
    pub throttled_ns: u64,
    /// CPU time it used in the window, ns (`cpuacct.usage` on v1, `usage_usec` on v2),
    /// when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage_ns: Option<u64>,
    /// Processes in the cgroup (at most a few), for a throttled cgroup.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub processes: Vec<Process>,
    /// Kubernetes pod, when the path names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Whose cgroup it is.
    #[serde(default, skip_serializing_if = "Attribution::is_empty")]
    pub attribution: Attribution,
}

impl CgroupCpu {
    /// The limit in CPUs (quota / period): `0.2` for a 200m container.
    pub fn limit_cpus(&self) -> f64 {
        self.quota_us as f64 / self.period_us.max(1) as f64
    }

    /// Throttled periods as a share of the periods it ran, percent.
    pub fn throttled_pct(&self) -> f64 {
        if self.periods == 0 {
            0.0
        } else {
            self.throttled_periods as f64 * 100.0 / self.periods as f64
        }
    }

    /// Whether `cgroup` (a process's cgroup path) is this cgroup or below it.
    pub fn contains(&self, cgroup: &str) -> bool {
        let me = self.path.trim_end_matches('/');
        cgroup == me || me.is_empty() || cgroup.starts_with(&format!("{me}/"))
    }
}

/// TCP listen queues: what was dropped because a listener's queue was full.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ListenSignals {
    /// Network namespaces (those with a process in them) whose listeners dropped or queued
    /// connections in the window; quiet namespaces are not listed.
    #[serde(default)]
    pub netns: Vec<NetnsListen>,
    /// Network namespaces read.
    pub netns_count: u32,
}

/// One network namespace's listen-queue counters over the window (`/proc/<pid>/net/netstat`
/// `TcpExt:`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct NetnsListen {
    /// The namespace's inode (`net:[<inode>]`).
    pub inode: u64,
    /// Its name under `/run/netns`, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A process in it (the one its counters were read through).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
    /// Connections dropped at a listener for any reason (`ListenDrops`; includes the ones
    /// below).
    pub drops: u64,
    /// Handshakes dropped because a listener's accept queue was full (`ListenOverflows`).
    pub overflows: u64,
    /// SYNs dropped because the SYN queue was full and SYN cookies were off
    /// (`TCPReqQFullDrop`).
    pub req_queue_full_drops: u64,
    /// SYN cookies sent because the SYN queue was full (`SyncookiesSent`): connections
    /// still succeed, without TCP options.
    pub syncookies_sent: u64,
    /// Listeners that had connections waiting to be accepted at a sample, longest queue
    /// first.
    #[serde(default)]
    pub listeners: Vec<Listener>,
}

impl NetnsListen {
    /// `netns kerno-1` or `netns net:[4026531840]`.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("netns {n}"),
            None => format!("netns net:[{}]", self.inode),
        }
    }
}

/// A listening TCP socket with connections waiting to be accepted.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Listener {
    /// Local `address:port`.
    pub local: String,
    /// The port.
    pub port: u16,
    /// The longest accept queue seen at a sample (connections established, not yet
    /// accepted: `/proc/net/tcp` `rx_queue` of a listener).
    pub max_queue: u64,
    /// The process holding the socket, when found (`/proc/<pid>/fd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Process>,
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
            tcp_evicted: 6,
            oom_recursion: 7,
            ..Lost::default()
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
                tcp_evicted: 12,
                oom_recursion: 14,
                ..Lost::default()
            }
        );
        assert_eq!(total.total(), 2 + 4 + 6 + 8 + 10 + 12 + 14);
    }

    #[test]
    fn lost_json_says_what_was_lost_and_old_windows_still_load() {
        let l = Lost {
            map_full: 3,
            tcp_evicted: 2,
            ..Lost::default()
        };
        let v = serde_json::to_value(&l).unwrap();
        assert_eq!(v["total"], 5);
        assert_eq!(
            v["events"],
            serde_json::json!([
                {"collector": "syscalls", "reason": "map_full", "count": 3},
                {"collector": "tcp", "reason": "evicted", "count": 2},
            ])
        );
        // Round trip: `total` and `events` are derived, never read back.
        let back: Lost = serde_json::from_value(v).unwrap();
        assert_eq!(back, l);
        // A window saved before the new counters existed.
        let old: Lost = serde_json::from_str(
            r#"{"syscall_samples":1,"sched_samples":0,"map_full":0,"block_unmatched":0,"oom_kills":0}"#,
        )
        .unwrap();
        assert_eq!(old.total(), 1);
        // Every (collector, reason) pair is named once.
        let e = Lost::default().entries();
        let mut pairs: Vec<_> = e.iter().map(|e| (e.collector, e.reason)).collect();
        pairs.sort();
        pairs.dedup();
        assert_eq!(pairs.len(), e.len());
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
