//! Sampling levels here, without eBPF: `kerno predict --snapshots N --interval 15s`.

use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use crate::{
    CoreError, Degraded, Engine, Sample, Signals,
    collectors::{
        ConntrackCollector, FdCountCollector, FilesystemCollector, MemoryCollector, PidsCollector,
    },
};

/// An engine with the collectors predictions need, all from procfs and cgroupfs (no eBPF,
/// no probes): memory (host and cgroups), descriptor counts, filesystems, pids (host and
/// cgroups) and conntrack.
pub fn engine() -> Engine {
    let mut e = Engine::new();
    e.add_collector(Box::new(MemoryCollector::new()))
        .add_collector(Box::new(FdCountCollector::new()))
        .add_collector(Box::new(FilesystemCollector::new()))
        .add_collector(Box::new(PidsCollector::new()))
        .add_collector(Box::new(ConntrackCollector::new()));
    e
}

/// Take `snapshots` samples `interval` apart from every collector of `engine` and build
/// the window's [`Signals`]. `progress(taken, snapshots)` is called after each sample;
/// setting `cancel` stops with [`CoreError::Interrupted`]. A collector that fails is
/// skipped for the rest of the run and named in `degraded`.
pub fn collect_snapshots(
    engine: &mut Engine,
    snapshots: usize,
    interval: Duration,
    cancel: Option<&AtomicBool>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Signals, CoreError> {
    let names: Vec<String> = engine
        .collector_names()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let mut series: Vec<Vec<Sample>> = names.iter().map(|_| Vec::new()).collect();
    let mut failed: Vec<Option<String>> = vec![None; names.len()];
    let start = Instant::now();
    let start_unix_ms = crate::unix_ms_now();
    for k in 0..snapshots {
        let due = start + interval * k as u32;
        while Instant::now() < due {
            if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(CoreError::Interrupted);
            }
            std::thread::sleep((due - Instant::now()).min(Duration::from_millis(100)));
        }
        for (i, r) in engine.try_sample_all().into_iter().enumerate() {
            if failed[i].is_some() {
                continue;
            }
            match r {
                Ok(s) => series[i].push(s),
                Err(e) => failed[i] = Some(e.to_string()),
            }
        }
        progress(k + 1, snapshots);
    }
    let refs: Vec<Vec<&Sample>> = series.iter().map(|s| s.iter().collect()).collect();
    let mut signals = engine.signals_from(&refs, start_unix_ms, start.elapsed());
    for (name, f) in names.into_iter().zip(failed) {
        if let Some(reason) = f {
            signals.degraded.retain(|d| d.domain != name);
            signals.degraded.push(Degraded {
                domain: name,
                reason: format!("collector failed: {reason}"),
            });
        }
    }
    Ok(signals)
}
