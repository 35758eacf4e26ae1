//! The reports a person reads, as snapshots: a healthy window, one where every built-in rule
//! fires, and one with domains that could not be observed, each as text, JSON and HTML.
//! Review a changed snapshot as you would review a changed screen.

use std::collections::BTreeMap;

use kerno_core::{
    Attribution, CgroupCpu, CgroupMemory, CgroupPids, CgroupPressure, ConntrackNetns,
    ConntrackSignals, Degraded, DelayedProcess, DiskDevice, DiskOp, DiskSignals, FdProcess,
    FdSignals, Filesystem, FilesystemSignals, Histogram, Host, ListenSignals, Listener,
    MemorySignals, NetnsListen, OomKill, OomSignals, PidSignals, Pressure, Process, ProcessErrors,
    ProcessSlow, Report, SaturationSignals, SchedSignals, Signals, Status, SyscallSignals,
    SyscallStat, TcpFlow, TcpSignals, Thresholds, Window, evaluate,
    render::{PrettyOptions, html, json, pretty},
};

const US: u64 = 1_000;
const MS: u64 = 1_000_000;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;
const COLLECTOR: u32 = 999;

/// A histogram from `(value ns, samples)` pairs.
fn hist(parts: &[(u64, u64)]) -> Histogram {
    let mut h = Histogram::new();
    for (v, n) in parts {
        h.record_n(*v, *n);
    }
    h
}

fn process(pid: u32, comm: &str) -> Process {
    Process {
        pid,
        comm: comm.into(),
        ..Process::default()
    }
}

fn in_unit(pid: u32, comm: &str, unit: &str) -> Process {
    Process {
        cgroup: Some(format!("/system.slice/{unit}")),
        attribution: Attribution {
            unit: Some(unit.into()),
            slice: Some("system.slice".into()),
            ..Attribution::default()
        },
        ..process(pid, comm)
    }
}

/// A pod's attribution as the collectors resolve it (`namespace/name`, its uid, and the
/// container, named after its command here).
fn pod_attribution(pod: &str, uid: &str, ctr: Option<(&str, &str)>) -> Attribution {
    let (ns, name) = pod.split_once('/').unwrap();
    Attribution {
        namespace: Some(ns.into()),
        pod_name: Some(name.into()),
        pod_uid: Some(uid.into()),
        container: ctr.map(|(name, _)| name.into()),
        container_id: ctr.map(|(_, id)| id.into()),
        runtime: ctr.map(|_| "containerd".into()),
        qos: Some("burstable".into()),
        ..Attribution::default()
    }
}

fn in_pod(pid: u32, comm: &str, pod: &str, uid: &str, ctr: &str) -> Process {
    Process {
        cgroup: Some(format!("/kubepods/burstable/pod{uid}/{ctr}")),
        pod: Some(pod.into()),
        container: Some(ctr.into()),
        attribution: pod_attribution(pod, uid, Some((comm, ctr))),
        ..process(pid, comm)
    }
}

const CHECKOUT_UID: &str = "7c1d0e4a-2b9f-4d7e-9a51-3f6b8c2d1e90";
const CART_UID: &str = "3f2a9c1e-5d4b-4a8f-b7e6-0c9d8e7f6a5b";
const CART_CTR: &str = "ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12cd34ef56ab12";

fn pressure(some: f64, full: f64) -> Pressure {
    Pressure {
        some_pct: some,
        full_pct: Some(full),
        some_avg10: Some(some),
        full_avg10: Some(full),
    }
}

fn api() -> Process {
    in_unit(4121, "api", "api.service")
}

fn postgres() -> Process {
    in_unit(812, "postgres", "postgresql.service")
}

fn base() -> Signals {
    Signals {
        schema: kerno_core::SCHEMA_VERSION,
        host: Host {
            hostname: "node-1".into(),
            kernel: "6.18.0".into(),
            cpus: 4,
            memory_bytes: 16 * GIB,
            environment: "kubernetes".into(),
            node: "node-1".into(),
        },
        window: Window {
            start_unix_ms: 1_796_000_000_000,
            duration_ms: 10_000,
        },
        collector_pid: COLLECTOR,
        ..Signals::default()
    }
}

fn syscall(nr: u32, name: &str, wait: bool, latency: Histogram) -> SyscallStat {
    SyscallStat {
        nr,
        name: name.into(),
        wait,
        count: latency.count(),
        latency,
        ..SyscallStat::default()
    }
}

fn with_errnos(
    mut st: SyscallStat,
    errnos: &[(&str, u64)],
    top: Vec<ProcessErrors>,
) -> SyscallStat {
    st.errnos = errnos
        .iter()
        .map(|(e, n)| (e.to_string(), *n))
        .collect::<BTreeMap<_, _>>();
    st.errors = st.errnos.values().sum();
    st.top_errors = top;
    st
}

fn errs(p: Process, errno: &str, count: u64) -> ProcessErrors {
    ProcessErrors {
        process: p,
        errno: errno.into(),
        count,
    }
}

fn syscalls(list: Vec<SyscallStat>) -> SyscallSignals {
    let mut list = list;
    list.sort_by(|a, b| b.count.cmp(&a.count).then(a.nr.cmp(&b.nr)));
    SyscallSignals {
        total_calls: list.iter().map(|s| s.count).sum(),
        total_errors: list.iter().map(|s| s.errors).sum(),
        syscalls: list,
        ..Default::default()
    }
}

fn op(name: &str, bytes_per_req: u64, latency: Histogram) -> DiskOp {
    DiskOp {
        op: name.into(),
        count: latency.count(),
        bytes: latency.count() * bytes_per_req,
        errors: 0,
        latency,
    }
}

fn cgroup(path: &str, start: u64, usage: u64, limit: u64) -> CgroupMemory {
    CgroupMemory {
        path: path.into(),
        version: 2,
        usage_start_bytes: start,
        usage_bytes: usage,
        limit_bytes: limit,
        // A little page cache on top of what it cannot give back.
        working_set_start_bytes: Some(start - start / 50),
        working_set_bytes: Some(usage - usage / 50),
        ..CgroupMemory::default()
    }
}

/// A busy but healthy node: every domain observed, every number inside its threshold.
/// A filesystem of `size` with `used` used, flat over the window.
fn filesystem(mountpoint: &str, device: &str, fstype: &str, size: u64, used: u64) -> Filesystem {
    Filesystem {
        mountpoint: mountpoint.into(),
        device: device.into(),
        dev: "8:1".into(),
        fstype: fstype.into(),
        roles: Vec::new(),
        size_bytes: size,
        avail_bytes: size - used,
        avail_start_bytes: size - used,
        free_bytes: size - used,
        inodes: 6_553_600,
        inodes_free: 6_100_000,
        inodes_free_start: 6_100_000,
        used_series: Default::default(),
        inodes_used_series: Default::default(),
    }
}

/// A network namespace's conntrack table.
fn netns(inode: u64, process: Process, host: bool, count: u64) -> ConntrackNetns {
    ConntrackNetns {
        netns: inode,
        host,
        process,
        count_start: count,
        count,
        ..ConntrackNetns::default()
    }
}

fn healthy() -> Signals {
    let mut s = base();
    s.syscalls = Some(syscalls(vec![
        syscall(0, "read", true, hist(&[(4 * US, 118_000), (2 * MS, 2_000)])),
        syscall(
            232,
            "epoll_wait",
            true,
            hist(&[(200 * US, 30_000), (900 * MS, 400)]),
        ),
        syscall(
            1,
            "write",
            false,
            hist(&[(9 * US, 29_800), (300 * US, 200)]),
        ),
        with_errnos(
            syscall(
                257,
                "openat",
                false,
                hist(&[(14 * US, 11_900), (800 * US, 100)]),
            ),
            &[("ENOENT", 3_100)],
            vec![errs(api(), "ENOENT", 3_000)],
        ),
        with_errnos(
            syscall(42, "connect", true, hist(&[(30 * US, 790), (2 * MS, 10)])),
            &[("EINPROGRESS", 600)],
            vec![errs(api(), "EINPROGRESS", 600)],
        ),
        syscall(74, "fsync", false, hist(&[(900 * US, 380), (3 * MS, 20)])),
    ]));
    s.fds = Some(FdSignals {
        processes: vec![FdProcess {
            process: in_unit(311, "nginx", "nginx.service"),
            opens: 1_220,
            closes: 1_200,
            open_fds: Some(412),
            soft_limit: Some(65_536),
            net_per_interval: vec![4, -2, 3, 0, 5, -1, 2, 4, 3, 2],
            net_series: Default::default(),
        }],
    });
    s.sched = Some(SchedSignals {
        runq_delay: hist(&[(40 * US, 170_000), (600 * US, 9_000), (2 * MS, 1_000)]),
        top_delayed: vec![DelayedProcess {
            process: api(),
            count: 640,
            total_ns: 1_100 * MS,
            max_ns: 6 * MS,
        }],
        psi_cpu_some_avg10: Some(1.2),
        ..Default::default()
    });
    s.disk = Some(DiskSignals {
        devices: vec![
            DiskDevice {
                dev: "8:0".into(),
                name: "sda".into(),
                ops: vec![
                    op("read", 16_384, hist(&[(300 * US, 2_900), (4 * MS, 100)])),
                    op("write", 32_768, hist(&[(1_500 * US, 4_800), (9 * MS, 200)])),
                    op("flush", 0, hist(&[(1_200 * US, 390), (6 * MS, 10)])),
                ],
                ..Default::default()
            },
            DiskDevice {
                dev: "259:0".into(),
                name: "nvme0n1".into(),
                ops: vec![op("read", 131_072, hist(&[(90 * US, 8_000)]))],
                ..Default::default()
            },
        ],
    });
    s.tcp = Some(TcpSignals {
        retransmits: 41,
        segments_out: 250_000,
        retrans_segs: 45,
        netns_count: 3,
        rtt: hist(&[(300 * US, 58_000), (2 * MS, 2_000)]),
        connect_latency: hist(&[(800 * US, 590), (3 * MS, 10)]),
        active_opens: 600,
        passive_opens: 2_400,
        closes: 2_990,
        connect_failed: 0,
        top_flows: vec![TcpFlow {
            local: "10.0.3.15:52310".into(),
            remote: "10.0.9.4:443".into(),
            retransmits: 12,
            process: Some(api()),
        }],
        slow_rtt_flows: vec![],
        slow_connects: vec![],
        ..Default::default()
    });
    s.oom = Some(OomSignals::default());
    s.memory = Some(MemorySignals {
        total_bytes: 16 * GIB,
        available_start_bytes: 9 * GIB,
        available_end_bytes: 9 * GIB - 20 * MIB,
        psi_some_avg10: Some(0.0),
        psi_full_avg10: Some(0.0),
        cgroups: vec![
            CgroupMemory {
                attribution: postgres().attribution,
                processes: vec![postgres()],
                ..cgroup(
                    "/system.slice/postgresql.service",
                    2_600 * MIB,
                    2_610 * MIB,
                    4 * GIB,
                )
            },
            CgroupMemory {
                processes: vec![api()],
                ..cgroup("/system.slice/api.service", 700 * MIB, 702 * MIB, 2 * GIB)
            },
        ],
        used_series: Default::default(),
    });
    s.filesystem = Some(FilesystemSignals {
        filesystems: vec![
            Filesystem {
                roles: vec!["kubelet".into(), "containerd".into()],
                ..filesystem("/", "/dev/sda1", "ext4", 100 * GIB, 61 * GIB)
            },
            Filesystem {
                dev: "0:25".into(),
                inodes: 0,
                inodes_free: 0,
                inodes_free_start: 0,
                ..filesystem("/run", "tmpfs", "tmpfs", 1600 * MIB, 3 * MIB)
            },
        ],
    });
    s.pids = Some(PidSignals {
        pid_max: 4_194_304,
        threads_max: 126_000,
        threads_start: 1_180,
        threads: 1_184,
        threads_series: Default::default(),
        cgroups: vec![CgroupPids {
            path: "/system.slice/api.service".into(),
            version: 1,
            current_start: 41,
            current: 41,
            limit: 4_915,
            processes: vec![api()],
            ..CgroupPids::default()
        }],
    });
    s.conntrack = Some(ConntrackSignals {
        max: 262_144,
        namespaces: vec![netns(4_026_531_840, process(1, "systemd"), true, 1_210)],
    });
    s
}

/// A node in trouble: every built-in rule has something to say.
fn everything_fires() -> Signals {
    let mut s = healthy();
    let checkout = in_pod(
        6120,
        "node",
        "shop/checkout-5b8c9",
        CHECKOUT_UID,
        "c0ffee00c0ffee00",
    );
    let checkout_cpu = checkout.clone();
    let java = in_pod(8812, "java", "shop/cart-7d9f", CART_UID, CART_CTR);
    let php = in_unit(5120, "php-fpm", "php-fpm.service");
    s.syscalls = Some(syscalls(vec![
        syscall(0, "read", true, hist(&[(4 * US, 118_000), (2 * MS, 2_000)])),
        syscall(
            232,
            "epoll_wait",
            true,
            hist(&[(200 * US, 30_000), (900 * MS, 400)]),
        ),
        syscall(
            1,
            "write",
            false,
            hist(&[(9 * US, 29_800), (300 * US, 200)]),
        ),
        // Slow opens on a network file system (syscall-latency).
        SyscallStat {
            top_slow: vec![ProcessSlow {
                process: php.clone(),
                count: 170,
                mean_ns: 240 * MS,
                max_ns: 610 * MS,
            }],
            ..with_errnos(
                syscall(
                    257,
                    "openat",
                    false,
                    hist(&[(14 * US, 11_820), (260 * MS, 180)]),
                ),
                &[("ENOENT", 3_100)],
                vec![errs(api(), "ENOENT", 3_000)],
            )
        },
        // A peer that is down (syscall-errors).
        with_errnos(
            syscall(
                42,
                "connect",
                true,
                hist(&[(30 * US, 7_900), (2 * MS, 100)]),
            ),
            &[("EINPROGRESS", 6_000), ("ECONNREFUSED", 1_600)],
            vec![
                errs(api(), "EINPROGRESS", 5_900),
                errs(api(), "ECONNREFUSED", 1_500),
                errs(process(6001, "curl"), "ECONNREFUSED", 100),
            ],
        ),
        // Slow commits (disk-io).
        SyscallStat {
            top_slow: vec![ProcessSlow {
                process: postgres(),
                count: 95,
                mean_ns: 118 * MS,
                max_ns: 240 * MS,
            }],
            ..syscall(74, "fsync", false, hist(&[(2 * MS, 300), (120 * MS, 100)]))
        },
    ]));
    s.fds = Some(FdSignals {
        processes: vec![
            FdProcess {
                process: api(),
                opens: 420,
                closes: 50,
                open_fds: Some(48_210),
                soft_limit: Some(65_536),
                net_per_interval: vec![36, 38, 37, 37, 35, 39, 37, 36, 38, 37],
                net_series: Default::default(),
            },
            // A pool warming up: a burst, not a leak.
            FdProcess {
                process: in_unit(311, "nginx", "nginx.service"),
                opens: 600,
                closes: 100,
                open_fds: Some(912),
                soft_limit: Some(65_536),
                net_per_interval: vec![500, 0, 0, 0, 0, 0, 0, 0, 0, 0],
                net_series: Default::default(),
            },
        ],
    });
    s.sched = Some(SchedSignals {
        runq_delay: hist(&[(60 * US, 175_000), (3 * MS, 2_000), (12 * MS, 3_000)]),
        top_delayed: vec![
            DelayedProcess {
                process: in_pod(
                    977,
                    "worker",
                    "batch/report-gen-x2x7q",
                    CHECKOUT_UID,
                    "feed0000feed0000",
                ),
                count: 2_900,
                total_ns: 31_200 * MS,
                max_ns: 94 * MS,
            },
            DelayedProcess {
                process: api(),
                count: 1_100,
                total_ns: 8_400 * MS,
                max_ns: 41 * MS,
            },
        ],
        psi_cpu_some_avg10: Some(18.4),
        ..Default::default()
    });
    if let Some(d) = &mut s.disk {
        d.devices[0].ops = vec![
            op("read", 16_384, hist(&[(300 * US, 2_900), (4 * MS, 100)])),
            op("write", 32_768, hist(&[(4 * MS, 4_900), (60 * MS, 100)])),
            op("flush", 0, hist(&[(30 * MS, 380), (110 * MS, 20)])),
        ];
    }
    s.tcp = Some(TcpSignals {
        retransmits: 7_380,
        segments_out: 250_000,
        retrans_segs: 7_500,
        netns_count: 3,
        rtt: hist(&[(800 * US, 59_000), (45 * MS, 1_000)]),
        connect_latency: hist(&[(1_500 * US, 590), (1_030 * MS, 10)]),
        active_opens: 600,
        passive_opens: 2_400,
        closes: 2_950,
        connect_failed: 12,
        top_flows: vec![
            TcpFlow {
                local: "10.0.3.15:41822".into(),
                remote: "10.0.7.21:5432".into(),
                retransmits: 5_100,
                process: Some(api()),
            },
            TcpFlow {
                local: "10.0.3.15:52310".into(),
                remote: "10.0.9.4:443".into(),
                retransmits: 1_200,
                process: None,
            },
            TcpFlow {
                local: "10.0.3.15:52388".into(),
                remote: "10.0.9.4:443".into(),
                retransmits: 640,
                process: None,
            },
        ],
        slow_rtt_flows: vec![kerno_core::TcpRttFlow {
            local: "10.0.3.15:41822".into(),
            remote: "10.0.7.21:5432".into(),
            samples: 900,
            mean_rtt_ns: 44 * MS,
            max_rtt_ns: 46 * MS,
            process: Some(api()),
        }],
        slow_connects: vec![kerno_core::SlowConnect {
            process: api(),
            remote: "10.0.7.21:5432".into(),
            count: 10,
            mean_ns: 1_010 * MS,
            max_ns: 1_040 * MS,
        }],
        ..Default::default()
    });
    s.oom = Some(OomSignals {
        kills: vec![OomKill {
            process: java.clone(),
            at_unix_ms: 1_796_000_004_250,
            anon_rss_bytes: 1_930 * MIB,
            file_rss_bytes: 14 * MIB,
            shmem_rss_bytes: 0,
            total_vm_bytes: 3_400 * MIB,
            cgroup_limit_bytes: None,
        }],
        vmstat_oom_kills: 1,
    });
    s.memory = Some(MemorySignals {
        total_bytes: 16 * GIB,
        available_start_bytes: 5_300 * MIB,
        available_end_bytes: 5_200 * MIB,
        psi_some_avg10: Some(9.8),
        psi_full_avg10: Some(2.1),
        cgroups: vec![
            // Growing towards its limit (oom-imminent and memory-pressure).
            CgroupMemory {
                pod: Some("shop/checkout-5b8c9".into()),
                attribution: pod_attribution("shop/checkout-5b8c9", CHECKOUT_UID, None),
                processes: vec![checkout.clone()],
                ..cgroup(
                    &format!("/kubepods/burstable/pod{CHECKOUT_UID}"),
                    1_840 * MIB,
                    1_900 * MIB,
                    2 * GIB,
                )
            },
            // Full but flat (memory-pressure only).
            CgroupMemory {
                attribution: postgres().attribution,
                processes: vec![postgres()],
                ..cgroup(
                    "/system.slice/postgresql.service",
                    3_890 * MIB,
                    3_890 * MIB,
                    4 * GIB,
                )
            },
            // Where the OOM kill happened: emptied by it.
            CgroupMemory {
                pod: Some("shop/cart-7d9f".into()),
                attribution: pod_attribution("shop/cart-7d9f", CART_UID, None),
                oom_kills: 1,
                ..cgroup(
                    &format!("/kubepods/burstable/pod{CART_UID}"),
                    1_990 * MIB,
                    120 * MIB,
                    2 * GIB,
                )
            },
        ],
        used_series: Default::default(),
    });
    // The kubelet's filesystem nearly full (filesystem-full).
    if let Some(f) = &mut s.filesystem {
        let root = &mut f.filesystems[0];
        root.avail_bytes = 3 * GIB + 512 * MIB;
        root.free_bytes = root.avail_bytes;
        root.avail_start_bytes = 3 * GIB + 600 * MIB;
    }
    // A pod's container forking at its pids limit (pid-exhaustion).
    if let Some(p) = &mut s.pids {
        p.cgroups.insert(
            0,
            CgroupPids {
                path: format!("/kubepods/burstable/pod{CHECKOUT_UID}/c0ffee00c0ffee00"),
                version: 1,
                current_start: 1_024,
                current: 1_024,
                limit: 1_024,
                fork_failures: 312,
                processes: vec![checkout.clone()],
                attribution: checkout.attribution.clone(),
                ..CgroupPids::default()
            },
        );
    }
    // The checkout pod's namespace dropping connections (conntrack-full).
    s.conntrack = Some(ConntrackSignals {
        max: 262_144,
        namespaces: vec![
            ConntrackNetns {
                drops: 1_840,
                early_drops: 96,
                count_start: 261_900,
                ..netns(4_026_532_301, checkout.clone(), false, 262_144)
            },
            netns(4_026_531_840, process(1, "systemd"), true, 1_210),
        ],
    });
    s.saturation = Some(SaturationSignals {
        cpu: Some(pressure(18.0, 0.0)),
        memory: Some(pressure(9.0, 2.1)),
        io: Some(pressure(41.0, 12.5)),
        cgroups: vec![CgroupPressure {
            path: "/system.slice/postgresql.service".into(),
            memory: Some(pressure(31.0, 24.0)),
            io: Some(pressure(35.0, 6.0)),
            processes: vec![postgres()],
            attribution: postgres().attribution,
            ..CgroupPressure::default()
        }],
        cpu_limited: vec![CgroupCpu {
            path: format!("/kubepods/burstable/pod{CHECKOUT_UID}/c0ffee00c0ffee00"),
            version: 2,
            quota_us: 50_000,
            period_us: 100_000,
            periods: 100,
            throttled_periods: 64,
            throttled_ns: 2_900 * MS,
            usage_ns: Some(4_900 * MS),
            pod: checkout_cpu.pod.clone(),
            attribution: checkout_cpu.attribution.clone(),
            processes: vec![checkout_cpu],
        }],
        listen: Some(ListenSignals {
            netns: vec![NetnsListen {
                inode: 4_026_531_840,
                name: None,
                process: Some(in_unit(311, "nginx", "nginx.service")),
                drops: 37,
                overflows: 37,
                req_queue_full_drops: 0,
                syncookies_sent: 0,
                listeners: vec![Listener {
                    local: "0.0.0.0:443".into(),
                    port: 443,
                    max_queue: 512,
                    process: Some(in_unit(311, "nginx", "nginx.service")),
                }],
            }],
            netns_count: 3,
        }),
    });
    s
}

/// A node where the TCP and OOM probes could not attach, the rest quiet but for a handful
/// of slow flushes: too few to judge.
fn degraded() -> Signals {
    let mut s = healthy();
    s.tcp = None;
    s.oom = None;
    s.degraded = vec![
        Degraded {
            domain: "tcp".into(),
            reason: "tcp probe not attached: tracepoint tcp:tcp_probe not found (kernel built without it?)".into(),
        },
        Degraded {
            domain: "oom".into(),
            reason: "oom probe not attached: loading the program failed: permission denied (needs CAP_BPF and CAP_PERFMON, or root)".into(),
        },
    ];
    s.lost.syscall_samples = 12;
    if let Some(d) = &mut s.disk {
        d.devices[0].ops[2] = op("flush", 0, hist(&[(1_200 * US, 3), (310 * MS, 3)]));
    }
    s
}

fn report(s: &Signals) -> Report {
    evaluate(s, &kerno_rules::builtin(), &Thresholds::default())
}

fn text(r: &Report) -> String {
    pretty(r, PrettyOptions { color: false })
}

/// The HTML report with a line break before each block tag, for review, and its style
/// sheet (the same in every report) left out: the output itself is one line, and removing
/// the breaks gives it back exactly but for the style sheet.
fn html_lines(r: &Report) -> String {
    let out = html(r);
    assert!(!out.contains('\n'));
    let (a, b) = (out.find("<style>").unwrap(), out.find("</style>").unwrap());
    let mut lines = format!("{}<style>…</style>{}", &out[..a], &out[b + 8..]);
    for tag in [
        "<header",
        "<h2>",
        "<h3>",
        "<p",
        "<ol",
        "</ol>",
        "<li",
        "<dt>",
        "<ul>",
        "<figure",
        "<svg",
        "</figure>",
        "<table",
        "<tr>",
        "</div>",
    ] {
        lines = lines.replace(tag, &format!("\n{tag}"));
    }
    lines
}

#[test]
fn healthy_report() {
    let r = report(&healthy());
    assert_eq!(r.status, Status::Healthy, "{:#?}", r.findings);
    assert!(r.findings.is_empty());
    insta::assert_snapshot!("healthy_pretty", text(&r));
    insta::assert_snapshot!("healthy_json", json(&r));
    insta::assert_snapshot!("healthy_html", html_lines(&r));
}

#[test]
fn every_rule_fires_report() {
    let r = report(&everything_fires());
    assert_eq!(r.status, Status::Critical);
    let mut fired: Vec<&str> = r.findings.iter().map(|f| f.rule.as_str()).collect();
    fired.sort_unstable();
    fired.dedup();
    let mut all: Vec<String> = kerno_rules::builtin()
        .iter()
        .map(|r| r.id().to_string())
        .collect();
    all.sort_unstable();
    assert_eq!(fired, all);
    for f in &r.findings {
        assert!(
            f.subject
                .process
                .as_ref()
                .is_none_or(|p| p.pid != COLLECTOR),
            "{f:#?}"
        );
        assert!(!f.evidence.iter().any(|e| e.contains("`kerno`")), "{f:#?}");
    }
    insta::assert_snapshot!("every_rule_fires_pretty", text(&r));
    insta::assert_snapshot!("every_rule_fires_json", json(&r));
    insta::assert_snapshot!("every_rule_fires_html", html_lines(&r));
}

#[test]
fn degraded_report() {
    let r = report(&degraded());
    assert_eq!(r.status, Status::Degraded, "{:#?}", r.findings);
    assert!(r.findings.iter().all(|f| f.low_volume));
    insta::assert_snapshot!("degraded_pretty", text(&r));
    insta::assert_snapshot!("degraded_json", json(&r));
    insta::assert_snapshot!("degraded_html", html_lines(&r));
}

#[test]
fn ranking_does_not_depend_on_rule_order_and_a_report_replays_to_itself() {
    for s in [healthy(), everything_fires(), degraded()] {
        let r = report(&s);
        // The same rules in the opposite order rank the same findings the same way.
        let mut reversed = kerno_rules::builtin();
        reversed.reverse();
        assert_eq!(
            json(&evaluate(&s, &reversed, &Thresholds::default())),
            json(&r)
        );
        // `kerno doctor --from report.json`: the signals inside a JSON report give it back.
        let again = kerno_core::parse_signals(&json(&r)).unwrap();
        assert_eq!(json(&report(&again)), json(&r));
    }
}

/// What `--ai` would send about the report where every rule fires, in the two private
/// modes: nothing the report names is in it (the tripwire agrees), and in `redacted` mode
/// the texts are the rules' own with placeholders. The analysis, when one comes back, is
/// printed after the report, marked as advice.
#[test]
fn ai_payloads_of_every_rule_name_nothing() {
    use kerno_ai::{Inventory, payload, redact};
    use kerno_core::{Analysis, config::AiPrivacy};

    let mut r = report(&everything_fires());
    let inv = Inventory::from_report(&r);
    assert!(inv.len() > 10, "{inv:?}");
    for mode in [AiPrivacy::Summary, AiPrivacy::Redacted] {
        let p = payload::build(&r, mode, &inv);
        redact::check(&p.text, &inv).unwrap_or_else(|l| panic!("{mode:?}: {l}\n{}", p.text));
        // Long names anywhere (short ones are checked as words by the tripwire above),
        // placeholders aside (the node `node-1` is in `<node-1>`).
        let bare = strip_placeholders(&p.text);
        for (name, kind) in inv.names() {
            if name.len() >= 6 {
                assert!(
                    !bare.contains(name),
                    "{mode:?}: {kind:?} {name:?} in\n{}",
                    p.text
                );
            }
        }
        if mode == AiPrivacy::Redacted {
            insta::assert_snapshot!("every_rule_fires_ai_redacted", p.text);
        }
    }
    r.analysis = Some(Analysis::Ok {
        provider: "anthropic".into(),
        model: "claude-sonnet-4-5".into(),
        privacy: "redacted".into(),
        text: "The fd leak in api is the likely root cause of the connect failures.\n\n\
               1. Restart api.\n2. Check its connection pool."
            .into(),
        cached: false,
    });
    assert!(html(&r).contains("<h2>Analysis</h2>"));
    let with = text(&r);
    let tail = &with[with.find("\nAnalysis").expect("an Analysis section")..];
    insta::assert_snapshot!("every_rule_fires_ai_analysis_pretty", tail);
    // A failed analysis adds nothing to the text report.
    let mut failed = report(&everything_fires());
    failed.analysis = Some(Analysis::Failed {
        reason: "no answer".into(),
    });
    assert_eq!(text(&failed), text(&report(&everything_fires())));
    assert_eq!(html(&failed), html(&report(&everything_fires())));
}

/// `text` without its `<kind-N>` placeholders.
fn strip_placeholders(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        let end = tail.find('>').unwrap_or(0);
        let inner = &tail[..end];
        let is_placeholder = inner.split_once('-').is_some_and(|(k, n)| {
            !k.is_empty()
                && k.bytes().all(|b| b.is_ascii_lowercase())
                && !n.is_empty()
                && n.bytes().all(|b| b.is_ascii_digit())
        });
        if is_placeholder {
            out.push(' ');
            rest = &tail[end + 1..];
        } else {
            out.push('<');
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}
