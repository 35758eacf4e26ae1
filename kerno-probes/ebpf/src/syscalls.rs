//! Syscalls (and file descriptors): `tp_btf/sys_enter` and `tp_btf/sys_exit`.
//!
//! Cost matters most here: these two programs run on every syscall of the machine. What
//! a call pays on its way (measured, docs/performance.md): the two program invocations
//! themselves, then `bpf_ktime_get_ns` (~33 ns a call here), then other helper calls
//! (`bpf_get_current_pid_tgid`, ~8 ns), then map work (inlined array lookups, ~1 ns). So
//! the common path calls no helper at all: the clock is read only for the calls the
//! sampler times (see `kerno_probes_common::sampling`), a thread's slot is found from the
//! `pt_regs` address the tracepoint passes, and Kerno's own threads are recognised by a
//! mark in their slot; the pid is asked for only where a call is recorded per process.

use aya_ebpf::{
    bindings::{BPF_NOEXIST, pt_regs},
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid},
    macros::{btf_tracepoint, map},
    maps::{Array, LruHashMap, PerCpuArray},
    programs::BtfTracePointContext,
};
use kerno_probes_common::{
    Config, FdVal, Hist, MAX_SYSCALLS, ProcSyscallKey, ProcSyscallVal, SYSCALL_OTHER,
    SyscallCounts, SyscallSampler, SyscallSlot, THREAD_SLOTS, class, lost, sampling, syscall_slot,
};

use crate::shared::{
    CONFIG, atomic_add, cfg, cgroup_id, count_inserted, count_lost, hist_add_shared, now,
};

/// Class flags per syscall number ([`class`]), set by the loader.
#[unsafe(no_mangle)]
static SYSCALL_CLASS: [u8; MAX_SYSCALLS] = [0; MAX_SYSCALLS];

#[inline(always)]
fn syscall_class(idx: usize) -> u8 {
    // SAFETY: a volatile read through a reference to an element of a static (valid and
    // aligned), so the compiler does not fold the zeros above: the loader rewrites them.
    unsafe { core::ptr::read_volatile(&SYSCALL_CLASS[idx]) }
}

#[map]
static SYSCALL_SLOTS: Array<SyscallSlot> = Array::with_max_entries(THREAD_SLOTS, 0);
#[map]
static SYSCALL_SAMPLER: PerCpuArray<SyscallSampler> = PerCpuArray::with_max_entries(1, 0);
#[map]
static SYSCALL_COUNTS: PerCpuArray<SyscallCounts> = PerCpuArray::with_max_entries(1, 0);
#[map]
/// One histogram per syscall shared by all CPUs (atomic adds): 2 MiB whatever the CPU
/// count. Per-CPU copies cost 2 MiB per CPU (~200 MiB of kernel memory on a 96-CPU
/// node); only timed calls add to it, which the sampler bounds per CPU.
static SYSCALL_HIST: Array<Hist> = Array::with_max_entries(MAX_SYSCALLS as u32, 0);
#[map]
static PROC_SYSCALLS: LruHashMap<ProcSyscallKey, ProcSyscallVal> =
    LruHashMap::with_max_entries(16384, 0);
#[map]
static FD_PROCS: LruHashMap<u32, FdVal> = LruHashMap::with_max_entries(16384, 0);

// The floor: empty programs on the same two tracepoints, which the product never loads.
// `benches/overhead.sh` attaches them (mode `floor`, through `kerno-floor`) to measure
// what being attached to every syscall costs before a program does anything.

#[btf_tracepoint(function = "sys_enter")]
pub fn floor_sys_enter(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sys_exit")]
pub fn floor_sys_exit(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[inline(always)]
fn syscall_idx(nr: i64) -> usize {
    if (nr as u64) < SYSCALL_OTHER as u64 {
        nr as usize
    } else {
        SYSCALL_OTHER
    }
}

/// A number that tells threads apart: the address of the thread's saved registers,
/// relative to a fixed address. The verifier types the tracepoint's argument as a
/// pointer and forbids hashing a pointer, but (for a program loaded with CAP_PERFMON)
/// lets a pointer minus a pointer be a plain number.
#[inline(always)]
fn thread_key(regs: u64) -> u64 {
    let base = &CONFIG as *const Config as u64;
    regs.wrapping_sub(base)
}

#[btf_tracepoint(function = "sys_enter")]
pub fn sys_enter(ctx: BtfTracePointContext) -> i32 {
    let key = thread_key(ctx.arg(0));
    let nr: i64 = ctx.arg(1);
    let idx = syscall_idx(nr);
    let Some(s) = SYSCALL_SAMPLER.get_ptr_mut(0) else {
        return 0;
    };
    // Calls of this syscall seen on this CPU in the current period, this one included.
    // SAFETY: a map value (see `shared`'s safety patterns), this CPU's own; as below.
    let (epoch, seen) = unsafe { ((*s).epoch, (*s).seen[idx]) };
    let n = if seen >> 32 == epoch {
        (seen & 0xffff_ffff) + 1
    } else {
        1
    };
    // SAFETY: as above.
    unsafe { (*s).seen[idx] = (epoch << 32) | n };
    let weight = if n <= sampling::FULL {
        1
    } else if n & (sampling::EVERY - 1) == 0 {
        sampling::EVERY
    } else {
        return 0;
    };
    if syscall_class(idx) & class::NO_RETURN != 0 {
        return 0;
    }
    let Some(slot) = SYSCALL_SLOTS.get_ptr_mut(syscall_slot(key)) else {
        return 0;
    };
    let own = (bpf_get_current_pid_tgid() >> 32) as u32 == cfg().self_tgid;
    // Kerno's own thread: not timed, and marked, so other threads' exits need not ask
    // for the pid (until another thread's call takes the slot).
    let ts = if own {
        0
    } else {
        let t = now();
        if t >> sampling::EPOCH_SHIFT != epoch {
            // SAFETY: as above.
            unsafe { (*s).epoch = t >> sampling::EPOCH_SHIFT };
        }
        t
    };
    // SAFETY: a map value (see `shared`'s safety patterns); a slot is the thread's, unless two threads' addresses
    // share it, which is detected and counted below.
    unsafe {
        if (*slot).ts != 0 && (*slot).regs != key {
            count_lost(lost::SYSCALL_SLOT);
        }
        (*slot).regs = key;
        (*slot).weight = weight as u32;
        (*slot).own = own as u32;
        (*slot).ts = ts;
    }
    0
}

#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit(ctx: BtfTracePointContext) -> i32 {
    let regs: *const pt_regs = ctx.arg(0);
    let key = thread_key(regs as u64);
    let Some(slot) = SYSCALL_SLOTS.get_ptr_mut(syscall_slot(key)) else {
        return 0;
    };
    // SAFETY: a map value (see `shared`'s safety patterns), as below.
    let (sregs, own, ts) = unsafe { ((*slot).regs, (*slot).own, (*slot).ts) };
    let mine = sregs == key;
    if mine && own != 0 {
        // Marked as Kerno's. Kerno makes few calls, so checking the pid here costs
        // nothing overall, and catches a thread that took over the kernel stack of an
        // exited Kerno thread (same address): its mark is cleared.
        if (bpf_get_current_pid_tgid() >> 32) as u32 == cfg().self_tgid {
            return 0;
        }
        // SAFETY: as above.
        unsafe { (*slot).own = 0 };
    }
    let ret: i64 = ctx.arg(1);
    // The syscall number as the kernel keeps it for the exit path (`syscall_get_nr`).
    // `pt_regs` is the architecture's register-save layout (x86-64 ABI), not a kernel
    // struct that moves between versions; tp_btf lets the program load it directly.
    // SAFETY: `regs` is the tracepoint's first argument, a pointer typed by the kernel's BTF
    // (the task's saved registers): the verifier checks the load against `pt_regs` and
    // makes it a fault-safe load.
    let idx = syscall_idx(unsafe { (*regs).orig_rax } as i64);
    let failed = ret < 0 && ret > -4096;
    let cls = syscall_class(idx);
    let fd_change = !failed && cls & (class::FD_CREATE | class::FD_CLOSE) != 0;
    let timed = mine && ts != 0;

    // The pid, only where it is needed: a failed call and a descriptor change are
    // recorded per process, and a call of Kerno's own (an unmarked thread) is skipped.
    // A timed call is never Kerno's own: the enter program does not time those.
    let mut tgid = 0;
    if failed || fd_change {
        tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        if tgid == cfg().self_tgid {
            return 0;
        }
    }
    if let Some(c) = SYSCALL_COUNTS.get_ptr_mut(0) {
        // SAFETY: a map value (see `shared`'s safety patterns), this CPU's own.
        unsafe {
            (*c).count[idx] += 1;
            if failed {
                (*c).errors[idx] += 1;
            }
        }
    }
    if fd_change {
        record_fd(tgid, cls & class::FD_CREATE != 0);
    }

    // The latency, when the sampler timed this call.
    let mut lat = 0;
    let mut weight = 0;
    if timed {
        // SAFETY: a map value, as above.
        weight = unsafe { (*slot).weight } as u64;
        // SAFETY: as above.
        unsafe { (*slot).ts = 0 };
        lat = now().wrapping_sub(ts);
        if let Some(h) = SYSCALL_HIST.get_ptr_mut(idx as u32) {
            hist_add_shared(h, lat, weight);
        }
    }
    let slow = timed && cls & class::WAIT == 0 && lat >= cfg().slow_syscall_ns;
    if failed || slow {
        if tgid == 0 {
            tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
        }
        let key = ProcSyscallKey {
            tgid,
            nr: idx as u16,
            errno: if failed { (-ret) as u16 } else { 0 },
        };
        // A failed call counts once (errors are exact); a slow one counts for the calls
        // it stands for. An untimed failed call adds no latency.
        let n = if failed { 1 } else { weight };
        record_proc_syscall(&key, n, lat, timed);
    }
    0
}

/// Adds `n` calls to a process's row; when `timed`, `lat` is one call's latency and
/// counts `n` times in the sum.
#[inline(always)]
fn record_proc_syscall(key: &ProcSyscallKey, n: u64, lat: u64, timed: bool) {
    let (sum, max) = if timed { (lat * n, lat) } else { (0, 0) };
    if let Some(v) = PROC_SYSCALLS.get_ptr_mut(key) {
        // SAFETY: a map value (see `shared`'s safety patterns).
        unsafe {
            atomic_add(&mut (*v).count, n);
            atomic_add(&mut (*v).lat_sum_ns, sum);
            if max > (*v).max_ns {
                (*v).max_ns = max;
            }
        }
        return;
    }
    let v = ProcSyscallVal {
        count: n,
        lat_sum_ns: sum,
        max_ns: max,
        cgroup_id: cgroup_id(),
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    if PROC_SYSCALLS.insert(key, &v, BPF_NOEXIST as u64).is_ok() {
        count_inserted(lost::INSERTED_PROC_SYSCALLS);
    } else {
        // Another CPU inserted first: add to its entry.
        if let Some(p) = PROC_SYSCALLS.get_ptr_mut(key) {
            // SAFETY: a map value (see `shared`'s safety patterns).
            unsafe {
                atomic_add(&mut (*p).count, n);
                atomic_add(&mut (*p).lat_sum_ns, sum);
            }
        } else {
            count_lost(lost::MAP_FULL);
        }
    }
}

#[inline(always)]
fn record_fd(tgid: u32, open: bool) {
    if let Some(v) = FD_PROCS.get_ptr_mut(&tgid) {
        // SAFETY: a map value (see `shared`'s safety patterns).
        unsafe {
            if open {
                atomic_add(&mut (*v).opens, 1);
            } else {
                atomic_add(&mut (*v).closes, 1);
            }
        }
        return;
    }
    let v = FdVal {
        opens: open as u64,
        closes: (!open) as u64,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    if FD_PROCS.insert(&tgid, &v, BPF_NOEXIST as u64).is_ok() {
        count_inserted(lost::INSERTED_FD_PROCS);
    } else if let Some(p) = FD_PROCS.get_ptr_mut(&tgid) {
        // Another CPU inserted first: add to its entry.
        // SAFETY: a map value (see `shared`'s safety patterns).
        unsafe {
            if open {
                atomic_add(&mut (*p).opens, 1);
            } else {
                atomic_add(&mut (*p).closes, 1);
            }
        }
    } else {
        count_lost(lost::FD_MAP_FULL);
    }
}
