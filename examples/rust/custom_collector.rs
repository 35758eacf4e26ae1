//! A custom collector: feed your own numbers into the window next to the kernel's, and a
//! rule can read them from `Signals::custom`. This one needs no root.
//!
//!     cargo run -p kerno-examples --example custom_collector

use std::time::Duration;

use kerno_core::{Collector, CollectorError, Engine, Sample, Signals};

/// Context switches and forks from /proc/stat.
struct ProcStat;

fn read_counter(key: &str) -> Result<u64, CollectorError> {
    let text = std::fs::read_to_string("/proc/stat").map_err(|e| CollectorError::Source {
        source_name: "/proc/stat".into(),
        reason: e.to_string(),
    })?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.trim().parse().ok())
        .ok_or_else(|| CollectorError::Source {
            source_name: "/proc/stat".into(),
            reason: format!("no {key} line"),
        })
}

impl Collector for ProcStat {
    fn name(&self) -> &str {
        "procstat"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        Ok(Sample::now((
            read_counter("ctxt ")?,
            read_counter("processes ")?,
        )))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let first = samples[0].get::<(u64, u64)>().expect("our own sample");
        let last = samples[samples.len() - 1]
            .get::<(u64, u64)>()
            .expect("our own sample");
        signals.custom.insert(
            self.name().into(),
            serde_json::json!({
                "context_switches": last.0 - first.0,
                "forks": last.1 - first.1,
            }),
        );
        Ok(())
    }
}

fn main() -> anyhow::Result<()> {
    let mut engine = Engine::new();
    engine.add_collector(Box::new(ProcStat));
    let signals = engine.collect(Duration::from_secs(1), None, &mut |_, _| {})?;
    let mine = &signals.custom["procstat"];
    println!("in {:.1} s: {mine}", signals.window_secs());
    assert!(mine["context_switches"].as_u64().unwrap() > 0);
    Ok(())
}
