//! `Finding` and `Report` for Python.

use kerno_core::{
    Finding, Report, Scope, Severity, Status, Subject,
    render::{PrettyOptions, html, pretty},
};
use pyo3::{exceptions::PyValueError, prelude::*};
use serde_json::Value;

use crate::{
    convert::{from_py, serde_to_py},
    signals::PySignals,
};

/// One diagnosis: what is wrong, why, what it does, the numbers, and what to do.
///
/// Built-in rules produce them; a custom rule builds its own with keyword arguments:
/// `Finding(rule="my-rule", severity="warning", title="...", cause=..., fix=[...])`.
#[pyclass(frozen, eq, name = "Finding", module = "kerno")]
#[derive(Clone, PartialEq)]
pub struct PyFinding {
    pub inner: Finding,
}

pub fn severity_from(s: &str) -> PyResult<Severity> {
    match s.to_ascii_lowercase().as_str() {
        "info" => Ok(Severity::Info),
        "warning" | "warn" => Ok(Severity::Warning),
        "critical" | "crit" => Ok(Severity::Critical),
        _ => Err(PyValueError::new_err(format!(
            "severity must be 'info', 'warning' or 'critical', got {s:?}"
        ))),
    }
}

pub fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Info => "info",
        Severity::Warning => "warning",
        Severity::Critical => "critical",
    }
}

fn subject_from(obj: Option<&Bound<'_, PyAny>>) -> PyResult<Subject> {
    let Some(obj) = obj.filter(|o| !o.is_none()) else {
        return Ok(Subject::host(""));
    };
    if let Ok(name) = obj.extract::<String>() {
        return Ok(Subject::host(&name));
    }
    let mut value = from_py(obj, "subject")?;
    match &mut value {
        // A subject is about the host unless it says otherwise.
        Value::Object(m) => {
            m.entry("kind").or_insert_with(|| "host".into());
        }
        _ => return Err(PyValueError::new_err("subject must be a str or a dict")),
    }
    serde_json::from_value(value).map_err(|e| PyValueError::new_err(format!("subject: {e}")))
}

#[pymethods]
impl PyFinding {
    #[new]
    #[pyo3(signature = (
        *, rule, severity, title, cause = String::new(), impact = String::new(),
        evidence = Vec::new(), value = 0.0, threshold = 0.0, unit = String::new(),
        fix = Vec::new(), eta_secs = None, subject = None, low_volume = false
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        rule: String,
        severity: &str,
        title: String,
        cause: String,
        impact: String,
        evidence: Vec<String>,
        value: f64,
        threshold: f64,
        unit: String,
        fix: Vec<String>,
        eta_secs: Option<f64>,
        subject: Option<&Bound<'_, PyAny>>,
        low_volume: bool,
    ) -> PyResult<Self> {
        if rule.trim().is_empty() {
            return Err(PyValueError::new_err(
                "rule must name the rule that found this (its id)",
            ));
        }
        if eta_secs.is_some_and(|e| !e.is_finite() || e < 0.0) {
            return Err(PyValueError::new_err(
                "eta_secs must be a non-negative number of seconds",
            ));
        }
        Ok(PyFinding {
            inner: Finding {
                rule,
                severity: severity_from(severity)?,
                title,
                cause,
                impact,
                evidence,
                value,
                threshold,
                unit,
                fix,
                eta_secs,
                subject: subject_from(subject)?,
                low_volume,
            },
        })
    }

    /// The id of the rule that found this.
    #[getter]
    fn rule(&self) -> &str {
        &self.inner.rule
    }
    /// `info`, `warning` or `critical`.
    #[getter]
    fn severity(&self) -> &'static str {
        severity_name(self.inner.severity)
    }
    /// One line: who, what, how much.
    #[getter]
    fn title(&self) -> &str {
        &self.inner.title
    }
    /// Why it is happening.
    #[getter]
    fn cause(&self) -> &str {
        &self.inner.cause
    }
    /// What it does to users and services.
    #[getter]
    fn impact(&self) -> &str {
        &self.inner.impact
    }
    /// The numbers behind it.
    #[getter]
    fn evidence(&self) -> Vec<String> {
        self.inner.evidence.clone()
    }
    /// The measured value the threshold applies to.
    #[getter]
    fn value(&self) -> f64 {
        self.inner.value
    }
    /// The threshold it crossed.
    #[getter]
    fn threshold(&self) -> f64 {
        self.inner.threshold
    }
    /// Unit of value and threshold.
    #[getter]
    fn unit(&self) -> &str {
        &self.inner.unit
    }
    /// Steps to take, copy-paste commands first.
    #[getter]
    fn fix(&self) -> Vec<String> {
        self.inner.fix.clone()
    }
    /// Seconds until the limit is hit, when the rule can tell.
    #[getter]
    fn eta_secs(&self) -> Option<f64> {
        self.inner.eta_secs
    }
    /// What it is about: `{"kind": ..., "name": ..., "process": ..., ...}`.
    #[getter]
    fn subject<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner.subject)
    }
    /// The window had few samples: the finding is less certain.
    /// Whose it is, in one line (`payments/checkout-api-7d9f8b6c5-x2k4q (container api)`,
    /// `unit nginx.service`), or None.
    #[getter]
    fn whose(&self) -> Option<String> {
        self.inner.subject.whose()
    }
    #[getter]
    fn low_volume(&self) -> bool {
        self.inner.low_volume
    }

    /// The finding as plain data, in the JSON report's shape.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner)
    }

    /// The finding as JSON text, in the JSON report's shape.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.inner).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    fn __repr__(&self) -> String {
        format!(
            "<kerno.Finding {} {} {:?}>",
            self.inner.severity.label(),
            self.inner.rule,
            self.inner.title
        )
    }
}

/// A diagnosis report for one window: ranked findings, what each domain showed, what could
/// not be observed and why, and the signals behind it.
///
/// `str(report)` is the CLI's text report; in a notebook it shows as HTML.
#[pyclass(frozen, name = "Report", module = "kerno")]
pub struct PyReport {
    pub inner: Report,
}

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Healthy => "healthy",
        Status::Degraded => "degraded",
        Status::Warning => "warning",
        Status::Critical => "critical",
    }
}

#[pymethods]
impl PyReport {
    /// `healthy`, `degraded` (nothing wrong seen, but not everything observed), `warning` or
    /// `critical`.
    #[getter]
    fn status(&self) -> &'static str {
        status_name(self.inner.status)
    }
    /// `kerno <version>`.
    #[getter]
    fn generator(&self) -> &str {
        &self.inner.generator
    }
    /// Schema version of the report.
    #[getter]
    fn schema(&self) -> u32 {
        self.inner.schema
    }
    /// The machine.
    #[getter]
    fn host<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner.host)
    }
    /// The window.
    #[getter]
    fn window<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner.window)
    }
    /// Findings by severity: `{"critical": n, "warning": n, "info": n}`.
    #[getter]
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner.summary)
    }
    /// Findings, most urgent first.
    #[getter]
    fn findings(&self) -> Vec<PyFinding> {
        self.inner
            .findings
            .iter()
            .map(|f| PyFinding { inner: f.clone() })
            .collect()
    }
    /// Each domain: `{"domain", "observed", "detail"}`, and `"reason"` when it was not
    /// observed and why is known.
    #[getter]
    fn domains<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner.domains)
    }
    /// Domains that could not be observed, and why.
    #[getter]
    fn degraded<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner.degraded)
    }
    /// Samples the probes could not record.
    #[getter]
    fn lost<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner.lost)
    }
    /// The AI post-processor's analysis (`evaluate(..., ai=True)`): `{"status": "ok",
    /// "provider", "model", "privacy", "text", "cached"}` or `{"status": "failed",
    /// "reason"}`; `None` when none was asked for.
    #[getter]
    fn analysis<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        match &self.inner.analysis {
            Some(a) => serde_to_py(py, a),
            None => Ok(py.None().into_bound(py)),
        }
    }
    /// The window the findings were computed from.
    #[getter]
    fn signals(&self) -> PySignals {
        PySignals {
            inner: self.inner.signals.clone(),
        }
    }

    /// Only the findings about Kubernetes namespace `namespace`, or pod `pod`
    /// (`"namespace/name"`), as `kerno doctor --namespace` / `--pod` keep them; the domain
    /// lines stay host-wide.
    #[pyo3(signature = (*, namespace = None, pod = None))]
    fn scoped(&self, namespace: Option<&str>, pod: Option<&str>) -> PyResult<PyReport> {
        let scope = match (namespace, pod) {
            (Some(ns), None) => Scope::namespace(ns),
            (None, Some(p)) => Scope::pod(p),
            _ => Err("give exactly one of namespace= or pod=".to_string()),
        }
        .map_err(PyValueError::new_err)?;
        Ok(PyReport {
            inner: self.inner.clone().scoped(&scope),
        })
    }

    /// The text report, as the CLI prints it (ANSI colours when `color`).
    #[pyo3(signature = (color = false))]
    fn render(&self, color: bool) -> String {
        pretty(&self.inner, PrettyOptions { color })
    }

    /// The report as plain data, in the JSON report's shape.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner)
    }

    /// The JSON report, as `kerno doctor --output json` prints it.
    fn to_json(&self) -> String {
        kerno_core::render::json(&self.inner)
    }

    fn __str__(&self) -> String {
        self.render(false)
    }

    fn __repr__(&self) -> String {
        let s = &self.inner.summary;
        format!(
            "<kerno.Report {} host={:?} critical={} warning={} info={}>",
            status_name(self.inner.status),
            self.inner.host.hostname,
            s.critical,
            s.warning,
            s.info
        )
    }

    fn _repr_html_(&self) -> String {
        html(&self.inner)
    }
}
