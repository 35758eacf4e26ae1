//! Typed, read-only views of the probes' maps. Values are summed over CPUs; nothing is
//! reset, so windows are differences of two reads.

use std::{
    os::fd::{AsFd, AsRawFd},
    sync::Arc,
};

use aya::{
    Ebpf,
    maps::{Array, HashMap, Map, MapData, PerCpuArray, PerCpuHashMap},
    programs::ProgramFd,
};
use kerno_probes_common::{
    BlkStat, BlkStatKey, ConnKey, FdVal, FlowKey, FlowVal, Hist, MAX_SYSCALLS, OOM_RING, OomEntry,
    ProcSyscallKey, ProcSyscallVal, SchedDelayVal, SlowConn, SlowRtt, SyscallCounts, hist, lost,
    tcp_ctr,
};

use crate::{Domain, ProbeError, loader::Shared};

/// The `LOST` counters, shared by [`LostCounters`] and the readers that tell evictions from
/// its `INSERTED_*` counters.
pub(crate) type LostMap = Arc<PerCpuArray<MapData, u64>>;

pub(crate) fn take_lost_map(ebpf: &mut Ebpf) -> Result<LostMap, ProbeError> {
    Ok(Arc::new(
        PerCpuArray::try_from(take(ebpf, "LOST")?).map_err(ProbeError::map("LOST"))?,
    ))
}

/// One `LOST` counter, summed over CPUs.
fn lost_get(map: &LostMap, which: u32) -> Result<u64, ProbeError> {
    Ok(map
        .get(&which, 0)
        .map_err(ProbeError::map("LOST"))?
        .iter()
        .sum())
}

pub(crate) trait KeepAlive {
    fn keep(&mut self, ebpf: Shared);
}

macro_rules! keepalive {
    ($($t:ty),*) => {$(
        impl KeepAlive for $t {
            fn keep(&mut self, ebpf: Shared) {
                self._ebpf = Some(ebpf);
            }
        }
    )*};
}
keepalive!(
    SyscallReader,
    SchedReader,
    DiskReader,
    TcpReader,
    OomReader,
    LostCounters
);

fn take(ebpf: &mut Ebpf, name: &'static str) -> Result<Map, ProbeError> {
    ebpf.take_map(name).ok_or(ProbeError::Missing {
        kind: "map",
        name: name.to_string(),
    })
}

fn sum_hist(values: &[Hist]) -> Vec<u64> {
    let mut out = vec![0u64; hist::BUCKETS];
    for v in values {
        for (o, b) in out.iter_mut().zip(v.buckets.iter()) {
            *o += b;
        }
    }
    out
}

fn read_hist(
    map: &PerCpuArray<MapData, Hist>,
    idx: u32,
    name: &'static str,
) -> Result<Vec<u64>, ProbeError> {
    let v = map.get(&idx, 0).map_err(ProbeError::map(name))?;
    Ok(sum_hist(&v))
}

/// Per-syscall counts, errors and latency; errors and slow calls per process; descriptor
/// activity per process.
pub struct SyscallReader {
    counts: PerCpuArray<MapData, SyscallCounts>,
    hist: Array<MapData, Hist>,
    procs: HashMap<MapData, ProcSyscallKey, ProcSyscallVal>,
    fds: HashMap<MapData, u32, FdVal>,
    lost: LostMap,
    _ebpf: Option<Shared>,
}

/// Per-syscall totals (index: syscall number; the last slot collects larger numbers).
#[derive(Clone, Debug)]
pub struct SyscallTotals {
    /// Completed calls.
    pub count: Vec<u64>,
    /// Failed calls.
    pub errors: Vec<u64>,
}

impl SyscallReader {
    pub(crate) fn take(ebpf: &mut Ebpf, lost: LostMap) -> Result<Self, ProbeError> {
        Ok(SyscallReader {
            counts: PerCpuArray::try_from(take(ebpf, "SYSCALL_COUNTS")?)
                .map_err(ProbeError::map("SYSCALL_COUNTS"))?,
            hist: Array::try_from(take(ebpf, "SYSCALL_HIST")?)
                .map_err(ProbeError::map("SYSCALL_HIST"))?,
            procs: HashMap::try_from(take(ebpf, "PROC_SYSCALLS")?)
                .map_err(ProbeError::map("PROC_SYSCALLS"))?,
            fds: HashMap::try_from(take(ebpf, "FD_PROCS")?).map_err(ProbeError::map("FD_PROCS"))?,
            lost,
            _ebpf: None,
        })
    }

    /// Calls and errors per syscall number, summed over CPUs.
    pub fn totals(&self) -> Result<SyscallTotals, ProbeError> {
        let v = self
            .counts
            .get(&0, 0)
            .map_err(ProbeError::map("SYSCALL_COUNTS"))?;
        let mut t = SyscallTotals {
            count: vec![0; MAX_SYSCALLS],
            errors: vec![0; MAX_SYSCALLS],
        };
        for cpu in v.iter() {
            for i in 0..MAX_SYSCALLS {
                t.count[i] += cpu.count[i];
                t.errors[i] += cpu.errors[i];
            }
        }
        Ok(t)
    }

    /// The latency histogram (ns) of one syscall number, summed over CPUs.
    pub fn histogram(&self, nr: u32) -> Result<Vec<u64>, ProbeError> {
        let h = self
            .hist
            .get(&nr, 0)
            .map_err(ProbeError::map("SYSCALL_HIST"))?;
        Ok(h.buckets.to_vec())
    }

    /// Errors (by errno) and slow successful calls (errno 0), per process and syscall.
    pub fn per_process(&self) -> Result<Vec<(ProcSyscallKey, ProcSyscallVal)>, ProbeError> {
        read_map(&self.procs, "PROC_SYSCALLS")
    }

    /// Descriptor-creating and -closing calls per process (key: tgid).
    pub fn fd_activity(&self) -> Result<Vec<(u32, FdVal)>, ProbeError> {
        read_map(&self.fds, "FD_PROCS")
    }

    /// New keys ever inserted into the per-process syscall map ([`Self::per_process`]).
    /// Nothing deletes from it, so inserted minus the entries read is what the kernel
    /// evicted. Read this before the map, so entries inserted in between make it an
    /// underestimate, never an overestimate.
    pub fn per_process_inserted(&self) -> Result<u64, ProbeError> {
        lost_get(&self.lost, lost::INSERTED_PROC_SYSCALLS)
    }

    /// New keys ever inserted into the descriptor map ([`Self::fd_activity`]), as
    /// [`Self::per_process_inserted`].
    pub fn fd_activity_inserted(&self) -> Result<u64, ProbeError> {
        lost_get(&self.lost, lost::INSERTED_FD_PROCS)
    }
}

/// Every entry of a hash map: batched (a few `bpf()` calls for the whole map), or
/// iterated (two per entry) where the kernel has no batch lookup for it.
fn read_map<K: aya::Pod, V: aya::Pod>(
    map: &HashMap<MapData, K, V>,
    name: &'static str,
) -> Result<Vec<(K, V)>, ProbeError> {
    match crate::batch::read_all(map) {
        Ok(Some(rows)) => Ok(rows),
        Ok(None) => collect(map.iter(), name),
        Err(source) => Err(ProbeError::Io {
            path: format!("map {name} (batch lookup)"),
            source,
        }),
    }
}

fn collect<K, V>(
    it: impl Iterator<Item = Result<(K, V), aya::maps::MapError>>,
    name: &'static str,
) -> Result<Vec<(K, V)>, ProbeError> {
    let mut out = Vec::new();
    for r in it {
        match r {
            Ok(kv) => out.push(kv),
            // An LRU entry evicted between listing its key and reading it: skip it.
            Err(aya::maps::MapError::KeyNotFound) => continue,
            Err(e) => return Err(ProbeError::map(name)(e)),
        }
    }
    Ok(out)
}

/// Run-queue delay.
pub struct SchedReader {
    hist: PerCpuArray<MapData, Hist>,
    slow: HashMap<MapData, u32, SchedDelayVal>,
    lost: LostMap,
    _ebpf: Option<Shared>,
}

impl SchedReader {
    pub(crate) fn take(ebpf: &mut Ebpf, lost: LostMap) -> Result<Self, ProbeError> {
        Ok(SchedReader {
            hist: PerCpuArray::try_from(take(ebpf, "RUNQ_HIST")?)
                .map_err(ProbeError::map("RUNQ_HIST"))?,
            slow: HashMap::try_from(take(ebpf, "RUNQ_SLOW")?)
                .map_err(ProbeError::map("RUNQ_SLOW"))?,
            lost,
            _ebpf: None,
        })
    }

    /// Wakeup-to-run delay histogram (ns), all CPUs.
    pub fn histogram(&self) -> Result<Vec<u64>, ProbeError> {
        read_hist(&self.hist, 0, "RUNQ_HIST")
    }

    /// Threads (key: tid) with delays above the slow threshold.
    pub fn slow_threads(&self) -> Result<Vec<(u32, SchedDelayVal)>, ProbeError> {
        read_map(&self.slow, "RUNQ_SLOW")
    }

    /// New keys ever inserted into the slow-thread map ([`Self::slow_threads`]), as
    /// [`SyscallReader::per_process_inserted`].
    pub fn slow_threads_inserted(&self) -> Result<u64, ProbeError> {
        lost_get(&self.lost, lost::INSERTED_RUNQ_SLOW)
    }
}

/// Block I/O per device and operation.
pub struct DiskReader {
    stats: PerCpuHashMap<MapData, BlkStatKey, BlkStat>,
    _ebpf: Option<Shared>,
}

/// One device and operation's totals.
#[derive(Clone, Debug)]
pub struct DiskTotals {
    /// Device and operation.
    pub key: BlkStatKey,
    /// Completed requests.
    pub count: u64,
    /// Bytes.
    pub bytes: u64,
    /// Requests that completed with an error.
    pub errors: u64,
    /// Latency histogram (ns).
    pub hist: Vec<u64>,
}

impl DiskReader {
    pub(crate) fn take(ebpf: &mut Ebpf) -> Result<Self, ProbeError> {
        Ok(DiskReader {
            stats: PerCpuHashMap::try_from(take(ebpf, "BLK_STATS")?)
                .map_err(ProbeError::map("BLK_STATS"))?,
            _ebpf: None,
        })
    }

    /// Totals per device and operation, summed over CPUs.
    pub fn totals(&self) -> Result<Vec<DiskTotals>, ProbeError> {
        let rows = collect(self.stats.iter(), "BLK_STATS")?;
        Ok(rows
            .into_iter()
            .map(|(key, per_cpu)| {
                let mut t = DiskTotals {
                    key,
                    count: 0,
                    bytes: 0,
                    errors: 0,
                    hist: vec![0; hist::BUCKETS],
                };
                for s in per_cpu.iter() {
                    t.count += s.count;
                    t.bytes += s.bytes;
                    t.errors += s.errors;
                    for (o, b) in t.hist.iter_mut().zip(s.hist.buckets.iter()) {
                        *o += b;
                    }
                }
                t
            })
            .collect())
    }
}

/// TCP counters, RTT and connect latency, and flows by retransmits.
pub struct TcpReader {
    counters: PerCpuArray<MapData, u64>,
    rtt: PerCpuArray<MapData, Hist>,
    connect: PerCpuArray<MapData, Hist>,
    flows: HashMap<MapData, FlowKey, FlowVal>,
    slow_rtt: HashMap<MapData, FlowKey, SlowRtt>,
    slow_connects: HashMap<MapData, ConnKey, SlowConn>,
    lost: LostMap,
    _ebpf: Option<Shared>,
}

/// TCP event counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct TcpCounters {
    /// Retransmitted segments.
    pub retransmits: u64,
    /// RTT samples.
    pub rtt_samples: u64,
    /// Connections that entered SYN_SENT.
    pub connect_started: u64,
    /// Active opens that reached ESTABLISHED.
    pub active_opens: u64,
    /// Passive opens that reached ESTABLISHED.
    pub passive_opens: u64,
    /// Connections closed.
    pub closes: u64,
    /// Active opens that failed (SYN_SENT to CLOSE).
    pub connect_failed: u64,
}

impl TcpReader {
    pub(crate) fn take(ebpf: &mut Ebpf, lost: LostMap) -> Result<Self, ProbeError> {
        Ok(TcpReader {
            counters: PerCpuArray::try_from(take(ebpf, "TCP_COUNTERS")?)
                .map_err(ProbeError::map("TCP_COUNTERS"))?,
            rtt: PerCpuArray::try_from(take(ebpf, "TCP_RTT_HIST")?)
                .map_err(ProbeError::map("TCP_RTT_HIST"))?,
            connect: PerCpuArray::try_from(take(ebpf, "TCP_CONNECT_HIST")?)
                .map_err(ProbeError::map("TCP_CONNECT_HIST"))?,
            flows: HashMap::try_from(take(ebpf, "TCP_FLOWS")?)
                .map_err(ProbeError::map("TCP_FLOWS"))?,
            slow_rtt: HashMap::try_from(take(ebpf, "TCP_SLOW_RTT")?)
                .map_err(ProbeError::map("TCP_SLOW_RTT"))?,
            slow_connects: HashMap::try_from(take(ebpf, "TCP_SLOW_CONNECTS")?)
                .map_err(ProbeError::map("TCP_SLOW_CONNECTS"))?,
            lost,
            _ebpf: None,
        })
    }

    /// Event counters, summed over CPUs.
    pub fn counters(&self) -> Result<TcpCounters, ProbeError> {
        let get = |i: u32| -> Result<u64, ProbeError> {
            Ok(self
                .counters
                .get(&i, 0)
                .map_err(ProbeError::map("TCP_COUNTERS"))?
                .iter()
                .sum())
        };
        Ok(TcpCounters {
            retransmits: get(tcp_ctr::RETRANSMITS)?,
            rtt_samples: get(tcp_ctr::RTT_SAMPLES)?,
            connect_started: get(tcp_ctr::CONNECT_STARTED)?,
            active_opens: get(tcp_ctr::ACTIVE_OPENS)?,
            passive_opens: get(tcp_ctr::PASSIVE_OPENS)?,
            closes: get(tcp_ctr::CLOSES)?,
            connect_failed: get(tcp_ctr::CONNECT_FAILED)?,
        })
    }

    /// Smoothed RTT histogram (ns), one sample per ACK processed.
    pub fn rtt_histogram(&self) -> Result<Vec<u64>, ProbeError> {
        read_hist(&self.rtt, 0, "TCP_RTT_HIST")
    }

    /// Connect latency histogram (ns), SYN sent to ESTABLISHED.
    pub fn connect_histogram(&self) -> Result<Vec<u64>, ProbeError> {
        read_hist(&self.connect, 0, "TCP_CONNECT_HIST")
    }

    /// Flows with retransmits.
    pub fn flows(&self) -> Result<Vec<(FlowKey, FlowVal)>, ProbeError> {
        read_map(&self.flows, "TCP_FLOWS")
    }

    /// Flows with ACKs whose smoothed RTT was at least the slow-RTT threshold.
    pub fn slow_rtt_flows(&self) -> Result<Vec<(FlowKey, SlowRtt)>, ProbeError> {
        read_map(&self.slow_rtt, "TCP_SLOW_RTT")
    }

    /// Connects at least as slow as the slow-connect threshold, by process and peer.
    pub fn slow_connects(&self) -> Result<Vec<(ConnKey, SlowConn)>, ProbeError> {
        read_map(&self.slow_connects, "TCP_SLOW_CONNECTS")
    }

    /// New keys ever inserted into the flow, slow-RTT and slow-connect maps, in that
    /// order, as [`SyscallReader::per_process_inserted`].
    pub fn inserted(&self) -> Result<[u64; 3], ProbeError> {
        Ok([
            lost_get(&self.lost, lost::INSERTED_TCP_FLOWS)?,
            lost_get(&self.lost, lost::INSERTED_TCP_SLOW_RTT)?,
            lost_get(&self.lost, lost::INSERTED_TCP_SLOW_CONNECTS)?,
        ])
    }
}

/// OOM kills.
pub struct OomReader {
    seq: Array<MapData, u64>,
    kills: Array<MapData, OomEntry>,
    _ebpf: Option<Shared>,
}

impl OomReader {
    pub(crate) fn take(ebpf: &mut Ebpf) -> Result<Self, ProbeError> {
        Ok(OomReader {
            seq: Array::try_from(take(ebpf, "OOM_SEQ")?).map_err(ProbeError::map("OOM_SEQ"))?,
            kills: Array::try_from(take(ebpf, "OOM_KILLS")?)
                .map_err(ProbeError::map("OOM_KILLS"))?,
            _ebpf: None,
        })
    }

    /// Kills recorded since the probes were loaded.
    pub fn total(&self) -> Result<u64, ProbeError> {
        self.seq.get(&0, 0).map_err(ProbeError::map("OOM_SEQ"))
    }

    /// The kills with sequence numbers in `(after, total]` that are still in the ring, and
    /// how many of those were overwritten before they could be read.
    pub fn since(&self, after: u64) -> Result<(Vec<OomEntry>, u64), ProbeError> {
        let total = self.total()?;
        let mut out = Vec::new();
        let first = after.max(total.saturating_sub(OOM_RING as u64)) + 1;
        for seq in first..=total {
            let e = self
                .kills
                .get(&((seq % OOM_RING as u64) as u32), 0)
                .map_err(ProbeError::map("OOM_KILLS"))?;
            if e.seq == seq {
                out.push(e);
            }
        }
        let wanted = total.saturating_sub(after);
        let lost = wanted - out.len() as u64;
        Ok((out, lost))
    }
}

/// Samples the programs could not record, by cause ([`kerno_probes_common::lost`]), and
/// the runs of each attached program the kernel skipped (`recursion_misses`).
pub struct LostCounters {
    map: LostMap,
    programs: Vec<(Domain, ProgramFd)>,
    _ebpf: Option<Shared>,
}

/// The lost-sample counters at one moment, summed over CPUs, since the probes loaded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LostReading {
    /// By index of [`kerno_probes_common::lost`] (`INSERTED_*` included).
    pub counters: Vec<u64>,
    /// Program runs the kernel skipped because a BPF program was already running on that
    /// CPU (`bpf_prog_info.recursion_misses`, kernel 5.12+), summed per domain, for the
    /// attached domains.
    pub recursion_misses: Vec<(Domain, u64)>,
}

impl LostReading {
    /// One counter ([`kerno_probes_common::lost`]); 0 when out of range.
    pub fn get(&self, which: u32) -> u64 {
        self.counters.get(which as usize).copied().unwrap_or(0)
    }

    /// A domain's recursion misses (0 when not attached).
    pub fn recursion(&self, d: Domain) -> u64 {
        self.recursion_misses
            .iter()
            .filter(|(x, _)| *x == d)
            .map(|(_, n)| n)
            .sum()
    }
}

impl LostCounters {
    pub(crate) fn new(map: LostMap, programs: Vec<(Domain, ProgramFd)>) -> Self {
        LostCounters {
            map,
            programs,
            _ebpf: None,
        }
    }

    /// Lost samples for one cause, summed over CPUs.
    pub fn get(&self, which: u32) -> Result<u64, ProbeError> {
        lost_get(&self.map, which)
    }

    /// Every counter, and every attached program's recursion misses.
    pub fn all(&self) -> Result<LostReading, ProbeError> {
        let counters = (0..lost::N)
            .map(|i| self.get(i))
            .collect::<Result<Vec<_>, _>>()?;
        let mut recursion_misses: Vec<(Domain, u64)> = Vec::new();
        for (d, fd) in &self.programs {
            let n = recursion_misses_of(fd)?;
            match recursion_misses.iter_mut().find(|(x, _)| x == d) {
                Some((_, t)) => *t += n,
                None => recursion_misses.push((*d, n)),
            }
        }
        Ok(LostReading {
            counters,
            recursion_misses,
        })
    }
}

/// `bpf_prog_info.recursion_misses` of a loaded program (`BPF_OBJ_GET_INFO_BY_FD`); 0 on a
/// kernel whose info stops before that field (before 5.12), which does not count them.
fn recursion_misses_of(fd: &ProgramFd) -> Result<u64, ProbeError> {
    use aya_obj::generated::bpf_prog_info;
    const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
    // SAFETY: bpf_prog_info is a plain C struct of integers, valid when zeroed.
    let mut info: bpf_prog_info = unsafe { std::mem::zeroed() };
    // union bpf_attr's `info` member: bpf_fd, info_len, info (a pointer as u64).
    #[repr(C)]
    struct InfoAttr {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let mut attr = InfoAttr {
        bpf_fd: fd.as_fd().as_raw_fd() as u32,
        info_len: std::mem::size_of::<bpf_prog_info>() as u32,
        info: &mut info as *mut bpf_prog_info as u64,
    };
    // SAFETY: BPF_OBJ_GET_INFO_BY_FD reads `attr` (valid for its size) and writes at most
    // `info_len` bytes to `info`, a live, writable bpf_prog_info of that size.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_OBJ_GET_INFO_BY_FD,
            &mut attr as *mut InfoAttr,
            std::mem::size_of::<InfoAttr>() as u32,
        )
    };
    if r < 0 {
        return Err(ProbeError::Io {
            path: "bpf(BPF_OBJ_GET_INFO_BY_FD)".into(),
            source: std::io::Error::last_os_error(),
        });
    }
    let end = std::mem::offset_of!(bpf_prog_info, recursion_misses) + 8;
    Ok(if (attr.info_len as usize) < end {
        0
    } else {
        info.recursion_misses
    })
}
