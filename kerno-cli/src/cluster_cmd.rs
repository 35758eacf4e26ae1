//! `kerno doctor --cluster`: flags in, the agents asked (kerno-agent), the replies merged
//! (kerno-core's `cluster`), one report out.

use std::{io::Write, time::Duration};

use kerno_core::{
    Config, Scope, Severity,
    cluster::merge,
    config::parse_duration,
    render::{PrettyOptions, cluster_json, cluster_pretty},
};

use crate::{
    Failure,
    cli::{DoctorArgs, GlobalArgs, Output},
    exit,
};

/// The chart's headless Service: every agent pod's address.
pub const DEFAULT_AGENTS: &str = "kerno.kerno-system.svc:9090";

fn duration(flag: &str, text: &str) -> Result<Duration, Failure> {
    let d = parse_duration(text).map_err(|e| Failure::usage(anyhow::anyhow!("{flag}: {e}")))?;
    if d < Duration::from_millis(100) || d > Duration::from_secs(600) {
        return Err(Failure::usage(anyhow::anyhow!(
            "{flag}: {text} is out of range: use 100ms to 10m"
        )));
    }
    Ok(d)
}

pub fn run(
    args: &DoctorArgs,
    g: &GlobalArgs,
    cfg: &Config,
    scope: Option<Scope>,
) -> Result<u8, Failure> {
    let out = g.output_for(
        "doctor --cluster",
        &[Output::Pretty, Output::Json],
        Some(cfg.output.as_str()).filter(|o| *o != "html"),
    )?;
    let node_timeout = duration("--node-timeout", &args.node_timeout)?;
    let deadline = duration("--deadline", &args.deadline)?;
    let targets: Vec<String> = if !args.agents.is_empty() {
        args.agents.clone()
    } else {
        std::env::var("KERNO_AGENTS")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_AGENTS.to_string())
            .split(',')
            .map(str::to_string)
            .collect()
    };
    let targets: Vec<String> = targets
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect();
    if targets.is_empty() {
        return Err(Failure::usage(anyhow::anyhow!(
            "--agents: no agent named (HOST:PORT,...)"
        )));
    }
    let token_file = args
        .token_file
        .clone()
        .or_else(|| cfg.agent.doctor_token_file.clone())
        .ok_or_else(|| {
            Failure::usage(anyhow::anyhow!(
                "--cluster needs the agents' token: --token-file FILE (or KERNO_DOCTOR_TOKEN_FILE, agent.doctor_token_file)"
            ))
        })?;
    let token = kerno_agent::read_token(&token_file)?;
    let opts = kerno_agent::ClusterOptions {
        window: cfg.duration,
        token,
        node_timeout,
        deadline,
    };
    if !args.quiet {
        eprintln!(
            "kerno: asking the agents at {} for their last {} s (each within {} s, all within {} s)",
            targets.join(", "),
            cfg.duration.as_secs_f64(),
            node_timeout.as_secs_f64(),
            deadline.as_secs_f64()
        );
    }
    let mut report = merge(kerno_agent::ask_cluster(&targets, &opts));
    if let Some(scope) = &scope {
        report = report.scoped(scope);
    }
    let critical = report
        .findings
        .iter()
        .any(|f| f.finding.severity == Severity::Critical);
    if args.only_critical {
        report = report.only_critical();
    }
    let color = g.color(false) && out == Output::Pretty;
    let text = match out {
        Output::Json => cluster_json(&report),
        _ => cluster_pretty(&report, PrettyOptions { color }),
    };
    let _ = writeln!(std::io::stdout().lock(), "{}", text.trim_end());
    if report.answered() == 0 {
        return Err(Failure::from(anyhow::anyhow!(
            "no agent answered (of {} asked): see why above",
            report.nodes.len()
        )));
    }
    Ok(if args.exit_code && critical {
        exit::CRITICAL
    } else {
        exit::OK
    })
}
