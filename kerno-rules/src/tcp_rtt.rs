//! `tcp-rtt`: TCP round trips are slow.

use kerno_core::{
    Finding, Rule, Severity, Signals, Subject, ThresholdSpec, Thresholds, human_ns, thousands,
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

impl Rule for TcpRtt {
    fn id(&self) -> &str {
        ID
    }

    fn description(&self) -> &str {
        "TCP smoothed RTT p99 above tcp_rtt_p99_ms (warning)"
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
    use kerno_core::TcpSignals;

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
