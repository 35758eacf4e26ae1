use std::collections::HashMap;

use crate::{Collector, CollectorError, FdCount, FdCountSignals, Sample, Series, Signals, procfs};

/// How many growing processes the signals list.
const TOP: usize = 50;

/// Open descriptors of every process, counted in `/proc/<pid>/fd` at each sample, with the
/// soft `RLIMIT_NOFILE`: descriptor levels without eBPF (what `kerno predict` projects; the
/// [`super::FdCollector`] counts opens and closes in the kernel instead).
#[derive(Default)]
pub struct FdCountCollector;

impl FdCountCollector {
    /// A new descriptor counter.
    pub fn new() -> Self {
        FdCountCollector
    }
}

/// `(pid, open descriptors)`, sorted by pid: 8 bytes a process, as an agent keeps an hour
/// of these.
struct Counts(Box<[(u32, u32)]>);

impl Counts {
    fn new(map: HashMap<u32, u64>) -> Counts {
        let mut v: Vec<(u32, u32)> = map
            .into_iter()
            .map(|(pid, n)| (pid, n.min(u32::MAX as u64) as u32))
            .collect();
        v.sort_unstable();
        Counts(v.into_boxed_slice())
    }

    fn get(&self, pid: u32) -> Option<u64> {
        self.0
            .binary_search_by_key(&pid, |e| e.0)
            .ok()
            .map(|i| self.0[i].1 as u64)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

impl Collector for FdCountCollector {
    fn name(&self) -> &str {
        "fd_counts"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        let counts: HashMap<u32, u64> = procfs::pids()
            .into_iter()
            .filter_map(|pid| Some((pid, procfs::fd_count(pid)?)))
            .collect();
        if counts.is_empty() {
            return Err(CollectorError::Source {
                source_name: "/proc/<pid>/fd".into(),
                reason: "no process's descriptors could be listed".into(),
            });
        }
        Ok(Sample::now(Counts::new(counts)))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let series: Vec<(u64, &Counts)> = samples
            .iter()
            .filter_map(|s| Some((s.unix_ms, s.get::<Counts>()?)))
            .collect();
        let (Some(first), Some(last)) = (series.first(), series.last()) else {
            return Ok(());
        };
        let t0 = first.0;
        let mut grown: Vec<(u32, u64)> = last
            .1
            .0
            .iter()
            .filter(|(pid, _)| *pid != signals.collector_pid)
            .filter_map(|&(pid, n)| {
                // Growth from the lowest count seen, so a process that opened and closed
                // a batch is not listed.
                let low = series.iter().filter_map(|(_, c)| c.get(pid)).min()?;
                (n as u64 > low).then_some((pid, n as u64 - low))
            })
            .collect();
        grown.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        grown.truncate(TOP);
        let processes = grown
            .into_iter()
            .map(|(pid, _)| FdCount {
                process: procfs::process(pid, ""),
                open_fds: last.1.get(pid).unwrap_or(0),
                soft_limit: procfs::nofile_soft_limit(pid),
                series: Series::from_points(
                    series
                        .iter()
                        .filter_map(|(ms, c)| Some((ms.saturating_sub(t0), c.get(pid)? as f64))),
                ),
            })
            .collect();
        signals.fd_counts = Some(FdCountSignals {
            processes_counted: last.1.len(),
            processes,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, counts: &[(u32, u64)]) -> Sample {
        let mut s = Sample::now(Counts::new(counts.iter().copied().collect()));
        s.unix_ms = ms;
        s
    }

    #[test]
    fn growing_processes_are_listed_with_their_series_and_the_rest_counted() {
        // This process's pid, so /proc resolves its name and limit.
        let me = std::process::id();
        let samples = [
            at(1000, &[(me, 10), (2, 50), (3, 30)]),
            at(2000, &[(me, 12), (2, 50), (3, 20)]),
            at(3000, &[(me, 15), (2, 50), (3, 25)]),
        ];
        let refs: Vec<&Sample> = samples.iter().collect();
        let mut s = Signals {
            collector_pid: 2,
            ..Signals::default()
        };
        FdCountCollector::new().fill(&refs, &mut s).unwrap();
        let fc = s.fd_counts.unwrap();
        assert_eq!(fc.processes_counted, 3);
        // pid 2 (the collector itself) is skipped; pid 3 grew 5 from its low, this one 5.
        let pids: Vec<u32> = fc.processes.iter().map(|p| p.process.pid).collect();
        assert_eq!(pids.len(), 2, "{pids:?}");
        let mine = fc.processes.iter().find(|p| p.process.pid == me).unwrap();
        assert_eq!(
            mine.series,
            Series::from_points([(0, 10.0), (1000, 12.0), (2000, 15.0)])
        );
        assert_eq!(mine.open_fds, 15);
        assert!(mine.soft_limit.unwrap() >= 64);
        assert!(!mine.process.comm.is_empty());
    }

    #[test]
    fn a_live_sample_counts_this_process() {
        let s = FdCountCollector::new().sample().unwrap();
        let counts = s.get::<Counts>().unwrap();
        assert!(counts.get(std::process::id()).unwrap() >= 3);
    }
}
