//! The `Rule` trait.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::{Finding, Signals, ThresholdSpec, Thresholds};

/// What a rule checks and what to do when it fires, for `kerno explain --rule ID` (its
/// thresholds come from [`Rule::thresholds`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleDoc {
    /// What the rule looks at and when it fires, in plain English, naming its thresholds
    /// by key.
    pub checks: String,
    /// What to do when it fires, first step first.
    pub when_it_fires: Vec<String>,
}

/// A diagnosis rule: a pure function of a window's [`Signals`] and the [`Thresholds`].
///
/// Rules do no I/O, read no clock and need no privileges, so they run the same on a live
/// window, a saved incident, in a unit test or a notebook.
///
/// ```
/// use kerno_core::{Finding, Rule, Severity, Signals, Subject, Thresholds};
///
/// /// Fires when the window saw any failed `connect`.
/// struct ConnectFailures;
///
/// impl Rule for ConnectFailures {
///     fn id(&self) -> &str { "connect-failures" }
///     fn description(&self) -> &str { "any connect() failed" }
///     fn evaluate(&self, s: &Signals, _t: &Thresholds) -> Vec<Finding> {
///         let Some(tcp) = &s.tcp else { return vec![] };
///         if tcp.connect_failed == 0 { return vec![] }
///         vec![Finding {
///             rule: self.id().into(),
///             severity: Severity::Warning,
///             title: format!("{} connects failed", tcp.connect_failed),
///             cause: "peers refused or did not answer".into(),
///             impact: "clients see errors".into(),
///             evidence: vec![],
///             value: tcp.connect_failed as f64,
///             threshold: 1.0,
///             unit: "connects".into(),
///             fix: vec!["ss -tan state syn-sent".into()],
///             eta_secs: None,
///             subject: Subject::host(&s.host.hostname),
///             low_volume: false,
///         }]
///     }
/// }
/// assert!(ConnectFailures.evaluate(&Signals::default(), &Thresholds::default()).is_empty());
/// ```
pub trait Rule: Send + Sync {
    /// A stable id, kebab-case (`fd-leak`). Used in reports, configuration and metrics.
    fn id(&self) -> &str;
    /// One line: when it fires.
    fn description(&self) -> &str;
    /// The thresholds this rule reads, with their defaults, units and valid ranges. They
    /// appear in `kerno rules`, are set by the config file, `--threshold` and
    /// `KERNO_THRESHOLD_<KEY>`, and are checked against these declarations; the rule reads
    /// them with [`Thresholds::number`], [`Thresholds::count`] and [`Thresholds::list`].
    fn thresholds(&self) -> &[ThresholdSpec] {
        &[]
    }
    /// What the rule checks and what to do when it fires. The default says only the
    /// [`Rule::description`]; a rule that people will ask about should say more.
    fn doc(&self) -> RuleDoc {
        RuleDoc {
            checks: self.description().to_string(),
            when_it_fires: Vec::new(),
        }
    }
    /// The findings for this window (empty when all is well).
    fn evaluate(&self, signals: &Signals, thresholds: &Thresholds) -> Vec<Finding>;
    /// The shortest window that supports this rule's verdict at `thresholds`, or `None`
    /// (the default) when only a full findings window does.
    ///
    /// The agent (`kerno start`) evaluates a rule that declares one over this window as
    /// well as over its findings window ([`crate::findings_windows`]), so an incident fires
    /// seconds after it starts instead of once it fills most of the long window: a rate or a
    /// percentile needs a few seconds of samples, a "sustained" check needs enough sample
    /// intervals that a burst cannot pass for it. A trend or an ETA fitted over a few
    /// points is noise: such rules keep `None`.
    fn min_window(&self, _thresholds: &Thresholds) -> Option<Duration> {
        None
    }
}
