//! What every domain's programs share: the read-only globals the loader sets, the
//! lost-sample counters, atomic and histogram adds, and one-copy reads of classic
//! tracepoint records.
//!
//! # Safety patterns
//!
//! Every `unsafe` block in these programs is one of a few patterns. Those that need no
//! context are wrapped once here, behind a safe function ([`now`], [`cgroup_id`],
//! [`tp_read`], [`btf_field`], [`cfg`], [`o`]), with the reason at the wrapper. What stays at
//! the call sites is the map-value pattern, whose blocks cite it:
//!
//! **Map values.** A pointer from a map lookup (`get_ptr_mut`, `get_ptr`, `get`) is
//! non-null, aligned for the value type and points into the map's own memory, which stays
//! a valid value of that type for the whole program run: array elements are never freed,
//! and a hash map frees a deleted or LRU-evicted element only after an RCU grace period
//! (programs run inside an RCU read section) or hands it, still a value of the same type,
//! to another key. Per-CPU maps are touched by one CPU at a time. Values of maps shared by
//! all CPUs may be touched by others at the same time: their sums use [`atomic_add`], and a
//! plain write (a max, a timestamp, a flag) may race with another and at worst loses that
//! update, never memory safety.

use core::intrinsics::{AtomicOrdering, atomic_xadd};

use aya_ebpf::{
    helpers::{bpf_get_current_cgroup_id, bpf_ktime_get_ns},
    macros::map,
    maps::PerCpuArray,
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
    // SAFETY: a volatile read through a reference to a static (valid and aligned), so the
    // compiler does not fold the default above: the loader rewrites it before loading.
    unsafe { core::ptr::read_volatile(&CONFIG) }
}
#[inline(always)]
pub(crate) fn off() -> &'static TpOffsets {
    // Volatile reads of each field keep the compiler from folding the defaults.
    &OFFSETS
}
#[inline(always)]
pub(crate) fn o(field: &u32) -> usize {
    // SAFETY: as in `cfg`: a volatile read through a reference.
    unsafe { core::ptr::read_volatile(field) as usize }
}

// ---- helpers ----------------------------------------------------------------------------

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

/// Types for which any bytes are a valid value, so a copy of kernel bytes can be read as
/// one: the integers and byte arrays the programs read out of tracepoint records.
pub(crate) trait Plain: Copy {}
impl Plain for u16 {}
impl Plain for u32 {}
impl Plain for i32 {}
impl Plain for u64 {}
impl Plain for i64 {}
impl<const N: usize> Plain for [u8; N] {}

/// The field of type `T` at byte `off` of a classic tracepoint's record (aya's `read_at`:
/// one `bpf_probe_read_kernel` call).
#[inline(always)]
pub(crate) fn tp_read<T: Plain>(ctx: &TracePointContext, off: usize) -> Result<T, i32> {
    // SAFETY: `read_at` copies with `bpf_probe_read_kernel`, which checks the address and
    // returns an error rather than faulting; `T: Plain` makes any bytes copied a valid `T`.
    unsafe { ctx.read_at(off) }
}

/// The field of type `T` at byte `off` of a kernel struct that a BTF-typed tracepoint
/// passed a pointer to (a `task_struct *`, a `struct request *`), or of a struct one of its
/// pointer fields points to: one plain load. `off` comes from the loader's BTF lookup
/// (`OFFSETS`), a constant the verifier checks against the kernel's own BTF: the load must
/// fall inside a member of that type, and a load through a pointer the kernel may not
/// vouch for (NULL, or freed) is made as a probe read that yields 0 instead of faulting.
#[inline(always)]
pub(crate) fn btf_field<T: Plain>(ptr: *const u8, off: usize) -> T {
    // SAFETY: the verifier types `ptr` from BTF (PTR_TO_BTF_ID) and rewrites this load as
    // a checked one (BPF_PROBE_MEM) when the pointer may be invalid; `T: Plain` makes any
    // bytes a valid `T`.
    unsafe { core::ptr::read_volatile(ptr.wrapping_add(off) as *const T) }
}

#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(lost::N, 0);

/// Adds one to a [`lost`] counter: called only where something could not be recorded.
#[inline(always)]
pub(crate) fn count_lost(which: u32) {
    if let Some(p) = LOST.get_ptr_mut(which) {
        // SAFETY: a map value (see the module's safety patterns).
        unsafe { *p += 1 };
    }
}

/// Adds one to an `INSERTED_*` counter of [`lost`]: a new key went into a grow-only LRU
/// map (called only on that branch, which already pays for the insert).
#[inline(always)]
pub(crate) fn count_inserted(which: u32) {
    count_lost(which);
}

/// Adds one sample of value `v` to a per-CPU histogram. `h` is a map value (see the
/// module's safety patterns).
#[inline(always)]
pub(crate) fn hist_add(h: *mut Hist, v: u64) {
    let b = hist::bucket(v);
    if b < hist::BUCKETS {
        // SAFETY: `h` is a map value, and `b` is in bounds.
        unsafe { (*h).buckets[b] += 1 };
    }
}

/// Adds `n` samples of value `v` to a histogram shared by all CPUs. `h` is a map value
/// (see the module's safety patterns).
#[inline(always)]
pub(crate) fn hist_add_shared(h: *mut Hist, v: u64, n: u64) {
    let b = hist::bucket(v);
    if b < hist::BUCKETS {
        // SAFETY: `h` is a map value, and `b` is in bounds.
        atomic_add(unsafe { &mut (*h).buckets[b] }, n);
    }
}

/// An atomic add (BPF_ATOMIC | BPF_ADD) for maps shared by all CPUs. The BPF target has
/// no compare-and-swap, so `AtomicU64::fetch_add` is not available; the intrinsic is.
/// `p` is a `u64` inside a map value (see the module's safety patterns).
#[inline(always)]
pub(crate) fn atomic_add(p: *mut u64, v: u64) {
    // The return value stays unused: the generic BPF CPU has no fetch-and-add.
    // SAFETY: `p` is an aligned `u64` of a map value, and every CPU changes it only with
    // atomic adds.
    unsafe { atomic_xadd::<u64, u64, { AtomicOrdering::Relaxed }>(p, v) };
}
