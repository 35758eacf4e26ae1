//! The scheduler: run-queue delay, wakeup (`sched_wakeup`, `sched_wakeup_new`) to
//! running (`sched_switch`).

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    macros::{map, tracepoint},
    maps::{Array, LruHashMap, PerCpuArray},
    programs::TracePointContext,
};
use kerno_probes_common::{Hist, SchedDelayVal, THREAD_SLOTS, ThreadSlot, lost};

use crate::shared::{
    Record, atomic_add, cfg, count_inserted, count_lost, hist_add, now, o, off, tp_read,
};

#[map]
static RUNQ_SLOTS: Array<ThreadSlot> = Array::with_max_entries(THREAD_SLOTS, 0);
#[map]
static RUNQ_HIST: PerCpuArray<Hist> = PerCpuArray::with_max_entries(1, 0);
#[map]
static RUNQ_SLOW: LruHashMap<u32, SchedDelayVal> = LruHashMap::with_max_entries(8192, 0);

/// `TASK_REPORT_MAX`: sched_switch reports a preempted task's state as this bit.
const TASK_REPORT_MAX: i64 = 0x100;

#[inline(always)]
fn runq_mark(tid: u32) {
    if tid == 0 {
        return;
    }
    if let Some(slot) = RUNQ_SLOTS.get_ptr_mut(tid % THREAD_SLOTS) {
        // SAFETY: a map value (see `shared`'s safety patterns).
        unsafe {
            (*slot).tid = tid;
            (*slot).ts = now();
        }
    }
}

#[tracepoint]
pub fn sched_wakeup(ctx: TracePointContext) -> u32 {
    match tp_read::<i32>(&ctx, o(&off().wakeup_pid)) {
        Ok(pid) => runq_mark(pid as u32),
        Err(_) => count_lost(lost::SCHED_READ),
    }
    0
}

#[tracepoint]
pub fn sched_wakeup_new(ctx: TracePointContext) -> u32 {
    match tp_read::<i32>(&ctx, o(&off().wakeup_pid)) {
        Ok(pid) => runq_mark(pid as u32),
        Err(_) => count_lost(lost::SCHED_READ),
    }
    0
}

#[tracepoint]
pub fn sched_switch(ctx: TracePointContext) -> u32 {
    if try_sched_switch(&ctx).is_err() {
        count_lost(lost::SCHED_READ);
    }
    0
}

#[inline(always)]
fn try_sched_switch(ctx: &TracePointContext) -> Result<(), i64> {
    let (o_prev, o_state, o_next) = (
        o(&off().switch_prev_pid),
        o(&off().switch_prev_state),
        o(&off().switch_next_pid),
    );
    let span = (o_prev + 4).max(o_state + 8).max(o_next + 4);
    let rec = Record::read(ctx, span).ok_or(0i64)?;
    let prev: i32 = rec.get(o_prev).ok_or(0i64)?;
    let state: i64 = rec.get(o_state).ok_or(0i64)?;
    // A task switched out while still runnable (preempted) waits on the run queue.
    if state == 0 || state & TASK_REPORT_MAX != 0 {
        runq_mark(prev as u32);
    }
    let next: i32 = rec.get(o_next).ok_or(0i64)?;
    let next = next as u32;
    if next == 0 {
        return Ok(());
    }
    let Some(slot) = RUNQ_SLOTS.get_ptr_mut(next % THREAD_SLOTS) else {
        return Ok(());
    };
    // SAFETY: a map value (see `shared`'s safety patterns), as below.
    let (stid, ts) = unsafe { ((*slot).tid, (*slot).ts) };
    if ts == 0 {
        return Ok(());
    }
    if stid != next {
        count_lost(lost::SCHED_SLOT);
        return Ok(());
    }
    // SAFETY: as above.
    unsafe { (*slot).ts = 0 };
    let delay = now().wrapping_sub(ts);
    if let Some(h) = RUNQ_HIST.get_ptr_mut(0) {
        hist_add(h, delay);
    }
    if delay >= cfg().slow_runq_ns {
        if let Some(v) = RUNQ_SLOW.get_ptr_mut(&next) {
            // SAFETY: a map value (see `shared`'s safety patterns).
            unsafe {
                atomic_add(&mut (*v).count, 1);
                atomic_add(&mut (*v).total_ns, delay);
                if delay > (*v).max_ns {
                    (*v).max_ns = delay;
                }
            }
        } else {
            let comm: [u8; 16] = tp_read(ctx, o(&off().switch_next_comm)).unwrap_or([0; 16]);
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
    }
    Ok(())
}
