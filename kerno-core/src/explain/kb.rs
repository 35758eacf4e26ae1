//! The offline knowledge base: kernel log messages Kerno knows, each with the format as the
//! kernel prints it (and the source file that prints it), what it means, the usual causes,
//! what to check next and the fix.
//!
//! Formats drift between kernel versions, so each pattern matches the stable part of the
//! message and makes the rest optional. Named groups become the event's fields; a group
//! name ending in a digit (`pid2`) fills the field without the digit (`pid`), so one
//! pattern can match two layouts of the same message.

use std::sync::LazyLock;

use regex_lite::Regex;

use crate::Severity;

/// How a message takes part in a multi-line report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Block {
    /// A message on its own.
    Alone,
    /// The first line of a multi-line report of this kind: it opens a new one.
    Starts(Kind),
    /// A line inside a report of this kind: it joins the open one when their fields
    /// agree, or opens one (the report's first lines may be missing, e.g. after a `grep`).
    Joins(Kind),
}

/// The kinds of multi-line report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The OOM killer's report: trigger, memory state, task table, summary, victim.
    Oom,
    /// Anything followed by a register and stack dump: oopses, lockups, hung tasks,
    /// warnings, allocation failures.
    Stack,
}

/// One known kernel message.
#[derive(Debug)]
pub struct Pattern {
    /// Stable id, kebab-case (`oom-killed-memcg`).
    pub id: &'static str,
    /// A short title.
    pub title: &'static str,
    /// How bad it usually is.
    pub severity: Severity,
    /// What one occurrence is called, singular and plural (`OOM kill`, `OOM kills`).
    pub noun: (&'static str, &'static str),
    /// The fields that name what a group of these is about, best first (`pod`, `cgroup`,
    /// `device`, `comm`...): repeated events with the same value are counted together.
    pub group_by: &'static [&'static str],
    /// Its part in a multi-line report.
    pub block: Block,
    /// Which message of a report names it: the highest rank among a report's lines gives
    /// the report its explanation.
    pub rank: u8,
    /// The format as the kernel prints it (printk format string).
    pub format: &'static str,
    /// The kernel source that prints it (file and function).
    pub source: &'static str,
    /// What it means.
    pub meaning: &'static str,
    /// The usual causes, most likely first.
    pub causes: &'static [&'static str],
    /// What to check next: commands, where `{field}` is replaced by the event's value (or
    /// left as `<field>` when it is unknown).
    pub check: &'static [&'static str],
    /// The fix.
    pub fix: &'static [&'static str],
    /// The matcher (regex-lite syntax) over the message with its prefixes stripped.
    pub regex: &'static str,
}

const CRIT: Severity = Severity::Critical;
const WARN: Severity = Severity::Warning;
const INFO: Severity = Severity::Info;

/// Every known message, in matching order: the first pattern that matches a line names it,
/// so a specific pattern comes before a general one it overlaps.
pub static PATTERNS: &[Pattern] = &[
    // ---------------------------------------------------------------- OOM killer
    Pattern {
        id: "oom-invoked",
        title: "OOM killer invoked",
        severity: CRIT,
        noun: ("OOM report", "OOM reports"),
        group_by: &["pod", "cgroup", "trigger"],
        block: Block::Starts(Kind::Oom),
        rank: 1,
        format: "%s invoked oom-killer: gfp_mask=%#x(%pGg), order=%d, oom_score_adj=%hd",
        source: "mm/oom_kill.c dump_header()",
        meaning: "An allocation failed even after reclaim, so the OOM killer runs. This first line names the task whose allocation triggered it (the trigger), which is not necessarily the one killed: the victim is named by the `oom-kill:` and `Killed process` lines that follow.",
        causes: &[
            "a cgroup (container, pod, systemd unit) reached its memory limit",
            "the whole machine ran out of RAM and swap",
            "a high-order allocation could not be satisfied (order > 0, fragmentation)",
        ],
        check: &[
            "dmesg | grep -A40 'invoked oom-killer'  # the whole report: memory state, task table, victim",
            "grep oom_kill /proc/vmstat",
        ],
        fix: &[
            "Read the victim and the memcg lines of the same report; raise the limit of the cgroup that filled, or fix what grows in it.",
        ],
        regex: r"^(?P<trigger>.+?) invoked oom-killer: gfp_mask=(?P<gfp_mask>0x[0-9a-f]+)(?:\((?P<gfp_flags>[^)]*)\))?,(?: nodemask=\S+,)? order=(?P<order>-?\d+), oom_score_adj=(?P<oom_score_adj>-?\d+)",
    },
    Pattern {
        id: "oom-summary",
        title: "OOM kill summary",
        severity: CRIT,
        noun: ("OOM kill", "OOM kills"),
        group_by: &["pod", "cgroup", "comm"],
        block: Block::Joins(Kind::Oom),
        rank: 2,
        format: "oom-kill:constraint=%s,nodemask=%*pbl,cpuset=%s,mems_allowed=%*pbl,oom_memcg=%s,task_memcg=%s,task=%s,pid=%d,uid=%d",
        source: "mm/oom_kill.c dump_oom_victim(), mm/memcontrol.c mem_cgroup_print_oom_context()",
        meaning: "The one-line summary of an OOM kill: the constraint (CONSTRAINT_MEMCG: a cgroup's limit; CONSTRAINT_NONE: the whole machine), the cgroup whose limit was hit (oom_memcg), the victim's own cgroup (task_memcg, which names the pod under Kubernetes) and the victim's name, pid and uid.",
        causes: &[
            "CONSTRAINT_MEMCG: the container or unit used its whole memory limit",
            "CONSTRAINT_NONE: the host ran out of memory",
            "CONSTRAINT_CPUSET or CONSTRAINT_MEMORY_POLICY: the allowed NUMA nodes ran out",
        ],
        check: &[
            "cat /sys/fs/cgroup/memory{cgroup}/memory.max_usage_in_bytes /sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes  # cgroup v1",
            "cat /sys/fs/cgroup{cgroup}/memory.events  # cgroup v2: oom and oom_kill counts",
            "kubectl get pod -n {namespace} {pod_name} -o wide  # the pod, its restarts and last state OOMKilled",
        ],
        fix: &[
            "Raise the container's memory limit (resources.limits.memory) if its working set is legitimately larger.",
            "Otherwise find what grows: a heap without a bound, a cache, a leak; set the runtime's heap limit below the cgroup limit (-Xmx, GOMEMLIMIT, --max-old-space-size).",
        ],
        regex: r"^oom-kill:constraint=(?P<constraint>\w+),.*?(?:oom_memcg=(?P<oom_memcg>[^,]*),)?(?:task_memcg=(?P<cgroup>[^,]*),)?task=(?P<comm>.*?),pid=(?P<pid>\d+),uid=(?P<uid>\d+)",
    },
    Pattern {
        id: "oom-killed-memcg",
        title: "Process killed: its cgroup ran out of memory",
        severity: CRIT,
        noun: ("OOM kill", "OOM kills"),
        group_by: &["pod", "cgroup", "comm"],
        block: Block::Joins(Kind::Oom),
        rank: 4,
        format: "Memory cgroup out of memory: Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB, shmem-rss:%lukB, UID:%u pgtables:%lukB oom_score_adj:%hd",
        source: "mm/oom_kill.c __oom_kill_process() (message from mem_cgroup_out_of_memory())",
        meaning: "The kernel killed this process (SIGKILL) because its memory cgroup (a container, pod or systemd unit) reached its limit and reclaim could not free enough. anon-rss is what the process itself held; the machine as a whole may have had plenty of free memory. Under Kubernetes the container restarts with reason OOMKilled.",
        causes: &[
            "the container's memory limit is below its real working set",
            "a memory leak or an unbounded cache in the application",
            "a runtime heap limit above the cgroup limit (JVM -Xmx, Node --max-old-space-size, Go without GOMEMLIMIT)",
            "page cache or tmpfs (shmem-rss) counted against the limit",
        ],
        check: &[
            "cat /sys/fs/cgroup/memory{cgroup}/memory.limit_in_bytes /sys/fs/cgroup/memory{cgroup}/memory.max_usage_in_bytes /sys/fs/cgroup/memory{cgroup}/memory.failcnt  # cgroup v1",
            "cat /sys/fs/cgroup{cgroup}/memory.max /sys/fs/cgroup{cgroup}/memory.peak /sys/fs/cgroup{cgroup}/memory.events  # cgroup v2",
            "kubectl describe pod -n {namespace} {pod_name} | grep -A3 'Last State'  # Reason: OOMKilled",
            "kerno doctor  # with the agent running: the oom-kill and oom-imminent findings, the growth before the kill",
        ],
        fix: &[
            "Raise resources.limits.memory (or MemoryMax= of the unit) if the working set is legitimately larger.",
            "Otherwise fix the growth: bound caches and queues, set the runtime heap limit to ~75% of the cgroup limit.",
        ],
        regex: r"^Memory cgroup out of memory: Killed process (?P<pid>\d+) \((?P<comm>.*?)\)(?: total-vm:(?P<total_vm_kb>\d+)kB, anon-rss:(?P<anon_rss_kb>\d+)kB, file-rss:(?P<file_rss_kb>\d+)kB, shmem-rss:(?P<shmem_rss_kb>\d+)kB)?(?:, UID:(?P<uid>\d+))?",
    },
    Pattern {
        id: "oom-killed-global",
        title: "Process killed: the machine ran out of memory",
        severity: CRIT,
        noun: ("OOM kill", "OOM kills"),
        group_by: &["pod", "cgroup", "comm"],
        block: Block::Joins(Kind::Oom),
        rank: 4,
        format: "Out of memory: Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB, shmem-rss:%lukB, UID:%u pgtables:%lukB oom_score_adj:%hd",
        source: "mm/oom_kill.c __oom_kill_process() (message from out_of_memory())",
        meaning: "The whole machine (or NUMA node set) ran out of memory and swap, and the kernel killed the process with the highest OOM score (mostly its RSS, adjusted by oom_score_adj). The victim is not necessarily the one that grew.",
        causes: &[
            "the sum of the workloads' memory exceeds the host's RAM (overcommitted requests, pods without limits)",
            "one process leaking memory until the host is full",
            "kernel memory (slab, page tables) or tmpfs filling RAM",
        ],
        check: &[
            "free -m; grep -E 'MemAvailable|Slab|Shmem|Committed_AS' /proc/meminfo",
            "ps -eo pid,rss,comm --sort=-rss | head  # the largest processes now",
            "slabtop -o | head -15  # kernel slab use",
        ],
        fix: &[
            "Give the workloads memory limits and reserve memory for the system (kubelet --system-reserved, --eviction-hard).",
            "Find and fix the process that grew; add RAM or move workloads off the node.",
        ],
        regex: r"^Out of memory(?: \(oom_kill_allocating_task\))?: Killed process (?P<pid>\d+) \((?P<comm>.*?)\)(?: total-vm:(?P<total_vm_kb>\d+)kB, anon-rss:(?P<anon_rss_kb>\d+)kB, file-rss:(?P<file_rss_kb>\d+)kB, shmem-rss:(?P<shmem_rss_kb>\d+)kB)?(?:, UID:(?P<uid>\d+))?",
    },
    Pattern {
        id: "oom-kill-process-legacy",
        title: "OOM killer chose a process (kernels before 4.19)",
        severity: CRIT,
        noun: ("OOM kill", "OOM kills"),
        group_by: &["pod", "cgroup", "comm"],
        block: Block::Joins(Kind::Oom),
        rank: 3,
        format: "%s: Kill process %d (%s) score %u or sacrifice child",
        source: "mm/oom_kill.c oom_kill_process() (before Linux 4.19)",
        meaning: "Older kernels' wording of an OOM kill: the OOM killer picked this process (and may kill a child of it instead). `Memory cgroup out of memory` means a cgroup limit; `Out of memory` means the whole machine.",
        causes: &["a cgroup reached its memory limit, or the host ran out of memory"],
        check: &["dmesg | grep -B5 -A30 'Kill process {pid}'"],
        fix: &["As for a current kernel's OOM kill: raise the limit or fix the growth."],
        regex: r"^(?P<scope>Memory cgroup out of memory|Out of memory): Kill process (?P<pid>\d+) \((?P<comm>.*?)\) score (?P<score>\d+) or sacrifice child",
    },
    Pattern {
        id: "oom-task-in-memcg-legacy",
        title: "OOM in a memory cgroup (kernels before 4.19)",
        severity: CRIT,
        noun: ("memcg OOM", "memcg OOMs"),
        group_by: &["pod", "cgroup"],
        block: Block::Joins(Kind::Oom),
        rank: 2,
        format: "Task in %s killed as a result of limit of %s",
        source: "mm/memcontrol.c mem_cgroup_print_oom_info() (before Linux 4.19)",
        meaning: "The victim's cgroup and the cgroup whose limit was reached, in an older kernel's OOM report.",
        causes: &["the named cgroup reached its memory limit"],
        check: &["cat /sys/fs/cgroup/memory{oom_memcg}/memory.limit_in_bytes"],
        fix: &["Raise that cgroup's limit or fix what grows in it."],
        regex: r"^Task in (?P<cgroup>\S+) killed as a result of limit of (?P<oom_memcg>\S+)",
    },
    Pattern {
        id: "memcg-usage-at-limit",
        title: "Memory cgroup usage and limit",
        severity: CRIT,
        noun: ("memcg at its limit", "memcg at its limit"),
        group_by: &["pod", "cgroup"],
        block: Block::Joins(Kind::Oom),
        rank: 1,
        format: "memory: usage %llukB, limit %llukB, failcnt %lu",
        source: "mm/memcontrol.c mem_cgroup_print_oom_meminfo() (v1: memcontrol-v1.c)",
        meaning: "In a memcg OOM report: the cgroup's memory use and limit when the OOM killer ran (usage equals limit), and how often an allocation hit the limit (failcnt).",
        causes: &["the cgroup's working set reached its limit"],
        check: &["cat /sys/fs/cgroup/memory{cgroup}/memory.stat  # cgroup v1: rss vs cache"],
        fix: &["Raise the limit or shrink the working set."],
        regex: r"^memory: usage (?P<usage_kb>\d+)kB, limit (?P<limit_kb>\d+)kB, failcnt (?P<failcnt>\d+)",
    },
    Pattern {
        id: "oom-reaper",
        title: "OOM reaper freed a victim's memory",
        severity: INFO,
        noun: ("reaped victim", "reaped victims"),
        group_by: &["pod", "cgroup", "comm"],
        block: Block::Joins(Kind::Oom),
        rank: 0,
        format: "oom_reaper: reaped process %d (%s), now anon-rss:%lukB, file-rss:%lukB, shmem-rss:%lukB",
        source: "mm/oom_kill.c oom_reap_task_mm()",
        meaning: "After an OOM kill, the oom_reaper kernel thread freed the victim's anonymous memory without waiting for it to exit. It follows the `Killed process` line of the same pid.",
        causes: &["an OOM kill just happened"],
        check: &["dmesg | grep -B2 'Killed process {pid}'"],
        fix: &["See the OOM kill it belongs to."],
        regex: r"^oom_reaper: reaped process (?P<pid>\d+) \((?P<comm>.*?)\), now anon-rss:(?P<anon_rss_kb>\d+)kB",
    },
    Pattern {
        id: "oom-no-killable",
        title: "Out of memory with nothing killable: panic",
        severity: CRIT,
        noun: ("OOM panic", "OOM panics"),
        group_by: &[],
        block: Block::Joins(Kind::Oom),
        rank: 5,
        format: "Out of memory and no killable processes...",
        source: "mm/oom_kill.c out_of_memory()",
        meaning: "Memory ran out and every process was unkillable (oom_score_adj -1000, or already dying), so the kernel panics (System is deadlocked on memory).",
        causes: &[
            "every process was protected with oom_score_adj=-1000",
            "a kernel memory leak filled RAM",
        ],
        check: &["grep -l -- -1000 /proc/*/oom_score_adj  # processes the OOM killer may not pick"],
        fix: &[
            "Leave oom_score_adj alone for ordinary workloads; reserve memory for the system; find the leak.",
        ],
        regex: r"^Out of memory and no killable processes",
    },
    // ---------------------------------------------------------------- hangs and lockups
    Pattern {
        id: "hung-task",
        title: "Task blocked in D state (hung task)",
        severity: WARN,
        noun: ("hung task", "hung tasks"),
        group_by: &["comm"],
        block: Block::Starts(Kind::Stack),
        rank: 3,
        format: "INFO: task %s:%d blocked for more than %ld seconds.",
        source: "kernel/hung_task.c check_hung_task()",
        meaning: "A task stayed in uninterruptible sleep (D state) longer than kernel.hung_task_timeout_secs (120 s by default) without being woken. It waits for I/O or a lock; the stack that follows says on what.",
        causes: &[
            "storage that does not answer: a failing disk, a stuck RAID or multipath, a full or slow cloud volume",
            "a hard-mounted NFS/CIFS server that is down (look for `nfs: server ... not responding`)",
            "lock contention in a filesystem or driver (a long fsync, a journal commit)",
            "memory so short that reclaim stalls every allocation",
        ],
        check: &[
            "cat /proc/{pid}/stack  # where it waits now",
            "ps -eo pid,stat,wchan:32,comm | awk '$2 ~ /D/'  # every task in D state",
            "iostat -x 1 5  # a device at 100% util or with long await",
            "echo w > /proc/sysrq-trigger; dmesg | tail -100  # stacks of every blocked task",
        ],
        fix: &[
            "Fix what it waits on: replace or fail over the device, bring the NFS server back (or remount soft/with timeouts), spread the I/O.",
            "If the stack is in a driver or filesystem with no I/O in flight, it is a kernel bug: upgrade the kernel.",
        ],
        regex: r"^INFO: task (?P<comm>.+):(?P<pid>\d+) blocked for more than (?P<secs>\d+) seconds",
    },
    Pattern {
        id: "soft-lockup",
        title: "Soft lockup: a CPU stuck in the kernel",
        severity: CRIT,
        noun: ("soft lockup", "soft lockups"),
        group_by: &["comm"],
        block: Block::Starts(Kind::Stack),
        rank: 3,
        format: "watchdog: BUG: soft lockup - CPU#%d stuck for %us! [%s:%d]",
        source: "kernel/watchdog.c watchdog_timer_fn()",
        meaning: "A CPU ran kernel code for longer than 2 × kernel.watchdog_thresh (20 s by default) without scheduling: the watchdog thread on that CPU never got to run. Everything else waiting for that CPU stalls. The task named is the one that was running.",
        causes: &[
            "a kernel or driver bug looping with preemption disabled",
            "a hypervisor that did not run this vCPU (high steal time, an overcommitted host)",
            "a very long operation in the kernel (huge page reclaim, a giant file truncate) on an old kernel",
        ],
        check: &[
            "grep -A30 'soft lockup' /var/log/kern.log  # the stack: which function and module loop",
            "mpstat -P ALL 1 5  # %steal: a starved VM",
            "cat /proc/sys/kernel/watchdog_thresh",
        ],
        fix: &[
            "Upgrade the kernel or the driver named in the stack; report it with the stack if it repeats.",
            "On a VM with steal time, move it to a less loaded host or give it dedicated CPUs.",
        ],
        regex: r"^(?:NMI )?(?:watchdog: )?BUG: soft lockup - CPU#(?P<cpu>\d+) stuck for (?P<secs>\d+)s! \[(?P<comm>.+):(?P<pid>\d+)\]",
    },
    Pattern {
        id: "hard-lockup",
        title: "Hard lockup: a CPU stopped taking interrupts",
        severity: CRIT,
        noun: ("hard lockup", "hard lockups"),
        group_by: &["cpu"],
        block: Block::Starts(Kind::Stack),
        rank: 3,
        format: "Watchdog detected hard LOCKUP on cpu %d",
        source: "kernel/watchdog.c watchdog_hardlockup_check() (older kernel/watchdog_hld.c)",
        meaning: "The NMI watchdog saw a CPU run with interrupts disabled for longer than kernel.watchdog_thresh (10 s): not even the timer interrupt got through. The machine usually panics or reboots soon after.",
        causes: &[
            "a driver or firmware bug spinning with interrupts off",
            "hardware trouble (a CPU, memory or PCIe device that hangs the bus)",
            "a hypervisor pausing the vCPU",
        ],
        check: &[
            "journalctl -k -b -1 | grep -A40 LOCKUP  # the previous boot's report, if it rebooted",
            "ras-mc-ctl --errors  # hardware errors logged by the machine-check handler",
        ],
        fix: &[
            "Enable kdump (crashkernel=) to capture a dump, then report it; update firmware and the driver in the stack.",
            "If it repeats on one machine only, suspect its hardware.",
        ],
        regex: r"^(?:NMI )?(?:watchdog: )?Watchdog detected hard LOCKUP on cpu (?P<cpu>\d+)",
    },
    Pattern {
        id: "rcu-stall",
        title: "RCU stall: a CPU or task did not report a quiescent state",
        severity: CRIT,
        noun: ("RCU stall", "RCU stalls"),
        group_by: &["flavor"],
        block: Block::Starts(Kind::Stack),
        rank: 3,
        format: "rcu: INFO: %s detected stalls on CPUs/tasks: / rcu: INFO: %s self-detected stall on CPU",
        source: "kernel/rcu/tree_stall.h print_other_cpu_stall(), print_cpu_stall()",
        meaning: "A CPU (or a preempted task) held up an RCU grace period for longer than rcu_cpu_stall_timeout (21 s by default): it ran in the kernel without passing a quiescent state. Memory freed through RCU piles up and synchronize_rcu() callers hang.",
        causes: &[
            "a CPU looping in the kernel with preemption or interrupts off (the same bugs as soft lockups)",
            "a vCPU the hypervisor did not schedule",
            "the RCU grace-period kthread starved of CPU (see `kthread starved`)",
            "a console flooded with messages at a slow baud rate",
        ],
        check: &[
            "dmesg | grep -A40 'detected stall'  # the stalled CPUs and their stacks",
            "mpstat -P ALL 1 5  # steal time, CPUs at 100% system time",
        ],
        fix: &[
            "Upgrade the kernel or the driver named in the stacks; on a VM, remove the CPU overcommit.",
        ],
        regex: r"^(?:rcu: )?INFO: (?P<flavor>rcu_\w+) (?P<stall>detected stalls on CPUs/tasks|self-detected stall on CPU|detected expedited stalls on CPUs/tasks)",
    },
    Pattern {
        id: "rcu-kthread-starved",
        title: "RCU grace-period kthread starved",
        severity: CRIT,
        noun: ("starved RCU kthread", "starved RCU kthreads"),
        group_by: &["flavor"],
        block: Block::Joins(Kind::Stack),
        rank: 2,
        format: "rcu: %s kthread starved for %ld jiffies! g%ld f%#x %s(%d) ->state=%#x ->cpu=%d",
        source: "kernel/rcu/tree_stall.h rcu_check_gp_kthread_starvation()",
        meaning: "The kernel thread that drives RCU grace periods did not get a CPU for this long, which itself causes RCU stalls and out-of-memory conditions.",
        causes: &[
            "real-time or CPU-bound tasks monopolising the CPUs the kthread may run on",
            "a vCPU not scheduled by the hypervisor",
        ],
        check: &["ps -eLo pid,cls,rtprio,pcpu,comm --sort=-pcpu | head  # real-time hogs"],
        fix: &[
            "Leave CPU time for kernel threads (no SCHED_FIFO spinners on every CPU), or isolate the RT work to a subset of CPUs.",
        ],
        regex: r"^(?:rcu: )?(?P<flavor>rcu_\w+) kthread starved for (?P<jiffies>\d+) jiffies",
    },
    // ---------------------------------------------------------------- kernel crashes
    Pattern {
        id: "null-deref",
        title: "Kernel NULL pointer dereference",
        severity: CRIT,
        noun: ("kernel NULL dereference", "kernel NULL dereferences"),
        group_by: &["module", "function"],
        block: Block::Starts(Kind::Stack),
        rank: 4,
        format: "BUG: kernel NULL pointer dereference, address: %px",
        source: "arch/x86/mm/fault.c show_fault_oops()",
        meaning: "Kernel code read or wrote through a NULL (or nearly NULL) pointer: a bug in the kernel or a module. An Oops follows with the faulting function (RIP) and the loaded modules; the task is killed and the kernel may now be unstable (or panic with panic_on_oops).",
        causes: &[
            "a bug in a driver or out-of-tree module (GPU, storage, network, eBPF-based security agents)",
            "a kernel regression on a new version",
        ],
        check: &[
            "dmesg | grep -A50 'NULL pointer dereference'  # RIP: names the function, 'Modules linked in' the suspects",
            "cat /proc/sys/kernel/tainted  # non-zero: proprietary or out-of-tree modules are loaded",
        ],
        fix: &[
            "Upgrade the kernel or the module named in the RIP line; if it started with an update, roll that back.",
            "Report it with the full Oops; reboot the node, since the kernel may be inconsistent.",
        ],
        regex: r"^BUG: (?:kernel NULL pointer dereference, address: |unable to handle kernel NULL pointer dereference at )(?P<address>\S+)",
    },
    Pattern {
        id: "kernel-page-fault",
        title: "Kernel page fault on a bad address",
        severity: CRIT,
        noun: ("kernel page fault", "kernel page faults"),
        group_by: &["module", "function"],
        block: Block::Starts(Kind::Stack),
        rank: 4,
        format: "BUG: unable to handle page fault for address: %px",
        source: "arch/x86/mm/fault.c show_fault_oops() (older: `unable to handle kernel paging request at`)",
        meaning: "Kernel code touched an address with no valid mapping: a wild pointer, a use-after-free, or memory corruption. An Oops follows.",
        causes: &[
            "a use-after-free or out-of-bounds access in a driver or the kernel",
            "bad RAM flipping bits in pointers (if the address and function vary between crashes)",
        ],
        check: &[
            "dmesg | grep -A50 'unable to handle'  # the RIP line and modules",
            "ras-mc-ctl --errors; edac-util -v  # memory errors",
        ],
        fix: &[
            "Upgrade the kernel or module in the trace; run a memory test if crashes are random.",
        ],
        regex: r"^BUG: unable to handle (?:page fault for address|kernel paging request at):? (?P<address>\S+)",
    },
    Pattern {
        id: "arm64-kernel-fault",
        title: "Kernel fault on a bad address (arm64)",
        severity: CRIT,
        noun: ("kernel fault", "kernel faults"),
        group_by: &["module", "function"],
        block: Block::Starts(Kind::Stack),
        rank: 4,
        format: "Unable to handle kernel %s at virtual address %016lx",
        source: "arch/arm64/mm/fault.c die_kernel_fault()",
        meaning: "The arm64 form of a kernel NULL dereference or bad page fault: kernel code touched an unmapped address. An Internal error (Oops) follows.",
        causes: &["a kernel or driver bug", "memory corruption"],
        check: &["dmesg | grep -A50 'Unable to handle kernel'  # pc: names the function"],
        fix: &["Upgrade the kernel or the module in the trace; report it with the whole Oops."],
        regex: r"^Unable to handle kernel (?P<fault>NULL pointer dereference|paging request|execute from non-executable memory|write to read-only memory) at virtual address (?P<address>[0-9a-f]+)",
    },
    Pattern {
        id: "general-protection-fault",
        title: "General protection fault in the kernel",
        severity: CRIT,
        noun: ("general protection fault", "general protection faults"),
        group_by: &["module", "function"],
        block: Block::Starts(Kind::Stack),
        rank: 4,
        format: "general protection fault, probably for non-canonical address 0x%lx: %04lx [#%d] ...",
        source: "arch/x86/kernel/traps.c exc_general_protection() (GPFSTR), arch/x86/kernel/dumpstack.c __die_header()",
        meaning: "Kernel code used a non-canonical pointer or an invalid segment. A non-canonical address full of a poison pattern (0xdead..., 0x6b6b...) means a freed or uninitialised object was used: memory corruption.",
        causes: &[
            "a use-after-free or memory corruption in a driver or the kernel",
            "bad RAM",
        ],
        check: &[
            "dmesg | grep -A50 'general protection fault'  # RIP and modules",
            "cat /proc/sys/kernel/tainted",
        ],
        fix: &[
            "Upgrade the kernel or the module in the trace and report it; reboot the node; test the memory if it recurs in different places.",
        ],
        regex: r"^(?:Oops: )?(?:segment-related )?general protection fault(?:, (?:probably for non-canonical address|maybe for address) (?P<address>0x[0-9a-f]+))?(?:: (?P<oops_code>[0-9a-f]{4}) \[#(?P<oops_count>\d+)\])?",
    },
    Pattern {
        id: "oops",
        title: "Kernel Oops",
        severity: CRIT,
        noun: ("kernel oops", "kernel oopses"),
        group_by: &["module", "function"],
        block: Block::Joins(Kind::Stack),
        rank: 2,
        format: "Oops: %s: %04lx [#%d] PREEMPT SMP ... (older: %s: %04lx [#%d], e.g. `Oops: 0002 [#1] SMP PTI`)",
        source: "arch/x86/kernel/dumpstack.c __die_header()",
        meaning: "The header of a kernel crash report: the error code, and [#N] how many oopses this boot has had. The registers, the faulting function (RIP), the modules and the stack follow; the report ends at `---[ end trace ... ]---`. The task that hit it is killed.",
        causes: &["a kernel or module bug (the line before names the fault)"],
        check: &["dmesg | grep -B5 -A60 'Oops:'  # the whole report"],
        fix: &[
            "Upgrade the kernel or the module named in the RIP line; reboot, since [#1] means the kernel may be inconsistent.",
        ],
        regex: r"^(?:Internal error: )?Oops(?: - (?P<what>[^:]+))?: (?:(?P<kind>[A-Za-z][^:]*): )?(?P<oops_code>[0-9a-f]{4,8}) \[#(?P<oops_count>\d+)\]",
    },
    Pattern {
        id: "kernel-bug",
        title: "Kernel BUG() assertion",
        severity: CRIT,
        noun: ("kernel BUG", "kernel BUGs"),
        group_by: &["file"],
        block: Block::Starts(Kind::Stack),
        rank: 4,
        format: "kernel BUG at %s:%u!",
        source: "lib/bug.c report_bug() (BUG() / BUG_ON())",
        meaning: "A kernel consistency check (BUG_ON) failed at this source line: the kernel found its own state impossible and stopped the task. An Oops follows.",
        causes: &["a kernel bug, or memory corruption that broke an invariant"],
        check: &["dmesg | grep -A50 'kernel BUG at'"],
        fix: &["Search the kernel's bug tracker for the file:line; upgrade the kernel."],
        regex: r"^kernel BUG at (?P<file>[^:]+):(?P<line>\d+)!",
    },
    Pattern {
        id: "kernel-warning",
        title: "Kernel WARNING",
        severity: WARN,
        noun: ("kernel warning", "kernel warnings"),
        group_by: &["location"],
        block: Block::Starts(Kind::Stack),
        rank: 2,
        format: "WARNING: CPU: %d PID: %d at %s:%d %pS (newer: WARNING: %s:%d at %pS, CPU#%d: %s/%d)",
        source: "kernel/panic.c __warn()",
        meaning: "A WARN_ON() check in the kernel fired: something unexpected but survivable happened at this location. The stack follows. The kernel carries on (unless panic_on_warn is set) and is tainted with W.",
        causes: &[
            "a kernel or driver bug, or hardware behaving unexpectedly (the location says which subsystem)",
        ],
        check: &["dmesg | grep -A40 'WARNING:'  # the location and the stack"],
        fix: &[
            "Look the location up for a known fix and upgrade; report it if new. It is harmless only if it does not repeat.",
        ],
        regex: r"^WARNING: (?:CPU: (?P<cpu>\d+) PID: (?P<pid>\d+) at (?P<location>.+)|(?P<location2>\S+) at (?P<function>\S+), CPU#(?P<cpu2>\d+): (?P<comm>.+)/(?P<pid2>\d+))",
    },
    Pattern {
        id: "scheduling-while-atomic",
        title: "Scheduling while atomic",
        severity: CRIT,
        noun: (
            "scheduling-while-atomic bug",
            "scheduling-while-atomic bugs",
        ),
        group_by: &["comm"],
        block: Block::Starts(Kind::Stack),
        rank: 3,
        format: "BUG: scheduling while atomic: %s/%d/0x%08x",
        source: "kernel/sched/core.c __schedule_bug()",
        meaning: "Code tried to sleep while holding a spinlock or with preemption disabled, which can deadlock the CPU. Always a kernel or driver bug.",
        causes: &["a driver bug (the stack names it)"],
        check: &["dmesg | grep -A40 'scheduling while atomic'"],
        fix: &["Upgrade or remove the driver in the stack; report it."],
        regex: r"^BUG: scheduling while atomic: (?P<comm>.+)/(?P<pid>\d+)/0x(?P<preempt_count>[0-9a-f]+)",
    },
    Pattern {
        id: "sleeping-in-atomic",
        title: "Sleeping function called from invalid context",
        severity: WARN,
        noun: ("might-sleep bug", "might-sleep bugs"),
        group_by: &["location"],
        block: Block::Starts(Kind::Stack),
        rank: 2,
        format: "BUG: sleeping function called from invalid context at %s:%d",
        source: "kernel/sched/core.c __might_resched()",
        meaning: "A function that may sleep was called with a spinlock held, interrupts off or in an RCU read section. A kernel or driver bug that can deadlock.",
        causes: &["a driver or kernel bug"],
        check: &["dmesg | grep -A30 'sleeping function called'"],
        fix: &["Upgrade the kernel or driver in the stack."],
        regex: r"^BUG: sleeping function called from invalid context at (?P<location>\S+)",
    },
    Pattern {
        id: "bad-page-state",
        title: "Bad page state",
        severity: CRIT,
        noun: ("bad page", "bad pages"),
        group_by: &["comm"],
        block: Block::Starts(Kind::Stack),
        rank: 3,
        format: "BUG: Bad page state in process %s  pfn:%05lx",
        source: "mm/page_alloc.c bad_page()",
        meaning: "A page being freed or allocated had inconsistent metadata (mapcount, flags): memory corruption, by a kernel bug or bad RAM.",
        causes: &["bad RAM", "a driver corrupting struct page"],
        check: &[
            "ras-mc-ctl --errors; edac-util -v",
            "dmesg | grep -A30 'Bad page state'",
        ],
        fix: &["Test or replace the memory; upgrade the kernel if the RAM is good."],
        regex: r"^BUG: Bad page state in process (?P<comm>.+?)\s+pfn:(?P<pfn>[0-9a-f]+)",
    },
    Pattern {
        id: "kernel-panic",
        title: "Kernel panic",
        severity: CRIT,
        noun: ("kernel panic", "kernel panics"),
        group_by: &["reason"],
        block: Block::Joins(Kind::Stack),
        rank: 2,
        format: "Kernel panic - not syncing: %s",
        source: "kernel/panic.c panic()",
        meaning: "The kernel stopped: the reason says why (a fatal exception, a hard lockup, an OOM with nothing to kill, a failed root mount). The machine reboots after kernel.panic seconds, or hangs.",
        causes: &[
            "the report just before it (an Oops with panic_on_oops, a lockup with *_panic, a fatal machine check)",
        ],
        check: &[
            "journalctl -k -b -1  # the previous boot's last messages",
            "cat /proc/sys/kernel/panic /proc/sys/kernel/panic_on_oops",
        ],
        fix: &[
            "Fix the cause named in the reason and the lines before it; configure kdump to keep a crash dump next time.",
        ],
        regex: r"^Kernel panic - not syncing: (?P<reason>.*)",
    },
    // ---------------------------------------------------------------- user-space crashes
    Pattern {
        id: "user-segfault",
        title: "User-space segmentation fault",
        severity: WARN,
        noun: ("segfault", "segfaults"),
        group_by: &["pod", "cgroup", "comm"],
        block: Block::Starts(Kind::Stack),
        rank: 3,
        format: "%s[%d]: segfault at %lx ip %px sp %px error %lx in %s[%lx,%lx+%lx] likely on CPU %d (core %d, socket %d) (before 6.9: in %s[%lx+%lx])",
        source: "arch/x86/mm/fault.c show_signal_msg()",
        meaning: "A user-space process touched memory it may not (address `at`), got SIGSEGV and died (or its handler ran). `ip` is the instruction, `in` names the binary or library it was in. The error bits: 4 = user mode, 2 = write (else read), 1 = protection violation (else page not present), 0x10 = instruction fetch.",
        causes: &[
            "a bug in the program or a library it loads (NULL or freed pointer, stack overflow)",
            "a library version mismatch (the `in` part names a .so)",
            "bad RAM, if unrelated programs crash at random on the same CPU",
        ],
        check: &[
            "coredumpctl list {comm}  # the core dump, if systemd-coredump keeps them",
            "addr2line -e <binary> -f <ip minus base>  # the function, from the ip and the mapping's base",
            "grep -c segfault /var/log/kern.log  # how often, and whether always on the same CPU",
        ],
        fix: &[
            "Fix the program (get a core dump: ulimit -c unlimited or systemd-coredump, then gdb); upgrade the library it crashed in.",
            "If many programs crash on the same CPU or core, test the memory and the CPU.",
        ],
        regex: r"^(?P<comm>.+)\[(?P<pid>\d+)\]: segfault at (?P<address>[0-9a-f]+) ip (?P<ip>[0-9a-f]+) sp (?P<sp>[0-9a-f]+) error (?P<error>[0-9a-f]+)(?: in (?P<object>[^\[ ]+)\[(?:(?P<file_offset>[0-9a-f]+),)?(?P<base>[0-9a-f]+)\+(?P<size>[0-9a-f]+)\])?(?: likely on CPU (?P<cpu>\d+))?",
    },
    Pattern {
        id: "user-gpf",
        title: "User-space general protection fault",
        severity: WARN,
        noun: (
            "user-space protection fault",
            "user-space protection faults",
        ),
        group_by: &["pod", "cgroup", "comm"],
        block: Block::Starts(Kind::Stack),
        rank: 3,
        format: "traps: %s[%d] general protection fault ip:%lx sp:%lx error:%lx in %s[%lx+%lx]",
        source: "arch/x86/kernel/traps.c gp_user_force_sig_segv() / show_signal()",
        meaning: "A user-space process executed an instruction that raised a general protection fault (a non-canonical pointer, a privileged instruction) and was killed with SIGSEGV.",
        causes: &["a corrupted pointer in the program", "bad RAM"],
        check: &["coredumpctl list {comm}"],
        fix: &["Debug the program from its core dump; upgrade the library in the `in` part."],
        regex: r"^traps: (?P<comm>.+)\[(?P<pid>\d+)\] general protection(?: fault)? ip:(?P<ip>[0-9a-f]+) sp:(?P<sp>[0-9a-f]+) error:(?P<error>[0-9a-f]+)(?: in (?P<object>[^\[ ]+))?",
    },
    Pattern {
        id: "user-trap",
        title: "User-space trap (invalid opcode, divide error)",
        severity: WARN,
        noun: ("user-space trap", "user-space traps"),
        group_by: &["pod", "cgroup", "comm"],
        block: Block::Starts(Kind::Stack),
        rank: 3,
        format: "traps: %s[%d] trap %s ip:%lx sp:%lx error:%lx in %s[%lx+%lx]",
        source: "arch/x86/kernel/traps.c do_trap() / show_signal()",
        meaning: "A user-space process hit a CPU trap and was killed with a signal: `invalid opcode` (SIGILL: a binary built for a newer CPU, or a deliberate abort such as Rust's or ud2), `divide error` (SIGFPE: integer division by zero), `int3` (a breakpoint).",
        causes: &[
            "a binary compiled for CPU features this machine lacks (AVX-512, x86-64-v3)",
            "a deliberate abort (ud2) in the program",
            "an integer division by zero",
        ],
        check: &[
            "grep -o -w 'avx512f\\|avx2' /proc/cpuinfo | sort -u  # what this CPU offers",
            "coredumpctl list {comm}",
        ],
        fix: &[
            "Build for this CPU (or a baseline target), or run on CPUs that have the features; fix the division in the program.",
        ],
        regex: r"^traps: (?P<comm>.+)\[(?P<pid>\d+)\] trap (?P<trap>[a-z0-9 ]+?) ip:(?P<ip>[0-9a-f]+) sp:(?P<sp>[0-9a-f]+) error:(?P<error>[0-9a-f]+)(?: in (?P<object>[^\[ ]+))?",
    },
    // ---------------------------------------------------------------- storage
    Pattern {
        id: "blk-medium-error",
        title: "Disk medium error (unreadable sector)",
        severity: CRIT,
        noun: ("medium error", "medium errors"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 3,
        format: "critical medium error, dev %s, sector %llu op 0x%x:(%s) flags 0x%x phys_seg %u prio class %u",
        source: "block/blk-mq.c blk_print_req_error() (blk_errors[] in block/blk-core.c)",
        meaning: "The device reported that it cannot read (or write) this sector: bad media. Data in that sector may be lost.",
        causes: &[
            "a failing disk (growing bad sectors)",
            "a failing SSD running out of spare blocks",
        ],
        check: &[
            "smartctl -a /dev/{device}  # Reallocated_Sector_Ct, Current_Pending_Sector, Media_Wearout",
            "nvme smart-log /dev/{device}  # media_errors, percentage_used (NVMe)",
        ],
        fix: &[
            "Replace the disk; restore the affected files from a replica or backup; run a filesystem check.",
        ],
        regex: r"^(?:blk_update_request: |print_req_error: )?critical medium error, dev (?P<device>[^,\s]+), sector (?P<sector>\d+)(?: op 0x(?P<op>[0-9a-f]+):\((?P<op_name>[A-Z_]+)\))?",
    },
    Pattern {
        id: "blk-io-error",
        title: "Block device I/O error",
        severity: CRIT,
        noun: ("I/O error", "I/O errors"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 3,
        format: "%s error, dev %s, sector %llu op 0x%x:(%s) flags 0x%x phys_seg %u prio class %u (before 5.16: blk_update_request: I/O error, dev %s, sector %llu ...)",
        source: "block/blk-mq.c blk_print_req_error() (older block/blk-core.c print_req_error())",
        meaning: "A read, write or flush to the block device failed: the request came back with an error (I/O, timeout, transport, ...). The filesystem or application above sees EIO; this line is ratelimited, so one line means at least one failure.",
        causes: &[
            "a failing disk or SSD",
            "a cable, controller, HBA or PCIe link problem",
            "a network block device or cloud volume that went away (iSCSI, NBD, EBS detach)",
            "a loop device over a file that can no longer be read",
        ],
        check: &[
            "smartctl -a /dev/{device}  # SMART health and error log",
            "dmesg | grep -E '{device}' | tail -50  # resets, timeouts, link errors before it",
            "cat /sys/block/{device}/device/state /sys/block/{device}/stat 2>/dev/null",
        ],
        fix: &[
            "Replace the failing disk or path; for network storage, restore the connection; check the filesystem (fsck/xfs_repair) after.",
        ],
        regex: r"^(?:blk_update_request: |print_req_error: )?(?P<kind>[A-Za-z/ ]+?) error, dev (?P<device>[^,\s]+), sector (?P<sector>\d+)(?: op 0x(?P<op>[0-9a-f]+):\((?P<op_name>[A-Z_]+)\))?",
    },
    Pattern {
        id: "buffer-lost-write",
        title: "Lost asynchronous write (data loss)",
        severity: CRIT,
        noun: ("lost write", "lost writes"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 3,
        format: "Buffer I/O error on dev %pg, logical block %llu, lost async page write (or: lost sync page write)",
        source: "fs/buffer.c mark_buffer_write_io_error() / end_buffer_async_write()",
        meaning: "A write of a buffer to the device failed: for an async write (writeback), after the application's write() had already returned, so that data is lost unless the application checks fsync()'s result; a sync write is usually the filesystem's own metadata (journal, superblock).",
        causes: &["an I/O error on the device underneath (see the `I/O error, dev` lines)"],
        check: &[
            "smartctl -a /dev/{device}",
            "dmesg | grep 'I/O error, dev {device}'",
        ],
        fix: &["Fix or replace the device; check the filesystem; restore the affected files."],
        regex: r"^Buffer I/O error on dev(?:ice)? (?P<device>[^,\s]+), logical block (?P<block>\d+), lost (?:a?sync page )?write",
    },
    Pattern {
        id: "buffer-io-error",
        title: "Buffer I/O error",
        severity: CRIT,
        noun: ("buffer I/O error", "buffer I/O errors"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 2,
        format: "Buffer I/O error on dev %pg, logical block %llu, async page read",
        source: "fs/buffer.c buffer_io_error()",
        meaning: "A filesystem or raw-device read through the page cache failed: the consequence, one level up, of a block I/O error.",
        causes: &["an I/O error on the device underneath"],
        check: &[
            "dmesg | grep 'I/O error, dev {device}'",
            "smartctl -a /dev/{device}",
        ],
        fix: &["Fix or replace the device."],
        regex: r"^Buffer I/O error on dev(?:ice)? (?P<device>[^,\s]+), logical block (?P<block>\d+)",
    },
    Pattern {
        id: "scsi-failed",
        title: "SCSI command failed",
        severity: CRIT,
        noun: ("failed SCSI command", "failed SCSI commands"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 2,
        format: "sd %s: [%s] tag#%d FAILED Result: hostbyte=%s driverbyte=%s cmd_age=%lus",
        source: "drivers/scsi/scsi_logging.c scsi_print_result()",
        meaning: "A SCSI/SATA command to the disk failed; the host byte says whether the transport (DID_TIME_OUT, DID_BAD_TARGET) or the device (DID_OK with sense data) failed. A block I/O error follows.",
        causes: &[
            "a failing disk",
            "a timeout on the bus, a cable or controller problem",
        ],
        check: &[
            "smartctl -a /dev/{device}",
            "dmesg | grep -A3 'FAILED Result' | grep -i sense  # the sense key: Medium Error, Hardware Error",
        ],
        fix: &["Replace the disk or fix the path (cable, HBA, firmware)."],
        regex: r"^sd (?P<hctl>[\d:]+): \[(?P<device>\w+)\] (?:tag#\d+ )?FAILED Result: hostbyte=(?P<hostbyte>\w+) driverbyte=(?P<driverbyte>\w+)",
    },
    Pattern {
        id: "nvme-timeout",
        title: "NVMe command timeout",
        severity: CRIT,
        noun: ("NVMe timeout", "NVMe timeouts"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 2,
        format: "nvme %s: I/O tag %d (%04x) QID %d timeout, aborting req_op:%s(%u) size:%u (older: I/O %d QID %d timeout, aborting)",
        source: "drivers/nvme/host/pci.c nvme_timeout()",
        meaning: "An NVMe command did not complete within nvme_core.io_timeout (30 s): the driver aborts it and, if that fails too, resets the controller. I/O stalls meanwhile.",
        causes: &[
            "SSD firmware bugs, often around power-state transitions (APST)",
            "a PCIe link problem or an overheating drive",
            "a cloud NVMe volume throttled or detached",
        ],
        check: &[
            "nvme smart-log /dev/{device}  # critical_warning, temperature, media_errors",
            "nvme list; nvme fw-log /dev/{device}",
        ],
        fix: &[
            "Update the SSD firmware; try nvme_core.default_ps_max_latency_us=0 (disable APST); replace the drive if it persists.",
        ],
        regex: r"^nvme (?P<device>nvme\d+n?\d*): I/O (?:tag )?(?P<tag>\d+) (?:\(\w+\) )?QID (?P<qid>\d+) timeout, (?P<action>aborting|reset controller|completion polled|disable controller|[a-z]+)",
    },
    Pattern {
        id: "nvme-controller-down",
        title: "NVMe controller down or removed",
        severity: CRIT,
        noun: ("NVMe controller failure", "NVMe controller failures"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 2,
        format: "nvme %s: controller is down; will reset: CSTS=0x%x, PCI_STATUS=0x%hx / Removing after probe failure status: %d",
        source: "drivers/nvme/host/pci.c nvme_timeout(), nvme_remove_dead_ctrl()",
        meaning: "The NVMe controller stopped responding (CSTS=0xffffffff: gone from the PCIe bus) and is being reset or removed. Every filesystem on it fails.",
        causes: &[
            "the SSD died or dropped off the PCIe bus",
            "a power or PCIe link problem",
        ],
        check: &[
            "lspci -vv | grep -A20 -i 'non-volatile'",
            "nvme smart-log /dev/{device}",
        ],
        fix: &["Reseat or replace the drive; update its firmware and the platform BIOS."],
        regex: r"^nvme (?P<device>nvme\d+): (?P<what>controller is down; will reset|Removing after probe failure|Device not ready; aborting reset|Disabling device after reset failure)",
    },
    Pattern {
        id: "ext4-error",
        title: "EXT4 filesystem error",
        severity: CRIT,
        noun: ("EXT4 error", "EXT4 errors"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 3,
        format: "EXT4-fs error (device %s): %s:%d: inode #%lu: block %llu: comm %s: %pV",
        source: "fs/ext4/super.c __ext4_error(), __ext4_error_inode()",
        meaning: "ext4 found on-disk metadata it cannot trust (a bad checksum, an impossible block number, an aborted journal) or got an I/O error reading it. What happens next depends on the errors= mount option: continue, remount read-only (the default for most distributions) or panic.",
        causes: &[
            "I/O errors from the device underneath",
            "corruption from an unclean shutdown on a device that lies about flushes",
            "a kernel bug (rare)",
        ],
        check: &[
            "dmesg | grep -E 'I/O error.*{device}|EXT4-fs.*{device}'",
            "tune2fs -l /dev/{device} | grep -iE 'state|errors|error count'",
            "findmnt -S /dev/{device} -o TARGET,OPTIONS  # mounted ro now?",
        ],
        fix: &[
            "Stop the writers, unmount and run `e2fsck -f /dev/{device}`; check the device (SMART) first; restore from backup if the repair loses files.",
        ],
        regex: r"^EXT4-fs (?:error|critical error)? ?\(device (?P<device>[^)]+)\): (?P<function>\w+):(?P<line>\d+):(?: inode #(?P<inode>\d+):)?(?: block (?P<block>\d+):)?(?: comm (?P<comm>[^:]+):)? ?(?P<detail>.*)",
    },
    Pattern {
        id: "ext4-remount-ro",
        title: "EXT4 remounted read-only",
        severity: CRIT,
        noun: ("read-only remount", "read-only remounts"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 4,
        format: "EXT4-fs (%s): Remounting filesystem read-only",
        source: "fs/ext4/super.c ext4_handle_error()",
        meaning: "After an error (errors=remount-ro), ext4 made the filesystem read-only to stop further damage. Every write now fails with EROFS: pods using it crash or hang, logs stop.",
        causes: &["the EXT4-fs error or journal abort just before it"],
        check: &[
            "findmnt -S /dev/{device}",
            "dmesg | grep -B5 'Remounting filesystem read-only'",
        ],
        fix: &[
            "Fix the device, then unmount and `e2fsck -f /dev/{device}` and mount it again (a reboot of the node if it is the root filesystem).",
        ],
        regex: r"^EXT4-fs \((?P<device>[^)]+)\): Remounting filesystem read-only",
    },
    Pattern {
        id: "ext4-delalloc-failed",
        title: "EXT4 delayed allocation failed (data lost)",
        severity: CRIT,
        noun: ("failed delayed allocation", "failed delayed allocations"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 3,
        format: "EXT4-fs (%s): Delayed block allocation failed for inode %lu at logical offset %llu with max blocks %u with error %d",
        source: "fs/ext4/inode.c mpage_map_and_submit_extent()",
        meaning: "ext4 could not allocate blocks for data already written to the page cache: that data is lost (`This should not happen!! Data will be lost`). Error 28 is ENOSPC, 5 is EIO, 122 is EDQUOT.",
        causes: &[
            "the filesystem is full (error 28) or over quota (122)",
            "an I/O error (5)",
        ],
        check: &[
            "df -h; df -i  # space and inodes",
            "dmesg | grep -i 'I/O error'",
        ],
        fix: &["Free space (or raise the quota) before writers fill it; fix the device on EIO."],
        regex: r"^EXT4-fs \((?P<device>[^)]+)\): Delayed block allocation failed for inode (?P<inode>\d+)(?: at logical offset (?P<offset>\d+))?.*?(?:with error (?P<error>-?\d+))?$",
    },
    Pattern {
        id: "ext4-error-count",
        title: "EXT4 has recorded errors since the last fsck",
        severity: WARN,
        noun: ("EXT4 error reminder", "EXT4 error reminders"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 2,
        format: "EXT4-fs (%s): error count since last fsck: %u",
        source: "fs/ext4/super.c print_daily_error_info()",
        meaning: "ext4 reminds (at mount and daily) that errors were recorded in the superblock and no fsck has cleared them yet.",
        causes: &["earlier filesystem errors that were never repaired"],
        check: &["tune2fs -l /dev/{device} | grep -iE 'error'"],
        fix: &["Schedule an unmount and `e2fsck -f /dev/{device}`."],
        regex: r"^EXT4-fs \((?P<device>[^)]+)\): error count since last fsck: (?P<count>\d+)",
    },
    Pattern {
        id: "ext4-warning",
        title: "EXT4 warning",
        severity: WARN,
        noun: ("EXT4 warning", "EXT4 warnings"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 2,
        format: "EXT4-fs warning (device %s): %s:%d: %pV",
        source: "fs/ext4/super.c __ext4_warning()",
        meaning: "ext4 noticed something unusual that is not (yet) an error; the function and text say what (e.g. a directory index full, `ext4_dx_add_entry: Directory (ino: N) index full, reach max htree level`).",
        causes: &[
            "a directory with too many entries",
            "mount-time inconsistencies",
        ],
        check: &["tune2fs -l /dev/{device}"],
        fix: &[
            "Act on the text: spread files over subdirectories, or enable large_dir; fsck if it mentions corruption.",
        ],
        regex: r"^EXT4-fs warning \(device (?P<device>[^)]+)\): (?P<function>\w+):(?P<line>\d+): (?P<detail>.*)",
    },
    Pattern {
        id: "jbd2-abort",
        title: "Journal aborted",
        severity: CRIT,
        noun: ("journal abort", "journal aborts"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 3,
        format: "Aborting journal on device %s.",
        source: "fs/jbd2/journal.c jbd2_journal_abort()",
        meaning: "The ext4 journal (jbd2) hit an error and stopped: no further metadata changes are committed, and the filesystem is about to go read-only.",
        causes: &["an I/O error writing the journal", "a detected corruption"],
        check: &["dmesg | grep -E 'I/O error|EXT4-fs error' | tail"],
        fix: &["Fix the device, unmount and run e2fsck."],
        regex: r"^Aborting journal on device (?P<device>[^.\s]+(?:\.[^.\s]+)*?)\.?$",
    },
    Pattern {
        id: "jbd2-superblock-io-error",
        title: "Journal superblock write failed",
        severity: CRIT,
        noun: (
            "journal superblock write failure",
            "journal superblock write failures",
        ),
        group_by: &["device"],
        block: Block::Alone,
        rank: 3,
        format: "JBD2: I/O error when updating journal superblock for %s.",
        source: "fs/jbd2/journal.c jbd2_write_superblock()",
        meaning: "jbd2 could not write the journal's superblock: the device underneath fails writes. The journal is aborted next and the filesystem goes read-only (or stops accepting changes).",
        causes: &["an I/O error on the device (see the `I/O error, dev` lines)"],
        check: &[
            "dmesg | grep -E 'I/O error, dev|Aborting journal'",
            "smartctl -a /dev/<disk>",
        ],
        fix: &["Fix or replace the device, then unmount and e2fsck the filesystem."],
        regex: r"^JBD2: I/O error when updating journal superblock for (?P<device>[^.\s]+(?:\.[^.\s]+)*?)\.?$",
    },
    Pattern {
        id: "ext4-superblock-io-error",
        title: "EXT4 superblock write failed",
        severity: CRIT,
        noun: ("superblock write failure", "superblock write failures"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 3,
        format: "EXT4-fs (%s): I/O error while writing superblock",
        source: "fs/ext4/super.c ext4_commit_super()",
        meaning: "ext4 could not write its superblock (where it records its state and errors): the device fails writes.",
        causes: &["an I/O error on the device"],
        check: &[
            "dmesg | grep 'I/O error, dev {device}'",
            "smartctl -a /dev/{device}",
        ],
        fix: &["Fix or replace the device; unmount and `e2fsck -f /dev/{device}`."],
        regex: r"^EXT4-fs \((?P<device>[^)]+)\): I/O error while writing superblock",
    },
    Pattern {
        id: "xfs-shutdown",
        title: "XFS filesystem shut down",
        severity: CRIT,
        noun: ("XFS shutdown", "XFS shutdowns"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 4,
        format: "XFS (%s): %s (0x%x) detected at %pS (%s:%d).  Shutting down filesystem.",
        source: "fs/xfs/xfs_fsops.c xfs_do_force_shutdown()",
        meaning: "XFS stopped the filesystem after a log I/O error or in-memory corruption: every operation on it now fails with EIO until it is unmounted (`Please unmount the filesystem and rectify the problem(s)`).",
        causes: &[
            "an I/O error writing the log or metadata",
            "corruption found in memory (a bug or bad RAM)",
        ],
        check: &["dmesg | grep 'XFS ({device})'", "smartctl -a /dev/{device}"],
        fix: &[
            "Unmount, run `xfs_repair /dev/{device}` (mount once first to replay the log, or -L as a last resort), and fix the device.",
        ],
        regex: r"^XFS \((?P<device>[^)]+)\): (?P<detail>.*(?:Shutting down filesystem|Filesystem has been shut down|Corruption of in-memory data).*)",
    },
    Pattern {
        id: "xfs-metadata-io-error",
        title: "XFS metadata I/O error",
        severity: CRIT,
        noun: ("XFS metadata I/O error", "XFS metadata I/O errors"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 3,
        format: "XFS (%s): metadata I/O error in \"%pS\" at daddr 0x%llx len %d error %d",
        source: "fs/xfs/xfs_buf.c xfs_buf_ioerror_alert()",
        meaning: "XFS could not read or write a metadata block; error is the errno (5 = EIO, 117 = EFSCORRUPTED).",
        causes: &["an I/O error on the device", "on-disk corruption (117)"],
        check: &["dmesg | grep 'I/O error, dev'", "smartctl -a /dev/{device}"],
        fix: &["Fix the device; unmount and xfs_repair."],
        regex: r#"^XFS \((?P<device>[^)]+)\): metadata I/O error in "(?P<function>[^"]+)" at daddr (?P<daddr>0x[0-9a-f]+) len (?P<len>\d+) error (?P<error>\d+)"#,
    },
    Pattern {
        id: "xfs-corruption",
        title: "XFS metadata corruption",
        severity: CRIT,
        noun: ("XFS corruption", "XFS corruptions"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 3,
        format: "XFS (%s): Metadata corruption detected at %pS, %s block 0x%llx",
        source: "fs/xfs/xfs_error.c xfs_verifier_error(), xfs_corruption_error()",
        meaning: "A metadata block failed XFS's verifier (bad magic, checksum or contents): the on-disk structure is corrupt. The operation fails with EFSCORRUPTED.",
        causes: &[
            "corruption from the device or an unclean shutdown",
            "a kernel bug",
        ],
        check: &["xfs_repair -n /dev/{device}  # read-only check (unmounted)"],
        fix: &["Unmount and xfs_repair; restore lost files from backup."],
        regex: r"^XFS \((?P<device>[^)]+)\): (?:Metadata corruption detected|Corruption detected|Metadata CRC error detected)(?: at (?P<function>[^\s,]+))?",
    },
    Pattern {
        id: "nfs-not-responding",
        title: "NFS server not responding",
        severity: CRIT,
        noun: ("NFS timeout", "NFS timeouts"),
        group_by: &["server"],
        block: Block::Alone,
        rank: 3,
        format: "%s: server %s not responding, still trying (or: timed out)",
        source: "net/sunrpc/clnt.c rpc_check_timeout() (%s is the RPC program: nfs, lockd, ...)",
        meaning: "RPCs to this server timed out. On a hard mount (the default) the client retries forever: every process touching the mount hangs in D state (see hung-task reports) until the server answers (`server ... OK`). On a soft mount the calls fail with EIO.",
        causes: &[
            "the NFS server is down, overloaded or restarting",
            "a network problem between client and server (routing, firewall, MTU mismatch dropping large packets)",
        ],
        check: &[
            "rpcinfo -p {server}; showmount -e {server}",
            "ping -M do -s 8972 {server}  # jumbo frames end to end? (use 1472 for MTU 1500)",
            "nfsstat -c; mountstats  # retransmissions per mount",
        ],
        fix: &[
            "Bring the server back or fix the path to it; for mounts that must not hang nodes, use timeo/retrans with soft or a local cache.",
        ],
        regex: r"^(?P<program>[\w-]+): server (?P<server>\S+) not responding, (?P<state>still trying|timed out)",
    },
    Pattern {
        id: "nfs-server-ok",
        title: "NFS server answering again",
        severity: INFO,
        noun: ("NFS recovery", "NFS recoveries"),
        group_by: &["server"],
        block: Block::Alone,
        rank: 1,
        format: "%s: server %s OK",
        source: "net/sunrpc/clnt.c call_decode()",
        meaning: "The server answered again after `not responding`; hung processes continue.",
        causes: &["the server or the network recovered"],
        check: &["nfsstat -c"],
        fix: &["Nothing now; find why it stopped answering if it repeats."],
        regex: r"^(?P<program>[\w-]+): server (?P<server>\S+) OK$",
    },
    // ---------------------------------------------------------------- network
    Pattern {
        id: "conntrack-table-full",
        title: "Connection-tracking table full: packets dropped",
        severity: CRIT,
        noun: ("conntrack-full drop report", "conntrack-full drop reports"),
        group_by: &["netns"],
        block: Block::Alone,
        rank: 3,
        format: "nf_conntrack: table full, dropping packet (6.x: table full in netns %u, dropping packet)",
        source: "net/netfilter/nf_conntrack_core.c __nf_conntrack_alloc() (net_warn_ratelimited)",
        meaning: "The conntrack table (of the network namespace named, on newer kernels) reached net.netfilter.nf_conntrack_max, so packets that would create a new entry are dropped: new connections time out at random while established ones work. Ratelimited: one line stands for many drops.",
        causes: &[
            "many short connections (NodePort/kube-proxy traffic, DNS over UDP) with long timeouts",
            "a connection flood or scan",
            "a table size set for a smaller machine",
        ],
        check: &[
            "cat /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max",
            "conntrack -S  # drop and insert_failed counters per CPU",
            "conntrack -L -o extended | awk '{print $1, $3}' | sort | uniq -c | sort -rn | head  # what fills it",
        ],
        fix: &[
            "Raise net.netfilter.nf_conntrack_max (and nf_conntrack_buckets) to fit the load; shorten nf_conntrack_tcp_timeout_time_wait / udp timeouts.",
            "Exempt hot stateless flows with NOTRACK (raw table), e.g. node-local DNS.",
        ],
        regex: r"^(?:nf_conntrack: )+table full(?: in netns (?P<netns>\d+))?, dropping packet",
    },
    Pattern {
        id: "syn-flood",
        title: "Listen queue full: possible SYN flooding",
        severity: WARN,
        noun: ("SYN-flood warning", "SYN-flood warnings"),
        group_by: &["port"],
        block: Block::Alone,
        rank: 3,
        format: "%s: Possible SYN flooding on port [%pISc]:%u. %s. (older: Possible SYN flooding on port %d. Sending cookies.  Check SNMP counters.)",
        source: "net/ipv4/tcp_input.c tcp_syn_flood_action()",
        meaning: "The SYN backlog of a listening socket on this port is full: the kernel answers with SYN cookies (or drops SYNs). It is usually not an attack but a server that accepts too slowly for its backlog, under a burst of connections.",
        causes: &[
            "the application calls accept() too slowly (a saturated or blocked accept loop)",
            "a listen() backlog or net.core.somaxconn too small for the connection rate",
            "a real SYN flood",
        ],
        check: &[
            "ss -ltn 'sport = :{port}'  # Recv-Q (queued) vs Send-Q (backlog)",
            "nstat -az TcpExtListenOverflows TcpExtListenDrops TcpExtSyncookiesSent",
            "sysctl net.core.somaxconn net.ipv4.tcp_max_syn_backlog",
        ],
        fix: &[
            "Raise the application's listen backlog together with net.core.somaxconn and net.ipv4.tcp_max_syn_backlog; make accept() keep up (more acceptor threads).",
        ],
        regex: r"^(?:TCP: )?(?:request_sock_(?P<proto>TCPv?6?|MPTCP): )?Possible SYN flooding on port (?:(?P<addr>\[[^\]]*\]|[0-9.]+):)?(?P<port>\d+)\.",
    },
    Pattern {
        id: "tcp-out-of-memory",
        title: "TCP out of memory",
        severity: CRIT,
        noun: ("TCP memory exhaustion", "TCP memory exhaustions"),
        group_by: &[],
        block: Block::Alone,
        rank: 3,
        format: "TCP: out of memory -- consider tuning tcp_mem",
        source: "net/ipv4/tcp.c tcp_out_of_memory() (via tcp_check_oom())",
        meaning: "TCP socket buffers together passed net.ipv4.tcp_mem's hard limit (in pages): the kernel drops data and resets sockets to recover.",
        causes: &[
            "many connections with full buffers: peers or applications that do not read",
            "tcp_mem set too low for the machine",
        ],
        check: &[
            "cat /proc/net/sockstat  # TCP: mem (pages) vs net.ipv4.tcp_mem",
            "ss -tmn | sort -k2 -rn | head  # sockets with the largest queues",
        ],
        fix: &[
            "Find the slow readers (large Recv-Q/Send-Q); raise net.ipv4.tcp_mem if the machine has the memory.",
        ],
        regex: r"^TCP: out of memory -- consider tuning tcp_mem",
    },
    Pattern {
        id: "tcp-too-many-orphans",
        title: "Too many orphaned TCP sockets",
        severity: WARN,
        noun: ("orphan overflow", "orphan overflows"),
        group_by: &[],
        block: Block::Alone,
        rank: 3,
        format: "TCP: too many orphaned sockets",
        source: "net/ipv4/tcp.c tcp_out_of_memory() / tcp_check_oom()",
        meaning: "Closed sockets still sending (orphans, FIN_WAIT) passed net.ipv4.tcp_max_orphans: new ones are reset instead of closed gracefully.",
        causes: &[
            "a server closing many connections to peers that do not acknowledge",
            "tcp_max_orphans too low",
        ],
        check: &[
            "cat /proc/net/sockstat  # orphan count",
            "ss -tan state fin-wait-1 | wc -l",
        ],
        fix: &[
            "Raise net.ipv4.tcp_max_orphans if memory allows; shorten tcp_fin_timeout; find the unresponsive peers.",
        ],
        regex: r"^TCP: too many (?:of )?orphaned sockets",
    },
    Pattern {
        id: "neighbour-table-overflow",
        title: "Neighbour (ARP/NDP) table overflow",
        severity: WARN,
        noun: ("neighbour-table overflow", "neighbour-table overflows"),
        group_by: &["table"],
        block: Block::Alone,
        rank: 3,
        format: "neighbour: %s: neighbor table overflow!",
        source: "net/core/neighbour.c neigh_alloc()",
        meaning: "The ARP (arp_cache) or IPv6 neighbour (ndisc_cache) table is at gc_thresh3 and cannot add entries: traffic to new neighbours fails until old entries expire. Common on large flat pod networks.",
        causes: &[
            "more neighbours on the node's links than net.ipv4.neigh.default.gc_thresh3 (1024 by default)",
        ],
        check: &[
            "ip -4 neigh show | wc -l; ip -6 neigh show | wc -l",
            "sysctl net.ipv4.neigh.default.gc_thresh1 net.ipv4.neigh.default.gc_thresh2 net.ipv4.neigh.default.gc_thresh3",
        ],
        fix: &[
            "Raise net.ipv4.neigh.default.gc_thresh{1,2,3} (and the ipv6 ones) above the neighbour count, e.g. 4096/8192/16384.",
        ],
        regex: r"^(?:neighbour: (?P<table>\w+): neighbor table overflow!|Neighbour table overflow\.)",
    },
    Pattern {
        id: "netdev-watchdog",
        title: "NIC transmit queue timed out",
        severity: CRIT,
        noun: ("TX timeout", "TX timeouts"),
        group_by: &["device"],
        block: Block::Starts(Kind::Stack),
        rank: 3,
        format: "NETDEV WATCHDOG: %s (%s): transmit queue %u timed out %u ms",
        source: "net/sched/sch_generic.c dev_watchdog()",
        meaning: "A network interface's transmit queue made no progress for the watchdog timeout: the driver resets the NIC, dropping traffic for a moment. A WARNING stack follows.",
        causes: &[
            "NIC driver or firmware bugs",
            "a hung PCIe device",
            "flow-control pause frames from the switch",
        ],
        check: &[
            "ethtool -i {device}  # driver and firmware version",
            "ethtool -S {device} | grep -iE 'timeout|reset|err'",
        ],
        fix: &["Update the NIC driver and firmware; check the switch port and cabling."],
        regex: r"^NETDEV WATCHDOG: (?:CPU: (?P<cpu>\d+): )?(?:(?P<device>[\w.\-@]+) \((?P<driver>[^)]+)\): )?transmit queue (?P<queue>\d+) timed out(?: (?P<ms>\d+) ms)?",
    },
    Pattern {
        id: "nic-link-down",
        title: "Network link down",
        severity: WARN,
        noun: ("link-down event", "link-down events"),
        group_by: &["device"],
        block: Block::Alone,
        rank: 2,
        format: "%s NIC Link is Down (e1000e/igb/ixgbe/i40e)",
        source: "drivers/net/ethernet/intel/e1000e/netdev.c e1000_print_link_info() and the other Intel drivers' watchdog tasks",
        meaning: "The physical link of this interface went down: no traffic passes until `NIC Link is Up`.",
        causes: &[
            "a cable, transceiver or switch port problem",
            "the switch side was reconfigured or rebooted",
        ],
        check: &[
            "ethtool {device}  # Link detected, speed",
            "ip -s link show {device}",
        ],
        fix: &["Check the cable, transceiver and switch port; bond interfaces for redundancy."],
        regex: r"^(?:.*? )?(?P<device>[\w.\-]+):? NIC Link is Down",
    },
    // ---------------------------------------------------------------- memory allocation
    Pattern {
        id: "page-allocation-failure",
        title: "Page allocation failure",
        severity: WARN,
        noun: ("allocation failure", "allocation failures"),
        group_by: &["comm"],
        block: Block::Starts(Kind::Stack),
        rank: 3,
        format: "%s: page allocation failure: order:%u, mode:%#x(%pGg), nodemask=%*pbl,cpuset=%s,mems_allowed=%*pbl",
        source: "mm/page_alloc.c warn_alloc()",
        meaning: "The kernel could not find 2^order contiguous free pages for an allocation that may not wait long (mode says: GFP_ATOMIC in interrupt context, GFP_NOWAIT). Memory may be plentiful but fragmented. The caller usually copes (a NIC driver drops a packet and retries); a stack and a memory summary follow.",
        causes: &[
            "fragmentation: order > 0 allocations (jumbo frames, large socket buffers) on a long-running machine",
            "free memory below vm.min_free_kbytes under a burst of atomic allocations",
        ],
        check: &[
            "cat /proc/buddyinfo  # free blocks per order: zeros at high orders mean fragmentation",
            "grep -E 'MemFree|MemAvailable' /proc/meminfo; sysctl vm.min_free_kbytes",
        ],
        fix: &[
            "Raise vm.min_free_kbytes so atomic allocations have a reserve; trigger compaction (echo 1 > /proc/sys/vm/compact_memory).",
            "Lower the order needed (smaller MTU, driver options) if it is a NIC driver.",
        ],
        regex: r"^(?P<comm>.+?): page allocation failure: order:(?P<order>\d+), mode:(?P<gfp_mask>0x[0-9a-f]+)(?:\((?P<gfp_flags>[^)]*)\))?",
    },
    Pattern {
        id: "slub-out-of-memory",
        title: "Slab allocation failed",
        severity: WARN,
        noun: ("slab allocation failure", "slab allocation failures"),
        group_by: &["cache"],
        block: Block::Alone,
        rank: 2,
        format: "SLUB: Unable to allocate memory on node %d, gfp=%#x(%pGg)",
        source: "mm/slub.c slab_out_of_memory()",
        meaning: "The slab allocator could not get pages for a kernel object cache; the lines after name the cache (`cache: %s, object size: %u ...`).",
        causes: &[
            "memory exhaustion or fragmentation",
            "a memory cgroup at its limit (kmem accounting)",
        ],
        check: &[
            "slabtop -o | head -20",
            "grep -E 'MemAvailable|Slab' /proc/meminfo",
        ],
        fix: &["Find what fills memory; for memcg kmem failures, raise the cgroup's limit."],
        regex: r"^SLUB: Unable to allocate memory on (?:node (?P<node>-?\d+)|CPU (?P<cpu>\d+)), gfp=(?P<gfp_mask>0x[0-9a-f]+)",
    },
    Pattern {
        id: "file-max-reached",
        title: "System-wide file descriptor limit reached",
        severity: CRIT,
        noun: ("file-max hit", "file-max hits"),
        group_by: &[],
        block: Block::Alone,
        rank: 3,
        format: "VFS: file-max limit %lu reached",
        source: "fs/file_table.c alloc_empty_file()",
        meaning: "The whole machine has fs.file-max open files: every open(), socket() and accept() by unprivileged processes fails with ENFILE.",
        causes: &[
            "a process leaking descriptors (sockets, files)",
            "fs.file-max set low for the workload",
        ],
        check: &[
            "cat /proc/sys/fs/file-nr  # allocated, free, max",
            "for p in /proc/[0-9]*; do echo \"$(ls $p/fd 2>/dev/null | wc -l) $(cat $p/comm)\"; done | sort -rn | head  # the biggest holders",
            "kerno explain --rule fd-leak",
        ],
        fix: &[
            "Fix the leak (kerno doctor's fd-leak finding names it); raise fs.file-max if the load is legitimate.",
        ],
        regex: r"^VFS: file-max limit (?P<limit>\d+) reached",
    },
    Pattern {
        id: "pids-fork-rejected",
        title: "fork() rejected by the pids controller",
        severity: CRIT,
        noun: ("rejected fork", "rejected forks"),
        group_by: &["pod", "cgroup"],
        block: Block::Alone,
        rank: 3,
        format: "cgroup: fork rejected by pids controller in %s",
        source: "kernel/cgroup/pids.c pids_fork_event() (pids_can_fork())",
        meaning: "A process in this cgroup tried to fork or create a thread, but the cgroup already has pids.max tasks: fork()/clone() fails with EAGAIN (`Resource temporarily unavailable`). Printed once per cgroup; pids.events counts every rejection.",
        causes: &[
            "a thread or process leak (a pool without a bound, children never reaped)",
            "a fork bomb",
            "a limit too low for the workload (the kubelet's podPidsLimit, systemd TasksMax=)",
        ],
        check: &[
            "cat /sys/fs/cgroup/pids{cgroup}/pids.current /sys/fs/cgroup/pids{cgroup}/pids.max /sys/fs/cgroup/pids{cgroup}/pids.events  # cgroup v1",
            "cat /sys/fs/cgroup{cgroup}/pids.current /sys/fs/cgroup{cgroup}/pids.max /sys/fs/cgroup{cgroup}/pids.events  # cgroup v2",
            "ps -eLf | awk '{print $2}' | sort | uniq -c | sort -rn | head  # threads per process",
        ],
        fix: &[
            "Fix the leak, or raise the limit (podPidsLimit in the kubelet config, TasksMax= of the unit, pids.max).",
        ],
        regex: r"^cgroup: fork rejected by pids controller in (?P<cgroup>\S+)",
    },
    // ---------------------------------------------------------------- hardware
    Pattern {
        id: "mce-events-logged",
        title: "Machine check events logged",
        severity: WARN,
        noun: ("machine-check notice", "machine-check notices"),
        group_by: &[],
        block: Block::Alone,
        rank: 3,
        format: "mce: [Hardware Error]: Machine check events logged",
        source: "arch/x86/kernel/cpu/mce/core.c mce_notify_irq()",
        meaning: "The CPU reported hardware errors (memory, cache, bus) through the machine-check architecture; the details went to the MCE log (rasdaemon/mcelog), not necessarily to the kernel log.",
        causes: &[
            "corrected memory errors on a DIMM",
            "CPU cache or interconnect errors",
        ],
        check: &[
            "ras-mc-ctl --summary; ras-mc-ctl --errors",
            "journalctl -u rasdaemon; mcelog --client",
        ],
        fix: &[
            "If corrected errors repeat on one DIMM or bank, replace it before they become uncorrectable.",
        ],
        regex: r"^mce: \[Hardware Error\]: Machine check events logged",
    },
    Pattern {
        id: "mce-hardware-error",
        title: "Hardware error reported by a machine check",
        severity: CRIT,
        noun: ("hardware error", "hardware errors"),
        group_by: &["cpu", "bank"],
        block: Block::Alone,
        rank: 3,
        format: "[Hardware Error]: CPU %d: Machine Check%s: %Lx Bank %d: %016Lx",
        source: "arch/x86/kernel/cpu/mce/core.c print_mce() (and drivers/edac, drivers/acpi/apei/ghes.c)",
        meaning: "A machine check with details: the CPU, the MCA bank (which unit: memory controller, cache, bus) and the status. `Corrected error` means the hardware fixed it; an uncorrected one may have killed a process or panicked the machine.",
        causes: &[
            "failing memory (DIMM)",
            "CPU cache or interconnect faults",
            "overheating or bad power",
        ],
        check: &[
            "ras-mc-ctl --errors  # decoded, with the DIMM label",
            "mcelog --ascii < /dev/mcelog  # older setups",
        ],
        fix: &[
            "Replace the DIMM or CPU the errors point to; update BIOS/microcode; check cooling.",
        ],
        regex: r"^(?:mce: )?\[Hardware Error\]: (?:CPU (?P<cpu>\d+): Machine Check(?: Exception)?: (?P<mcg>\S+) Bank (?P<bank>\d+): (?P<status>[0-9a-f]+)|(?P<detail>.+))",
    },
    Pattern {
        id: "edac-memory-error",
        title: "EDAC memory error",
        severity: CRIT,
        noun: ("memory error", "memory errors"),
        group_by: &["mc", "kind"],
        block: Block::Alone,
        rank: 3,
        format: "EDAC MC%d: %d %s %s on %s (%s page:0x%lx offset:0x%lx grain:%d syndrome:0x%lx - %s)",
        source: "drivers/edac/edac_mc.c edac_mc_handle_error() / edac_raw_mc_handle_error()",
        meaning: "The memory controller reported errors: CE = corrected (ECC fixed it), UE = uncorrected (data was lost; the process or the machine died). The text names the channel and DIMM.",
        causes: &["a failing DIMM", "a bad slot or memory controller"],
        check: &["ras-mc-ctl --summary; edac-util -v  # errors per DIMM"],
        fix: &["Replace the DIMM that accumulates errors; UE errors: replace it now."],
        regex: r"^EDAC (?:MC)?(?P<mc>\d+): (?P<count>\d+) (?P<kind>CE|UE) (?P<detail>.*)",
    },
    Pattern {
        id: "thermal-throttle",
        title: "CPU throttled for temperature",
        severity: WARN,
        noun: ("thermal throttling event", "thermal throttling events"),
        group_by: &["cpu"],
        block: Block::Alone,
        rank: 3,
        format: "CPU%d: %s temperature above threshold, cpu clock throttled (total events = %lu)",
        source: "drivers/thermal/intel/therm_throt.c therm_throt_process()",
        meaning: "The CPU (core or package) got too hot and lowered its clock: everything on it runs slower, and latencies spike.",
        causes: &[
            "failed fans, blocked airflow, dried thermal paste",
            "sustained full load beyond the cooling's capacity",
        ],
        check: &[
            "sensors  # temperatures",
            "grep MHz /proc/cpuinfo | sort | uniq -c",
            "cat /sys/devices/system/cpu/cpu*/thermal_throttle/*_throttle_count",
        ],
        fix: &["Fix the cooling; spread the load; check the BIOS power/thermal settings."],
        regex: r"^CPU(?P<cpu>\d+): (?P<what>Core|Package) temperature above threshold, cpu clock throttled \(total events = (?P<events>\d+)\)",
    },
    // ---------------------------------------------------------------- the log itself
    Pattern {
        id: "callbacks-suppressed",
        title: "Repeated messages suppressed (ratelimited)",
        severity: INFO,
        noun: ("suppression notice", "suppression notices"),
        group_by: &["name"],
        block: Block::Alone,
        rank: 1,
        format: "%s: %d callbacks suppressed",
        source: "lib/ratelimit.c ___ratelimit()",
        meaning: "A ratelimited message (the name is usually the function that prints it, or net_ratelimit for networking) repeated this many more times than were printed. The count belongs to that message: the problem is bigger than the printed lines show.",
        causes: &["a message printed in a burst (I/O errors, conntrack drops, segfaults)"],
        check: &["dmesg | grep -B3 'callbacks suppressed'  # the message it belongs to"],
        fix: &["Deal with the message it suppressed; the count says how often it happened."],
        regex: r"^(?P<name>[\w.\-]+): (?P<count>\d+) callbacks suppressed",
    },
    Pattern {
        id: "audit-backlog",
        title: "Audit backlog limit exceeded",
        severity: WARN,
        noun: ("audit backlog overflow", "audit backlog overflows"),
        group_by: &[],
        block: Block::Alone,
        rank: 2,
        format: "audit: audit_backlog=%d > audit_backlog_limit=%d",
        source: "kernel/audit.c audit_log_start()",
        meaning: "The audit subsystem produces records faster than auditd reads them; records are lost (`audit: audit_lost=...`), or with failure mode 2 the kernel panics.",
        causes: &[
            "auditd stopped or slow",
            "very verbose audit rules (syscall rules on hot paths)",
        ],
        check: &[
            "auditctl -s  # backlog, lost, backlog_limit",
            "systemctl status auditd",
        ],
        fix: &[
            "Restart or speed up auditd; raise the backlog limit (auditctl -b); narrow the rules.",
        ],
        regex: r"^audit: (?:audit_backlog=(?P<backlog>\d+) > audit_backlog_limit=(?P<limit>\d+)|kauditd hold queue overflow|backlog limit exceeded)",
    },
];

static COMPILED: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .map(|p| Regex::new(p.regex).unwrap_or_else(|e| panic!("pattern {}: {e}", p.id)))
        .collect()
});

/// The knowledge base entry with this id.
pub fn pattern(id: &str) -> Option<&'static Pattern> {
    PATTERNS.iter().find(|p| p.id == id)
}

/// The first pattern that matches `msg` (a message with its prefixes stripped), with the
/// fields its named groups captured.
pub fn classify(msg: &str) -> Option<(&'static Pattern, Vec<(String, String)>)> {
    for (p, re) in PATTERNS.iter().zip(COMPILED.iter()) {
        let Some(caps) = re.captures(msg) else {
            continue;
        };
        let mut fields = Vec::new();
        for name in re.capture_names().flatten() {
            if let Some(m) = caps.name(name) {
                let v = m.as_str().trim();
                if v.is_empty() {
                    continue;
                }
                let key = name.trim_end_matches(|c: char| c.is_ascii_digit());
                fields.push((key.to_string(), v.to_string()));
            }
        }
        return Some((p, fields));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles_and_is_documented() {
        assert_eq!(COMPILED.len(), PATTERNS.len());
        assert!(PATTERNS.len() >= 40, "{}", PATTERNS.len());
        let mut ids: Vec<_> = PATTERNS.iter().map(|p| p.id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), PATTERNS.len(), "duplicate ids");
        for p in PATTERNS {
            assert!(
                p.id.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            );
            for s in [p.title, p.format, p.source, p.meaning] {
                assert!(!s.is_empty(), "{}", p.id);
            }
            assert!(p.source.contains('/'), "{}: cite the source file", p.id);
            assert!(
                !p.causes.is_empty() && !p.check.is_empty() && !p.fix.is_empty(),
                "{}",
                p.id
            );
        }
    }
}
