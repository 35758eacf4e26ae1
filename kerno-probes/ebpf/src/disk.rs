//! Block I/O: request issue (`block_rq_issue`) to completion (`block_rq_complete`).
//!
//! BTF-typed tracepoints (`tp_btf`): both get the `struct request *` itself, so the
//! request's address is its key (no device/sector matching, and no record to build or
//! copy). A request in flight sits in a slot of a fixed array indexed by a hash of that
//! address: no hash-map insert or delete, no lock, no helper call. A completion whose slot
//! another request took meanwhile is counted as unmatched.

use aya_ebpf::{
    bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST},
    macros::{btf_tracepoint, map},
    maps::{Array, PerCpuArray, PerCpuHashMap},
    programs::BtfTracePointContext,
};
use kerno_probes_common::{BLK_SLOTS, BlkSlot, BlkStat, BlkStatKey, blk_op, lost};

use crate::shared::{btf_field, count_lost, hist_add, now, o, off};

#[map]
static BLK_INFLIGHT: Array<BlkSlot> = Array::with_max_entries(BLK_SLOTS, 0);
#[map]
/// Per device and op, per CPU. Not preallocated: each (device, op) seen costs ~4 KiB per
/// CPU when it first appears, instead of all 512 entries up front (2 MiB per CPU).
static BLK_STATS: PerCpuHashMap<BlkStatKey, BlkStat> =
    PerCpuHashMap::with_max_entries(512, BPF_F_NO_PREALLOC);
/// Never written: the zeroed source for inserting a new `BlkStat` (too big for the stack).
#[map]
static BLK_ZERO: PerCpuArray<BlkStat> = PerCpuArray::with_max_entries(1, 0);

/// `REQ_OP_*` (the low 8 bits of `cmd_flags`) as Kerno's [`blk_op`], as the classic
/// tracepoints' `rwbs` letters name them: secure erase is a discard, and a write with a
/// preflush is a write.
#[inline(always)]
fn req_op(cmd_flags: u32) -> u32 {
    match cmd_flags & 0xff {
        0 => blk_op::READ,
        1 => blk_op::WRITE,
        2 => blk_op::FLUSH,
        3 | 5 => blk_op::DISCARD,
        _ => blk_op::OTHER,
    }
}

/// The slot of request `rq`: a multiplicative hash of its address (requests of one queue
/// sit at a fixed stride, which a plain modulo would fold onto few slots).
///
/// The verifier allows no arithmetic on a kernel pointer but adding a constant, except,
/// for a program with CAP_PERFMON, subtracting another pointer, which yields a plain
/// number. So the address is first taken relative to a map's (a constant): the hash of a
/// constant shift of the address is as good a hash of it.
#[inline(always)]
fn slot_of(rq: *const u8) -> u32 {
    let base = core::ptr::addr_of!(BLK_INFLIGHT) as *const u8;
    let rel = (rq as u64).wrapping_sub(base as u64);
    // Keeps the compiler from folding the subtraction into the multiplication.
    let rel = core::hint::black_box(rel);
    (rel.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 40) as u32 % BLK_SLOTS
}

// block_rq_issue(struct request *rq)

#[btf_tracepoint(function = "block_rq_issue")]
pub fn block_rq_issue(ctx: BtfTracePointContext) -> i32 {
    let rq: *const u8 = ctx.arg(0);
    let o_ = off();
    let cmd_flags: u32 = btf_field(rq, o(&o_.rq_cmd_flags));
    let bytes: u32 = btf_field(rq, o(&o_.rq_data_len));
    // The whole disk's device number, as the classic tracepoint's `dev`:
    // rq->q->disk, MKDEV(major, first_minor). A request without a disk reads 0.
    let q: *const u8 = btf_field::<u64>(rq, o(&o_.rq_q)) as *const u8;
    let disk: *const u8 = btf_field::<u64>(q, o(&o_.q_disk)) as *const u8;
    let major: i32 = btf_field(disk, o(&o_.disk_major));
    let minor: i32 = btf_field(disk, o(&o_.disk_first_minor));
    let Some(slot) = BLK_INFLIGHT.get_ptr_mut(slot_of(rq)) else {
        return 0;
    };
    // SAFETY: a map value (see `shared`'s safety patterns). A slot held by a request still
    // in flight is taken over: that request's completion will not match and is counted.
    unsafe {
        (*slot).rq = rq as u64;
        (*slot).ts = now();
        (*slot).bytes = bytes;
        (*slot).dev = ((major as u32) << 20) | (minor as u32 & 0xf_ffff);
        (*slot).op = req_op(cmd_flags);
    }
    0
}

// block_rq_complete(struct request *rq, blk_status_t error, unsigned int nr_bytes)

#[btf_tracepoint(function = "block_rq_complete")]
pub fn block_rq_complete(ctx: BtfTracePointContext) -> i32 {
    let rq: *const u8 = ctx.arg(0);
    let error: u64 = ctx.arg(1);
    let Some(slot) = BLK_INFLIGHT.get_ptr_mut(slot_of(rq)) else {
        return 0;
    };
    // SAFETY: a map value (see `shared`'s safety patterns); copied out, then freed.
    let (srq, ts, bytes, dev, op) = unsafe {
        (
            (*slot).rq,
            (*slot).ts,
            (*slot).bytes,
            (*slot).dev,
            (*slot).op,
        )
    };
    if srq != rq as u64 {
        count_lost(lost::BLK_UNMATCHED);
        return 0;
    }
    // SAFETY: as above. A request completed in parts matches its first completion only.
    unsafe { (*slot).rq = 0 };
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
            return 0;
        }
    }
    if let Some(s) = st {
        // SAFETY: a map value (see `shared`'s safety patterns), this CPU's own.
        unsafe {
            (*s).count += 1;
            (*s).bytes += bytes as u64;
            if error & 0xff != 0 {
                (*s).errors += 1;
            }
            hist_add(&mut (*s).hist, lat);
        }
    }
    0
}

// The floor of this path: empty programs on the same two tracepoints, attached the same
// way, which the product never loads (`kerno-floor --disk`, mode `floor-disk`).

#[btf_tracepoint(function = "block_rq_issue")]
pub fn floor_block_rq_issue(_ctx: BtfTracePointContext) -> i32 {
    0
}

#[btf_tracepoint(function = "block_rq_complete")]
pub fn floor_block_rq_complete(_ctx: BtfTracePointContext) -> i32 {
    0
}
