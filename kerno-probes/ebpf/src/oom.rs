//! OOM kills (`oom:mark_victim`), kept in a small ring.

use aya_ebpf::{
    macros::{map, tracepoint},
    maps::Array,
    programs::TracePointContext,
};
use kerno_probes_common::{OOM_RING, OomEntry, lost};

use crate::shared::{cgroup_id, count_lost, now, o, off, tp_read};

#[map]
static OOM_SEQ: Array<u64> = Array::with_max_entries(1, 0);
#[map]
static OOM_KILLS: Array<OomEntry> = Array::with_max_entries(OOM_RING, 0);

#[inline(always)]
fn opt_u64(ctx: &TracePointContext, off: usize) -> u64 {
    if off == u32::MAX as usize {
        return 0;
    }
    tp_read::<u64>(ctx, off).unwrap_or(0)
}

#[tracepoint]
pub fn mark_victim(ctx: TracePointContext) -> u32 {
    if try_mark_victim(&ctx).is_err() {
        count_lost(lost::OOM_READ);
    }
    0
}

#[inline(always)]
fn try_mark_victim(ctx: &TracePointContext) -> Result<(), i64> {
    let o_ = off();
    let Some(seq_p) = OOM_SEQ.get_ptr_mut(0) else {
        return Ok(());
    };
    // OOM kills are serialised by the kernel's oom_lock, so a plain increment is exact.
    // SAFETY: a map value (see `shared`'s safety patterns).
    let seq = unsafe { *seq_p } + 1;
    // SAFETY: as above.
    unsafe { *seq_p = seq };
    let Some(e) = OOM_KILLS.get_ptr_mut((seq % OOM_RING as u64) as u32) else {
        return Ok(());
    };
    let pid: i32 = tp_read(ctx, o(&o_.oom_pid))?;
    let mut comm = [0u8; 16];
    let comm_off = o(&o_.oom_comm);
    if comm_off != u32::MAX as usize {
        // __data_loc: low 16 bits are the string's offset in the record.
        if let Ok(loc) = tp_read::<u32>(ctx, comm_off) {
            comm = tp_read(ctx, (loc & 0xffff) as usize).unwrap_or([0; 16]);
        }
    }
    // SAFETY: a map value (see `shared`'s safety patterns); the ring is written only under
    // the kernel's oom_lock.
    unsafe {
        (*e).seq = seq;
        (*e).ts_ns = now();
        (*e).pid = pid as u32;
        (*e).pad = 0;
        (*e).total_vm_kb = opt_u64(ctx, o(&o_.oom_total_vm));
        (*e).anon_rss_kb = opt_u64(ctx, o(&o_.oom_anon_rss));
        (*e).file_rss_kb = opt_u64(ctx, o(&o_.oom_file_rss));
        (*e).shmem_rss_kb = opt_u64(ctx, o(&o_.oom_shmem_rss));
        (*e).cgroup_id = cgroup_id();
        (*e).comm = comm;
    }
    Ok(())
}
