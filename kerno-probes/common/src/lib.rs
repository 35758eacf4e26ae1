//! Types shared by Kerno's eBPF programs and the user-space loader.
//!
//! Every type here is `#[repr(C)]` with explicit padding fields, so the eBPF side and the
//! user side agree on the byte layout and the `aya::Pod` impls (feature `user`) are sound.
//! Flags are integers, never `bool`.
#![no_std]
#![deny(missing_docs)]

/// Histogram layout: log-linear buckets, as HDR histograms use.
///
/// Values below `2^SUB_BITS` get one bucket each; above that, each power of two is split
/// into `2^SUB_BITS` equal sub-buckets, so a bucket is at most 1/16 (6.25%) of its value
/// wide and a percentile read at the bucket's midpoint is within ~3% of the exact value.
pub mod hist {
    /// Linear sub-buckets per power of two, as a bit count.
    pub const SUB_BITS: u32 = 4;
    /// Sub-buckets per power of two.
    pub const SUB: u64 = 1 << SUB_BITS;
    /// The largest exponent with its own buckets: values at or above `2^(MAX_EXP + 1)`
    /// (about 34 s when the unit is nanoseconds) share the last bucket.
    pub const MAX_EXP: u32 = 34;
    /// Number of buckets.
    pub const BUCKETS: usize = ((MAX_EXP - SUB_BITS + 1) as usize + 1) * SUB as usize;

    /// The bucket a value falls in. Branch-light and loop-free, so the eBPF verifier
    /// accepts it and it costs a few instructions on the hot path.
    #[inline(always)]
    pub fn bucket(v: u64) -> usize {
        if v < SUB {
            return v as usize;
        }
        let mut x = v;
        let mut e: u32 = 0;
        if x >= 1 << 32 {
            e += 32;
            x >>= 32;
        }
        if x >= 1 << 16 {
            e += 16;
            x >>= 16;
        }
        if x >= 1 << 8 {
            e += 8;
            x >>= 8;
        }
        if x >= 1 << 4 {
            e += 4;
            x >>= 4;
        }
        if x >= 1 << 2 {
            e += 2;
            x >>= 2;
        }
        if x >= 1 << 1 {
            e += 1;
        }
        if e > MAX_EXP {
            return BUCKETS - 1;
        }
        let sub = ((v >> (e - SUB_BITS)) & (SUB - 1)) as usize;
        ((e - SUB_BITS + 1) as usize) * SUB as usize + sub
    }

    /// The half-open value range `[lo, hi)` of a bucket. The last bucket's `hi` is the
    /// upper end of its nominal range; larger values were clamped into it.
    #[inline]
    pub fn bounds(i: usize) -> (u64, u64) {
        if i < SUB as usize {
            return (i as u64, i as u64 + 1);
        }
        let e = (i as u64 / SUB) as u32 + SUB_BITS - 1;
        let sub = i as u64 % SUB;
        let width = 1u64 << (e - SUB_BITS);
        let lo = (SUB + sub) << (e - SUB_BITS);
        (lo, lo + width)
    }
}

/// A histogram as stored in a map value.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Hist {
    /// Sample counts per bucket (see [`hist`]).
    pub buckets: [u64; hist::BUCKETS],
}

/// Syscall numbers at or above this are counted under [`SYSCALL_OTHER`].
pub const MAX_SYSCALLS: usize = 512;
/// The slot that collects syscall numbers `>= MAX_SYSCALLS - 1` (x32 and the like).
pub const SYSCALL_OTHER: usize = MAX_SYSCALLS - 1;

/// Per-syscall counters: one value per CPU, one element in the map, so user space reads
/// all of them with one lookup.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SyscallCounts {
    /// Completed calls per syscall number.
    pub count: [u64; MAX_SYSCALLS],
    /// Calls that returned a negative errno, per syscall number.
    pub errors: [u64; MAX_SYSCALLS],
}

/// Per-thread scratch slot: the syscall (or wakeup) in flight on a thread.
///
/// Slots are indexed by `tid % THREAD_SLOTS` and carry the tid, so two live threads that
/// share a slot are detected (and counted as lost samples) rather than mixed up.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ThreadSlot {
    /// Thread id that owns the slot; 0 when empty.
    pub tid: u32,
    /// Syscall number (syscall slots) or unused (scheduler slots).
    pub nr: u32,
    /// Start timestamp, `bpf_ktime_get_ns`.
    pub ts: u64,
}

/// Number of per-thread slots (array entries) for syscalls and for run-queue wakeups.
pub const THREAD_SLOTS: u32 = 1 << 16;

/// A timed syscall in flight on a thread.
///
/// Syscall slots are keyed by the address of the thread's saved user registers (`struct
/// pt_regs`, which sits at a fixed place on the thread's kernel stack and is handed to both
/// `sys_enter` and `sys_exit`), so the programs find them without a helper call. The slot
/// index is a hash of that address; the full address is kept to tell threads apart.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SyscallSlot {
    /// The thread's `pt_regs` address (relative to a fixed address); 0 when never used.
    pub regs: u64,
    /// Start timestamp, `bpf_ktime_get_ns`; 0 when no timed call is in flight.
    pub ts: u64,
    /// How many calls this timed call stands for in the histogram (see [`sampling`]).
    pub weight: u32,
    /// 1 when the thread belongs to the collecting process (its calls are left out).
    pub own: u32,
}

/// The slot index of a thread's `pt_regs` address (relative to a fixed address): kernel
/// stacks are 16 KiB apart or more, so the low 14 bits carry nothing; a multiplicative hash
/// spreads the rest over the slots.
#[inline(always)]
pub fn syscall_slot(regs: u64) -> u32 {
    (((regs >> 14).wrapping_mul(0x9E37_79B9_7F4A_7C15)) >> 48) as u32 & (THREAD_SLOTS - 1)
}

/// How syscall latency is timed.
///
/// Counts and errors are exact: every call is counted. Reading the clock twice per call is
/// most of the cost of timing it, so on each CPU the first [`FULL`](sampling::FULL) calls of
/// a syscall in each [`EPOCH_SHIFT`](sampling::EPOCH_SHIFT) period (about a second) are all
/// timed, and beyond that one call in [`EVERY`](sampling::EVERY), which goes into the
/// histogram with that weight. A syscall made fewer than about 1,000 times a second per CPU
/// is therefore timed exactly; a storm of one syscall costs the clock only on a sample.
pub mod sampling {
    /// Calls of one syscall timed one by one per CPU per period.
    pub const FULL: u64 = 1024;
    /// Beyond [`FULL`], one call in this many is timed (a power of two).
    pub const EVERY: u64 = 64;
    /// The period is `ktime >> EPOCH_SHIFT` ns (2^30 ns, about 1.07 s).
    pub const EPOCH_SHIFT: u32 = 30;
}

/// Per-CPU state of the syscall latency sampler (see [`sampling`]).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct SyscallSampler {
    /// The current period on this CPU, as last seen by a timed call.
    pub epoch: u64,
    /// Per syscall number: `(period << 32) | calls seen in that period`.
    pub seen: [u64; MAX_SYSCALLS],
}

/// Per-syscall-number class flags, handed to the programs as a read-only global.
pub mod class {
    /// The syscall waits for something by design (epoll_wait, futex, nanosleep, ...):
    /// its duration is not latency, so it is neither "slow" nor tracked per process.
    pub const WAIT: u8 = 1;
    /// A successful call creates a file descriptor.
    pub const FD_CREATE: u8 = 2;
    /// A successful call closes a file descriptor.
    pub const FD_CLOSE: u8 = 4;
    /// The call never returns (exit, exit_group): no slot is taken for it, so the slot is
    /// not left holding a call that will never complete.
    pub const NO_RETURN: u8 = 8;
}

/// Key of the per-process syscall map: errors and slow calls by process and syscall.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcSyscallKey {
    /// Process id (tgid).
    pub tgid: u32,
    /// Syscall number.
    pub nr: u16,
    /// Errno of a failed call; 0 for successful calls slower than the slow threshold.
    pub errno: u16,
}

/// Value of the per-process syscall map.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ProcSyscallVal {
    /// Calls.
    pub count: u64,
    /// Sum of their latencies, ns.
    pub lat_sum_ns: u64,
    /// Longest call, ns.
    pub max_ns: u64,
    /// cgroup v2 id of the process at first sight.
    pub cgroup_id: u64,
    /// Command name at first sight (NUL-padded).
    pub comm: [u8; 16],
}

/// Per-process descriptor activity (key: tgid).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FdVal {
    /// Successful descriptor-creating calls (open, socket, pipe, dup, accept, ...).
    pub opens: u64,
    /// Successful close calls.
    pub closes: u64,
    /// Command name at first sight.
    pub comm: [u8; 16],
}

/// Per-thread run-queue delay above the slow threshold (key: tid).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SchedDelayVal {
    /// Delays recorded.
    pub count: u64,
    /// Sum of the delays, ns.
    pub total_ns: u64,
    /// Longest delay, ns.
    pub max_ns: u64,
    /// Command name of the thread.
    pub comm: [u8; 16],
}

/// Block request operations.
pub mod blk_op {
    /// Read.
    pub const READ: u32 = 0;
    /// Write.
    pub const WRITE: u32 = 1;
    /// Cache flush (fsync and fdatasync end here).
    pub const FLUSH: u32 = 2;
    /// Discard / secure erase.
    pub const DISCARD: u32 = 3;
    /// Anything else.
    pub const OTHER: u32 = 4;
}

/// Key of an in-flight block request.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlkStartKey {
    /// Device number, kernel encoding (major << 20 | minor).
    pub dev: u32,
    /// Operation ([`blk_op`]).
    pub op: u32,
    /// Start sector.
    pub sector: u64,
}

/// Value of an in-flight block request.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BlkStartVal {
    /// Issue timestamp, ns.
    pub ts: u64,
    /// Bytes in the request.
    pub bytes: u64,
}

/// Key of the per-device, per-operation block statistics.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlkStatKey {
    /// Device number, kernel encoding (major << 20 | minor).
    pub dev: u32,
    /// Operation ([`blk_op`]).
    pub op: u32,
}

/// Per-device, per-operation block statistics (per CPU).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlkStat {
    /// Completed requests.
    pub count: u64,
    /// Bytes completed.
    pub bytes: u64,
    /// Requests completed with an error.
    pub errors: u64,
    /// Issue-to-complete latency, ns.
    pub hist: Hist,
}

/// Indexes into the TCP counter array.
pub mod tcp_ctr {
    /// Retransmitted segments seen at `tcp:tcp_retransmit_skb`.
    pub const RETRANSMITS: u32 = 0;
    /// RTT samples seen at `tcp:tcp_probe`.
    pub const RTT_SAMPLES: u32 = 1;
    /// Connections that entered SYN_SENT.
    pub const CONNECT_STARTED: u32 = 2;
    /// Active opens that reached ESTABLISHED.
    pub const ACTIVE_OPENS: u32 = 3;
    /// Passive opens that reached ESTABLISHED.
    pub const PASSIVE_OPENS: u32 = 4;
    /// Connections that reached CLOSE.
    pub const CLOSES: u32 = 5;
    /// Active opens that went from SYN_SENT to CLOSE.
    pub const CONNECT_FAILED: u32 = 6;
    /// Number of counters.
    pub const N: u32 = 8;
}

/// A TCP flow (addresses in network byte order, ports in host order).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u16,
    /// Local port.
    pub sport: u16,
    /// Remote port.
    pub dport: u16,
    /// Padding; always 0.
    pub pad: u16,
    /// Local address (IPv4 in the first 4 bytes).
    pub saddr: [u8; 16],
    /// Remote address (IPv4 in the first 4 bytes).
    pub daddr: [u8; 16],
}

/// Per-flow TCP statistics.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FlowVal {
    /// Retransmitted segments.
    pub retransmits: u64,
}

/// An active open in flight (key: the socket's address).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConnStart {
    /// When it entered SYN_SENT, ns.
    pub ts: u64,
    /// The connecting process (connect runs in its context).
    pub tgid: u32,
    /// Padding.
    pub pad: u32,
    /// Its command name.
    pub comm: [u8; 16],
}

/// Key of the slow-connect map: who connected where.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// The connecting process.
    pub tgid: u32,
    /// AF_INET or AF_INET6.
    pub family: u16,
    /// Remote port (host order).
    pub dport: u16,
    /// Remote address (IPv4 in the first 4 bytes).
    pub daddr: [u8; 16],
}

/// Connects at least as slow as the in-kernel threshold, per [`ConnKey`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SlowConn {
    /// Slow connects.
    pub count: u64,
    /// Their total latency, ns.
    pub total_ns: u64,
    /// The slowest, ns.
    pub max_ns: u64,
    /// The process's command name.
    pub comm: [u8; 16],
}

/// ACKs on a flow whose smoothed RTT was at least the in-kernel threshold.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SlowRtt {
    /// Such ACKs.
    pub samples: u64,
    /// Sum of their smoothed RTTs, µs.
    pub total_us: u64,
    /// The largest smoothed RTT seen, µs.
    pub max_us: u64,
}

/// An OOM kill, as recorded at `oom:mark_victim`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OomEntry {
    /// Sequence number (1-based) of this kill since the probes were loaded.
    pub seq: u64,
    /// `bpf_ktime_get_ns` at the kill.
    pub ts_ns: u64,
    /// Victim pid.
    pub pid: u32,
    /// Padding.
    pub pad: u32,
    /// Victim total VM, kB.
    pub total_vm_kb: u64,
    /// Victim anonymous RSS, kB.
    pub anon_rss_kb: u64,
    /// Victim file RSS, kB.
    pub file_rss_kb: u64,
    /// Victim shmem RSS, kB.
    pub shmem_rss_kb: u64,
    /// cgroup v2 id of the task that triggered the kill.
    pub cgroup_id: u64,
    /// Victim command name (empty when the kernel's tracepoint has no comm field).
    pub comm: [u8; 16],
}

/// Slots in the OOM kill ring; more kills than this between two reads are counted as lost.
pub const OOM_RING: u32 = 64;

/// Indexes into the per-CPU lost-sample counters.
pub mod lost {
    /// A timed syscall took a slot holding another thread's timed call in flight (two
    /// threads whose register addresses hash to the same slot): that call's latency is lost.
    pub const SYSCALL_SLOT: u32 = 0;
    /// A switch-in found its wakeup slot taken by another thread.
    pub const SCHED_SLOT: u32 = 1;
    /// A per-process map was full and the insert failed.
    pub const MAP_FULL: u32 = 2;
    /// A block completion had no matching issue.
    pub const BLK_UNMATCHED: u32 = 3;
    /// Number of counters.
    pub const N: u32 = 8;
}

/// Byte offsets of classic tracepoint fields, read by user space from each tracepoint's
/// `format` file and handed to the programs as a read-only global. `u32::MAX` marks a field
/// this kernel does not have.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TpOffsets {
    /// sched_wakeup / sched_wakeup_new: `pid`.
    pub wakeup_pid: u32,
    /// sched_switch: `prev_pid`.
    pub switch_prev_pid: u32,
    /// sched_switch: `prev_state` (a `long`).
    pub switch_prev_state: u32,
    /// sched_switch: `next_pid`.
    pub switch_next_pid: u32,
    /// sched_switch: `next_comm`.
    pub switch_next_comm: u32,
    /// block_rq_issue: `dev`.
    pub issue_dev: u32,
    /// block_rq_issue: `sector`.
    pub issue_sector: u32,
    /// block_rq_issue: `bytes`.
    pub issue_bytes: u32,
    /// block_rq_issue: `rwbs`.
    pub issue_rwbs: u32,
    /// block_rq_complete: `dev`.
    pub complete_dev: u32,
    /// block_rq_complete: `sector`.
    pub complete_sector: u32,
    /// block_rq_complete: `error`.
    pub complete_error: u32,
    /// block_rq_complete: `rwbs`.
    pub complete_rwbs: u32,
    /// tcp_retransmit_skb: `sport`.
    pub rtx_sport: u32,
    /// tcp_retransmit_skb: `dport`.
    pub rtx_dport: u32,
    /// tcp_retransmit_skb: `family`.
    pub rtx_family: u32,
    /// tcp_retransmit_skb: `saddr`.
    pub rtx_saddr: u32,
    /// tcp_retransmit_skb: `daddr`.
    pub rtx_daddr: u32,
    /// tcp_retransmit_skb: `saddr_v6`.
    pub rtx_saddr_v6: u32,
    /// tcp_retransmit_skb: `daddr_v6`.
    pub rtx_daddr_v6: u32,
    /// tcp_probe: `srtt` (microseconds).
    pub probe_srtt: u32,
    /// tcp_probe: `family`.
    pub probe_family: u32,
    /// tcp_probe: `sport`.
    pub probe_sport: u32,
    /// tcp_probe: `dport`.
    pub probe_dport: u32,
    /// tcp_probe: `saddr` (a sockaddr_in or sockaddr_in6).
    pub probe_saddr: u32,
    /// tcp_probe: `daddr` (a sockaddr_in or sockaddr_in6).
    pub probe_daddr: u32,
    /// inet_sock_set_state: `skaddr`.
    pub state_skaddr: u32,
    /// inet_sock_set_state: `oldstate`.
    pub state_old: u32,
    /// inet_sock_set_state: `newstate`.
    pub state_new: u32,
    /// inet_sock_set_state: `protocol`.
    pub state_protocol: u32,
    /// inet_sock_set_state: `family`.
    pub state_family: u32,
    /// inet_sock_set_state: `dport`.
    pub state_dport: u32,
    /// inet_sock_set_state: `daddr`.
    pub state_daddr: u32,
    /// inet_sock_set_state: `daddr_v6`.
    pub state_daddr_v6: u32,
    /// mark_victim: `pid`.
    pub oom_pid: u32,
    /// mark_victim: `comm` (a `__data_loc` string), or `u32::MAX`.
    pub oom_comm: u32,
    /// mark_victim: `total_vm`, or `u32::MAX`.
    pub oom_total_vm: u32,
    /// mark_victim: `anon_rss`, or `u32::MAX`.
    pub oom_anon_rss: u32,
    /// mark_victim: `file_rss`, or `u32::MAX`.
    pub oom_file_rss: u32,
    /// mark_victim: `shmem_rss`, or `u32::MAX`.
    pub oom_shmem_rss: u32,
    /// Reserved; always 0.
    pub pad: u32,
}

impl TpOffsets {
    /// All fields absent.
    pub const NONE: TpOffsets = TpOffsets {
        wakeup_pid: u32::MAX,
        switch_prev_pid: u32::MAX,
        switch_prev_state: u32::MAX,
        switch_next_pid: u32::MAX,
        switch_next_comm: u32::MAX,
        issue_dev: u32::MAX,
        issue_sector: u32::MAX,
        issue_bytes: u32::MAX,
        issue_rwbs: u32::MAX,
        complete_dev: u32::MAX,
        complete_sector: u32::MAX,
        complete_error: u32::MAX,
        complete_rwbs: u32::MAX,
        rtx_sport: u32::MAX,
        rtx_dport: u32::MAX,
        rtx_family: u32::MAX,
        rtx_saddr: u32::MAX,
        rtx_daddr: u32::MAX,
        rtx_saddr_v6: u32::MAX,
        rtx_daddr_v6: u32::MAX,
        probe_srtt: u32::MAX,
        probe_family: u32::MAX,
        probe_sport: u32::MAX,
        probe_dport: u32::MAX,
        probe_saddr: u32::MAX,
        probe_daddr: u32::MAX,
        state_skaddr: u32::MAX,
        state_old: u32::MAX,
        state_new: u32::MAX,
        state_protocol: u32::MAX,
        state_family: u32::MAX,
        state_dport: u32::MAX,
        state_daddr: u32::MAX,
        state_daddr_v6: u32::MAX,
        oom_pid: u32::MAX,
        oom_comm: u32::MAX,
        oom_total_vm: u32::MAX,
        oom_anon_rss: u32::MAX,
        oom_file_rss: u32::MAX,
        oom_shmem_rss: u32::MAX,
        pad: 0,
    };
}

/// Tunables handed to the programs as a read-only global.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct Config {
    /// The loader's own tgid: its syscalls are not counted, so Kerno never diagnoses itself.
    pub self_tgid: u32,
    /// Padding.
    pub pad: u32,
    /// A successful syscall at least this slow (ns) is recorded per process.
    pub slow_syscall_ns: u64,
    /// A run-queue delay at least this long (ns) is recorded per thread.
    pub slow_runq_ns: u64,
    /// A smoothed RTT at least this long (ns) is recorded per flow.
    pub slow_rtt_ns: u64,
    /// A connect at least this slow (ns) is recorded per process and peer.
    pub slow_connect_ns: u64,
}

#[cfg(feature = "user")]
mod pod {
    use super::*;
    // SAFETY: all types are #[repr(C)], made of integers and integer arrays, with explicit
    // padding fields, so every bit pattern is valid and there is no uninitialised padding.
    unsafe impl aya::Pod for Hist {}
    unsafe impl aya::Pod for SyscallCounts {}
    unsafe impl aya::Pod for ThreadSlot {}
    unsafe impl aya::Pod for SyscallSlot {}
    unsafe impl aya::Pod for SyscallSampler {}
    unsafe impl aya::Pod for ProcSyscallKey {}
    unsafe impl aya::Pod for ProcSyscallVal {}
    unsafe impl aya::Pod for FdVal {}
    unsafe impl aya::Pod for SchedDelayVal {}
    unsafe impl aya::Pod for BlkStartKey {}
    unsafe impl aya::Pod for BlkStartVal {}
    unsafe impl aya::Pod for BlkStatKey {}
    unsafe impl aya::Pod for BlkStat {}
    unsafe impl aya::Pod for FlowKey {}
    unsafe impl aya::Pod for FlowVal {}
    unsafe impl aya::Pod for OomEntry {}
    unsafe impl aya::Pod for ConnStart {}
    unsafe impl aya::Pod for ConnKey {}
    unsafe impl aya::Pod for SlowConn {}
    unsafe impl aya::Pod for SlowRtt {}
    unsafe impl aya::Pod for TpOffsets {}
    unsafe impl aya::Pod for Config {}
}

#[cfg(test)]
mod tests {
    use super::hist::*;

    #[test]
    fn buckets_are_contiguous_and_cover_values() {
        let mut prev_hi = 0;
        for i in 0..BUCKETS {
            let (lo, hi) = bounds(i);
            assert_eq!(
                lo,
                prev_hi,
                "bucket {i} starts where {} ended",
                i.wrapping_sub(1)
            );
            assert!(hi > lo);
            assert_eq!(bucket(lo), i);
            assert_eq!(bucket(hi - 1), i);
            prev_hi = hi;
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
        assert_eq!(BUCKETS, 512);
    }

    #[test]
    fn bucket_width_is_at_most_a_sixteenth() {
        for i in SUB as usize..BUCKETS {
            let (lo, hi) = bounds(i);
            assert!((hi - lo) * 16 <= lo, "bucket {i}: [{lo}, {hi})");
        }
    }
}
