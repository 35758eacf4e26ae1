use std::{io::Write, time::Duration};

use anyhow::Context as _;
use kerno_core::{
    Config, CoreError, Engine, KernelOptions, Scope, Severity, ThresholdRegistry,
    config::{check_window, parse_domains, parse_duration},
    render::{PrettyOptions, html_page, json, pretty},
};

use crate::{
    Failure, RuleSet,
    cli::{DoctorArgs, GlobalArgs, NodeArgs, Output},
    exit,
    progress::Progress,
    signal,
};

fn env() -> Vec<(String, String)> {
    std::env::vars().collect()
}

/// Configuration: defaults < file < KERNO_* < flags, thresholds checked against `rules`.
pub fn config(
    args_config: Option<&std::path::Path>,
    thresholds: &[String],
    rules: &ThresholdRegistry,
) -> Result<Config, Failure> {
    let env = env();
    warn_unknown_env(&env, rules);
    let mut cfg = Config::load(args_config, &env, rules).map_err(Failure::usage)?;
    for kv in thresholds {
        let (k, v) = kv.split_once('=').ok_or_else(|| {
            Failure::usage(anyhow::anyhow!("--threshold expects KEY=VALUE, got {kv:?}"))
        })?;
        cfg.set_threshold(k.trim(), v, rules)
            .map_err(|e| Failure::usage(anyhow::anyhow!("--threshold {kv}: {e}")))?;
    }
    Ok(cfg)
}

/// Unknown `KERNO_*` variables are ignored with one warning each, once per process: a
/// leftover variable in a DaemonSet's environment must not stop the agent.
fn warn_unknown_env(env: &[(String, String)], rules: &ThresholdRegistry) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        for (name, near) in kerno_core::config::unknown_env(env, rules) {
            match near {
                Some(n) => eprintln!(
                    "kerno: warning: ignoring unknown environment variable {name} (did you mean {n}?)"
                ),
                None => eprintln!("kerno: warning: ignoring unknown environment variable {name}"),
            }
        }
    });
}

/// `--host-root` and `--node-name` over the configuration.
pub fn apply_node_args(cfg: &mut Config, args: &NodeArgs) {
    if let Some(r) = &args.host_root {
        cfg.host_root = Some(r.clone());
    }
    if let Some(n) = &args.node_name {
        cfg.node_name = Some(n.clone());
    }
}

/// Probe options from the configuration, and `KERNO_FAIL_PROBES` (domains to fail on
/// purpose, to exercise degradation).
pub fn kernel_options(cfg: &Config) -> Result<KernelOptions, Failure> {
    let fail_on_purpose = match std::env::var("KERNO_FAIL_PROBES") {
        Ok(v) => parse_domains(&v)
            .map_err(|e| Failure::usage(anyhow::anyhow!("KERNO_FAIL_PROBES: {e}")))?,
        Err(_) => Vec::new(),
    };
    Ok(KernelOptions {
        domains: cfg.probes.domains.clone(),
        slow_syscall_ms: cfg.probes.slow_syscall_ms,
        slow_runq_ms: cfg.probes.slow_runq_ms,
        host_root: cfg.host_root.clone(),
        node_name: cfg.node_name.clone(),
        fail_on_purpose,
        without_probes_if_not_permitted: false,
    })
}

/// The window from a running `kerno start` agent; `None` when none runs or it could not
/// answer (then the doctor collects itself). The doctor's own rules and thresholds are
/// applied to it afterwards.
fn ask_agent(cfg: &Config, quiet: bool) -> Option<kerno_core::Signals> {
    let socket = &cfg.agent.socket;
    let timeout = cfg.duration + Duration::from_secs(10);
    if !quiet {
        // A just-started agent makes the doctor wait for the rest of the window: say so.
        let history = kerno_agent::fetch_readiness(socket, Duration::from_secs(2))
            .ok()
            .filter(|r| r.ready)
            .map(|r| r.history_secs);
        if let Some(h) = history.filter(|h| *h + 1.0 < cfg.duration.as_secs_f64()) {
            eprintln!(
                "kerno: the agent started {h:.0} s ago; waiting {:.0} s for a {} s window",
                cfg.duration.as_secs_f64() - h,
                cfg.duration.as_secs()
            );
        }
    }
    match kerno_agent::fetch_signals(socket, cfg.duration, timeout) {
        Ok(mut signals) => {
            signals.keep_domains(&cfg.probes.domains);
            if !quiet {
                let got = Duration::from_millis(signals.window.duration_ms);
                eprintln!(
                    "kerno: window from the running agent ({}); --standalone collects here instead",
                    socket.display()
                );
                if got + Duration::from_millis(500) < cfg.duration {
                    eprintln!(
                        "kerno: the agent keeps {} s of history: the window is {} s, not {} s",
                        got.as_secs(),
                        got.as_secs(),
                        cfg.duration.as_secs()
                    );
                }
                for d in &signals.degraded {
                    eprintln!("kerno: degraded: {}: {}", d.domain, d.reason);
                }
            }
            Some(signals)
        }
        Err(kerno_agent::ClientError::NoAgent { .. }) => None,
        Err(e) => {
            if !quiet {
                eprintln!("kerno: the agent could not answer ({e}); collecting here");
            }
            None
        }
    }
}

pub fn run(args: DoctorArgs, g: &GlobalArgs, rules: RuleSet) -> Result<u8, Failure> {
    let rules = rules();
    let mut cfg = config(
        g.config.as_deref(),
        &args.cfg.thresholds,
        &ThresholdRegistry::of(&rules),
    )?;
    if let Some(d) = &args.duration {
        cfg.duration =
            parse_duration(d).map_err(|e| Failure::usage(anyhow::anyhow!("--duration: {e}")))?;
        check_window("--duration", cfg.duration).map_err(Failure::usage)?;
    }
    if let Some(domains) = &args.domains {
        cfg.probes.domains = domains.clone();
    }
    apply_node_args(&mut cfg, &args.node);
    let scope = match (&args.namespace, &args.pod) {
        (Some(ns), _) => Some(Scope::namespace(ns)),
        (None, Some(pod)) => Some(Scope::pod(pod)),
        (None, None) => None,
    }
    .transpose()
    .map_err(|e| Failure::usage(anyhow::anyhow!("--namespace/--pod: {e}")))?;
    cfg.validate().map_err(Failure::usage)?;
    if args.cluster {
        return crate::cluster_cmd::run(&args, g, &cfg, scope);
    }
    let ai_on = args.ai || cfg.ai.enabled;
    if args.dry_run && !ai_on {
        return Err(Failure::usage(anyhow::anyhow!(
            "--dry-run shows what --ai would send: add --ai (or set ai.enabled)"
        )));
    }
    let out = g.output_for(
        "doctor",
        &[Output::Pretty, Output::Json, Output::Html],
        Some(cfg.output.as_str()),
    )?;
    cfg.output = out.name().into();
    let color = g.color(false) && out == Output::Pretty;

    let mut engine = Engine::new();
    engine.add_rules(rules);
    engine.set_thresholds(cfg.thresholds.clone());

    // A running agent answers from its window at once; probes forced to fail are a
    // standalone experiment.
    let from_agent = if args.from.is_some()
        || args.standalone
        || std::env::var_os("KERNO_FAIL_PROBES").is_some()
    {
        None
    } else {
        ask_agent(&cfg, args.quiet)
    };
    let signals = match (&args.from, from_agent) {
        (Some(path), _) => kerno_core::load_signals(path)?,
        (None, Some(signals)) => signals,
        (None, None) => {
            // A plain user still gets what procfs, cgroupfs and PSI show; the probe domains
            // are reported as not observed, with the capabilities they need.
            let opts = KernelOptions {
                without_probes_if_not_permitted: true,
                ..kernel_options(&cfg)?
            };
            let mut kernel = Engine::kernel(&opts).map_err(|e| match e {
                CoreError::Config(c) => Failure::usage(c),
                other => {
                    Failure::from(anyhow::Error::new(other).context("cannot start the probes"))
                }
            })?;
            if let Some(why) = kernel.not_permitted().filter(|_| !args.quiet) {
                eprintln!(
                    "kerno: {why}: reporting what procfs, cgroupfs and PSI show (run as root, or grant CAP_BPF, CAP_PERFMON, CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE: docs/reliability.md)"
                );
            }
            if !args.quiet {
                for d in kernel.degraded() {
                    eprintln!("kerno: degraded: {}: {}", d.domain, d.reason);
                }
            }
            signal::install();
            let bar = Progress::new("collecting kernel signals", args.quiet);
            let mut progress = |elapsed: Duration, total: Duration| bar.update(elapsed, total);
            let result = kernel.collect(cfg.duration, Some(&signal::INTERRUPTED), &mut progress);
            bar.done();
            match result {
                Ok(s) => s,
                Err(CoreError::Interrupted) => {
                    return Err(Failure {
                        code: exit::INTERRUPTED,
                        error: anyhow::anyhow!("interrupted"),
                    });
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    if let Some(path) = &args.save {
        kerno_core::save_signals(&signals, path)
            .with_context(|| format!("saving the window to {}", path.display()))?;
        if !args.quiet {
            eprintln!(
                "kerno: window saved to {} (replay: kerno doctor --from {})",
                path.display(),
                path.display()
            );
        }
    }
    let mut report = engine.evaluate(&signals);
    if let Some(scope) = &scope {
        report = report.scoped(scope);
    }
    let critical = report
        .findings
        .iter()
        .any(|f| f.severity == Severity::Critical);
    if args.only_critical {
        report = report.only_critical();
    }
    let code = if args.exit_code && critical {
        exit::CRITICAL
    } else {
        exit::OK
    };
    if ai_on {
        if args.dry_run {
            let text = kerno_ai::PostProcessor::for_dry_run(&cfg.ai)
                .and_then(|pp| pp.dry_run(&report))
                .map_err(|e| Failure::from(anyhow::anyhow!("--dry-run: {e}")))?;
            let _ = write!(std::io::stdout().lock(), "{text}");
            if !args.quiet {
                eprintln!("kerno: --dry-run: nothing was sent");
            }
            return Ok(code);
        }
        // The analysis never changes the exit code, and a failure leaves the report as it
        // would be without --ai (the JSON report says why in `analysis`).
        let analysis = kerno_ai::analyze(&cfg.ai, &report);
        if let kerno_core::Analysis::Failed { reason } = &analysis {
            eprintln!("kerno: no AI analysis: {reason}");
        }
        report.analysis = Some(analysis);
    }
    if let Some(path) = &args.save_html {
        std::fs::write(path, html_page(&report))
            .with_context(|| format!("writing the HTML report to {}", path.display()))?;
        if !args.quiet {
            eprintln!("kerno: HTML report written to {}", path.display());
        }
    }
    let text = match out {
        Output::Json => json(&report),
        Output::Html => html_page(&report),
        Output::Pretty => pretty(&report, PrettyOptions { color }),
    };
    let mut out = std::io::stdout().lock();
    // A closed pipe (`kerno doctor | head`) is not an error worth a message.
    let _ = writeln!(out, "{}", text.trim_end());
    Ok(code)
}
