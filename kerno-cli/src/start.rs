//! `kerno start`: configuration in, the agent (kerno-agent) runs until SIGTERM or SIGINT.

use std::time::Duration;

use kerno_agent::{AgentError, AgentOptions, OtlpOptions};
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
    if let Some(domains) = args.domains {
        cfg.probes.domains = domains;
    }
    doctor::apply_node_args(&mut cfg, &args.node);
    if args.serve_doctor {
        cfg.agent.serve_doctor = true;
    }
    if let Some(f) = args.doctor_token_file {
        cfg.agent.doctor_token_file = Some(f);
    }
    if let Some(e) = args.otlp_endpoint {
        cfg.export.otlp.endpoint = (!e.trim().is_empty()).then(|| e.trim().to_string());
    }
    if let Some(i) = &args.otlp_interval {
        cfg.export.otlp.interval = parse_duration(i)
            .map_err(|e| Failure::usage(anyhow::anyhow!("--otlp-interval: {e}")))?;
    }
    cfg.validate().map_err(Failure::usage)?;
    // Read once at start: a token that cannot be read is a failure now, not 401s later.
    let doctor_token = match (&cfg.agent.doctor_token_file, cfg.agent.serve_doctor) {
        (Some(path), true) => Some(kerno_agent::read_token(path)?),
        _ => None,
    };
    let listen = kerno_agent::parse_listen(&cfg.agent.listen).map_err(Failure::usage)?;
    let opts = AgentOptions {
        listen,
        socket: cfg.agent.socket.clone(),
        window: cfg.agent.window,
        kernel: doctor::kernel_options(&cfg)?,
        rules,
        thresholds: cfg.thresholds.clone(),
        findings_window: Duration::from_secs(30).min(cfg.agent.window),
        update_every: Duration::from_secs(5),
        ai: cfg.ai.clone(),
        levels_every: cfg.agent.levels_every,
        doctor_token,
        otlp: cfg
            .export
            .otlp
            .endpoint
            .clone()
            .map(|endpoint| OtlpOptions {
                endpoint,
                interval: cfg.export.otlp.interval,
                timeout: cfg.export.otlp.timeout,
                headers: cfg.export.otlp.headers.clone().into_iter().collect(),
            }),
    };
    match kerno_agent::run(opts) {
        Ok(()) => Ok(exit::OK),
        Err(AgentError::Probes(CoreError::Config(c))) => Err(Failure::usage(c)),
        Err(e @ AgentError::Address(_)) => Err(Failure::usage(e)),
        Err(e) => Err(e.into()),
    }
}
