//! Can this node run Kerno? The checks of `kerno preflight`, of the Helm chart's init
//! container, of `scripts/install.sh` and of the missing-capability errors, in one place.
//!
//! [`preflight`] gathers the facts ([`Facts::gather`]: the kernel release, BTF, tracefs,
//! each tracepoint the probes attach to, the capabilities held, the cgroup hierarchy, the
//! host mounts when Kerno runs in a container, the agent's port, the memlock limit) and
//! [`judge`]s them: every line is PASS, WARN or FAIL, and every FAIL says how to fix it.
//! Judging is a pure function of the facts, so each verdict is unit-tested on facts made
//! by hand. Nothing is loaded, attached or mounted; the only side effects are a one-entry
//! BPF map created and closed at once (is `bpf()` allowed?) and a bind to the agent's port,
//! released at once.

use std::{
    fmt, fs,
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
};

/// The probes' domains, whose tracepoints are checked.
pub use kerno_probes::Domain as ProbeDomain;
use serde::{Deserialize, Serialize};

use crate::host::HostRoot;

/// The verdict of one check.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Fine.
    Pass,
    /// Kerno runs, with less: a domain, names or a limit degraded.
    Warn,
    /// Kerno cannot run (or not as configured) until this is fixed.
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        })
    }
}

/// One line of the preflight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// What is checked: `kernel`, `btf`, `tracefs`, `tracepoint tp_btf/sched_switch`,
    /// `capabilities`, `bpf syscall`, `lockdown`, `cgroup`, `host mounts`, `agent port`,
    /// `memlock`.
    pub name: String,
    /// The verdict.
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do about a WARN or FAIL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    fn pass(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            verdict: Verdict::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    fn warn(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            verdict: Verdict::Warn,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    fn fail(name: impl Into<String>, detail: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            verdict: Verdict::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every check, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preflight {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Preflight {
    /// Whether any check failed.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.verdict == Verdict::Fail)
    }

    /// How many checks have this verdict.
    pub fn count(&self, v: Verdict) -> usize {
        self.checks.iter().filter(|c| c.verdict == v).count()
    }

    /// The check named `name`.
    pub fn get(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// The plain-text rendering: a verdict, a name and what was found per line, the fix
    /// indented under each WARN and FAIL, and a summary line.
    pub fn render(&self, color: bool) -> String {
        let width = self.checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            let tag = c.verdict.to_string();
            let tag = if color {
                let code = match c.verdict {
                    Verdict::Pass => "32",
                    Verdict::Warn => "33",
                    Verdict::Fail => "1;31",
                };
                format!("\x1b[{code}m{tag}\x1b[0m")
            } else {
                tag
            };
            out.push_str(&format!("{tag}  {:<width$}  {}\n", c.name, c.detail));
            if let Some(fix) = &c.fix {
                out.push_str(&format!("      {:<width$}  fix: {fix}\n", ""));
            }
        }
        out.push_str(&format!(
            "\n{} passed, {} warnings, {} failed: {}\n",
            self.count(Verdict::Pass),
            self.count(Verdict::Warn),
            self.count(Verdict::Fail),
            if self.failed() {
                "Kerno cannot run here until every FAIL is fixed"
            } else if self.count(Verdict::Warn) > 0 {
                "Kerno can run here, with less (see the warnings)"
            } else {
                "Kerno can run here"
            }
        ));
        out
    }
}

/// What to check against.
#[derive(Clone, Debug)]
pub struct PreflightOptions {
    /// Where the host's files are (`/host` in a DaemonSet).
    pub host_root: HostRoot,
    /// The agent's address (`kerno start --listen`); `None` skips the port check.
    pub listen: Option<SocketAddr>,
    /// Whether a Kerno agent already answers on this node (its port is then taken by it).
    pub agent_running: bool,
    /// The probe domains to check the tracepoints of (every one by default).
    pub domains: Vec<ProbeDomain>,
}

impl Default for PreflightOptions {
    fn default() -> Self {
        PreflightOptions {
            host_root: HostRoot::default(),
            listen: None,
            agent_running: false,
            domains: ProbeDomain::ALL.to_vec(),
        }
    }
}

/// Run every check on this node.
pub fn preflight(opts: &PreflightOptions) -> Preflight {
    Preflight {
        checks: judge(&Facts::gather(opts)),
    }
}

/// The capability check alone (the probes' privileges), as the commands that load probes
/// run it first: `Err` holds the FAIL, naming what is missing and how to grant it.
pub fn check_capabilities() -> Result<(), Check> {
    let caps = Caps::current();
    let c = judge_capabilities(&caps);
    if c.verdict == Verdict::Fail {
        Err(c)
    } else {
        Ok(())
    }
}

// Capability bits (linux/capability.h).
const CAP_DAC_READ_SEARCH: u32 = 2;
const CAP_SYS_PTRACE: u32 = 19;
const CAP_SYS_ADMIN: u32 = 21;
const CAP_SYS_RESOURCE: u32 = 24;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The effective capabilities of this process.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caps(pub u64);

impl Caps {
    /// This process's effective set, from `/proc/self/status` (none when unreadable).
    pub fn current() -> Caps {
        let eff = fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("CapEff:"))
                    .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            })
            .unwrap_or(0);
        Caps(eff)
    }

    fn has(self, cap: u32) -> bool {
        self.0 & (1u64 << cap) != 0
    }

    /// May load and attach tracing programs: `CAP_BPF` and `CAP_PERFMON`, or
    /// `CAP_SYS_ADMIN`.
    pub fn can_load_probes(self) -> bool {
        self.has(CAP_SYS_ADMIN) || (self.has(CAP_BPF) && self.has(CAP_PERFMON))
    }
}

/// The cgroup hierarchy as found under the host root.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cgroups {
    /// Where it was looked for (`/sys/fs/cgroup` under the host root).
    pub path: String,
    /// cgroup v2 at `/sys/fs/cgroup` itself.
    pub unified: bool,
    /// cgroup v2 beside v1 at `/sys/fs/cgroup/unified` (hybrid).
    pub hybrid_v2: bool,
    /// v1 controllers mounted (directories at `/sys/fs/cgroup/<controller>`).
    pub v1_controllers: Vec<String>,
    /// The kubelet's and systemd's top cgroups found (`kubepods.slice`, `system.slice`...).
    pub layout: Vec<String>,
}

impl Cgroups {
    /// `v2`, `hybrid`, `v1` or `none`.
    pub fn version(&self) -> &'static str {
        if self.unified {
            "v2"
        } else if !self.v1_controllers.is_empty() && self.hybrid_v2 {
            "hybrid"
        } else if !self.v1_controllers.is_empty() {
            "v1"
        } else {
            "none"
        }
    }

    /// Read the hierarchy under `root`.
    pub fn detect(root: &HostRoot) -> Cgroups {
        let base = root.path("/sys/fs/cgroup");
        let mut c = Cgroups {
            path: base.display().to_string(),
            unified: base.join("cgroup.controllers").is_file(),
            hybrid_v2: base.join("unified/cgroup.controllers").is_file(),
            ..Cgroups::default()
        };
        if !c.unified {
            for ctl in ["memory", "cpu,cpuacct", "cpu", "pids", "blkio"] {
                if base.join(ctl).join("cgroup.procs").is_file() {
                    c.v1_controllers.push(ctl.to_string());
                }
            }
        }
        let tops: &[&str] = if c.unified {
            &[""]
        } else {
            &["unified/", "memory/", "cpu,cpuacct/"]
        };
        for (name, what) in [
            ("kubepods.slice", "kubelet (systemd cgroup driver)"),
            ("kubepods", "kubelet (cgroupfs driver)"),
            ("system.slice", "systemd"),
            ("machine.slice", "machines/podman"),
            ("docker", "docker (cgroupfs)"),
        ] {
            if tops
                .iter()
                .any(|t| base.join(format!("{t}{name}")).is_dir())
                && !c.layout.iter().any(|l| l.starts_with(what))
            {
                c.layout.push(format!("{what}: {name}"));
            }
        }
        c
    }
}

/// The kernel features `kerno version` reports and the preflight checks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KernelFeatures {
    /// `uname -r`.
    pub release: String,
    /// `/sys/kernel/btf/vmlinux` is readable.
    pub btf: bool,
    /// Where tracefs is mounted, if it is.
    pub tracefs: Option<PathBuf>,
    /// `v2`, `hybrid`, `v1` or `none`, under the host root.
    pub cgroup: String,
    /// The kubelet's and systemd's top cgroups.
    pub cgroup_layout: Vec<String>,
    /// The lockdown mode (`none`, `integrity`, `confidentiality`), when the LSM reports it.
    pub lockdown: Option<String>,
    /// BPF memory is charged to the memory cgroup (5.11+), not `RLIMIT_MEMLOCK`.
    pub bpf_memcg: bool,
    /// The environment Kerno runs in (`kubernetes`, `container`, `systemd`, `bare-metal`).
    pub environment: String,
}

impl KernelFeatures {
    /// Detect them on this machine (cheap: a few files read, nothing parsed at length).
    pub fn detect(root: &HostRoot) -> KernelFeatures {
        let release = kernel_release();
        let cg = Cgroups::detect(root);
        let env: Vec<(String, String)> = std::env::vars().collect();
        KernelFeatures {
            bpf_memcg: parse_release(&release).is_some_and(|v| v >= (5, 11)),
            btf: fs::File::open(BTF).is_ok(),
            tracefs: kerno_probes::tracefs::find(),
            cgroup: cg.version().to_string(),
            cgroup_layout: cg.layout,
            lockdown: fs::read_to_string("/sys/kernel/security/lockdown")
                .ok()
                .and_then(|s| parse_lockdown(&s)),
            environment: crate::host::detect_environment(&HostRoot::default(), root, &env)
                .kind
                .to_string(),
            release,
        }
    }
}

const BTF: &str = "/sys/kernel/btf/vmlinux";
/// The probes' maps at their largest (docs/performance.md: 12.7 MiB, +~40 KiB per CPU),
/// with room: what RLIMIT_MEMLOCK must allow on kernels that charge BPF memory to it.
const MEMLOCK_BASE: u64 = 16 << 20;
const MEMLOCK_PER_CPU: u64 = 64 << 10;

/// What the checks are judged on, gathered from the machine by [`Facts::gather`] or made
/// by hand in tests.
#[derive(Clone, Debug)]
pub struct Facts {
    /// `uname -r`.
    pub release: String,
    /// BTF: `Ok(size)` or why it cannot be read.
    pub btf: Result<u64, String>,
    /// Where tracefs is mounted.
    pub tracefs: Option<PathBuf>,
    /// Where tracefs is mounted but this process cannot read it (not root).
    pub tracefs_unreadable: Option<PathBuf>,
    /// Each tracepoint the probes need, and whether it is there as they need it.
    pub tracepoints: Vec<(String, Result<(), String>)>,
    /// Effective capabilities.
    pub caps: Caps,
    /// The `bpf()` system call: allowed, or the error (`None`: not tried).
    pub bpf_syscall: Option<Result<(), String>>,
    /// The lockdown mode.
    pub lockdown: Option<String>,
    /// The cgroup hierarchy under the host root.
    pub cgroups: Cgroups,
    /// The host root.
    pub host_root: PathBuf,
    /// Kerno runs in a container (another mount namespace than pid 1's, or a container's
    /// cgroup or marker), with the evidence.
    pub in_container: Option<String>,
    /// Kerno's pid namespace is not the initial one.
    pub own_pid_namespace: bool,
    /// Host paths under the host root: (host path, present).
    pub host_paths: Vec<(String, bool)>,
    /// The agent's address and what binding it gave.
    pub port: Option<(SocketAddr, Result<(), PortError>)>,
    /// A Kerno agent answers on this node.
    pub agent_running: bool,
    /// `RLIMIT_MEMLOCK` (soft, hard); `u64::MAX` is unlimited.
    pub memlock: (u64, u64),
    /// Online CPUs.
    pub cpus: u64,
}

impl Default for Facts {
    fn default() -> Self {
        Facts {
            release: String::new(),
            btf: Err("not checked".into()),
            tracefs: None,
            tracefs_unreadable: None,
            tracepoints: Vec::new(),
            caps: Caps::default(),
            bpf_syscall: None,
            lockdown: None,
            cgroups: Cgroups::default(),
            host_root: PathBuf::from("/"),
            in_container: None,
            own_pid_namespace: false,
            host_paths: Vec::new(),
            port: None,
            agent_running: false,
            memlock: (0, 0),
            cpus: 1,
        }
    }
}

/// Why the agent's port cannot be bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortError {
    /// Another socket listens there: its owner (`pid 123 (prometheus)`), when found.
    InUse(Option<String>),
    /// A port below 1024 without `CAP_NET_BIND_SERVICE`.
    Denied,
    /// Anything else (no such address on this host...).
    Other(String),
}

impl Facts {
    /// Gather the facts on this machine.
    pub fn gather(opts: &PreflightOptions) -> Facts {
        let release = kernel_release();
        let caps = Caps::current();
        let tracefs = kerno_probes::tracefs::find();
        let tracefs_unreadable = if tracefs.is_none() {
            fs::read_to_string("/proc/self/mounts")
                .unwrap_or_default()
                .lines()
                .map(|l| l.split_whitespace().collect::<Vec<_>>())
                .find(|f| f.len() > 2 && f[2] == "tracefs")
                .map(|f| PathBuf::from(f[1]))
        } else {
            None
        };
        let tracepoints = kerno_probes::check_tracepoints(&opts.domains, tracefs.as_deref())
            .into_iter()
            .map(|(tp, r)| (tp.to_string(), r))
            .collect();
        let root = &opts.host_root;
        let (in_container, own_pid_namespace) = container_evidence();
        let mut host_paths = Vec::new();
        if in_container.is_some() || !root.is_own_root() {
            for p in ["/proc", "/sys/fs/cgroup", "/var/log/pods"] {
                let present = if p == "/proc" {
                    root.path("/proc/1/cgroup").is_file()
                } else {
                    root.path(p).is_dir()
                };
                host_paths.push((p.to_string(), present));
            }
        }
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit fills a valid struct.
        unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut lim) };
        let unl = |v: libc::rlim_t| {
            if v == libc::RLIM_INFINITY {
                u64::MAX
            } else {
                v
            }
        };
        // SAFETY: sysconf has no preconditions.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u64;
        Facts {
            btf: fs::metadata(BTF)
                .and_then(|m| fs::File::open(BTF).map(|_| m.len()))
                .map_err(|e| e.to_string()),
            bpf_syscall: caps
                .can_load_probes()
                .then(|| kerno_probes::bpf_syscall_allowed().map_err(|e| e.to_string())),
            lockdown: fs::read_to_string("/sys/kernel/security/lockdown")
                .ok()
                .and_then(|s| parse_lockdown(&s)),
            cgroups: Cgroups::detect(root),
            host_root: root.prefix().to_path_buf(),
            in_container,
            own_pid_namespace,
            host_paths,
            port: opts.listen.map(|a| (a, try_bind(a))),
            agent_running: opts.agent_running,
            memlock: (unl(lim.rlim_cur), unl(lim.rlim_max)),
            cpus,
            release,
            tracefs,
            tracefs_unreadable,
            tracepoints,
            caps,
        }
    }
}

fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `6.1.0-18-amd64` -> (6, 1).
fn parse_release(r: &str) -> Option<(u32, u32)> {
    let mut it = r.split(|c: char| !c.is_ascii_digit());
    let maj = it.next()?.parse().ok()?;
    let min = it.next()?.parse().ok()?;
    Some((maj, min))
}

/// `none [integrity] confidentiality` -> `integrity`.
fn parse_lockdown(s: &str) -> Option<String> {
    let a = s.find('[')?;
    let b = s[a..].find(']')? + a;
    Some(s[a + 1..b].to_string())
}

/// (evidence that Kerno runs in a container, its pid namespace is its own).
fn container_evidence() -> (Option<String>, bool) {
    let link = |p: &str| {
        fs::read_link(p)
            .ok()
            .map(|l| l.to_string_lossy().into_owned())
    };
    let own_pidns = link("/proc/self/ns/pid").is_some_and(|n| n != "pid:[4026531836]");
    let evidence = match (link("/proc/self/ns/mnt"), link("/proc/1/ns/mnt")) {
        (Some(me), Some(init)) if me != init => {
            Some("its mount namespace is not pid 1's".to_string())
        }
        _ => {
            let cg = fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            let info = crate::attribution::cgroup_path::parse_proc_cgroup(&cg);
            if info.is_pod() {
                Some("its cgroup is a pod's".into())
            } else if let (Some(_), Some(rt)) = (&info.container_id, info.runtime) {
                Some(format!("its cgroup is a {rt} container's"))
            } else if Path::new("/run/.containerenv").exists() {
                Some("/run/.containerenv exists".into())
            } else {
                None
            }
        }
    };
    (
        evidence.or(own_pidns.then(|| "its pid namespace is its own".into())),
        own_pidns,
    )
}

fn try_bind(addr: SocketAddr) -> Result<(), PortError> {
    match TcpListener::bind(addr) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
            Err(PortError::InUse(port_owner(addr.port())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Err(PortError::Denied),
        Err(e) => Err(PortError::Other(e.to_string())),
    }
}

/// The process listening on TCP `port` in this network namespace: its socket's inode from
/// `/proc/net/tcp{,6}`, then the descriptor that links to it under `/proc/<pid>/fd`.
fn port_owner(port: u16) -> Option<String> {
    let mut inodes = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        for line in fs::read_to_string(f).unwrap_or_default().lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            // local_address is ADDR:PORT in hex; state 0A is LISTEN.
            if cols.len() > 9
                && cols[3] == "0A"
                && cols[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                    == Some(port)
            {
                inodes.push(format!("socket:[{}]", cols[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for e in fs::read_dir("/proc").ok()?.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        let Ok(fds) = fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(l) = fs::read_link(fd.path())
                && inodes.iter().any(|i| l.as_os_str() == i.as_str())
            {
                let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
                return Some(format!("pid {pid} ({})", comm.trim()));
            }
        }
    }
    None
}

fn judge_capabilities(caps: &Caps) -> Check {
    let name = "capabilities";
    if !caps.can_load_probes() {
        let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
            .into_iter()
            .filter(|(c, _)| !caps.has(*c))
            .map(|(_, n)| n)
            .collect();
        return Check::fail(
            name,
            format!(
                "not permitted to load eBPF probes: missing {}",
                missing.join(" and ")
            ),
            "run as root (sudo kerno ...), or grant CAP_BPF and CAP_PERFMON (setcap \
cap_bpf,cap_perfmon+ep on the binary; capabilities.add [BPF, PERFMON] in a pod)",
        );
    }
    let soft: Vec<&str> = [
        (
            CAP_SYS_PTRACE,
            "CAP_SYS_PTRACE (other processes' network namespaces and fds)",
        ),
        (
            CAP_DAC_READ_SEARCH,
            "CAP_DAC_READ_SEARCH (other users' /proc/<pid>/fd)",
        ),
    ]
    .into_iter()
    .filter(|(c, _)| !caps.has(*c))
    .map(|(_, n)| n)
    .collect();
    let held = if caps.has(CAP_SYS_ADMIN) {
        "CAP_SYS_ADMIN"
    } else {
        "CAP_BPF and CAP_PERFMON"
    };
    if soft.is_empty() {
        Check::pass(
            name,
            format!("{held}, CAP_SYS_PTRACE, CAP_DAC_READ_SEARCH held"),
        )
    } else {
        Check::warn(
            name,
            format!("{held} held; missing {}", soft.join(", ")),
            "grant them too (docs/deploy.md, \"Capabilities\"), or per-process detail stays incomplete",
        )
    }
}

/// Judge the facts: one [`Check`] per line, in the order a person fixes them.
pub fn judge(f: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    // Kernel version: CAP_BPF and CAP_PERFMON exist from 5.8.
    out.push(match parse_release(&f.release) {
        Some(v) if v >= (5, 8) => Check::pass("kernel", format!("{} (5.8 or later)", f.release)),
        Some(_) => Check::fail(
            "kernel",
            format!(
                "{} is older than 5.8 (no CAP_BPF, CAP_PERFMON or tp_btf)",
                f.release
            ),
            "run a 5.8 or later kernel with BTF (any current distribution kernel)",
        ),
        None => Check::warn(
            "kernel",
            format!("cannot tell the kernel version from {:?}", f.release),
            "check that /proc/sys/kernel/osrelease is readable",
        ),
    });
    out.push(match &f.btf {
        Ok(size) => Check::pass("btf", format!("{BTF} ({} KiB)", size / 1024)),
        Err(e) => Check::fail(
            "btf",
            format!("{BTF}: {e}"),
            "run a kernel built with CONFIG_DEBUG_INFO_BTF=y (the syscall probes' types come from it)",
        ),
    });
    let tracefs_ok = f.tracefs.is_some();
    out.push(match &f.tracefs {
        Some(p) => Check::pass("tracefs", format!("mounted at {}", p.display())),
        None if f.tracefs_unreadable.is_some() => Check::fail(
            "tracefs",
            format!(
                "mounted at {}, but this user may not read it",
                f.tracefs_unreadable.as_ref().map(|p| p.display().to_string()).unwrap_or_default()
            ),
            "run as root, or grant CAP_DAC_READ_SEARCH (tracefs and the tracepoint formats are readable by root only)",
        ),
        None if f.caps.has(CAP_SYS_ADMIN) && f.in_container.is_none() => Check::warn(
            "tracefs",
            "not mounted; kerno mounts it at /sys/kernel/tracing when it starts",
            "none needed (or mount -t tracefs nodev /sys/kernel/tracing to check the tracepoints now)",
        ),
        None => Check::fail(
            "tracefs",
            "not mounted, and kerno may not mount it (no CAP_SYS_ADMIN, or in a container)",
            "mount -t tracefs nodev /sys/kernel/tracing on the host; in a pod, mount the host's \
/sys/kernel/tracing read-only at /sys/kernel/tracing (deploy/helm/kerno does)",
        ),
    });
    for (tp, r) in &f.tracepoints {
        let name = format!("tracepoint {tp}");
        out.push(match r {
            Ok(()) if tp.starts_with("tp_btf/") => Check::pass(name, "typed in the kernel's BTF"),
            Ok(()) => Check::pass(name, "present, with every field the probe reads"),
            Err(_) if !tp.starts_with("tp_btf/") && !tracefs_ok => Check::warn(
                name,
                "not checked without tracefs",
                "see tracefs above, then run kerno preflight again",
            ),
            Err(e) if tp.starts_with("tp_btf/") && f.btf.is_err() => Check::fail(
                name,
                format!("not checked without BTF: {e}"),
                "see btf above",
            ),
            Err(e) => Check::warn(
                name,
                e.clone(),
                "this kernel lacks it: its domain is reported degraded, the others work (docs/probes.md lists each probe's kernel needs)",
            ),
        });
    }
    out.push(judge_capabilities(&f.caps));
    out.push(match &f.bpf_syscall {
        Some(Ok(())) => Check::pass("bpf syscall", "allowed (a test map was created and closed)"),
        Some(Err(e)) => Check::fail(
            "bpf syscall",
            format!("refused: {e}"),
            "a seccomp profile or LSM refuses bpf(): in a pod use deploy/seccomp/kerno.json \
(the runtime default plus bpf and perf_event_open), with podman/docker --security-opt seccomp=deploy/seccomp/kerno.json",
        ),
        None => Check::warn(
            "bpf syscall",
            "not tried without the capabilities above",
            "grant the capabilities and run kerno preflight again",
        ),
    });
    out.push(match f.lockdown.as_deref() {
        Some("confidentiality") => Check::fail(
            "lockdown",
            "lockdown=confidentiality: the kernel refuses BPF reads of kernel memory",
            "boot with lockdown=integrity (or none); with Secure Boot, see your distribution's lockdown policy",
        ),
        Some(m) => Check::pass("lockdown", m.to_string()),
        None => Check::pass("lockdown", "not reported (no lockdown LSM, or securityfs not mounted)"),
    });
    let cg = &f.cgroups;
    let layout = if cg.layout.is_empty() {
        String::new()
    } else {
        format!("; {}", cg.layout.join(", "))
    };
    out.push(match cg.version() {
        "none" => Check::fail(
            "cgroup",
            format!("no cgroup hierarchy at {}", cg.path),
            if f.host_root == Path::new("/") {
                "mount cgroup2 at /sys/fs/cgroup (mount -t cgroup2 none /sys/fs/cgroup)".to_string()
            } else {
                format!("mount the host's /sys/fs/cgroup read-only at {}", cg.path)
            },
        ),
        "v2" => Check::pass("cgroup", format!("v2 (unified) at {}{layout}", cg.path)),
        v if !cg.v1_controllers.iter().any(|c| c == "memory") => Check::warn(
            "cgroup",
            format!(
                "{v} at {} without the v1 memory controller{layout}",
                cg.path
            ),
            "mount the memory controller (per-cgroup memory limits are not observed without it)",
        ),
        "hybrid" => Check::pass(
            "cgroup",
            format!(
                "hybrid: v1 controllers ({}) and v2 at {}/unified{layout}",
                cg.v1_controllers.join(" "),
                cg.path
            ),
        ),
        _ => Check::pass(
            "cgroup",
            format!(
                "v1 ({}) at {}{layout}",
                cg.v1_controllers.join(" "),
                cg.path
            ),
        ),
    });
    out.push(judge_host_mounts(f));
    if let Some((addr, r)) = &f.port {
        out.push(match r {
            Ok(()) => Check::pass("agent port", format!("{addr} is free")),
            Err(PortError::InUse(owner)) if f.agent_running => Check::warn(
                "agent port",
                format!(
                    "{addr} is taken by the Kerno agent already running here{}",
                    owner.as_ref().map(|o| format!(" ({o})")).unwrap_or_default()
                ),
                "none needed: kerno doctor answers from it; a second agent needs another --listen",
            ),
            Err(PortError::InUse(owner)) => Check::fail(
                "agent port",
                format!(
                    "{addr} is in use{}",
                    owner.as_ref().map(|o| format!(" by {o}")).unwrap_or_default()
                ),
                "stop what listens there, or give the agent another port (kerno start --listen :PORT, agent.listen, KERNO_LISTEN)",
            ),
            Err(PortError::Denied) => Check::fail(
                "agent port",
                format!("{addr}: binding a port below 1024 is not permitted"),
                "use a port of 1024 or above, or grant CAP_NET_BIND_SERVICE",
            ),
            Err(PortError::Other(e)) => Check::fail(
                "agent port",
                format!("{addr}: {e}"),
                "give the agent an address of this host (kerno start --listen ADDR)",
            ),
        });
    }
    out.push(judge_memlock(f));
    out
}

fn judge_host_mounts(f: &Facts) -> Check {
    let name = "host mounts";
    let Some(why) = &f.in_container else {
        return Check::pass(name, "not in a container: the host's files are Kerno's own");
    };
    let root = f.host_root.display().to_string();
    if f.host_root == Path::new("/") {
        return Check::warn(
            name,
            format!("in a container ({why}) reading its own /proc and /sys/fs/cgroup"),
            "mount the host's /proc and /sys/fs/cgroup read-only under /host and set KERNO_HOST_ROOT=/host (--host-root /host); deploy/helm/kerno does",
        );
    }
    let under = |p: &str| format!("{}{p}", root.trim_end_matches('/'));
    let missing: Vec<&str> = f
        .host_paths
        .iter()
        .filter(|(p, ok)| !ok && p != "/var/log/pods")
        .map(|(p, _)| p.as_str())
        .collect();
    if !missing.is_empty() {
        return Check::fail(
            name,
            format!(
                "in a container ({why}); the host's {} missing under {root}",
                missing.join(" and ")
            ),
            format!(
                "mount them read-only: {}",
                missing
                    .iter()
                    .map(|p| format!("{p} at {}", under(p)))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    if f.own_pid_namespace {
        return Check::warn(
            name,
            format!("in a container with its own pid namespace; host files under {root}"),
            "share the host's pid namespace (hostPID: true in a pod, --pid host with podman/docker) so pids match the host's",
        );
    }
    // Pod and container names come from the kubelet's log directories: only a Kubernetes
    // node has them.
    let kubelet = f.cgroups.layout.iter().any(|l| l.starts_with("kubelet"));
    if kubelet
        && f.host_paths
            .iter()
            .any(|(p, ok)| !ok && p == "/var/log/pods")
    {
        return Check::warn(
            name,
            format!(
                "host /proc and /sys/fs/cgroup under {root}; no {}",
                under("/var/log/pods")
            ),
            format!(
                "mount the host's /var/log/pods read-only at {} for pod and container names",
                under("/var/log/pods")
            ),
        );
    }
    Check::pass(
        name,
        format!(
            "in a container; the host's /proc and /sys/fs/cgroup{} under {root}",
            if kubelet { " and /var/log/pods" } else { "" }
        ),
    )
}

fn judge_memlock(f: &Facts) -> Check {
    let name = "memlock";
    let need = MEMLOCK_BASE + MEMLOCK_PER_CPU * f.cpus.max(1);
    let show = |v: u64| {
        if v == u64::MAX {
            "unlimited".to_string()
        } else {
            format!("{} KiB", v / 1024)
        }
    };
    if parse_release(&f.release).is_some_and(|v| v >= (5, 11)) {
        return Check::pass(
            name,
            format!(
                "not used: this kernel charges BPF memory to the memory cgroup (limit {})",
                show(f.memlock.0)
            ),
        );
    }
    if f.memlock.0 >= need {
        Check::pass(
            name,
            format!("{} (the maps need about {})", show(f.memlock.0), show(need)),
        )
    } else if f.caps.has(CAP_SYS_RESOURCE) || f.memlock.1 == u64::MAX {
        Check::pass(
            name,
            format!(
                "{}; kerno raises it when it loads the probes",
                show(f.memlock.0)
            ),
        )
    } else {
        Check::fail(
            name,
            format!(
                "{} (hard limit {}); the maps need about {} on this kernel",
                show(f.memlock.0),
                show(f.memlock.1),
                show(need)
            ),
            "raise it: ulimit -l unlimited, LimitMEMLOCK=infinity in a systemd unit, or grant CAP_SYS_RESOURCE",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: u64 =
        (1 << CAP_BPF) | (1 << CAP_PERFMON) | (1 << CAP_SYS_PTRACE) | (1 << CAP_DAC_READ_SEARCH);

    fn good() -> Facts {
        Facts {
            release: "6.1.0-18-amd64".into(),
            btf: Ok(5 << 20),
            tracefs: Some("/sys/kernel/tracing".into()),
            tracepoints: vec![
                ("tp_btf/sys_enter".into(), Ok(())),
                ("sched:sched_switch".into(), Ok(())),
            ],
            caps: Caps(ALL),
            bpf_syscall: Some(Ok(())),
            lockdown: Some("none".into()),
            cgroups: Cgroups {
                path: "/sys/fs/cgroup".into(),
                unified: true,
                layout: vec!["systemd: system.slice".into()],
                ..Cgroups::default()
            },
            host_root: "/".into(),
            port: Some(("0.0.0.0:9090".parse().unwrap(), Ok(()))),
            memlock: (8 << 20, 8 << 20),
            cpus: 4,
            ..Facts::default()
        }
    }

    fn verdict(f: &Facts, name: &str) -> Check {
        judge(f)
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}"))
    }

    #[test]
    fn a_good_node_passes_every_check() {
        let p = Preflight {
            checks: judge(&good()),
        };
        assert!(!p.failed(), "{}", p.render(false));
        assert_eq!(p.count(Verdict::Warn), 0, "{}", p.render(false));
        assert_eq!(p.checks.len(), 12, "{}", p.render(false));
        assert!(p.render(false).ends_with("Kerno can run here\n"));
    }

    #[test]
    fn every_fail_has_a_fix() {
        let mut f = good();
        f.release = "5.4.0-42-generic".into();
        f.btf = Err("No such file or directory".into());
        f.tracefs = None;
        f.caps = Caps(0);
        f.bpf_syscall = Some(Err("Operation not permitted".into()));
        f.lockdown = Some("confidentiality".into());
        f.cgroups = Cgroups {
            path: "/host/sys/fs/cgroup".into(),
            ..Cgroups::default()
        };
        f.port = Some((
            "0.0.0.0:9090".parse().unwrap(),
            Err(PortError::InUse(Some("pid 7 (nc)".into()))),
        ));
        let checks = judge(&f);
        for c in &checks {
            if c.verdict != Verdict::Pass {
                assert!(c.fix.as_deref().is_some_and(|s| !s.is_empty()), "{c:?}");
            }
        }
        for name in [
            "kernel",
            "btf",
            "tracefs",
            "capabilities",
            "bpf syscall",
            "lockdown",
            "cgroup",
            "agent port",
            "memlock",
        ] {
            assert_eq!(verdict(&f, name).verdict, Verdict::Fail, "{name}");
        }
        assert!(verdict(&f, "agent port").detail.contains("pid 7 (nc)"));
        assert!(verdict(&f, "memlock").detail.contains("hard limit"));
        let p = Preflight { checks };
        assert!(p.failed());
        assert!(p.render(false).contains("cannot run here"));
    }

    #[test]
    fn capabilities_name_what_is_missing() {
        let c = judge_capabilities(&Caps(1 << CAP_PERFMON));
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.detail.ends_with("missing CAP_BPF"), "{c:?}");
        let c = judge_capabilities(&Caps(0));
        assert!(
            c.detail.ends_with("missing CAP_BPF and CAP_PERFMON"),
            "{c:?}"
        );
        // CAP_SYS_ADMIN alone loads probes; the per-process ones are a warning.
        let c = judge_capabilities(&Caps(1 << CAP_SYS_ADMIN));
        assert_eq!(c.verdict, Verdict::Warn, "{c:?}");
        assert!(c.detail.contains("CAP_SYS_PTRACE") && c.detail.contains("CAP_DAC_READ_SEARCH"));
        assert_eq!(judge_capabilities(&Caps(ALL)).verdict, Verdict::Pass);
    }

    #[test]
    fn tracefs_missing_is_a_warning_when_kerno_can_mount_it() {
        let mut f = good();
        f.tracefs = None;
        f.caps = Caps(ALL | 1 << CAP_SYS_ADMIN);
        f.tracepoints[1].1 = Err("tracefs is not mounted".into());
        assert_eq!(verdict(&f, "tracefs").verdict, Verdict::Warn);
        assert_eq!(
            verdict(&f, "tracepoint sched:sched_switch").verdict,
            Verdict::Warn
        );
        f.in_container = Some("its mount namespace is not pid 1's".into());
        assert_eq!(verdict(&f, "tracefs").verdict, Verdict::Fail);
        f.in_container = None;
        f.caps = Caps(0);
        f.tracefs_unreadable = Some("/sys/kernel/tracing".into());
        let c = verdict(&f, "tracefs");
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(c.fix.unwrap().contains("root"));
    }

    #[test]
    fn a_missing_tracepoint_degrades_its_domain() {
        let mut f = good();
        f.tracepoints[1].1 =
            Err("tracepoint sched/sched_switch has no field prev_state on this kernel".into());
        let c = verdict(&f, "tracepoint sched:sched_switch");
        assert_eq!(c.verdict, Verdict::Warn);
        assert!(c.detail.contains("prev_state"));
    }

    #[test]
    fn memlock_matters_only_before_5_11() {
        let mut f = good();
        f.memlock = (64 << 10, 64 << 10);
        assert_eq!(verdict(&f, "memlock").verdict, Verdict::Pass);
        f.release = "5.10.0-28-amd64".into();
        assert_eq!(verdict(&f, "memlock").verdict, Verdict::Fail);
        f.caps = Caps(ALL | 1 << CAP_SYS_RESOURCE);
        assert_eq!(verdict(&f, "memlock").verdict, Verdict::Pass);
        f.caps = Caps(ALL);
        f.memlock = (u64::MAX, u64::MAX);
        assert_eq!(verdict(&f, "memlock").verdict, Verdict::Pass);
    }

    #[test]
    fn host_mounts_in_a_container() {
        let mut f = good();
        assert_eq!(verdict(&f, "host mounts").verdict, Verdict::Pass);
        f.in_container = Some("its mount namespace is not pid 1's".into());
        assert_eq!(verdict(&f, "host mounts").verdict, Verdict::Warn);
        f.host_root = "/host".into();
        f.host_paths = vec![
            ("/proc".into(), true),
            ("/sys/fs/cgroup".into(), false),
            ("/var/log/pods".into(), false),
        ];
        let c = verdict(&f, "host mounts");
        assert_eq!(c.verdict, Verdict::Fail);
        assert!(
            c.fix
                .unwrap()
                .contains("/sys/fs/cgroup at /host/sys/fs/cgroup")
        );
        f.host_paths[1].1 = true;
        // No pod logs: nothing to miss off a Kubernetes node, a warning on one.
        assert_eq!(verdict(&f, "host mounts").verdict, Verdict::Pass);
        f.cgroups
            .layout
            .push("kubelet (systemd cgroup driver): kubepods.slice".into());
        let c = verdict(&f, "host mounts");
        assert_eq!(c.verdict, Verdict::Warn);
        assert!(c.detail.contains("/host/var/log/pods"), "{c:?}");
        f.host_paths[2].1 = true;
        assert_eq!(verdict(&f, "host mounts").verdict, Verdict::Pass);
        f.own_pid_namespace = true;
        assert!(verdict(&f, "host mounts").fix.unwrap().contains("hostPID"));
    }

    #[test]
    fn the_port_taken_by_a_running_agent_is_a_warning() {
        let mut f = good();
        f.port = Some(("0.0.0.0:9090".parse().unwrap(), Err(PortError::InUse(None))));
        assert_eq!(verdict(&f, "agent port").verdict, Verdict::Fail);
        f.agent_running = true;
        assert_eq!(verdict(&f, "agent port").verdict, Verdict::Warn);
        f.port = None;
        assert!(judge(&f).iter().all(|c| c.name != "agent port"));
    }

    #[test]
    fn cgroup_versions() {
        let mut f = good();
        f.cgroups = Cgroups {
            path: "/sys/fs/cgroup".into(),
            hybrid_v2: true,
            v1_controllers: vec!["memory".into(), "cpu,cpuacct".into()],
            ..Cgroups::default()
        };
        let c = verdict(&f, "cgroup");
        assert_eq!(c.verdict, Verdict::Pass);
        assert!(c.detail.starts_with("hybrid"), "{c:?}");
        f.cgroups.v1_controllers = vec!["cpu,cpuacct".into()];
        assert_eq!(verdict(&f, "cgroup").verdict, Verdict::Warn);
    }

    #[test]
    fn releases_and_lockdown_parse() {
        assert_eq!(parse_release("6.18.0-rc1+"), Some((6, 18)));
        assert_eq!(parse_release("5.10.0-28-amd64"), Some((5, 10)));
        assert_eq!(parse_release("garbage"), None);
        assert_eq!(
            parse_lockdown("none [integrity] confidentiality\n").as_deref(),
            Some("integrity")
        );
        assert_eq!(parse_lockdown(""), None);
    }

    #[test]
    fn gathering_on_this_machine_names_every_tracepoint_of_the_probes() {
        let f = Facts::gather(&PreflightOptions::default());
        let want: usize = ProbeDomain::ALL.iter().map(|d| d.tracepoints().len()).sum();
        assert_eq!(f.tracepoints.len(), want);
        assert!(
            f.tracepoints
                .iter()
                .any(|(t, _)| t == "tp_btf/sched_switch")
        );
        assert!(f.tracepoints.iter().any(|(t, _)| t == "tp_btf/sys_enter"));
        assert!(parse_release(&f.release).is_some(), "{}", f.release);
    }
}
