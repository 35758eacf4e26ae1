//! `kerno chaos`: list the scenarios, or induce one for a while and clean up after it.
//! The scenarios themselves live in the `kerno-chaos` crate.

use std::{
    io::{BufRead as _, IsTerminal as _, Write as _},
    sync::atomic::Ordering,
    time::Duration,
};

use kerno_chaos::{self as chaos, ChaosError, ChaosOptions, Intensity, SCENARIOS};
use kerno_core::config::parse_duration;

use crate::{
    Failure,
    cli::{ChaosArgs, GlobalArgs, IntensityArg, Output},
    exit,
    progress::Progress,
    signal,
};

/// Scenarios may run from 1 s to an hour.
const MAX_DURATION: Duration = Duration::from_secs(3600);

pub fn run(args: ChaosArgs, g: &GlobalArgs) -> Result<u8, Failure> {
    g.output_for("chaos", &[Output::Pretty], None)?;
    if args.list {
        print_list();
        return Ok(exit::OK);
    }
    if args.clean {
        return clean();
    }
    let Some(name) = args.induce.as_deref() else {
        return Err(Failure::usage(anyhow::anyhow!(
            "say what to do: --list, --induce SCENARIO or --clean"
        )));
    };
    let Some(scenario) = chaos::scenario(name) else {
        return Err(Failure::usage(anyhow::anyhow!(
            "unknown scenario {name:?}; `kerno chaos --list` shows them"
        )));
    };
    let duration = parse_duration(&args.duration)
        .map_err(|e| Failure::usage(anyhow::anyhow!("--duration: {e}")))?;
    if duration < Duration::from_secs(1) || duration > MAX_DURATION {
        return Err(Failure::usage(anyhow::anyhow!(
            "--duration {} is out of range: use 1s to 1h",
            args.duration
        )));
    }
    let intensity = match args.intensity {
        IntensityArg::Low => Intensity::Low,
        IntensityArg::Medium => Intensity::Medium,
        IntensityArg::High => Intensity::High,
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(anyhow::anyhow!(
            "kerno chaos needs root: it creates network namespaces, cgroups, mounts and loop \
devices (try: sudo kerno chaos --induce {name} ...)"
        )
        .into());
    }
    if !args.yes {
        confirm(scenario, intensity, duration)?;
    }

    // Ctrl-C, SIGTERM and SIGHUP only set a flag: the teardown below always runs.
    signal::install();
    install_sighup();
    let opts = ChaosOptions::new(intensity, duration);
    let mut running = chaos::start(name, &opts).map_err(|e| match e {
        ChaosError::UnknownScenario(_) => Failure::usage(e),
        // Ctrl-C during the set-up also reaches the helper commands (ip, tc, mkfs), which
        // then fail: that is an interruption, not an error. What was set up is gone.
        _ if signal::INTERRUPTED.load(Ordering::SeqCst) => Failure {
            code: exit::INTERRUPTED,
            error: anyhow::anyhow!("interrupted"),
        },
        other => Failure::from(anyhow::Error::new(other).context(format!("starting {name}"))),
    })?;
    let mut out = std::io::stdout().lock();
    let rules = if scenario.rules.is_empty() {
        "none at the default thresholds".to_string()
    } else {
        scenario.rules.join(", ")
    };
    let _ = writeln!(
        out,
        "kerno chaos: {name} ({intensity}) for {}s; should trigger: {rules}",
        duration.as_secs()
    );
    let list = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(" ");
    let _ = writeln!(out, "  workload pids: {}", list(&running.pids));
    if !running.helper_pids.is_empty() {
        let _ = writeln!(out, "  helper pids:   {}", list(&running.helper_pids));
    }
    if let Some(cg) = &running.cgroup {
        let _ = writeln!(out, "  cgroup:        {cg}");
    }
    if !running.netns.is_empty() {
        let _ = writeln!(out, "  netns:         {}", running.netns.join(" "));
    }
    if !running.devices.is_empty() {
        let _ = writeln!(out, "  devices:       {}", running.devices.join(" "));
    }
    for n in &running.notes {
        let _ = writeln!(out, "  - {n}");
    }
    for s in &running.stages {
        if let Some(cg) = &s.cgroup {
            let _ = writeln!(out, "  - {}: cgroup {cg}", s.scenario);
        }
        for n in &s.notes {
            let _ = writeln!(out, "  - {}: {n}", s.scenario);
        }
    }
    let _ = writeln!(out, "running (Ctrl-C stops it and cleans up)");
    let _ = out.flush();

    // The wait, a second at a time, with a progress line on a terminal.
    let bar = Progress::new(format!("{name} running"), args.quiet);
    let started = std::time::Instant::now();
    let waited = loop {
        let left = duration.saturating_sub(started.elapsed());
        if left.is_zero() {
            break Ok(false);
        }
        match running.wait(left.min(Duration::from_secs(1)), Some(&signal::INTERRUPTED)) {
            Ok(false) => bar.update(started.elapsed(), duration),
            other => break other,
        }
    };
    bar.done();
    let stopped = running.stop();
    let interrupted = waited.map_err(|e| anyhow::Error::new(e).context("the scenario failed"))?;
    stopped.map_err(|e| anyhow::Error::new(e).context("cleaning up"))?;
    let _ = writeln!(out, "stopped; everything it created is removed");
    if interrupted || signal::INTERRUPTED.load(Ordering::SeqCst) {
        return Err(Failure {
            code: exit::INTERRUPTED,
            error: anyhow::anyhow!("interrupted"),
        });
    }
    Ok(exit::OK)
}

fn print_list() {
    let mut out = std::io::stdout().lock();
    for s in SCENARIOS {
        let rules = if s.rules.is_empty() {
            "(none at the default thresholds)".to_string()
        } else {
            s.rules.join(", ")
        };
        let _ = writeln!(out, "{}  ->  {rules}", s.name);
        for line in wrap(s.summary, 86) {
            let _ = writeln!(out, "    {line}");
        }
        for line in wrap(s.intensities, 86) {
            let _ = writeln!(out, "    {line}");
        }
        let _ = writeln!(out);
    }
    let _ = writeln!(
        out,
        "Usage: kerno chaos --induce SCENARIO [--intensity low|medium|high] [--duration 30s] [-y]"
    );
}

/// Greedy word wrap.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn confirm(
    scenario: &chaos::Scenario,
    intensity: Intensity,
    duration: Duration,
) -> Result<(), Failure> {
    if !std::io::stdin().is_terminal() {
        return Err(anyhow::anyhow!(
            "refusing to induce {} without confirmation: stdin is not a terminal (pass -y to confirm)",
            scenario.name
        )
        .into());
    }
    eprintln!(
        "This induces a real incident on this machine for {}s ({}, {intensity}):",
        duration.as_secs(),
        scenario.name
    );
    for line in wrap(scenario.summary, 86) {
        eprintln!("    {line}");
    }
    eprint!("Continue? [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(anyhow::anyhow!("not confirmed; nothing was done").into())
    }
}

fn clean() -> Result<u8, Failure> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(anyhow::anyhow!("kerno chaos --clean needs root").into());
    }
    let removed = chaos::clean_stale()?;
    let mut out = std::io::stdout().lock();
    if removed.is_empty() {
        let _ = writeln!(out, "nothing left over by earlier runs");
    }
    for r in removed {
        let _ = writeln!(out, "removed {r}");
    }
    Ok(exit::OK)
}

extern "C" fn on_sighup(_: libc::c_int) {
    signal::INTERRUPTED.store(true, Ordering::SeqCst);
}

/// A closed terminal stops the scenario like Ctrl-C does.
fn install_sighup() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGHUP, on_sighup as *const () as libc::sighandler_t);
    }
}
