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
use aya_obj::btf::BtfKind;
use kerno_probes_common::{Config, TpOffsets};

use crate::{
    EBPF_OBJECT, ProbeError,
    kbtf::KernelBtf,
    readers::{
        DiskReader, LostCounters, OomReader, SchedReader, SyscallReader, TcpReader, take_lost_map,
    },
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

    /// The kernel tracepoints this domain's programs attach to, from the loader's own table.
    pub fn tracepoints(self) -> Vec<Tracepoint> {
        self.programs()
            .iter()
            .map(|a| match *a {
                Attach::Btf(program, name) => Tracepoint {
                    domain: self,
                    program,
                    category: None,
                    name,
                },
                Attach::Tp(program, category, name) => Tracepoint {
                    domain: self,
                    program,
                    category: Some(category),
                    name,
                },
            })
            .collect()
    }

    /// Whether this domain's programs load kernel struct members through the pointers
    /// their BTF-typed tracepoints pass (offsets from the kernel's BTF, `fill_btf_offsets`).
    fn btf_members(self) -> bool {
        matches!(self, Domain::Sched | Domain::Disk)
    }

    /// The programs of this domain, with their attach points.
    fn programs(self) -> &'static [Attach] {
        match self {
            Domain::Syscalls => &[
                Attach::Btf("sys_enter", "sys_enter"),
                Attach::Btf("sys_exit", "sys_exit"),
            ],
            Domain::Sched => &[
                Attach::Btf("sched_wakeup", "sched_wakeup"),
                Attach::Btf("sched_wakeup_new", "sched_wakeup_new"),
                Attach::Btf("sched_switch", "sched_switch"),
            ],
            Domain::Disk => &[
                Attach::Btf("block_rq_issue", "block_rq_issue"),
                Attach::Btf("block_rq_complete", "block_rq_complete"),
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

/// A kernel tracepoint a probe program attaches to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tracepoint {
    /// The domain whose program it is.
    pub domain: Domain,
    /// The program's name in the object.
    pub program: &'static str,
    /// A classic tracepoint's category (`tcp`); `None` for a BTF-typed one (`tp_btf`).
    pub category: Option<&'static str>,
    /// The tracepoint's name.
    pub name: &'static str,
}

impl fmt::Display for Tracepoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.category {
            Some(c) => write!(f, "{c}:{}", self.name),
            None => write!(f, "tp_btf/{}", self.name),
        }
    }
}

/// Check, loading and attaching nothing, that this kernel offers the tracepoints of
/// `domains` as their programs need them: a classic tracepoint's `format` file under the
/// tracefs root `tracefs` (`None`: not mounted), with every field the loader reads (the
/// loader's own check), a BTF-typed one its `btf_trace_<name>` type in the kernel's BTF and,
/// for the scheduler and block domains, every struct member their programs load.
pub fn check_tracepoints(
    domains: &[Domain],
    tracefs: Option<&Path>,
) -> Vec<(Tracepoint, Result<(), String>)> {
    let mut btf: Option<Result<Btf, String>> = None;
    let mut kbtf: Option<Result<KernelBtf, ProbeError>> = None;
    let mut out: Vec<(Tracepoint, Result<(), String>)> = Vec::new();
    for &domain in domains {
        let first = out.len();
        for tp in domain.tracepoints() {
            let r = match (tp.category, tracefs) {
                (None, _) => {
                    let btf = btf.get_or_insert_with(|| {
                        Btf::from_sys_fs().map_err(|e| ProbeError::Btf(e).to_string())
                    });
                    match btf {
                        Ok(b) => b
                            .id_by_type_name_kind(
                                &format!("btf_trace_{}", tp.name),
                                BtfKind::Typedef,
                            )
                            .map(|_| ())
                            .map_err(|_| {
                                format!("the kernel's BTF has no type btf_trace_{}", tp.name)
                            }),
                        Err(e) => Err(e.clone()),
                    }
                }
                (Some(c), Some(root)) => Format::read(root, c, tp.name)
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                (Some(_), None) => Err("tracefs is not mounted".to_string()),
            };
            out.push((tp, r));
        }
        // Every format and type is there: the fields and members the programs read, as the
        // loader checks them.
        let mine = &mut out[first..];
        let mut scratch = TpOffsets::NONE;
        if domain.btf_members()
            && mine.iter().all(|(_, r)| r.is_ok())
            && let Err(e) = kbtf
                .get_or_insert_with(KernelBtf::from_sys_fs)
                .as_ref()
                .map_err(|e| e.to_string())
                .and_then(|k| fill_btf_offsets(k, domain, &mut scratch).map_err(|e| e.to_string()))
        {
            mine[0].1 = Err(e);
        }
        if let Some(root) = tracefs
            && mine.iter().any(|(t, _)| t.category.is_some())
            && mine.iter().all(|(_, r)| r.is_ok())
            && let Err(e) = fill_offsets(root, domain, &mut scratch)
        {
            let named = match &e {
                ProbeError::MissingField { tracepoint, .. } => mine.iter().position(|(t, _)| {
                    t.category.map(|c| format!("{c}/{}", t.name)).as_deref()
                        == Some(tracepoint.split(' ').next().unwrap_or(""))
                }),
                _ => None,
            };
            let i = named.unwrap_or(0);
            mine[i].1 = Err(e.to_string());
        }
    }
    out
}

/// Whether this process may make the `bpf()` system call at all: creates a one-entry array
/// map and closes it at once. A seccomp profile or LSM that refuses `bpf()` fails here while
/// the capabilities look right.
pub fn bpf_syscall_allowed() -> Result<(), std::io::Error> {
    // union bpf_attr for BPF_MAP_CREATE: map_type, key_size, value_size, max_entries, then
    // fields left zero.
    let mut attr = [0u32; 32];
    attr[0] = 2; // BPF_MAP_TYPE_ARRAY
    attr[1] = 4;
    attr[2] = 4;
    attr[3] = 1;
    // SAFETY: BPF_MAP_CREATE (0) reads `size` bytes of a valid, initialised buffer.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            0,
            attr.as_mut_ptr(),
            std::mem::size_of_val(&attr) as u32,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
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
    let with_members: Vec<Domain> = domains
        .iter()
        .copied()
        .filter(|d| d.btf_members())
        .collect();
    if !with_members.is_empty() {
        match KernelBtf::from_sys_fs() {
            Ok(k) => {
                for d in with_members {
                    if let Err(e) = fill_btf_offsets(&k, d, &mut offsets) {
                        unavailable.push((d, e.to_string()));
                    }
                }
            }
            Err(e) => {
                for d in with_members {
                    unavailable.push((d, e.to_string()));
                }
            }
        }
    }
    let classic: Vec<Domain> = domains
        .iter()
        .copied()
        .filter(|d| d.programs().iter().any(|a| matches!(a, Attach::Tp(..))))
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

/// The offsets of the kernel struct members the BTF-typed programs of `d` load through the
/// pointers their tracepoints pass, from the kernel's BTF.
fn fill_btf_offsets(k: &KernelBtf, d: Domain, o: &mut TpOffsets) -> Result<(), ProbeError> {
    match d {
        Domain::Sched => {
            o.task_pid = k.member_offset("task_struct", "pid")?;
            o.task_comm = k.member_offset("task_struct", "comm")?;
        }
        Domain::Disk => {
            o.rq_cmd_flags = k.member_offset("request", "cmd_flags")?;
            o.rq_data_len = k.member_offset("request", "__data_len")?;
            o.rq_q = k.member_offset("request", "q")?;
            o.q_disk = k.member_offset("request_queue", "disk")?;
            o.disk_major = k.member_offset("gendisk", "major")?;
            o.disk_first_minor = k.member_offset("gendisk", "first_minor")?;
        }
        Domain::Syscalls | Domain::Tcp | Domain::Oom => {}
    }
    Ok(())
}

pub(crate) fn fill_offsets(root: &Path, d: Domain, o: &mut TpOffsets) -> Result<(), ProbeError> {
    match d {
        // BTF-typed: their offsets come from `fill_btf_offsets`.
        Domain::Syscalls | Domain::Sched | Domain::Disk => {}
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

        let btf = if domains
            .iter()
            .any(|d| d.programs().iter().any(|a| matches!(a, Attach::Btf(..))))
        {
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
        let lost_map = take_lost_map(&mut ebpf)?;
        // A descriptor of each attached program, for its recursion misses.
        let mut programs = Vec::new();
        for st in status.iter().filter(|s| s.attached) {
            for name in &st.programs {
                let fd = ebpf
                    .program(name)
                    .ok_or_else(|| ProbeError::Missing {
                        kind: "program",
                        name: name.clone(),
                    })?
                    .fd()
                    .and_then(|fd| fd.try_clone().map_err(aya::programs::ProgramError::from))
                    .map_err(|e| ProbeError::Program {
                        program: name.clone(),
                        source: Box::new(e),
                    })?;
                programs.push((st.domain, fd));
            }
        }
        let syscalls = if attached(Domain::Syscalls) {
            Some(SyscallReader::take(&mut ebpf, lost_map.clone())?)
        } else {
            None
        };
        let sched = if attached(Domain::Sched) {
            Some(SchedReader::take(&mut ebpf, lost_map.clone())?)
        } else {
            None
        };
        let disk = if attached(Domain::Disk) {
            Some(DiskReader::take(&mut ebpf)?)
        } else {
            None
        };
        let tcp = if attached(Domain::Tcp) {
            Some(TcpReader::take(&mut ebpf, lost_map.clone())?)
        } else {
            None
        };
        let oom = if attached(Domain::Oom) {
            Some(OomReader::take(&mut ebpf)?)
        } else {
            None
        };
        let lost = Some(LostCounters::new(lost_map, programs));
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

#[cfg(test)]
mod check_tests {
    use super::*;

    fn format(fields: &[(&str, u32)]) -> String {
        let mut s = String::from("name: x\nformat:\n");
        for (f, o) in fields {
            s.push_str(&format!(
                "\tfield:int {f};\toffset:{o};\tsize:4;\tsigned:1;\n"
            ));
        }
        s
    }

    /// A tracefs root holding oom/mark_victim's format with `fields`, or none.
    fn root(fields: Option<&[(&str, u32)]>) -> std::path::PathBuf {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let r = std::env::temp_dir().join(format!(
            "kerno-tp-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let d = r.join("events/oom/mark_victim");
        std::fs::create_dir_all(&d).unwrap();
        if let Some(f) = fields {
            std::fs::write(d.join("format"), format(f)).unwrap();
        }
        r
    }

    #[test]
    fn the_loaders_fields_are_checked_per_tracepoint() {
        let good = root(Some(&[("pid", 8), ("comm", 12)]));
        let r = check_tracepoints(&[Domain::Oom], Some(&good));
        assert_eq!(r.len(), 1);
        assert!(r.iter().all(|(_, r)| r.is_ok()), "{r:?}");
        std::fs::remove_dir_all(&good).unwrap();

        let no_pid = root(Some(&[("comm", 12)]));
        let r = check_tracepoints(&[Domain::Oom], Some(&no_pid));
        assert_eq!(r[0].0.to_string(), "oom:mark_victim");
        assert!(r[0].1.as_ref().unwrap_err().contains("pid"), "{r:?}");
        std::fs::remove_dir_all(&no_pid).unwrap();

        let missing = root(None);
        let r = check_tracepoints(&[Domain::Oom], Some(&missing));
        assert!(r[0].1.is_err(), "{r:?}");
        std::fs::remove_dir_all(&missing).unwrap();

        let r = check_tracepoints(&[Domain::Oom], None);
        assert_eq!(r[0].1, Err("tracefs is not mounted".to_string()));
    }
}
