//! A custom rule in a crate of its own (test-only): `open-storm` warns when a window saw
//! more descriptor-creating calls per second than its threshold, `open_storm_per_sec`.
//! The rule declares the threshold once; nothing in Kerno lists it by hand.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use kerno_core::{Finding, Rule, Severity, Signals, Subject, ThresholdSpec, Thresholds};

/// `open_storm_per_sec`: descriptor-creating calls per second above this warn.
pub const OPEN_STORM_PER_SEC: ThresholdSpec = ThresholdSpec::number(
    "open_storm_per_sec",
    50_000.0,
    "calls/s",
    1.0,
    10_000_000.0,
    "descriptor-creating calls per second above this warn",
);

/// The rule.
pub struct OpenStorm;

impl Rule for OpenStorm {
    fn id(&self) -> &str {
        "open-storm"
    }

    fn description(&self) -> &str {
        "descriptors are created faster than open_storm_per_sec"
    }

    fn thresholds(&self) -> &[ThresholdSpec] {
        &[OPEN_STORM_PER_SEC]
    }

    fn evaluate(&self, s: &Signals, t: &Thresholds) -> Vec<Finding> {
        let Some(sys) = &s.syscalls else {
            return vec![];
        };
        let rate = sys.fd_opens() as f64 / s.window_secs();
        let limit = t.number(&OPEN_STORM_PER_SEC);
        if rate <= limit {
            return vec![];
        }
        vec![Finding {
            rule: self.id().into(),
            severity: Severity::Warning,
            title: format!("descriptors created at {rate:.0}/s"),
            cause: "something opens files or sockets in a tight loop".into(),
            impact: "CPU goes to the kernel's open path".into(),
            evidence: vec![format!("{} descriptor-creating calls", sys.fd_opens())],
            value: rate,
            threshold: limit,
            unit: "calls/s".into(),
            fix: vec!["kerno doctor -o json | jq '.signals.syscalls'".into()],
            eta_secs: None,
            subject: Subject::host(&s.host.hostname),
            low_volume: false,
        }]
    }
}

/// The built-in rules and this one: what the test binary's command line runs.
pub fn rules() -> Vec<Box<dyn Rule>> {
    let mut r = kerno_rules::builtin();
    r.push(Box::new(OpenStorm));
    r
}
