//! A one-line progress indicator on stderr for long waits: shown only on a terminal and
//! without `-q`, erased when done.

use std::{
    io::{IsTerminal as _, Write as _},
    time::Duration,
};

/// Progress of a wait of known length.
pub struct Progress {
    shown: bool,
    label: String,
}

impl Progress {
    /// A progress line labelled `label`, shown when stderr is a terminal and not `quiet`.
    pub fn new(label: impl Into<String>, quiet: bool) -> Progress {
        Progress {
            shown: !quiet && std::io::stderr().is_terminal(),
            label: label.into(),
        }
    }

    /// Show `elapsed` of `total`.
    pub fn update(&self, elapsed: Duration, total: Duration) {
        if self.shown {
            eprint!(
                "\r\x1b[2K{}… {:>3}s / {}s",
                self.label,
                elapsed.as_secs(),
                total.as_secs()
            );
            let _ = std::io::stderr().flush();
        }
    }

    /// Erase the line.
    pub fn done(&self) {
        if self.shown {
            eprint!("\r\x1b[2K");
            let _ = std::io::stderr().flush();
        }
    }
}
