//! `kerno trace sched` (runqslower): a task woken (`sched_wakeup`, `sched_wakeup_new`) or
//! preempted (`sched_switch` with a runnable previous task) waits on its run queue until
//! `sched_switch` gives it the CPU; a wait of at least the threshold is one [`SchedEvent`],
//! with the CPU and the task that ran before it.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_smp_processor_id},
    macros::{map, tracepoint},
    maps::{Array, RingBuf},
    programs::TracePointContext,
};
use kerno_probes_common::{SchedEvent, THREAD_SLOTS, stream_stat};

use crate::shared::{count, emit, filter, now, o, tp, tp_read};

/// A runnable task's enqueue time (slot: thread id modulo the slot count).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Waiting {
    ts: u64,
    tid: u32,
    pad: u32,
}

#[map]
static SCHED_STREAM_SLOTS: Array<Waiting> = Array::with_max_entries(THREAD_SLOTS, 0);
#[map]
static SCHED_EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

/// `TASK_REPORT_MAX`: sched_switch reports a preempted task's state as this bit.
const TASK_REPORT_MAX: i64 = 0x100;

#[inline(always)]
fn enqueue(tid: u32) {
    if tid == 0 {
        return;
    }
    if let Some(s) = SCHED_STREAM_SLOTS.get_ptr_mut(tid % THREAD_SLOTS) {
        // SAFETY: a map value (see `shared`'s safety patterns).
        unsafe {
            (*s).tid = tid;
            (*s).ts = now();
        }
    }
}

#[tracepoint]
pub fn stream_sched_wakeup(ctx: TracePointContext) -> u32 {
    let pid: i32 = tp_read(&ctx, o(&tp().wakeup_pid)).unwrap_or(0);
    enqueue(pid as u32);
    0
}

#[tracepoint]
pub fn stream_sched_wakeup_new(ctx: TracePointContext) -> u32 {
    let pid: i32 = tp_read(&ctx, o(&tp().wakeup_pid)).unwrap_or(0);
    enqueue(pid as u32);
    0
}

#[tracepoint]
pub fn stream_sched_switch(ctx: TracePointContext) -> u32 {
    let _ = try_switch(&ctx);
    0
}

#[inline(always)]
fn try_switch(ctx: &TracePointContext) -> Result<(), i64> {
    let t = tp();
    let prev: i32 = tp_read(ctx, o(&t.switch_prev_pid))?;
    let state: i64 = tp_read(ctx, o(&t.switch_prev_state))?;
    // Switched out while still runnable (preempted): it waits on the run queue.
    if state == 0 || state & TASK_REPORT_MAX != 0 {
        enqueue(prev as u32);
    }
    let next: i32 = tp_read(ctx, o(&t.switch_next_pid))?;
    let next = next as u32;
    if next == 0 {
        return Ok(());
    }
    let Some(s) = SCHED_STREAM_SLOTS.get_ptr_mut(next % THREAD_SLOTS) else {
        return Ok(());
    };
    // SAFETY: a map value (see `shared`'s safety patterns); as below.
    let (stid, ts) = unsafe { ((*s).tid, (*s).ts) };
    if ts == 0 || stid != next {
        return Ok(());
    }
    // SAFETY: as above.
    unsafe { (*s).ts = 0 };
    let n = now();
    let delay = n.wrapping_sub(ts);
    let f = filter();
    if delay < f.min_ns {
        count(stream_stat::FILTERED);
        return Ok(());
    }
    // sched_switch runs as the previous task: its pid and comm are the current task's.
    let ev = SchedEvent {
        ts_ns: n,
        delay_ns: delay,
        tid: next,
        // SAFETY: a helper that takes no argument.
        cpu: unsafe { bpf_get_smp_processor_id() },
        prev_tid: prev as u32,
        prev_pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        comm: tp_read(ctx, o(&t.switch_next_comm)).unwrap_or([0; 16]),
        prev_comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    emit(&SCHED_EVENTS, &ev);
    Ok(())
}
