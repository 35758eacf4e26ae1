//! Loading the object once, attaching per domain, degrading per domain.

use std::{
    fmt,
    path::Path,
    sync::{Arc, Mutex},
};

use aya::{
    Btf, Ebpf, EbpfLoader,
    programs::{BtfTracePoint, TracePoint},
};
use kerno_probes_common::{Config, TpOffsets};

use crate::{
    EBPF_OBJECT, ProbeError,
    readers::{DiskReader, LostCounters, OomReader, SchedReader, SyscallReader, TcpReader},
    syscalls,
    tracefs::{self, Format},
};

/// A group of programs that feed one kind of signal. Each attaches, or degrades, as a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    /// `raw_syscalls` sys_enter/sys_exit (tp_btf): counts, errors, latency, descriptors.
    Syscalls,
    /// sched_wakeup, sched_wakeup_new, sched_switch: run-queue delay.
    Sched,
    /// block_rq_issue / block_rq_complete: block I/O latency and bytes.
    Disk,
    /// tcp_retransmit_skb, tcp_probe, inet_sock_set_state.
    Tcp,
    /// oom:mark_victim.
    Oom,
}

impl Domain {
    /// Every domain.
    pub const ALL: [Domain; 5] = [
        Domain::Syscalls,
        Domain::Sched,
        Domain::Disk,
        Domain::Tcp,
        Domain::Oom,
    ];

    /// The domain's name, as used in reports and options (`syscalls`, `sched`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Domain::Syscalls => "syscalls",
            Domain::Sched => "sched",
            Domain::Disk => "disk",
            Domain::Tcp => "tcp",
            Domain::Oom => "oom",
        }
    }

    /// Parse a domain name.
    pub fn from_name(s: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.name() == s)
    }

    /// The programs of this domain, with their attach points.
    fn programs(self) -> &'static [Attach] {
        match self {
            Domain::Syscalls => &[
                Attach::Btf("sys_enter", "sys_enter"),
                Attach::Btf("sys_exit", "sys_exit"),
            ],
            Domain::Sched => &[
                Attach::Tp("sched_wakeup", "sched", "sched_wakeup"),
                Attach::Tp("sched_wakeup_new", "sched", "sched_wakeup_new"),
                Attach::Tp("sched_switch", "sched", "sched_switch"),
            ],
            Domain::Disk => &[
                Attach::Tp("block_rq_issue", "block", "block_rq_issue"),
                Attach::Tp("block_rq_complete", "block", "block_rq_complete"),
            ],
            Domain::Tcp => &[
                Attach::Tp("tcp_retransmit_skb", "tcp", "tcp_retransmit_skb"),
                Attach::Tp("tcp_probe", "tcp", "tcp_probe"),
                Attach::Tp("inet_sock_set_state", "sock", "inet_sock_set_state"),
            ],
            Domain::Oom => &[Attach::Tp("mark_victim", "oom", "mark_victim")],
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Copy)]
enum Attach {
    /// tp_btf program: (program, tracepoint).
    Btf(&'static str, &'static str),
    /// Classic tracepoint: (program, category, name).
    Tp(&'static str, &'static str, &'static str),
}

impl Attach {
    fn program(self) -> &'static str {
        match self {
            Attach::Btf(p, _) | Attach::Tp(p, _, _) => p,
        }
    }
}

/// What to load, and the in-kernel thresholds.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Domains to attach.
    pub domains: Vec<Domain>,
    /// Successful syscalls at least this slow (ns) are recorded per process.
    pub slow_syscall_ns: u64,
    /// Run-queue delays at least this long (ns) are recorded per thread.
    pub slow_runq_ns: u64,
    /// Smoothed RTTs at least this long (ns) are recorded per flow.
    pub slow_rtt_ns: u64,
    /// Connects at least this slow (ns) are recorded per process and peer.
    pub slow_connect_ns: u64,
    /// Domains to fail on purpose: their programs are attached to a tracepoint that does
    /// not exist, so the kernel refuses them. For testing graceful degradation.
    pub fail_on_purpose: Vec<Domain>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            domains: Domain::ALL.to_vec(),
            slow_syscall_ns: 1_000_000,
            slow_runq_ns: 1_000_000,
            slow_rtt_ns: 5_000_000,
            slow_connect_ns: 50_000_000,
            fail_on_purpose: Vec::new(),
        }
    }
}

/// Whether a domain is attached and, if not, why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeStatus {
    /// The domain.
    pub domain: Domain,
    /// All its programs are attached.
    pub attached: bool,
    /// Its programs.
    pub programs: Vec<String>,
    /// Why it is not attached.
    pub error: Option<String>,
}

pub(crate) type Shared = Arc<Mutex<Ebpf>>;

/// The loaded probes: a status per requested domain and a reader per attached domain.
///
/// Programs stay attached while this value or any reader taken from it is alive; dropping
/// the last one detaches everything.
pub struct Probes {
    status: Vec<ProbeStatus>,
    syscalls: Option<SyscallReader>,
    sched: Option<SchedReader>,
    disk: Option<DiskReader>,
    tcp: Option<TcpReader>,
    oom: Option<OomReader>,
    lost: Option<LostCounters>,
    _ebpf: Shared,
}

impl fmt::Debug for Probes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Probes")
            .field("status", &self.status)
            .finish()
    }
}

/// Check that this process may load and attach tracing programs: `CAP_BPF` and
/// `CAP_PERFMON`, or `CAP_SYS_ADMIN`.
pub fn check_privileges() -> Result<(), ProbeError> {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_PERFMON: u32 = 38;
    const CAP_BPF: u32 = 39;
    let status = std::fs::read_to_string("/proc/self/status").map_err(|source| ProbeError::Io {
        path: "/proc/self/status".into(),
        source,
    })?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let has = |c: u32| eff & (1u64 << c) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        return Ok(());
    }
    let mut missing = Vec::new();
    if !has(CAP_BPF) {
        missing.push("CAP_BPF");
    }
    if !has(CAP_PERFMON) {
        missing.push("CAP_PERFMON");
    }
    Err(ProbeError::NotPermitted {
        missing: missing.join(" and "),
    })
}

struct Prepared {
    offsets: TpOffsets,
    /// Domains whose tracepoint formats could not be read, with the reason.
    unavailable: Vec<(Domain, String)>,
}

fn prepare_offsets(domains: &[Domain]) -> Prepared {
    let mut offsets = TpOffsets::NONE;
    let mut unavailable = Vec::new();
    let classic: Vec<Domain> = domains
        .iter()
        .copied()
        .filter(|d| *d != Domain::Syscalls)
        .collect();
    if classic.is_empty() {
        return Prepared {
            offsets,
            unavailable,
        };
    }
    let root = match tracefs::ensure_mounted() {
        Ok(r) => r,
        Err(e) => {
            for d in classic {
                unavailable.push((d, e.to_string()));
            }
            return Prepared {
                offsets,
                unavailable,
            };
        }
    };
    for d in classic {
        if let Err(e) = fill_offsets(&root, d, &mut offsets) {
            unavailable.push((d, e.to_string()));
        }
    }
    Prepared {
        offsets,
        unavailable,
    }
}

pub(crate) fn fill_offsets(root: &Path, d: Domain, o: &mut TpOffsets) -> Result<(), ProbeError> {
    match d {
        Domain::Syscalls => {}
        Domain::Sched => {
            let w = Format::read(root, "sched", "sched_wakeup")?;
            let wn = Format::read(root, "sched", "sched_wakeup_new")?;
            let s = Format::read(root, "sched", "sched_switch")?;
            o.wakeup_pid = w.require("pid")?;
            if wn.require("pid")? != o.wakeup_pid {
                return Err(ProbeError::MissingField {
                    tracepoint: "sched/sched_wakeup_new".into(),
                    field: "pid (at the same offset as sched_wakeup's)".into(),
                });
            }
            o.switch_prev_pid = s.require("prev_pid")?;
            o.switch_prev_state = s.require("prev_state")?;
            o.switch_next_pid = s.require("next_pid")?;
            o.switch_next_comm = s.require("next_comm")?;
        }
        Domain::Disk => {
            let i = Format::read(root, "block", "block_rq_issue")?;
            let c = Format::read(root, "block", "block_rq_complete")?;
            o.issue_dev = i.require("dev")?;
            o.issue_sector = i.require("sector")?;
            o.issue_bytes = i.require("bytes")?;
            o.issue_rwbs = i.require("rwbs")?;
            o.complete_dev = c.require("dev")?;
            o.complete_sector = c.require("sector")?;
            o.complete_error = c.require("error")?;
            o.complete_rwbs = c.require("rwbs")?;
        }
        Domain::Tcp => {
            let r = Format::read(root, "tcp", "tcp_retransmit_skb")?;
            let p = Format::read(root, "tcp", "tcp_probe")?;
            let s = Format::read(root, "sock", "inet_sock_set_state")?;
            o.rtx_sport = r.require("sport")?;
            o.rtx_dport = r.require("dport")?;
            o.rtx_family = r.require("family")?;
            o.rtx_saddr = r.require("saddr")?;
            o.rtx_daddr = r.require("daddr")?;
            o.rtx_saddr_v6 = r.require("saddr_v6")?;
            o.rtx_daddr_v6 = r.require("daddr_v6")?;
            o.probe_srtt = p.require("srtt")?;
            o.probe_family = p.require("family")?;
            o.probe_sport = p.require("sport")?;
            o.probe_dport = p.require("dport")?;
            o.probe_saddr = p.require("saddr")?;
            o.probe_daddr = p.require("daddr")?;
            o.state_skaddr = s.require("skaddr")?;
            o.state_old = s.require("oldstate")?;
            o.state_new = s.require("newstate")?;
            o.state_protocol = s.require("protocol")?;
            o.state_family = s.require("family")?;
            o.state_dport = s.require("dport")?;
            o.state_daddr = s.require("daddr")?;
            o.state_daddr_v6 = s.require("daddr_v6")?;
        }
        Domain::Oom => {
            let m = Format::read(root, "oom", "mark_victim")?;
            o.oom_pid = m.require("pid")?;
            let opt = |f: &str| m.offset(f).unwrap_or(u32::MAX);
            o.oom_comm = opt("comm");
            o.oom_total_vm = opt("total_vm");
            o.oom_anon_rss = opt("anon_rss");
            o.oom_file_rss = opt("file_rss");
            o.oom_shmem_rss = opt("shmem_rss");
        }
    }
    Ok(())
}

fn attach(ebpf: &mut Ebpf, btf: Option<&Btf>, a: Attach, fail: bool) -> Result<(), ProbeError> {
    let name = a.program();
    let wrap = |e: aya::programs::ProgramError| ProbeError::Program {
        program: name.to_string(),
        source: Box::new(e),
    };
    let prog = ebpf.program_mut(name).ok_or_else(|| ProbeError::Missing {
        kind: "program",
        name: name.to_string(),
    })?;
    match a {
        Attach::Btf(_, tp) => {
            let btf = btf.ok_or(ProbeError::Missing {
                kind: "kernel BTF for",
                name: name.to_string(),
            })?;
            let p: &mut BtfTracePoint = prog.try_into().map_err(wrap)?;
            let tp = if fail { "kerno_fault_injected" } else { tp };
            p.load(tp, btf).map_err(wrap)?;
            p.attach().map_err(wrap)?;
        }
        Attach::Tp(_, cat, tp) => {
            let p: &mut TracePoint = prog.try_into().map_err(wrap)?;
            p.load().map_err(wrap)?;
            let (cat, tp) = if fail {
                ("kerno", "fault_injected")
            } else {
                (cat, tp)
            };
            p.attach(cat, tp).map_err(wrap)?;
        }
    }
    Ok(())
}

/// Unload a program (which detaches its links); a no-op for one that never loaded.
fn detach(ebpf: &mut Ebpf, a: Attach) {
    let Some(prog) = ebpf.program_mut(a.program()) else {
        return;
    };
    match a {
        Attach::Btf(..) => {
            if let Ok(p) = <&mut BtfTracePoint>::try_from(prog) {
                let _ = p.unload();
            }
        }
        Attach::Tp(..) => {
            if let Ok(p) = <&mut TracePoint>::try_from(prog) {
                let _ = p.unload();
            }
        }
    }
}

impl Probes {
    /// Load the object and attach the requested domains.
    ///
    /// Fails as a whole only when the process lacks privileges or the object cannot be
    /// loaded at all; a domain whose programs cannot be attached is reported in
    /// [`Probes::status`] and has no reader.
    pub fn load(opts: &LoadOptions) -> Result<Probes, ProbeError> {
        check_privileges()?;
        // Without CAP_SYS_RESOURCE this fails; kernels >= 5.11 account BPF memory to the
        // memory cgroup instead of RLIMIT_MEMLOCK, so the failure is harmless there.
        let rlim = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        // SAFETY: a valid pointer to a stack value.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &rlim) };

        let mut domains = opts.domains.clone();
        domains.sort();
        domains.dedup();
        let prepared = prepare_offsets(&domains);
        let config = Config {
            self_tgid: std::process::id(),
            pad: 0,
            slow_syscall_ns: opts.slow_syscall_ns,
            slow_runq_ns: opts.slow_runq_ns,
            slow_rtt_ns: opts.slow_rtt_ns,
            slow_connect_ns: opts.slow_connect_ns,
        };
        let classes = syscalls::class_table();
        let mut ebpf = EbpfLoader::new()
            .override_global("CONFIG", &config, true)
            .override_global("OFFSETS", &prepared.offsets, true)
            .override_global("SYSCALL_CLASS", &classes, true)
            .load(EBPF_OBJECT)
            .map_err(|e| ProbeError::Load(Box::new(e)))?;

        let btf = if domains.contains(&Domain::Syscalls) {
            Some(Btf::from_sys_fs().map_err(ProbeError::Btf))
        } else {
            None
        };

        let mut status = Vec::new();
        for d in &domains {
            let programs: Vec<String> = d
                .programs()
                .iter()
                .map(|a| a.program().to_string())
                .collect();
            let mut error = prepared
                .unavailable
                .iter()
                .find(|(u, _)| u == d)
                .map(|(_, e)| e.clone());
            if error.is_none() {
                let fail = opts.fail_on_purpose.contains(d);
                for a in d.programs() {
                    let btf_ref = match &btf {
                        Some(Ok(b)) => Some(b),
                        Some(Err(e)) if matches!(a, Attach::Btf(..)) => {
                            error = Some(e.to_string());
                            break;
                        }
                        _ => None,
                    };
                    if let Err(e) = attach(&mut ebpf, btf_ref, *a, fail) {
                        error = Some(e.to_string());
                        break;
                    }
                }
            }
            if error.is_some() {
                // Detach whatever part of the domain did attach: a half-attached domain
                // would cost without being read.
                for a in d.programs() {
                    detach(&mut ebpf, *a);
                }
            }
            status.push(ProbeStatus {
                domain: *d,
                attached: error.is_none(),
                programs,
                error,
            });
        }

        let attached = |d: Domain| status.iter().any(|s| s.domain == d && s.attached);
        let syscalls = if attached(Domain::Syscalls) {
            Some(SyscallReader::take(&mut ebpf)?)
        } else {
            None
        };
        let sched = if attached(Domain::Sched) {
            Some(SchedReader::take(&mut ebpf)?)
        } else {
            None
        };
        let disk = if attached(Domain::Disk) {
            Some(DiskReader::take(&mut ebpf)?)
        } else {
            None
        };
        let tcp = if attached(Domain::Tcp) {
            Some(TcpReader::take(&mut ebpf)?)
        } else {
            None
        };
        let oom = if attached(Domain::Oom) {
            Some(OomReader::take(&mut ebpf)?)
        } else {
            None
        };
        let lost = Some(LostCounters::take(&mut ebpf)?);
        let shared: Shared = Arc::new(Mutex::new(ebpf));
        let keep = |r: &mut dyn crate::readers::KeepAlive| r.keep(shared.clone());
        let mut p = Probes {
            status,
            syscalls,
            sched,
            disk,
            tcp,
            oom,
            lost,
            _ebpf: shared.clone(),
        };
        if let Some(r) = p.syscalls.as_mut() {
            keep(r);
        }
        if let Some(r) = p.sched.as_mut() {
            keep(r);
        }
        if let Some(r) = p.disk.as_mut() {
            keep(r);
        }
        if let Some(r) = p.tcp.as_mut() {
            keep(r);
        }
        if let Some(r) = p.oom.as_mut() {
            keep(r);
        }
        if let Some(r) = p.lost.as_mut() {
            keep(r);
        }
        Ok(p)
    }

    /// The status of each requested domain.
    pub fn status(&self) -> &[ProbeStatus] {
        &self.status
    }

    /// The syscall reader, if that domain is attached (taken once).
    pub fn take_syscalls(&mut self) -> Option<SyscallReader> {
        self.syscalls.take()
    }
    /// The scheduler reader, if attached (taken once).
    pub fn take_sched(&mut self) -> Option<SchedReader> {
        self.sched.take()
    }
    /// The block I/O reader, if attached (taken once).
    pub fn take_disk(&mut self) -> Option<DiskReader> {
        self.disk.take()
    }
    /// The TCP reader, if attached (taken once).
    pub fn take_tcp(&mut self) -> Option<TcpReader> {
        self.tcp.take()
    }
    /// The OOM reader, if attached (taken once).
    pub fn take_oom(&mut self) -> Option<OomReader> {
        self.oom.take()
    }
    /// The lost-sample counters (taken once).
    pub fn take_lost(&mut self) -> Option<LostCounters> {
        self.lost.take()
    }
}
