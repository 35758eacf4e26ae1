//! Types shared by Kerno's eBPF programs and the user-space loader.
//!
//! Every type here is `#[repr(C)]` with explicit padding fields, so the eBPF side and the
//! user side agree on the byte layout and the `aya::Pod` impls (feature `user`) are sound.
//! Flags are integers, never `bool`.
//!
//! Each probe domain has its own module (`syscalls`, `sched`, `disk`, `tcp`, `oom`, the same
//! names as the programs' modules in `kerno-probes/ebpf/src/`), re-exported here so every
//! type keeps its path at the crate root. [`hist`] is the histogram layout the domains share;
//! this file holds the rest of what they share: the read-only globals ([`Config`],
//! [`TpOffsets`]), the lost-sample counters ([`lost`]) and [`THREAD_SLOTS`].
#![no_std]
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

/// `aya::Pod` for map keys and values (feature `user`), one line per domain module.
#[cfg(feature = "user")]
macro_rules! pod {
    ($($t:ty),* $(,)?) => {$(
        // SAFETY: every type handed to `pod!` is #[repr(C)], made of integers and integer
        // arrays, with explicit padding fields, so every bit pattern is valid and there is
        // no uninitialised padding.
        unsafe impl aya::Pod for $t {}
    )*};
}

mod disk;
pub mod hist;
mod oom;
mod sched;
mod streams;
mod syscalls;
mod tcp;

pub use disk::*;
pub use hist::Hist;
pub use oom::*;
pub use sched::*;
pub use streams::*;
pub use syscalls::*;
pub use tcp::*;

/// Number of per-thread slots (array entries) for syscalls and for run-queue wakeups.
pub const THREAD_SLOTS: u32 = 1 << 16;

/// Indexes into the per-CPU lost-sample counters (the `LOST` map, never reset).
///
/// Each counter is bumped only on the branch where something could not be recorded, so
/// the common path pays nothing for it. The `INSERTED_*` counters are not losses: they
/// count new keys put into a grow-only LRU map, from which user space tells how many
/// entries the kernel evicted (inserted minus entries still there; nothing else deletes
/// from those maps).
pub mod lost {
    /// A timed syscall took a slot holding another thread's timed call in flight (two
    /// threads whose register addresses hash to the same slot): that call's latency is lost.
    pub const SYSCALL_SLOT: u32 = 0;
    /// A switch-in found its wakeup slot taken by another thread.
    pub const SCHED_SLOT: u32 = 1;
    /// The per-process syscall map (`PROC_SYSCALLS`) refused an insert.
    pub const MAP_FULL: u32 = 2;
    /// A block completion had no matching issue (issued before the probes attached, or
    /// its in-flight slot was taken by another request since).
    pub const BLK_UNMATCHED: u32 = 3;
    /// The per-process descriptor map (`FD_PROCS`) refused an insert.
    pub const FD_MAP_FULL: u32 = 4;
    /// The slow run-queue map (`RUNQ_SLOW`) refused an insert.
    pub const SCHED_MAP_FULL: u32 = 5;
    /// The block statistics map (`BLK_STATS`) refused an insert.
    pub const DISK_MAP_FULL: u32 = 6;
    /// A TCP map (`TCP_FLOWS`, `TCP_CONNECTING`, `TCP_SLOW_RTT`, `TCP_SLOW_CONNECTS`)
    /// refused an insert.
    pub const TCP_MAP_FULL: u32 = 7;
    /// A connect reached ESTABLISHED with no recorded start (begun before the probes
    /// attached, or its entry was evicted from `TCP_CONNECTING`): its latency is lost.
    pub const TCP_UNMATCHED_CONNECT: u32 = 8;
    /// A scheduler tracepoint's record could not be read.
    pub const SCHED_READ: u32 = 9;
    /// A block tracepoint's record could not be read.
    pub const DISK_READ: u32 = 10;
    /// A TCP tracepoint's record could not be read.
    pub const TCP_READ: u32 = 11;
    /// An OOM tracepoint's record could not be read.
    pub const OOM_READ: u32 = 12;
    /// New keys inserted into `PROC_SYSCALLS`.
    pub const INSERTED_PROC_SYSCALLS: u32 = 13;
    /// New keys inserted into `FD_PROCS`.
    pub const INSERTED_FD_PROCS: u32 = 14;
    /// New keys inserted into `RUNQ_SLOW`.
    pub const INSERTED_RUNQ_SLOW: u32 = 15;
    /// New keys inserted into `TCP_FLOWS`.
    pub const INSERTED_TCP_FLOWS: u32 = 16;
    /// New keys inserted into `TCP_SLOW_RTT`.
    pub const INSERTED_TCP_SLOW_RTT: u32 = 17;
    /// New keys inserted into `TCP_SLOW_CONNECTS`.
    pub const INSERTED_TCP_SLOW_CONNECTS: u32 = 18;
    /// Number of counters.
    pub const N: u32 = 24;
}

/// Byte offsets the programs read at, handed to them by the loader as a read-only global:
/// of classic tracepoints' record fields (read from each tracepoint's `format` file) and of
/// the kernel struct members the BTF-typed programs load through the pointers they are
/// passed (read from the kernel's BTF). `u32::MAX` marks one this kernel does not have.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TpOffsets {
    /// `struct task_struct`: `pid` (the thread id), for the BTF-typed sched programs.
    pub task_pid: u32,
    /// `struct task_struct`: `comm`.
    pub task_comm: u32,
    /// `struct request`: `cmd_flags` (the operation in its low 8 bits).
    pub rq_cmd_flags: u32,
    /// `struct request`: `__data_len` (bytes).
    pub rq_data_len: u32,
    /// `struct request`: `q` (its `struct request_queue *`).
    pub rq_q: u32,
    /// `struct request_queue`: `disk` (its `struct gendisk *`).
    pub q_disk: u32,
    /// `struct gendisk`: `major`.
    pub disk_major: u32,
    /// `struct gendisk`: `first_minor`.
    pub disk_first_minor: u32,
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
        task_pid: u32::MAX,
        task_comm: u32::MAX,
        rq_cmd_flags: u32::MAX,
        rq_data_len: u32::MAX,
        rq_q: u32::MAX,
        q_disk: u32::MAX,
        disk_major: u32::MAX,
        disk_first_minor: u32::MAX,
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
pod!(TpOffsets, Config);
