//! `memory`: a memory-limited cgroup filling up, slowly, towards its limit.

use std::time::{Duration, Instant};

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    sys::{WorkerSpec, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "memory",
    rules: &["memory-pressure", "oom-imminent"],
    summary: "A process in a cgroup limited to 512 MiB touches anonymous memory up to over 90% \
of the limit, then keeps growing slowly (never past 98.5%, so it is not OOM-killed).",
    intensities: "low: starts at 91%, grows 0.02% of the limit a second (~100 KiB/s; the \
limit in ~7.5 min), medium: 93%, 0.02%/s (~6 min), high: 95%, 0.1%/s (~50 s, critical).",
    induce: start,
};

/// The cgroup's limit.
pub(crate) const LIMIT: u64 = 512 << 20;
/// Growth stops at this share of the limit.
const CAP: f64 = 0.985;

/// (start share of the limit, growth in shares of the limit per second).
pub(crate) fn plan(o: &ChaosOptions) -> (f64, f64) {
    o.intensity
        .pick((0.91, 0.0002), (0.93, 0.0002), (0.95, 0.001))
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let cg = ScenarioCgroup::with_memory_limit(LIMIT)?;
    r.cgroup = Some(cg.path());
    let usage_file = cg
        .usage_file()
        .ok_or_else(|| ChaosError::Unsupported("no memory cgroup".into()))?;
    let spec = WorkerSpec {
        comm: "kchaos-mem".into(),
        cgroup_procs: cg.procs_files(),
        ..WorkerSpec::default()
    };
    r.guard(cg);
    let (share, growth) = plan(o);
    let start_after = o.start_after;
    r.workload(spawn(&spec, move |ready| {
        // SAFETY: a private anonymous mapping the size of the limit, touched gradually.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LIMIT as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            ready.fail("mapping memory");
            return 1;
        }
        ready.ok();
        std::thread::sleep(start_after);
        let t0 = Instant::now();
        let mut touched: usize = 0;
        let read_usage = || {
            std::fs::read_to_string(&usage_file)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        };
        loop {
            let want = (share + growth * t0.elapsed().as_secs_f64()).min(CAP);
            let target = (LIMIT as f64 * want) as u64;
            // Step by at most 4 MiB and re-read the cgroup's own count (page tables and
            // all), so the worker never overshoots its plan.
            loop {
                let usage = read_usage();
                if usage >= target || touched >= LIMIT as usize {
                    break;
                }
                let add = ((target - usage) as usize).min(4 << 20);
                let end = (touched + add).min(LIMIT as usize);
                let mut p = touched;
                while p < end {
                    // SAFETY: p is inside the mapping.
                    unsafe { base.cast::<u8>().add(p).write_volatile(1) };
                    p += 4096;
                }
                touched = end;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })?);
    r.note(format!(
        "cgroup {} limited to {} MiB; its process fills {:.0}% at once, then grows {:.3}% of the limit a second up to {:.1}%",
        r.cgroup.as_deref().unwrap_or("?"),
        LIMIT >> 20,
        share * 100.0,
        growth * 100.0,
        CAP * 100.0
    ));
    Ok(r)
}
