//! `kerno trace disk` (biosnoop): a block request from insert (`block_rq_insert`, when it
//! is queued) and issue (`block_rq_issue`) to completion (`block_rq_complete`). The task
//! is recorded where the request enters the block layer (insert, else issue), so the line
//! names who asked for the I/O, not the context that completed it.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid},
    macros::{map, tracepoint},
    maps::{LruHashMap, RingBuf},
    programs::TracePointContext,
};
use kerno_probes_common::{DiskEvent, blk_op, stream_flag, stream_stat};

use crate::shared::{comm_matches, count, emit, filter, now, o, tp, tp_read};

/// A request in flight (key: device and first sector).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Key {
    sector: u64,
    dev: u32,
    pad: u32,
}

/// What is known of a request in flight.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Start {
    insert_ts: u64,
    issue_ts: u64,
    bytes: u32,
    pid: u32,
    comm: [u8; 16],
}

#[map]
static DISK_STREAM_START: LruHashMap<Key, Start> = LruHashMap::with_max_entries(16384, 0);
#[map]
static DISK_EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

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

/// Whether the device, op and task filters let this request through.
#[inline(always)]
fn wanted(dev: u32, op: u32, comm: &[u8; 16]) -> bool {
    let f = filter();
    if f.dev != 0 && dev != f.dev {
        return false;
    }
    if f.ops != 0 && f.ops & (1 << op) == 0 {
        return false;
    }
    if f.flags & stream_flag::COMM != 0 && !comm_matches(comm, &f.comm) {
        return false;
    }
    true
}

#[tracepoint]
pub fn stream_block_rq_insert(ctx: TracePointContext) -> u32 {
    let _ = try_insert(&ctx);
    0
}

#[inline(always)]
fn try_insert(ctx: &TracePointContext) -> Result<(), i64> {
    let t = tp();
    let dev: u32 = tp_read(ctx, o(&t.ins_dev))?;
    let sector: u64 = tp_read(ctx, o(&t.ins_sector))?;
    let rwbs: [u8; 8] = tp_read(ctx, o(&t.ins_rwbs))?;
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    if !wanted(dev, rwbs_op(&rwbs), &comm) {
        count(stream_stat::FILTERED);
        return Ok(());
    }
    let start = Start {
        insert_ts: now(),
        issue_ts: 0,
        bytes: 0,
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        comm,
    };
    let key = Key {
        sector,
        dev,
        pad: 0,
    };
    if DISK_STREAM_START.insert(&key, &start, 0).is_err() {
        // This request's line can never be shown: count it lost, as a full ring does.
        count(stream_stat::LOST);
    }
    Ok(())
}

#[tracepoint]
pub fn stream_block_rq_issue(ctx: TracePointContext) -> u32 {
    let _ = try_issue(&ctx);
    0
}

#[inline(always)]
fn try_issue(ctx: &TracePointContext) -> Result<(), i64> {
    let t = tp();
    let dev: u32 = tp_read(ctx, o(&t.iss_dev))?;
    let sector: u64 = tp_read(ctx, o(&t.iss_sector))?;
    let bytes: u32 = tp_read(ctx, o(&t.iss_bytes))?;
    let key = Key {
        sector,
        dev,
        pad: 0,
    };
    let ts = now();
    if let Some(s) = DISK_STREAM_START.get_ptr_mut(&key) {
        // Queued first: the insert named the task.
        // SAFETY: a map value (see `shared`'s safety patterns).
        unsafe {
            (*s).issue_ts = ts;
            (*s).bytes = bytes;
        }
        return Ok(());
    }
    let rwbs: [u8; 8] = tp_read(ctx, o(&t.iss_rwbs))?;
    let comm = bpf_get_current_comm().unwrap_or([0; 16]);
    if !wanted(dev, rwbs_op(&rwbs), &comm) {
        count(stream_stat::FILTERED);
        return Ok(());
    }
    let start = Start {
        insert_ts: 0,
        issue_ts: ts,
        bytes,
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        comm,
    };
    if DISK_STREAM_START.insert(&key, &start, 0).is_err() {
        count(stream_stat::LOST);
    }
    Ok(())
}

#[tracepoint]
pub fn stream_block_rq_complete(ctx: TracePointContext) -> u32 {
    let _ = try_complete(&ctx);
    0
}

#[inline(always)]
fn try_complete(ctx: &TracePointContext) -> Result<(), i64> {
    let t = tp();
    let dev: u32 = tp_read(ctx, o(&t.cmp_dev))?;
    let sector: u64 = tp_read(ctx, o(&t.cmp_sector))?;
    let key = Key {
        sector,
        dev,
        pad: 0,
    };
    // SAFETY: a map value (see `shared`'s safety patterns), copied out before the entry
    // is removed.
    let Some(start) = (unsafe { DISK_STREAM_START.get(&key) }).copied() else {
        return Ok(());
    };
    // Fails only when another CPU removed it first.
    let _ = DISK_STREAM_START.remove(&key);
    if start.issue_ts == 0 {
        return Ok(());
    }
    let ts = now();
    let queue = if start.insert_ts == 0 {
        0
    } else {
        start.issue_ts.wrapping_sub(start.insert_ts)
    };
    let service = ts.wrapping_sub(start.issue_ts);
    if queue + service < filter().min_ns {
        count(stream_stat::FILTERED);
        return Ok(());
    }
    let rwbs: [u8; 8] = tp_read(ctx, o(&t.cmp_rwbs))?;
    let ev = DiskEvent {
        ts_ns: ts,
        queue_ns: queue,
        service_ns: service,
        sector,
        dev,
        bytes: start.bytes,
        op: rwbs_op(&rwbs),
        error: tp_read(ctx, o(&t.cmp_error)).unwrap_or(0),
        pid: start.pid,
        pad: 0,
        comm: start.comm,
    };
    emit(&DISK_EVENTS, &ev);
    Ok(())
}
