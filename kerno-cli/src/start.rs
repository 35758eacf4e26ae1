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
    if let Some(w) = &args.findings_window {
        cfg.agent.findings_window = parse_duration(w)
            .map_err(|e| Failure::usage(anyhow::anyhow!("--findings-window: {e}")))?;
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
        findings_window: cfg.agent.findings_window.min(cfg.agent.window),
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
    memory::release_free_memory();
    match kerno_agent::run(opts) {
        Ok(()) => Ok(exit::OK),
        Err(AgentError::Probes(CoreError::Config(c))) => Err(Failure::usage(c)),
        Err(e @ AgentError::Address(_)) => Err(Failure::usage(e)),
        Err(e) => Err(e.into()),
    }
}

/// The agent's heap, kept close to what it holds.
///
/// The agent keeps a window of samples and replaces most of it every few seconds (new
/// samples in, compacted and expired ones out), on several threads (the runtime, the
/// sampler, the levels, blocking tasks). glibc gives each thread that allocates its own
/// arena (up to 8 per CPU), keeps the memory it gets back per arena for reuse, and returns
/// it to the kernel only when the top of an arena is free: freed pages stay resident, so
/// RSS follows the largest the window ever was, plus fragmentation, once per arena. So the
/// agent uses two arenas, and every few seconds `malloc_trim` returns the free pages inside
/// them (the figures before and after are in docs/performance.md).
mod memory {
    use std::time::Duration;

    /// How often free heap pages are handed back.
    const EVERY: Duration = Duration::from_secs(5);
    /// glibc arenas: the agent allocates little and rarely from more than two threads at
    /// once, so lock contention between them costs nothing measurable.
    const ARENAS: i32 = 2;

    /// Limits the arenas and starts a thread that hands free heap pages back every
    /// [`EVERY`] while the process runs (a no-op on allocators other than glibc's). Call
    /// before other threads start. The thread ends with the process.
    pub(super) fn release_free_memory() {
        #[cfg(target_env = "gnu")]
        {
            // SAFETY: `mallopt` sets a glibc allocator parameter; called while this is the
            // only thread that allocates. A refusal (0) leaves glibc's default.
            unsafe { libc::mallopt(libc::M_ARENA_MAX, ARENAS) };
            let started = std::thread::Builder::new()
                .name("kerno-trim".into())
                .spawn(|| {
                    loop {
                        std::thread::sleep(EVERY);
                        // SAFETY: `malloc_trim` only walks glibc's own arenas, under their
                        // locks, and may be called from any thread at any time.
                        unsafe { libc::malloc_trim(0) };
                    }
                });
            if let Err(e) = started {
                tracing::warn!("cannot start the heap-trimming thread: {e}");
            }
        }
    }
}
