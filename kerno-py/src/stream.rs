//! `kerno.trace_syscalls(...)`: the syscall stream as a Python iterator of dicts.

use std::time::{Duration, Instant};

use kerno_core::stream::{
    StreamError,
    syscall::{SyscallFilter, SyscallStream},
};
use pyo3::{
    exceptions::{PyPermissionError, PyRuntimeError, PyValueError},
    prelude::*,
};

use crate::{convert::serde_to_py, errors::ProbeError, guarded};

fn stream_err(e: StreamError) -> PyErr {
    let msg = e.to_string();
    match e {
        StreamError::Filter(_) => PyValueError::new_err(msg),
        StreamError::Probes(kerno_probes::ProbeError::NotPermitted { .. }) => {
            PyPermissionError::new_err(msg)
        }
        StreamError::Probes(kerno_probes::ProbeError::BadOption(_)) => PyValueError::new_err(msg),
        StreamError::Probes(_) => ProbeError::new_err(msg),
        StreamError::NoRuntime | StreamError::Io(_) => PyRuntimeError::new_err(msg),
    }
}

/// A running syscall trace: iterate it for one dict per matching call (the fields of
/// `kerno trace syscall -o json`); it ends after `duration` or `count` events, or when
/// closed. Its probes stay attached until then.
#[pyclass(name = "SyscallTrace", module = "kerno", unsendable)]
pub struct PySyscallTrace {
    rt: tokio::runtime::Runtime,
    stream: Option<SyscallStream>,
    deadline: Option<Instant>,
    left: Option<u64>,
}

/// How long one wait for an event lasts before Python's signals (Ctrl-C) are checked.
const SLICE: Duration = Duration::from_millis(200);

#[pymethods]
impl PySyscallTrace {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        loop {
            if self.left == Some(0) || self.deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(None);
            }
            let Some(stream) = self.stream.as_mut() else {
                return Ok(None);
            };
            let wait = match self.deadline {
                Some(d) => SLICE.min(d.saturating_duration_since(Instant::now())),
                None => SLICE,
            };
            // The stream lives on this thread (its runtime is current-thread), so the
            // wait holds the GIL for at most one slice, then checks Ctrl-C.
            let got = self
                .rt
                .block_on(async { tokio::time::timeout(wait, stream.next()).await });
            match got {
                Ok(Some(Ok(ev))) => {
                    if let Some(n) = self.left.as_mut() {
                        *n -= 1;
                    }
                    return Ok(Some(serde_to_py(py, &ev)?.unbind()));
                }
                Ok(Some(Err(e))) => return Err(stream_err(e)),
                Ok(None) => return Ok(None),
                Err(_) => py.check_signals()?,
            }
        }
    }

    /// `{"shown", "filtered", "lost"}` so far.
    fn summary<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let s = match &self.stream {
            Some(s) => s.summary().map_err(stream_err)?,
            None => return Err(PyRuntimeError::new_err("the trace is closed")),
        };
        serde_to_py(py, &s)
    }

    /// Detach the probes now (iteration then ends).
    fn close(&mut self) {
        self.stream = None;
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __exit__(
        &mut self,
        _t: Option<&Bound<'_, PyAny>>,
        _v: Option<&Bound<'_, PyAny>>,
        _tb: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.close();
        false
    }
}

/// Trace syscalls as they happen, filtered in the kernel (as `kerno trace syscall`). Needs
/// root (or CAP_BPF and CAP_PERFMON).
#[pyfunction]
#[pyo3(signature = (pid = None, comm = None, syscalls = None, min_latency_ms = 0.0, errors = false, duration = None, count = None, ring_bytes = None))]
#[allow(clippy::too_many_arguments)]
pub fn trace_syscalls(
    pid: Option<u32>,
    comm: Option<String>,
    syscalls: Option<Vec<String>>,
    min_latency_ms: f64,
    errors: bool,
    duration: Option<f64>,
    count: Option<u64>,
    ring_bytes: Option<u32>,
) -> PyResult<PySyscallTrace> {
    if !min_latency_ms.is_finite() || !(0.0..=3.6e6).contains(&min_latency_ms) {
        return Err(PyValueError::new_err(format!(
            "min_latency_ms must be a non-negative number of milliseconds, got {min_latency_ms}"
        )));
    }
    let deadline = match duration {
        Some(d) if !d.is_finite() || d <= 0.0 => {
            return Err(PyValueError::new_err(format!(
                "duration must be a positive number of seconds, got {d}"
            )));
        }
        // Checked: `duration=1e300` is a ValueError, not a panic in from_secs_f64 or in
        // Instant + Duration.
        Some(d) => Some(
            Duration::try_from_secs_f64(d)
                .ok()
                .and_then(|d| Instant::now().checked_add(d))
                .ok_or_else(|| PyValueError::new_err(format!("duration {d} s is too long")))?,
        ),
        None => None,
    };
    let filter = SyscallFilter {
        pid,
        comm,
        cgroup_id: None,
        cgroup_level: 0,
        syscalls: syscalls.unwrap_or_default(),
        min_latency: Duration::from_secs_f64(min_latency_ms / 1000.0),
        errors_only: errors,
        ring_bytes,
    };
    filter.numbers().map_err(stream_err)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))?;
    let stream =
        guarded(|| rt.block_on(async { SyscallStream::open(&filter) }))?.map_err(stream_err)?;
    Ok(PySyscallTrace {
        rt,
        stream: Some(stream),
        deadline,
        left: count,
    })
}
