//! The scheduler: run-queue delay (wakeup to running), per thread.

/// Per-thread scratch slot: a wakeup whose thread has not run yet.
///
/// Slots are indexed by `tid % THREAD_SLOTS` and carry the tid, so two live threads that
/// share a slot are detected (and counted as lost samples) rather than mixed up.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ThreadSlot {
    /// Thread id that owns the slot; 0 when empty.
    pub tid: u32,
    /// Unused; always 0.
    pub nr: u32,
    /// Start timestamp, `bpf_ktime_get_ns`.
    pub ts: u64,
}

/// Per-thread run-queue delay above the slow threshold (key: tid).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SchedDelayVal {
    /// Delays recorded.
    pub count: u64,
    /// Sum of the delays, ns.
    pub total_ns: u64,
    /// Longest delay, ns.
    pub max_ns: u64,
    /// Command name of the thread.
    pub comm: [u8; 16],
}

#[cfg(feature = "user")]
pod!(ThreadSlot, SchedDelayVal);
