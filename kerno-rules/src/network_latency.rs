//! `network-latency`: new TCP connections take long to establish.

use kerno_core::{
    Finding, Rule, Severity, Signals, Subject, ThresholdSpec, Thresholds, human_ns, thousands,
};

use crate::common::{finding, fmt_pct, latency_line, ms, pct};

/// TCP connect latency (SYN sent to ESTABLISHED) p99 above `connect_p99_ms` warns; with
/// fewer than `connect_min_samples` connects it is an informational, low-volume finding.
pub struct NetworkLatency;

/// The rule's id.
pub const ID: &str = "network-latency";

/// `connect_p99_ms`: connect latency p99 above this warns (ms).
pub const CONNECT_P99_MS: ThresholdSpec = ThresholdSpec::number(
    "connect_p99_ms",
    100.0,
    "ms",
    0.0,
    f64::MAX,
    "connect latency p99 above this warns",
);
/// `connect_min_samples`: fewer connects than this and the finding says so.
pub const CONNECT_MIN_SAMPLES: ThresholdSpec = ThresholdSpec::count(
    "connect_min_samples",
    5,
    "connects",
    "fewer connects than this and the finding says so",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[CONNECT_P99_MS, CONNECT_MIN_SAMPLES];

/// The SYN retransmission timeout starts at 1 s: a connect this slow lost a SYN.
const SYN_RTO_NS: u64 = 900_000_000;

impl Rule for NetworkLatency {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(crate::common::RATE_WINDOW)
    }

    fn description(&self) -> &str {
        "TCP connect latency p99 above connect_p99_ms (warning)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "TCP connect latency, SYN sent to ESTABLISHED, as a p99 over the window against connect_p99_ms; with fewer than connect_min_samples connects the finding is informational and low volume. A connect near 1 s or 3 s lost a SYN (the retransmission timeout).".into(),
            when_it_fires: vec![
                "Find which peers are slow: ss -tin state syn-sent, and the finding's flow list.".into(),
                "On the server: nstat -az TcpExtListenOverflows TcpExtListenDrops (a full accept backlog drops SYNs); on the path: packet loss, a full conntrack table (cat /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max).".into(),
                "Fix the overloaded listener (backlog, somaxconn, more acceptors) or the lossy path; keep connections alive instead of reconnecting per request.".into(),
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
        let h = &tcp.connect_latency;
        let Some(p99) = h.percentile(99.0) else {
            return Vec::new();
        };
        if ms(p99) <= t.number(&CONNECT_P99_MS) {
            return Vec::new();
        }
        let n = h.count();
        let low = n < t.count(&CONNECT_MIN_SAMPLES);
        let severity = if low {
            Severity::Info
        } else {
            Severity::Warning
        };
        // The processes behind the slow connects (recorded in the kernel at connect time).
        let slow: Vec<_> = tcp
            .slow_connects
            .iter()
            .filter(|c| c.process.pid != s.collector_pid)
            .collect();
        let subject = match slow.first() {
            Some(c) => Subject::process(&c.process),
            None => Subject::host(&s.host.hostname),
        };
        let mut f = finding(ID, severity, subject);
        f.low_volume = low;
        f.title = format!(
            "TCP connects {}: p99 {} over {}{} connects",
            if low { "may be slow" } else { "are slow" },
            human_ns(p99 as f64),
            if low { "only " } else { "" },
            thousands(n)
        );
        if let Some(c) = slow.first() {
            f.title += &format!(
                ", slowest from `{}` (pid {}) to {}",
                c.process.comm, c.process.pid, c.remote
            );
        }
        if tcp.connect_failed > 0 {
            f.title += &format!("; {} failed", thousands(tcp.connect_failed));
        }
        let syn_lost = p99 >= SYN_RTO_NS;
        f.cause = if syn_lost {
            "A connect that takes a second or more lost its SYN or the SYN-ACK: the kernel resends the SYN after 1 s, then 3 s. Usual causes: a server whose listen backlog is full drops new SYNs under load, a firewall or a full conntrack table drops new flows, or the path loses packets.".into()
        } else {
            "The TCP handshake (SYN to SYN-ACK) takes long: the servers are far away, a busy server is slow to answer SYNs, or the path to them is congested.".into()
        };
        f.impact = "Every new connection waits this long before its first byte: clients without connection pooling or keep-alive pay it on each request, and tight connect timeouts turn it into errors.".into();
        f.evidence
            .push(format!("connect latency: {}", latency_line(h, "connects")));
        for c in &slow {
            f.evidence.push(format!(
                "`{}` (pid {}) → {}: {} slow connects, mean {}, max {}",
                c.process.comm,
                c.process.pid,
                c.remote,
                thousands(c.count),
                human_ns(c.mean_ns as f64),
                human_ns(c.max_ns as f64)
            ));
        }
        let syn_retries = h.count_above(SYN_RTO_NS);
        if syn_retries >= 1.0 {
            f.evidence.push(format!(
                "{} of {} connects took 0.9 s or more (a resent SYN)",
                thousands(syn_retries.round() as u64),
                thousands(n)
            ));
        }
        f.evidence.push(format!(
            "connections in the window: {} connected, {} failed to connect, {} accepted",
            thousands(tcp.active_opens),
            thousands(tcp.connect_failed),
            thousands(tcp.passive_opens)
        ));
        if tcp.segments_out > 0 {
            f.evidence.push(format!(
                "{} of segments sent were retransmitted",
                fmt_pct(pct(tcp.retrans_segs, tcp.segments_out))
            ));
        }
        f.value = ms(p99);
        f.threshold = t.number(&CONNECT_P99_MS);
        f.unit = "ms".into();
        f.fix.push(
            "ss -tnp state syn-sent  # connects in flight right now: to whom, from which process"
                .into(),
        );
        f.fix.push("nstat -az TcpExtListenOverflows TcpExtListenDrops TcpExtTCPReqQFullDrop  # on the server: SYNs dropped at a full backlog".into());
        f.fix.push(
            "ss -ltn  # on the server: Recv-Q close to Send-Q means the accept queue is full"
                .into(),
        );
        f.fix.push("cat /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max  # a full conntrack table drops new flows".into());
        vec![f]
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::TcpSignals;

    use super::*;
    use crate::testutil::*;

    fn with(h: kerno_core::Histogram, failed: u64) -> Signals {
        let mut s = signals();
        s.tcp = Some(TcpSignals {
            active_opens: h.count(),
            connect_latency: h,
            connect_failed: failed,
            ..TcpSignals::default()
        });
        s
    }

    #[test]
    fn fast_connects_are_quiet() {
        assert!(run(&NetworkLatency, &signals()).is_empty());
        assert!(run(&NetworkLatency, &with(kerno_core::Histogram::new(), 0)).is_empty());
        assert!(run(&NetworkLatency, &with(hist(400_000, 1_000), 0)).is_empty());
    }

    #[test]
    fn names_the_process_behind_the_slow_connects() {
        let mut s = with(hist2(MS, 90, 300 * MS, 10), 0);
        let tcp = s.tcp.as_mut().unwrap();
        tcp.slow_connects.push(kerno_core::SlowConnect {
            process: kerno_core::Process {
                pid: 777,
                comm: "client".into(),
                ..Default::default()
            },
            remote: "10.0.0.2:443".into(),
            count: 10,
            mean_ns: 300 * MS,
            max_ns: 310 * MS,
        });
        let f = one(run(&NetworkLatency, &s));
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 777);
        assert!(
            f.title.contains("`client` (pid 777) to 10.0.0.2:443"),
            "{}",
            f.title
        );
        assert!(
            f.evidence.iter().any(|e| e.contains("10 slow connects")),
            "{:?}",
            f.evidence
        );
    }

    #[test]
    fn slow_connects_warn() {
        let f = one(run(&NetworkLatency, &with(hist2(MS, 95, 250 * MS, 5), 0)));
        assert_eq!(f.severity, Severity::Warning);
        assert!(!f.low_volume);
        assert!(
            f.title.starts_with("TCP connects are slow: p99 2"),
            "{}",
            f.title
        );
        assert!(f.cause.starts_with("The TCP handshake"), "{}", f.cause);
    }

    #[test]
    fn second_long_connects_mean_lost_syns() {
        let f = one(run(
            &NetworkLatency,
            &with(hist2(MS, 90, 1_020 * MS, 10), 3),
        ));
        assert!(f.cause.contains("lost its SYN"), "{}", f.cause);
        assert!(
            f.title.ends_with("over 100 connects; 3 failed"),
            "{}",
            f.title
        );
        assert!(
            f.evidence
                .iter()
                .any(|e| e.starts_with("10 of 100 connects took 0.9 s or more")),
            "{:?}",
            f.evidence
        );
    }

    #[test]
    fn few_connects_are_informational() {
        let f = one(run(&NetworkLatency, &with(hist(300 * MS, 4), 0)));
        assert_eq!(f.severity, Severity::Info);
        assert!(f.low_volume);
        assert_eq!(
            one(run(&NetworkLatency, &with(hist(300 * MS, 5), 0))).severity,
            Severity::Warning
        );
    }

    #[test]
    fn boundary_is_strict() {
        let s = with(hist(150 * MS, 100), 0);
        let p99 = ms(s
            .tcp
            .as_ref()
            .unwrap()
            .connect_latency
            .percentile(99.0)
            .unwrap());
        let t = Thresholds::default().with(&CONNECT_P99_MS, p99).unwrap();
        assert!(run_with(&NetworkLatency, &s, &t).is_empty());
        let t = Thresholds::default()
            .with(&CONNECT_P99_MS, p99 - 0.001)
            .unwrap();
        assert_eq!(run_with(&NetworkLatency, &s, &t).len(), 1);
    }
}
