//! `kerno`: the command-line frontend. It parses flags, wires kerno-core and kerno-rules
//! together and prints; every diagnosis is made in those libraries.

mod chaos_cmd;
mod cli;
mod doctor;
mod rules_cmd;
mod signal;
mod start;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Exit codes (documented in `kerno --help` and docs/cli.md).
pub mod exit {
    /// Success; with `--exit-code`, no critical finding.
    pub const OK: u8 = 0;
    /// Kerno could not do its job (no privileges, probes failed to load, unreadable file).
    pub const FAILURE: u8 = 1;
    /// Bad usage: unknown flag, bad value, bad configuration.
    pub const USAGE: u8 = 2;
    /// With `--exit-code`: at least one critical finding.
    pub const CRITICAL: u8 = 3;
    /// Interrupted (Ctrl-C).
    pub const INTERRUPTED: u8 = 130;
}

/// An error with the exit code it maps to.
pub struct Failure {
    code: u8,
    error: anyhow::Error,
}

impl Failure {
    fn usage(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: exit::USAGE,
            error: error.into(),
        }
    }
}

impl<E: Into<anyhow::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure {
            code: exit::FAILURE,
            error: e.into(),
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    let result = match cli.command {
        Command::Doctor(args) => doctor::run(args),
        Command::Rules(args) => rules_cmd::run(args),
        Command::Start(args) => start::run(args),
        Command::Chaos(args) => chaos_cmd::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            if f.code == exit::INTERRUPTED {
                eprintln!("kerno: interrupted");
            } else {
                eprintln!("kerno: error: {:#}", f.error);
            }
            ExitCode::from(f.code)
        }
    }
}
