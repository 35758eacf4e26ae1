use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kerno_core::Domain;

/// Kerno watches the kernel, not the app, and tells you what is wrong.
#[derive(Parser, Debug)]
#[command(
    name = "kerno",
    version,
    about = "Kernel-level incident diagnosis for Linux and Kubernetes nodes",
    long_about = "Kerno watches the kernel, not the app: syscall latency and errors, TCP \
retransmits and RTT, OOM kills, block I/O latency, run-queue delay, file-descriptor leaks \
and memory pressure. `kerno doctor` collects a window of real kernel signals and prints a \
ranked, plain-English report.",
    after_help = "Exit codes: 0 success (with --exit-code: no critical finding), 1 failure \
(no privileges, probes failed, unreadable file), 2 usage or configuration error, 3 critical \
finding (with --exit-code), 130 interrupted."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Collect a window of kernel signals and print a ranked diagnosis.
    Doctor(DoctorArgs),
    /// List the rules and the thresholds each declares, with their current values.
    Rules(RulesArgs),
    /// Run the node agent: a sliding window of kernel signals, /metrics, /healthz, /readyz.
    ///
    /// Loads the probes once and keeps a sample a second for the window (5m by default);
    /// `kerno doctor` on this node then answers from it at once. SIGTERM or SIGINT stops
    /// serving and detaches every probe.
    Start(StartArgs),
    /// Induce a real incident (CPU contention, slow disk, packet loss, OOM...) to see Kerno
    /// diagnose it; needs root.
    Chaos(ChaosArgs),
    /// Show kernel events as they happen (one line each), filtered in the kernel.
    Trace(TraceArgs),
    /// Watch for incidents as they happen: OOM kills, descriptor leaks.
    Watch(WatchArgs),
}

#[derive(Args, Debug)]
#[command(
    after_help = "Ends after --duration, --count events, on Ctrl-C or SIGTERM, with a summary \
of the events shown, filtered and lost (a JSON object {\"summary\": ...} as the last line \
with -o json). Streams load their own probes, attached only while they run, and work beside \
a running `kerno start` agent."
)]
pub struct TraceArgs {
    #[command(subcommand)]
    pub what: TraceCommand,
}

#[derive(Subcommand, Debug)]
pub enum TraceCommand {
    /// One line per matching syscall: time, pid, comm, syscall, latency, result, pod.
    Syscall(TraceSyscallArgs),
    /// Tasks that waited on a run queue at least the threshold, with the CPU and the task
    /// that ran instead (runqslower).
    Sched(TraceSchedArgs),
    /// One line per block request: device, op, bytes, sector, queue and total latency, and
    /// the process that issued it (biosnoop).
    Disk(TraceDiskArgs),
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(subcommand)]
    pub what: WatchCommand,
}

#[derive(Subcommand, Debug)]
pub enum WatchCommand {
    /// Each OOM kill: victim, memory at the kill, memory cgroup and pod, constraint, trigger.
    Oom(WatchOomArgs),
    /// A refreshing table of processes whose descriptor count grows (count, limit, rate, ETA).
    Fd(WatchFdArgs),
    /// TCP retransmits (flow, state, smoothed RTT) and connection opens, closes, failures;
    /// IPv4 and IPv6.
    Tcp(WatchTcpArgs),
}

/// How a stream prints its events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum StreamOutput {
    /// Aligned columns, a summary line last.
    Pretty,
    /// One JSON object per line, `{"summary": ...}` last (docs/json-report.md).
    Json,
}

/// What every stream takes.
#[derive(Args, Debug)]
pub struct StreamArgs {
    /// Output format
    #[arg(short, long, value_enum, default_value = "pretty")]
    pub output: StreamOutput,

    /// Stop after this long (e.g. 30s, 5m) [default: until Ctrl-C]
    #[arg(short, long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Stop after N events
    #[arg(short = 'n', long, value_name = "N")]
    pub count: Option<u64>,
}

#[derive(Args, Debug)]
pub struct TraceSyscallArgs {
    /// Only this process (pid); the trace ends when it exits
    #[arg(short, long, value_name = "PID")]
    pub pid: Option<u32>,

    /// Only threads with this command name (as in /proc/PID/comm, at most 15 bytes)
    #[arg(long, value_name = "COMM")]
    pub comm: Option<String>,

    /// Only this syscall (repeatable, or comma-separated), e.g. --syscall openat
    #[arg(short, long = "syscall", value_name = "NAME", value_delimiter = ',')]
    pub syscalls: Vec<String>,

    /// Only calls at least this slow (e.g. 10ms, 500us; a bare number is ms)
    #[arg(
        long,
        visible_alias = "threshold",
        value_name = "LATENCY",
        allow_hyphen_values = true
    )]
    pub min_latency: Option<String>,

    /// Only failed calls
    #[arg(long)]
    pub errors: bool,

    /// Ring buffer size in bytes, a power-of-two multiple of the page size (e.g. 64K, 1M) [default: 256K]
    #[arg(long, value_name = "BYTES")]
    pub ring_size: Option<String>,

    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Args, Debug)]
pub struct TraceSchedArgs {
    /// Only waits at least this long (e.g. 10ms, 500us; a bare number is ms)
    #[arg(
        long,
        visible_alias = "threshold",
        value_name = "LATENCY",
        default_value = "10ms",
        allow_hyphen_values = true
    )]
    pub min_latency: String,

    /// Only threads of this process
    #[arg(short, long, value_name = "PID")]
    pub pid: Option<u32>,

    /// Ring buffer size in bytes, a power-of-two multiple of the page size (e.g. 64K, 1M) [default: 256K]
    #[arg(long, value_name = "BYTES")]
    pub ring_size: Option<String>,

    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Args, Debug)]
pub struct TraceDiskArgs {
    /// Only this device (its kernel name: sda, nvme0n1, loop0)
    #[arg(long, value_name = "DEVICE")]
    pub device: Option<String>,

    /// Only requests of processes with this command name (at most 15 bytes)
    #[arg(long, value_name = "COMM")]
    pub process: Option<String>,

    /// Only this op (repeatable, or comma-separated): read, write, flush, discard
    #[arg(long, value_name = "OP", value_delimiter = ',')]
    pub op: Vec<String>,

    /// Only requests at least this slow, queue plus service (e.g. 5ms; a bare number is ms)
    #[arg(
        long,
        visible_alias = "threshold",
        value_name = "LATENCY",
        allow_hyphen_values = true
    )]
    pub min_latency: Option<String>,

    /// Ring buffer size in bytes, a power-of-two multiple of the page size (e.g. 64K, 1M) [default: 256K]
    #[arg(long, value_name = "BYTES")]
    pub ring_size: Option<String>,

    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Args, Debug)]
pub struct WatchTcpArgs {
    /// Show retransmitted segments (with neither this nor --state-changes: both)
    #[arg(long)]
    pub retransmits: bool,

    /// Only retransmits on flows whose smoothed RTT is at least this (e.g. 50ms)
    #[arg(long, value_name = "RTT", allow_hyphen_values = true)]
    pub rtt_above: Option<String>,

    /// Show connection state changes: connects, opens, accepts, closes, failures
    #[arg(long)]
    pub state_changes: bool,

    /// Ring buffer size in bytes, a power-of-two multiple of the page size (e.g. 64K, 1M) [default: 256K]
    #[arg(long, value_name = "BYTES")]
    pub ring_size: Option<String>,

    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Args, Debug)]
pub struct WatchOomArgs {
    /// Exit with status 3 at the first kill (after printing it), for scripts
    #[arg(long)]
    pub alert: bool,

    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Args, Debug)]
pub struct WatchFdArgs {
    /// Show processes whose descriptors grow by at least this many a second
    #[arg(
        long,
        visible_alias = "threshold",
        value_name = "PER_SEC",
        default_value = "10",
        allow_hyphen_values = true
    )]
    pub min_rate: String,

    /// Refresh every DURATION (e.g. 1s, 5s)
    #[arg(short, long, value_name = "DURATION", default_value = "5s")]
    pub interval: String,

    #[command(flatten)]
    pub stream: StreamArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable report.
    Pretty,
    /// JSON report (schema: docs/json-report.md), including the signals.
    Json,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// How long to observe, 1s to 5m (e.g. 10s, 2m) [default: 30s, or the config file's]
    #[arg(short, long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Report format [default: pretty, or the config file's]
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,

    /// Exit with status 3 when any finding is critical.
    #[arg(long)]
    pub exit_code: bool,

    /// No progress indicator and no notes on stderr; only the report.
    #[arg(short, long)]
    pub quiet: bool,

    /// No colours (also when NO_COLOR is set or stdout is not a terminal).
    #[arg(long)]
    pub no_color: bool,

    /// Show only critical findings.
    #[arg(long)]
    pub only_critical: bool,

    /// Also write the window's signals to FILE, for `--from` later.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,

    /// Re-run the rules on a window saved with --save (or a JSON report); needs no root.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["duration", "save", "domains"])]
    pub from: Option<PathBuf>,

    #[command(flatten)]
    pub cfg: ConfigArgs,

    /// Observe only these domains (comma-separated): syscalls, fds, sched, disk, tcp, oom, memory.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = str::parse::<Domain>)]
    pub domains: Option<Vec<Domain>>,

    /// Load probes and collect here even when a `kerno start` agent runs (by default the
    /// agent answers from its window at once).
    #[arg(long, conflicts_with = "from")]
    pub standalone: bool,

    /// Keep only findings about processes and cgroups in Kubernetes namespace NS.
    #[arg(long, value_name = "NS", conflicts_with = "pod")]
    pub namespace: Option<String>,

    /// Keep only findings about pod NS/NAME.
    #[arg(long, value_name = "NS/NAME")]
    pub pod: Option<String>,

    #[command(flatten)]
    pub node: NodeArgs,
}

/// Where the host is and what the node is called, for commands that collect.
#[derive(Args, Debug)]
pub struct NodeArgs {
    /// Read the host's files under DIR (/proc, /sys/fs/cgroup, /var/log/pods, /run/containerd...; `/host` in a DaemonSet) [default: $KERNO_HOST_ROOT, config host_root, or /]
    #[arg(long, value_name = "DIR")]
    pub host_root: Option<PathBuf>,

    /// The node name findings carry [default: $KERNO_NODE_NAME, $NODE_NAME, config node_name, or the hostname]
    #[arg(long, value_name = "NAME")]
    pub node_name: Option<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Address for /metrics, /healthz and /readyz [default: :9090, $KERNO_LISTEN, or the config file's agent.listen]
    #[arg(short, long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// Unix socket where `kerno doctor` asks for windows [default: /run/kerno/agent.sock, $KERNO_SOCKET, or agent.socket]
    #[arg(long, value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// History to keep, 5s to 1h [default: 5m, $KERNO_WINDOW, or agent.window]
    #[arg(short, long, value_name = "DURATION")]
    pub window: Option<String>,

    #[command(flatten)]
    pub cfg: ConfigArgs,

    /// Observe only these domains (comma-separated): syscalls, fds, sched, disk, tcp, oom, memory.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = str::parse::<Domain>)]
    pub domains: Option<Vec<Domain>>,

    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Args, Debug)]
pub struct RulesArgs {
    #[command(flatten)]
    pub cfg: ConfigArgs,
}

/// The configuration file and threshold overrides, for every command that runs rules.
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Configuration file (YAML) [default: $KERNO_CONFIG, ~/.config/kerno/config.yaml, /etc/kerno/config.yaml]
    #[arg(short, long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Override a rule threshold, e.g. --threshold syscall_p99_ms=250 (repeatable; see `kerno rules`).
    #[arg(short = 't', long = "threshold", value_name = "KEY=VALUE")]
    pub thresholds: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum IntensityArg {
    /// Just past the rule's warning threshold.
    Low,
    /// Clearly past it.
    Medium,
    /// Far past it, usually critical.
    High,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Everything a scenario creates (network namespaces, cgroups, mounts, loop \
devices, processes) is removed when it ends, on Ctrl-C, or by the next run if it crashed."
)]
pub struct ChaosArgs {
    /// List the scenarios, what each does and which rule it should trigger.
    #[arg(long, conflicts_with_all = ["induce", "clean"])]
    pub list: bool,

    /// Induce SCENARIO (see --list).
    #[arg(long, value_name = "SCENARIO")]
    pub induce: Option<String>,

    /// How hard to push.
    #[arg(long, value_enum, default_value = "medium")]
    pub intensity: IntensityArg,

    /// How long, 1s to 1h (e.g. 30s, 5m).
    #[arg(short, long, value_name = "DURATION", default_value = "30s")]
    pub duration: String,

    /// Do not ask for confirmation (needed when stdin is not a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,

    /// Remove what earlier runs that crashed left behind, and exit.
    #[arg(long, conflicts_with = "induce")]
    pub clean: bool,
}
