//! Kerno's errors as the Python exceptions a caller would catch for them.

use kerno_core::{ConfigError, CoreError};
use kerno_probes::ProbeError as CoreProbeError;
use pyo3::{
    create_exception,
    exceptions::{PyKeyboardInterrupt, PyOSError, PyPermissionError, PyValueError},
    prelude::*,
};

create_exception!(
    kerno,
    ProbeError,
    PyOSError,
    "The eBPF probes could not be loaded on this kernel (no BTF, no tracefs, a program the \
     verifier rejected). Missing privileges raise PermissionError instead."
);

/// `CoreError` -> the precise Python exception:
/// missing privileges -> `PermissionError`; a file that cannot be read -> `OSError` with its
/// errno (so `FileNotFoundError`, `IsADirectoryError`, ...); a malformed snapshot, a bad
/// window or bad configuration -> `ValueError`; Ctrl-C -> `KeyboardInterrupt`; any other
/// probe failure -> `kerno.ProbeError` (an `OSError`).
pub fn core_err(e: CoreError) -> PyErr {
    let msg = e.to_string();
    match e {
        CoreError::Probes(CoreProbeError::NotPermitted { .. }) => PyPermissionError::new_err(msg),
        CoreError::NotPermitted { .. } => PyPermissionError::new_err(msg),
        CoreError::Probes(CoreProbeError::Io { path, source }) => io_err(&path, &source, msg),
        CoreError::Probes(_) => ProbeError::new_err(msg),
        CoreError::Interrupted => PyKeyboardInterrupt::new_err(msg),
        CoreError::Io { path, source } => io_err(&path, &source, msg),
        CoreError::Window(_) | CoreError::Snapshot { .. } | CoreError::Config(_) => {
            PyValueError::new_err(msg)
        }
    }
}

/// Configuration errors name their key; they are all bad values.
pub fn config_err(e: ConfigError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn io_err(path: &str, source: &std::io::Error, msg: String) -> PyErr {
    match source.raw_os_error() {
        // OSError(errno, strerror, filename) picks the subclass for the errno.
        Some(errno) => {
            let text = source.to_string();
            let strerror = text
                .strip_suffix(&format!(" (os error {errno})"))
                .unwrap_or(&text)
                .to_string();
            PyOSError::new_err((errno, strerror, path.to_string()))
        }
        None => PyOSError::new_err(msg),
    }
}
