//! kerno_core::Histogram: percentiles, the window delta of two cumulative reads, merging,
//! and decoding the kernel's dense bucket array.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use kerno_benches::{Lcg, latency_histogram};
use kerno_core::Histogram;

fn histograms(c: &mut Criterion) {
    let mut rng = Lcg::new(7);
    // Narrow (a fast syscall: a few powers of two) and wide (1 us .. 10 s: most buckets).
    let narrow = latency_histogram(&mut rng, 1_000_000, 200, 20_000);
    let wide = latency_histogram(&mut rng, 1_000_000, 1_000, 10_000_000_000);
    let mut g = c.benchmark_group("histogram");
    for (name, h) in [("narrow", &narrow), ("wide", &wide)] {
        g.bench_with_input(BenchmarkId::new("p50_p90_p99_max", name), h, |b, h| {
            b.iter(|| {
                let h = black_box(h);
                (
                    h.percentile(50.0),
                    h.percentile(90.0),
                    h.percentile(99.0),
                    h.max(),
                )
            })
        });
    }

    // A window: the cumulative histogram read at the end minus the one read at the start.
    let older = wide.clone();
    let mut newer = wide.clone();
    newer.merge(&latency_histogram(&mut rng, 100_000, 1_000, 10_000_000_000));
    g.bench_function("delta/wide", |b| {
        b.iter(|| black_box(&newer).delta(black_box(&older)))
    });
    g.bench_function("merge/wide_into_narrow", |b| {
        b.iter_batched_ref(
            || narrow.clone(),
            |acc| acc.merge(black_box(&wide)),
            criterion::BatchSize::SmallInput,
        )
    });
    // Per-CPU values summed, as the readers do, then decoded into the sparse form.
    let dense: Vec<u64> = {
        let mut d = vec![0u64; kerno_probes::common::hist::BUCKETS];
        for (i, n) in wide.buckets() {
            d[*i as usize] = *n;
        }
        d
    };
    g.bench_function("from_dense/512_buckets", |b| {
        b.iter(|| Histogram::from_dense(black_box(&dense)))
    });
    g.throughput(Throughput::Elements(1000));
    let values: Vec<u64> = (0..1000)
        .map(|_| rng.log_uniform(1_000, 1_000_000_000))
        .collect();
    g.bench_function("record/1000_values", |b| {
        b.iter_batched_ref(
            Histogram::new,
            |h| {
                for v in &values {
                    h.record(*v);
                }
            },
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, histograms);
criterion_main!(benches);
