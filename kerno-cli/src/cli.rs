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
