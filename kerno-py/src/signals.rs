//! `Signals` (one window) and `Histogram` (a latency distribution) for Python.

use std::path::PathBuf;

use kerno_core::{Histogram, Signals};
use pyo3::{
    exceptions::PyValueError,
    prelude::*,
    types::{PyDict, PyType},
};

use crate::{
    convert::{from_py, serde_to_py},
    errors::core_err,
};

/// One window of kernel signals: what `doctor` collected or a saved incident holds.
///
/// Domain parts (`syscalls`, `tcp`, ...) are plain dicts in the JSON shape of a saved window,
/// or `None` when that domain was not observed (see `degraded` for why). Latency
/// distributions are `Histogram` objects from `histograms()`.
#[pyclass(frozen, eq, name = "Signals", module = "kerno")]
#[derive(Clone, PartialEq)]
pub struct PySignals {
    pub inner: Signals,
}

fn opt<'py, T: serde::Serialize>(py: Python<'py>, v: &Option<T>) -> PyResult<Bound<'py, PyAny>> {
    match v {
        Some(x) => serde_to_py(py, x),
        None => Ok(py.None().into_bound(py)),
    }
}

#[pymethods]
impl PySignals {
    /// Build a window from a dict in the JSON shape of a saved window (as `to_dict()` gives).
    #[classmethod]
    fn from_dict(_cls: &Bound<'_, PyType>, data: &Bound<'_, PyAny>) -> PyResult<Self> {
        let value = from_py(data, "signals")?;
        parse(&value.to_string())
    }

    /// Parse a window from JSON text (a saved window, or a JSON report's `signals`).
    #[classmethod]
    fn from_json(_cls: &Bound<'_, PyType>, text: &str) -> PyResult<Self> {
        parse(text)
    }

    /// The schema version of the producer.
    #[getter]
    fn schema(&self) -> u32 {
        self.inner.schema
    }

    /// The machine: hostname, kernel, cpus, memory_bytes, environment.
    #[getter]
    fn host<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner.host)
    }

    /// The window: start_unix_ms, duration_ms.
    #[getter]
    fn window<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner.window)
    }

    /// The window's length in seconds.
    #[getter]
    fn duration_secs(&self) -> f64 {
        self.inner.window_secs()
    }

    /// The pid of the Kerno process that collected the window.
    #[getter]
    fn collector_pid(&self) -> u32 {
        self.inner.collector_pid
    }

    /// Domains that could not be observed, and why: `[{"domain": ..., "reason": ...}]`.
    #[getter]
    fn degraded<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner.degraded)
    }

    /// Samples the probes could not record.
    #[getter]
    fn lost<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner.lost)
    }

    /// Syscall counts, errors and latency, or None.
    #[getter]
    fn syscalls<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt(py, &self.inner.syscalls)
    }

    /// TCP retransmits, RTT and connections, or None.
    #[getter]
    fn tcp<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt(py, &self.inner.tcp)
    }

    /// OOM kills, or None.
    #[getter]
    fn oom<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt(py, &self.inner.oom)
    }

    /// Block I/O per device and operation, or None.
    #[getter]
    fn disk<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt(py, &self.inner.disk)
    }

    /// Run-queue delay, or None.
    #[getter]
    fn sched<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt(py, &self.inner.sched)
    }

    /// File descriptors per process, or None.
    #[getter]
    fn fds<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt(py, &self.inner.fds)
    }

    /// Host and cgroup memory, or None.
    #[getter]
    fn memory<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt(py, &self.inner.memory)
    }

    /// Space and inodes of the mounted filesystems, or None.
    #[getter]
    fn filesystem<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt(py, &self.inner.filesystem)
    }

    /// Host tasks against pid_max/threads-max and pids cgroups, or None.
    #[getter]
    fn pids<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt(py, &self.inner.pids)
    }

    /// Connection tracking per network namespace, or None.
    #[getter]
    fn conntrack<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        opt(py, &self.inner.conntrack)
    }

    /// Signals from custom collectors, by collector name.
    #[getter]
    fn custom<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner.custom)
    }

    /// Whether a domain (`syscalls`, `tcp`, ...) was observed in this window.
    fn observed(&self, domain: &str) -> bool {
        self.inner.observed_name(domain)
    }

    /// One syscall's stats by name (`openat`), or None when it did not run in the window.
    fn syscall<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let stat = self.inner.syscalls.as_ref().and_then(|s| s.get(name));
        opt(py, &stat)
    }

    /// Every latency histogram in the window by name: `syscalls.<name>`, `tcp.rtt`,
    /// `tcp.connect_latency`, `sched.runq_delay`, `disk.<device>.<op>`.
    fn histograms<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let out = PyDict::new(py);
        let put = |name: String, h: &Histogram| -> PyResult<()> {
            out.set_item(name, PyHistogram { inner: h.clone() })
        };
        let s = &self.inner;
        if let Some(x) = &s.syscalls {
            for c in &x.syscalls {
                put(format!("syscalls.{}", c.name), &c.latency)?;
            }
        }
        if let Some(x) = &s.tcp {
            put("tcp.rtt".into(), &x.rtt)?;
            put("tcp.connect_latency".into(), &x.connect_latency)?;
        }
        if let Some(x) = &s.sched {
            put("sched.runq_delay".into(), &x.runq_delay)?;
        }
        if let Some(x) = &s.disk {
            for d in &x.devices {
                let dev = d.short_label();
                for o in &d.ops {
                    put(format!("disk.{dev}.{}", o.op), &o.latency)?;
                }
            }
        }
        Ok(out)
    }

    /// The window as plain data, in the JSON shape of a saved window.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner)
    }

    /// The window as JSON text, exactly as `kerno doctor --save` writes it.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string_pretty(&self.inner).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Save the window where `kerno doctor --from` and `kerno.load_signals` read it.
    fn save(&self, py: Python<'_>, path: PathBuf) -> PyResult<()> {
        py.detach(|| kerno_core::save_signals(&self.inner, &path))
            .map_err(core_err)
    }

    fn __repr__(&self) -> String {
        let s = &self.inner;
        let observed: Vec<&str> = kerno_core::Domain::ALL
            .into_iter()
            .filter(|d| s.observed(*d))
            .map(|d| d.as_str())
            .collect();
        format!(
            "<kerno.Signals host={:?} window={:.1}s observed=[{}] degraded={}>",
            s.host.hostname,
            s.window.duration_ms as f64 / 1000.0,
            observed.join(", "),
            s.degraded.len()
        )
    }
}

/// A window from JSON text; a malformed one is a ValueError saying what is wrong.
pub fn parse(text: &str) -> PyResult<PySignals> {
    kerno_core::parse_signals(text)
        .map(|inner| PySignals { inner })
        .map_err(|m| PyValueError::new_err(format!("not a Kerno signals snapshot: {m}")))
}

/// A latency distribution in nanoseconds, with the probes' log-linear buckets (each power of
/// two split into 16 linear sub-buckets, so percentiles are within a few percent).
#[pyclass(frozen, eq, name = "Histogram", module = "kerno")]
#[derive(Clone, PartialEq)]
pub struct PyHistogram {
    pub inner: Histogram,
}

#[pymethods]
impl PyHistogram {
    /// A histogram of `samples_ns` (each recorded once), empty by default.
    #[new]
    #[pyo3(signature = (samples_ns = Vec::new()))]
    fn new(samples_ns: Vec<u64>) -> Self {
        let mut inner = Histogram::new();
        for v in samples_ns {
            inner.record(v);
        }
        PyHistogram { inner }
    }

    /// A new histogram with `value_ns` recorded `n` more times.
    #[pyo3(signature = (value_ns, n = 1))]
    fn with_value(&self, value_ns: u64, n: u64) -> Self {
        let mut inner = self.inner.clone();
        inner.record_n(value_ns, n);
        PyHistogram { inner }
    }

    /// A new histogram holding the samples of both.
    fn merged(&self, other: &Self) -> Self {
        let mut inner = self.inner.clone();
        inner.merge(&other.inner);
        PyHistogram { inner }
    }

    /// Number of samples.
    #[getter]
    fn count(&self) -> u64 {
        self.inner.count()
    }

    /// The `q`-th percentile (0 < q <= 100) in ns, or None when empty.
    fn percentile(&self, q: f64) -> PyResult<Option<u64>> {
        if !(q > 0.0 && q <= 100.0) {
            return Err(PyValueError::new_err(format!(
                "percentile must be in (0, 100], got {q}"
            )));
        }
        Ok(self.inner.percentile(q))
    }

    /// Approximate mean in ns (from bucket midpoints), or None when empty.
    #[getter]
    fn mean(&self) -> Option<f64> {
        self.inner.mean()
    }

    /// Upper bound of the highest non-empty bucket in ns, or None when empty.
    #[getter]
    fn max(&self) -> Option<u64> {
        self.inner.max()
    }

    /// Non-empty buckets as `(low_ns, high_ns, count)`, low inclusive, high exclusive.
    fn buckets(&self) -> Vec<(u64, u64, u64)> {
        self.inner.ranges().collect()
    }

    /// Samples at or above `ns` (a bucket straddling it counts in proportion).
    fn count_above(&self, ns: u64) -> f64 {
        self.inner.count_above(ns)
    }

    /// The histogram in its JSON shape: count, p50/p90/p99/max_ns, buckets.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        serde_to_py(py, &self.inner)
    }

    fn __len__(&self) -> usize {
        self.inner.count() as usize
    }

    fn __repr__(&self) -> String {
        let h = &self.inner;
        let ns = |v: Option<u64>| {
            v.map(|v| kerno_core::human_ns(v as f64))
                .unwrap_or("-".into())
        };
        format!(
            "<kerno.Histogram count={} p50={} p99={} max={}>",
            h.count(),
            ns(h.percentile(50.0)),
            ns(h.percentile(99.0)),
            ns(h.max())
        )
    }
}
