//! Fixtures for Kerno's micro-benchmarks (`cargo bench -p kerno-benches`): big,
//! deterministic windows built in code, the size of a busy node, so the benchmarks time the
//! user-space hot paths on realistic input without a kernel.
//!
//! The overhead benchmark (the probes' cost per kernel event, next to bpftrace) is
//! `benches/overhead.sh`; the method and the numbers are in `docs/performance.md`.
#![deny(missing_docs)]

use std::collections::BTreeMap;

use kerno_core::{
    CgroupMemory, DelayedProcess, DiskDevice, DiskOp, DiskSignals, FdProcess, FdSignals, Histogram,
    Host, MemorySignals, OomKill, OomSignals, Process, ProcessErrors, ProcessSlow, SchedSignals,
    Signals, SyscallSignals, SyscallStat, TcpFlow, TcpSignals, Window,
};
use kerno_probes::syscalls;

/// A small deterministic generator (a 64-bit LCG), so fixtures are the same on every run.
#[derive(Clone, Debug)]
pub struct Lcg(u64);

impl Lcg {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Lcg {
        Lcg(seed)
    }

    /// The next 31-bit value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A latency in ns, log-uniform between `lo_ns` and `hi_ns` (the shape real latencies
    /// have: most samples near the bottom, a long tail, buckets over many powers of two).
    pub fn log_uniform(&mut self, lo_ns: u64, hi_ns: u64) -> u64 {
        let (lo, hi) = ((lo_ns.max(1)) as f64, (hi_ns.max(lo_ns + 1)) as f64);
        let u = self.next_u64() as f64 / (1u64 << 31) as f64;
        (lo * (hi / lo).powf(u)) as u64
    }
}

/// A latency histogram of `samples` values, log-uniform in `lo_ns..hi_ns`.
pub fn latency_histogram(rng: &mut Lcg, samples: u64, lo_ns: u64, hi_ns: u64) -> Histogram {
    let mut h = Histogram::new();
    // Record in groups (as a kernel histogram fills), so building a million-sample
    // histogram stays quick.
    let groups = samples.min(4096);
    for g in 0..groups {
        let n = samples / groups + u64::from(g < samples % groups);
        h.record_n(rng.log_uniform(lo_ns, hi_ns), n);
    }
    h
}

/// How big a window [`big_signals`] builds.
#[derive(Clone, Copy, Debug)]
pub struct Scale {
    /// Syscalls that ran in the window (each with a latency histogram).
    pub syscalls: usize,
    /// Distinct processes (they appear in the per-syscall top lists, fds, run-queue delays).
    pub processes: usize,
    /// Memory cgroups with a limit.
    pub cgroups: usize,
    /// Processes per list (top errors and top slow per syscall, top delayed, top flows).
    pub top: usize,
}

impl Scale {
    /// A busy node: every x86-64 syscall that exists, thousands of processes, hundreds of
    /// pods' cgroups.
    pub const BIG: Scale = Scale {
        syscalls: 360,
        processes: 4000,
        cgroups: 600,
        top: 10,
    };
    /// A quiet laptop.
    pub const SMALL: Scale = Scale {
        syscalls: 60,
        processes: 300,
        cgroups: 20,
        top: 3,
    };
}

const MS: u64 = 1_000_000;

fn process(rng: &mut Lcg, scale: Scale, pid: u32) -> Process {
    let pod = (pid as usize) % scale.cgroups.max(1);
    Process {
        pid,
        comm: format!("worker-{}", pid % 97),
        cgroup: Some(format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{pod:04x}.slice/cri-containerd-{:016x}.scope",
            rng.next_u64()
        )),
        pod: Some(format!("team-{}/api-{pod}", pod % 7)),
        container: Some(format!("{:016x}", rng.next_u64())),
        attribution: Default::default(),
    }
}

/// A 30-second window of a busy node at `scale`, with a few real problems in it (slow and
/// failing syscalls, a descriptor leak, cgroups near their limit, run-queue contention, a
/// slow disk, retransmits, OOM kills), so the rules have findings to write and the
/// renderers have findings to render.
pub fn big_signals(scale: Scale) -> Signals {
    let mut rng = Lcg::new(0x6b65726e6f);
    let pid_of = |i: usize| 1000 + i as u32;
    let window_secs = 30;

    // Syscalls: the numbers that exist on this architecture, busiest first.
    let mut syscall_stats = Vec::new();
    let mut nr = 0u32;
    while syscall_stats.len() < scale.syscalls && nr < 512 {
        let name = syscalls::name(nr);
        nr += 1;
        if name.starts_with("syscall_") {
            continue;
        }
        let i = syscall_stats.len();
        let count = 2_000_000 / (i as u64 + 1) + 50;
        // Every 40th syscall is slow (p99 well past 100 ms), every 25th fails often.
        let hi = if i % 40 == 7 { 900 * MS } else { 2 * MS };
        let latency = latency_histogram(&mut rng, count, 300, hi);
        let errors = if i % 25 == 3 { count / 8 } else { count / 1000 };
        let mut errnos = BTreeMap::new();
        if errors > 0 {
            errnos.insert("EIO".to_string(), errors * 3 / 4);
            errnos.insert("EAGAIN".to_string(), errors - errors * 3 / 4);
        }
        let top_errors = (0..scale.top)
            .map(|k| ProcessErrors {
                process: process(&mut rng, scale, pid_of((i * 13 + k) % scale.processes)),
                errno: if k % 2 == 0 { "EIO" } else { "EAGAIN" }.into(),
                count: errors / (k as u64 + 2),
            })
            .collect();
        let top_slow = (0..scale.top)
            .map(|k| ProcessSlow {
                process: process(&mut rng, scale, pid_of((i * 7 + k) % scale.processes)),
                count: 100 / (k as u64 + 1),
                mean_ns: 3 * MS,
                max_ns: hi,
            })
            .collect();
        syscall_stats.push(SyscallStat {
            nr: nr - 1,
            wait: syscalls::class_of(nr - 1) & kerno_probes::common::class::WAIT != 0,
            name,
            count,
            errors,
            errnos,
            latency,
            top_errors,
            top_slow,
        });
    }
    let total_calls = syscall_stats.iter().map(|s| s.count).sum();
    let total_errors = syscall_stats.iter().map(|s| s.errors).sum();

    // Descriptors: every process opens and closes; every 50th leaks.
    let fd_processes = (0..scale.processes)
        .map(|i| {
            let leak = i % 50 == 11;
            let per_interval: Vec<i64> = (0..window_secs)
                .map(|_| {
                    if leak {
                        40 + rng.below(10) as i64
                    } else {
                        rng.below(5) as i64 - 2
                    }
                })
                .collect();
            let net: i64 = per_interval.iter().sum();
            let closes = 500 + rng.below(500);
            FdProcess {
                process: process(&mut rng, scale, pid_of(i)),
                opens: (closes as i64 + net).max(0) as u64,
                closes,
                open_fds: Some(200 + net.max(0) as u64),
                soft_limit: Some(if leak { 4096 } else { 1_048_576 }),
                net_per_interval: per_interval,
                net_series: Default::default(),
            }
        })
        .collect();

    let top_delayed = (0..scale.top * 10)
        .map(|k| DelayedProcess {
            process: process(&mut rng, scale, pid_of(k * 3 % scale.processes)),
            count: 400 / (k as u64 + 1) + 1,
            total_ns: 900 * MS / (k as u64 + 1),
            max_ns: 40 * MS,
        })
        .collect();

    let devices = (0..16)
        .map(|d| DiskDevice {
            dev: format!("259:{d}"),
            name: format!("nvme{}n1", d),
            ops: ["read", "write", "flush", "discard", "other"]
                .iter()
                .map(|op| {
                    let slow = d == 2 && *op == "flush";
                    let latency = latency_histogram(
                        &mut rng,
                        50_000,
                        20_000,
                        if slow { 400 * MS } else { 5 * MS },
                    );
                    DiskOp {
                        op: op.to_string(),
                        count: latency.count(),
                        bytes: latency.count() * 4096,
                        errors: 0,
                        latency,
                    }
                })
                .collect(),
            ..Default::default()
        })
        .collect();

    let top_flows = (0..scale.top * 10)
        .map(|k| TcpFlow {
            local: format!("10.0.{}.{}:{}", k / 250, k % 250 + 1, 40000 + k),
            remote: format!("10.1.0.{}:443", k % 250 + 1),
            retransmits: 5000 / (k as u64 + 1),
            process: Some(process(&mut rng, scale, pid_of(k % scale.processes))),
        })
        .collect();

    let cgroups = (0..scale.cgroups)
        .map(|c| {
            let limit = (512 + rng.below(4096)) << 20;
            // Every 30th is nearly full and growing.
            let full = c % 30 == 5;
            let usage = if full { limit / 100 * 97 } else { limit / 3 };
            CgroupMemory {
                path: format!(
                    "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{c:04x}.slice"
                ),
                version: 2,
                usage_start_bytes: if full { usage - (40 << 20) } else { usage },
                usage_bytes: usage,
                limit_bytes: limit,
                oom_kills: u64::from(c % 200 == 9),
                processes: (0..3)
                    .map(|k| process(&mut rng, scale, pid_of((c * 3 + k) % scale.processes)))
                    .collect(),
                pod: Some(format!("team-{}/api-{c}", c % 7)),
                ..CgroupMemory::default()
            }
        })
        .collect();

    let kills = (0..scale.cgroups / 100 + 1)
        .map(|k| OomKill {
            process: process(&mut rng, scale, pid_of(k * 11 % scale.processes)),
            at_unix_ms: 1_796_000_000_000 + k as u64 * 1000,
            anon_rss_bytes: 900 << 20,
            file_rss_bytes: 10 << 20,
            shmem_rss_bytes: 0,
            total_vm_bytes: 2 << 30,
            cgroup_limit_bytes: Some(1 << 30),
        })
        .collect();

    Signals {
        schema: kerno_core::SCHEMA_VERSION,
        host: Host {
            hostname: "node-17.prod".into(),
            kernel: "6.18.0".into(),
            cpus: 64,
            memory_bytes: 256 << 30,
            environment: "kubernetes".into(),
            node: String::new(),
        },
        window: Window {
            start_unix_ms: 1_796_000_000_000,
            duration_ms: window_secs * 1000,
        },
        collector_pid: 1,
        syscalls: Some(SyscallSignals {
            total_calls,
            total_errors,
            syscalls: syscall_stats,
            ..Default::default()
        }),
        tcp: Some(TcpSignals {
            retransmits: 30_000,
            segments_out: 600_000,
            retrans_segs: 30_000,
            netns_count: scale.cgroups as u32,
            rtt: latency_histogram(&mut rng, 2_000_000, 50_000, 80 * MS),
            connect_latency: latency_histogram(&mut rng, 20_000, 100_000, 300 * MS),
            active_opens: 20_000,
            passive_opens: 15_000,
            closes: 34_000,
            connect_failed: 12,
            top_flows,
            slow_rtt_flows: Vec::new(),
            slow_connects: Vec::new(),
            ..Default::default()
        }),
        oom: Some(OomSignals {
            vmstat_oom_kills: (scale.cgroups / 100 + 1) as u64,
            kills,
        }),
        disk: Some(DiskSignals { devices }),
        sched: Some(SchedSignals {
            runq_delay: latency_histogram(&mut rng, 5_000_000, 1_000, 60 * MS),
            top_delayed,
            psi_cpu_some_avg10: Some(23.5),
            ..Default::default()
        }),
        fds: Some(FdSignals {
            processes: fd_processes,
        }),
        memory: Some(MemorySignals {
            total_bytes: 256 << 30,
            available_start_bytes: 40 << 30,
            available_end_bytes: 38 << 30,
            psi_some_avg10: Some(4.2),
            psi_full_avg10: Some(1.1),
            cgroups,
            used_series: Default::default(),
        }),
        ..Signals::default()
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::{Thresholds, evaluate};

    use super::*;

    #[test]
    fn the_big_window_has_the_size_it_claims_and_findings() {
        let s = big_signals(Scale::BIG);
        let sc = s.syscalls.as_ref().unwrap();
        assert_eq!(sc.syscalls.len(), Scale::BIG.syscalls);
        assert!(sc.syscalls.iter().all(|c| c.latency.buckets().len() > 20));
        assert_eq!(
            s.fds.as_ref().unwrap().processes.len(),
            Scale::BIG.processes
        );
        assert_eq!(s.memory.as_ref().unwrap().cgroups.len(), Scale::BIG.cgroups);
        // It round-trips through JSON, as a saved window must.
        let back: Signals = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
        // The rules find the problems planted in it (when there are rules to run).
        let rules = kerno_rules::builtin();
        let report = evaluate(&s, &rules, &Thresholds::default());
        if !rules.is_empty() {
            assert!(!report.findings.is_empty());
        }
    }

    #[test]
    fn fixtures_are_deterministic() {
        assert_eq!(big_signals(Scale::SMALL), big_signals(Scale::SMALL));
        let h = latency_histogram(&mut Lcg::new(1), 1_000_000, 1_000, 1_000_000_000);
        assert_eq!(h.count(), 1_000_000);
    }
}
