//! Rendering a big report: the JSON report (with its signals) and the pretty text.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kerno_benches::{Scale, big_signals};
use kerno_core::{
    Thresholds, evaluate,
    render::{PrettyOptions, json, pretty},
};

fn render(c: &mut Criterion) {
    let report = evaluate(
        &big_signals(Scale::BIG),
        &kerno_rules::builtin(),
        &Thresholds::default(),
    );
    let json_len = json(&report).len() as u64;
    let mut g = c.benchmark_group("render");
    g.throughput(Throughput::Bytes(json_len));
    g.bench_function("json/big", |b| b.iter(|| json(black_box(&report))));
    g.throughput(Throughput::Elements(report.findings.len().max(1) as u64));
    g.bench_function("pretty/big", |b| {
        b.iter(|| pretty(black_box(&report), PrettyOptions { color: false }))
    });
    g.bench_function("pretty_color/big", |b| {
        b.iter(|| pretty(black_box(&report), PrettyOptions { color: true }))
    });
    g.finish();
    println!(
        "render: big report = {} findings, {:.1} MiB of JSON",
        report.findings.len(),
        json_len as f64 / (1 << 20) as f64
    );
}

criterion_group!(benches, render);
criterion_main!(benches);
