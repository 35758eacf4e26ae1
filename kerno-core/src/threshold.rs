//! Thresholds: every rule declares the thresholds it reads ([`ThresholdSpec`]: key, default,
//! unit, valid range, one line of documentation), and everything that shows or sets them
//! (`kerno rules`, the config file, `--threshold`, `KERNO_THRESHOLD_<KEY>`, the Python
//! bindings, the docs) reads them from a [`ThresholdRegistry`] built from the rules
//! themselves. Adding a rule with a threshold is one file; nothing else lists its keys.
//!
//! ```
//! use kerno_core::{Rule, Finding, Signals, ThresholdSpec, Thresholds, ThresholdRegistry};
//!
//! const FSYNC_PER_SEC: ThresholdSpec = ThresholdSpec::number(
//!     "fsync_per_sec", 500.0, "calls/s", 0.0, 1e9, "fsync calls per second above this warn");
//!
//! struct FsyncStorm;
//! impl Rule for FsyncStorm {
//!     fn id(&self) -> &str { "fsync-storm" }
//!     fn description(&self) -> &str { "too many fsync calls" }
//!     fn thresholds(&self) -> &[ThresholdSpec] { &[FSYNC_PER_SEC] }
//!     fn evaluate(&self, _s: &Signals, t: &Thresholds) -> Vec<Finding> {
//!         let _limit = t.number(&FSYNC_PER_SEC);
//!         vec![]
//!     }
//! }
//!
//! let rules: Vec<Box<dyn Rule>> = vec![Box::new(FsyncStorm)];
//! let registry = ThresholdRegistry::of(&rules);
//! let mut t = Thresholds::default();
//! assert_eq!(t.number(&FSYNC_PER_SEC), 500.0);
//! registry.set_text(&mut t, "fsync_per_sec", "250").unwrap();
//! assert_eq!(t.number(&FSYNC_PER_SEC), 250.0);
//! assert!(registry.set_text(&mut t, "fsync_per_sec", "-1").is_err());
//! assert!(registry.set_text(&mut t, "nope", "1").is_err());
//! ```

use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Deserializer, Serialize, de};

use crate::{ConfigError, Rule};

/// A threshold's default, which also fixes its kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ThresholdDefault {
    /// A real number (milliseconds, percent, a ratio, ...).
    Number(f64),
    /// A whole number (minimum samples, calls, ...).
    Count(u64),
    /// A list of words (errno names, ...), set from text as a comma-separated list.
    List(&'static [&'static str]),
}

/// A threshold a rule reads: its key, default, unit, valid range and what it does.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ThresholdSpec {
    /// The key, snake_case (`syscall_p99_ms`); unique across the rules of a registry.
    pub key: &'static str,
    /// The default, which also says the kind (number, count or list).
    pub default: ThresholdDefault,
    /// The unit as people read it (`ms`, `%`, `calls`, `fds/s`, `s`, `ratio`).
    pub unit: &'static str,
    /// The smallest valid value (numbers and counts).
    pub min: f64,
    /// The largest valid value (numbers and counts).
    pub max: f64,
    /// One line: what the threshold does.
    pub doc: &'static str,
}

impl ThresholdSpec {
    /// A real-number threshold, valid from `min` to `max` inclusive.
    pub const fn number(
        key: &'static str,
        default: f64,
        unit: &'static str,
        min: f64,
        max: f64,
        doc: &'static str,
    ) -> Self {
        ThresholdSpec {
            key,
            default: ThresholdDefault::Number(default),
            unit,
            min,
            max,
            doc,
        }
    }

    /// A whole-number threshold (zero or more).
    pub const fn count(
        key: &'static str,
        default: u64,
        unit: &'static str,
        doc: &'static str,
    ) -> Self {
        ThresholdSpec {
            key,
            default: ThresholdDefault::Count(default),
            unit,
            min: 0.0,
            max: u64::MAX as f64,
            doc,
        }
    }

    /// A list-of-words threshold.
    pub const fn list(
        key: &'static str,
        default: &'static [&'static str],
        doc: &'static str,
    ) -> Self {
        ThresholdSpec {
            key,
            default: ThresholdDefault::List(default),
            unit: "",
            min: 0.0,
            max: 0.0,
            doc,
        }
    }

    /// `number`, `count` or `list`.
    pub fn kind(&self) -> &'static str {
        match self.default {
            ThresholdDefault::Number(_) => "number",
            ThresholdDefault::Count(_) => "count",
            ThresholdDefault::List(_) => "list",
        }
    }

    /// The default as a value.
    pub fn default_value(&self) -> ThresholdValue {
        match self.default {
            ThresholdDefault::Number(n) => ThresholdValue::Number(n),
            ThresholdDefault::Count(n) => ThresholdValue::Count(n),
            ThresholdDefault::List(l) => {
                ThresholdValue::List(l.iter().map(|s| s.to_string()).collect())
            }
        }
    }

    /// The valid range as people read it (`0 to 100 %`), empty for lists.
    pub fn range(&self) -> String {
        match self.default {
            ThresholdDefault::List(_) => String::new(),
            ThresholdDefault::Count(_) if self.max >= u64::MAX as f64 => {
                format!("{} or more", fmt_num(self.min))
            }
            _ if self.max >= f64::MAX => format!("{} or more", fmt_num(self.min)),
            _ => format!("{} to {}", fmt_num(self.min), fmt_num(self.max)),
        }
    }

    /// Check a value against this threshold's kind and range, turning a whole number given
    /// for a real-number threshold into a number (and a whole real number given for a count
    /// into a count). The error says why, without the key.
    pub fn check(&self, v: ThresholdValue) -> Result<ThresholdValue, String> {
        let in_range = |x: f64| {
            if !x.is_finite() {
                Err(format!("must be a finite number, got {x}"))
            } else if x < self.min || x > self.max {
                Err(format!(
                    "out of range: use {}, got {}",
                    self.range(),
                    fmt_num(x)
                ))
            } else {
                Ok(())
            }
        };
        match (self.default, v) {
            (ThresholdDefault::Number(_), ThresholdValue::Number(x)) => {
                in_range(x)?;
                Ok(ThresholdValue::Number(x))
            }
            (ThresholdDefault::Number(_), ThresholdValue::Count(n)) => {
                in_range(n as f64)?;
                Ok(ThresholdValue::Number(n as f64))
            }
            (ThresholdDefault::Count(_), ThresholdValue::Count(n)) => {
                in_range(n as f64)?;
                Ok(ThresholdValue::Count(n))
            }
            (ThresholdDefault::Count(_), ThresholdValue::Number(x)) => {
                if x.fract() == 0.0 && (0.0..1.8e19).contains(&x) {
                    in_range(x)?;
                    Ok(ThresholdValue::Count(x as u64))
                } else {
                    Err(format!("expected a whole number, got {}", fmt_num(x)))
                }
            }
            (ThresholdDefault::List(_), ThresholdValue::List(l)) => {
                if let Some(bad) = l.iter().find(|w| w.trim().is_empty()) {
                    return Err(format!("list entries must not be empty, got {bad:?}"));
                }
                Ok(ThresholdValue::List(l))
            }
            (ThresholdDefault::List(_), other) => {
                Err(format!("expected a list of words, got the number {other}"))
            }
            (_, ThresholdValue::List(_)) => Err(format!("expected a {}, got a list", self.kind())),
        }
    }

    /// Parse text (`250`, `2.5`, `EAGAIN,EINTR`) as a value of this threshold, checked.
    pub fn parse(&self, text: &str) -> Result<ThresholdValue, String> {
        let t = text.trim();
        let v = match self.default {
            ThresholdDefault::List(_) => ThresholdValue::List(
                t.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
            ThresholdDefault::Count(_) => ThresholdValue::Count(
                t.parse()
                    .map_err(|_| format!("expected a whole number, got {text:?}"))?,
            ),
            ThresholdDefault::Number(_) => ThresholdValue::Number(
                t.parse()
                    .map_err(|_| format!("expected a number, got {text:?}"))?,
            ),
        };
        self.check(v)
    }
}

fn fmt_num(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{}", x as i64)
    } else {
        format!("{x}")
    }
}

/// A threshold's value.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ThresholdValue {
    /// A whole number.
    Count(u64),
    /// A real number.
    Number(f64),
    /// A list of words.
    List(Vec<String>),
}

impl fmt::Display for ThresholdValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ThresholdValue::Count(n) => write!(f, "{n}"),
            ThresholdValue::Number(x) => write!(f, "{x}"),
            ThresholdValue::List(l) => f.write_str(&l.join(",")),
        }
    }
}

impl From<f64> for ThresholdValue {
    fn from(x: f64) -> Self {
        ThresholdValue::Number(x)
    }
}

impl From<u64> for ThresholdValue {
    fn from(n: u64) -> Self {
        ThresholdValue::Count(n)
    }
}

impl From<Vec<String>> for ThresholdValue {
    fn from(l: Vec<String>) -> Self {
        ThresholdValue::List(l)
    }
}

impl<'de> Deserialize<'de> for ThresholdValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> de::Visitor<'de> for V {
            type Value = ThresholdValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number or a list of words")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ThresholdValue, E> {
                Ok(ThresholdValue::Count(n))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ThresholdValue, E> {
                Ok(if n >= 0 {
                    ThresholdValue::Count(n as u64)
                } else {
                    ThresholdValue::Number(n as f64)
                })
            }
            fn visit_f64<E: de::Error>(self, x: f64) -> Result<ThresholdValue, E> {
                Ok(ThresholdValue::Number(x))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ThresholdValue, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(ThresholdValue::List(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The threshold values set over the rules' defaults: from the config file, `KERNO_THRESHOLD_*`,
/// `--threshold`, or code. A key not set reads as its rule's default, so
/// `Thresholds::default()` is every rule at its defaults.
///
/// Values are checked against their rule's [`ThresholdSpec`] when they are set through a
/// [`ThresholdRegistry`] (or [`Thresholds::set`]); the accessors never fail.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Thresholds {
    /// Free-form numbers for custom rules that read them by name (`thresholds.custom` in the
    /// config file). A key here that a registered rule declares is checked and read like a
    /// top-level one.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub custom: BTreeMap<String, f64>,
    #[serde(flatten)]
    values: BTreeMap<String, ThresholdValue>,
}

impl Thresholds {
    fn lookup(&self, spec: &ThresholdSpec) -> Option<ThresholdValue> {
        match self.values.get(spec.key) {
            Some(v) => Some(v.clone()),
            None => self
                .custom
                .get(spec.key)
                .map(|x| ThresholdValue::Number(*x)),
        }
    }

    /// The value of a real-number threshold (its default when not set).
    pub fn number(&self, spec: &ThresholdSpec) -> f64 {
        match self.lookup(spec) {
            Some(ThresholdValue::Number(x)) => x,
            Some(ThresholdValue::Count(n)) => n as f64,
            _ => match spec.default {
                ThresholdDefault::Number(x) => x,
                ThresholdDefault::Count(n) => n as f64,
                ThresholdDefault::List(_) => f64::NAN,
            },
        }
    }

    /// The value of a whole-number threshold (its default when not set).
    pub fn count(&self, spec: &ThresholdSpec) -> u64 {
        match self.lookup(spec) {
            Some(ThresholdValue::Count(n)) => n,
            Some(ThresholdValue::Number(x)) if x >= 0.0 => x as u64,
            _ => match spec.default {
                ThresholdDefault::Count(n) => n,
                ThresholdDefault::Number(x) => x.max(0.0) as u64,
                ThresholdDefault::List(_) => 0,
            },
        }
    }

    /// The value of a list threshold (its default when not set).
    pub fn list<'a>(&'a self, spec: &ThresholdSpec) -> Vec<&'a str> {
        match self.values.get(spec.key) {
            Some(ThresholdValue::List(l)) => l.iter().map(String::as_str).collect(),
            _ => match spec.default {
                ThresholdDefault::List(l) => l.to_vec(),
                _ => Vec::new(),
            },
        }
    }

    /// The value set for a key, if one was (not the default).
    pub fn get(&self, key: &str) -> Option<&ThresholdValue> {
        self.values.get(key)
    }

    /// The keys that were set, with their values.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ThresholdValue)> {
        self.values.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Set a threshold, checked against its spec; the error names the key.
    pub fn set(
        &mut self,
        spec: &ThresholdSpec,
        value: impl Into<ThresholdValue>,
    ) -> Result<(), ConfigError> {
        let v = spec
            .check(value.into())
            .map_err(|reason| ConfigError::Invalid {
                key: format!("thresholds.{}", spec.key),
                reason,
            })?;
        self.values.insert(spec.key.to_string(), v);
        Ok(())
    }

    /// [`Thresholds::set`], chained: `Thresholds::default().with(&P99_MS, 250.0)?`.
    pub fn with(
        mut self,
        spec: &ThresholdSpec,
        value: impl Into<ThresholdValue>,
    ) -> Result<Self, ConfigError> {
        self.set(spec, value)?;
        Ok(self)
    }
}

/// The thresholds a set of rules declare, by key: what configuration is checked against and
/// what `kerno rules` lists.
#[derive(Clone, Debug, Default)]
pub struct ThresholdRegistry {
    entries: Vec<(String, ThresholdSpec)>,
}

impl ThresholdRegistry {
    /// The thresholds of these rules, in rule order. A key declared by two rules must be
    /// declared the same way (it is one setting read by both): [`ThresholdRegistry::conflicts`]
    /// lists keys declared differently; the first declaration is the one used.
    pub fn of(rules: &[Box<dyn Rule>]) -> ThresholdRegistry {
        let mut r = ThresholdRegistry::default();
        for rule in rules {
            r.add(rule.id(), rule.thresholds());
        }
        r
    }

    /// Add a rule's thresholds (for rules not held as `Box<dyn Rule>`).
    pub fn add(&mut self, rule_id: &str, specs: &[ThresholdSpec]) {
        for s in specs {
            // The same setting read by another rule too is listed once.
            if !self.entries.iter().any(|(_, e)| e == s) {
                self.entries.push((rule_id.to_string(), *s));
            }
        }
    }

    /// Keys declared by two rules with different defaults, units or ranges.
    pub fn conflicts(&self) -> Vec<&str> {
        let mut out = Vec::new();
        for (i, (_, a)) in self.entries.iter().enumerate() {
            if self.entries[..i].iter().any(|(_, b)| b.key == a.key) && !out.contains(&a.key) {
                out.push(a.key);
            }
        }
        out
    }

    /// The spec of a key.
    pub fn get(&self, key: &str) -> Option<&ThresholdSpec> {
        self.entries.iter().map(|(_, s)| s).find(|s| s.key == key)
    }

    /// Every threshold with the id of the rule that declares it, in rule order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ThresholdSpec)> {
        let mut seen: Vec<&str> = Vec::new();
        self.entries.iter().filter_map(move |(r, s)| {
            if seen.contains(&s.key) {
                None
            } else {
                seen.push(s.key);
                Some((r.as_str(), s))
            }
        })
    }

    /// Every key, sorted.
    pub fn keys(&self) -> Vec<&str> {
        let mut k: Vec<&str> = self.iter().map(|(_, s)| s.key).collect();
        k.sort_unstable();
        k
    }

    /// Every threshold's default value, by key.
    pub fn defaults(&self) -> BTreeMap<String, ThresholdValue> {
        self.iter()
            .map(|(_, s)| (s.key.to_string(), s.default_value()))
            .collect()
    }

    /// Every threshold's value under `t` (set or default), by key.
    pub fn values(&self, t: &Thresholds) -> BTreeMap<String, ThresholdValue> {
        self.iter()
            .map(|(_, s)| {
                (
                    s.key.to_string(),
                    t.lookup(s).unwrap_or_else(|| s.default_value()),
                )
            })
            .collect()
    }

    fn spec(&self, key: &str) -> Result<&ThresholdSpec, ConfigError> {
        self.get(key).ok_or_else(|| ConfigError::Invalid {
            key: format!("thresholds.{key}"),
            reason: format!("no such threshold (known: {})", self.keys().join(", ")),
        })
    }

    /// Set a key from text (`--threshold KEY=VALUE`, `KERNO_THRESHOLD_<KEY>`).
    pub fn set_text(&self, t: &mut Thresholds, key: &str, text: &str) -> Result<(), ConfigError> {
        let spec = self.spec(key)?;
        let v = spec.parse(text).map_err(|reason| ConfigError::Invalid {
            key: format!("thresholds.{key}"),
            reason,
        })?;
        t.values.insert(spec.key.to_string(), v);
        Ok(())
    }

    /// Set a key to a value (from a config file or the Python bindings), checked.
    pub fn set_value(
        &self,
        t: &mut Thresholds,
        key: &str,
        value: ThresholdValue,
    ) -> Result<(), ConfigError> {
        t.set(self.spec(key)?, value)
    }

    /// Check every value set in `t` against the declared thresholds, bringing each to its
    /// declared kind (a whole number for a real-number threshold becomes a number). Unknown
    /// keys are errors that list the known ones; `custom` keys no rule declares are kept as
    /// free-form numbers.
    pub fn check(&self, t: &mut Thresholds) -> Result<(), ConfigError> {
        let set: Vec<(String, ThresholdValue)> =
            std::mem::take(&mut t.values).into_iter().collect();
        for (k, v) in set {
            self.set_value(t, &k, v)?;
        }
        for (k, v) in &t.custom {
            if let Some(spec) = self.get(k) {
                spec.check(ThresholdValue::Number(*v))
                    .map_err(|reason| ConfigError::Invalid {
                        key: format!("thresholds.custom.{k}"),
                        reason,
                    })?;
            } else if !v.is_finite() {
                return Err(ConfigError::Invalid {
                    key: format!("thresholds.custom.{k}"),
                    reason: format!("must be a finite number, got {v}"),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Finding, Signals};

    const MS: ThresholdSpec = ThresholdSpec::number(
        "x_p99_ms",
        100.0,
        "ms",
        0.0,
        f64::MAX,
        "p99 above this warns",
    );
    const PCT: ThresholdSpec =
        ThresholdSpec::number("x_pct", 2.0, "%", 0.0, 100.0, "share above this warns");
    const MIN: ThresholdSpec = ThresholdSpec::count(
        "x_min_samples",
        20,
        "samples",
        "fewer and the rule stays quiet",
    );
    const LIST: ThresholdSpec =
        ThresholdSpec::list("x_errnos", &["EAGAIN", "EINTR"], "not counted");

    struct R;
    impl Rule for R {
        fn id(&self) -> &str {
            "x"
        }
        fn description(&self) -> &str {
            "test"
        }
        fn thresholds(&self) -> &[ThresholdSpec] {
            &[MS, PCT, MIN, LIST]
        }
        fn evaluate(&self, _: &Signals, _: &Thresholds) -> Vec<Finding> {
            vec![]
        }
    }

    fn registry() -> ThresholdRegistry {
        let rules: Vec<Box<dyn Rule>> = vec![Box::new(R), Box::new(R)];
        ThresholdRegistry::of(&rules)
    }

    #[test]
    fn defaults_until_set_then_the_set_value() {
        let r = registry();
        let mut t = Thresholds::default();
        assert_eq!(
            (t.number(&MS), t.count(&MIN), t.list(&LIST)),
            (100.0, 20, vec!["EAGAIN", "EINTR"])
        );
        r.set_text(&mut t, "x_p99_ms", "250").unwrap();
        r.set_text(&mut t, "x_min_samples", " 5 ").unwrap();
        r.set_text(&mut t, "x_errnos", "ENXIO, ELOOP").unwrap();
        assert_eq!(
            (t.number(&MS), t.count(&MIN), t.list(&LIST)),
            (250.0, 5, vec!["ENXIO", "ELOOP"])
        );
        assert_eq!(r.values(&t)["x_pct"], ThresholdValue::Number(2.0));
    }

    #[test]
    fn bad_values_name_the_key_and_why() {
        let r = registry();
        let mut t = Thresholds::default();
        for (k, v, why) in [
            ("x_pct", "150", "out of range: use 0 to 100"),
            ("x_pct", "-1", "out of range"),
            ("x_p99_ms", "fast", "expected a number"),
            ("x_p99_ms", "inf", "finite"),
            ("x_min_samples", "2.5", "whole number"),
            (
                "nope",
                "1",
                "no such threshold (known: x_errnos, x_min_samples, x_p99_ms, x_pct)",
            ),
        ] {
            let e = r.set_text(&mut t, k, v).unwrap_err().to_string();
            assert!(
                e.contains(&format!("thresholds.{k}")) && e.contains(why),
                "{k}={v}: {e}"
            );
        }
        assert_eq!(t, Thresholds::default(), "nothing was set by a bad value");
    }

    #[test]
    fn check_brings_values_to_their_kind_and_keeps_free_custom_keys() {
        let r = registry();
        let mut t: Thresholds = serde_json::from_str(
            r#"{"x_p99_ms": 250, "x_min_samples": 7.0, "x_errnos": ["EBADF"], "custom": {"mine": 3.5, "x_pct": 5}}"#,
        )
        .unwrap();
        r.check(&mut t).unwrap();
        assert_eq!(t.get("x_p99_ms"), Some(&ThresholdValue::Number(250.0)));
        assert_eq!(t.get("x_min_samples"), Some(&ThresholdValue::Count(7)));
        assert_eq!(
            t.number(&PCT),
            5.0,
            "a declared key under custom is read too"
        );
        assert_eq!(t.custom["mine"], 3.5);
        let mut bad: Thresholds = serde_json::from_str(r#"{"custom": {"x_pct": 500}}"#).unwrap();
        assert!(
            r.check(&mut bad)
                .unwrap_err()
                .to_string()
                .contains("thresholds.custom.x_pct")
        );
        let mut bad: Thresholds = serde_json::from_str(r#"{"x_errnos": 3}"#).unwrap();
        assert!(r.check(&mut bad).unwrap_err().to_string().contains("list"));
        assert!(serde_json::from_str::<Thresholds>(r#"{"x_pct": "fast"}"#).is_err());
    }

    #[test]
    fn a_key_read_by_two_rules_is_listed_once() {
        let r = registry();
        assert_eq!(r.iter().count(), 4);
        assert!(r.conflicts().is_empty());
        let mut r2 = r.clone();
        r2.add(
            "y",
            &[ThresholdSpec::number(
                "x_pct", 3.0, "%", 0.0, 100.0, "other",
            )],
        );
        assert_eq!(r2.conflicts(), vec!["x_pct"]);
        assert_eq!(
            r2.get("x_pct").unwrap().default,
            ThresholdDefault::Number(2.0)
        );
    }

    #[test]
    fn ranges_read_as_people_write_them() {
        assert_eq!(PCT.range(), "0 to 100");
        assert_eq!(MS.range(), "0 or more");
        assert_eq!(MIN.range(), "0 or more");
        assert_eq!(LIST.range(), "");
    }
}
