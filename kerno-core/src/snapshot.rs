//! Saving and loading windows (`kerno doctor --save` / `--from`).

use std::path::Path;

use crate::{CoreError, SCHEMA_VERSION, Signals};

/// Write a window as pretty JSON. Written to a temporary file first and renamed, so an
/// existing file is never left half-written.
pub fn save_signals(signals: &Signals, path: &Path) -> Result<(), CoreError> {
    let io = |source| CoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let json = serde_json::to_vec_pretty(signals).expect("Signals always serialises");
    let tmp = path.with_extension("kerno-tmp");
    std::fs::write(&tmp, json).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Read a window saved by [`save_signals`] (or the `signals` of a JSON report).
pub fn load_signals(path: &Path) -> Result<Signals, CoreError> {
    let text = std::fs::read_to_string(path).map_err(|source| CoreError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse_signals(&text).map_err(|message| CoreError::Snapshot {
        path: path.display().to_string(),
        message,
    })
}

/// Parse a window from JSON: a saved window, or a JSON report (its `signals` is used).
pub fn parse_signals(text: &str) -> Result<Signals, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let value = match value.get("signals") {
        Some(inner) if value.get("findings").is_some() => inner.clone(),
        _ => value,
    };
    let schema = value.get("schema").and_then(|v| v.as_u64());
    match schema {
        None => return Err("missing field `schema`".into()),
        Some(v) if v != SCHEMA_VERSION as u64 => {
            return Err(format!(
                "schema {v} is not supported (this Kerno reads {SCHEMA_VERSION})"
            ));
        }
        _ => {}
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        if path == "." {
            e.inner().to_string()
        } else {
            format!("field `{path}`: {}", e.inner())
        }
    })
}
