//! The global flags (`--config`, `--output`, `--no-color`, `--log-level`, `--log-format`,
//! accepted before or after the command's name), colours, and the logs.

use std::io::IsTerminal as _;

use clap::CommandFactory as _;

use crate::{
    Failure,
    cli::{Cli, GlobalArgs, LogFormat, LogLevel, Output},
    version_cmd,
};

/// The command line's definition, with the build's version: `-V` one line, `--version`
/// (and only then, since it looks at the kernel) the long form `kerno version` prints.
pub fn command() -> clap::Command {
    let mut cmd = Cli::command().version(leak(version_cmd::short()));
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.iter().any(|a| a == "--version") {
        cmd = cmd.long_version(leak(version_cmd::long_text()));
    }
    if !color_allowed(args.iter().any(|a| a == "--no-color")) {
        cmd = cmd.color(clap::ColorChoice::Never);
    }
    cmd
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Colours are allowed at all: no `--no-color`, and `NO_COLOR` unset or empty
/// (<https://no-color.org>).
fn color_allowed(no_color_flag: bool) -> bool {
    !no_color_flag && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

impl Output {
    /// The name users type.
    pub fn name(self) -> &'static str {
        match self {
            Output::Pretty => "pretty",
            Output::Json => "json",
            Output::Html => "html",
        }
    }
}

impl GlobalArgs {
    /// The output format of a command that can write `can` (the first is its default):
    /// `--output` when given, else `configured` (the config file's or `KERNO_OUTPUT`), else
    /// the default. A format the command cannot write is a usage error naming those it can.
    pub fn output_for(
        &self,
        command: &str,
        can: &[Output],
        configured: Option<&str>,
    ) -> Result<Output, Failure> {
        let names = can.iter().map(|o| o.name()).collect::<Vec<_>>().join(", ");
        let chosen = match (self.output, configured) {
            (Some(o), _) => o,
            (None, Some(name)) => match can.iter().find(|o| o.name() == name) {
                Some(o) => *o,
                None => {
                    return Err(Failure::usage(anyhow::anyhow!(
                        "kerno {command} cannot write {name:?} (from the configuration); it can write: {names}"
                    )));
                }
            },
            (None, None) => can[0],
        };
        if !can.contains(&chosen) {
            return Err(Failure::usage(anyhow::anyhow!(
                "kerno {command} cannot write --output {}; it can write: {names}",
                chosen.name()
            )));
        }
        Ok(chosen)
    }

    /// Whether to colour what goes to stdout (stderr with `on_stderr`): allowed, and a
    /// terminal.
    pub fn color(&self, on_stderr: bool) -> bool {
        color_allowed(self.no_color)
            && if on_stderr {
                std::io::stderr().is_terminal()
            } else {
                std::io::stdout().is_terminal()
            }
    }
}

/// Logs (the agent's, mostly) on stderr through `tracing`: text lines or JSON objects, at
/// `--log-level` (info by default).
pub fn init_logging(g: &GlobalArgs) {
    let level = match g.log_level.unwrap_or(LogLevel::Info) {
        LogLevel::Error => tracing::Level::ERROR,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Trace => tracing::Level::TRACE,
    };
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_target(true);
    let _ = match g.log_format.unwrap_or(LogFormat::Text) {
        LogFormat::Text => builder.with_ansi(g.color(true)).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}
