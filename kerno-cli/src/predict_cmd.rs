//! `kerno predict`: flags in, levels from the agent or sampled here, the forecast printed.

use std::{
    io::{IsTerminal, Write},
    time::Duration,
};

use anyhow::Context as _;
use kerno_core::{
    CoreError, Signals, ThresholdRegistry,
    config::parse_duration,
    predict::{self, ForecastSource, PredictOptions, PredictRenderOptions},
};

use crate::{
    Failure, RuleSet,
    cli::{GlobalArgs, Output, PredictArgs},
    doctor, exit, signal,
};

const DEFAULT_SNAPSHOTS: u64 = 10;
const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

fn duration_flag(name: &str, raw: &str, min: Duration, max: Duration) -> Result<Duration, Failure> {
    let d = parse_duration(raw).map_err(|e| Failure::usage(anyhow::anyhow!("{name}: {e}")))?;
    if d < min || d > max {
        return Err(Failure::usage(anyhow::anyhow!(
            "{name}: {raw} is out of range: use {} to {}",
            kerno_core::config::format_duration(min),
            human(max)
        )));
    }
    Ok(d)
}

fn human(d: Duration) -> String {
    if d.as_secs() >= 86400 && d.as_secs().is_multiple_of(86400) {
        format!("{} days", d.as_secs() / 86400)
    } else if d.as_secs() >= 3600 && d.as_secs().is_multiple_of(3600) {
        format!("{}h", d.as_secs() / 3600)
    } else {
        kerno_core::config::format_duration(d)
    }
}

pub fn run(args: PredictArgs, g: &GlobalArgs, rules: RuleSet) -> Result<u8, Failure> {
    let horizon = duration_flag(
        "--horizon",
        &args.horizon,
        Duration::from_secs(1),
        Duration::from_secs(365 * 86400),
    )?;
    let warn_within = duration_flag(
        "--warn-within",
        &args.warn_within,
        Duration::ZERO,
        Duration::from_secs(365 * 86400),
    )?;
    let window = duration_flag(
        "--window",
        &args.window,
        Duration::from_secs(60),
        Duration::from_secs(3600),
    )?;
    let interval = args
        .interval
        .as_deref()
        .map(|raw| {
            duration_flag(
                "--interval",
                raw,
                Duration::from_millis(100),
                Duration::from_secs(3600),
            )
        })
        .transpose()?;
    let opts = PredictOptions {
        horizon,
        warn_within,
        ..PredictOptions::default()
    };
    if let Some(n) = args.snapshots
        && !(opts.min_points as u64..=100_000).contains(&n)
    {
        return Err(Failure::usage(anyhow::anyhow!(
            "--snapshots: {n} is out of range: use {} to 100000 (a line needs {} points)",
            opts.min_points,
            opts.min_points
        )));
    }
    let mut cfg = doctor::config(g.config.as_deref(), &[], &ThresholdRegistry::of(&rules()))?;
    doctor::apply_node_args(&mut cfg, &args.node);
    kerno_core::host::configure(
        kerno_core::host::HostRoot::new(cfg.host_root.clone().unwrap_or_default()),
        cfg.node_name.clone(),
    );
    let output = g.output_for("predict", &[Output::Pretty, Output::Json], None)?;
    let json_out = output == Output::Json;
    let color = g.color(false) && !json_out;
    let standalone = args.standalone || args.snapshots.is_some() || args.interval.is_some();

    let from_agent = if args.from.is_some() || standalone {
        None
    } else {
        ask_agent(&cfg.agent.socket, window, opts.min_points, args.quiet)
    };
    let (signals, source) = match (&args.from, from_agent) {
        (Some(path), _) => (
            kerno_core::load_signals(path)?,
            ForecastSource {
                kind: "file".into(),
                ..ForecastSource::default()
            },
        ),
        (None, Some(found)) => found,
        (None, None) => {
            let n = args.snapshots.unwrap_or(DEFAULT_SNAPSHOTS) as usize;
            let every = interval.unwrap_or(DEFAULT_INTERVAL);
            (
                sample_here(n, every, args.quiet)?,
                ForecastSource {
                    kind: "snapshots".into(),
                    snapshots: n,
                    interval_ms: every.as_millis() as u64,
                },
            )
        }
    };
    if let Some(path) = &args.save {
        kerno_core::save_signals(&signals, path)
            .with_context(|| format!("saving the window to {}", path.display()))?;
        if !args.quiet {
            eprintln!(
                "kerno: window saved to {} (replay: kerno predict --from {})",
                path.display(),
                path.display()
            );
        }
    }
    let mut forecast = predict::forecast(&signals, &opts);
    forecast.source = source;
    let text = if json_out {
        serde_json::to_string_pretty(&forecast)?
    } else {
        predict::pretty(&forecast, PredictRenderOptions { color })
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.trim_end());
    Ok(if args.exit_code && forecast.any_warning() {
        exit::CRITICAL
    } else {
        exit::OK
    })
}

/// Sample levels here, with progress on a terminal.
fn sample_here(n: usize, every: Duration, quiet: bool) -> Result<Signals, Failure> {
    let mut engine = predict::engine();
    signal::install();
    let show = std::io::stderr().is_terminal() && !quiet;
    let mut progress = |taken: usize, total: usize| {
        if show {
            eprint!(
                "\r\x1b[2Ksampling levels… {taken}/{total} snapshots, every {}",
                kerno_core::config::format_duration(every)
            );
            let _ = std::io::stderr().flush();
        }
    };
    let result = predict::collect_snapshots(
        &mut engine,
        n,
        every,
        Some(&signal::INTERRUPTED),
        &mut progress,
    );
    if show {
        eprint!("\r\x1b[2K");
    }
    match result {
        Ok(s) => {
            if !quiet {
                for d in &s.degraded {
                    eprintln!("kerno: degraded: {}: {}", d.domain, d.reason);
                }
            }
            Ok(s)
        }
        Err(CoreError::Interrupted) => Err(Failure {
            code: exit::INTERRUPTED,
            error: anyhow::anyhow!("interrupted"),
        }),
        Err(e) => Err(e.into()),
    }
}

/// The running agent's level history; `None` when no agent runs, it could not answer, or
/// it has too few points yet (then the levels are sampled here).
fn ask_agent(
    socket: &std::path::Path,
    window: Duration,
    min_points: usize,
    quiet: bool,
) -> Option<(Signals, ForecastSource)> {
    match kerno_agent::fetch_levels(socket, window, Duration::from_secs(30)) {
        Ok(signals) => {
            let points = signals
                .memory
                .as_ref()
                .map(|m| m.used_series.len())
                .unwrap_or(0);
            if points < min_points {
                if !quiet {
                    eprintln!(
                        "kerno: the agent has recorded {points} level samples so far (a line needs {min_points}); sampling here"
                    );
                }
                return None;
            }
            if !quiet {
                eprintln!(
                    "kerno: levels from the running agent ({}); --standalone samples here instead",
                    socket.display()
                );
            }
            let interval_ms = signals.window.duration_ms / (points as u64 - 1).max(1);
            Some((
                signals,
                ForecastSource {
                    kind: "agent".into(),
                    snapshots: points,
                    interval_ms,
                },
            ))
        }
        Err(kerno_agent::ClientError::NoAgent { .. }) => None,
        Err(e) => {
            if !quiet {
                eprintln!("kerno: the agent could not answer ({e}); sampling here");
            }
            None
        }
    }
}
