//! What every domain's programs share: the read-only globals the loader sets, the
//! lost-sample counters, atomic and histogram adds, and one-copy reads of classic
//! tracepoint records.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    EbpfContext, helpers::bpf_probe_read_kernel_buf, macros::map, maps::PerCpuArray,
    programs::TracePointContext,
};
use kerno_probes_common::{Config, Hist, TpOffsets, hist, lost};

// ---- read-only globals, set by the loader ----------------------------------------------

#[unsafe(no_mangle)]
pub(crate) static CONFIG: Config = Config {
    self_tgid: 0,
    pad: 0,
    slow_syscall_ns: 1_000_000,
    slow_runq_ns: 1_000_000,
    slow_rtt_ns: 5_000_000,
    slow_connect_ns: 50_000_000,
};
#[unsafe(no_mangle)]
static OFFSETS: TpOffsets = TpOffsets::NONE;

#[inline(always)]
pub(crate) fn cfg() -> Config {
    unsafe { core::ptr::read_volatile(&CONFIG) }
}
#[inline(always)]
pub(crate) fn off() -> &'static TpOffsets {
    // Volatile reads of each field keep the compiler from folding the defaults.
    &OFFSETS
}
#[inline(always)]
pub(crate) fn o(field: &u32) -> usize {
    unsafe { core::ptr::read_volatile(field) as usize }
}

// ---- helpers -----------------------------------------------------------------------------

#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(lost::N, 0);

#[inline(always)]
pub(crate) fn count_lost(which: u32) {
    if let Some(p) = LOST.get_ptr_mut(which) {
        unsafe { *p += 1 };
    }
}

#[inline(always)]
pub(crate) fn hist_add(h: *mut Hist, v: u64) {
    let b = hist::bucket(v);
    if b < hist::BUCKETS {
        unsafe { (*h).buckets[b] += 1 };
    }
}

/// Adds `n` samples of value `v` to a histogram shared by all CPUs.
#[inline(always)]
pub(crate) fn hist_add_shared(h: *mut Hist, v: u64, n: u64) {
    let b = hist::bucket(v);
    if b < hist::BUCKETS {
        atomic_add(unsafe { &mut (*h).buckets[b] }, n);
    }
}

/// An atomic add (BPF_ATOMIC | BPF_ADD) for maps shared by all CPUs. The BPF target has
/// no compare-and-swap, so `AtomicU64::fetch_add` is not available; the intrinsic is.
#[inline(always)]
pub(crate) fn atomic_add(p: *mut u64, v: u64) {
    // The return value stays unused: the generic BPF CPU has no fetch-and-add.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(p, v) };
}

/// Bytes of a classic tracepoint's record copied at once (the fields Kerno reads all sit
/// in the first 64 bytes of theirs).
const RECORD_MAX: usize = 96;

/// A tracepoint record's first bytes, copied with one `bpf_probe_read_kernel`: reading
/// each field with its own (aya's `read_at`) costs a helper call per field. Offsets
/// come from `OFFSETS`, which the verifier sees as constants (a frozen read-only map),
/// so every read below is checked at load time like a fixed offset.
#[repr(C, align(8))]
pub(crate) struct Record {
    buf: [u8; RECORD_MAX],
}

impl Record {
    /// Copies the record's first `span` bytes (`span` covers every field to be read).
    #[inline(always)]
    pub(crate) fn read(ctx: &TracePointContext, span: usize) -> Option<Record> {
        if span == 0 || span > RECORD_MAX {
            return None;
        }
        let mut r = Record {
            buf: [0; RECORD_MAX],
        };
        unsafe { bpf_probe_read_kernel_buf(ctx.as_ptr() as *const u8, &mut r.buf[..span]) }.ok()?;
        Some(r)
    }

    /// The field of type `T` at byte `off` (`None` when outside or misaligned).
    #[inline(always)]
    pub(crate) fn get<T: Copy>(&self, off: usize) -> Option<T> {
        if off + core::mem::size_of::<T>() > RECORD_MAX || off % core::mem::align_of::<T>() != 0 {
            return None;
        }
        Some(unsafe { core::ptr::read(self.buf.as_ptr().add(off) as *const T) })
    }
}
