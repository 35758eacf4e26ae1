use std::net::{Ipv4Addr, Ipv6Addr};

use kerno_probes::{
    TcpCounters, TcpReader,
    common::{FlowKey, FlowVal},
};

use super::{
    ends,
    layered::{Layered, LayeredBuilder},
};
use crate::{Collector, CollectorError, Histogram, Sample, Signals, TcpFlow, TcpSignals, procfs};

/// How many flows the TCP signals list.
const TOP: usize = 5;

/// TCP retransmits, RTT, connect latency and connection counts from the TCP probe, with
/// segments sent from each network namespace's SNMP counters.
pub struct TcpCollector {
    reader: TcpReader,
    flows: LayeredBuilder<FlowKey, FlowVal>,
}

impl TcpCollector {
    /// A collector over the TCP probe's maps.
    pub fn new(reader: TcpReader) -> Self {
        TcpCollector {
            reader,
            flows: LayeredBuilder::new(|a, b| a.retransmits == b.retransmits),
        }
    }
}

struct TcpSample {
    counters: TcpCounters,
    rtt: Histogram,
    connect: Histogram,
    flows: Layered<FlowKey, FlowVal>,
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
        Ok(Sample::now(TcpSample {
            counters: self.reader.counters()?,
            rtt: Histogram::from_dense(&self.reader.rtt_histogram()?),
            connect: Histogram::from_dense(&self.reader.connect_histogram()?),
            flows: self.flows.next(self.reader.flows()?.into_iter().collect()),
            out_segs,
            retrans_segs,
            netns,
        }))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((first, last)) = ends::<TcpSample>(samples) else {
            return Ok(());
        };
        let (a, b) = (&first.counters, &last.counters);
        let (first_flows, last_flows) = (first.flows.materialize(), last.flows.materialize());
        let mut flows: Vec<(FlowKey, u64)> = last_flows
            .iter()
            .map(|(k, v)| {
                let before = first_flows.get(k).map(|f| f.retransmits).unwrap_or(0);
                (*k, v.retransmits.saturating_sub(before))
            })
            .filter(|(_, n)| *n > 0)
            .collect();
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
        let wanted: Vec<(String, String)> = flows
            .iter()
            .map(|f| (f.local.clone(), f.remote.clone()))
            .collect();
        let owners = procfs::tcp_socket_owners(&wanted);
        let flows = flows
            .into_iter()
            .map(|mut f| {
                f.process = owners
                    .get(&(f.local.clone(), f.remote.clone()))
                    .map(|pid| procfs::process(*pid, ""));
                f
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
