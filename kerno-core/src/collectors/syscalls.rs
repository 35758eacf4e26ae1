use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use kerno_probes::{
    SyscallReader, SyscallTotals,
    common::{ProcSyscallKey, ProcSyscallVal},
    syscalls,
};

use super::{
    Evictions, ends,
    layered::{FastMap, Layered, LayeredBuilder},
    p99_series, rate_series,
};
use crate::{
    Collector, CollectorError, Histogram, ProcessErrors, ProcessSlow, Sample, Signals,
    SyscallSignals, SyscallStat, procfs,
};

/// How many processes each syscall lists as top offenders.
const TOP: usize = 5;

/// Per-syscall counts, errors (by errno and process) and latency, from the syscall probe.
pub struct SyscallCollector {
    reader: Arc<SyscallReader>,
    /// Last histogram read per syscall, with the count it was read at: a histogram is only
    /// read again when that syscall's count moved, which keeps a sample cheap.
    cache: HashMap<u32, (u64, Arc<Histogram>)>,
    totals: LayeredBuilder<u32, (u64, u64)>,
    buckets: LayeredBuilder<(u32, u32), u64>,
    procs: LayeredBuilder<ProcSyscallKey, ProcSyscallVal>,
    evictions: Evictions,
}

struct SyscallSample {
    /// (calls, errors) by syscall number, for the syscalls that ran.
    totals: Layered<u32, (u64, u64)>,
    /// Latency histogram counts by (syscall number, bucket).
    buckets: Layered<(u32, u32), u64>,
    procs: Layered<ProcSyscallKey, ProcSyscallVal>,
    /// Per-process rows evicted so far (at least).
    evicted: u64,
}

impl SyscallSample {
    /// Calls and errors, and the latency histograms, by syscall number.
    fn read(&self) -> (FastMap<u32, (u64, u64)>, HashMap<u32, Histogram>) {
        let mut dense: HashMap<u32, Vec<u64>> = HashMap::new();
        for ((nr, b), c) in self.buckets.materialize() {
            dense
                .entry(nr)
                .or_insert_with(|| vec![0; kerno_probes::common::hist::BUCKETS])[b as usize] = c;
        }
        let hists = dense
            .into_iter()
            .map(|(nr, d)| (nr, Histogram::from_dense(&d)))
            .collect();
        (self.totals.materialize(), hists)
    }
}

/// At each sample: calls and errors of every syscall, and the latency histogram of the
/// non-waiting syscalls together (all cumulative). Errors are capped at calls, as in the
/// window's totals.
fn per_sample(samples: &[&Sample]) -> (Vec<u64>, Vec<u64>, Vec<Histogram>) {
    let readings: Vec<&SyscallSample> = samples.iter().filter_map(|s| s.get()).collect();
    let (mut calls, mut errors, mut latency) = (Vec::new(), Vec::new(), Vec::new());
    if readings.len() != samples.len() {
        return (calls, errors, latency);
    }
    let totals: Vec<&Layered<u32, (u64, u64)>> = readings.iter().map(|r| &r.totals).collect();
    Layered::replay(&totals, |_, map| {
        let (c, e) = map
            .values()
            .fold((0u64, 0u64), |(c, e), (c1, e1)| (c + c1, e + e1.min(c1)));
        calls.push(c);
        errors.push(e);
    });
    let buckets: Vec<&Layered<(u32, u32), u64>> = readings.iter().map(|r| &r.buckets).collect();
    Layered::replay(&buckets, |_, map| {
        let mut dense = vec![0u64; kerno_probes::common::hist::BUCKETS];
        for ((nr, b), c) in map {
            if syscalls::class_of(*nr) & kerno_probes::common::class::WAIT == 0
                && let Some(slot) = dense.get_mut(*b as usize)
            {
                *slot += c;
            }
        }
        latency.push(Histogram::from_dense(&dense));
    });
    (calls, errors, latency)
}

impl SyscallCollector {
    /// A collector over the syscall probe's maps.
    pub fn new(reader: Arc<SyscallReader>) -> Self {
        SyscallCollector {
            reader,
            cache: HashMap::new(),
            totals: LayeredBuilder::new(|a, b| a == b),
            buckets: LayeredBuilder::new(|a, b| a == b),
            procs: LayeredBuilder::new(|a, b| a.count == b.count && a.lat_sum_ns == b.lat_sum_ns),
            evictions: Evictions::default(),
        }
    }
}

impl Collector for SyscallCollector {
    fn name(&self) -> &str {
        "syscalls"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        let SyscallTotals { count, errors } = self.reader.totals()?;
        let mut totals = FastMap::default();
        let mut buckets = FastMap::default();
        for (nr, (&count, &errors)) in count.iter().zip(&errors).enumerate() {
            if count == 0 {
                continue;
            }
            let nr = nr as u32;
            totals.insert(nr, (count, errors));
            let h = match self.cache.get(&nr) {
                Some((c, h)) if *c == count => h.clone(),
                _ => {
                    let h = Arc::new(Histogram::from_dense(&self.reader.histogram(nr)?));
                    self.cache.insert(nr, (count, h.clone()));
                    h
                }
            };
            for (b, c) in h.buckets() {
                buckets.insert((nr, *b), *c);
            }
        }
        let inserted = self.reader.per_process_inserted()?;
        let rows = self.reader.per_process()?;
        let evicted = self.evictions.update(inserted, rows.len());
        let procs = self.procs.next(rows.into_iter().collect());
        Ok(Sample::now(SyscallSample {
            totals: self.totals.next(totals),
            buckets: self.buckets.next(buckets),
            procs,
            evicted,
        }))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((first, last)) = ends::<SyscallSample>(samples) else {
            return Ok(());
        };
        signals.lost.syscalls_evicted += last.evicted.saturating_sub(first.evicted);
        let empty = Histogram::new();
        let mut out = SyscallSignals::default();
        // Per-process rows that moved in the window, grouped by syscall: (key, calls, their
        // latency sum, the longest, comm).
        type Row = (ProcSyscallKey, u64, u64, u64, [u8; 16]);
        let mut by_nr: HashMap<u32, Vec<Row>> = HashMap::new();
        Layered::changes(&first.procs, &last.procs, |k, before, v| {
            let (c0, l0) = before.map(|p| (p.count, p.lat_sum_ns)).unwrap_or((0, 0));
            let n = v.count.saturating_sub(c0);
            if n > 0 {
                let lat = v.lat_sum_ns.saturating_sub(l0);
                by_nr
                    .entry(k.nr as u32)
                    .or_default()
                    .push((*k, n, lat, v.max_ns, v.comm));
            }
        });
        let mut processes = HashMap::new();
        let mut resolve = |pid: u32, comm: &[u8; 16]| {
            processes
                .entry(pid)
                .or_insert_with(|| procfs::process(pid, &procfs::comm_str(comm)))
                .clone()
        };

        let ((first_totals, first_hists), (last_totals, last_hists)) = (first.read(), last.read());
        let mut nrs: Vec<u32> = last_totals.keys().copied().collect();
        nrs.sort_unstable();
        for nr in nrs {
            let (c1, e1) = last_totals[&nr];
            let (c0, e0) = first_totals.get(&nr).copied().unwrap_or((0, 0));
            let count = c1.saturating_sub(c0);
            if count == 0 {
                continue;
            }
            // The programs bump a call's count, then its error, without a lock; a read that
            // lands between the two sees one more call than errors, which can leave a window
            // one error ahead of its calls. A call is never counted as failed without being
            // counted.
            let errors = e1.saturating_sub(e0).min(count);
            let latency = match (last_hists.get(&nr), first_hists.get(&nr)) {
                (Some(l), Some(f)) => l.delta(f),
                (Some(l), None) => l.delta(&empty),
                _ => Histogram::new(),
            };
            let mut errnos = BTreeMap::new();
            let mut top_errors = Vec::new();
            let mut top_slow = Vec::new();
            let rows = by_nr.remove(&nr).unwrap_or_default();
            for (k, n, _, _, _) in &rows {
                if k.errno != 0 {
                    *errnos
                        .entry(syscalls::errno_name(k.errno as u32))
                        .or_insert(0) += n;
                }
            }
            // The TOP failing and the TOP slow rows, most calls first: picked, then only
            // those sorted (a storm leaves thousands of rows per syscall).
            let (mut failed, mut slow): (Vec<Row>, Vec<Row>) =
                rows.into_iter().partition(|r| r.0.errno != 0);
            let order = |a: &Row, b: &Row| b.1.cmp(&a.1).then(a.0.tgid.cmp(&b.0.tgid));
            for rows in [&mut failed, &mut slow] {
                if rows.len() > TOP {
                    rows.select_nth_unstable_by(TOP - 1, order);
                    rows.truncate(TOP);
                }
                rows.sort_by(order);
            }
            for (k, n, lat_sum, max_ns, comm) in failed.into_iter().chain(slow) {
                if k.errno != 0 {
                    if top_errors.len() < TOP {
                        top_errors.push(ProcessErrors {
                            process: resolve(k.tgid, &comm),
                            errno: syscalls::errno_name(k.errno as u32),
                            count: n,
                        });
                    }
                } else if top_slow.len() < TOP {
                    top_slow.push(ProcessSlow {
                        process: resolve(k.tgid, &comm),
                        count: n,
                        mean_ns: lat_sum / n,
                        max_ns,
                    });
                }
            }
            out.total_calls += count;
            out.total_errors += errors;
            out.syscalls.push(SyscallStat {
                nr,
                name: syscalls::name(nr),
                wait: syscalls::class_of(nr) & kerno_probes::common::class::WAIT != 0,
                count,
                errors,
                errnos,
                latency,
                top_errors,
                top_slow,
            });
        }
        out.syscalls
            .sort_by(|a, b| b.count.cmp(&a.count).then(a.nr.cmp(&b.nr)));
        let (calls, errors, latency) = per_sample(samples);
        out.calls_series = rate_series(samples, &calls);
        out.errors_series = rate_series(samples, &errors);
        out.p99_series = p99_series(samples, &latency);
        signals.syscalls = Some(out);
        Ok(())
    }

    fn compact(&self, samples: &[&Sample]) {
        let readings: Vec<&Layered<_, _>> = samples
            .iter()
            .filter_map(|s| s.get::<SyscallSample>())
            .map(|s| &s.procs)
            .collect();
        Layered::compact(&readings);
    }
}
