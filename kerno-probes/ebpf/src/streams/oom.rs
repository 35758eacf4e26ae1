//! `kerno watch oom`: one [`OomEvent`] per kill at `oom:mark_victim`, in a small ring of
//! its own (a kill is rare and must never be crowded out by another stream's flood).

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid},
    macros::{map, tracepoint},
    maps::RingBuf,
    programs::TracePointContext,
};
use kerno_probes_common::OomEvent;

use crate::shared::{cgroup_id, emit, now, o, offsets, tp_read};

#[map]
static OOM_EVENTS: RingBuf = RingBuf::with_byte_size(16 * 4096, 0);

#[inline(always)]
fn opt_u64(ctx: &TracePointContext, off: usize) -> u64 {
    if off == u32::MAX as usize {
        return 0;
    }
    tp_read::<u64>(ctx, off).unwrap_or(0)
}

#[tracepoint]
pub fn stream_mark_victim(ctx: TracePointContext) -> u32 {
    let _ = try_mark_victim(&ctx);
    0
}

#[inline(always)]
fn try_mark_victim(ctx: &TracePointContext) -> Result<(), i64> {
    let of = offsets();
    let pid: i32 = tp_read(ctx, o(&of.oom_pid))?;
    let mut comm = [0u8; 16];
    let comm_off = o(&of.oom_comm);
    if comm_off != u32::MAX as usize {
        // __data_loc: the low 16 bits are the string's offset in the record.
        if let Ok(loc) = tp_read::<u32>(ctx, comm_off) {
            comm = tp_read(ctx, (loc & 0xffff) as usize).unwrap_or([0; 16]);
        }
    }
    let ev = OomEvent {
        ts_ns: now(),
        total_vm_kb: opt_u64(ctx, o(&of.oom_total_vm)),
        anon_rss_kb: opt_u64(ctx, o(&of.oom_anon_rss)),
        file_rss_kb: opt_u64(ctx, o(&of.oom_file_rss)),
        shmem_rss_kb: opt_u64(ctx, o(&of.oom_shmem_rss)),
        trigger_cgroup_id: cgroup_id(),
        pid: pid as u32,
        trigger_pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        comm,
        trigger_comm: bpf_get_current_comm().unwrap_or([0; 16]),
    };
    emit(&OOM_EVENTS, &ev);
    Ok(())
}
