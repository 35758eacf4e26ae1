use std::net::{Ipv4Addr, Ipv6Addr};

use kerno_probes::{
    TcpCounters, TcpReader,
    common::{ConnKey, FlowKey, FlowVal, SlowConn, SlowRtt},
};

use super::{
    Evictions, ends,
    layered::{Layered, LayeredBuilder},
    rate_series,
};
use crate::{
    Collector, CollectorError, Histogram, Sample, Signals, SlowConnect, TcpFlow, TcpRttFlow,
    TcpSignals, procfs,
};

/// How many flows the TCP signals list.
const TOP: usize = 5;

/// TCP retransmits, RTT, connect latency and connection counts from the TCP probe, with
/// segments sent from each network namespace's SNMP counters.
pub struct TcpCollector {
    reader: TcpReader,
    flows: LayeredBuilder<FlowKey, FlowVal>,
    slow_rtt: LayeredBuilder<FlowKey, SlowRtt>,
    slow_connects: LayeredBuilder<ConnKey, SlowConn>,
    /// Per map: flows, slow RTTs, slow connects.
    evictions: [Evictions; 3],
}

impl TcpCollector {
    /// A collector over the TCP probe's maps.
    pub fn new(reader: TcpReader) -> Self {
        TcpCollector {
            reader,
            flows: LayeredBuilder::new(|a, b| a.retransmits == b.retransmits),
            slow_rtt: LayeredBuilder::new(|a, b| a.samples == b.samples),
            slow_connects: LayeredBuilder::new(|a, b| a.count == b.count),
            evictions: [Evictions::default(); 3],
        }
    }
}

struct TcpSample {
    counters: TcpCounters,
    rtt: Histogram,
    connect: Histogram,
    flows: Layered<FlowKey, FlowVal>,
    slow_rtt: Layered<FlowKey, SlowRtt>,
    slow_connects: Layered<ConnKey, SlowConn>,
    /// Rows the three maps evicted so far (at least).
    evicted: u64,
    out_segs: u64,
    retrans_segs: u64,
    netns: u32,
}

fn addr(family: u16, raw: &[u8; 16], port: u16) -> String {
    if family == 10 {
        format!("[{}]:{port}", Ipv6Addr::from(*raw))
    } else {
        format!("{}:{port}", Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    }
}

impl Collector for TcpCollector {
    fn name(&self) -> &str {
        "tcp"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        let (out_segs, retrans_segs, netns) = procfs::tcp_snmp_all_netns();
        let inserted = self.reader.inserted()?;
        let (flows, slow_rtt, slow_connects) = (
            self.reader.flows()?,
            self.reader.slow_rtt_flows()?,
            self.reader.slow_connects()?,
        );
        let evicted = self.evictions[0].update(inserted[0], flows.len())
            + self.evictions[1].update(inserted[1], slow_rtt.len())
            + self.evictions[2].update(inserted[2], slow_connects.len());
        Ok(Sample::now(TcpSample {
            counters: self.reader.counters()?,
            rtt: Histogram::from_dense(&self.reader.rtt_histogram()?),
            connect: Histogram::from_dense(&self.reader.connect_histogram()?),
            flows: self.flows.next(flows.into_iter().collect()),
            slow_rtt: self.slow_rtt.next(slow_rtt.into_iter().collect()),
            slow_connects: self.slow_connects.next(slow_connects.into_iter().collect()),
            evicted,
            out_segs,
            retrans_segs,
            netns,
        }))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((first, last)) = ends::<TcpSample>(samples) else {
            return Ok(());
        };
        let readings: Vec<&TcpSample> = samples.iter().filter_map(|s| s.get()).collect();
        let retransmits: Vec<u64> = if readings.len() == samples.len() {
            readings.iter().map(|r| r.counters.retransmits).collect()
        } else {
            Vec::new()
        };
        signals.lost.tcp_evicted += last.evicted.saturating_sub(first.evicted);
        let (a, b) = (&first.counters, &last.counters);
        let mut flows: Vec<(FlowKey, u64)> = Vec::new();
        Layered::changes(&first.flows, &last.flows, |k, before, v| {
            let n = v
                .retransmits
                .saturating_sub(before.map(|f| f.retransmits).unwrap_or(0));
            if n > 0 {
                flows.push((*k, n));
            }
        });
        flows.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.sport.cmp(&y.0.sport)));
        flows.truncate(TOP);
        let flows: Vec<TcpFlow> = flows
            .into_iter()
            .map(|(k, n)| TcpFlow {
                local: addr(k.family, &k.saddr, k.sport),
                remote: addr(k.family, &k.daddr, k.dport),
                retransmits: n,
                process: None,
            })
            .collect();
        // Slow-RTT flows in the window, most slow ACKs first.
        let mut rtt_flows: Vec<TcpRttFlow> = Vec::new();
        Layered::changes(&first.slow_rtt, &last.slow_rtt, |k, before, v| {
            let (n0, t0) = before.map(|f| (f.samples, f.total_us)).unwrap_or((0, 0));
            let n = v.samples.saturating_sub(n0);
            if n > 0 {
                rtt_flows.push(TcpRttFlow {
                    local: addr(k.family, &k.saddr, k.sport),
                    remote: addr(k.family, &k.daddr, k.dport),
                    samples: n,
                    mean_rtt_ns: v.total_us.saturating_sub(t0) * 1000 / n,
                    max_rtt_ns: v.max_us * 1000,
                    process: None,
                });
            }
        });
        rtt_flows.sort_by(|a, b| b.samples.cmp(&a.samples).then(a.local.cmp(&b.local)));
        rtt_flows.truncate(TOP);

        // Name the processes owning the flows (one pass over /proc for both lists).
        let mut wanted: Vec<(String, String)> = flows
            .iter()
            .map(|f| (f.local.clone(), f.remote.clone()))
            .collect();
        wanted.extend(
            rtt_flows
                .iter()
                .map(|f| (f.local.clone(), f.remote.clone())),
        );
        let owners = procfs::tcp_socket_owners(&wanted);
        let owner = |l: &str, r: &str| {
            owners
                .get(&(l.to_string(), r.to_string()))
                .map(|pid| procfs::process(*pid, ""))
        };
        let flows: Vec<TcpFlow> = flows
            .into_iter()
            .map(|mut f| {
                f.process = owner(&f.local, &f.remote);
                f
            })
            .collect();
        for f in &mut rtt_flows {
            f.process = owner(&f.local, &f.remote);
        }

        // (key, count, mean, max, comm); only the top ones are looked up in /proc.
        let mut connects: Vec<(ConnKey, u64, u64, u64, [u8; 16])> = Vec::new();
        Layered::changes(&first.slow_connects, &last.slow_connects, |k, before, v| {
            let (c0, t0) = before.map(|f| (f.count, f.total_ns)).unwrap_or((0, 0));
            let n = v.count.saturating_sub(c0);
            if let Some(mean) = v.total_ns.saturating_sub(t0).checked_div(n) {
                connects.push((*k, n, mean, v.max_ns, v.comm));
            }
        });
        let remote = |k: &ConnKey| addr(k.family, &k.daddr, k.dport);
        connects.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| remote(&a.0).cmp(&remote(&b.0))));
        connects.truncate(TOP);
        let slow_connects: Vec<SlowConnect> = connects
            .into_iter()
            .map(|(k, count, mean_ns, max_ns, comm)| SlowConnect {
                process: procfs::process(k.tgid, &procfs::comm_str(&comm)),
                remote: remote(&k),
                count,
                mean_ns,
                max_ns,
            })
            .collect();

        signals.tcp = Some(TcpSignals {
            retransmits: b.retransmits.saturating_sub(a.retransmits),
            // Namespaces can come and go between the samples; never report negative.
            segments_out: last.out_segs.saturating_sub(first.out_segs),
            retrans_segs: last.retrans_segs.saturating_sub(first.retrans_segs),
            netns_count: last.netns,
            rtt: last.rtt.delta(&first.rtt),
            connect_latency: last.connect.delta(&first.connect),
            active_opens: b.active_opens.saturating_sub(a.active_opens),
            passive_opens: b.passive_opens.saturating_sub(a.passive_opens),
            closes: b.closes.saturating_sub(a.closes),
            connect_failed: b.connect_failed.saturating_sub(a.connect_failed),
            top_flows: flows,
            slow_rtt_flows: rtt_flows,
            slow_connects,
            retransmits_series: rate_series(samples, &retransmits),
        });
        Ok(())
    }

    fn compact(&self, samples: &[&Sample]) {
        let readings: Vec<&Layered<_, _>> = samples
            .iter()
            .filter_map(|s| s.get::<TcpSample>())
            .map(|s| &s.flows)
            .collect();
        Layered::compact(&readings);
    }
}
