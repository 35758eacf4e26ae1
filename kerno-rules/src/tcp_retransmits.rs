//! `tcp-retransmits`: too many TCP segments have to be sent again.

use kerno_core::{
    Finding, Rule, Severity, Signals, Subject, TcpFlow, TcpSignals, ThresholdSpec, Thresholds,
    thousands,
};

use crate::common::{addr_host, finding, fmt_pct, pct, proc_name};

/// Retransmitted segments over segments sent (the kernel's `RetransSegs` / `OutSegs`) above
/// `tcp_retransmit_pct` is critical. Quiet when fewer than `tcp_min_segments` segments were
/// sent. The subject is the flow with the most retransmits, when the probe saw one.
pub struct TcpRetransmits;

/// The rule's id.
pub const ID: &str = "tcp-retransmits";

/// `tcp_retransmit_pct`: retransmitted / sent segments above this is critical (%).
pub const TCP_RETRANSMIT_PCT: ThresholdSpec = ThresholdSpec::number(
    "tcp_retransmit_pct",
    2.0,
    "%",
    0.0,
    100.0,
    "retransmitted / sent segments above this is critical",
);
/// `tcp_min_segments`: fewer segments sent than this and the rule stays quiet.
pub const TCP_MIN_SEGMENTS: ThresholdSpec = ThresholdSpec::count(
    "tcp_min_segments",
    500,
    "segments",
    "fewer segments sent than this and the rule stays quiet",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[TCP_RETRANSMIT_PCT, TCP_MIN_SEGMENTS];

fn flow_name(f: &TcpFlow) -> String {
    format!("{} → {}", f.local, f.remote)
}

fn flow_line(f: &TcpFlow) -> String {
    let mut line = format!("{}: {} retransmits", flow_name(f), thousands(f.retransmits));
    if let Some(p) = &f.process {
        line += &format!(" ({})", proc_name(p));
    }
    line
}

fn subject(tcp: &TcpSignals, s: &Signals) -> Subject {
    match tcp.top_flows.first() {
        Some(flow) => Subject {
            kind: "flow".into(),
            name: flow_name(flow),
            process: flow
                .process
                .clone()
                .filter(|p| p.pid != s.collector_pid || s.collector_pid == 0),
            cgroup: flow.process.as_ref().and_then(|p| p.cgroup.clone()),
            pod: flow.process.as_ref().and_then(|p| p.pod.clone()),
            ..Subject::default()
        },
        None => Subject::host(&s.host.hostname),
    }
}

impl Rule for TcpRetransmits {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(crate::common::RATE_WINDOW)
    }

    fn description(&self) -> &str {
        "TCP retransmitted / sent segments above tcp_retransmit_pct (critical)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "The share of TCP segments retransmitted, the kernel's RetransSegs over OutSegs in the window, against tcp_retransmit_pct: above it is critical. Quiet when fewer than tcp_min_segments segments were sent. The subject is the flow with the most retransmits.".into(),
            when_it_fires: vec![
                "See which peer the finding names: ss -tin dst <peer> (retrans, rto, cwnd per connection).".into(),
                "Look for drops on the path: nstat -az TcpRetransSegs TcpOutSegs TcpExtTCPTimeouts; ethtool -S <interface> | grep -iE 'err|drop|discard'; the kernel log (kerno explain) for conntrack or NIC errors.".into(),
                "Fix the lossy link, NIC or overloaded middlebox; a peer that is overloaded drops too.".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let Some(tcp) = &s.tcp else {
            return Vec::new();
        };
        if tcp.segments_out == 0 || tcp.segments_out < t.count(&TCP_MIN_SEGMENTS) {
            return Vec::new();
        }
        let rate = pct(tcp.retrans_segs, tcp.segments_out);
        if rate <= t.number(&TCP_RETRANSMIT_PCT) {
            return Vec::new();
        }
        let mut f = finding(ID, Severity::Critical, subject(tcp, s));
        f.title = format!(
            "TCP retransmits {} of segments sent ({} of {})",
            fmt_pct(rate),
            thousands(tcp.retrans_segs),
            thousands(tcp.segments_out)
        );
        let flow_total: u64 = tcp
            .top_flows
            .iter()
            .fold(0u64, |n, f| n.saturating_add(f.retransmits));
        let probe_total = tcp.retransmits.max(flow_total);
        let top = tcp.top_flows.first();
        let concentrated = top.filter(|fl| fl.retransmits * 2 > probe_total);
        if let Some(fl) = top {
            f.title += &format!("; most to {}", fl.remote);
        }
        f.cause = "Segments are lost on the way to the peers (or their ACKs on the way back), so TCP sends them again after a timeout or duplicate ACKs. Usual causes: a congested or faulty link (NIC errors, a full switch buffer, a flapping route), a peer that drops under load (full receive queue, conntrack table full), or loss inside an overlay or VPN.".into();
        match concentrated {
            Some(fl) => {
                f.cause += &format!(
                    " Most retransmits go to {}: look at the path to that peer and at the peer itself first.",
                    fl.remote
                )
            }
            None if !tcp.top_flows.is_empty() => {
                f.cause += " They are spread over many peers: suspect this host's own link, NIC or a hop they all share."
            }
            None => {}
        }
        f.impact = "Every lost segment stalls its connection for a round trip at best and a retransmission timeout (at least 200 ms on Linux) at worst, and TCP halves its sending rate: requests slow down and throughput drops.".into();
        f.evidence.push(format!(
            "{} of {} segments sent were retransmissions ({}), from the kernel's RetransSegs/OutSegs over {} network namespace(s)",
            thousands(tcp.retrans_segs),
            thousands(tcp.segments_out),
            fmt_pct(rate),
            tcp.netns_count.max(1)
        ));
        if tcp.retransmits > 0 {
            f.evidence.push(format!(
                "the retransmit probe saw {} retransmit events",
                thousands(tcp.retransmits)
            ));
        }
        for fl in &tcp.top_flows {
            f.evidence.push(flow_line(fl));
        }
        f.evidence.push(format!(
            "connections in the window: {} opened, {} accepted, {} connects failed, {} closed",
            thousands(tcp.active_opens),
            thousands(tcp.passive_opens),
            thousands(tcp.connect_failed),
            thousands(tcp.closes)
        ));
        f.value = rate;
        f.threshold = t.number(&TCP_RETRANSMIT_PCT);
        f.unit = "%".into();
        match top {
            Some(fl) => {
                let peer = addr_host(&fl.remote);
                // A bracketed IPv6 address would be a glob pattern to the shell.
                let quoted = if peer.starts_with('[') {
                    format!("'{peer}'")
                } else {
                    peer.to_string()
                };
                f.fix.push(format!(
                    "ss -tin dst {quoted}  # per connection: retrans, rtt, cwnd, lost"
                ));
                f.fix.push(format!(
                    "mtr -rwzc 50 {}  # which hop on the path loses packets",
                    peer.trim_matches(['[', ']'])
                ));
            }
            None => f
                .fix
                .push("ss -tin state established  # retrans, rtt and cwnd per connection".into()),
        }
        f.fix
            .push("ip -s link  # RX/TX errors and drops on this host's interfaces".into());
        f.fix.push("nstat -az TcpRetransSegs TcpOutSegs TcpExtTCPTimeouts TcpExtTCPLostRetransmit  # the counters behind this, live".into());
        f.fix.push("ethtool -S <interface> | grep -iE 'err|drop|discard|fifo'  # NIC-level drops (ring buffer overflows, CRC errors)".into());
        vec![f]
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::TcpSignals;

    use super::*;
    use crate::testutil::*;

    fn with_tcp(out: u64, retrans: u64, flows: Vec<TcpFlow>) -> Signals {
        let mut s = signals();
        s.tcp = Some(TcpSignals {
            retransmits: retrans,
            segments_out: out,
            retrans_segs: retrans,
            netns_count: 1,
            top_flows: flows,
            ..TcpSignals::default()
        });
        s
    }

    fn flow(remote: &str, n: u64) -> TcpFlow {
        TcpFlow {
            local: "10.0.0.5:43122".into(),
            remote: remote.into(),
            retransmits: n,
            process: Some(proc_(4121, "api")),
        }
    }

    #[test]
    fn quiet_when_few_retransmits() {
        assert!(run(&TcpRetransmits, &signals()).is_empty());
        assert!(run(&TcpRetransmits, &with_tcp(100_000, 100, vec![])).is_empty());
        assert!(run(&TcpRetransmits, &with_tcp(0, 0, vec![])).is_empty());
    }

    #[test]
    fn fires_critical_with_the_top_flow() {
        let s = with_tcp(
            25_600,
            1_234,
            vec![flow("10.0.0.9:5432", 1_000), flow("10.0.0.7:443", 100)],
        );
        let f = one(run(&TcpRetransmits, &s));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(
            f.title,
            "TCP retransmits 4.8% of segments sent (1,234 of 25,600); most to 10.0.0.9:5432"
        );
        assert_eq!(f.subject.kind, "flow");
        assert_eq!(f.subject.name, "10.0.0.5:43122 → 10.0.0.9:5432");
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 4121);
        assert!(f.cause.contains("Most retransmits go to 10.0.0.9:5432"));
        assert!(f.fix.iter().any(|x| x.starts_with("ss -tin dst 10.0.0.9 ")));
        assert!(
            f.fix
                .iter()
                .any(|x| x.starts_with("mtr -rwzc 50 10.0.0.9 "))
        );
        assert!((f.value - 4.8203).abs() < 0.001);
    }

    #[test]
    fn spread_retransmits_blame_the_host_side() {
        let s = with_tcp(
            10_000,
            900,
            vec![
                flow("10.0.0.9:5432", 300),
                flow("10.0.0.7:443", 300),
                flow("10.0.0.8:443", 300),
            ],
        );
        let f = one(run(&TcpRetransmits, &s));
        assert!(f.cause.contains("spread over many peers"), "{}", f.cause);
        let f = one(run(&TcpRetransmits, &with_tcp(10_000, 900, vec![])));
        assert_eq!(f.subject.kind, "host");
    }

    #[test]
    fn boundary_is_strict() {
        // Exactly 2%: fine. One more retransmitted segment: critical.
        assert!(run(&TcpRetransmits, &with_tcp(10_000, 200, vec![])).is_empty());
        assert_eq!(
            one(run(&TcpRetransmits, &with_tcp(10_000, 201, vec![]))).severity,
            Severity::Critical
        );
    }

    #[test]
    fn too_few_segments_is_quiet() {
        // 50% loss, but 499 segments is below tcp_min_segments (500).
        assert!(run(&TcpRetransmits, &with_tcp(499, 250, vec![])).is_empty());
        assert_eq!(run(&TcpRetransmits, &with_tcp(500, 250, vec![])).len(), 1);
    }

    #[test]
    fn ipv6_peers_keep_their_brackets_for_ss() {
        let s = with_tcp(10_000, 900, vec![flow("[2001:db8::9]:443", 900)]);
        let f = one(run(&TcpRetransmits, &s));
        assert!(
            f.fix
                .iter()
                .any(|x| x.starts_with("ss -tin dst '[2001:db8::9]' "))
        );
        assert!(
            f.fix
                .iter()
                .any(|x| x.starts_with("mtr -rwzc 50 2001:db8::9 "))
        );
    }

    #[test]
    fn the_collector_is_never_the_subject_process() {
        let mut fl = flow("10.0.0.9:5432", 900);
        fl.process = Some(proc_(COLLECTOR, "kerno"));
        let f = one(run(&TcpRetransmits, &with_tcp(10_000, 900, vec![fl])));
        assert!(f.subject.process.is_none());
    }
}
