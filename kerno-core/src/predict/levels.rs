//! The levels a window's signals hold: each thing with a limit, and its series.

use std::collections::HashSet;

use super::{Level, Resource};
use crate::{Series, Signals};

/// The kubelet's default hard eviction threshold `memory.available<100Mi`, bytes.
const KUBELET_MEMORY_AVAILABLE: f64 = 100.0 * 1024.0 * 1024.0;

/// Every level in `signals` with a limit and a series: host memory, each memory cgroup's
/// working set (usage when `memory.stat` is unreadable; the kubelet counts the working set,
/// and page cache is dropped at the limit rather than OOM-killed), each process's open
/// descriptors (counted in /proc, or from the descriptor probe's net opens when only that
/// is there), each filesystem's space and inodes (used as node-exporter and the kubelet
/// count it: the root reserve is used), the host's tasks and each pids cgroup's, and each
/// network namespace's conntrack entries.
pub fn levels(signals: &Signals) -> Vec<Level> {
    let mut out = Vec::new();
    if let Some(m) = &signals.memory {
        if m.total_bytes > 0 && !m.used_series.is_empty() {
            let mut host = Level::new(
                Resource::HostMemory,
                "host",
                m.total_bytes as f64,
                m.used_series.clone(),
            );
            if signals.host.environment == "kubernetes" {
                // The kubelet evicts first, at memory.available < 100Mi by default.
                host.limit = (m.total_bytes as f64 - KUBELET_MEMORY_AVAILABLE).max(0.0);
                host.consequence = Some(
                    "the kubelet evicts pods (memory.available under 100 MiB, its default), then the OOM killer picks a victim"
                        .into(),
                );
            }
            out.push(host);
        }
        for c in &m.cgroups {
            let series = if c.working_set_series.len() == c.usage_series.len()
                && !c.working_set_series.is_empty()
            {
                c.working_set_series.clone()
            } else {
                c.usage_series.clone()
            };
            if series.is_empty() {
                continue;
            }
            out.push(Level {
                resource: Resource::CgroupMemory,
                what: c.path.clone(),
                process: None,
                cgroup: Some(c.path.clone()),
                pod: c.pod.clone().or_else(|| c.attribution.pod()),
                limit: c.limit_bytes as f64,
                consequence: None,
                series,
            });
        }
    }
    let mut seen = HashSet::new();
    if let Some(fc) = &signals.fd_counts {
        for p in &fc.processes {
            let Some(limit) = p.soft_limit else { continue };
            seen.insert(p.process.pid);
            out.push(Level {
                resource: Resource::Fds,
                what: format!("pid {} ({})", p.process.pid, p.process.comm),
                process: Some(p.process.clone()),
                cgroup: p.process.cgroup.clone(),
                pod: p.process.pod.clone(),
                limit: limit as f64,
                consequence: None,
                series: p.series.clone(),
            });
        }
    }
    if let Some(fds) = &signals.fds {
        for p in &fds.processes {
            let (Some(open), Some(limit), Some(net_end)) =
                (p.open_fds, p.soft_limit, p.net_series.last())
            else {
                continue;
            };
            if !seen.insert(p.process.pid) {
                continue;
            }
            // The count at each sample: the count now, less what was opened since.
            let series = Series::from_points(
                p.net_series
                    .0
                    .iter()
                    .map(|(t, net)| (*t, open as f64 - (net_end - net))),
            );
            out.push(Level {
                resource: Resource::Fds,
                what: format!("pid {} ({})", p.process.pid, p.process.comm),
                process: Some(p.process.clone()),
                cgroup: p.process.cgroup.clone(),
                pod: p.process.pod.clone(),
                limit: limit as f64,
                consequence: None,
                series,
            });
        }
    }
    if let Some(fs) = &signals.filesystem {
        for f in &fs.filesystems {
            let mut what = f.label();
            if !f.roles.is_empty() {
                what = format!("{what} [{}]", f.roles.join(", "));
            }
            let role = |r: &str| f.roles.iter().any(|x| x == r);
            let imagefs = role("containerd") || role("docker");
            if f.size_bytes > 0 && !f.used_series.is_empty() {
                let mut l = Level::new(
                    Resource::FsSpace,
                    what.clone(),
                    f.size_bytes as f64,
                    f.used_series.clone(),
                );
                // The kubelet's eviction thresholds come before full: imagefs.available
                // < 15%, nodefs.available < 10% (its defaults).
                let evict = if imagefs {
                    Some((0.15, "imagefs.available under 15%"))
                } else if role("kubelet") {
                    Some((0.10, "nodefs.available under 10%"))
                } else {
                    None
                };
                if let Some((share, signal)) = evict {
                    l.limit = f.size_bytes as f64 * (1.0 - share);
                    l.consequence = Some(format!(
                        "the kubelet garbage-collects images and evicts pods ({signal}, its default); writes fail with ENOSPC when it is full"
                    ));
                }
                out.push(l);
            }
            if f.inodes > 0 && !f.inodes_used_series.is_empty() {
                let mut l = Level::new(
                    Resource::FsInodes,
                    what,
                    f.inodes as f64,
                    f.inodes_used_series.clone(),
                );
                if role("kubelet") || imagefs {
                    l.limit = f.inodes as f64 * 0.95;
                    l.consequence = Some(
                        "the kubelet evicts pods (inodesFree under 5%, its default); file creation fails with ENOSPC when none is left"
                            .into(),
                    );
                }
                out.push(l);
            }
        }
    }
    if let Some(p) = &signals.pids {
        let limit = p.host_limit();
        if limit > 0 && !p.threads_series.is_empty() {
            out.push(Level::new(
                Resource::HostPids,
                "host",
                limit as f64,
                p.threads_series.clone(),
            ));
        }
        for c in &p.cgroups {
            if c.current_series.is_empty() {
                continue;
            }
            out.push(Level {
                resource: Resource::CgroupPids,
                what: c.path.clone(),
                process: None,
                cgroup: Some(c.path.clone()),
                pod: c.attribution.pod(),
                limit: c.limit as f64,
                consequence: None,
                series: c.current_series.clone(),
            });
        }
    }
    if let Some(ct) = &signals.conntrack {
        for n in &ct.namespaces {
            if ct.max == 0 || n.count_series.is_empty() {
                continue;
            }
            out.push(Level {
                resource: Resource::Conntrack,
                what: n.label(),
                process: (!n.host).then(|| n.process.clone()),
                cgroup: None,
                pod: n.process.pod.clone(),
                limit: ct.max as f64,
                consequence: None,
                series: n.count_series.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        CgroupMemory, FdProcess, FdSignals, Filesystem, FilesystemSignals, MemorySignals, Process,
    };

    #[test]
    fn working_sets_and_descriptor_counts_become_levels() {
        let s = Signals {
            memory: Some(MemorySignals {
                total_bytes: 1000,
                used_series: Series::from_points([(0, 1.0), (1000, 2.0)]),
                cgroups: vec![CgroupMemory {
                    path: "/a".into(),
                    limit_bytes: 500,
                    usage_series: Series::from_points([(0, 100.0), (1000, 200.0)]),
                    working_set_series: Series::from_points([(0, 50.0), (1000, 60.0)]),
                    ..CgroupMemory::default()
                }],
                ..MemorySignals::default()
            }),
            fds: Some(FdSignals {
                processes: vec![FdProcess {
                    process: Process {
                        pid: 7,
                        comm: "leaky".into(),
                        ..Process::default()
                    },
                    open_fds: Some(110),
                    soft_limit: Some(1024),
                    net_series: Series::from_points([(0, 0.0), (1000, 4.0), (2000, 10.0)]),
                    ..FdProcess::default()
                }],
            }),
            ..Signals::default()
        };
        let l = levels(&s);
        assert_eq!(l.len(), 3);
        assert_eq!(l[1].series.last(), Some(60.0), "the working set");
        assert_eq!(l[2].what, "pid 7 (leaky)");
        let counts: Vec<f64> = l[2].series.0.iter().map(|p| p.1).collect();
        assert_eq!(counts, vec![100.0, 104.0, 110.0]);
    }

    #[test]
    fn kubelet_filesystems_and_memory_run_out_at_the_eviction_thresholds() {
        let fs = |mountpoint: &str, roles: &[&str]| Filesystem {
            mountpoint: mountpoint.into(),
            device: "/dev/sda1".into(),
            fstype: "ext4".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            size_bytes: 1000,
            inodes: 100,
            used_series: Series::from_points([(0, 1.0), (1000, 2.0)]),
            inodes_used_series: Series::from_points([(0, 1.0), (1000, 2.0)]),
            ..Filesystem::default()
        };
        let s = Signals {
            host: crate::Host {
                environment: "kubernetes".into(),
                ..crate::Host::default()
            },
            memory: Some(MemorySignals {
                total_bytes: 1 << 30,
                used_series: Series::from_points([(0, 1.0), (1000, 2.0)]),
                ..MemorySignals::default()
            }),
            filesystem: Some(FilesystemSignals {
                filesystems: vec![
                    fs("/var/lib/kubelet", &["kubelet"]),
                    fs("/", &["kubelet", "containerd"]),
                    fs("/data", &[]),
                ],
            }),
            ..Signals::default()
        };
        let l = levels(&s);
        let limits: Vec<(Resource, f64)> = l.iter().map(|l| (l.resource, l.limit)).collect();
        assert_eq!(
            limits,
            vec![
                (
                    Resource::HostMemory,
                    (1u64 << 30) as f64 - 100.0 * 1048576.0
                ),
                (Resource::FsSpace, 900.0),
                (Resource::FsInodes, 95.0),
                (Resource::FsSpace, 850.0),
                (Resource::FsInodes, 95.0),
                (Resource::FsSpace, 1000.0),
                (Resource::FsInodes, 100.0),
            ]
        );
        assert!(
            l[1].consequence
                .as_deref()
                .unwrap()
                .contains("nodefs.available")
        );
        assert!(
            l[3].consequence
                .as_deref()
                .unwrap()
                .contains("imagefs.available")
        );
        assert!(l[5].consequence.is_none());
        assert!(l[1].what.contains("[kubelet]"), "{}", l[1].what);
    }
}
