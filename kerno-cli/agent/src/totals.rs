//! Counters and histograms since the agent started, as the sum of consecutive windows.
//!
//! Every few seconds the agent builds the [`Signals`] of the interval since the previous
//! update (the same `Engine::signals_from` the doctor's windows come from) and adds it here.
//! A window's counts are never negative, so these only go up: a map entry evicted in the
//! kernel, or a network namespace that went away, cannot make a counter fall.

use std::collections::BTreeMap;

use kerno_core::{Histogram, Lost, Signals};

/// A latency histogram since start: the kernel's log-linear buckets, and the sum of the
/// windows' approximate sums ([`Histogram::approx_sum_ns`]).
#[derive(Clone, Debug, Default)]
pub(crate) struct HistTotal {
    pub hist: Histogram,
    pub sum_ns: f64,
}

impl HistTotal {
    fn add(&mut self, h: &Histogram) {
        self.hist.merge(h);
        self.sum_ns += h.approx_sum_ns();
    }

    /// Prometheus buckets with the given upper bounds (ns, each a power of two, so every
    /// kernel bucket falls wholly inside one, see [`Histogram::regroup`]): `(upper bound in
    /// seconds, count in that bucket alone)`, ending with `+Inf`.
    pub fn buckets(&self, bounds_ns: &[u64]) -> Vec<(f64, u64)> {
        bounds_ns
            .iter()
            .map(|b| *b as f64 / 1e9)
            .chain([f64::INFINITY])
            .zip(self.hist.regroup(bounds_ns))
            .collect()
    }
}

/// One syscall since start.
#[derive(Clone, Debug, Default)]
pub(crate) struct SyscallTotal {
    pub count: u64,
    pub errors: u64,
    pub latency: HistTotal,
}

/// One device and operation since start.
#[derive(Clone, Debug, Default)]
pub(crate) struct DiskTotal {
    pub count: u64,
    pub bytes: u64,
    pub errors: u64,
    pub latency: HistTotal,
}

/// TCP since start.
#[derive(Clone, Debug, Default)]
pub(crate) struct TcpTotal {
    pub retransmits: u64,
    pub segments_out: u64,
    pub rtt: HistTotal,
    pub connect: HistTotal,
    pub active_opens: u64,
    pub passive_opens: u64,
    pub closes: u64,
    pub connect_failed: u64,
}

/// Everything since the agent started. A domain's totals exist once it has been observed.
#[derive(Clone, Debug, Default)]
pub(crate) struct Totals {
    /// By syscall name.
    pub syscalls: Option<BTreeMap<String, SyscallTotal>>,
    /// Descriptors created and closed.
    pub fds: Option<(u64, u64)>,
    pub sched: Option<HistTotal>,
    pub tcp: Option<TcpTotal>,
    pub oom_kills: Option<u64>,
    /// By (device, operation).
    pub disk: Option<BTreeMap<(String, String), DiskTotal>>,
    /// Kernel events by domain ([`Signals::events`]).
    pub events: BTreeMap<String, u64>,
    pub lost: Lost,
}

impl Totals {
    /// Add one interval's window.
    pub fn add(&mut self, s: &Signals) {
        if let Some(sys) = &s.syscalls {
            let all = self.syscalls.get_or_insert_with(BTreeMap::new);
            for st in &sys.syscalls {
                let t = all.entry(st.name.clone()).or_default();
                t.count += st.count;
                t.errors += st.errors;
                t.latency.add(&st.latency);
            }
        }
        if s.fds.is_some() {
            let (o, c) = self.fds.get_or_insert((0, 0));
            if let Some(sys) = &s.syscalls {
                *o += sys.fd_opens();
                *c += sys.fd_closes();
            }
        }
        if let Some(sc) = &s.sched {
            self.sched
                .get_or_insert_with(HistTotal::default)
                .add(&sc.runq_delay);
        }
        if let Some(t) = &s.tcp {
            let a = self.tcp.get_or_insert_with(TcpTotal::default);
            a.retransmits += t.retransmits;
            a.segments_out += t.segments_out;
            a.rtt.add(&t.rtt);
            a.connect.add(&t.connect_latency);
            a.active_opens += t.active_opens;
            a.passive_opens += t.passive_opens;
            a.closes += t.closes;
            a.connect_failed += t.connect_failed;
        }
        if let Some(n) = s.oom_kills() {
            *self.oom_kills.get_or_insert(0) += n;
        }
        if let Some(d) = &s.disk {
            let all = self.disk.get_or_insert_with(BTreeMap::new);
            for dev in &d.devices {
                for op in &dev.ops {
                    let key = (dev.short_label().to_string(), op.op.clone());
                    let t = all.entry(key).or_default();
                    t.count += op.count;
                    t.bytes += op.bytes;
                    t.errors += op.errors;
                    t.latency.add(&op.latency);
                }
            }
        }
        for (domain, n) in s.events() {
            *self.events.entry(domain.to_string()).or_insert(0) += n;
        }
        self.lost += &s.lost;
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::{SyscallSignals, SyscallStat};

    use super::*;

    #[test]
    fn buckets_are_exact_unions_of_kernel_buckets() {
        let mut t = HistTotal::default();
        let mut h = Histogram::new();
        h.record_n(1_000, 3); // below 1024
        h.record_n(1_024, 2); // the next power of two starts the next bucket
        h.record_n(5_000_000_000, 1); // beyond the last bound
        t.add(&h);
        let b = t.buckets(&[1 << 10, 1 << 12]);
        assert_eq!(b, vec![(1.024e-6, 3), (4.096e-6, 2), (f64::INFINITY, 1)]);
        let sum_s = t.sum_ns / 1e9;
        assert!((sum_s - 5.000005).abs() / 5.000005 < 0.07, "{sum_s}");
    }

    #[test]
    fn totals_only_go_up() {
        let mut tot = Totals::default();
        let stat = |count, errors| SyscallStat {
            nr: 0,
            name: "read".into(),
            count,
            errors,
            ..SyscallStat::default()
        };
        for (c, e) in [(5, 1), (0, 0), (7, 2)] {
            let s = Signals {
                syscalls: Some(SyscallSignals {
                    total_calls: c,
                    total_errors: e,
                    syscalls: vec![stat(c, e)],
                    ..Default::default()
                }),
                ..Signals::default()
            };
            tot.add(&s);
        }
        let r = &tot.syscalls.as_ref().unwrap()["read"];
        assert_eq!((r.count, r.errors), (12, 3));
        assert_eq!(tot.events["syscalls"], 12);
        assert!(tot.tcp.is_none(), "an unobserved domain has no totals");
    }
}
