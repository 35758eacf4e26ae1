//! `kerno._kerno`: the Python extension behind the `kerno` package.
//!
//! A thin layer over `kerno-core` and `kerno-rules`: it converts arguments, releases the GIL
//! around collection, maps errors to precise Python exceptions, and wraps the core's types.
//! No diagnosis logic lives here: rules, ranking and rendering are the core's.

mod convert;
mod errors;
mod report;
mod rules;
mod signals;
mod stream;

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    path::PathBuf,
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};

use kerno_core::{Engine, KernelOptions, ThresholdRegistry, config::check_window};
use pyo3::{
    exceptions::{PyRuntimeError, PyValueError},
    prelude::*,
};

use crate::{
    convert::serde_to_py,
    errors::{config_err, core_err},
    report::{PyFinding, PyReport},
    rules::{RuleSet, thresholds_from},
    signals::{PyHistogram, PySignals},
};

/// Runs core code so that a bug (a panic) reaches Python as a `RuntimeError` that says so,
/// not as a `PanicException`, which `except Exception` does not catch.
fn guarded<T>(f: impl FnOnce() -> T) -> PyResult<T> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let what = p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "unknown panic".into());
        PyRuntimeError::new_err(format!(
            "internal error in kerno (please report it): {what}"
        ))
    })
}

fn window_from(secs: f64) -> PyResult<Duration> {
    if !secs.is_finite() || !(0.0..=1e6).contains(&secs) {
        return Err(PyValueError::new_err(format!(
            "duration must be a number of seconds from 1 to 300, got {secs}"
        )));
    }
    let d = Duration::from_secs_f64(secs);
    check_window("duration", d).map_err(config_err)?;
    Ok(d)
}

/// Collect a window from the kernel for `duration` seconds and diagnose it. Needs root (or
/// CAP_BPF and CAP_PERFMON). The GIL is released while collecting; Ctrl-C stops it with
/// KeyboardInterrupt.
#[pyfunction]
#[pyo3(signature = (duration = 10.0, thresholds = None, rules = None, domains = None))]
fn doctor(
    py: Python<'_>,
    duration: f64,
    thresholds: Option<&Bound<'_, PyAny>>,
    rules: Option<&Bound<'_, PyAny>>,
    domains: Option<Vec<String>>,
) -> PyResult<PyReport> {
    // Everything the caller can get wrong is checked before the probes are loaded.
    let window = window_from(duration)?;
    let rule_set = RuleSet::new(true, rules)?;
    let thresholds = thresholds_from(thresholds, &ThresholdRegistry::of(&rule_set.rules))?;
    let opts = KernelOptions {
        domains: domains
            .unwrap_or_default()
            .iter()
            .map(|d| d.parse())
            .collect::<Result<_, String>>()
            .map_err(|reason| {
                config_err(kerno_core::ConfigError::Invalid {
                    key: "domains".into(),
                    reason,
                })
            })?,
        ..KernelOptions::default()
    };
    let mut engine = py
        .detach(|| guarded(|| Engine::kernel(&opts)))?
        .map_err(core_err)?;
    let rule_errors = rule_set.errors();
    engine.add_rules(rule_set.rules).set_thresholds(thresholds);

    // Collection runs with the GIL released; every progress tick (about ten a second) takes
    // the GIL back briefly to let Python run its signal handlers, so Ctrl-C lands within
    // ~100 ms and the engine stops through its cancel flag.
    let cancel = AtomicBool::new(false);
    let mut interrupted: Option<PyErr> = None;
    let collected = py.detach(|| {
        guarded(|| {
            engine.collect(window, Some(&cancel), &mut |_, _| {
                if interrupted.is_some() {
                    return;
                }
                if let Err(e) = Python::attach(|py| py.check_signals()) {
                    interrupted = Some(e);
                    cancel.store(true, Ordering::Relaxed);
                }
            })
        })
    });
    if let Some(e) = interrupted {
        py.detach(move || drop(engine));
        return Err(e);
    }
    let signals = collected?.map_err(core_err)?;
    let report = guarded(|| engine.evaluate(&signals))?;
    // Unloading the probes closes their links and maps: no Python needed for that.
    py.detach(move || drop(engine));
    rule_errors.check()?;
    Ok(PyReport { inner: report })
}

/// Run the rules over a window: the built-in ones (unless `builtin=False`) and any custom
/// `rules`, with `thresholds` (a dict of threshold name -> value) over the defaults.
///
/// `ai=True` adds the AI post-processor's analysis (`report.analysis`) with the `ai:`
/// settings of Kerno's config file and `KERNO_AI_*`; a dict (`{"provider": "ollama",
/// "endpoint": "http://localhost:11434", "privacy": "redacted"}`) sets keys over those.
/// The key comes from `KERNO_AI_API_KEY` or `api_key_file`, never from the dict. A failed
/// analysis is `{"status": "failed", "reason": ...}`, never an exception.
#[pyfunction]
#[pyo3(signature = (signals, thresholds = None, rules = None, builtin = true, ai = None))]
fn evaluate(
    py: Python<'_>,
    signals: &Bound<'_, PySignals>,
    thresholds: Option<&Bound<'_, PyAny>>,
    rules: Option<&Bound<'_, PyAny>>,
    builtin: bool,
    ai: Option<&Bound<'_, PyAny>>,
) -> PyResult<PyReport> {
    let rule_set = RuleSet::new(builtin, rules)?;
    let registry = ThresholdRegistry::of(&rule_set.rules);
    let thresholds = thresholds_from(thresholds, &registry)?;
    let ai = ai_config(ai, &registry)?;
    let signals = &signals.get().inner;
    let mut report = guarded(|| kerno_core::evaluate(signals, &rule_set.rules, &thresholds))?;
    rule_set.errors().check()?;
    if let Some(cfg) = ai {
        // The call runs without the GIL: other Python threads go on meanwhile.
        let analysis = py.detach(|| kerno_ai::analyze(&cfg, &report));
        report.analysis = Some(analysis);
    }
    Ok(PyReport { inner: report })
}

/// The AI settings for `ai=`: `None`/`False` none; `True` the configuration's; a dict,
/// its keys over the configuration's (unknown keys and bad values raise ValueError).
fn ai_config(
    ai: Option<&Bound<'_, PyAny>>,
    registry: &ThresholdRegistry,
) -> PyResult<Option<kerno_core::config::AiConfig>> {
    let Some(ai) = ai.filter(|a| !a.is_none()) else {
        return Ok(None);
    };
    let env: Vec<(String, String)> = std::env::vars().collect();
    // Unknown KERNO_* variables are ignored, as the CLI does, with a Python warning.
    for (name, near) in kerno_core::config::unknown_env(&env, registry) {
        let hint = near
            .map(|n| format!(" (did you mean {n}?)"))
            .unwrap_or_default();
        let msg = std::ffi::CString::new(format!(
            "ignoring unknown environment variable {name}{hint}"
        ))
        .unwrap_or_default();
        PyErr::warn(
            ai.py(),
            &ai.py().get_type::<pyo3::exceptions::PyUserWarning>(),
            &msg,
            1,
        )?;
    }
    let base = kerno_core::Config::load(None, &env, registry)
        .map_err(config_err)?
        .ai;
    if let Ok(b) = ai.cast::<pyo3::types::PyBool>() {
        return Ok(b.is_true().then_some(kerno_core::config::AiConfig {
            enabled: true,
            ..base
        }));
    }
    let given = convert::from_py(ai, "ai")?;
    let serde_json::Value::Object(given) = given else {
        return Err(pyo3::exceptions::PyTypeError::new_err(
            "ai must be True, False, None or a dict of ai settings",
        ));
    };
    if given.contains_key("api_key") {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "ai: the API key is never passed as a setting: set KERNO_AI_API_KEY or api_key_file",
        ));
    }
    // Each key alone first, so an error names the key it is about.
    for (k, v) in &given {
        let one = serde_json::Value::Object([(k.clone(), v.clone())].into_iter().collect());
        serde_json::from_value::<kerno_core::config::AiConfig>(one)
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("ai[{k:?}]: {e}")))?;
    }
    let mut merged = match serde_json::to_value(&base) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    merged.extend(given);
    let mut cfg: kerno_core::config::AiConfig =
        serde_json::from_value(serde_json::Value::Object(merged))
            .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("ai: {e}")))?;
    cfg.enabled = true;
    cfg.validate().map_err(config_err)?;
    Ok(Some(cfg))
}

/// Read a window saved by `kerno doctor --save` (or the JSON report of a run). No root needed.
#[pyfunction]
fn load_signals(py: Python<'_>, path: PathBuf) -> PyResult<PySignals> {
    let signals = py
        .detach(|| guarded(|| kerno_core::load_signals(&path)))?
        .map_err(core_err)?;
    Ok(PySignals { inner: signals })
}

/// Parse a window from JSON text (a saved window or a JSON report).
#[pyfunction]
fn parse_signals(text: &str) -> PyResult<PySignals> {
    signals::parse(text)
}

/// Every threshold of the built-in rules with its default value.
#[pyfunction]
fn default_thresholds(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    serde_to_py(py, &rules::registry().defaults())
}

/// Every threshold the built-in rules declare: key, rule, kind, default, unit, valid range
/// and what it does, in rule order.
#[pyfunction]
fn thresholds(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let list: Vec<serde_json::Value> = rules::registry()
        .iter()
        .map(|(rule, s)| {
            let bounded = s.kind() != "list";
            serde_json::json!({
                "key": s.key,
                "rule": rule,
                "kind": s.kind(),
                "default": s.default_value(),
                "unit": s.unit,
                "min": bounded.then_some(s.min),
                "max": (bounded && s.max < 1e300 && s.max < u64::MAX as f64).then_some(s.max),
                "doc": s.doc,
            })
        })
        .collect();
    serde_to_py(py, &list)
}

/// The built-in rules as `(id, description)`, in the order they run.
#[pyfunction]
fn builtin_rules() -> Vec<(String, String)> {
    rules::builtin()
        .iter()
        .map(|r| (r.id().to_string(), r.description().to_string()))
        .collect()
}

#[pymodule]
fn _kerno(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PySignals>()?;
    m.add_class::<PyHistogram>()?;
    m.add_class::<PyFinding>()?;
    m.add_class::<PyReport>()?;
    m.add_function(wrap_pyfunction!(doctor, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(load_signals, m)?)?;
    m.add_function(wrap_pyfunction!(parse_signals, m)?)?;
    m.add_function(wrap_pyfunction!(default_thresholds, m)?)?;
    m.add_function(wrap_pyfunction!(thresholds, m)?)?;
    m.add_function(wrap_pyfunction!(builtin_rules, m)?)?;
    m.add_class::<stream::PySyscallTrace>()?;
    m.add_function(wrap_pyfunction!(stream::trace_syscalls, m)?)?;
    m.add("ProbeError", m.py().get_type::<errors::ProbeError>())?;
    m.add("SCHEMA_VERSION", kerno_core::SCHEMA_VERSION)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
