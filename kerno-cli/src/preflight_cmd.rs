//! `kerno preflight`: the checks are kerno-core's ([`kerno_core::preflight`]); this parses
//! the flags, prints the lines and gives the exit code.

use std::{io::Write as _, time::Duration};

use kerno_core::{
    ThresholdRegistry,
    host::HostRoot,
    preflight::{PreflightOptions, Verdict, preflight},
};

use crate::{
    Failure, RuleSet,
    cli::{GlobalArgs, Output, PreflightArgs},
    doctor, exit,
};

pub fn run(args: PreflightArgs, g: &GlobalArgs, rules: RuleSet) -> Result<u8, Failure> {
    let rules = rules();
    let mut cfg = doctor::config(g.config.as_deref(), &[], &ThresholdRegistry::of(&rules))?;
    if let Some(l) = args.listen {
        cfg.agent.listen = l;
    }
    if let Some(d) = args.domains {
        cfg.probes.domains = d;
    }
    doctor::apply_node_args(&mut cfg, &args.node);
    let out = g.output_for("preflight", &[Output::Pretty, Output::Json], None)?;
    let listen = if args.no_agent {
        None
    } else {
        Some(kerno_agent::parse_listen(&cfg.agent.listen).map_err(Failure::usage)?)
    };
    let mut domains = Vec::new();
    for d in &cfg.probes.domains {
        if let Some(p) = d.probe()
            && !domains.contains(&p)
        {
            domains.push(p);
        }
    }
    if cfg.probes.domains.is_empty() {
        domains = kerno_probes_all();
    }
    let opts = PreflightOptions {
        host_root: HostRoot::new(cfg.host_root.clone().unwrap_or_default()),
        listen,
        agent_running: kerno_agent::fetch_readiness(&cfg.agent.socket, Duration::from_secs(1))
            .is_ok(),
        domains,
    };
    let p = preflight(&opts);
    let text = match out {
        Output::Json => {
            let v = Json {
                ok: !p.failed(),
                passed: p.count(Verdict::Pass),
                warnings: p.count(Verdict::Warn),
                failed: p.count(Verdict::Fail),
                checks: &p.checks,
            };
            serde_json::to_string_pretty(&v)?
        }
        // output_for refused html.
        Output::Pretty | Output::Html => p.render(g.color(false)),
    };
    let _ = writeln!(std::io::stdout().lock(), "{}", text.trim_end());
    Ok(if p.failed() { exit::FAILURE } else { exit::OK })
}

/// `-o json`: the verdict first, then every check.
#[derive(serde::Serialize)]
struct Json<'a> {
    ok: bool,
    passed: usize,
    warnings: usize,
    failed: usize,
    checks: &'a [kerno_core::preflight::Check],
}

fn kerno_probes_all() -> Vec<kerno_core::preflight::ProbeDomain> {
    kerno_core::preflight::ProbeDomain::ALL.to_vec()
}
