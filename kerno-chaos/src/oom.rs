//! `oom`: processes that allocate past their cgroup's memory limit and are OOM-killed.

use std::time::{Duration, Instant};

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    sys::{WorkerSpec, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "oom",
    rules: &["oom-kill"],
    summary: "A supervisor starts, one after another, processes in a cgroup limited to 64 MiB \
that touch memory until the kernel's OOM killer kills them (each kill is a real OOM kill, \
counted in /proc/vmstat oom_kill and the cgroup's memory.oom_control).",
    intensities: "low: one kill every 10 s, medium: every 3 s, high: every second.",
    induce: start,
};

/// The cgroup's limit.
pub(crate) const LIMIT: u64 = 64 << 20;

/// Time between kills.
pub(crate) fn interval(o: &ChaosOptions) -> Duration {
    o.intensity.pick(
        Duration::from_secs(10),
        Duration::from_secs(3),
        Duration::from_secs(1),
    )
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let cg = ScenarioCgroup::with_memory_limit(LIMIT)?;
    r.cgroup = Some(cg.path());
    let hog = WorkerSpec {
        comm: "kchaos-oom".into(),
        cgroup_procs: cg.procs_files(),
        oom_score_adj: Some(1000),
        ..WorkerSpec::default()
    };
    // The supervisor stays outside the limited cgroup, so the cgroup's OOM killer can only
    // pick the hog.
    let supervisor = WorkerSpec {
        comm: "kchaos-oom-sup".into(),
        ..WorkerSpec::default()
    };
    r.guard(cg);
    let every = interval(o);
    let start_after = o.start_after;
    r.workload(spawn(&supervisor, move |ready| {
        ready.ok();
        std::thread::sleep(start_after);
        loop {
            let t0 = Instant::now();
            if let Ok(w) = spawn(&hog, |ready| {
                ready.ok();
                let chunk = 1usize << 20;
                // Allocate and touch far past the limit; the OOM killer ends this.
                for _ in 0..(4 * LIMIT as usize / chunk) {
                    let mut v = vec![0u8; chunk];
                    for i in (0..chunk).step_by(4096) {
                        v[i] = 1;
                    }
                    std::mem::forget(std::hint::black_box(v));
                }
                0
            }) {
                w.wait();
            }
            std::thread::sleep(every.saturating_sub(t0.elapsed()));
        }
    })?);
    r.note(format!(
        "cgroup {} limited to {} MiB; a supervisor (the pid listed) starts a process in it every {} s that allocates until the OOM killer kills it",
        r.cgroup.as_deref().unwrap_or("?"),
        LIMIT >> 20,
        every.as_secs()
    ));
    Ok(r)
}
