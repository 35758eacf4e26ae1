use thiserror::Error;

/// Why a chaos scenario could not be started, kept running or torn down.
#[derive(Debug, Error)]
pub enum ChaosError {
    /// No scenario has that name.
    #[error("unknown scenario {0:?} (see `kerno chaos --list`)")]
    UnknownScenario(String),
    /// Inducing incidents changes the kernel's state (namespaces, cgroups, mounts): root only.
    #[error("inducing incidents needs root (effective uid 0); the effective uid is {euid}")]
    NotRoot {
        /// The effective uid of the caller.
        euid: u32,
    },
    /// A system call or file operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A helper program is not installed.
    #[error("`{tool}` is not installed (Debian package: {package})")]
    MissingTool {
        /// The program.
        tool: String,
        /// The Debian package that ships it.
        package: String,
    },
    /// A helper program ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// A workload process could not be set up.
    #[error("worker {name} could not start: {reason}")]
    Worker {
        /// The worker's name (its comm).
        name: String,
        /// Why.
        reason: String,
    },
    /// A workload process exited while the scenario was running.
    #[error("worker {name} (pid {pid}) exited unexpectedly: {status}")]
    WorkerDied {
        /// The worker's name (its comm).
        name: String,
        /// Its pid.
        pid: u32,
        /// How it ended.
        status: String,
    },
    /// This kernel or machine lacks what the scenario needs.
    #[error("not supported here: {0}")]
    Unsupported(String),
    /// Teardown left something behind; each entry names it.
    #[error("teardown incomplete: {}", .0.join("; "))]
    Teardown(Vec<String>),
}

impl ChaosError {
    /// An [`ChaosError::Io`] from the last OS error.
    pub(crate) fn last_os(what: impl Into<String>) -> ChaosError {
        ChaosError::Io {
            what: what.into(),
            source: std::io::Error::last_os_error(),
        }
    }

    /// An [`ChaosError::Io`] with context.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> ChaosError {
        ChaosError::Io {
            what: what.into(),
            source,
        }
    }
}
