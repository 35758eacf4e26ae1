use std::{collections::HashMap, fs, os::unix::fs::MetadataExt};

use super::ends;
use crate::{
    Collector, CollectorError, ConntrackNetns, ConntrackSignals, Process, Sample, Series, Signals,
    procfs::{self, ConntrackStat},
};

/// At most this many network namespaces are listed (the fullest).
const TOP: usize = 20;

/// Connection tracking per network namespace: each namespace's entry count and drops from
/// `/proc/<pid>/net/stat/nf_conntrack` (one read per namespace that has a process), against
/// the host's `nf_conntrack_max`. Needs no eBPF; observes nothing when the `nf_conntrack`
/// module is not loaded (nothing is tracked then, so nothing can fill).
#[derive(Default)]
pub struct ConntrackCollector;

impl ConntrackCollector {
    /// A new conntrack collector.
    pub fn new() -> Self {
        ConntrackCollector
    }
}

#[derive(Clone, Copy)]
struct NetnsReading {
    /// The lowest pid seen in the namespace.
    pid: u32,
    stat: ConntrackStat,
}

struct ConntrackSample {
    max: u64,
    host_netns: Option<u64>,
    namespaces: HashMap<u64, NetnsReading>,
}

fn netns_of(pid: &str) -> Option<u64> {
    fs::metadata(procfs::host_path(format!("/proc/{pid}/ns/net")))
        .ok()
        .map(|m| m.ino())
}

fn read_namespaces() -> HashMap<u64, NetnsReading> {
    let mut pids = procfs::pids();
    pids.sort_unstable();
    let mut out: HashMap<u64, NetnsReading> = HashMap::new();
    let mut unreadable = std::collections::HashSet::new();
    for pid in pids {
        let Some(ns) = netns_of(&pid.to_string()) else {
            continue;
        };
        if out.contains_key(&ns) || unreadable.contains(&ns) {
            continue;
        }
        let text = fs::read_to_string(procfs::host_path(format!(
            "/proc/{pid}/net/stat/nf_conntrack"
        )));
        match text.ok().as_deref().and_then(procfs::parse_conntrack_stat) {
            Some(stat) => {
                out.insert(ns, NetnsReading { pid, stat });
            }
            None => {
                unreadable.insert(ns);
            }
        }
    }
    out
}

impl Collector for ConntrackCollector {
    fn name(&self) -> &str {
        "conntrack"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        let max = procfs::sysctl_u64("net/netfilter/nf_conntrack_max");
        let namespaces = read_namespaces();
        let Some(max) = max.filter(|_| !namespaces.is_empty()) else {
            return Err(CollectorError::Source {
                source_name: "/proc/net/stat/nf_conntrack".into(),
                reason: "connection tracking is not in use (the nf_conntrack module is not loaded)"
                    .into(),
            });
        };
        Ok(Sample::now(ConntrackSample {
            max,
            host_netns: netns_of("1"),
            namespaces,
        }))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((first, last)) = ends::<ConntrackSample>(samples) else {
            return Ok(());
        };
        let t0 = samples[0].unix_ms;
        let host = last.host_netns.or_else(|| netns_of("self"));
        let mut list: Vec<ConntrackNetns> = last
            .namespaces
            .iter()
            .map(|(ns, r)| {
                let f = first.namespaces.get(ns).map(|f| f.stat).unwrap_or(r.stat);
                ConntrackNetns {
                    netns: *ns,
                    host: Some(*ns) == host,
                    process: Process {
                        pid: r.pid,
                        ..Process::default()
                    },
                    count_start: f.entries,
                    count: r.stat.entries,
                    drops: r.stat.drop.saturating_sub(f.drop),
                    early_drops: r.stat.early_drop.saturating_sub(f.early_drop),
                    insert_failed: r.stat.insert_failed.saturating_sub(f.insert_failed),
                    count_series: Series::default(),
                }
            })
            .collect();
        list.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then(
                    (b.drops + b.early_drops + b.insert_failed)
                        .cmp(&(a.drops + a.early_drops + a.insert_failed)),
                )
                .then(a.netns.cmp(&b.netns))
        });
        list.truncate(TOP);
        for s in samples {
            let Some(c) = s.get::<ConntrackSample>() else {
                continue;
            };
            let at = s.unix_ms.saturating_sub(t0);
            for n in list.iter_mut() {
                if let Some(r) = c.namespaces.get(&n.netns) {
                    n.count_series.push(at, r.stat.entries as f64);
                }
            }
        }
        for n in list.iter_mut() {
            n.process = procfs::process(n.process.pid, "");
        }
        signals.conntrack = Some(ConntrackSignals {
            max: last.max,
            namespaces: list,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine_when_conntrack_is_loaded() {
        let mut c = ConntrackCollector::new();
        let Ok(a) = c.sample() else {
            // No nf_conntrack here: nothing to read, and the error says so.
            let e = c.sample().err().unwrap().to_string();
            assert!(e.contains("nf_conntrack"), "{e}");
            return;
        };
        let b = c.sample().unwrap();
        let mut s = Signals::default();
        c.fill(&[&a, &b], &mut s).unwrap();
        let ct = s.conntrack.unwrap();
        assert!(ct.max > 0);
        assert!(!ct.namespaces.is_empty());
        assert!(ct.namespaces.iter().all(|n| n.count_series.len() == 2));
    }
}
