//! Embedding Kerno in a Rust agent: load the probes, diagnose a 2 s window, and act on
//! the findings yourself. Needs root (or CAP_BPF + CAP_PERFMON).
//!
//!     cargo run -p kerno-examples --example embed_agent

use std::time::Duration;

use kerno_core::{Engine, KernelOptions, Severity};

fn main() -> anyhow::Result<()> {
    let mut engine = Engine::kernel(&KernelOptions::default())?;
    engine.add_rules(kerno_rules::builtin());
    for d in engine.degraded() {
        eprintln!("not observed: {} ({})", d.domain, d.reason);
    }

    let signals = engine.collect(Duration::from_secs(2), None, &mut |_, _| {})?;
    let report = engine.evaluate(&signals);

    let syscalls = signals
        .syscalls
        .as_ref()
        .map(|s| s.total_calls)
        .unwrap_or(0);
    println!(
        "observed {syscalls} syscalls in {:.1} s",
        signals.window_secs()
    );
    for f in &report.findings {
        println!("[{}] {}: {}", f.severity, f.rule, f.title);
        if f.severity == Severity::Critical {
            // Page someone, open an incident, attach `kerno_core::render::json(&report)`.
        }
    }
    println!("status: {:?}", report.status);
    Ok(())
}
