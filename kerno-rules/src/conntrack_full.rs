//! `conntrack-full`: a network namespace's connection-tracking table is (nearly) full, or
//! connections were dropped for it.

use kerno_core::{
    ConntrackNetns, ConntrackSignals, Finding, Rule, Severity, Signals, Subject, ThresholdSpec,
    Thresholds, thousands,
};

use crate::common::{finding, fmt_pct, grade, pct};

/// A network namespace whose tracked connections are above `conntrack_warn_pct` of
/// `nf_conntrack_max` warns, above `conntrack_crit_pct` it is critical; new connections
/// dropped for a full table (`drop`) in the window are critical, entries evicted early
/// (`early_drop`) or insertions that failed (`insert_failed`) warn, each when more than
/// `conntrack_drops` happened.
pub struct ConntrackFull;

/// The rule's id.
pub const ID: &str = "conntrack-full";

/// `conntrack_warn_pct`: tracked connections above this share of the limit warn (%).
pub const CONNTRACK_WARN_PCT: ThresholdSpec = ThresholdSpec::number(
    "conntrack_warn_pct",
    80.0,
    "%",
    0.0,
    100.0,
    "a network namespace's tracked connections above this share of nf_conntrack_max warn",
);
/// `conntrack_crit_pct`: ... are critical above this share (%).
pub const CONNTRACK_CRIT_PCT: ThresholdSpec = ThresholdSpec::number(
    "conntrack_crit_pct",
    95.0,
    "%",
    0.0,
    100.0,
    "a network namespace's tracked connections above this share of nf_conntrack_max are critical",
);
/// `conntrack_drops`: more drops, early drops or failed insertions than this in the window
/// fire.
pub const CONNTRACK_DROPS: ThresholdSpec = ThresholdSpec::count(
    "conntrack_drops",
    0,
    "events",
    "more conntrack drops (critical), early drops or failed insertions (warning) than this in the window fire",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[CONNTRACK_WARN_PCT, CONNTRACK_CRIT_PCT, CONNTRACK_DROPS];

fn subject(n: &ConntrackNetns) -> Subject {
    let mut s = Subject {
        kind: "netns".into(),
        name: n.label(),
        ..Subject::default()
    };
    if !n.host && n.process.pid != 0 {
        s.cgroup = n.process.cgroup.clone();
        s.pod = n.process.pod.clone();
        s.attribution = n.process.attribution.clone();
        s.process = Some(n.process.clone());
    }
    s
}

fn judge(n: &ConntrackNetns, max: u64, t: &Thresholds) -> Option<Finding> {
    let fill = pct(n.count, max);
    let level = grade(
        fill,
        t.number(&CONNTRACK_WARN_PCT),
        t.number(&CONNTRACK_CRIT_PCT),
    );
    let allowed = t.count(&CONNTRACK_DROPS);
    let dropping = n.drops > allowed;
    let evicting = n.early_drops > allowed || n.insert_failed > allowed;
    let severity = match (level, dropping, evicting) {
        (_, true, _) => Severity::Critical,
        (Some((s, _)), _, _) => s,
        (None, false, true) => Severity::Warning,
        (None, false, false) => return None,
    };
    let mut f = finding(ID, severity, subject(n));
    let who = n.label();
    f.title = if dropping {
        format!(
            "{who} is dropping new connections: its conntrack table is full ({} of {}), {} dropped in the window",
            thousands(n.count),
            thousands(max),
            thousands(n.drops)
        )
    } else if level.is_some() {
        format!(
            "{who}'s conntrack table is {} full: {} of {} tracked connections",
            fmt_pct(fill),
            thousands(n.count),
            thousands(max)
        )
    } else if n.early_drops > allowed {
        format!(
            "{who}'s conntrack table is evicting entries to make room: {} early drops in the window",
            thousands(n.early_drops)
        )
    } else {
        format!(
            "{who} failed to insert {} conntrack entries in the window",
            thousands(n.insert_failed)
        )
    };
    f.cause = if dropping || level.is_some() || n.early_drops > allowed {
        "Every connection netfilter tracks (for NAT, Kubernetes Services through kube-proxy, stateful firewall rules) takes an entry in the namespace's conntrack table, which holds at most nf_conntrack_max. Entries outlive their connections (TIME_WAIT 2 min, established 5 days by default, unreplied UDP 30 s), so many short connections, a scan or a flood fill it. When it is full the kernel first evicts entries not yet confirmed by traffic both ways (early_drop) and then drops the first packet of new connections.".into()
    } else {
        "Two packets of the same new flow raced to insert one conntrack entry and one lost (insert_failed): the classic cause is parallel UDP DNS queries (A and AAAA) from one socket through DNAT (a Kubernetes Service), which makes lookups wait for a 5 s retry.".into()
    };
    f.impact = if dropping {
        "New connections through this namespace fail: their SYN or first UDP packet is silently dropped, so clients time out and retry (connect() takes 1 s, 3 s, 7 s ...). Established connections keep working.".into()
    } else {
        "At the limit, new connections are silently dropped (clients see timeouts, not errors). Until then, entries evicted early break connections that had not yet been answered, and failed inserts delay DNS lookups by seconds.".into()
    };
    f.evidence.push(format!(
        "{} connections tracked of nf_conntrack_max {} ({}); {} at the start of the window",
        thousands(n.count),
        thousands(max),
        fmt_pct(fill),
        thousands(n.count_start)
    ));
    f.evidence.push(format!(
        "in the window: {} dropped (table full), {} evicted early, {} failed inserts",
        thousands(n.drops),
        thousands(n.early_drops),
        thousands(n.insert_failed)
    ));
    if !n.host {
        f.evidence.push(format!(
            "network namespace {} (inode), first process pid {} `{}`",
            n.netns, n.process.pid, n.process.comm
        ));
    }
    let events = (n.drops + n.early_drops + n.insert_failed) as f64;
    (f.value, f.threshold, f.unit) = match level {
        Some((_, th)) if !dropping => (fill, th, "%".into()),
        _ => (events, allowed as f64, "events".into()),
    };
    let enter = if n.host {
        String::new()
    } else {
        format!("nsenter -t {} -n ", n.process.pid)
    };
    f.fix.push(format!(
        "{enter}conntrack -S  # per-CPU counters: drop, early_drop, insert_failed"
    ));
    f.fix.push(format!(
        "{enter}conntrack -L -o extended 2>/dev/null | awk '{{print $3, $4}}' | sort | uniq -c | sort -rn | head  # which protocols and states fill the table"
    ));
    f.fix.push(format!(
        "sysctl -w net.netfilter.nf_conntrack_max={}  # more room (in the host namespace; about 300 bytes of kernel memory each)",
        (max.max(1) * 2)
    ));
    f.fix.push("Shorten what keeps entries (net.netfilter.nf_conntrack_tcp_timeout_time_wait, _udp_timeout), reuse connections (keep-alive, pooling), or exempt traffic that needs no tracking (`notrack` in the raw table); for DNS insert failures, use TCP or a node-local DNS cache.".into());
    Some(f)
}

fn findings(c: &ConntrackSignals, t: &Thresholds) -> Vec<Finding> {
    if c.max == 0 {
        return Vec::new();
    }
    c.namespaces
        .iter()
        .filter_map(|n| judge(n, c.max, t))
        .collect()
}

impl Rule for ConntrackFull {
    fn id(&self) -> &str {
        ID
    }

    fn description(&self) -> &str {
        "a network namespace's conntrack table above conntrack_warn_pct of nf_conntrack_max (critical above conntrack_crit_pct), or conntrack drops (critical), early drops or failed inserts in the window"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Per network namespace, connection tracking entries against nf_conntrack_max: above conntrack_warn_pct it warns, above conntrack_crit_pct it is critical; more than conntrack_drops drops in the window (new flows refused: their packets are dropped) is critical; early drops and failed inserts warn.".into(),
            when_it_fires: vec![
                "Look at the table: conntrack -C; cat /proc/sys/net/netfilter/nf_conntrack_count /proc/sys/net/netfilter/nf_conntrack_max; conntrack -S for drops per CPU.".into(),
                "Find who fills it: conntrack -L | awk '{print $3, $5}' | sort | uniq -c | sort -rn | head (many short connections, a scanner, UDP without replies).".into(),
                "Raise the limit if the load is legitimate (sysctl -w net.netfilter.nf_conntrack_max=...), or shorten timeouts / exempt the traffic with NOTRACK.".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        s.conntrack
            .as_ref()
            .map(|c| findings(c, t))
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::Process;

    use super::*;
    use crate::testutil::*;

    fn ns(host: bool, count: u64) -> ConntrackNetns {
        ConntrackNetns {
            netns: if host { 4026531840 } else { 4026532301 },
            host,
            process: Process {
                pid: if host { 1 } else { 812 },
                comm: if host { "systemd" } else { "nginx" }.into(),
                ..Process::default()
            },
            count_start: count,
            count,
            ..ConntrackNetns::default()
        }
    }

    fn with(max: u64, namespaces: Vec<ConntrackNetns>) -> Signals {
        let mut s = signals();
        s.conntrack = Some(ConntrackSignals { max, namespaces });
        s
    }

    #[test]
    fn roomy_is_quiet() {
        assert!(run(&ConntrackFull, &signals()).is_empty());
        assert!(run(&ConntrackFull, &with(262_144, vec![ns(true, 1200), ns(false, 30)])).is_empty());
        assert!(run(&ConntrackFull, &with(0, vec![ns(true, 1200)])).is_empty());
    }

    #[test]
    fn fill_levels_and_boundary() {
        assert!(run(&ConntrackFull, &with(1000, vec![ns(true, 800)])).is_empty());
        let f = one(run(&ConntrackFull, &with(1000, vec![ns(true, 801)])));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.subject.kind, "netns");
        assert_eq!(f.subject.process, None, "the host namespace is nobody's process");
        assert_eq!(
            f.title,
            "the host network namespace's conntrack table is 80% full: 801 of 1,000 tracked connections"
        );
        assert_eq!((f.value, f.threshold, f.unit.as_str()), (80.1, 80.0, "%"));
        assert!(f.fix[0].starts_with("conntrack -S"));
        let f = one(run(&ConntrackFull, &with(1000, vec![ns(true, 951)])));
        assert_eq!((f.severity, f.threshold), (Severity::Critical, 95.0));
    }

    #[test]
    fn drops_are_critical_and_name_the_namespace() {
        let mut n = ns(false, 1000);
        n.drops = 37;
        n.early_drops = 12;
        let f = one(run(&ConntrackFull, &with(1000, vec![ns(true, 10), n])));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.subject.process.as_ref().map(|p| p.pid), Some(812));
        assert_eq!(
            f.title,
            "network namespace 4026532301 (pid 812 nginx) is dropping new connections: its conntrack table is full (1,000 of 1,000), 37 dropped in the window"
        );
        assert_eq!((f.value, f.threshold, f.unit.as_str()), (49.0, 0.0, "events"));
        assert!(f.fix[0].starts_with("nsenter -t 812 -n conntrack -S"));
    }

    #[test]
    fn early_drops_and_failed_inserts_warn() {
        let mut n = ns(true, 100);
        n.insert_failed = 3;
        let f = one(run(&ConntrackFull, &with(262_144, vec![n.clone()])));
        assert_eq!(f.severity, Severity::Warning);
        assert!(f.title.contains("failed to insert 3 conntrack entries"), "{}", f.title);
        assert!(f.cause.contains("DNS"));
        let t = Thresholds::default().with(&CONNTRACK_DROPS, 3u64).unwrap();
        assert!(run_with(&ConntrackFull, &with(262_144, vec![n]), &t).is_empty());
        let mut n = ns(true, 100);
        n.early_drops = 1;
        let f = one(run(&ConntrackFull, &with(262_144, vec![n])));
        assert!(f.title.contains("evicting entries"), "{}", f.title);
    }
}
