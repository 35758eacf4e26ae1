//! `kerno trace syscall`: `tp_btf/sys_enter` notes when a call that passes the task
//! filters (pid, syscall, comm, cgroup) starts; `tp_btf/sys_exit` applies the result
//! filters (errors only, minimum latency) and writes one [`SyscallEvent`] per match.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid},
    macros::{btf_tracepoint, map},
    maps::{Array, RingBuf},
    programs::BtfTracePointContext,
};
use kerno_probes_common::{MAX_SYSCALLS, SyscallEvent, THREAD_SLOTS, stream_flag, stream_stat};

use crate::shared::{
    ancestor_cgroup_id, cgroup_id, count, current_comm_matches, emit, filter, filter_ref, fv, now,
};

/// 1 per syscall number to trace, when the filter has [`stream_flag::SYSCALL_SET`].
#[unsafe(no_mangle)]
static STREAM_SYSCALLS: [u8; MAX_SYSCALLS] = [0; MAX_SYSCALLS];

#[inline(always)]
fn wanted(nr: usize) -> bool {
    // SAFETY: a volatile read through a reference to an element of a static (valid and
    // aligned), so the compiler does not fold the zeros: the loader rewrites them.
    unsafe { core::ptr::read_volatile(&STREAM_SYSCALLS[nr]) != 0 }
}

/// A call in flight on a thread (slot: the thread id modulo the slot count).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Slot {
    ts: u64,
    tid: u32,
    nr: u32,
}

#[map]
static SYSCALL_STREAM_SLOTS: Array<Slot> = Array::with_max_entries(THREAD_SLOTS, 0);
#[map]
static SYSCALL_EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

#[btf_tracepoint(function = "sys_enter")]
pub fn stream_sys_enter(ctx: BtfTracePointContext) -> i32 {
    // Field by field: most calls stop at the first test that fails.
    let f = filter_ref();
    let id = bpf_get_current_pid_tgid();
    let (tgid, tid) = ((id >> 32) as u32, id as u32);
    if tgid == fv(&f.self_tgid) || tid == 0 {
        return 0;
    }
    let pid = fv(&f.pid);
    if pid != 0 && tgid != pid {
        count(stream_stat::FILTERED);
        return 0;
    }
    let flags = fv(&f.flags);
    let nr: i64 = ctx.arg(1);
    if flags & stream_flag::SYSCALL_SET != 0
        && ((nr as u64) >= MAX_SYSCALLS as u64 || !wanted(nr as usize))
    {
        count(stream_stat::FILTERED);
        return 0;
    }
    if flags & stream_flag::COMM != 0 && !current_comm_matches() {
        count(stream_stat::FILTERED);
        return 0;
    }
    let cgroup = fv(&f.cgroup_id);
    if cgroup != 0 {
        let level = fv(&f.cgroup_level);
        let id = if level != 0 {
            ancestor_cgroup_id(level)
        } else {
            cgroup_id()
        };
        if id != cgroup {
            count(stream_stat::FILTERED);
            return 0;
        }
    }
    if let Some(s) = SYSCALL_STREAM_SLOTS.get_ptr_mut(tid % THREAD_SLOTS) {
        // SAFETY: a map value (see `shared`'s safety patterns). Two threads whose ids share
        // a slot overwrite each other's start; the exit checks the thread id.
        unsafe {
            (*s).tid = tid;
            (*s).nr = nr as u32;
            (*s).ts = now();
        }
    }
    0
}

#[btf_tracepoint(function = "sys_exit")]
pub fn stream_sys_exit(ctx: BtfTracePointContext) -> i32 {
    let id = bpf_get_current_pid_tgid();
    let tid = id as u32;
    let Some(s) = SYSCALL_STREAM_SLOTS.get_ptr_mut(tid % THREAD_SLOTS) else {
        return 0;
    };
    // SAFETY: a map value (see `shared`'s safety patterns); as below.
    let (stid, ts, nr) = unsafe { ((*s).tid, (*s).ts, (*s).nr) };
    if ts == 0 || stid != tid {
        return 0;
    }
    // SAFETY: as above.
    unsafe { (*s).ts = 0 };
    let f = filter();
    let ret: i64 = ctx.arg(1);
    let failed = ret < 0 && ret > -4096;
    if f.flags & stream_flag::ERRORS_ONLY != 0 && !failed {
        count(stream_stat::FILTERED);
        return 0;
    }
    let t = now();
    let lat = t.wrapping_sub(ts);
    if lat < f.min_ns {
        count(stream_stat::FILTERED);
        return 0;
    }
    let ev = SyscallEvent {
        ts_ns: t,
        lat_ns: lat,
        ret,
        cgroup_id: cgroup_id(),
        pid: (id >> 32) as u32,
        tid,
        nr,
        pad: 0,
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    emit(&SYSCALL_EVENTS, &ev);
    0
}
