//! Kerno's eBPF programs.
//!
//! Everything is aggregated here, in maps that only grow: per-CPU counters and log-linear
//! histograms for the hot paths (every syscall, every context switch), bounded LRU hashes
//! for per-process and per-flow detail, and a small ring of OOM kills. User space reads the
//! maps and computes windows as differences, so nothing is streamed per event.
//!
//! Portability (design principle 6): syscalls use tp_btf, whose arguments are typed by the
//! kernel's BTF (`(regs, id)` and `(regs, ret)`), so no struct is read. The other programs
//! are classic tracepoints whose field offsets user space reads from each tracepoint's
//! `format` file and hands over in the read-only global `OFFSETS`.

// no_std/no_main only for the BPF target, so `cargo clippy --workspace` works on the host.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", allow(internal_features))]

#[cfg(target_arch = "bpf")]
mod programs {
    use core::intrinsics::{AtomicOrdering, atomic_xadd};

    use aya_ebpf::{
        EbpfContext,
        bindings::{BPF_F_NO_PREALLOC, BPF_NOEXIST, pt_regs},
        helpers::{
            bpf_get_current_cgroup_id, bpf_get_current_comm, bpf_get_current_pid_tgid,
            bpf_ktime_get_ns, bpf_probe_read_kernel_buf,
        },
        macros::{btf_tracepoint, map, tracepoint},
        maps::{Array, LruHashMap, PerCpuArray, PerCpuHashMap},
        programs::{BtfTracePointContext, TracePointContext},
    };
    use kerno_probes_common::{
        BlkStartKey, BlkStartVal, BlkStat, BlkStatKey, Config, ConnKey, ConnStart, FdVal, FlowKey,
        FlowVal, Hist, MAX_SYSCALLS, OOM_RING, OomEntry, ProcSyscallKey, ProcSyscallVal,
        SYSCALL_OTHER, SchedDelayVal, SlowConn, SlowRtt, SyscallCounts, SyscallSampler,
        SyscallSlot, THREAD_SLOTS, ThreadSlot, TpOffsets, blk_op, class, hist, lost, sampling,
        syscall_slot, tcp_ctr,
    };

    // ---- read-only globals, set by the loader ----------------------------------------

    #[unsafe(no_mangle)]
    static CONFIG: Config = Config {
        self_tgid: 0,
        pad: 0,
        slow_syscall_ns: 1_000_000,
        slow_runq_ns: 1_000_000,
        slow_rtt_ns: 5_000_000,
        slow_connect_ns: 50_000_000,
    };
    #[unsafe(no_mangle)]
    static OFFSETS: TpOffsets = TpOffsets::NONE;
    #[unsafe(no_mangle)]
    static SYSCALL_CLASS: [u8; MAX_SYSCALLS] = [0; MAX_SYSCALLS];

    #[inline(always)]
    fn cfg() -> Config {
        unsafe { core::ptr::read_volatile(&CONFIG) }
    }
    #[inline(always)]
    fn off() -> &'static TpOffsets {
        // Volatile reads of each field keep the compiler from folding the defaults.
        &OFFSETS
    }
    #[inline(always)]
    fn o(field: &u32) -> usize {
        unsafe { core::ptr::read_volatile(field) as usize }
    }

    // ---- shared helpers ---------------------------------------------------------------

    #[map]
    static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(lost::N, 0);

    #[inline(always)]
    fn count_lost(which: u32) {
        if let Some(p) = LOST.get_ptr_mut(which) {
            unsafe { *p += 1 };
        }
    }

    #[inline(always)]
    fn hist_add(h: *mut Hist, v: u64) {
        let b = hist::bucket(v);
        if b < hist::BUCKETS {
            unsafe { (*h).buckets[b] += 1 };
        }
    }

    /// Adds `n` samples of value `v` to a histogram shared by all CPUs.
    #[inline(always)]
    fn hist_add_shared(h: *mut Hist, v: u64, n: u64) {
        let b = hist::bucket(v);
        if b < hist::BUCKETS {
            atomic_add(unsafe { &mut (*h).buckets[b] }, n);
        }
    }

    /// An atomic add (BPF_ATOMIC | BPF_ADD) for maps shared by all CPUs. The BPF target has
    /// no compare-and-swap, so `AtomicU64::fetch_add` is not available; the intrinsic is.
    #[inline(always)]
    fn atomic_add(p: *mut u64, v: u64) {
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
    struct Record {
        buf: [u8; RECORD_MAX],
    }

    impl Record {
        /// Copies the record's first `span` bytes (`span` covers every field to be read).
        #[inline(always)]
        fn read(ctx: &TracePointContext, span: usize) -> Option<Record> {
            if span == 0 || span > RECORD_MAX {
                return None;
            }
            let mut r = Record {
                buf: [0; RECORD_MAX],
            };
            unsafe { bpf_probe_read_kernel_buf(ctx.as_ptr() as *const u8, &mut r.buf[..span]) }
                .ok()?;
            Some(r)
        }

        /// The field of type `T` at byte `off` (`None` when outside or misaligned).
        #[inline(always)]
        fn get<T: Copy>(&self, off: usize) -> Option<T> {
            if off + core::mem::size_of::<T>() > RECORD_MAX || off % core::mem::align_of::<T>() != 0
            {
                return None;
            }
            Some(unsafe { core::ptr::read(self.buf.as_ptr().add(off) as *const T) })
        }
    }

    // ---- syscalls ---------------------------------------------------------------------
    //
    // Cost matters most here: these two programs run on every syscall of the machine. What
    // a call pays on its way (measured, docs/performance.md): the two program invocations
    // themselves, then `bpf_ktime_get_ns` (~33 ns a call here), then other helper calls
    // (`bpf_get_current_pid_tgid`, ~8 ns), then map work (inlined array lookups, ~1 ns). So
    // the common path calls no helper at all: the clock is read only for the calls the
    // sampler times (see `kerno_probes_common::sampling`), a thread's slot is found from the
    // `pt_regs` address the tracepoint passes, and Kerno's own threads are recognised by a
    // mark in their slot; the pid is asked for only where a call is recorded per process.

    #[map]
    static SYSCALL_SLOTS: Array<SyscallSlot> = Array::with_max_entries(THREAD_SLOTS, 0);
    #[map]
    static SYSCALL_SAMPLER: PerCpuArray<SyscallSampler> = PerCpuArray::with_max_entries(1, 0);
    #[map]
    static SYSCALL_COUNTS: PerCpuArray<SyscallCounts> = PerCpuArray::with_max_entries(1, 0);
    #[map]
    /// One histogram per syscall shared by all CPUs (atomic adds): 2 MiB whatever the CPU
    /// count. Per-CPU copies cost 2 MiB per CPU (~200 MiB of kernel memory on a 96-CPU
    /// node); only timed calls add to it, which the sampler bounds per CPU.
    static SYSCALL_HIST: Array<Hist> = Array::with_max_entries(MAX_SYSCALLS as u32, 0);
    #[map]
    static PROC_SYSCALLS: LruHashMap<ProcSyscallKey, ProcSyscallVal> =
        LruHashMap::with_max_entries(16384, 0);
    #[map]
    static FD_PROCS: LruHashMap<u32, FdVal> = LruHashMap::with_max_entries(16384, 0);

    // The floor: empty programs on the same two tracepoints, which the product never loads.
    // `benches/overhead.sh` attaches them (mode `floor`, through `kerno-floor`) to measure
    // what being attached to every syscall costs before a program does anything.

    #[btf_tracepoint(function = "sys_enter")]
    pub fn floor_sys_enter(_ctx: BtfTracePointContext) -> i32 {
        0
    }

    #[btf_tracepoint(function = "sys_exit")]
    pub fn floor_sys_exit(_ctx: BtfTracePointContext) -> i32 {
        0
    }

    #[inline(always)]
    fn syscall_idx(nr: i64) -> usize {
        if (nr as u64) < SYSCALL_OTHER as u64 {
            nr as usize
        } else {
            SYSCALL_OTHER
        }
    }

    /// A number that tells threads apart: the address of the thread's saved registers,
    /// relative to a fixed address. The verifier types the tracepoint's argument as a
    /// pointer and forbids hashing a pointer, but (for a program loaded with CAP_PERFMON)
    /// lets a pointer minus a pointer be a plain number.
    #[inline(always)]
    fn thread_key(regs: u64) -> u64 {
        let base = &CONFIG as *const Config as u64;
        regs.wrapping_sub(base)
    }

    #[btf_tracepoint(function = "sys_enter")]
    pub fn sys_enter(ctx: BtfTracePointContext) -> i32 {
        let key = thread_key(ctx.arg(0));
        let nr: i64 = ctx.arg(1);
        let idx = syscall_idx(nr);
        let Some(s) = SYSCALL_SAMPLER.get_ptr_mut(0) else {
            return 0;
        };
        // Calls of this syscall seen on this CPU in the current period, this one included.
        let (epoch, seen) = unsafe { ((*s).epoch, (*s).seen[idx]) };
        let n = if seen >> 32 == epoch {
            (seen & 0xffff_ffff) + 1
        } else {
            1
        };
        unsafe { (*s).seen[idx] = (epoch << 32) | n };
        let weight = if n <= sampling::FULL {
            1
        } else if n & (sampling::EVERY - 1) == 0 {
            sampling::EVERY
        } else {
            return 0;
        };
        if unsafe { core::ptr::read_volatile(&SYSCALL_CLASS[idx]) } & class::NO_RETURN != 0 {
            return 0;
        }
        let Some(slot) = SYSCALL_SLOTS.get_ptr_mut(syscall_slot(key)) else {
            return 0;
        };
        let own = (bpf_get_current_pid_tgid() >> 32) as u32 == cfg().self_tgid;
        // Kerno's own thread: not timed, and marked, so other threads' exits need not ask
        // for the pid (until another thread's call takes the slot).
        let ts = if own {
            0
        } else {
            let t = unsafe { bpf_ktime_get_ns() };
            if t >> sampling::EPOCH_SHIFT != epoch {
                unsafe { (*s).epoch = t >> sampling::EPOCH_SHIFT };
            }
            t
        };
        unsafe {
            if (*slot).ts != 0 && (*slot).regs != key {
                count_lost(lost::SYSCALL_SLOT);
            }
            (*slot).regs = key;
            (*slot).weight = weight as u32;
            (*slot).own = own as u32;
            (*slot).ts = ts;
        }
        0
    }

    #[btf_tracepoint(function = "sys_exit")]
    pub fn sys_exit(ctx: BtfTracePointContext) -> i32 {
        let regs: *const pt_regs = ctx.arg(0);
        let key = thread_key(regs as u64);
        let Some(slot) = SYSCALL_SLOTS.get_ptr_mut(syscall_slot(key)) else {
            return 0;
        };
        let (sregs, own, ts) = unsafe { ((*slot).regs, (*slot).own, (*slot).ts) };
        let mine = sregs == key;
        if mine && own != 0 {
            // Marked as Kerno's. Kerno makes few calls, so checking the pid here costs
            // nothing overall, and catches a thread that took over the kernel stack of an
            // exited Kerno thread (same address): its mark is cleared.
            if (bpf_get_current_pid_tgid() >> 32) as u32 == cfg().self_tgid {
                return 0;
            }
            unsafe { (*slot).own = 0 };
        }
        let ret: i64 = ctx.arg(1);
        // The syscall number as the kernel keeps it for the exit path (`syscall_get_nr`).
        // `pt_regs` is the architecture's register-save layout (x86-64 ABI), not a kernel
        // struct that moves between versions; tp_btf lets the program load it directly.
        let idx = syscall_idx(unsafe { (*regs).orig_rax } as i64);
        let failed = ret < 0 && ret > -4096;
        let cls = unsafe { core::ptr::read_volatile(&SYSCALL_CLASS[idx]) };
        let fd_change = !failed && cls & (class::FD_CREATE | class::FD_CLOSE) != 0;
        let timed = mine && ts != 0;

        // The pid, only where it is needed: a failed call and a descriptor change are
        // recorded per process, and a call of Kerno's own (an unmarked thread) is skipped.
        // A timed call is never Kerno's own: the enter program does not time those.
        let mut tgid = 0;
        if failed || fd_change {
            tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
            if tgid == cfg().self_tgid {
                return 0;
            }
        }
        if let Some(c) = SYSCALL_COUNTS.get_ptr_mut(0) {
            unsafe {
                (*c).count[idx] += 1;
                if failed {
                    (*c).errors[idx] += 1;
                }
            }
        }
        if fd_change {
            record_fd(tgid, cls & class::FD_CREATE != 0);
        }

        // The latency, when the sampler timed this call.
        let mut lat = 0;
        let mut weight = 0;
        if timed {
            weight = unsafe { (*slot).weight } as u64;
            unsafe { (*slot).ts = 0 };
            lat = unsafe { bpf_ktime_get_ns() }.wrapping_sub(ts);
            if let Some(h) = SYSCALL_HIST.get_ptr_mut(idx as u32) {
                hist_add_shared(h, lat, weight);
            }
        }
        let slow = timed && cls & class::WAIT == 0 && lat >= cfg().slow_syscall_ns;
        if failed || slow {
            if tgid == 0 {
                tgid = (bpf_get_current_pid_tgid() >> 32) as u32;
            }
            let key = ProcSyscallKey {
                tgid,
                nr: idx as u16,
                errno: if failed { (-ret) as u16 } else { 0 },
            };
            // A failed call counts once (errors are exact); a slow one counts for the calls
            // it stands for. An untimed failed call adds no latency.
            let n = if failed { 1 } else { weight };
            record_proc_syscall(&key, n, lat, timed);
        }
        0
    }

    /// Adds `n` calls to a process's row; when `timed`, `lat` is one call's latency and
    /// counts `n` times in the sum.
    #[inline(always)]
    fn record_proc_syscall(key: &ProcSyscallKey, n: u64, lat: u64, timed: bool) {
        let (sum, max) = if timed { (lat * n, lat) } else { (0, 0) };
        if let Some(v) = PROC_SYSCALLS.get_ptr_mut(key) {
            unsafe {
                atomic_add(&mut (*v).count, n);
                atomic_add(&mut (*v).lat_sum_ns, sum);
                if max > (*v).max_ns {
                    (*v).max_ns = max;
                }
            }
            return;
        }
        let v = ProcSyscallVal {
            count: n,
            lat_sum_ns: sum,
            max_ns: max,
            cgroup_id: unsafe { bpf_get_current_cgroup_id() },
            comm: bpf_get_current_comm().unwrap_or([0; 16]),
        };
        if PROC_SYSCALLS.insert(key, &v, BPF_NOEXIST as u64).is_err() {
            // Another CPU inserted first: add to its entry.
            if let Some(p) = PROC_SYSCALLS.get_ptr_mut(key) {
                unsafe {
                    atomic_add(&mut (*p).count, n);
                    atomic_add(&mut (*p).lat_sum_ns, sum);
                }
            } else {
                count_lost(lost::MAP_FULL);
            }
        }
    }

    #[inline(always)]
    fn record_fd(tgid: u32, open: bool) {
        if let Some(v) = FD_PROCS.get_ptr_mut(&tgid) {
            unsafe {
                if open {
                    atomic_add(&mut (*v).opens, 1);
                } else {
                    atomic_add(&mut (*v).closes, 1);
                }
            }
            return;
        }
        let v = FdVal {
            opens: open as u64,
            closes: (!open) as u64,
            comm: bpf_get_current_comm().unwrap_or([0; 16]),
        };
        if FD_PROCS.insert(&tgid, &v, BPF_NOEXIST as u64).is_err() {
            if let Some(p) = FD_PROCS.get_ptr_mut(&tgid) {
                unsafe {
                    if open {
                        atomic_add(&mut (*p).opens, 1);
                    } else {
                        atomic_add(&mut (*p).closes, 1);
                    }
                }
            }
        }
    }

    // ---- scheduler: run-queue delay -----------------------------------------------------

    #[map]
    static RUNQ_SLOTS: Array<ThreadSlot> = Array::with_max_entries(THREAD_SLOTS, 0);
    #[map]
    static RUNQ_HIST: PerCpuArray<Hist> = PerCpuArray::with_max_entries(1, 0);
    #[map]
    static RUNQ_SLOW: LruHashMap<u32, SchedDelayVal> = LruHashMap::with_max_entries(8192, 0);

    /// `TASK_REPORT_MAX`: sched_switch reports a preempted task's state as this bit.
    const TASK_REPORT_MAX: i64 = 0x100;

    #[inline(always)]
    fn runq_mark(tid: u32) {
        if tid == 0 {
            return;
        }
        if let Some(slot) = RUNQ_SLOTS.get_ptr_mut(tid % THREAD_SLOTS) {
            unsafe {
                (*slot).tid = tid;
                (*slot).ts = bpf_ktime_get_ns();
            }
        }
    }

    #[tracepoint]
    pub fn sched_wakeup(ctx: TracePointContext) -> u32 {
        let pid: i32 = unsafe { ctx.read_at(o(&off().wakeup_pid)).unwrap_or(0) };
        runq_mark(pid as u32);
        0
    }

    #[tracepoint]
    pub fn sched_wakeup_new(ctx: TracePointContext) -> u32 {
        let pid: i32 = unsafe { ctx.read_at(o(&off().wakeup_pid)).unwrap_or(0) };
        runq_mark(pid as u32);
        0
    }

    #[tracepoint]
    pub fn sched_switch(ctx: TracePointContext) -> u32 {
        let _ = try_sched_switch(&ctx);
        0
    }

    #[inline(always)]
    fn try_sched_switch(ctx: &TracePointContext) -> Result<(), i64> {
        let (o_prev, o_state, o_next) = (
            o(&off().switch_prev_pid),
            o(&off().switch_prev_state),
            o(&off().switch_next_pid),
        );
        let span = (o_prev + 4).max(o_state + 8).max(o_next + 4);
        let rec = Record::read(ctx, span).ok_or(0i64)?;
        let prev: i32 = rec.get(o_prev).ok_or(0i64)?;
        let state: i64 = rec.get(o_state).ok_or(0i64)?;
        // A task switched out while still runnable (preempted) waits on the run queue.
        if state == 0 || state & TASK_REPORT_MAX != 0 {
            runq_mark(prev as u32);
        }
        let next: i32 = rec.get(o_next).ok_or(0i64)?;
        let next = next as u32;
        if next == 0 {
            return Ok(());
        }
        let Some(slot) = RUNQ_SLOTS.get_ptr_mut(next % THREAD_SLOTS) else {
            return Ok(());
        };
        let (stid, ts) = unsafe { ((*slot).tid, (*slot).ts) };
        if ts == 0 {
            return Ok(());
        }
        if stid != next {
            count_lost(lost::SCHED_SLOT);
            return Ok(());
        }
        unsafe { (*slot).ts = 0 };
        let delay = unsafe { bpf_ktime_get_ns() }.wrapping_sub(ts);
        if let Some(h) = RUNQ_HIST.get_ptr_mut(0) {
            hist_add(h, delay);
        }
        if delay >= cfg().slow_runq_ns {
            if let Some(v) = RUNQ_SLOW.get_ptr_mut(&next) {
                unsafe {
                    atomic_add(&mut (*v).count, 1);
                    atomic_add(&mut (*v).total_ns, delay);
                    if delay > (*v).max_ns {
                        (*v).max_ns = delay;
                    }
                }
            } else {
                let comm: [u8; 16] =
                    unsafe { ctx.read_at(o(&off().switch_next_comm)).unwrap_or([0; 16]) };
                let v = SchedDelayVal {
                    count: 1,
                    total_ns: delay,
                    max_ns: delay,
                    comm,
                };
                let _ = RUNQ_SLOW.insert(&next, &v, BPF_NOEXIST as u64);
            }
        }
        Ok(())
    }

    // ---- block I/O ----------------------------------------------------------------------

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
        let _ = try_block_rq_issue(&ctx);
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
            ts: unsafe { bpf_ktime_get_ns() },
            bytes: bytes as u64,
        };
        let _ = BLK_START.insert(&key, &val, 0);
        Ok(())
    }

    #[tracepoint]
    pub fn block_rq_complete(ctx: TracePointContext) -> u32 {
        let _ = try_block_rq_complete(&ctx);
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
        let Some(start) = (unsafe { BLK_START.get(&key) }) else {
            count_lost(lost::BLK_UNMATCHED);
            return Ok(());
        };
        let (ts, bytes) = (start.ts, start.bytes);
        let _ = BLK_START.remove(&key);
        let lat = unsafe { bpf_ktime_get_ns() }.wrapping_sub(ts);
        let skey = BlkStatKey { dev, op };
        let mut st = BLK_STATS.get_ptr_mut(&skey);
        if st.is_none() {
            if let Some(z) = BLK_ZERO.get_ptr(0) {
                let _ = BLK_STATS.insert(&skey, unsafe { &*z }, BPF_NOEXIST as u64);
            }
            st = BLK_STATS.get_ptr_mut(&skey);
        }
        if let Some(s) = st {
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

    // ---- TCP ----------------------------------------------------------------------------

    #[map]
    static TCP_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(tcp_ctr::N, 0);
    #[map]
    static TCP_RTT_HIST: PerCpuArray<Hist> = PerCpuArray::with_max_entries(1, 0);
    #[map]
    static TCP_CONNECT_HIST: PerCpuArray<Hist> = PerCpuArray::with_max_entries(1, 0);
    #[map]
    static TCP_FLOWS: LruHashMap<FlowKey, FlowVal> = LruHashMap::with_max_entries(4096, 0);
    #[map]
    static TCP_CONNECTING: LruHashMap<u64, ConnStart> = LruHashMap::with_max_entries(8192, 0);
    #[map]
    static TCP_SLOW_CONNECTS: LruHashMap<ConnKey, SlowConn> = LruHashMap::with_max_entries(4096, 0);
    #[map]
    static TCP_SLOW_RTT: LruHashMap<FlowKey, SlowRtt> = LruHashMap::with_max_entries(4096, 0);

    const AF_INET6: u16 = 10;
    const TCP_ESTABLISHED: i32 = 1;
    const TCP_SYN_SENT: i32 = 2;
    const TCP_SYN_RECV: i32 = 3;
    const TCP_CLOSE: i32 = 7;
    const IPPROTO_TCP: u16 = 6;

    #[inline(always)]
    fn tcp_count(which: u32) {
        if let Some(p) = TCP_COUNTERS.get_ptr_mut(which) {
            unsafe { *p += 1 };
        }
    }

    #[tracepoint]
    pub fn tcp_retransmit_skb(ctx: TracePointContext) -> u32 {
        let _ = try_tcp_retransmit(&ctx);
        0
    }

    #[inline(always)]
    fn try_tcp_retransmit(ctx: &TracePointContext) -> Result<(), i64> {
        tcp_count(tcp_ctr::RETRANSMITS);
        let o_ = off();
        let family: u16 = unsafe { ctx.read_at(o(&o_.rtx_family))? };
        let mut key = FlowKey {
            family,
            sport: unsafe { ctx.read_at(o(&o_.rtx_sport))? },
            dport: unsafe { ctx.read_at(o(&o_.rtx_dport))? },
            pad: 0,
            saddr: [0; 16],
            daddr: [0; 16],
        };
        if family == AF_INET6 {
            key.saddr = unsafe { ctx.read_at(o(&o_.rtx_saddr_v6))? };
            key.daddr = unsafe { ctx.read_at(o(&o_.rtx_daddr_v6))? };
        } else {
            let s: [u8; 4] = unsafe { ctx.read_at(o(&o_.rtx_saddr))? };
            let d: [u8; 4] = unsafe { ctx.read_at(o(&o_.rtx_daddr))? };
            key.saddr[..4].copy_from_slice(&s);
            key.daddr[..4].copy_from_slice(&d);
        }
        if let Some(v) = TCP_FLOWS.get_ptr_mut(&key) {
            atomic_add(unsafe { &mut (*v).retransmits }, 1);
        } else {
            let _ = TCP_FLOWS.insert(&key, &FlowVal { retransmits: 1 }, BPF_NOEXIST as u64);
        }
        Ok(())
    }

    #[tracepoint]
    pub fn tcp_probe(ctx: TracePointContext) -> u32 {
        let _ = try_tcp_probe(&ctx);
        0
    }

    #[inline(always)]
    fn try_tcp_probe(ctx: &TracePointContext) -> Result<(), i64> {
        let o_ = off();
        let srtt_us: u32 = unsafe { ctx.read_at(o(&o_.probe_srtt))? };
        if srtt_us == 0 {
            return Ok(());
        }
        tcp_count(tcp_ctr::RTT_SAMPLES);
        if let Some(h) = TCP_RTT_HIST.get_ptr_mut(0) {
            hist_add(h, srtt_us as u64 * 1000);
        }
        if (srtt_us as u64) * 1000 < cfg().slow_rtt_ns {
            return Ok(());
        }
        // A slow flow: remember which, so user space can name its process.
        let family: u16 = unsafe { ctx.read_at(o(&o_.probe_family))? };
        let mut key = FlowKey {
            family,
            sport: unsafe { ctx.read_at(o(&o_.probe_sport))? },
            dport: unsafe { ctx.read_at(o(&o_.probe_dport))? },
            pad: 0,
            saddr: [0; 16],
            daddr: [0; 16],
        };
        // saddr/daddr are sockaddr_in (address at byte 4) or sockaddr_in6 (at byte 8).
        let (at, len) = if family == AF_INET6 { (8, 16) } else { (4, 4) };
        let s: [u8; 16] = unsafe { ctx.read_at(o(&o_.probe_saddr) + at)? };
        let d: [u8; 16] = unsafe { ctx.read_at(o(&o_.probe_daddr) + at)? };
        let mut i = 0;
        while i < 16 {
            if i < len {
                key.saddr[i] = s[i];
                key.daddr[i] = d[i];
            }
            i += 1;
        }
        if let Some(v) = TCP_SLOW_RTT.get_ptr_mut(&key) {
            unsafe {
                atomic_add(&mut (*v).samples, 1);
                atomic_add(&mut (*v).total_us, srtt_us as u64);
                if srtt_us as u64 > (*v).max_us {
                    (*v).max_us = srtt_us as u64;
                }
            }
        } else {
            let v = SlowRtt {
                samples: 1,
                total_us: srtt_us as u64,
                max_us: srtt_us as u64,
            };
            let _ = TCP_SLOW_RTT.insert(&key, &v, BPF_NOEXIST as u64);
        }
        Ok(())
    }

    #[tracepoint]
    pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
        let _ = try_set_state(&ctx);
        0
    }

    #[inline(always)]
    fn try_set_state(ctx: &TracePointContext) -> Result<(), i64> {
        let o_ = off();
        let proto: u16 = unsafe { ctx.read_at(o(&o_.state_protocol))? };
        if proto != IPPROTO_TCP {
            return Ok(());
        }
        let sk: u64 = unsafe { ctx.read_at(o(&o_.state_skaddr))? };
        let old: i32 = unsafe { ctx.read_at(o(&o_.state_old))? };
        let new: i32 = unsafe { ctx.read_at(o(&o_.state_new))? };
        if new == TCP_SYN_SENT {
            tcp_count(tcp_ctr::CONNECT_STARTED);
            // connect() runs in the caller's context: remember who connects.
            let start = ConnStart {
                ts: unsafe { bpf_ktime_get_ns() },
                tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
                pad: 0,
                comm: bpf_get_current_comm().unwrap_or([0; 16]),
            };
            let _ = TCP_CONNECTING.insert(&sk, &start, 0);
        } else if new == TCP_ESTABLISHED {
            if old == TCP_SYN_SENT {
                tcp_count(tcp_ctr::ACTIVE_OPENS);
                if let Some(start) = unsafe { TCP_CONNECTING.get(&sk) } {
                    let (ts, tgid, comm) = (start.ts, start.tgid, start.comm);
                    let lat = unsafe { bpf_ktime_get_ns() }.wrapping_sub(ts);
                    let _ = TCP_CONNECTING.remove(&sk);
                    if let Some(h) = TCP_CONNECT_HIST.get_ptr_mut(0) {
                        hist_add(h, lat);
                    }
                    if lat >= cfg().slow_connect_ns {
                        record_slow_connect(ctx, tgid, comm, lat)?;
                    }
                }
            } else if old == TCP_SYN_RECV {
                tcp_count(tcp_ctr::PASSIVE_OPENS);
            }
        } else if new == TCP_CLOSE {
            tcp_count(tcp_ctr::CLOSES);
            if old == TCP_SYN_SENT {
                tcp_count(tcp_ctr::CONNECT_FAILED);
                let _ = TCP_CONNECTING.remove(&sk);
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn record_slow_connect(
        ctx: &TracePointContext,
        tgid: u32,
        comm: [u8; 16],
        lat: u64,
    ) -> Result<(), i64> {
        let o_ = off();
        let family: u16 = unsafe { ctx.read_at(o(&o_.state_family))? };
        let mut key = ConnKey {
            tgid,
            family,
            dport: unsafe { ctx.read_at(o(&o_.state_dport))? },
            daddr: [0; 16],
        };
        if family == AF_INET6 {
            key.daddr = unsafe { ctx.read_at(o(&o_.state_daddr_v6))? };
        } else {
            let d: [u8; 4] = unsafe { ctx.read_at(o(&o_.state_daddr))? };
            key.daddr[..4].copy_from_slice(&d);
        }
        if let Some(v) = TCP_SLOW_CONNECTS.get_ptr_mut(&key) {
            unsafe {
                atomic_add(&mut (*v).count, 1);
                atomic_add(&mut (*v).total_ns, lat);
                if lat > (*v).max_ns {
                    (*v).max_ns = lat;
                }
            }
        } else {
            let v = SlowConn {
                count: 1,
                total_ns: lat,
                max_ns: lat,
                comm,
            };
            let _ = TCP_SLOW_CONNECTS.insert(&key, &v, BPF_NOEXIST as u64);
        }
        Ok(())
    }

    // ---- OOM kills ----------------------------------------------------------------------

    #[map]
    static OOM_SEQ: Array<u64> = Array::with_max_entries(1, 0);
    #[map]
    static OOM_KILLS: Array<OomEntry> = Array::with_max_entries(OOM_RING, 0);

    #[inline(always)]
    fn opt_u64(ctx: &TracePointContext, off: usize) -> u64 {
        if off == u32::MAX as usize {
            return 0;
        }
        unsafe { ctx.read_at::<u64>(off).unwrap_or(0) }
    }

    #[tracepoint]
    pub fn mark_victim(ctx: TracePointContext) -> u32 {
        let _ = try_mark_victim(&ctx);
        0
    }

    #[inline(always)]
    fn try_mark_victim(ctx: &TracePointContext) -> Result<(), i64> {
        let o_ = off();
        let Some(seq_p) = OOM_SEQ.get_ptr_mut(0) else {
            return Ok(());
        };
        // OOM kills are serialised by the kernel's oom_lock, so a plain increment is exact.
        let seq = unsafe { *seq_p } + 1;
        unsafe { *seq_p = seq };
        let Some(e) = OOM_KILLS.get_ptr_mut((seq % OOM_RING as u64) as u32) else {
            return Ok(());
        };
        let pid: i32 = unsafe { ctx.read_at(o(&o_.oom_pid))? };
        let mut comm = [0u8; 16];
        let comm_off = o(&o_.oom_comm);
        if comm_off != u32::MAX as usize {
            // __data_loc: low 16 bits are the string's offset in the record.
            if let Ok(loc) = unsafe { ctx.read_at::<u32>(comm_off) } {
                comm = unsafe { ctx.read_at((loc & 0xffff) as usize).unwrap_or([0; 16]) };
            }
        }
        unsafe {
            (*e).seq = seq;
            (*e).ts_ns = bpf_ktime_get_ns();
            (*e).pid = pid as u32;
            (*e).pad = 0;
            (*e).total_vm_kb = opt_u64(ctx, o(&o_.oom_total_vm));
            (*e).anon_rss_kb = opt_u64(ctx, o(&o_.oom_anon_rss));
            (*e).file_rss_kb = opt_u64(ctx, o(&o_.oom_file_rss));
            (*e).shmem_rss_kb = opt_u64(ctx, o(&o_.oom_shmem_rss));
            (*e).cgroup_id = bpf_get_current_cgroup_id();
            (*e).comm = comm;
        }
        Ok(())
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }

    #[unsafe(link_section = "license")]
    #[unsafe(no_mangle)]
    static LICENSE: [u8; 4] = *b"GPL\0";
}

#[cfg(not(target_arch = "bpf"))]
fn main() {}
