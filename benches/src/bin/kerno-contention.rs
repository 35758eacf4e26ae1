//! `kerno-contention`: a user-space model of the cache-line traffic of Kerno's shared
//! syscall histogram (`SYSCALL_HIST`: one `Hist` per syscall number shared by all CPUs,
//! updated with atomic adds), next to the per-CPU layout it replaced, and a closed
//! queueing model that carries the measurement to CPU counts this machine does not have.
//!
//! `BPF_PROG_TEST_RUN` does not run tracepoint programs, and a 2-CPU machine cannot show
//! 64 CPUs fighting over one cache line, so this measures the pieces the model needs on
//! the CPUs there are, with threads pinned one per CPU:
//!
//! - **transfer**: two threads pass one cache line back and forth (each waits for the
//!   other's write): the time for a line to move between two CPUs, `t_x`;
//! - **raw adds**: every thread adds into the same histogram layout the programs use (the
//!   `Hist` type and `hist::bucket` of `kerno-probes-common`, 512 histograms of 512 `u64`)
//!   as fast as it can: `lock xadd` into the shared array (what the JIT emits for
//!   `BPF_ATOMIC | BPF_ADD`) against a plain add into a private copy (a per-CPU array);
//! - **sampled calls**: the `sys_exit` pattern: each call is some private work (the
//!   syscall itself), the sampler's per-CPU bookkeeping, and, on the calls the sampler
//!   times (the first `FULL` per period, then one in `EVERY`), an add of the call's weight
//!   into the histogram: what a storm of one syscall on every CPU does.
//!
//! Then it prints the model: per-event cost and utilisation of the hottest line at the CPU
//! counts asked for (`--model-cpus`), from mean-value analysis of a closed system of N
//! CPUs sharing one line (docs/performance.md, "At scale", states the formula and its
//! assumptions). Needs no root and no kernel support.
//!
//! ```text
//! kerno-contention [--threads 1,2] [--ms 300] [--reps 5] [--work-ns 250]
//!                  [--model-cpus 16,64,192] [--transfer-scale 1,3]
//! ```

use std::{
    process::ExitCode,
    sync::{
        Arc, Barrier,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use kerno_probes::common::{Hist, MAX_SYSCALLS, hist, sampling};

/// The syscall every thread storms (getppid on x86-64), as `benches/workloads/getppid_storm.c`.
const NR: usize = 110;

struct Opts {
    threads: Vec<usize>,
    ms: u64,
    reps: usize,
    work_ns: f64,
    model_cpus: Vec<u64>,
    transfer_scale: Vec<f64>,
}

const USAGE: &str = "usage: kerno-contention [--threads 1,2] [--ms 300] [--reps 5] [--work-ns 250] [--model-cpus 16,64,192] [--transfer-scale 1,3]";

fn list<T: std::str::FromStr>(flag: &str, v: &str) -> Result<Vec<T>, String> {
    let out: Result<Vec<T>, _> = v.split(',').map(|s| s.trim().parse::<T>()).collect();
    match out {
        Ok(l) if !l.is_empty() => Ok(l),
        _ => Err(format!(
            "{flag}: expected a comma-separated list of numbers, got {v:?}"
        )),
    }
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        threads: vec![1, 2],
        ms: 300,
        reps: 5,
        work_ns: 250.0,
        model_cpus: vec![16, 64, 192],
        transfer_scale: vec![1.0, 3.0],
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "-h" || a == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let v = args.next().ok_or_else(|| format!("{a}: needs a value"))?;
        let num = |v: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{a}: not a number: {v:?}"))
        };
        match a.as_str() {
            "--threads" => o.threads = list(&a, &v)?,
            "--ms" => o.ms = num(&v)?,
            "--reps" => o.reps = num(&v)? as usize,
            "--work-ns" => o.work_ns = num(&v)? as f64,
            "--model-cpus" => o.model_cpus = list(&a, &v)?,
            "--transfer-scale" => o.transfer_scale = list(&a, &v)?,
            _ => return Err(format!("unknown argument {a:?}")),
        }
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if o.threads.iter().any(|&t| t == 0 || t > cpus) {
        return Err(format!(
            "--threads: each count must be 1..={cpus} (one thread per CPU)"
        ));
    }
    if o.ms == 0 || o.reps == 0 || o.model_cpus.contains(&0) {
        return Err("--ms, --reps and --model-cpus must be positive".into());
    }
    if o.transfer_scale.iter().any(|s| !s.is_finite() || *s <= 0.0) {
        return Err("--transfer-scale: each factor must be positive".into());
    }
    Ok(o)
}

fn pin(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is an empty set; CPU_SET writes inside it; the call only
    // reads it. A failure leaves the thread unpinned, which the output would show as noise.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

/// The syscall histograms as the map holds them: `MAX_SYSCALLS` histograms of
/// `hist::BUCKETS` counters, one allocation (2 MiB).
fn histograms() -> Vec<Hist> {
    vec![
        Hist {
            buckets: [0; hist::BUCKETS],
        };
        MAX_SYSCALLS
    ]
}

/// The shared array, written by every thread through a raw pointer (atomic adds only),
/// as the kernel's array map is; freed when dropped, after the threads are joined.
struct Shared(*mut [Hist]);

impl Shared {
    fn new() -> Self {
        Shared(Box::into_raw(histograms().into_boxed_slice()))
    }
    /// The first histogram's address, to hand to the threads.
    fn addr(&self) -> usize {
        self.0 as *mut Hist as usize
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::into_raw` in `new` and is freed only here.
        drop(unsafe { Box::from_raw(self.0) });
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Layout {
    /// One array for all threads, `lock xadd` (SYSCALL_HIST today).
    Shared,
    /// A private copy per thread, plain add (a per-CPU array).
    PerCpu,
}

/// A cheap per-thread random sequence (xorshift64), for latencies that spread over a few
/// buckets as a real storm's do.
struct Rng(u64);
impl Rng {
    #[inline(always)]
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Private work of about `iters` dependent steps (the syscall the program rides on).
#[inline(always)]
fn work(rng: &mut Rng, iters: u64) -> u64 {
    let mut x = 0;
    for _ in 0..iters {
        x ^= rng.next();
    }
    std::hint::black_box(x)
}

/// The per-CPU sampler of `sys_enter`: the weight of this call (0: not timed).
#[inline(always)]
fn sample(seen: &mut u64, epoch: u64) -> u64 {
    let n = if *seen >> 32 == epoch {
        (*seen & 0xffff_ffff) + 1
    } else {
        1
    };
    *seen = (epoch << 32) | n;
    if n <= sampling::FULL {
        1
    } else if n & (sampling::EVERY - 1) == 0 {
        sampling::EVERY
    } else {
        0
    }
}

#[inline(always)]
fn add(layout: Layout, h: *mut Hist, b: usize, n: u64) {
    // SAFETY: `h` points to a live `Hist` and `b < BUCKETS`; the shared array is only ever
    // changed through atomic adds while threads run (a u64 is aligned for AtomicU64).
    unsafe {
        let p = &raw mut (*h).buckets[b];
        match layout {
            Layout::Shared => {
                AtomicU64::from_ptr(p).fetch_add(n, Ordering::Relaxed);
            }
            Layout::PerCpu => *p += n,
        }
    }
}

/// A per-thread progress counter on its own cache line.
#[repr(align(128))]
struct Progress(AtomicU64);

/// What a measuring thread sees: the stop flag and every thread's progress counter.
struct Ctx {
    stop: AtomicBool,
    progress: Vec<Progress>,
}

impl Ctx {
    /// Times `batch` (which does `ops` operations) and returns ns per operation, or `None`
    /// when another thread made no progress meanwhile (it was descheduled: on a shared,
    /// loaded machine the batch did not measure two CPUs at once). Single-thread batches
    /// always count.
    #[inline(always)]
    fn timed(&self, me: usize, ops: u64, batch: impl FnOnce()) -> Option<f64> {
        let others = |c: &Ctx| -> u64 {
            c.progress
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != me)
                .map(|(_, p)| p.0.load(Ordering::Relaxed))
                .min()
                .unwrap_or(u64::MAX)
        };
        let before = others(self);
        let s = Instant::now();
        batch();
        let ns = s.elapsed().as_nanos() as f64 / ops as f64;
        self.progress[me].0.fetch_add(1, Ordering::Relaxed);
        let after = others(self);
        (self.progress.len() == 1 || after > before).then_some(ns)
    }
}

/// Runs `body` on `threads` pinned threads for `ms`. `body(thread, ctx)` returns the ns
/// per operation of each batch that counted ([`Ctx::timed`]); the result is the median
/// over every thread's batches, and the share of batches that counted.
fn run<F>(threads: usize, ms: u64, body: F) -> (f64, f64)
where
    F: Fn(usize, &Ctx) -> (Vec<f64>, u64) + Send + Sync + 'static,
{
    let body = Arc::new(body);
    let ctx = Arc::new(Ctx {
        stop: AtomicBool::new(false),
        progress: (0..threads).map(|_| Progress(AtomicU64::new(0))).collect(),
    });
    let go = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (body, ctx, go) = (body.clone(), ctx.clone(), go.clone());
            std::thread::spawn(move || {
                pin(t);
                go.wait();
                body(t, &ctx)
            })
        })
        .collect();
    go.wait();
    std::thread::sleep(Duration::from_millis(ms));
    ctx.stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut batches = 0;
    for h in handles {
        let (ns, n) = h.join().expect("a measuring thread panicked");
        all.extend(ns);
        batches += n;
    }
    let share = all.len() as f64 / batches.max(1) as f64;
    if all.is_empty() {
        return (f64::NAN, 0.0);
    }
    (median(all), share)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// One-way cache-line transfer between CPU 0 and CPU 1, ns (half a round trip), from
/// batches of round trips timed by CPU 0 while CPU 1 answers.
fn transfer(ms: u64) -> (f64, f64) {
    let line = Arc::new(Progress(AtomicU64::new(0)));
    run(2, ms, move |t, ctx| {
        let l = &line.0;
        let mut out = Vec::new();
        let mut batches = 0;
        let mine = t as u64;
        const TRIPS: u64 = 64;
        while !ctx.stop.load(Ordering::Relaxed) {
            if t == 0 {
                batches += 1;
                let ns = ctx.timed(t, TRIPS * 2, || {
                    for _ in 0..TRIPS {
                        // Pass the line to CPU 1 and wait for it to come back.
                        let v = l.load(Ordering::Acquire);
                        l.store(v + 1, Ordering::Release);
                        while l.load(Ordering::Acquire) & 1 != mine
                            && !ctx.stop.load(Ordering::Relaxed)
                        {
                            std::hint::spin_loop();
                        }
                    }
                });
                out.extend(ns);
            } else {
                // Answer CPU 0's passes, counting progress every 64 of them.
                let mut n = 0;
                while !ctx.stop.load(Ordering::Relaxed) {
                    let v = l.load(Ordering::Acquire);
                    if v & 1 == 1 {
                        l.store(v + 1, Ordering::Release);
                        n += 1;
                        if n % TRIPS == 0 {
                            ctx.progress[1].0.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        std::hint::spin_loop();
                    }
                }
            }
        }
        (out, batches)
    })
}

/// Raw adds into one syscall's histogram, latencies spread as a storm's: ns per add.
fn raw(layout: Layout, threads: usize, ms: u64) -> (f64, f64) {
    let base = Shared::new();
    let at = base.addr();
    let r = run(threads, ms, move |t, ctx| {
        let mut own = Vec::new();
        let h = match layout {
            Layout::Shared => at as *mut Hist,
            Layout::PerCpu => {
                own = histograms();
                own.as_mut_ptr()
            }
        }
        .wrapping_add(NR);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1));
        let (mut out, mut batches) = (Vec::new(), 0);
        while !ctx.stop.load(Ordering::Relaxed) {
            batches += 1;
            out.extend(ctx.timed(t, 1024, || {
                for _ in 0..1024 {
                    // 200–263 ns: four buckets of 16 ns, in one cache line of the histogram.
                    let lat = 200 + (rng.next() & 63);
                    add(layout, h, hist::bucket(lat), 1);
                }
            }));
        }
        drop(own);
        (out, batches)
    });
    drop(base);
    r
}

/// Sampled calls: private work of `work_iters` steps, the sampler, and the add of timed
/// calls, with the period advancing every `period_calls` calls. ns per call.
fn sampled(
    layout: Layout,
    threads: usize,
    ms: u64,
    work_iters: u64,
    period_calls: u64,
) -> (f64, f64) {
    let base = Shared::new();
    let at = base.addr();
    let r = run(threads, ms, move |t, ctx| {
        let mut own = Vec::new();
        let h = match layout {
            Layout::Shared => at as *mut Hist,
            Layout::PerCpu => {
                own = histograms();
                own.as_mut_ptr()
            }
        }
        .wrapping_add(NR);
        let mut rng = Rng(0x2545_F491_4F6C_DD1D ^ (t as u64 + 1));
        let (mut seen, mut epoch, mut calls) = (0u64, 1u64, 0u64);
        let (mut out, mut batches) = (Vec::new(), 0);
        while !ctx.stop.load(Ordering::Relaxed) {
            batches += 1;
            out.extend(ctx.timed(t, 256, || {
                for _ in 0..256 {
                    work(&mut rng, work_iters);
                    let w = sample(&mut seen, epoch);
                    if w != 0 {
                        let lat = 200 + (rng.next() & 63);
                        add(layout, h, hist::bucket(lat), w);
                    }
                    calls += 1;
                    if calls.is_multiple_of(period_calls) {
                        epoch += 1;
                    }
                }
            }));
        }
        drop(own);
        (out, batches)
    });
    drop(base);
    r
}

/// Mean-value analysis of a closed system: `n` CPUs, each spending `z` ns between two
/// visits to one cache line (think time), the line serving one visit at a time in `d` ns.
/// Returns (response time per visit, ns; utilisation of the line).
fn mva(n: u64, z: f64, d: f64) -> (f64, f64) {
    let mut q = 0.0;
    let (mut r, mut x) = (d, 0.0);
    for k in 1..=n {
        r = d * (1.0 + q);
        x = k as f64 / (z + r);
        q = x * r;
    }
    (r, x * d)
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("kerno-contention: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // Median over runs of each run's median; the lowest share of batches that counted.
    let rep = |f: &dyn Fn() -> (f64, f64)| {
        let runs: Vec<(f64, f64)> = (0..o.reps).map(|_| f()).collect();
        let share = runs.iter().map(|r| r.1).fold(1.0, f64::min);
        (median(runs.iter().map(|r| r.0).collect()), share)
    };
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "kerno-contention: {cpus} CPUs, {} ms per measurement, median of {} runs",
        o.ms, o.reps
    );

    // Calibrate the private work so one call is about --work-ns without any add.
    let probe_iters = 64;
    let (per_call, _) = rep(&|| {
        run(1, o.ms, move |t, ctx| {
            let mut rng = Rng(7);
            let (mut out, mut batches) = (Vec::new(), 0);
            while !ctx.stop.load(Ordering::Relaxed) {
                batches += 1;
                out.extend(ctx.timed(t, 256, || {
                    for _ in 0..256 {
                        work(&mut rng, probe_iters);
                    }
                }));
            }
            (out, batches)
        })
    });
    let per_iter = per_call / probe_iters as f64;
    let work_iters = ((o.work_ns / per_iter).round() as u64).max(1);

    let (t_x, tx_share) = if cpus >= 2 {
        rep(&|| transfer(o.ms))
    } else {
        (f64::NAN, 0.0)
    };
    println!();
    println!("Each figure: median over batches in which every other thread made progress too");
    println!("(share of batches that counted, lowest over runs, in brackets).");
    println!();
    println!("| measured | ns |");
    println!("|---|---|");
    println!(
        "| cache-line transfer CPU 0 <-> CPU 1 (one way, ping-pong / 2) | {t_x:.1} ({:.0} %) |",
        tx_share * 100.0
    );

    println!();
    println!(
        "| raw adds into one syscall's histogram, ns per add per thread | threads | shared (`lock xadd`) | per-CPU (plain add) |"
    );
    println!("|---|---|---|---|");
    let mut raw_shared = Vec::new();
    let mut raw_pcpu = Vec::new();
    for &t in &o.threads {
        let (s, ss) = rep(&|| raw(Layout::Shared, t, o.ms));
        let (p, ps) = rep(&|| raw(Layout::PerCpu, t, o.ms));
        println!(
            "| | {t} | {s:.2} ({:.0} %) | {p:.2} ({:.0} %) |",
            ss * 100.0,
            ps * 100.0
        );
        raw_shared.push(s);
        raw_pcpu.push(p);
    }

    // Calls per period: the sampler's period is ~1.07 s; at --work-ns per call a CPU makes
    // this many calls in one.
    let period_calls = ((1u64 << sampling::EPOCH_SHIFT) as f64 / o.work_ns) as u64;
    println!();
    println!(
        "| sampled storm of one syscall (~{:.0} ns of work per call), ns per call per thread | threads | shared | per-CPU | shared - per-CPU |",
        o.work_ns
    );
    println!("|---|---|---|---|---|");
    for &t in &o.threads {
        let (s, ss) = rep(&|| sampled(Layout::Shared, t, o.ms, work_iters, period_calls));
        let (p, ps) = rep(&|| sampled(Layout::PerCpu, t, o.ms, work_iters, period_calls));
        println!(
            "| | {t} | {s:.1} ({:.0} %) | {p:.1} ({:.0} %) | {:+.2} |",
            ss * 100.0,
            ps * 100.0,
            s - p
        );
    }

    // The model. One CPU in a storm of one syscall at `--work-ns` per call adds to the
    // histogram once per EVERY calls (beyond the first FULL of a period): think time
    // z = EVERY * work between two visits to the hot line. A failed-call storm of one
    // process adds to its PROC_SYSCALLS entry on every call (errors are not sampled):
    // z = work.
    let t_local = raw_pcpu.first().copied().unwrap_or(f64::NAN);
    let t_atomic_1 = raw_shared.first().copied().unwrap_or(f64::NAN);
    println!();
    println!(
        "Model (mean-value analysis, closed system: N CPUs, one hot line, service time s = scale x t_x):"
    );
    println!();
    println!(
        "| pattern | t_x scale | N CPUs | line utilisation | ns per visit | added ns per call (vs 1 CPU) |"
    );
    println!("|---|---|---|---|---|---|");
    let patterns = [
        (
            "timed storm into SYSCALL_HIST (1 add per 64 calls)",
            sampling::EVERY as f64,
        ),
        (
            "failed-call storm of one process into PROC_SYSCALLS (1 add per call)",
            1.0,
        ),
    ];
    for (name, every) in patterns {
        for &scale in &o.transfer_scale {
            let d = t_x * scale;
            for &n in &o.model_cpus {
                let z = every * o.work_ns;
                let (r, u) = mva(n, z, d);
                let added = (r - t_atomic_1).max(0.0) / every;
                println!(
                    "| {name} | {scale} | {n} | {:.0} % | {r:.0} | {added:+.1} |",
                    u * 100.0
                );
            }
        }
    }
    println!();
    println!(
        "(t_local, a plain add on one CPU: {t_local:.2} ns; one uncontended lock xadd: {t_atomic_1:.2} ns)"
    );
    ExitCode::SUCCESS
}
