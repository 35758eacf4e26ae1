//! Rule evaluation with kerno_rules::builtin() over a busy node's window (hundreds of
//! syscalls with histograms, thousands of processes, hundreds of cgroups), built in code.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kerno_benches::{Scale, big_signals};
use kerno_core::{Thresholds, evaluate};

fn rules(c: &mut Criterion) {
    let rules = kerno_rules::builtin();
    let t = Thresholds::default();
    let mut g = c.benchmark_group("rules");
    for (name, scale) in [("small", Scale::SMALL), ("big", Scale::BIG)] {
        let s = big_signals(scale);
        // The whole engine step: every rule, ranking, and the report (which owns a copy
        // of the window).
        g.bench_with_input(BenchmarkId::new("evaluate_all", name), &s, |b, s| {
            b.iter(|| evaluate(black_box(s), &rules, &t))
        });
    }
    // Each rule alone on the big window, to see which one costs what.
    let s = big_signals(Scale::BIG);
    // What evaluate_all pays besides the rules: the report keeps its own copy of the window.
    g.bench_function("clone_window/big", |b| b.iter(|| black_box(&s).clone()));
    for r in &rules {
        g.bench_function(BenchmarkId::new("big", r.id()), |b| {
            b.iter(|| r.evaluate(black_box(&s), &t))
        });
    }
    g.finish();
}

criterion_group!(benches, rules);
criterion_main!(benches);
