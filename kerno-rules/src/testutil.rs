//! Builders for hand-made [`Signals`] in the unit tests.

use kerno_core::{Finding, Histogram, Host, Process, Rule, Severity, Signals, Thresholds, Window};

/// The collector's pid in every test window.
pub const COLLECTOR: u32 = 999;

/// An empty 10-second window on `node-1` (4 CPUs, 8 GiB), no domain observed.
pub fn signals() -> Signals {
    Signals {
        schema: kerno_core::SCHEMA_VERSION,
        host: Host {
            hostname: "node-1".into(),
            kernel: "6.18.0".into(),
            cpus: 4,
            memory_bytes: 8 << 30,
            environment: "bare-metal".into(),
            node: String::new(),
        },
        window: Window {
            start_unix_ms: 1_796_000_000_000,
            duration_ms: 10_000,
        },
        collector_pid: COLLECTOR,
        ..Signals::default()
    }
}

/// A process with no cgroup.
pub fn proc_(pid: u32, comm: &str) -> Process {
    Process {
        pid,
        comm: comm.into(),
        ..Process::default()
    }
}

/// `n` samples of `ns` nanoseconds.
pub fn hist(ns: u64, n: u64) -> Histogram {
    let mut h = Histogram::new();
    h.record_n(ns, n);
    h
}

/// `n_fast` samples of `fast_ns` and `n_slow` of `slow_ns`.
pub fn hist2(fast_ns: u64, n_fast: u64, slow_ns: u64, n_slow: u64) -> Histogram {
    let mut h = hist(fast_ns, n_fast);
    h.record_n(slow_ns, n_slow);
    h
}

/// Milliseconds in nanoseconds.
pub const MS: u64 = 1_000_000;

/// Run a rule with default thresholds.
pub fn run(rule: &dyn Rule, s: &Signals) -> Vec<Finding> {
    run_with(rule, s, &Thresholds::default())
}

/// Run a rule with the given thresholds, checking what every finding must satisfy.
pub fn run_with(rule: &dyn Rule, s: &Signals, t: &Thresholds) -> Vec<Finding> {
    let out = rule.evaluate(s, t);
    for f in &out {
        assert_eq!(f.rule, rule.id());
        assert!(
            !f.title.is_empty() && !f.cause.is_empty() && !f.impact.is_empty(),
            "{f:#?}"
        );
        assert!(!f.evidence.is_empty() && !f.fix.is_empty(), "{f:#?}");
        assert!(!f.unit.is_empty() && f.value.is_finite() && f.threshold.is_finite());
        assert!(!f.subject.kind.is_empty() && !f.subject.name.is_empty());
        assert!(!f.title.contains('\n'), "a title is one line: {}", f.title);
        if f.low_volume {
            assert_eq!(f.severity, Severity::Info, "few samples never warn: {f:#?}");
        }
        if let Some(p) = &f.subject.process {
            assert_ne!(p.pid, s.collector_pid, "never blame the collector: {f:#?}");
        }
        if let Some(eta) = f.eta_secs {
            assert!(eta.is_finite() && eta >= 0.0);
        }
    }
    out
}

/// The only finding, asserting there is exactly one.
pub fn one(out: Vec<Finding>) -> Finding {
    assert_eq!(out.len(), 1, "expected one finding, got {out:#?}");
    out.into_iter().next().unwrap()
}
