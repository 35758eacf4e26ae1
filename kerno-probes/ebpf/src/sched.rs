//! The scheduler: run-queue delay, wakeup (`sched_wakeup`, `sched_wakeup_new`) to
//! running (`sched_switch`).
//!
//! BTF-typed tracepoints (`tp_btf`): the kernel calls these programs with the tracepoint's
//! own arguments (`struct task_struct *`), so no record is built for them and none is
//! copied; a thread id is one load at the offset the loader read from the kernel's BTF.
//! Per thread, a wakeup marks a slot (`tid % THREAD_SLOTS`, no hash map, no helper) and
//! the switch that runs the thread reads and clears it. The idle task is never marked.

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::bpf_probe_read_kernel,
    macros::{btf_tracepoint, map},
    maps::{Array, LruHashMap, PerCpuArray},
    programs::BtfTracePointContext,
};
use kerno_probes_common::{Hist, SchedDelayVal, THREAD_SLOTS, ThreadSlot, lost};

use crate::shared::{
    atomic_add, btf_field, cfg, count_inserted, count_lost, hist_add, now, o, off,
};

#[map]
static RUNQ_SLOTS: Array<ThreadSlot> = Array::with_max_entries(THREAD_SLOTS, 0);
#[map]
static RUNQ_HIST: PerCpuArray<Hist> = PerCpuArray::with_max_entries(1, 0);
#[map]
static RUNQ_SLOW: LruHashMap<u32, SchedDelayVal> = LruHashMap::with_max_entries(8192, 0);

/// `TASK_RUNNING`: a task switched out in this state (or preempted) is still runnable.
const TASK_RUNNING: u32 = 0;

/// The thread id (`task_struct.pid`) of a task pointer the tracepoint passed.
#[inline(always)]
fn tid_of(task: *const u8) -> u32 {
    btf_field::<i32>(task, o(&off().task_pid)) as u32
}

#[inline(always)]
fn runq_mark(tid: u32, ts: u64) {
    if tid == 0 {
        return;
    }
    if let Some(slot) = RUNQ_SLOTS.get_ptr_mut(tid % THREAD_SLOTS) {
        // SAFETY: a map value (see `shared`'s safety patterns).
        unsafe {
            (*slot).tid = tid;
            (*slot).ts = ts;
        }
    }
}

// sched_wakeup(struct task_struct *p), sched_wakeup_new(struct task_struct *p)

#[btf_tracepoint(function = "sched_wakeup")]
pub fn sched_wakeup(ctx: BtfTracePointContext) -> i32 {
    runq_mark(tid_of(ctx.arg(0)), now());
    0
}

#[btf_tracepoint(function = "sched_wakeup_new")]
pub fn sched_wakeup_new(ctx: BtfTracePointContext) -> i32 {
    runq_mark(tid_of(ctx.arg(0)), now());
    0
}

// sched_switch(bool preempt, struct task_struct *prev, struct task_struct *next,
//              unsigned int prev_state)

#[btf_tracepoint(function = "sched_switch")]
pub fn sched_switch(ctx: BtfTracePointContext) -> i32 {
    let next = tid_of(ctx.arg(2));
    let prev = tid_of(ctx.arg(1));
    // A task switched out while still runnable (preempted, or yielding) waits on the run
    // queue. The idle task (tid 0) is neither marked nor measured.
    let requeued = prev != 0 && {
        let preempt: u64 = ctx.arg(0);
        let state: u64 = ctx.arg(3);
        preempt & 0xff != 0 || state as u32 == TASK_RUNNING
    };
    if next == 0 && !requeued {
        return 0;
    }
    let ts = now();
    if requeued {
        runq_mark(prev, ts);
    }
    if next != 0 {
        switched_in(&ctx, next, ts);
    }
    0
}

#[inline(always)]
fn switched_in(ctx: &BtfTracePointContext, next: u32, ts: u64) {
    let Some(slot) = RUNQ_SLOTS.get_ptr_mut(next % THREAD_SLOTS) else {
        return;
    };
    // SAFETY: a map value (see `shared`'s safety patterns), as below.
    let (stid, start) = unsafe { ((*slot).tid, (*slot).ts) };
    if start == 0 {
        return;
    }
    if stid != next {
        count_lost(lost::SCHED_SLOT);
        return;
    }
    // SAFETY: as above.
    unsafe { (*slot).ts = 0 };
    let delay = ts.wrapping_sub(start);
    if let Some(h) = RUNQ_HIST.get_ptr_mut(0) {
        hist_add(h, delay);
    }
    if delay < cfg().slow_runq_ns {
        return;
    }
    if let Some(v) = RUNQ_SLOW.get_ptr_mut(&next) {
        // SAFETY: a map value (see `shared`'s safety patterns).
        unsafe {
            atomic_add(&mut (*v).count, 1);
            atomic_add(&mut (*v).total_ns, delay);
            if delay > (*v).max_ns {
                (*v).max_ns = delay;
            }
        }
        return;
    }
    let task: *const u8 = ctx.arg(2);
    // SAFETY: `bpf_probe_read_kernel` checks the source address and fails rather than
    // faulting; any 16 bytes are a valid `[u8; 16]`.
    let comm: [u8; 16] =
        unsafe { bpf_probe_read_kernel(task.wrapping_add(o(&off().task_comm)) as *const [u8; 16]) }
            .unwrap_or([0; 16]);
    let v = SchedDelayVal {
        count: 1,
        total_ns: delay,
        max_ns: delay,
        comm,
    };
    if RUNQ_SLOW.insert(&next, &v, BPF_NOEXIST as u64).is_ok() {
        count_inserted(lost::INSERTED_RUNQ_SLOW);
    } else if let Some(p) = RUNQ_SLOW.get_ptr_mut(&next) {
        // Another CPU inserted first: add to its entry.
        // SAFETY: a map value (see `shared`'s safety patterns).
        unsafe {
            atomic_add(&mut (*p).count, 1);
            atomic_add(&mut (*p).total_ns, delay);
        }
    } else {
        count_lost(lost::SCHED_MAP_FULL);
    }
}

// The floor of this path: empty programs on the same three tracepoints, attached the same
// way, which the product never loads. `benches/overhead.sh --per-path` attaches them
// (mode `floor-sched`, through `kerno-floor --sched`).

#[btf_tracepoint(function = "sched_wakeup")]
pub fn floor_sched_wakeup(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sched_wakeup_new")]
pub fn floor_sched_wakeup_new(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "sched_switch")]
pub fn floor_sched_switch(_ctx: BtfTracePointContext) -> i32 {
    0
}
