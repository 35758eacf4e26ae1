//! OOM kills: a small ring of the latest kills.

/// An OOM kill, as recorded at `oom:mark_victim`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OomEntry {
    /// Sequence number (1-based) of this kill since the probes were loaded.
    pub seq: u64,
    /// `bpf_ktime_get_ns` at the kill.
    pub ts_ns: u64,
    /// Victim pid.
    pub pid: u32,
    /// Padding.
    pub pad: u32,
    /// Victim total VM, kB.
    pub total_vm_kb: u64,
    /// Victim anonymous RSS, kB.
    pub anon_rss_kb: u64,
    /// Victim file RSS, kB.
    pub file_rss_kb: u64,
    /// Victim shmem RSS, kB.
    pub shmem_rss_kb: u64,
    /// cgroup v2 id of the task that triggered the kill.
    pub cgroup_id: u64,
    /// Victim command name (empty when the kernel's tracepoint has no comm field).
    pub comm: [u8; 16],
}

/// Slots in the OOM kill ring; more kills than this between two reads are counted as lost.
pub const OOM_RING: u32 = 64;

#[cfg(feature = "user")]
pod!(OomEntry);
