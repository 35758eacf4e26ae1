//! What the stream programs share: the filter and offsets globals, the per-CPU stream
//! counters, and the one way an event reaches a ring ([`emit`]).
//!
//! Safety patterns as in the aggregating programs (`../shared.rs`): a pointer from a map
//! lookup is non-null, aligned and points at a value of its type for the whole program
//! run; per-CPU values are touched by one CPU at a time.

use aya_ebpf::{
    bindings::{BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
    helpers::{
        bpf_get_current_ancestor_cgroup_id, bpf_get_current_cgroup_id, bpf_get_current_task_btf,
        bpf_ktime_get_ns,
    },
    macros::map,
    maps::{PerCpuArray, RingBuf},
    programs::TracePointContext,
};
use kerno_probes_common::{StreamFilter, StreamOffsets, TpOffsets, stream_stat};

#[unsafe(no_mangle)]
static STREAM: StreamFilter = StreamFilter::NONE;
#[unsafe(no_mangle)]
static STREAM_OFFSETS: TpOffsets = TpOffsets::NONE;
#[unsafe(no_mangle)]
static STREAM_TP: StreamOffsets = StreamOffsets::NONE;

#[map]
static STREAM_STATS: PerCpuArray<u64> = PerCpuArray::with_max_entries(stream_stat::N, 0);

/// The stream's filter, to read one field at a time with [`fv`] (cheaper on a hot path
/// than copying all of it with [`filter`]).
#[inline(always)]
pub(crate) fn filter_ref() -> &'static StreamFilter {
    &STREAM
}

/// A field of [`filter_ref`], read so the compiler does not fold the default.
#[inline(always)]
pub(crate) fn fv<T: Copy>(field: &T) -> T {
    // SAFETY: a volatile read through a reference into a static (valid and aligned).
    unsafe { core::ptr::read_volatile(field) }
}

/// Whether the current task's command name is the filter's: two loads from the task's
/// own `comm` (at the offset the loader read from BTF) compared under the filter's mask,
/// instead of a helper copying the name out byte by byte.
#[inline(always)]
pub(crate) fn current_comm_matches() -> bool {
    // SAFETY: a helper that takes no argument; it returns the current task, which the
    // verifier types from BTF as a trusted pointer.
    let task = unsafe { bpf_get_current_task_btf() } as *const u8;
    let off = o(&tp().task_comm);
    let f = filter_ref();
    // SAFETY: loads inside the task's `comm` (16 bytes at `off`), which the verifier
    // checks against the kernel's BTF; any bytes are a valid u64.
    let (c0, c1) = unsafe {
        (
            core::ptr::read_unaligned(task.wrapping_add(off) as *const u64),
            core::ptr::read_unaligned(task.wrapping_add(off + 8) as *const u64),
        )
    };
    let word = |b: &[u8; 16], i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        u64::from_le_bytes(w)
    };
    let (want, mask) = (fv(&f.comm), fv(&f.comm_mask));
    c0 & word(&mask, 0) == word(&want, 0) && c1 & word(&mask, 8) == word(&want, 8)
}

/// The stream's filter.
#[inline(always)]
pub(crate) fn filter() -> StreamFilter {
    // SAFETY: a volatile read through a reference to a static (valid and aligned), so the
    // compiler does not fold the default: the loader rewrites it before loading.
    unsafe { core::ptr::read_volatile(&STREAM) }
}

/// The classic tracepoints' field offsets, set by the loader.
#[inline(always)]
pub(crate) fn offsets() -> &'static TpOffsets {
    // Volatile reads of each field (`o`) keep the compiler from folding the defaults.
    &STREAM_OFFSETS
}

/// The sched and tcp streams' field offsets, set by the loader.
#[inline(always)]
pub(crate) fn tp() -> &'static StreamOffsets {
    &STREAM_TP
}

/// One offset of [`offsets`], read so the compiler does not fold the default.
#[inline(always)]
pub(crate) fn o(field: &u32) -> usize {
    // SAFETY: a volatile read through a reference into a static (valid and aligned).
    unsafe { core::ptr::read_volatile(field) as usize }
}

/// Adds one to a stream counter ([`stream_stat`]).
#[inline(always)]
pub(crate) fn count(which: u32) {
    if let Some(p) = STREAM_STATS.get_ptr_mut(which) {
        // SAFETY: a map value (see the module's safety patterns), this CPU's own.
        unsafe { *p += 1 };
    }
}

/// `bpf_ktime_get_ns`: the monotonic clock, ns.
#[inline(always)]
pub(crate) fn now() -> u64 {
    // SAFETY: a helper that takes no argument; `unsafe` only because every helper call is.
    unsafe { bpf_ktime_get_ns() }
}

/// `bpf_get_current_cgroup_id`: the cgroup v2 id of the current task.
#[inline(always)]
pub(crate) fn cgroup_id() -> u64 {
    // SAFETY: as in `now`: a helper that takes no argument.
    unsafe { bpf_get_current_cgroup_id() }
}

/// `bpf_get_current_ancestor_cgroup_id`: the cgroup v2 id of the current task's ancestor
/// at `level` (the root is level 0; 0 when the task is not that deep).
#[inline(always)]
pub(crate) fn ancestor_cgroup_id(level: u32) -> u64 {
    // SAFETY: as in `now`: a helper that takes a plain integer.
    unsafe { bpf_get_current_ancestor_cgroup_id(level as i32) }
}

/// Types for which any bytes are a valid value.
pub(crate) trait Plain: Copy {}
impl Plain for u16 {}
impl Plain for u32 {}
impl Plain for i32 {}
impl Plain for u64 {}
impl Plain for i64 {}
impl<const N: usize> Plain for [u8; N] {}

/// The field of type `T` at byte `off` of a classic tracepoint's record.
#[inline(always)]
pub(crate) fn tp_read<T: Plain>(ctx: &TracePointContext, off: usize) -> Result<T, i64> {
    // The record-read error is a negative errno; widened for `?` in the programs.
    // SAFETY: `read_at` copies with `bpf_probe_read_kernel`, which checks the address and
    // returns an error rather than faulting; `T: Plain` makes any bytes copied a valid `T`.
    unsafe { ctx.read_at(off) }.map_err(i64::from)
}

/// Writes `ev` to `ring`, or counts it lost when the ring is full. Wakeups are batched:
/// the consumer is woken once `wakeup_bytes` are queued (it also drains on a timer), or,
/// with `wakeup_bytes` 0, when the kernel's adaptive scheme says so.
#[inline(always)]
pub(crate) fn emit<T>(ring: &RingBuf, ev: &T) {
    let batch = filter().wakeup_bytes;
    let flags = if batch == 0 {
        0
    } else if ring.query(BPF_RB_AVAIL_DATA as u64) + core::mem::size_of::<T>() as u64 >= batch {
        BPF_RB_FORCE_WAKEUP as u64
    } else {
        BPF_RB_NO_WAKEUP as u64
    };
    if ring.output::<T>(ev, flags).is_ok() {
        count(stream_stat::EMITTED);
    } else {
        count(stream_stat::LOST);
    }
}

/// Whether the current task's command name is the filter's (`comm` NUL-padded).
#[inline(always)]
pub(crate) fn comm_matches(comm: &[u8; 16], want: &[u8; 16]) -> bool {
    let mut i = 0;
    while i < 16 {
        if comm[i] != want[i] {
            return false;
        }
        if comm[i] == 0 {
            return true;
        }
        i += 1;
    }
    true
}
