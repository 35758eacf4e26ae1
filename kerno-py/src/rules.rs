//! Python-side inputs to an evaluation: custom rules written in Python, and thresholds given
//! as a dict.

use std::sync::{Arc, Mutex};

use kerno_core::{
    ConfigError, Finding, Rule, Signals, ThresholdRegistry, ThresholdValue, Thresholds,
};
use pyo3::{
    exceptions::{PyTypeError, PyValueError},
    prelude::*,
    types::{PyDict, PyMapping},
};
use serde_json::Value;

use crate::{
    convert::{from_py, type_name},
    errors::config_err,
    report::PyFinding,
    signals::PySignals,
};

/// A rule written in Python: an object with an `id` and `evaluate(signals) -> list[Finding]`,
/// run by the engine beside the built-in rules.
///
/// `Rule::evaluate` cannot fail, so an exception raised by the Python code is kept in the
/// shared `errors` slot and re-raised by the binding once the evaluation returns.
struct PyRule {
    id: String,
    description: String,
    obj: Py<PyAny>,
    errors: Arc<Mutex<Vec<PyErr>>>,
}

impl PyRule {
    fn call(&self, py: Python<'_>, signals: &Signals) -> PyResult<Vec<Finding>> {
        let arg = Py::new(
            py,
            PySignals {
                inner: signals.clone(),
            },
        )?;
        let out = self.obj.bind(py).call_method1("evaluate", (arg,))?;
        if out.is_none() {
            return Ok(Vec::new());
        }
        let not_findings = |got: &Bound<'_, PyAny>| {
            PyTypeError::new_err(format!(
                "custom rule {:?}: evaluate() must return a list of kerno.Finding, got {} in it",
                self.id,
                type_name(got)
            ))
        };
        let iter = out.try_iter().map_err(|_| not_findings(&out))?;
        let mut findings = Vec::new();
        for item in iter {
            let item = item?;
            let f = item.cast::<PyFinding>().map_err(|_| not_findings(&item))?;
            findings.push(f.get().inner.clone());
        }
        Ok(findings)
    }
}

impl Rule for PyRule {
    fn id(&self) -> &str {
        &self.id
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn evaluate(&self, signals: &Signals, _thresholds: &Thresholds) -> Vec<Finding> {
        Python::attach(|py| match self.call(py, signals) {
            Ok(findings) => findings,
            Err(e) => {
                // Exception notes exist from Python 3.11; older Pythons just lack the hint.
                let note = format!("raised by custom rule {:?}", self.id);
                let _ = e.value(py).call_method1("add_note", (note,));
                self.errors
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(e);
                Vec::new()
            }
        })
    }
}

/// The rules this build runs as "built-in": Kerno's, plus the test-only rule crate's in a
/// test build (feature `test-rule`).
pub fn builtin() -> Vec<Box<dyn Rule>> {
    #[cfg(feature = "test-rule")]
    return kerno_test_rule::rules();
    #[cfg(not(feature = "test-rule"))]
    kerno_rules::builtin()
}

/// The thresholds of [`builtin`]'s rules.
pub fn registry() -> ThresholdRegistry {
    ThresholdRegistry::of(&builtin())
}

/// The rules for one evaluation: the built-in ones (when asked) and the custom ones, with
/// the slot where the custom ones leave their exceptions.
pub struct RuleSet {
    pub rules: Vec<Box<dyn Rule>>,
    errors: Arc<Mutex<Vec<PyErr>>>,
}

impl RuleSet {
    /// Checks every custom rule's shape and that no two rules share an id.
    pub fn new(builtin: bool, custom: Option<&Bound<'_, PyAny>>) -> PyResult<RuleSet> {
        let errors = Arc::new(Mutex::new(Vec::new()));
        let mut rules = if builtin { self::builtin() } else { Vec::new() };
        if let Some(custom) = custom.filter(|c| !c.is_none()) {
            if custom.hasattr("evaluate")? {
                return Err(PyTypeError::new_err(
                    "rules must be a list of rule objects, not a single rule: use rules=[rule]",
                ));
            }
            for obj in custom.try_iter()? {
                let obj = obj?;
                let shape = || {
                    PyTypeError::new_err(format!(
                        "a custom rule needs an `id` (str) and an `evaluate(signals)` method \
                         returning a list of kerno.Finding; got a {}",
                        type_name(&obj)
                    ))
                };
                let id: String = obj
                    .getattr("id")
                    .and_then(|v| v.extract())
                    .map_err(|_| shape())?;
                if id.trim().is_empty() {
                    return Err(PyValueError::new_err(
                        "a custom rule's id must not be empty",
                    ));
                }
                if !obj.getattr("evaluate").is_ok_and(|e| e.is_callable()) {
                    return Err(shape());
                }
                let description = obj
                    .getattr("description")
                    .ok()
                    .and_then(|d| d.extract::<String>().ok())
                    .unwrap_or_default();
                rules.push(Box::new(PyRule {
                    id,
                    description,
                    obj: obj.unbind(),
                    errors: errors.clone(),
                }));
            }
        }
        for (i, r) in rules.iter().enumerate() {
            if rules[..i].iter().any(|o| o.id() == r.id()) {
                return Err(PyValueError::new_err(format!(
                    "two rules have the id {:?}: rule ids must be unique",
                    r.id()
                )));
            }
        }
        Ok(RuleSet { rules, errors })
    }

    /// A handle to raise the first exception a custom rule left, after evaluation.
    pub fn errors(&self) -> RuleErrors {
        RuleErrors(self.errors.clone())
    }
}

/// Exceptions custom rules raised during an evaluation.
pub struct RuleErrors(Arc<Mutex<Vec<PyErr>>>);

impl RuleErrors {
    /// Err with the first exception a custom rule raised, if any did.
    pub fn check(&self) -> PyResult<()> {
        let mut errors = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match errors.drain(..).next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Thresholds from a dict of threshold name -> value, over the defaults of the rules in
/// `registry`. An unknown name, a value of the wrong type or out of range is a `ValueError`
/// naming the key.
pub fn thresholds_from(
    obj: Option<&Bound<'_, PyAny>>,
    registry: &ThresholdRegistry,
) -> PyResult<Thresholds> {
    let mut thresholds = Thresholds::default();
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(thresholds);
    };
    let not_a_dict = || {
        PyTypeError::new_err(format!(
            "thresholds must be a dict of threshold name -> value, got a {}",
            type_name(obj)
        ))
    };
    let pairs: Vec<(Bound<'_, PyAny>, Bound<'_, PyAny>)> = if let Ok(d) = obj.cast::<PyDict>() {
        d.iter().collect()
    } else {
        let m = obj.cast::<PyMapping>().map_err(|_| not_a_dict())?;
        m.items()?
            .iter()
            .map(|kv| kv.extract())
            .collect::<PyResult<_>>()?
    };
    for (k, v) in pairs {
        let key: String = k.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "threshold names must be str, got {}",
                type_name(&k)
            ))
        })?;
        let value: Value = from_py(&v, &format!("thresholds['{key}']"))?;
        if key == "custom" {
            // Free-form numbers for custom rules that read them by name.
            let custom: std::collections::BTreeMap<String, f64> = serde_json::from_value(value)
                .map_err(|e| {
                    config_err(ConfigError::Invalid {
                        key: "thresholds.custom".into(),
                        reason: e.to_string(),
                    })
                })?;
            thresholds.custom.extend(custom);
            continue;
        }
        let value: ThresholdValue = serde_json::from_value(value).map_err(|e| {
            config_err(ConfigError::Invalid {
                key: format!("thresholds.{key}"),
                reason: e.to_string(),
            })
        })?;
        registry
            .set_value(&mut thresholds, &key, value)
            .map_err(config_err)?;
    }
    registry.check(&mut thresholds).map_err(config_err)?;
    Ok(thresholds)
}
