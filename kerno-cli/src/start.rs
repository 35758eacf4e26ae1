//! `kerno start`: configuration in, the agent (kerno-agent) runs until SIGTERM or SIGINT.

use std::time::Duration;

use kerno_agent::{AgentError, AgentOptions};
use kerno_core::{CoreError, ThresholdRegistry, config::parse_duration};

use crate::{
    Failure, RuleSet,
    cli::{GlobalArgs, StartArgs},
    doctor, exit,
};

pub fn run(args: StartArgs, g: &GlobalArgs, rules: RuleSet) -> Result<u8, Failure> {
    // The agent writes logs (--log-format), not a report.
    if let Some(o) = g.output {
        return Err(Failure::usage(anyhow::anyhow!(
            "kerno start writes no report, so no --output {}; it serves /metrics and writes logs (--log-format text|json)",
            o.name()
        )));
    }
    let rules = rules();
    let mut cfg = doctor::config(
        g.config.as_deref(),
        &args.cfg.thresholds,
        &ThresholdRegistry::of(&rules),
    )?;
    if let Some(l) = args.listen {
        cfg.agent.listen = l;
    }
    if let Some(s) = args.socket {
        cfg.agent.socket = s;
    }
    if let Some(w) = &args.window {
        cfg.agent.window =
            parse_duration(w).map_err(|e| Failure::usage(anyhow::anyhow!("--window: {e}")))?;
    }
    if let Some(w) = &args.findings_window {
        cfg.agent.findings_window = parse_duration(w)
            .map_err(|e| Failure::usage(anyhow::anyhow!("--findings-window: {e}")))?;
    }
    if let Some(domains) = args.domains {
        cfg.probes.domains = domains;
    }
    doctor::apply_node_args(&mut cfg, &args.node);
    cfg.validate().map_err(Failure::usage)?;
    let listen = kerno_agent::parse_listen(&cfg.agent.listen).map_err(Failure::usage)?;
    let opts = AgentOptions {
        listen,
        socket: cfg.agent.socket.clone(),
        window: cfg.agent.window,
        kernel: doctor::kernel_options(&cfg)?,
        rules,
        thresholds: cfg.thresholds.clone(),
        findings_window: cfg.agent.findings_window.min(cfg.agent.window),
        update_every: Duration::from_secs(5),
        ai: cfg.ai.clone(),
        levels_every: cfg.agent.levels_every,
    };
    match kerno_agent::run(opts) {
        Ok(()) => Ok(exit::OK),
        Err(AgentError::Probes(CoreError::Config(c))) => Err(Failure::usage(c)),
        Err(e @ AgentError::Address(_)) => Err(Failure::usage(e)),
        Err(e) => Err(e.into()),
    }
}
