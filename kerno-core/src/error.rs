use thiserror::Error;

/// A collector could not read its source.
#[derive(Debug, Error)]
pub enum CollectorError {
    /// A probe map could not be read.
    #[error(transparent)]
    Probe(#[from] kerno_probes::ProbeError),
    /// A procfs/sysfs/cgroupfs source could not be read.
    #[error("{source_name}: {reason}")]
    Source {
        /// The file or interface.
        source_name: String,
        /// What went wrong.
        reason: String,
    },
}

/// Configuration that cannot be used. The message names the key or file.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid YAML for the schema (unknown key, wrong type).
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message, naming the key and position.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("invalid value for {key}: {reason}")]
    Invalid {
        /// The key (`thresholds.syscall_p99_ms`, `KERNO_DURATION`, `--duration`).
        key: String,
        /// Why.
        reason: String,
    },
}

/// Errors from the engine and snapshots.
#[derive(Debug, Error)]
pub enum CoreError {
    /// The probes could not be loaded at all (privileges, no BTF, no object).
    #[error(transparent)]
    Probes(#[from] kerno_probes::ProbeError),
    /// The process may not load the probes (the preflight's capability check failed).
    #[error("{detail}; fix: {fix} (`kerno preflight` checks everything this node needs)")]
    NotPermitted {
        /// What is missing (`not permitted to load eBPF probes: missing CAP_BPF`).
        detail: String,
        /// How to grant it.
        fix: String,
    },
    /// Collection was interrupted (Ctrl-C).
    #[error("interrupted")]
    Interrupted,
    /// A window must be at least a second and at most five minutes.
    #[error("invalid window {0:?}: it must be between 1s and 5m")]
    Window(std::time::Duration),
    /// A snapshot file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A snapshot is not valid.
    #[error("{path} is not a Kerno signals snapshot: {message}")]
    Snapshot {
        /// The file.
        path: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// Configuration.
    #[error(transparent)]
    Config(#[from] ConfigError),
}
