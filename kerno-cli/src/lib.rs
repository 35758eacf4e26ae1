//! The `kerno` command line as a library: the `kerno` binary is [`main_with`] over the
//! built-in rules, and a program that adds rules of its own (a Rust crate with custom
//! [`kerno_core::Rule`] impls) gets the same command line, with its rules' thresholds in
//! `kerno rules`, `--threshold`, `KERNO_THRESHOLD_<KEY>` and the config file:
//!
//! ```no_run
//! fn my_rules() -> Vec<Box<dyn kerno_core::Rule>> {
//!     let rules = kerno_rules::builtin();
//!     // rules.push(Box::new(MyRule));
//!     rules
//! }
//! fn main() -> std::process::ExitCode {
//!     kerno_cli::main_with(my_rules)
//! }
//! ```
//!
//! It parses flags, wires kerno-core and the rules together and prints; every diagnosis is
//! made in those libraries.
#![deny(missing_docs)]

mod chaos_cmd;
mod cli;
mod cluster_cmd;
mod doctor;
mod explain_cmd;
mod globals;
mod manpages;
mod predict_cmd;
mod preflight_cmd;
mod progress;
mod rules_cmd;
mod signal;
mod start;
mod stream_cmd;
mod version_cmd;

use std::process::ExitCode;

use clap::FromArgMatches as _;

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

/// The rules a command line runs: a function, so each command (the doctor, the agent,
/// `kerno rules`) gets its own set.
pub type RuleSet = fn() -> Vec<Box<dyn kerno_core::Rule>>;

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

/// Run the command line with these rules: parse the process's arguments, run the command,
/// print errors, and give the exit code.
pub fn main_with(rules: RuleSet) -> ExitCode {
    // Like every Unix tool, end quietly when the reader of our output goes away
    // (`kerno rules | head`) instead of failing a write (Rust ignores SIGPIPE by default).
    // SAFETY: restoring a signal's default disposition at start-up, before any thread runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let parsed = globals::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
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
    let g = cli.global;
    globals::init_logging(&g);
    let result = match cli.command {
        Command::Doctor(args) => doctor::run(args, &g, rules),
        Command::Rules(args) => rules_cmd::run(args, &g, rules),
        Command::Start(args) => start::run(args, &g, rules),
        Command::Chaos(args) => chaos_cmd::run(args, &g),
        Command::Version => version_cmd::run(&g),
        Command::Preflight(args) => preflight_cmd::run(args, &g, rules),
        Command::Completions(args) => manpages::completions(args, &g),
        Command::Man(args) => manpages::man(args, &g),
        Command::Explain(args) => explain_cmd::run(args, &g, rules),
        Command::Predict(args) => predict_cmd::run(args, &g, rules),
        Command::Trace(args) => stream_cmd::trace(args, &g),
        Command::Watch(args) => stream_cmd::watch(args, &g),
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
