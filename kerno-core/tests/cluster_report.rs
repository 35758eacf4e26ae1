//! The merged cluster report as a person and a program read it (snapshots): three nodes,
//! one that observes the fds domain with a descriptor leak, one without it, one silent.

use kerno_core::{
    FdSignals, Finding, Report, Severity, Signals, Subject,
    cluster::{NodeReply, merge},
    render::{PrettyOptions, cluster_json, cluster_pretty},
};

fn finding(rule: &str, severity: Severity, title: &str, value: f64, threshold: f64) -> Finding {
    Finding {
        rule: rule.into(),
        severity,
        title: title.into(),
        cause: format!("{rule}: what the rule saw, in a sentence."),
        impact: "What it does to the service.".into(),
        evidence: vec![format!("value {value} against {threshold}")],
        value,
        threshold,
        unit: if rule == "fd-leak" { "fd/s" } else { "%" }.into(),
        fix: vec![format!("kerno explain --rule {rule}")],
        eta_secs: (rule == "fd-leak").then_some(420.0),
        subject: Subject::host("h"),
        low_volume: false,
    }
}

fn node(name: &str, fds: bool, findings: Vec<Finding>) -> Report {
    let mut s = Signals::default();
    s.host.hostname = "ci-runner".into();
    s.host.node = name.into();
    s.host.kernel = "6.18.0".into();
    s.host.cpus = 2;
    s.window.start_unix_ms = 1_796_000_000_000;
    s.window.duration_ms = 10_000;
    if fds {
        s.fds = Some(FdSignals::default());
    }
    let mut r = Report::new(s, findings);
    // Every domain observed but the ones this node is configured without.
    for d in &mut r.domains {
        d.observed = fds || d.domain != kerno_core::Domain::Fds;
        if !d.observed {
            d.detail = "not observed: not in --domains".into();
        }
    }
    // The signals stay with each node; the cluster report does not carry them.
    r.signals = Signals::default();
    r
}

fn cluster() -> kerno_core::cluster::ClusterReport {
    merge(vec![
        NodeReply {
            address: "10.77.0.2:9090".into(),
            answer: Ok(node(
                "node-b",
                false,
                vec![finding(
                    "syscall-errors",
                    Severity::Warning,
                    "openat fails 12.0% of the time (EMFILE)",
                    12.0,
                    5.0,
                )],
            )),
        },
        NodeReply {
            address: "10.77.0.3:9090".into(),
            answer: Err("no answer within 5 s".into()),
        },
        NodeReply {
            address: "10.77.0.1:9090".into(),
            answer: Ok(node(
                "node-a",
                true,
                vec![
                    finding(
                        "fd-leak",
                        Severity::Critical,
                        "leaker (pid 4242) leaks 60 descriptors a second",
                        60.0,
                        10.0,
                    ),
                    finding(
                        "syscall-errors",
                        Severity::Warning,
                        "openat fails 12.0% of the time (EMFILE)",
                        12.0,
                        5.0,
                    ),
                ],
            )),
        },
    ])
}

#[test]
fn cluster_pretty_report() {
    insta::assert_snapshot!(
        "cluster_pretty",
        cluster_pretty(&cluster(), PrettyOptions { color: false })
    );
}

#[test]
fn cluster_json_report() {
    insta::assert_snapshot!("cluster_json", cluster_json(&cluster()));
}
