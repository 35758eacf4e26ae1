//! Saturation: where work waits. Pressure stall information (PSI) of the host and of every
//! cgroup of the v2 hierarchy, CPU quota throttling of every cgroup with a CPU limit (v1
//! and v2), and TCP listen-queue drops per network namespace with the listeners that had
//! connections waiting. procfs and cgroupfs only: no eBPF.

use std::{
    collections::{HashMap, HashSet},
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

use super::ends;
use crate::{
    CgroupCpu, CgroupPressure, Collector, CollectorError, ListenSignals, Listener, NetnsListen,
    Pressure, Sample, SaturationSignals, Signals, procfs,
};

/// At most this many cgroups are listed per resource (the most stalled, or throttled).
const TOP: usize = 20;
/// Cgroups stalled at least this share of the window (percent) get their processes listed.
const NAMED_PCT: f64 = 1.0;
/// The resources PSI reports on.
const RESOURCES: [&str; 3] = ["cpu", "memory", "io"];

/// One `*.pressure` file: the `some` and `full` lines.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PsiReading {
    /// `some avg10`, percent.
    pub some_avg10: f64,
    /// `some total`, µs.
    pub some_total_us: u64,
    /// `full avg10`, percent (`None` without a `full` line).
    pub full_avg10: Option<f64>,
    /// `full total`, µs.
    pub full_total_us: Option<u64>,
}

/// Parse a PSI file (`/proc/pressure/<resource>`, a v2 cgroup's `<resource>.pressure`):
///
/// ```text
/// some avg10=1.52 avg60=0.40 avg300=0.09 total=1234567
/// full avg10=0.00 avg60=0.00 avg300=0.00 total=0
/// ```
pub fn parse_psi(text: &str) -> Option<PsiReading> {
    let line = |kind: &str| -> Option<(f64, u64)> {
        let l = text.lines().find(|l| l.starts_with(kind))?;
        let field = |name: &str| {
            l.split_whitespace()
                .find_map(|f| f.strip_prefix(name))
                .map(str::to_string)
        };
        Some((
            field("avg10=")?.parse().ok()?,
            field("total=")?.parse().ok()?,
        ))
    };
    let (some_avg10, some_total_us) = line("some ")?;
    let full = line("full ");
    Some(PsiReading {
        some_avg10,
        some_total_us,
        full_avg10: full.map(|f| f.0),
        full_total_us: full.map(|f| f.1),
    })
}

/// The window's pressure from readings at its two ends, `ms` apart.
pub fn pressure_between(first: &PsiReading, last: &PsiReading, ms: u64) -> Pressure {
    let window_us = (ms.max(1) * 1000) as f64;
    let share = |a: u64, b: u64| (b.saturating_sub(a) as f64 * 100.0 / window_us).min(100.0);
    Pressure {
        some_pct: share(first.some_total_us, last.some_total_us),
        full_pct: match (first.full_total_us, last.full_total_us) {
            (Some(a), Some(b)) => Some(share(a, b)),
            _ => None,
        },
        some_avg10: Some(last.some_avg10),
        full_avg10: last.full_avg10,
    }
}

/// CFS bandwidth counters from a `cpu.stat` (v1: `throttled_time` ns; v2: `throttled_usec`
/// and `usage_usec`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStat {
    /// `nr_periods`.
    pub periods: u64,
    /// `nr_throttled`.
    pub throttled: u64,
    /// Throttled time, ns.
    pub throttled_ns: u64,
    /// CPU used, ns (v2 `usage_usec`; v1 keeps it in `cpuacct.usage`).
    pub usage_ns: Option<u64>,
}

/// Parse a v1 or v2 `cpu.stat`.
pub fn parse_cpu_stat(text: &str) -> Option<CpuStat> {
    let get = |k: &str| procfs::keyed_value(text, k);
    Some(CpuStat {
        periods: get("nr_periods")?,
        throttled: get("nr_throttled")?,
        throttled_ns: get("throttled_time")
            .or_else(|| get("throttled_usec").map(|us| us * 1000))
            .unwrap_or(0),
        usage_ns: get("usage_usec").map(|us| us * 1000),
    })
}

/// `(quota µs, period µs)` from a v2 `cpu.max` (`20000 100000`); `None` for `max 100000`
/// (no limit).
pub fn parse_cpu_max(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_whitespace();
    let quota = f.next()?.parse().ok()?;
    let period = f.next().map(|p| p.parse().ok()).unwrap_or(Some(100_000))?;
    Some((quota, period))
}

/// The listen-queue counters of a `net/netstat` file's `TcpExt:` lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ListenCounters {
    /// `ListenDrops`.
    pub drops: u64,
    /// `ListenOverflows`.
    pub overflows: u64,
    /// `TCPReqQFullDrop`.
    pub req_queue_full_drops: u64,
    /// `SyncookiesSent`.
    pub syncookies_sent: u64,
}

/// Parse the `TcpExt:` header and value lines of `/proc/<pid>/net/netstat`.
pub fn parse_netstat_listen(text: &str) -> Option<ListenCounters> {
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |k: &str| -> Option<u64> {
        let i = header.iter().position(|h| *h == k)?;
        values.get(i)?.parse().ok()
    };
    Some(ListenCounters {
        drops: get("ListenDrops")?,
        overflows: get("ListenOverflows")?,
        req_queue_full_drops: get("TCPReqQFullDrop").unwrap_or(0),
        syncookies_sent: get("SyncookiesSent").unwrap_or(0),
    })
}

/// A listening socket with a non-empty accept queue, from a `/proc/<pid>/net/tcp{,6}` line:
/// `(local address:port, port, queue length, socket inode)`. `None` for other sockets and
/// for listeners with nothing waiting.
pub fn parse_waiting_listener(line: &str, v6: bool) -> Option<(String, u16, u64, u64)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    // st 0A is TCP_LISTEN; for a listener the kernel prints its accept queue as rx_queue.
    if f.len() < 10 || f[3] != "0A" {
        return None;
    }
    let queue = u64::from_str_radix(f[4].split_once(':')?.1, 16).ok()?;
    if queue == 0 {
        return None;
    }
    let (local, _remote, inode) = procfs::parse_proc_net_tcp_line(line, v6)?;
    let port = local.rsplit_once(':')?.1.parse().ok()?;
    Some((local, port, queue, inode))
}

#[derive(Clone, Default)]
struct CpuReading {
    version: u8,
    quota_us: u64,
    period_us: u64,
    stat: CpuStat,
}

#[derive(Clone)]
struct NetnsReading {
    pid: u32,
    counters: ListenCounters,
    /// (local, port) -> (queue, inode).
    waiting: HashMap<(String, u16), (u64, u64)>,
}

/// A v2 cgroup's pressure files and its memory.high counters.
#[derive(Clone, Default)]
struct CgroupReading {
    psi: [Option<PsiReading>; 3],
    /// `memory.events` `high`.
    high_events: u64,
    /// `memory.high`, when set.
    high: Option<u64>,
}

struct SaturationSample {
    host: [Option<PsiReading>; 3],
    cgroups: HashMap<String, CgroupReading>,
    cpu: HashMap<(u8, String), CpuReading>,
    netns: HashMap<u64, NetnsReading>,
}

/// PSI of the host and of v2 cgroups, CPU throttling of CPU-limited cgroups, TCP
/// listen-queue drops. Needs no eBPF.
#[derive(Default)]
pub struct SaturationCollector {
    /// Each namespace's listen counters at the previous sample: its sockets
    /// (`/proc/<pid>/net/tcp`, which lists every connection) are read only when they moved.
    prev_listen: HashMap<u64, ListenCounters>,
}

impl SaturationCollector {
    /// A new saturation collector.
    pub fn new() -> Self {
        SaturationCollector::default()
    }
}

fn read_psi(path: &Path) -> Option<PsiReading> {
    parse_psi(&fs::read_to_string(path).ok()?)
}

fn rel(root: &Path, dir: &Path) -> String {
    format!("/{}", dir.strip_prefix(root).unwrap_or(dir).display())
}

fn read_cgroup_psi() -> HashMap<String, CgroupReading> {
    let mut out = HashMap::new();
    let Some(root) = procfs::cgroup2_root() else {
        return out;
    };
    procfs::walk_dirs(&root, 10, &mut |dir| {
        if dir == root {
            // The root cgroup's pressure is the host's.
            return;
        }
        let psi = RESOURCES.map(|res| read_psi(&dir.join(format!("{res}.pressure"))));
        let high_events = procfs::read_keyed(&dir.join("memory.events"), "high").unwrap_or(0);
        if psi.iter().any(Option::is_some) || high_events > 0 {
            out.insert(
                rel(&root, dir),
                CgroupReading {
                    psi,
                    high_events,
                    high: procfs::read_u64(&dir.join("memory.high")),
                },
            );
        }
    });
    out
}

fn read_cpu_limited() -> HashMap<(u8, String), CpuReading> {
    let mut out = HashMap::new();
    if let Some(root) = procfs::cgroup1_root("cpu", "cpu.cfs_quota_us") {
        procfs::walk_dirs(&root, 10, &mut |dir| {
            let quota = fs::read_to_string(dir.join("cpu.cfs_quota_us")).unwrap_or_default();
            let Ok(quota) = quota.trim().parse::<i64>() else {
                return;
            };
            if quota <= 0 {
                return;
            }
            let period = procfs::read_u64(&dir.join("cpu.cfs_period_us")).unwrap_or(100_000);
            let Some(mut stat) = fs::read_to_string(dir.join("cpu.stat"))
                .ok()
                .and_then(|t| parse_cpu_stat(&t))
            else {
                return;
            };
            let path = rel(&root, dir);
            stat.usage_ns = procfs::read_u64(&dir.join("cpuacct.usage")).or_else(|| {
                let acct = procfs::cgroup1_root("cpuacct", "cpuacct.usage")?;
                procfs::read_u64(
                    &acct
                        .join(path.trim_start_matches('/'))
                        .join("cpuacct.usage"),
                )
            });
            out.insert(
                (1, path),
                CpuReading {
                    version: 1,
                    quota_us: quota as u64,
                    period_us: period,
                    stat,
                },
            );
        });
    }
    if let Some(root) = procfs::cgroup2_root() {
        procfs::walk_dirs(&root, 10, &mut |dir| {
            let Some((quota, period)) = fs::read_to_string(dir.join("cpu.max"))
                .ok()
                .and_then(|t| parse_cpu_max(&t))
            else {
                return;
            };
            let Some(stat) = fs::read_to_string(dir.join("cpu.stat"))
                .ok()
                .and_then(|t| parse_cpu_stat(&t))
            else {
                return;
            };
            out.insert(
                (2, rel(&root, dir)),
                CpuReading {
                    version: 2,
                    quota_us: quota,
                    period_us: period,
                    stat,
                },
            );
        });
    }
    out
}

fn read_netns(prev: &HashMap<u64, ListenCounters>) -> HashMap<u64, NetnsReading> {
    let mut out = HashMap::new();
    for (inode, pid) in procfs::netns_pids() {
        let Some(counters) =
            fs::read_to_string(procfs::host_path(format!("/proc/{pid}/net/netstat")))
                .ok()
                .as_deref()
                .and_then(parse_netstat_listen)
        else {
            continue;
        };
        let mut waiting = HashMap::new();
        // Only a namespace that is dropping or queueing has a listener worth naming.
        let moved = prev.get(&inode).is_some_and(|p| *p != counters);
        for (file, v6) in [("tcp", false), ("tcp6", true)]
            .into_iter()
            .filter(|_| moved)
        {
            let text = fs::read_to_string(procfs::host_path(format!("/proc/{pid}/net/{file}")))
                .unwrap_or_default();
            for (local, port, queue, ino) in
                text.lines().filter_map(|l| parse_waiting_listener(l, v6))
            {
                waiting.insert((local, port), (queue, ino));
            }
        }
        out.insert(
            inode,
            NetnsReading {
                pid,
                counters,
                waiting,
            },
        );
    }
    out
}

fn cgroup_procs(root: Option<PathBuf>, path: &str) -> Vec<crate::Process> {
    let Some(root) = root else { return Vec::new() };
    procfs::read_pid_list(&root.join(path.trim_start_matches('/')).join("cgroup.procs"))
        .into_iter()
        .take(3)
        .map(|pid| procfs::process(pid, ""))
        .collect()
}

/// The names of the namespaces under `/run/netns`, by inode.
fn named_netns() -> HashMap<u64, String> {
    let mut out = HashMap::new();
    if let Ok(dir) = fs::read_dir(procfs::host_path("/run/netns")) {
        for e in dir.flatten() {
            if let Ok(m) = fs::metadata(e.path()) {
                out.insert(m.ino(), e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    out
}

fn listen_signals(
    first: &SaturationSample,
    last: &SaturationSample,
    samples: &[&Sample],
) -> ListenSignals {
    let names = named_netns();
    let mut netns: Vec<NetnsListen> = Vec::new();
    for (inode, l) in &last.netns {
        let Some(f) = first.netns.get(inode) else {
            continue;
        };
        let d = |a: u64, b: u64| b.saturating_sub(a);
        // The longest queue of each listener over the window's samples.
        let mut waiting: HashMap<(String, u16), (u64, u64)> = HashMap::new();
        for s in samples.iter().filter_map(|s| s.get::<SaturationSample>()) {
            if let Some(n) = s.netns.get(inode) {
                for (k, (q, ino)) in &n.waiting {
                    let e = waiting.entry(k.clone()).or_insert((0, *ino));
                    if *q >= e.0 {
                        *e = (*q, *ino);
                    }
                }
            }
        }
        let drops = d(f.counters.drops, l.counters.drops);
        let cookies = d(f.counters.syncookies_sent, l.counters.syncookies_sent);
        if drops == 0 && cookies == 0 && waiting.is_empty() {
            continue;
        }
        let mut listeners: Vec<Listener> = waiting
            .iter()
            .map(|((local, port), (q, _))| Listener {
                local: local.clone(),
                port: *port,
                max_queue: *q,
                process: None,
            })
            .collect();
        listeners.sort_by(|a, b| b.max_queue.cmp(&a.max_queue).then(a.local.cmp(&b.local)));
        listeners.truncate(5);
        if drops > 0 || cookies > 0 {
            let inodes: HashMap<u64, usize> = listeners
                .iter()
                .enumerate()
                .filter_map(|(i, li)| Some((waiting.get(&(li.local.clone(), li.port))?.1, i)))
                .collect();
            for (ino, pid) in procfs::socket_inode_owners(&inodes.keys().copied().collect()) {
                if let Some(i) = inodes.get(&ino) {
                    listeners[*i].process = Some(procfs::process(pid, ""));
                }
            }
        }
        netns.push(NetnsListen {
            inode: *inode,
            name: names.get(inode).cloned(),
            process: Some(procfs::process(l.pid, "")),
            drops,
            overflows: d(f.counters.overflows, l.counters.overflows),
            req_queue_full_drops: d(
                f.counters.req_queue_full_drops,
                l.counters.req_queue_full_drops,
            ),
            syncookies_sent: cookies,
            listeners,
        });
    }
    netns.sort_by(|a, b| b.drops.cmp(&a.drops).then(a.inode.cmp(&b.inode)));
    ListenSignals {
        netns,
        netns_count: last.netns.len() as u32,
    }
}

impl Collector for SaturationCollector {
    fn name(&self) -> &str {
        "saturation"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        Ok(Sample::now(SaturationSample {
            host: RESOURCES.map(|r| read_psi(&procfs::host_path(format!("/proc/pressure/{r}")))),
            cgroups: read_cgroup_psi(),
            cpu: read_cpu_limited(),
            netns: {
                let n = read_netns(&self.prev_listen);
                self.prev_listen = n.iter().map(|(k, v)| (*k, v.counters)).collect();
                n
            },
        }))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((first, last)) = ends::<SaturationSample>(samples) else {
            return Ok(());
        };
        let ms = samples[samples.len() - 1]
            .unix_ms
            .saturating_sub(samples[0].unix_ms)
            .max(1);
        let between = |a: &[Option<PsiReading>; 3], b: &[Option<PsiReading>; 3], i: usize| {
            Some(pressure_between(a[i].as_ref()?, b[i].as_ref()?, ms))
        };
        let mut cgroups: Vec<CgroupPressure> = last
            .cgroups
            .iter()
            .filter_map(|(path, l)| {
                let f = first.cgroups.get(path)?;
                let [cpu, memory, io] = [0, 1, 2].map(|i| between(&f.psi, &l.psi, i));
                let high_events = l.high_events.saturating_sub(f.high_events);
                let stalled = [&cpu, &memory, &io]
                    .iter()
                    .any(|p| p.as_ref().is_some_and(|p| p.some_pct > 0.0));
                (stalled || high_events > 0).then(|| CgroupPressure {
                    path: path.clone(),
                    cpu,
                    memory,
                    io,
                    memory_high_events: high_events,
                    memory_high_bytes: l.high,
                    ..CgroupPressure::default()
                })
            })
            .collect();
        // The most stalled of each resource (by full, then some), at most TOP each.
        let mut keep: HashSet<String> = HashSet::new();
        for i in 0..3 {
            let get = |c: &CgroupPressure| match i {
                0 => c.cpu.clone(),
                1 => c.memory.clone(),
                _ => c.io.clone(),
            };
            let mut v: Vec<(f64, f64, &str)> = cgroups
                .iter()
                .filter_map(|c| get(c).map(|p| (p.full(), p.some_pct, c.path.as_str())))
                .filter(|(_, some, _)| *some > 0.0)
                .collect();
            v.sort_by(|a, b| {
                b.0.total_cmp(&a.0)
                    .then(b.1.total_cmp(&a.1))
                    .then(a.2.cmp(b.2))
            });
            keep.extend(v.into_iter().take(TOP).map(|(_, _, p)| p.to_string()));
        }
        keep.extend(
            cgroups
                .iter()
                .filter(|c| c.memory_high_events > 0)
                .map(|c| c.path.clone()),
        );
        cgroups.retain(|c| keep.contains(&c.path));
        let worst = |c: &CgroupPressure| {
            [&c.cpu, &c.memory, &c.io]
                .iter()
                .filter_map(|p| p.as_ref().map(|p| p.full().max(p.some_pct)))
                .fold(0.0, f64::max)
        };
        cgroups.sort_by(|a, b| worst(b).total_cmp(&worst(a)).then(a.path.cmp(&b.path)));
        for c in cgroups.iter_mut() {
            c.attribution = procfs::attribute_cgroup(&c.path);
            c.pod = c.attribution.pod();
            if worst(c) >= NAMED_PCT || c.memory_high_events > 0 {
                c.processes = cgroup_procs(procfs::cgroup2_root(), &c.path);
            }
        }

        let mut cpu_limited: Vec<CgroupCpu> = last
            .cpu
            .iter()
            .filter_map(|(key, l)| {
                let f = first.cpu.get(key)?;
                let periods = l.stat.periods.saturating_sub(f.stat.periods);
                (periods > 0).then(|| CgroupCpu {
                    path: key.1.clone(),
                    version: l.version,
                    quota_us: l.quota_us,
                    period_us: l.period_us,
                    periods,
                    throttled_periods: l.stat.throttled.saturating_sub(f.stat.throttled),
                    throttled_ns: l.stat.throttled_ns.saturating_sub(f.stat.throttled_ns),
                    usage_ns: l
                        .stat
                        .usage_ns
                        .zip(f.stat.usage_ns)
                        .map(|(b, a)| b.saturating_sub(a)),
                    ..CgroupCpu::default()
                })
            })
            .collect();
        cpu_limited.sort_by(|a, b| {
            b.throttled_pct()
                .total_cmp(&a.throttled_pct())
                .then(a.path.cmp(&b.path))
                .then(a.version.cmp(&b.version))
        });
        cpu_limited.truncate(TOP * 2);
        for c in cpu_limited.iter_mut() {
            c.attribution = procfs::attribute_cgroup(&c.path);
            c.pod = c.attribution.pod();
            if c.throttled_periods > 0 {
                let root = if c.version == 1 {
                    procfs::cgroup1_root("cpu", "cpu.cfs_quota_us")
                } else {
                    procfs::cgroup2_root()
                };
                c.processes = cgroup_procs(root, &c.path);
            }
        }

        let [cpu, memory, io] = [0, 1, 2].map(|i| between(&first.host, &last.host, i));
        signals.saturation = Some(SaturationSignals {
            cpu,
            memory,
            io,
            cgroups,
            cpu_limited,
            listen: Some(listen_signals(first, last, samples)),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_files_host_and_cgroup() {
        // /proc/pressure/io and a v2 cgroup's io.pressure have the same two lines.
        let text = "some avg10=12.50 avg60=3.10 avg300=0.70 total=1500000\n\
                    full avg10=9.75 avg60=2.00 avg300=0.40 total=1200000\n";
        let r = parse_psi(text).unwrap();
        assert_eq!(r.some_avg10, 12.5);
        assert_eq!(r.some_total_us, 1_500_000);
        assert_eq!(r.full_avg10, Some(9.75));
        assert_eq!(r.full_total_us, Some(1_200_000));
        // Kernels before 5.13 have no `full` line in /proc/pressure/cpu.
        let cpu = parse_psi("some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n").unwrap();
        assert_eq!((cpu.full_avg10, cpu.full_total_us), (None, None));
        assert!(parse_psi("").is_none());
        assert!(parse_psi("some avg10=x total=1\n").is_none());

        // 2.5 s of full stall over a 10 s window is 25%.
        let later = PsiReading {
            some_total_us: 1_500_000 + 4_000_000,
            full_total_us: Some(1_200_000 + 2_500_000),
            ..r
        };
        let p = pressure_between(&r, &later, 10_000);
        assert_eq!(p.some_pct, 40.0);
        assert_eq!(p.full_pct, Some(25.0));
        assert_eq!(p.full(), 25.0);
        // A counter that went backwards (a cgroup recreated) reads as no stall.
        assert_eq!(pressure_between(&later, &r, 10_000).some_pct, 0.0);
    }

    #[test]
    fn cpu_stat_v1_and_v2() {
        // cgroup v1 cpu.stat (this kernel, /sys/fs/cgroup/cpu/<cg>/cpu.stat).
        let v1 = "nr_periods 100\nnr_throttled 97\nthrottled_time 7812345678\nnr_bursts 0\nburst_time 0\n";
        assert_eq!(
            parse_cpu_stat(v1),
            Some(CpuStat {
                periods: 100,
                throttled: 97,
                throttled_ns: 7_812_345_678,
                usage_ns: None,
            })
        );
        // cgroup v2 cpu.stat (controllers absent on this hybrid host: the format of a v2
        // host's file).
        let v2 = "usage_usec 2000000\nuser_usec 1900000\nsystem_usec 100000\n\
                  nr_periods 50\nnr_throttled 20\nthrottled_usec 1500000\nnr_bursts 0\nburst_usec 0\n";
        assert_eq!(
            parse_cpu_stat(v2),
            Some(CpuStat {
                periods: 50,
                throttled: 20,
                throttled_ns: 1_500_000_000,
                usage_ns: Some(2_000_000_000),
            })
        );
        // A v2 cgroup without the cpu controller has only the usage lines.
        assert_eq!(
            parse_cpu_stat("usage_usec 5\nuser_usec 5\nsystem_usec 0\n"),
            None
        );
        assert_eq!(parse_cpu_max("20000 100000\n"), Some((20_000, 100_000)));
        assert_eq!(parse_cpu_max("max 100000\n"), None);
        assert_eq!(parse_cpu_max("50000\n"), Some((50_000, 100_000)));
    }

    #[test]
    fn netstat_and_listeners() {
        let text = "TcpExt: SyncookiesSent SyncookiesRecv ListenOverflows ListenDrops TCPReqQFullDoCookies TCPReqQFullDrop\n\
                    TcpExt: 3 0 120 131 3 8\n\
                    IpExt: InNoRoutes\nIpExt: 0\n";
        assert_eq!(
            parse_netstat_listen(text),
            Some(ListenCounters {
                drops: 131,
                overflows: 120,
                req_queue_full_drops: 8,
                syncookies_sent: 3,
            })
        );
        assert!(parse_netstat_listen("IpExt: a\nIpExt: 1\n").is_none());
        // 127.0.0.1:5001 listening (0A) with 2 connections waiting to be accepted.
        let l = "   1: 0100007F:1389 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0";
        assert_eq!(
            parse_waiting_listener(l, false),
            Some(("127.0.0.1:5001".into(), 5001, 2, 4242))
        );
        let empty = l.replace("00000000:00000002", "00000000:00000000");
        assert_eq!(parse_waiting_listener(&empty, false), None);
        let established = l.replace(" 0A ", " 01 ");
        assert_eq!(parse_waiting_listener(&established, false), None);
    }
}
