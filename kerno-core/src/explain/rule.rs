//! `kerno explain --rule ID`: what a rule checks, its thresholds (from the rule's own
//! declaration, with the values in force) and what to do when it fires.

use serde::Serialize;

use super::ExplainError;
use crate::{Rule, ThresholdDefault, ThresholdValue, Thresholds};

/// One threshold of a rule, as declared, with its value in force.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleThreshold {
    /// The key (`fd_growth_per_sec`).
    pub key: String,
    /// The value in force (the default unless the configuration changed it).
    pub value: ThresholdValue,
    /// The declared default.
    pub default: ThresholdValue,
    /// The unit (`fds/s`, `ms`, `%`).
    pub unit: String,
    /// The valid range, as people read it (empty when any value goes).
    pub range: String,
    /// What it does.
    pub doc: String,
}

/// What `kerno explain --rule` says about a rule.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RuleExplanation {
    /// The rule's id.
    pub id: String,
    /// One line: when it fires.
    pub description: String,
    /// What it checks.
    pub checks: String,
    /// Its thresholds.
    pub thresholds: Vec<RuleThreshold>,
    /// What to do when it fires.
    pub when_it_fires: Vec<String>,
}

/// Explain the rule `id` among `rules`, with the threshold values in `t`. An unknown id is
/// an error listing the valid ones.
pub fn explain_rule(
    rules: &[Box<dyn Rule>],
    id: &str,
    t: &Thresholds,
) -> Result<RuleExplanation, ExplainError> {
    let Some(rule) = rules.iter().find(|r| r.id() == id) else {
        return Err(ExplainError::UnknownRule {
            id: id.to_string(),
            known: rules.iter().map(|r| r.id()).collect::<Vec<_>>().join(", "),
        });
    };
    let doc = rule.doc();
    Ok(RuleExplanation {
        id: rule.id().to_string(),
        description: rule.description().to_string(),
        checks: doc.checks,
        thresholds: rule
            .thresholds()
            .iter()
            .map(|s| RuleThreshold {
                key: s.key.to_string(),
                value: match s.default {
                    ThresholdDefault::Number(_) => ThresholdValue::Number(t.number(s)),
                    ThresholdDefault::Count(_) => ThresholdValue::Count(t.count(s)),
                    ThresholdDefault::List(_) => {
                        ThresholdValue::List(t.list(s).iter().map(|w| w.to_string()).collect())
                    }
                },
                default: s.default_value(),
                unit: s.unit.to_string(),
                range: s.range(),
                doc: s.doc.to_string(),
            })
            .collect(),
        when_it_fires: doc.when_it_fires,
    })
}
