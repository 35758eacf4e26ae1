//! Syscalls (and file descriptors): per-syscall counts, the latency sampler, the per-thread
//! slots of timed calls, and the per-process error, slow-call and descriptor maps.

use crate::THREAD_SLOTS;

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

#[cfg(feature = "user")]
pod!(
    SyscallCounts,
    SyscallSlot,
    SyscallSampler,
    ProcSyscallKey,
    ProcSyscallVal,
    FdVal
);
