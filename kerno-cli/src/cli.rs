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
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Flags every command takes, before or after its name (`kerno -o json version` or
/// `kerno version -o json`).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Configuration file (YAML) [default: $KERNO_CONFIG, ~/.config/kerno/config.yaml, /etc/kerno/config.yaml]
    #[arg(short, long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,

    /// Output format; each command says which it can write [default: pretty, or the config file's]
    #[arg(short, long, value_enum, global = true)]
    pub output: Option<Output>,

    /// No colours (also when NO_COLOR is set or the output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,

    /// Log level of the agent's and the commands' logs on stderr [default: info]
    #[arg(long, value_enum, value_name = "LEVEL", global = true)]
    pub log_level: Option<LogLevel>,

    /// Log format: text lines, or one JSON object a line (for log collectors) [default: text]
    #[arg(long, value_enum, value_name = "FORMAT", global = true)]
    pub log_format: Option<LogFormat>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogLevel {
    /// Only errors.
    Error,
    /// Errors and warnings.
    Warn,
    /// What the agent does (the default).
    Info,
    /// Details for a bug report.
    Debug,
    /// Everything.
    Trace,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line: timestamp, level, target, message and fields.
    Json,
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
    /// Explain kernel log messages (arguments, stdin, or the kernel log itself), or a rule.
    ///
    /// Offline: an embedded knowledge base of kernel messages, each with what it means, the
    /// likely causes, what to check next and the fix. Multi-line reports (an OOM report, an
    /// Oops with its stack) are read as one; repeated events are counted; lines it does not
    /// know are listed as unknown. Needs no root for text input.
    Explain(ExplainArgs),
    /// Predict what will run out, and when: memory, descriptors, disk space and inodes,
    /// pids, conntrack entries, each with its trend, ETA and confidence, soonest first.
    ///
    /// Watched: memory per cgroup and of the host, file descriptors per process,
    /// filesystem space and inodes (the kubelet's and the runtime's named), pids per cgroup
    /// and of the host, conntrack entries per network namespace.
    ///
    /// With a `kerno start` agent running, its history answers at once; otherwise (or with
    /// --standalone, --snapshots or --interval) levels are sampled here from /proc and
    /// cgroupfs (no eBPF needed). Only steady, real growth that reaches its limit within
    /// --horizon is predicted: noise, sawtooths (caches, garbage collectors, log rotation),
    /// growth that levels off and tiny growth are not (docs/predict.md).
    Predict(PredictArgs),
    /// Print the version, the build's git revision, the eBPF object's hash and the kernel
    /// features detected here.
    Version,
    /// Check that this node can run Kerno: kernel, BTF, tracepoints, capabilities, tracefs,
    /// cgroups, host mounts, the agent's port, memlock. Exits 1 on any FAIL.
    ///
    /// Each line is PASS, WARN or FAIL, with the fix under each WARN and FAIL. It loads
    /// nothing: it creates one BPF map and closes it at once (is bpf() allowed?) and binds
    /// the agent's port and releases it.
    Preflight(PreflightArgs),
    /// Print a shell completion script for bash, zsh or fish.
    ///
    /// bash: `source <(kerno completions bash)`, or save it as
    /// /usr/share/bash-completion/completions/kerno. zsh: save it as `_kerno` in a directory
    /// of $fpath. fish: save it as ~/.config/fish/completions/kerno.fish.
    Completions(CompletionsArgs),
    /// Print the man page kerno(1), or write kerno(1) and a page per command to a directory.
    Man(ManArgs),
    /// Show kernel events as they happen (one line each), filtered in the kernel.
    Trace(TraceArgs),
    /// Watch for incidents as they happen: OOM kills, descriptor leaks.
    Watch(WatchArgs),
}

#[derive(Args, Debug)]
pub struct PreflightArgs {
    /// The agent's address whose port must be free [default: :9090, $KERNO_LISTEN, or agent.listen]
    #[arg(short, long, value_name = "ADDR")]
    pub listen: Option<String>,

    /// No agent will run here (only `kerno doctor`): skip the port check.
    #[arg(long, conflicts_with = "listen")]
    pub no_agent: bool,

    /// Check the tracepoints of these domains only (comma-separated): syscalls, fds, sched, disk, tcp, oom, memory.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = str::parse::<Domain>)]
    pub domains: Option<Vec<Domain>>,

    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write kerno.1 and kerno-COMMAND.1 into DIR (created when missing) instead of printing kerno(1).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
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

/// How a stream prints its events (the global `--output`: pretty or json).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum StreamOutput {
    #[default]
    /// Aligned columns, a summary line last.
    Pretty,
    /// One JSON object per line, `{"summary": ...}` last (docs/json-report.md).
    Json,
}

/// What every stream takes.
#[derive(Args, Debug)]
pub struct StreamArgs {
    /// Set from the global `--output` (a stream writes pretty or json).
    #[arg(skip)]
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

    /// Only tasks of this Kubernetes pod (its cgroup, matched in the kernel; needs the pod's cgroups in the cgroup v2 hierarchy)
    #[arg(long, value_name = "NS/NAME")]
    pub pod: Option<String>,

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
    /// Human-readable text.
    Pretty,
    /// JSON (doctor's report with its signals: docs/json-report.md).
    Json,
    /// One self-contained HTML page with charts (doctor's report; docs/cli.md).
    Html,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// How long to observe, 1s to 5m (e.g. 10s, 2m) [default: 30s, or the config file's]
    #[arg(short, long, value_name = "DURATION")]
    pub duration: Option<String>,

    /// Exit with status 3 when any finding is critical.
    #[arg(long)]
    pub exit_code: bool,

    /// No progress indicator and no notes on stderr; only the report.
    #[arg(short, long)]
    pub quiet: bool,

    /// Show only critical findings.
    #[arg(long)]
    pub only_critical: bool,

    /// Also write the window's signals to FILE, for `--from` later.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,

    /// Also write the report as one self-contained HTML page (charts included) to FILE,
    /// beside the report on stdout.
    #[arg(long, value_name = "FILE")]
    pub save_html: Option<PathBuf>,

    /// Re-run the rules on a window saved with --save (or a JSON report); needs no root.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["duration", "save", "domains"])]
    pub from: Option<PathBuf>,

    #[command(flatten)]
    pub cfg: ConfigArgs,

    /// Observe only these domains (comma-separated): syscalls, fds, sched, disk, tcp, oom, memory, filesystem, pids, conntrack.
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

    /// Add an AI analysis after the report, from the provider in the config's `ai:` section (key from $KERNO_AI_API_KEY or ai.api_key_file; docs/ai.md). The report itself is unchanged; a failure is one line on stderr
    #[arg(long)]
    pub ai: bool,

    /// With --ai: print the exact request that would be sent (key hidden) and send nothing
    #[arg(long)]
    pub dry_run: bool,

    #[command(flatten)]
    pub node: NodeArgs,

    /// Ask every node's agent instead (over HTTP, `/doctor` on its port, which `kerno start --serve-doctor` serves) and print one report ranked across nodes, each finding with its node
    #[arg(long, conflicts_with_all = ["from", "save", "save_html", "standalone", "domains", "ai", "dry_run", "thresholds"])]
    pub cluster: bool,

    /// With --cluster: the agents, HOST:PORT (port 9090 when left out), comma-separated; each name counts as every address it resolves to [default: $KERNO_AGENTS, or kerno.kerno-system.svc:9090, the chart's headless Service]
    #[arg(
        long,
        value_name = "HOST:PORT,...",
        value_delimiter = ',',
        requires = "cluster"
    )]
    pub agents: Vec<String>,

    /// With --cluster: the file holding the agents' bearer token [default: $KERNO_DOCTOR_TOKEN_FILE or agent.doctor_token_file]
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub token_file: Option<PathBuf>,

    /// With --cluster: how long one agent may take to answer
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "10s",
        requires = "cluster"
    )]
    pub node_timeout: String,

    /// With --cluster: the whole answer is printed by then at the latest; agents still silent are listed as not observed
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "15s",
        requires = "cluster"
    )]
    pub deadline: String,
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

    /// The longest window the findings gauges look back over, 1s to 1h, at most --window: every rule is evaluated over it, and a rule with a short window of its own over that too, so it fires within seconds [default: 30s, $KERNO_FINDINGS_WINDOW, or agent.findings_window]
    #[arg(long, value_name = "DURATION")]
    pub findings_window: Option<String>,

    #[command(flatten)]
    pub cfg: ConfigArgs,

    /// Observe only these domains (comma-separated): syscalls, fds, sched, disk, tcp, oom, memory, filesystem, pids, conntrack.
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = str::parse::<Domain>)]
    pub domains: Option<Vec<Domain>>,

    #[command(flatten)]
    pub node: NodeArgs,

    /// Serve /doctor (this node's report) on the listen address too, for `kerno doctor --cluster`; only to requests bearing the token in --doctor-token-file [default: $KERNO_SERVE_DOCTOR or agent.serve_doctor]
    #[arg(long)]
    pub serve_doctor: bool,

    /// The file holding the bearer token /doctor on the listen address asks for (a mounted Secret) [default: $KERNO_DOCTOR_TOKEN_FILE or agent.doctor_token_file]
    #[arg(long, value_name = "FILE")]
    pub doctor_token_file: Option<PathBuf>,
    /// Also push the metrics and the findings over OTLP/HTTP to this receiver, e.g. http://otel-collector:4318 [default: $KERNO_OTLP_ENDPOINT, or export.otlp.endpoint; none: no export]
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,

    /// How often metrics are pushed over OTLP, 1s to 1h [default: 15s, $KERNO_OTLP_INTERVAL, or export.otlp.interval]
    #[arg(long, value_name = "DURATION")]
    pub otlp_interval: Option<String>,
}

#[derive(Args, Debug)]
#[command(
    after_help = "Exit codes: 0 success (with --exit-code: nothing runs out within \
--warn-within), 1 failure, 2 usage error, 3 something runs out within --warn-within (with \
--exit-code), 130 interrupted."
)]
pub struct PredictArgs {
    /// Sample this many snapshots here, 5 to 100000 [default: 10]
    #[arg(short = 'n', long, value_name = "N")]
    pub snapshots: Option<u64>,

    /// Time between snapshots, 100ms to 1h [default: 15s]
    #[arg(short, long, value_name = "DURATION")]
    pub interval: Option<String>,

    /// Predict only what runs out within this, 1s to 365 days (e.g. 4h, 24h)
    #[arg(long, value_name = "DURATION", default_value = "24h")]
    pub horizon: String,

    /// What runs out within this is a warning (with --exit-code: exit 3)
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    pub warn_within: String,

    /// How much of a running agent's history to fit, 1m to 1h
    #[arg(short, long, value_name = "DURATION", default_value = "1h")]
    pub window: String,

    /// Exit with status 3 when something runs out within --warn-within.
    #[arg(long)]
    pub exit_code: bool,

    /// No progress indicator and no notes on stderr; only the forecast.
    #[arg(short, long)]
    pub quiet: bool,

    /// Sample here even when a `kerno start` agent runs.
    #[arg(long, conflicts_with = "from")]
    pub standalone: bool,

    /// Predict from a window saved with `kerno doctor --save` or `kerno predict --save`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["snapshots", "interval", "save"])]
    pub from: Option<PathBuf>,

    /// Also write the sampled window's signals to FILE, for --from later.
    #[arg(long, value_name = "FILE")]
    pub save: Option<PathBuf>,

    #[command(flatten)]
    pub node: NodeArgs,
}

#[derive(Args, Debug)]
pub struct RulesArgs {
    #[command(flatten)]
    pub cfg: ConfigArgs,
}

/// Threshold overrides, for every command that runs rules (the configuration file is the
/// global `--config`).
#[derive(Args, Debug)]
pub struct ConfigArgs {
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

    /// No progress line while the scenario runs.
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
#[command(after_help = "Examples:
  kerno explain 'Memory cgroup out of memory: Killed process 4121 (java) ...'
  dmesg | tail -50 | kerno explain
  journalctl -k --since -1h | kerno explain -o json
  kerno explain --since 24h        # the kernel log itself (/dev/kmsg, else journalctl -k)
  kerno explain --rule fd-leak")]
pub struct ExplainArgs {
    /// A kernel log message (the words are joined by spaces; one argument may hold several
    /// lines). Without one, lines are read from stdin when it is a pipe or a file, else from
    /// the kernel log itself.
    #[arg(value_name = "MESSAGE")]
    pub message: Vec<String>,

    /// Explain a rule instead: what it checks, its thresholds, what to do when it fires.
    #[arg(long, value_name = "ID", conflicts_with_all = ["message", "since"])]
    pub rule: Option<String>,

    /// How far back to read the kernel log when no lines are given (e.g. 30m, 1h, 2d) [default: 1h]
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,

    /// Ask the AI provider (the config's `ai:` section; docs/ai.md) about the lines the knowledge base does not know; known lines are explained offline and never sent. Needs ai.privacy redacted or full
    #[arg(long, conflicts_with = "rule")]
    pub ai: bool,

    /// With --ai: print the exact request that would be sent (key hidden) and send nothing
    #[arg(long, requires = "ai")]
    pub dry_run: bool,

    #[command(flatten)]
    pub cfg: ConfigArgs,

    #[command(flatten)]
    pub node: NodeArgs,
}
