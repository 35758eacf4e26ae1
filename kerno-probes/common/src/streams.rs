//! Live streams (`kerno trace ...`, `kerno watch ...`): the filter the loader hands to the
//! stream programs as a read-only global, the per-CPU stream counters, and one event type
//! per stream. The stream programs live in their own object (`kerno-streams.bpf.o`), with
//! their own ring buffers, and are attached only while a stream runs: the aggregating
//! programs `doctor` and the agent attach are not touched by them.

/// Indexes into the per-CPU stream counters (`STREAM_STATS`). They only grow.
pub mod stream_stat {
    /// A matching event found the ring buffer full and was dropped.
    pub const LOST: u32 = 0;
    /// An event the probes saw and the in-kernel filters dropped (no ring traffic).
    pub const FILTERED: u32 = 1;
    /// Events written to the ring buffer.
    pub const EMITTED: u32 = 2;
    /// Number of counters.
    pub const N: u32 = 4;
}

/// `StreamFilter::flags` bits.
pub mod stream_flag {
    /// Only failed calls (syscall stream).
    pub const ERRORS_ONLY: u32 = 1;
    /// `STREAM_SYSCALLS` selects the syscalls (syscall stream).
    pub const SYSCALL_SET: u32 = 2;
    /// Match `comm` (syscall, disk, sched streams).
    pub const COMM: u32 = 4;
    /// Report retransmits (tcp stream).
    pub const TCP_RETRANSMITS: u32 = 8;
    /// Report connection state changes (tcp stream).
    pub const TCP_STATES: u32 = 16;
}

/// The stream's filters, set by the loader before the object is loaded (a frozen
/// read-only global, so the verifier prunes the branches a filter does not use). A zero
/// field means "no filter".
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StreamFilter {
    /// The loading process: its own events are never streamed (they would feed back).
    pub self_tgid: u32,
    /// Only this process (tgid); 0: any.
    pub pid: u32,
    /// Only tasks in this cgroup v2 id; 0: any.
    pub cgroup_id: u64,
    /// Only events at least this long (ns): syscall latency, block request latency,
    /// run-queue delay, smoothed RTT for retransmits.
    pub min_ns: u64,
    /// Bytes queued in the ring before the consumer is woken (batched wakeups; the
    /// consumer also drains on a timer). 0: the kernel's adaptive wakeups.
    pub wakeup_bytes: u64,
    /// Only tasks with this command name (NUL-padded), when `flags` has [`stream_flag::COMM`].
    pub comm: [u8; 16],
    /// `0xff` for each byte of `comm` up to and including its terminating NUL (all 16 for a
    /// 15-byte name), 0 after: the task's name matches when its bytes under the mask are
    /// `comm`'s, whatever a shorter name left behind in the rest of the kernel's buffer.
    pub comm_mask: [u8; 16],
    /// [`stream_flag`] bits.
    pub flags: u32,
    /// Disk: bit `1 << blk_op` per wanted op; 0: any.
    pub ops: u32,
    /// Disk: only this device (the kernel's `dev_t`, `major << 20 | minor`); 0: any.
    pub dev: u32,
    /// With `cgroup_id`: compare the task's ancestor cgroup at this level (a pod's cgroup,
    /// whose containers are its children) instead of its own cgroup; 0: its own.
    pub cgroup_level: u32,
}

impl StreamFilter {
    /// No filter at all.
    pub const NONE: StreamFilter = StreamFilter {
        self_tgid: 0,
        pid: 0,
        cgroup_id: 0,
        min_ns: 0,
        wakeup_bytes: 0,
        comm: [0; 16],
        comm_mask: [0; 16],
        flags: 0,
        ops: 0,
        dev: 0,
        cgroup_level: 0,
    };
}

/// A syscall that passed the filters: `tp_btf/sys_enter` to `tp_btf/sys_exit`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SyscallEvent {
    /// `bpf_ktime_get_ns` at the exit.
    pub ts_ns: u64,
    /// Enter to exit, ns.
    pub lat_ns: u64,
    /// The return value (a negative errno when it failed).
    pub ret: i64,
    /// cgroup v2 id of the task.
    pub cgroup_id: u64,
    /// Process id (tgid).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Syscall number.
    pub nr: u32,
    /// Padding.
    pub pad: u32,
    /// Thread's command name.
    pub comm: [u8; 16],
}

/// An OOM kill (`oom:mark_victim`), with the task that triggered it (the tracepoint runs
/// in the context of the allocating task).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct OomEvent {
    /// `bpf_ktime_get_ns` at the kill.
    pub ts_ns: u64,
    /// Victim total VM, kB.
    pub total_vm_kb: u64,
    /// Victim anonymous RSS, kB.
    pub anon_rss_kb: u64,
    /// Victim file RSS, kB.
    pub file_rss_kb: u64,
    /// Victim shmem RSS, kB.
    pub shmem_rss_kb: u64,
    /// cgroup v2 id of the triggering task.
    pub trigger_cgroup_id: u64,
    /// Victim pid.
    pub pid: u32,
    /// Triggering process (tgid).
    pub trigger_pid: u32,
    /// Victim command name (empty when the tracepoint has no comm field).
    pub comm: [u8; 16],
    /// Triggering task's command name.
    pub trigger_comm: [u8; 16],
}

/// A run-queue wait at least the threshold (`kerno trace sched`): wakeup (or preemption)
/// to running, at `sched_switch`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SchedEvent {
    /// `bpf_ktime_get_ns` when it got the CPU.
    pub ts_ns: u64,
    /// How long it waited, ns.
    pub delay_ns: u64,
    /// The task that waited (thread id).
    pub tid: u32,
    /// The CPU it waited for.
    pub cpu: u32,
    /// The task that ran before it (thread id).
    pub prev_tid: u32,
    /// That task's process (tgid).
    pub prev_pid: u32,
    /// The waiting task's command name.
    pub comm: [u8; 16],
    /// The previous task's command name.
    pub prev_comm: [u8; 16],
}

/// `TcpEvent::kind`.
pub mod tcp_event {
    /// A retransmitted segment (`tcp:tcp_retransmit_skb`).
    pub const RETRANSMIT: u32 = 1;
    /// A connection state change (`sock:inet_sock_set_state`).
    pub const STATE: u32 = 2;
}

/// A TCP event for `kerno watch tcp` (addresses in network order, ports in host order).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct TcpEvent {
    /// `bpf_ktime_get_ns`.
    pub ts_ns: u64,
    /// [`tcp_event`].
    pub kind: u32,
    /// The socket's state (retransmit), or the new state (state change).
    pub state: u32,
    /// The old state (state change).
    pub old_state: u32,
    /// The flow's last smoothed RTT seen at `tcp_probe`, µs (0: none seen).
    pub srtt_us: u32,
    /// The task in whose context it happened (the connecting process for an active open;
    /// often unrelated for a retransmit, which runs from a timer or softirq).
    pub pid: u32,
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u16,
    /// Local port.
    pub sport: u16,
    /// Remote port.
    pub dport: u16,
    /// Padding.
    pub pad: [u16; 3],
    /// Local address (IPv4 in the first 4 bytes).
    pub saddr: [u8; 16],
    /// Remote address (IPv4 in the first 4 bytes).
    pub daddr: [u8; 16],
    /// The task's command name.
    pub comm: [u8; 16],
}

/// A block request (`kerno trace disk`): insert (queued) to issue (sent to the device) to
/// completion, with the task that queued or issued it.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DiskEvent {
    /// `bpf_ktime_get_ns` at completion.
    pub ts_ns: u64,
    /// Insert to issue, ns (0: issued without queueing).
    pub queue_ns: u64,
    /// Issue to completion, ns.
    pub service_ns: u64,
    /// First sector.
    pub sector: u64,
    /// The device (the kernel's `dev_t`: `major << 20 | minor`).
    pub dev: u32,
    /// Bytes.
    pub bytes: u32,
    /// `blk_op`.
    pub op: u32,
    /// The completion's error (0: none).
    pub error: i32,
    /// The process that queued (or, unqueued, issued) it.
    pub pid: u32,
    /// Padding.
    pub pad: u32,
    /// Its command name.
    pub comm: [u8; 16],
}

/// Field offsets of the classic tracepoints the stream programs read, from each
/// tracepoint's `format` file (`u32::MAX`: absent on this kernel).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct StreamOffsets {
    /// sched_wakeup / sched_wakeup_new: `pid`.
    pub wakeup_pid: u32,
    /// sched_switch: `prev_pid`.
    pub switch_prev_pid: u32,
    /// sched_switch: `prev_state`.
    pub switch_prev_state: u32,
    /// sched_switch: `next_pid`.
    pub switch_next_pid: u32,
    /// sched_switch: `next_comm`.
    pub switch_next_comm: u32,
    /// tcp_retransmit_skb: `skaddr`.
    pub rtx_skaddr: u32,
    /// tcp_retransmit_skb: `state`.
    pub rtx_state: u32,
    /// tcp_retransmit_skb: `sport`.
    pub rtx_sport: u32,
    /// tcp_retransmit_skb: `dport`.
    pub rtx_dport: u32,
    /// tcp_retransmit_skb: `family`.
    pub rtx_family: u32,
    /// tcp_retransmit_skb: `saddr`.
    pub rtx_saddr: u32,
    /// tcp_retransmit_skb: `daddr`.
    pub rtx_daddr: u32,
    /// tcp_retransmit_skb: `saddr_v6`.
    pub rtx_saddr_v6: u32,
    /// tcp_retransmit_skb: `daddr_v6`.
    pub rtx_daddr_v6: u32,
    /// tcp_probe: `srtt`.
    pub probe_srtt: u32,
    /// tcp_probe: `skaddr`.
    pub probe_skaddr: u32,
    /// inet_sock_set_state: `skaddr`.
    pub st_skaddr: u32,
    /// inet_sock_set_state: `oldstate`.
    pub st_old: u32,
    /// inet_sock_set_state: `newstate`.
    pub st_new: u32,
    /// inet_sock_set_state: `protocol`.
    pub st_protocol: u32,
    /// inet_sock_set_state: `family`.
    pub st_family: u32,
    /// inet_sock_set_state: `sport`.
    pub st_sport: u32,
    /// inet_sock_set_state: `dport`.
    pub st_dport: u32,
    /// inet_sock_set_state: `saddr`.
    pub st_saddr: u32,
    /// inet_sock_set_state: `daddr`.
    pub st_daddr: u32,
    /// inet_sock_set_state: `saddr_v6`.
    pub st_saddr_v6: u32,
    /// inet_sock_set_state: `daddr_v6`.
    pub st_daddr_v6: u32,
    /// block_rq_insert: `dev`.
    pub ins_dev: u32,
    /// block_rq_insert: `sector`.
    pub ins_sector: u32,
    /// block_rq_insert: `rwbs`.
    pub ins_rwbs: u32,
    /// block_rq_issue: `dev`.
    pub iss_dev: u32,
    /// block_rq_issue: `sector`.
    pub iss_sector: u32,
    /// block_rq_issue: `bytes`.
    pub iss_bytes: u32,
    /// block_rq_issue: `rwbs`.
    pub iss_rwbs: u32,
    /// block_rq_complete: `dev`.
    pub cmp_dev: u32,
    /// block_rq_complete: `sector`.
    pub cmp_sector: u32,
    /// block_rq_complete: `error`.
    pub cmp_error: u32,
    /// block_rq_complete: `rwbs`.
    pub cmp_rwbs: u32,
    /// `struct task_struct`: `comm`, from the kernel's BTF (the syscall stream's comm
    /// filter reads the current task's name there).
    pub task_comm: u32,
}

impl StreamOffsets {
    /// All fields absent.
    pub const NONE: StreamOffsets = StreamOffsets {
        wakeup_pid: u32::MAX,
        switch_prev_pid: u32::MAX,
        switch_prev_state: u32::MAX,
        switch_next_pid: u32::MAX,
        switch_next_comm: u32::MAX,
        rtx_skaddr: u32::MAX,
        rtx_state: u32::MAX,
        rtx_sport: u32::MAX,
        rtx_dport: u32::MAX,
        rtx_family: u32::MAX,
        rtx_saddr: u32::MAX,
        rtx_daddr: u32::MAX,
        rtx_saddr_v6: u32::MAX,
        rtx_daddr_v6: u32::MAX,
        probe_srtt: u32::MAX,
        probe_skaddr: u32::MAX,
        st_skaddr: u32::MAX,
        st_old: u32::MAX,
        st_new: u32::MAX,
        st_protocol: u32::MAX,
        st_family: u32::MAX,
        st_sport: u32::MAX,
        st_dport: u32::MAX,
        st_saddr: u32::MAX,
        st_daddr: u32::MAX,
        st_saddr_v6: u32::MAX,
        st_daddr_v6: u32::MAX,
        ins_dev: u32::MAX,
        ins_sector: u32::MAX,
        ins_rwbs: u32::MAX,
        iss_dev: u32::MAX,
        iss_sector: u32::MAX,
        iss_bytes: u32::MAX,
        iss_rwbs: u32::MAX,
        cmp_dev: u32::MAX,
        cmp_sector: u32::MAX,
        cmp_error: u32::MAX,
        cmp_rwbs: u32::MAX,
        task_comm: u32::MAX,
    };
}

#[cfg(feature = "user")]
pod!(
    StreamFilter,
    SyscallEvent,
    OomEvent,
    SchedEvent,
    TcpEvent,
    DiskEvent,
    StreamOffsets
);
