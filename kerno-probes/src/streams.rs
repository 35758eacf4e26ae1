//! Live streams, seen from user space: loading the stream object ([`STREAMS_OBJECT`]) with
//! one stream's filters, attaching that stream's programs only, and handing out its ring
//! buffer and counters.
//!
//! Each [`StreamProbe`] is a load of its own: its own maps, its own ring, its own
//! programs, detached when it is dropped. The aggregating programs ([`crate::Probes`]) are
//! another object and are never touched, so a stream runs beside `doctor` or a `kerno
//! start` agent, and with no stream running nothing of this costs anything.

use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{MapData, PerCpuArray, RingBuf},
    programs::{BtfTracePoint, TracePoint},
};
use kerno_probes_common::{
    MAX_SYSCALLS, StreamFilter, StreamOffsets, TpOffsets, stream_flag, stream_stat,
};

use crate::{Domain, ProbeError, kbtf::KernelBtf, loader::fill_offsets, tracefs};

/// The compiled stream programs (`scripts/build-ebpf.sh` builds and commits it beside
/// [`crate::EBPF_OBJECT`]).
pub static STREAMS_OBJECT: &[u8] =
    aya::include_bytes_aligned!("../ebpf/prebuilt/kerno-streams.bpf.o");

/// A stream's ring buffer, as [`StreamProbe::take_ring`] hands it out.
pub type StreamRing = RingBuf<MapData>;

/// A kind of stream, with its programs and ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// `kerno trace syscall`: `tp_btf/sys_enter` and `tp_btf/sys_exit`.
    Syscall,
    /// `kerno watch oom`: `oom:mark_victim`.
    Oom,
    /// `kerno trace sched`: `sched_wakeup`, `sched_wakeup_new`, `sched_switch`.
    Sched,
    /// `kerno trace disk`: `block_rq_insert`, `block_rq_issue`, `block_rq_complete`.
    Disk,
    /// `kerno watch tcp`: `tcp_retransmit_skb`, `tcp_probe` (RTT), `inet_sock_set_state`.
    Tcp,
}

impl StreamKind {
    /// Every stream kind.
    pub const ALL: [StreamKind; 5] = [
        StreamKind::Syscall,
        StreamKind::Oom,
        StreamKind::Sched,
        StreamKind::Disk,
        StreamKind::Tcp,
    ];

    /// The stream's name (`syscall`, `oom`).
    pub fn name(self) -> &'static str {
        match self {
            StreamKind::Syscall => "syscall",
            StreamKind::Oom => "oom",
            StreamKind::Sched => "sched",
            StreamKind::Disk => "disk",
            StreamKind::Tcp => "tcp",
        }
    }

    /// The ring buffer map of this stream.
    fn ring(self) -> &'static str {
        match self {
            StreamKind::Syscall => "SYSCALL_EVENTS",
            StreamKind::Oom => "OOM_EVENTS",
            StreamKind::Sched => "SCHED_EVENTS",
            StreamKind::Disk => "DISK_EVENTS",
            StreamKind::Tcp => "TCP_EVENTS",
        }
    }

    /// Its default ring size, bytes: 256 KiB for the busy streams (libbpf-tools' size),
    /// 64 KiB for OOM kills, which are rare.
    pub fn default_ring_bytes(self) -> u32 {
        match self {
            StreamKind::Syscall | StreamKind::Sched | StreamKind::Disk | StreamKind::Tcp => {
                256 * 1024
            }
            StreamKind::Oom => 64 * 1024,
        }
    }
}

/// What a stream keeps: the in-kernel filters. Zero or empty means "no filter".
#[derive(Clone, Debug, Default)]
pub struct StreamOptions {
    /// Only this process (tgid).
    pub pid: Option<u32>,
    /// Only tasks with this command name (at most 15 bytes, as the kernel keeps it).
    pub comm: Option<String>,
    /// Only tasks in this cgroup (v2 id).
    pub cgroup_id: Option<u64>,
    /// With `cgroup_id`: the cgroup's depth in the v2 hierarchy (a pod's cgroup, matched as
    /// an ancestor of its containers' cgroups); 0: the task's own cgroup must match.
    pub cgroup_level: u32,
    /// Only events at least this long, ns.
    pub min_ns: u64,
    /// Syscall stream: only these syscall numbers (empty: all).
    pub syscalls: Vec<u32>,
    /// Syscall stream: only failed calls.
    pub errors_only: bool,
    /// TCP stream: retransmits (with `min_ns`: only on flows whose smoothed RTT is at
    /// least that).
    pub tcp_retransmits: bool,
    /// TCP stream: connection state changes.
    pub tcp_states: bool,
    /// Disk stream: only this device, `(major, minor)`.
    pub device: Option<(u32, u32)>,
    /// Disk stream: only these ops (`kerno_probes_common::blk_op` values; empty: all).
    pub ops: Vec<u32>,
    /// Ring size in bytes, a power-of-two multiple of the page size (default: the kind's).
    pub ring_bytes: Option<u32>,
}

/// The stream's counters, summed over CPUs. They only grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamCounters {
    /// Matching events dropped because the ring was full.
    pub lost: u64,
    /// Events the in-kernel filters dropped.
    pub filtered: u64,
    /// Events written to the ring.
    pub emitted: u64,
}

/// One loaded and attached stream. Dropping it detaches its programs and frees its maps.
pub struct StreamProbe {
    kind: StreamKind,
    ring: Option<RingBuf<MapData>>,
    stats: PerCpuArray<MapData, u64>,
    ring_bytes: u32,
    _ebpf: Ebpf,
}

impl std::fmt::Debug for StreamProbe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamProbe")
            .field("kind", &self.kind)
            .field("ring_bytes", &self.ring_bytes)
            .finish()
    }
}

fn page_size() -> u32 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as u32 } else { 4096 }
}

/// Checks a ring size: a power-of-two multiple of the page size.
pub fn check_ring_bytes(bytes: u32) -> Result<(), ProbeError> {
    let page = page_size();
    if bytes < page || !bytes.is_power_of_two() || !bytes.is_multiple_of(page) {
        return Err(ProbeError::BadOption(format!(
            "ring size {bytes} bytes: must be a power-of-two multiple of the page size ({page} bytes)"
        )));
    }
    Ok(())
}

impl StreamProbe {
    /// Load the stream object with `opts` as its filters and attach `kind`'s programs.
    pub fn open(kind: StreamKind, opts: &StreamOptions) -> Result<StreamProbe, ProbeError> {
        crate::check_privileges()?;
        let page = page_size();
        let ring_bytes = opts.ring_bytes.unwrap_or(kind.default_ring_bytes());
        check_ring_bytes(ring_bytes)?;

        let mut filter = StreamFilter::NONE;
        filter.self_tgid = std::process::id();
        filter.pid = opts.pid.unwrap_or(0);
        filter.cgroup_id = opts.cgroup_id.unwrap_or(0);
        filter.cgroup_level = opts.cgroup_level;
        filter.min_ns = opts.min_ns;
        // Wake the reader when an eighth of the ring is queued; it also drains on a timer.
        filter.wakeup_bytes = (ring_bytes / 8) as u64;
        if let Some(c) = &opts.comm {
            let b = c.as_bytes();
            if b.is_empty() || b.len() > 15 || b.contains(&0) {
                return Err(ProbeError::BadOption(format!(
                    "command name {c:?}: must be 1 to 15 bytes (the kernel keeps 15)"
                )));
            }
            filter.comm[..b.len()].copy_from_slice(b);
            // The name and its NUL: what follows the NUL in the kernel's buffer is not part
            // of the name.
            let covered = (b.len() + 1).min(16);
            filter.comm_mask[..covered].fill(0xff);
            filter.flags |= stream_flag::COMM;
        }
        if opts.errors_only {
            filter.flags |= stream_flag::ERRORS_ONLY;
        }
        if opts.tcp_retransmits {
            filter.flags |= stream_flag::TCP_RETRANSMITS;
        }
        if opts.tcp_states {
            filter.flags |= stream_flag::TCP_STATES;
        }
        if let Some((major, minor)) = opts.device {
            // The kernel's internal dev_t, as the block tracepoints report it.
            filter.dev = (major << 20) | minor;
        }
        for op in &opts.ops {
            filter.ops |= 1 << op;
        }
        let mut wanted = [0u8; MAX_SYSCALLS];
        if !opts.syscalls.is_empty() {
            filter.flags |= stream_flag::SYSCALL_SET;
            for &nr in &opts.syscalls {
                let slot = wanted.get_mut(nr as usize).ok_or_else(|| {
                    ProbeError::BadOption(format!("syscall number {nr} is out of range"))
                })?;
                *slot = 1;
            }
        }

        let mut offsets = TpOffsets::NONE;
        let mut tp = StreamOffsets::NONE;
        match kind {
            StreamKind::Syscall => {
                // The comm filter loads the current task's name where BTF says it is.
                if opts.comm.is_some() {
                    tp.task_comm =
                        KernelBtf::from_sys_fs()?.member_offset("task_struct", "comm")?;
                }
            }
            StreamKind::Oom => {
                let root = tracefs::ensure_mounted()?;
                fill_offsets(&root, Domain::Oom, &mut offsets)?;
            }
            StreamKind::Sched | StreamKind::Tcp | StreamKind::Disk => {
                let root = tracefs::ensure_mounted()?;
                fill_stream_offsets(&root, kind, &mut tp)?;
            }
        }

        let mut loader = EbpfLoader::new();
        loader
            .override_global("STREAM", &filter, true)
            .override_global("STREAM_OFFSETS", &offsets, true)
            .override_global("STREAM_TP", &tp, true)
            .override_global("STREAM_SYSCALLS", &wanted, true);
        // Every ring in the object is created; the ones this stream does not use get one
        // page.
        for k in StreamKind::ALL {
            loader.map_max_entries(k.ring(), if k == kind { ring_bytes } else { page });
        }
        let mut ebpf = loader
            .load(STREAMS_OBJECT)
            .map_err(|e| ProbeError::Load(Box::new(e)))?;

        let wrap = |name: &'static str| {
            move |e: aya::programs::ProgramError| ProbeError::Program {
                program: name.to_string(),
                source: Box::new(e),
            }
        };
        let missing = |name: &'static str| ProbeError::Missing {
            kind: "program",
            name: name.to_string(),
        };
        match kind {
            StreamKind::Syscall => {
                let btf = Btf::from_sys_fs().map_err(ProbeError::Btf)?;
                for (name, tp) in [
                    ("stream_sys_enter", "sys_enter"),
                    ("stream_sys_exit", "sys_exit"),
                ] {
                    let p: &mut BtfTracePoint = ebpf
                        .program_mut(name)
                        .ok_or_else(|| missing(name))?
                        .try_into()
                        .map_err(wrap(name))?;
                    p.load(tp, &btf).map_err(wrap(name))?;
                    p.attach().map_err(wrap(name))?;
                }
            }
            _ => {
                let tps: &[(&'static str, &str, &str)] = match kind {
                    StreamKind::Oom => &[("stream_mark_victim", "oom", "mark_victim")],
                    StreamKind::Disk => &[
                        ("stream_block_rq_insert", "block", "block_rq_insert"),
                        ("stream_block_rq_issue", "block", "block_rq_issue"),
                        ("stream_block_rq_complete", "block", "block_rq_complete"),
                    ],
                    StreamKind::Sched => &[
                        ("stream_sched_wakeup", "sched", "sched_wakeup"),
                        ("stream_sched_wakeup_new", "sched", "sched_wakeup_new"),
                        ("stream_sched_switch", "sched", "sched_switch"),
                    ],
                    _ => &[
                        ("stream_tcp_probe", "tcp", "tcp_probe"),
                        ("stream_tcp_retransmit_skb", "tcp", "tcp_retransmit_skb"),
                        ("stream_inet_sock_set_state", "sock", "inet_sock_set_state"),
                    ],
                };
                for &(name, cat, tpn) in tps {
                    let p: &mut TracePoint = ebpf
                        .program_mut(name)
                        .ok_or_else(|| missing(name))?
                        .try_into()
                        .map_err(wrap(name))?;
                    p.load().map_err(wrap(name))?;
                    p.attach(cat, tpn).map_err(wrap(name))?;
                }
            }
        }

        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name).ok_or(ProbeError::Missing {
                kind: "map",
                name: name.to_string(),
            })
        };
        let ring = RingBuf::try_from(take(&mut ebpf, kind.ring())?)
            .map_err(ProbeError::map(kind.ring()))?;
        let stats = PerCpuArray::try_from(take(&mut ebpf, "STREAM_STATS")?)
            .map_err(ProbeError::map("STREAM_STATS"))?;
        Ok(StreamProbe {
            kind,
            ring: Some(ring),
            stats,
            ring_bytes,
            _ebpf: ebpf,
        })
    }

    /// The stream's kind.
    pub fn kind(&self) -> StreamKind {
        self.kind
    }

    /// The ring size, bytes.
    pub fn ring_bytes(&self) -> u32 {
        self.ring_bytes
    }

    /// The ring buffer (taken once, to be polled; see `kerno_core::stream`).
    pub fn take_ring(&mut self) -> Option<RingBuf<MapData>> {
        self.ring.take()
    }

    /// The stream's counters, summed over CPUs.
    pub fn counters(&self) -> Result<StreamCounters, ProbeError> {
        let sum = |i: u32| -> Result<u64, ProbeError> {
            let v = self
                .stats
                .get(&i, 0)
                .map_err(ProbeError::map("STREAM_STATS"))?;
            Ok(v.iter().sum())
        };
        Ok(StreamCounters {
            lost: sum(stream_stat::LOST)?,
            filtered: sum(stream_stat::FILTERED)?,
            emitted: sum(stream_stat::EMITTED)?,
        })
    }
}

/// The field offsets the sched and tcp stream programs read.
fn fill_stream_offsets(
    root: &std::path::Path,
    kind: StreamKind,
    o: &mut StreamOffsets,
) -> Result<(), ProbeError> {
    use tracefs::Format;
    match kind {
        StreamKind::Sched => {
            let w = Format::read(root, "sched", "sched_wakeup")?;
            let wn = Format::read(root, "sched", "sched_wakeup_new")?;
            let s = Format::read(root, "sched", "sched_switch")?;
            // One program reads `pid` for both wakeups.
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
        StreamKind::Tcp => {
            let r = Format::read(root, "tcp", "tcp_retransmit_skb")?;
            let p = Format::read(root, "tcp", "tcp_probe")?;
            let s = Format::read(root, "sock", "inet_sock_set_state")?;
            o.rtx_skaddr = r.require("skaddr")?;
            o.rtx_state = r.require("state")?;
            o.rtx_sport = r.require("sport")?;
            o.rtx_dport = r.require("dport")?;
            o.rtx_family = r.require("family")?;
            o.rtx_saddr = r.require("saddr")?;
            o.rtx_daddr = r.require("daddr")?;
            o.rtx_saddr_v6 = r.require("saddr_v6")?;
            o.rtx_daddr_v6 = r.require("daddr_v6")?;
            o.probe_srtt = p.require("srtt")?;
            o.probe_skaddr = p.require("skaddr")?;
            o.st_skaddr = s.require("skaddr")?;
            o.st_old = s.require("oldstate")?;
            o.st_new = s.require("newstate")?;
            o.st_protocol = s.require("protocol")?;
            o.st_family = s.require("family")?;
            o.st_sport = s.require("sport")?;
            o.st_dport = s.require("dport")?;
            o.st_saddr = s.require("saddr")?;
            o.st_daddr = s.require("daddr")?;
            o.st_saddr_v6 = s.require("saddr_v6")?;
            o.st_daddr_v6 = s.require("daddr_v6")?;
        }
        StreamKind::Disk => {
            let i = Format::read(root, "block", "block_rq_insert")?;
            let s = Format::read(root, "block", "block_rq_issue")?;
            let c = Format::read(root, "block", "block_rq_complete")?;
            o.ins_dev = i.require("dev")?;
            o.ins_sector = i.require("sector")?;
            o.ins_rwbs = i.require("rwbs")?;
            o.iss_dev = s.require("dev")?;
            o.iss_sector = s.require("sector")?;
            o.iss_bytes = s.require("bytes")?;
            o.iss_rwbs = s.require("rwbs")?;
            o.cmp_dev = c.require("dev")?;
            o.cmp_sector = c.require("sector")?;
            o.cmp_error = c.require("error")?;
            o.cmp_rwbs = c.require("rwbs")?;
        }
        StreamKind::Syscall | StreamKind::Oom => {}
    }
    Ok(())
}

/// A record of the ring read as `T` (`None` when it is too short).
pub fn decode<T: aya::Pod>(bytes: &[u8]) -> Option<T> {
    if bytes.len() < std::mem::size_of::<T>() {
        return None;
    }
    // SAFETY: at least `size_of::<T>()` bytes are readable, the read is unaligned, and
    // `T: Pod` makes any bytes a valid `T`.
    Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr() as *const T) })
}
