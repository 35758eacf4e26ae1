//! Block I/O: request issue (`block_rq_issue`) to completion (`block_rq_complete`).

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST},
    macros::{map, tracepoint},
    maps::{LruHashMap, PerCpuArray, PerCpuHashMap},
    programs::TracePointContext,
};
use kerno_probes_common::{BlkStartKey, BlkStartVal, BlkStat, BlkStatKey, blk_op, lost};

use crate::shared::{Record, count_lost, hist_add, now, o, off};

#[map]
static BLK_START: LruHashMap<BlkStartKey, BlkStartVal> = LruHashMap::with_max_entries(16384, 0);
#[map]
/// Per device and op, per CPU. Not preallocated: each (device, op) seen costs ~4 KiB per
/// CPU when it first appears, instead of all 512 entries up front (2 MiB per CPU).
static BLK_STATS: PerCpuHashMap<BlkStatKey, BlkStat> =
    PerCpuHashMap::with_max_entries(512, BPF_F_NO_PREALLOC);
/// Never written: the zeroed source for inserting a new `BlkStat` (too big for the stack).
#[map]
static BLK_ZERO: PerCpuArray<BlkStat> = PerCpuArray::with_max_entries(1, 0);

#[inline(always)]
fn rwbs_op(rwbs: &[u8; 8]) -> u32 {
    let mut i = 0;
    while i < 4 {
        match rwbs[i] {
            b'R' => return blk_op::READ,
            b'W' => return blk_op::WRITE,
            b'D' => return blk_op::DISCARD,
            0 => break,
            _ => {}
        }
        i += 1;
    }
    if rwbs[0] == b'F' {
        blk_op::FLUSH
    } else {
        blk_op::OTHER
    }
}

#[tracepoint]
pub fn block_rq_issue(ctx: TracePointContext) -> u32 {
    if try_block_rq_issue(&ctx).is_err() {
        count_lost(lost::DISK_READ);
    }
    0
}

#[inline(always)]
fn try_block_rq_issue(ctx: &TracePointContext) -> Result<(), i64> {
    let o_ = off();
    let (o_dev, o_sector, o_bytes, o_rwbs) = (
        o(&o_.issue_dev),
        o(&o_.issue_sector),
        o(&o_.issue_bytes),
        o(&o_.issue_rwbs),
    );
    let span = (o_dev + 4)
        .max(o_sector + 8)
        .max(o_bytes + 4)
        .max(o_rwbs + 8);
    let rec = Record::read(ctx, span).ok_or(0i64)?;
    let dev: u32 = rec.get(o_dev).ok_or(0i64)?;
    let sector: u64 = rec.get(o_sector).ok_or(0i64)?;
    let bytes: u32 = rec.get(o_bytes).ok_or(0i64)?;
    let rwbs: [u8; 8] = rec.get(o_rwbs).ok_or(0i64)?;
    let key = BlkStartKey {
        dev,
        op: rwbs_op(&rwbs),
        sector,
    };
    let val = BlkStartVal {
        ts: now(),
        bytes: bytes as u64,
    };
    if BLK_START.insert(&key, &val, 0).is_err() {
        count_lost(lost::DISK_MAP_FULL);
    }
    Ok(())
}

#[tracepoint]
pub fn block_rq_complete(ctx: TracePointContext) -> u32 {
    if try_block_rq_complete(&ctx).is_err() {
        count_lost(lost::DISK_READ);
    }
    0
}

#[inline(always)]
fn try_block_rq_complete(ctx: &TracePointContext) -> Result<(), i64> {
    let o_ = off();
    let (o_dev, o_sector, o_error, o_rwbs) = (
        o(&o_.complete_dev),
        o(&o_.complete_sector),
        o(&o_.complete_error),
        o(&o_.complete_rwbs),
    );
    let span = (o_dev + 4)
        .max(o_sector + 8)
        .max(o_error + 4)
        .max(o_rwbs + 8);
    let rec = Record::read(ctx, span).ok_or(0i64)?;
    let dev: u32 = rec.get(o_dev).ok_or(0i64)?;
    let sector: u64 = rec.get(o_sector).ok_or(0i64)?;
    let error: i32 = rec.get(o_error).ok_or(0i64)?;
    let rwbs: [u8; 8] = rec.get(o_rwbs).ok_or(0i64)?;
    let op = rwbs_op(&rwbs);
    let key = BlkStartKey { dev, op, sector };
    // SAFETY: a map value (see `shared`'s safety patterns), copied out before the entry is
    // removed.
    let Some(start) = (unsafe { BLK_START.get(&key) }) else {
        count_lost(lost::BLK_UNMATCHED);
        return Ok(());
    };
    let (ts, bytes) = (start.ts, start.bytes);
    // Fails only when another CPU removed the same entry first: nothing is lost.
    let _ = BLK_START.remove(&key);
    let lat = now().wrapping_sub(ts);
    let skey = BlkStatKey { dev, op };
    let mut st = BLK_STATS.get_ptr_mut(&skey);
    if st.is_none() {
        if let Some(z) = BLK_ZERO.get_ptr(0) {
            // An error is another CPU's insert of the same key (found below) or a full map.
            // SAFETY: a map value (see `shared`'s safety patterns), never written.
            let _ = BLK_STATS.insert(&skey, unsafe { &*z }, BPF_NOEXIST as u64);
        }
        st = BLK_STATS.get_ptr_mut(&skey);
        if st.is_none() {
            count_lost(lost::DISK_MAP_FULL);
        }
    }
    if let Some(s) = st {
        // SAFETY: a map value (see `shared`'s safety patterns), this CPU's own.
        unsafe {
            (*s).count += 1;
            (*s).bytes += bytes;
            if error != 0 {
                (*s).errors += 1;
            }
            hist_add(&mut (*s).hist, lat);
        }
    }
    Ok(())
}
