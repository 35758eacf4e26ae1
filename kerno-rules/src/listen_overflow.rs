//! `listen-overflow`: a TCP listener's queues are full, so connection attempts are dropped.

use kerno_core::{Finding, NetnsListen, Rule, Signals, Subject, ThresholdSpec, Thresholds, thousands};

use crate::common::{finding, fmt_rate, grade, proc_name};

/// Connection attempts dropped at a listener (`ListenDrops`: accept-queue overflows,
/// `ListenOverflows`, and SYN-queue drops, `TCPReqQFullDrop`) in a network namespace: more
/// than `listen_drops` in the window warns, more than `listen_drops_critical_rate` a
/// second is critical. The subject is the listening process and port when one listener of
/// that namespace had connections waiting to be accepted (`/proc/net/tcp` and
/// `/proc/<pid>/fd`), else the namespace.
pub struct ListenOverflow;

/// The rule's id.
pub const ID: &str = "listen-overflow";

/// `listen_drops`: more drops than this in the window warns.
pub const LISTEN_DROPS: ThresholdSpec = ThresholdSpec::count(
    "listen_drops",
    0,
    "drops",
    "more connection attempts dropped at a full listen queue than this in the window warns (each costs its client a 1 s SYN retransmission, then 2 s, 4 s ...)",
);
/// `listen_drops_critical_rate`: more drops a second than this is critical.
pub const LISTEN_DROPS_CRITICAL_RATE: ThresholdSpec = ThresholdSpec::number(
    "listen_drops_critical_rate",
    1.0,
    "drops/s",
    0.0,
    f64::MAX,
    "more drops a second than this is critical: the listener is overrun all the time",
);
/// The thresholds this rule reads.
pub const THRESHOLDS: &[ThresholdSpec] = &[LISTEN_DROPS, LISTEN_DROPS_CRITICAL_RATE];

fn overflow(n: &NetnsListen, s: &Signals, t: &Thresholds) -> Option<Finding> {
    if n.drops <= t.count(&LISTEN_DROPS) {
        return None;
    }
    let rate = n.drops as f64 / s.window_secs();
    let (severity, threshold) = grade(rate, 0.0, t.number(&LISTEN_DROPS_CRITICAL_RATE))
        .map(|(sev, th)| if th == 0.0 { (sev, t.count(&LISTEN_DROPS) as f64) } else { (sev, th) })?;
    // The listener: the one with connections waiting, when the namespace has one such, or
    // the one with the longest queue.
    let listener = n.listeners.first();
    let owner = listener.and_then(|l| l.process.clone());
    let subject = match (&owner, listener) {
        (Some(p), Some(l)) => Subject {
            kind: "listener".into(),
            name: format!("{} (pid {}) on port {}", p.comm, p.pid, l.port),
            ..Subject::process(p)
        },
        _ => Subject {
            kind: "netns".into(),
            name: n.label(),
            ..Subject::default()
        },
    };
    let mut f = finding(ID, severity, subject);
    let whom = match (&owner, listener) {
        (Some(p), Some(l)) => format!("{} listening on {}", proc_name(p), l.local),
        (None, Some(l)) => format!("the listener on {} in {}", l.local, n.label()),
        _ => format!("listeners in {}", n.label()),
    };
    f.title = format!(
        "{whom}: {} connection attempts dropped at a full listen queue ({}/s)",
        thousands(n.drops),
        fmt_rate(rate)
    );
    f.cause = "Connections arrive faster than the listening process accepts them: once its accept queue (the listen() backlog, capped by net.core.somaxconn) is full, the kernel drops each new handshake, and with the SYN queue full and SYN cookies off it drops SYNs as well. The process is too slow to call accept(), busy elsewhere or stuck, or its backlog is too small for bursts.".into();
    f.impact = "Every dropped attempt makes its client wait for a SYN retransmission (1 s, then 2 s, 4 s ...) before it even connects: connect latency in whole seconds, and timeouts at the callers while the server looks idle.".into();
    f.evidence.push(format!(
        "{}: {} dropped at a listener (ListenDrops), {} of them accept-queue overflows (ListenOverflows), {} SYNs dropped with the SYN queue full (TCPReqQFullDrop), {} SYN cookies sent",
        n.label(),
        thousands(n.drops),
        thousands(n.overflows),
        thousands(n.req_queue_full_drops),
        thousands(n.syncookies_sent)
    ));
    for l in &n.listeners {
        f.evidence.push(format!(
            "listener {}: up to {} connections waiting to be accepted{}",
            l.local,
            thousands(l.max_queue),
            l.process
                .as_ref()
                .map(|p| format!(", held by {}", proc_name(p)))
                .unwrap_or_default()
        ));
    }
    if n.listeners.is_empty() {
        f.evidence.push("no listener had connections waiting at a sample: the queue fills and drains between samples, or the SYN queue overflowed".into());
    }
    if let Some(p) = &n.process {
        f.evidence.push(format!("the namespace of {}", proc_name(p)));
    }
    f.value = rate;
    f.threshold = threshold;
    f.unit = "drops/s".into();
    let ns = match &n.name {
        Some(name) => format!("ip netns exec {name} "),
        None => n
            .process
            .as_ref()
            .map(|p| format!("nsenter -t {} -n ", p.pid))
            .unwrap_or_default(),
    };
    match listener {
        Some(l) => f.fix.push(format!(
            "{ns}ss -ltn 'sport = :{}'  # Recv-Q: waiting to be accepted; Send-Q: the backlog",
            l.port
        )),
        None => f
            .fix
            .push(format!("{ns}ss -ltn  # Recv-Q near Send-Q: that listener's queue is full")),
    }
    f.fix.push(format!(
        "{ns}nstat -az TcpExtListenOverflows TcpExtListenDrops TcpExtTCPReqQFullDrop TcpExtSyncookiesSent  # rising: still dropping"
    ));
    f.fix.push("sysctl net.core.somaxconn net.ipv4.tcp_max_syn_backlog  # the caps on any backlog".into());
    if let Some(p) = &owner {
        f.fix.push(format!(
            "cat /proc/{}/stack; top -H -p {}  # is it blocked, or busy, instead of accepting",
            p.pid, p.pid
        ));
    }
    f.fix.push("Make the server accept faster (more acceptor threads or workers, no blocking work on the accept loop), and give it a larger backlog (listen(fd, N) with net.core.somaxconn at least N).".into());
    Some(f)
}

impl Rule for ListenOverflow {
    fn id(&self) -> &str {
        ID
    }

    fn min_window(&self, _t: &Thresholds) -> Option<std::time::Duration> {
        Some(crate::common::RATE_WINDOW)
    }

    fn description(&self) -> &str {
        "connection attempts dropped at a full TCP listen queue (ListenDrops) above listen_drops in a network namespace (critical above listen_drops_critical_rate)"
    }

    fn doc(&self) -> kerno_core::RuleDoc {
        kerno_core::RuleDoc {
            checks: "Per network namespace, TCP accept-queue drops (ListenDrops, with ListenOverflows, TCPReqQFullDrop and SYN cookies as evidence) from the kernel's netstat counters: more than listen_drops in the window warns, a rate above listen_drops_critical_rate per second is critical. The listening socket's process and port are named when its queue is seen full.".into(),
            when_it_fires: vec![
                "Confirm: nstat -az TcpExtListenOverflows TcpExtListenDrops; ss -ltn shows Recv-Q (waiting) against Send-Q (the backlog).".into(),
                "Make the server accept faster (more acceptor threads or workers; a blocked accept loop), or raise its listen backlog and net.core.somaxconn.".into(),
                "Clients see connect timeouts and retransmitted SYNs meanwhile: shed load or scale the service out.".into(),
            ],
        }
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        THRESHOLDS
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let Some(listen) = s.saturation.as_ref().and_then(|x| x.listen.as_ref()) else {
            return Vec::new();
        };
        listen
            .netns
            .iter()
            .filter_map(|n| overflow(n, s, t))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use kerno_core::{Listener, ListenSignals, SaturationSignals, Severity};

    use super::*;
    use crate::testutil::*;

    fn ns(drops: u64, listeners: Vec<Listener>) -> NetnsListen {
        NetnsListen {
            inode: 4026532000,
            name: Some("web".into()),
            process: Some(proc_(300, "nginx")),
            drops,
            overflows: drops,
            req_queue_full_drops: 0,
            syncookies_sent: 0,
            listeners,
        }
    }

    fn listener(owner: Option<u32>) -> Listener {
        Listener {
            local: "10.0.0.5:8080".into(),
            port: 8080,
            max_queue: 129,
            process: owner.map(|pid| proc_(pid, "api")),
        }
    }

    fn with(netns: Vec<NetnsListen>) -> Signals {
        let mut s = signals();
        s.saturation = Some(SaturationSignals {
            listen: Some(ListenSignals {
                netns,
                netns_count: 3,
            }),
            ..SaturationSignals::default()
        });
        s
    }

    #[test]
    fn no_drops_is_quiet() {
        assert!(run(&ListenOverflow, &signals()).is_empty());
        assert!(run(&ListenOverflow, &with(vec![ns(0, vec![listener(Some(4121))])])).is_empty());
    }

    #[test]
    fn names_the_listening_process_and_port() {
        let f = one(run(&ListenOverflow, &with(vec![ns(840, vec![listener(Some(4121))])])));
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.subject.kind, "listener");
        assert_eq!(f.subject.name, "api (pid 4121) on port 8080");
        assert_eq!(f.subject.process.as_ref().unwrap().pid, 4121);
        assert_eq!(
            f.title,
            "`api` (pid 4121) listening on 10.0.0.5:8080: 840 connection attempts dropped at a full listen queue (84/s)"
        );
        assert!(f.fix.iter().any(|x| x.starts_with("ip netns exec web ss -ltn 'sport = :8080'")));
        assert!(f.fix.iter().any(|x| x.starts_with("cat /proc/4121/stack")));
    }

    #[test]
    fn otherwise_the_namespace() {
        let f = one(run(&ListenOverflow, &with(vec![ns(3, vec![])])));
        assert_eq!(f.severity, Severity::Warning);
        assert_eq!(f.threshold, 0.0);
        assert_eq!((f.subject.kind.as_str(), f.subject.name.as_str()), ("netns", "netns web"));
        assert!(f.title.starts_with("listeners in netns web: 3 connection attempts dropped"), "{}", f.title);
    }

    #[test]
    fn boundaries() {
        // One drop warns; 10 in 10 s is exactly 1/s, still a warning; 11 is critical.
        assert_eq!(one(run(&ListenOverflow, &with(vec![ns(1, vec![])]))).severity, Severity::Warning);
        assert_eq!(one(run(&ListenOverflow, &with(vec![ns(10, vec![])]))).severity, Severity::Warning);
        assert_eq!(one(run(&ListenOverflow, &with(vec![ns(11, vec![])]))).severity, Severity::Critical);
        let t = Thresholds::default().with(&LISTEN_DROPS, 5u64).unwrap();
        assert!(run_with(&ListenOverflow, &with(vec![ns(5, vec![])]), &t).is_empty());
        assert_eq!(run_with(&ListenOverflow, &with(vec![ns(6, vec![])]), &t).len(), 1);
    }
}
