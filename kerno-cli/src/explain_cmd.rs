use std::io::{IsTerminal, Read};

use kerno_core::{
    ThresholdRegistry,
    explain::{self, ExplainError, ExplainOptions, Explanation},
};

use crate::{
    Failure, RuleSet,
    cli::{ExplainArgs, GlobalArgs, Output},
    doctor,
};

/// Whether stdin carries input: a pipe or a file, not a terminal and not /dev/null (what
/// cron and systemd give a command that should read the kernel log itself).
fn stdin_has_input() -> bool {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return false;
    }
    // SAFETY: fstat on fd 0 into a zeroed stat buffer.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(0, &mut st) } != 0 {
        return false;
    }
    let is_char = st.st_mode & libc::S_IFMT == libc::S_IFCHR;
    let dev_null = is_char && libc::major(st.st_rdev) == 1 && libc::minor(st.st_rdev) == 3;
    !dev_null
}

/// `kerno explain`: explain kernel log lines (arguments, stdin, or the kernel log), or a
/// rule (`--rule`).
pub fn run(args: ExplainArgs, g: &GlobalArgs, rules: RuleSet) -> Result<u8, Failure> {
    let rule_set = rules();
    let registry = ThresholdRegistry::of(&rule_set);
    let mut cfg = doctor::config(g.config.as_deref(), &args.cfg.thresholds, &registry)?;
    let output = g.output_for("explain", &[Output::Pretty, Output::Json], None)?;
    if let Some(id) = &args.rule {
        let r = explain::explain_rule(&rule_set, id, &cfg.thresholds).map_err(Failure::usage)?;
        match output {
            Output::Json => println!("{}", serde_json::to_string_pretty(&r)?),
            _ => print!("{}", explain::pretty_rule(&r)),
        }
        return Ok(crate::exit::OK);
    }
    // Pod and container names come from the host's files, as for `kerno doctor`.
    doctor::apply_node_args(&mut cfg, &args.node);
    kerno_core::host::configure(
        kerno_core::host::HostRoot::new(cfg.host_root.clone().unwrap_or_default()),
        cfg.node_name.clone(),
    );
    let opts = ExplainOptions::live();
    let since = args
        .since
        .as_deref()
        .map(explain::parse_since)
        .transpose()
        .map_err(|e| Failure::usage(anyhow::anyhow!("invalid value for --since: {e}")))?;
    let e: Explanation = if !args.message.is_empty() {
        if since.is_some() {
            return Err(Failure::usage(anyhow::anyhow!(
                "--since applies to reading the kernel log; it cannot be used with a MESSAGE"
            )));
        }
        explain::explain_text(args.message.join(" ").as_bytes(), "arguments", &opts)
    } else if stdin_has_input() {
        if since.is_some() {
            return Err(Failure::usage(anyhow::anyhow!(
                "--since applies to reading the kernel log; it cannot be used with lines on stdin"
            )));
        }
        let mut input = Vec::new();
        std::io::stdin().read_to_end(&mut input)?;
        explain::explain_text(&input, "stdin", &opts)
    } else {
        let since = since.unwrap_or(std::time::Duration::from_secs(3600));
        let log = explain::read_kernel_log(since, opts.now_unix_ms).map_err(|e| match e {
            ExplainError::KernelLog { .. } => Failure::from(e),
            other => Failure::usage(other),
        })?;
        explain::explain_entries(log.entries, &log.source, &opts)
    };
    let mut e = e;
    if args.ai {
        if args.dry_run {
            let text = kerno_ai::PostProcessor::for_dry_run(&cfg.ai)
                .and_then(|pp| pp.prepare_unknown(&e))
                .map_err(|err| Failure::from(anyhow::anyhow!("--dry-run: {err}")))?
                .describe();
            print!("{text}");
            eprintln!("kerno: --dry-run: nothing was sent");
            return Ok(crate::exit::OK);
        }
        if e.unknown.is_empty() {
            eprintln!(
                "kerno: every line is in the knowledge base; nothing was sent to the AI provider"
            );
        } else {
            let analysis = kerno_ai::analyze_unknown(&cfg.ai, &e);
            if let kerno_core::Analysis::Failed { reason } = &analysis {
                eprintln!("kerno: no AI analysis: {reason}");
            }
            e.analysis = Some(analysis);
        }
    }
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&e)?),
        _ => print!("{}", explain::pretty(&e)),
    }
    Ok(crate::exit::OK)
}
