//! `tcp-rtt`: TCP round trips are slow.

use kerno_core::{
    Finding, Rule, Severity, Signals, Subject, TcpSignals, ThresholdSpec, Thresholds, human_ns,
    thousands,
};

use crate::common::{addr_host, finding, fmt_pct, latency_line, ms, pct};

/// The smoothed RTT's p99 (one sample per ACK) above `tcp_rtt_p99_ms` warns. Quiet with
/// fewer than `tcp_rtt_min_samples` samples.
pub struct TcpRtt;

/// The rule's id.
pub const ID: &str = "tcp-rtt";

/// `tcp_rtt_p99_ms`: smoothed RTT p99 above this warns (ms).
pub const TCP_RTT_P99_MS: ThresholdSpec = ThresholdSpec::number(
    "tcp_rtt_p99_ms",
    10.0,
    "ms",
    0.0,
    f64::MAX,
    "smoothed RTT p99 above this warns",
);
/// `tcp_rtt_min_samples`: fewer RTT samples than this and the rule stays quiet.
pub const TCP_RTT_MIN_SAMPLES: ThresholdSpec = ThresholdSpec::count(
    "tcp_rtt_min_samples",
    50,
    "samples",
    "fewer RTT samples than this and the rule stays quiet",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[TCP_RTT_P99_MS, TCP_RTT_MIN_SAMPLES];

/// Whether the slow tail comes from loopback flows: on loopback there is no network, and a
/// slow smoothed RTT is the peer acknowledging late (a keep-alive client acks a response
/// only with its next request, or after the 40 ms delayed-ACK timer). Judged from the slow
/// flows the probe attributed (at least 5 ms each): without them, the tail is left above the
/// threshold in fewer than 1% of the other samples. Flows not in that list count as network
/// ones, so a tail the list cannot explain still fires.
fn tail_is_loopback(tcp: &TcpSignals, t: &Thresholds) -> bool {
    let loopback: u64 = tcp
        .slow_rtt_flows
        .iter()
        .filter(|f| is_loopback(&f.remote) || is_loopback(&f.local))
        .map(|f| f.samples)
        .sum();
    if loopback == 0 {
        return false;
    }
    let threshold_ns = (t.number(&TCP_RTT_P99_MS) * 1e6) as u64;
    let slow = tcp.rtt.count_above(threshold_ns);
    let rest = tcp.rtt.count().saturating_sub(loopback) as f64;
    (slow - loopback as f64).max(0.0) <= rest * 0.01
}

/// `127.0.0.1:80`, `[::1]:80`, `[::ffff:127.0.0.1]:80`.
fn is_loopback(addr: &str) -> bool {
    let host = crate::common::addr_host(addr).trim_start_matches('[').trim_end_matches(']');
    host.parse::<std::net::IpAddr>().is_ok_and(|ip| match ip {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    })
}

impl Rule for TcpRtt {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(crate::common::RATE_WINDOW)
    }

    fn description(&self) -> &str {
        "TCP smoothed RTT p99 above tcp_rtt_p99_ms (warning); a tail that comes from loopback flows is not the network"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "The smoothed TCP round-trip time, one sample per ACK, as a p99 over the window against tcp_rtt_p99_ms; quiet with fewer than tcp_rtt_min_samples samples. A slow tail that comes only from loopback flows is a peer acknowledging late (delayed ACKs), not the network, and does not count.".into(),
            when_it_fires: vec![
                "Find the slow peers: ss -tin state established shows rtt:<smoothed>/<variance> per connection.".into(),
                "Measure the path to them (ping, mtr) and check for queueing (bufferbloat) on the node's interfaces (tc -s qdisc).".into(),
                "Move chatty peers closer, fix the congested link, or reduce round trips (batching, connection reuse).".into(),
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
        let n = tcp.rtt.count();
        if n == 0 || n < t.count(&TCP_RTT_MIN_SAMPLES) {
            return Vec::new();
        }
        let (Some(p99), Some(p50)) = (tcp.rtt.percentile(99.0), tcp.rtt.percentile(50.0)) else {
            return Vec::new();
        };
        if ms(p99) <= t.number(&TCP_RTT_P99_MS) {
            return Vec::new();
        }
        if tail_is_loopback(tcp, t) {
            return Vec::new();
        }
        // The slowest flows (recorded in the kernel) and the processes owning them.
        let slow = &tcp.slow_rtt_flows;
        let subject = match slow.first() {
            Some(fl) => match &fl.process {
                Some(p) => Subject::process(p),
                None => Subject {
                    kind: "flow".into(),
                    name: format!("{} → {}", fl.local, fl.remote),
                    ..Subject::default()
                },
            },
            None => Subject::host(&s.host.hostname),
        };
        let mut f = finding(ID, Severity::Warning, subject);
        f.title = format!(
            "TCP round trips are slow: smoothed RTT p99 {} (p50 {}) over {} ACKs",
            human_ns(p99 as f64),
            human_ns(p50 as f64),
            thousands(n)
        );
        if let Some(fl) = slow.first() {
            f.title += &format!(", slowest to {}", fl.remote);
            if let Some(p) = &fl.process {
                f.title += &format!(" from `{}` (pid {})", p.comm, p.pid);
            }
        }
        f.cause = if ms(p50) > t.number(&TCP_RTT_P99_MS) {
            format!(
                "Even the median round trip takes {}: the peers are far away (another region or continent), or every path out of this host is congested.",
                human_ns(p50 as f64)
            )
        } else {
            format!(
                "Most round trips are fast (p50 {}) but the slowest 1% take {}: some connections go to distant peers, a queue builds up on a busy link (latency that rises only under load is bufferbloat), or a slow peer delays its ACKs.",
                human_ns(p50 as f64),
                human_ns(p99 as f64)
            )
        };
        f.impact = "Every request and response waits for the round trip, and chatty protocols (many small exchanges per user request) pay it many times; a connection's throughput is capped at its window divided by the RTT.".into();
        f.evidence
            .push(format!("smoothed RTT: {}", latency_line(&tcp.rtt, "ACKs")));
        for fl in slow {
            let owner = fl
                .process
                .as_ref()
                .map(|p| format!(" (`{}` (pid {}))", p.comm, p.pid))
                .unwrap_or_default();
            f.evidence.push(format!(
                "slow flow {} → {}{owner}: {} ACKs at a smoothed RTT of 5 ms or more, mean {}, max {}",
                fl.local,
                fl.remote,
                thousands(fl.samples),
                human_ns(fl.mean_rtt_ns as f64),
                human_ns(fl.max_rtt_ns as f64)
            ));
        }
        if tcp.segments_out > 0 {
            f.evidence.push(format!(
                "{} of {} segments sent were retransmitted ({})",
                thousands(tcp.retrans_segs),
                thousands(tcp.segments_out),
                fmt_pct(pct(tcp.retrans_segs, tcp.segments_out))
            ));
        }
        for fl in &tcp.top_flows {
            f.evidence.push(format!(
                "flow with retransmits: {} → {} ({})",
                fl.local,
                fl.remote,
                thousands(fl.retransmits)
            ));
        }
        f.value = ms(p99);
        f.threshold = t.number(&TCP_RTT_P99_MS);
        f.unit = "ms".into();
        f.fix.push("ss -tin state established  # rtt:<smoothed>/<variance> per connection: which peers are slow".into());
        let peer = tcp
            .top_flows
            .first()
            .map(|fl| addr_host(&fl.remote).trim_matches(['[', ']']).to_string())
            .unwrap_or_else(|| "<peer>".into());
        f.fix.push(format!(
            "ping -c 20 {peer}  # the bare network round trip to a slow peer"
        ));
        f.fix.push(format!(
            "mtr -rwzc 50 {peer}  # where on the path the delay is added"
        ));
        f.fix.push(
            "tc -s qdisc show  # backlog and drops: a queue building up on this host's interfaces"
                .into(),
        );
        vec![f]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    fn with_rtt(h: kerno_core::Histogram) -> Signals {
        let mut s = signals();
        s.tcp = Some(TcpSignals {
            rtt: h,
            ..TcpSignals::default()
        });
        s
    }

    #[test]
    fn fast_rtt_is_quiet() {
        assert!(run(&TcpRtt, &with_rtt(hist(300_000, 10_000))).is_empty());
        assert!(run(&TcpRtt, &with_rtt(kerno_core::Histogram::new())).is_empty());
    }

    #[test]
    fn slow_tail_warns() {
        let f = one(run(&TcpRtt, &with_rtt(hist2(MS, 9_800, 40 * MS, 200))));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject.kind, "host");
        assert!(
            f.title
                .starts_with("TCP round trips are slow: smoothed RTT p99 4"),
            "{}",
            f.title
        );
        assert!(f.title.ends_with("over 10,000 ACKs"), "{}", f.title);
        assert!(f.cause.contains("Most round trips are fast"), "{}", f.cause);
        assert!(f.value > 38.0 && f.value < 43.0, "{}", f.value);
        assert_eq!(f.threshold, 10.0);
    }

    #[test]
    fn names_the_slowest_flow_and_its_process() {
        let mut s = with_rtt(hist2(MS, 90, 40 * MS, 10));
        s.tcp
            .as_mut()
            .unwrap()
            .slow_rtt_flows
            .push(kerno_core::TcpRttFlow {
                local: "10.0.0.1:5000".into(),
                remote: "10.0.0.2:443".into(),
                samples: 10,
                mean_rtt_ns: 40 * MS,
                max_rtt_ns: 41 * MS,
                process: Some(kerno_core::Process {
                    pid: 42,
                    comm: "curl".into(),
                    ..Default::default()
                }),
            });
        let f = one(run(&TcpRtt, &s));
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 42);
        assert!(
            f.title
                .contains("slowest to 10.0.0.2:443 from `curl` (pid 42)"),
            "{}",
            f.title
        );
    }

    fn flow(local: &str, remote: &str, samples: u64) -> kerno_core::TcpRttFlow {
        kerno_core::TcpRttFlow {
            local: local.into(),
            remote: remote.into(),
            samples,
            mean_rtt_ns: 12 * MS,
            max_rtt_ns: 14 * MS,
            process: None,
        }
    }

    #[test]
    fn a_tail_from_loopback_keepalive_is_not_the_network() {
        // Seen for real: keep-alive HTTP on 127.0.0.1, one request every 10 ms; the client
        // acks each response with its next request, so the smoothed RTT is ~10 ms.
        let mut s = with_rtt(hist2(MS / 4, 9_700, 12 * MS, 300));
        let tcp = s.tcp.as_mut().unwrap();
        tcp.slow_rtt_flows = vec![
            flow("127.0.0.1:8080", "127.0.0.1:51312", 160),
            flow("[::1]:8080", "[::1]:51314", 140),
        ];
        assert!(run(&TcpRtt, &s).is_empty());
        // The same tail over a real network is a finding.
        let tcp = s.tcp.as_mut().unwrap();
        tcp.slow_rtt_flows = vec![flow("10.0.0.1:8080", "10.0.0.2:51312", 300)];
        assert_eq!(run(&TcpRtt, &s).len(), 1);
        // A network tail beside a loopback one still fires, and so does a tail the
        // attributed flows do not explain.
        let tcp = s.tcp.as_mut().unwrap();
        tcp.slow_rtt_flows = vec![
            flow("127.0.0.1:8080", "127.0.0.1:51312", 150),
            flow("10.0.0.1:8080", "[::ffff:10.0.0.2]:51312", 150),
        ];
        assert_eq!(run(&TcpRtt, &s).len(), 1);
        tcp_mut(&mut s).slow_rtt_flows = vec![flow("127.0.0.1:8080", "127.0.0.1:51312", 100)];
        assert_eq!(run(&TcpRtt, &s).len(), 1);
        assert!(is_loopback("[::ffff:127.0.0.1]:80") && !is_loopback("10.1.1.1:80"));
    }

    fn tcp_mut(s: &mut Signals) -> &mut TcpSignals {
        s.tcp.as_mut().unwrap()
    }

    #[test]
    fn slow_median_says_the_peers_are_far() {
        let f = one(run(&TcpRtt, &with_rtt(hist(80 * MS, 1_000))));
        assert!(f.cause.starts_with("Even the median"), "{}", f.cause);
    }

    #[test]
    fn too_few_samples_is_quiet() {
        assert!(run(&TcpRtt, &with_rtt(hist(80 * MS, 49))).is_empty());
        assert_eq!(run(&TcpRtt, &with_rtt(hist(80 * MS, 50))).len(), 1);
    }

    #[test]
    fn boundary_is_strict() {
        let s = with_rtt(hist(12 * MS, 1_000));
        let p99 = ms(s.tcp.as_ref().unwrap().rtt.percentile(99.0).unwrap());
        let t = Thresholds::default().with(&TCP_RTT_P99_MS, p99).unwrap();
        assert!(run_with(&TcpRtt, &s, &t).is_empty());
        let t = Thresholds::default()
            .with(&TCP_RTT_P99_MS, p99 - 0.001)
            .unwrap();
        assert_eq!(run_with(&TcpRtt, &s, &t).len(), 1);
    }
}
