//! A custom rule: implement `Rule`, evaluate it beside the built-in ones. Rules are pure,
//! so this runs without root on a hand-made (or saved) window.
//!
//!     cargo run -p kerno-examples --example custom_rule

use kerno_core::{
    Finding, Histogram, Rule, Severity, Signals, Subject, SyscallSignals, SyscallStat,
    ThresholdRegistry, ThresholdSpec, Thresholds, evaluate, human_ns, render,
};

/// The rule's threshold, declared once: `kerno rules`, the config file, `--threshold` and
/// `KERNO_THRESHOLD_FSYNC_PER_SEC` all know it from this declaration.
const FSYNC_PER_SEC: ThresholdSpec = ThresholdSpec::number(
    "fsync_per_sec",
    500.0,
    "calls/s",
    0.0,
    1e9,
    "fsync calls per second above this warn",
);

/// Fires when `fsync` is called more than N times a second: a database misconfigured to
/// sync on every write wears SSDs and caps throughput long before latency rules notice.
struct FsyncStorm;

impl Rule for FsyncStorm {
    fn id(&self) -> &str {
        "fsync-storm"
    }

    fn description(&self) -> &str {
        "fsync called more often than fsync_per_sec (default 500/s)"
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        &[FSYNC_PER_SEC]
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let limit = t.number(&FSYNC_PER_SEC);
        let Some(fsync) = s.syscalls.as_ref().and_then(|x| x.get("fsync")) else {
            return vec![];
        };
        let rate = fsync.count as f64 / s.window_secs();
        if rate <= limit {
            return vec![];
        }
        vec![Finding {
            rule: self.id().into(),
            severity: Severity::Warning,
            title: format!("fsync storm: {rate:.0} calls/s"),
            cause: "an application syncs far more often than it needs to".into(),
            impact: "write throughput is capped by device flushes; SSD wear".into(),
            evidence: vec![format!(
                "{} fsync calls, p99 {}",
                fsync.count,
                fsync
                    .latency
                    .percentile(99.0)
                    .map(|v| human_ns(v as f64))
                    .unwrap_or_default()
            )],
            value: rate,
            threshold: limit,
            unit: "calls/s".into(),
            fix: vec!["strace -f -e trace=fsync -p <pid>  # find the caller".into()],
            eta_secs: None,
            subject: Subject::host(&s.host.hostname),
            low_volume: false,
        }]
    }
}

fn main() {
    // A window as `kerno doctor --save` would write it (here: built by hand).
    let mut latency = Histogram::new();
    latency.record_n(2_000_000, 6_000);
    let mut signals = Signals {
        schema: kerno_core::SCHEMA_VERSION,
        syscalls: Some(SyscallSignals {
            total_calls: 6_000,
            total_errors: 0,
            syscalls: vec![SyscallStat {
                nr: 74,
                name: "fsync".into(),
                count: 6_000,
                latency,
                ..SyscallStat::default()
            }],
            ..SyscallSignals::default()
        }),
        ..Signals::default()
    };
    signals.host.hostname = "db-1".into();
    signals.window.duration_ms = 5_000;

    let mut rules = kerno_rules::builtin();
    rules.push(Box::new(FsyncStorm));
    let report = evaluate(&signals, &rules, &Thresholds::default());
    assert!(report.findings.iter().any(|f| f.rule == "fsync-storm"));
    print!("{}", render::pretty(&report, Default::default()));

    // Its threshold is set like a built-in one, and checked against the declaration.
    let registry = ThresholdRegistry::of(&rules);
    let mut t = Thresholds::default();
    registry
        .set_text(&mut t, "fsync_per_sec", "2000")
        .expect("a valid value");
    let report = evaluate(&signals, &rules, &t);
    assert!(!report.findings.iter().any(|f| f.rule == "fsync-storm"));
    let err = registry
        .set_text(&mut t, "fsync_per_sec", "lots")
        .unwrap_err();
    println!("\nat 2000/s the rule is quiet; a bad value is refused: {err}");
}
