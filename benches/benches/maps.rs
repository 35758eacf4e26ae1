//! Reading the kernel maps and diffing two readings into Signals: Engine::sample_all and
//! Engine::signals_from with every probe loaded, as `doctor` and the daemon do each second.
//!
//! Needs root (it loads Kerno's eBPF programs); without it, it prints a note and does
//! nothing, so `cargo bench` works anywhere.

use std::{hint::black_box, process::Command, time::Duration};

use criterion::Criterion;
use kerno_core::{Engine, KernelOptions, Sample, Signals};

/// Short-lived processes: each leaves per-process syscall, errno and descriptor records in
/// the maps, so there is something to read and attribute.
fn stir() {
    for i in 0..150 {
        let mut cmd = if i % 3 == 0 {
            let mut c = Command::new("ls");
            c.arg("/nonexistent/kerno-bench");
            c
        } else {
            Command::new("true")
        };
        let _ = cmd.output();
    }
}

fn series<'a>(a: &'a [Option<Sample>], b: &'a [Option<Sample>]) -> Vec<Vec<&'a Sample>> {
    a.iter()
        .zip(b)
        .map(|(x, y)| match (x, y) {
            (Some(x), Some(y)) => vec![x, y],
            _ => Vec::new(),
        })
        .collect()
}

fn describe(s: &Signals) -> String {
    format!(
        "{} syscalls, {} processes with descriptor activity, {} memory cgroups, {} degraded",
        s.syscalls.as_ref().map_or(0, |x| x.syscalls.len()),
        s.fds.as_ref().map_or(0, |x| x.processes.len()),
        s.memory.as_ref().map_or(0, |x| x.cgroups.len()),
        s.degraded.len()
    )
}

fn main() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("maps: skipped: needs root (it loads Kerno's eBPF probes)");
        return;
    }
    let mut engine = match Engine::kernel(&KernelOptions::default()) {
        Ok(e) => e,
        Err(e) => {
            println!("maps: skipped: the probes did not load: {e}");
            return;
        }
    };
    for d in engine.degraded() {
        println!("maps: degraded {}: {}", d.domain, d.reason);
    }
    stir();
    let first = engine.sample_all();
    stir();
    let second = engine.sample_all();
    let window = Duration::from_secs(1);
    let s = engine.signals_from(&series(&first, &second), kerno_core::unix_ms_now(), window);
    println!("maps: a window of the two readings has {}", describe(&s));

    let mut c = Criterion::default()
        .sample_size(30)
        .measurement_time(Duration::from_secs(6))
        .configure_from_args();
    let mut g = c.benchmark_group("maps");
    g.bench_function("sample_all", |b| b.iter(|| black_box(engine.sample_all())));
    g.bench_function("signals_from/2_samples", |b| {
        b.iter(|| engine.signals_from(black_box(&series(&first, &second)), 0, window))
    });
    // One daemon tick: read every map, then build the window from the first reading to it.
    g.bench_function("sample_all+signals_from", |b| {
        b.iter(|| {
            let now = engine.sample_all();
            black_box(engine.signals_from(&series(&first, &now), 0, window))
        })
    });
    g.finish();
    c.final_summary();
}
