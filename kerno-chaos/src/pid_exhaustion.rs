//! `pid-exhaustion`: a pids cgroup at its limit, its process forking into it.

use std::time::Duration;

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    sys::{Pace, WorkerSpec, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "pid-exhaustion",
    rules: &["pid-exhaustion"],
    summary: "A process in a cgroup whose pids.max is 64 forks sleeping children until the \
cgroup is nearly or completely full, then keeps calling fork(), which the kernel refuses with \
EAGAIN (counted in pids.events `max`).",
    intensities: "low: 59 of 64 tasks (92%), no fork attempted past that (warning); medium: \
64 of 64 and 10 refused forks a second; high: 64 of 64 and 100 refused forks a second \
(both critical).",
    induce: start,
};

/// The cgroup's `pids.max`.
pub(crate) const LIMIT: u64 = 64;

/// (tasks to fill, refused forks attempted per second once full).
pub(crate) fn plan(o: &ChaosOptions) -> (u64, f64) {
    o.intensity.pick((59, 0.0), (LIMIT, 10.0), (LIMIT, 100.0))
}

/// Fork a child that sleeps until its parent dies; false when the kernel refused.
fn fork_sleeper() -> bool {
    // SAFETY: fork from the single-threaded worker; the child only calls async-signal-safe
    // functions and never returns.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: in the child: plain syscalls.
        unsafe {
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            loop {
                libc::pause();
            }
        }
    }
    pid > 0
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let cg = ScenarioCgroup::with_pids_limit(LIMIT)?;
    r.cgroup = Some(cg.path());
    let current = cg
        .pids_dir()
        .map(|d| d.join("pids.current"))
        .ok_or_else(|| ChaosError::Unsupported("no pids cgroup".into()))?;
    let spec = WorkerSpec {
        comm: "kchaos-forker".into(),
        cgroup_procs: cg.procs_files(),
        ..WorkerSpec::default()
    };
    r.guard(cg);
    let (fill, per_sec) = plan(o);
    let start_after = o.start_after;
    r.workload(spawn(&spec, move |ready| {
        ready.ok();
        std::thread::sleep(start_after);
        let in_use = || {
            std::fs::read_to_string(&current)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .unwrap_or(u64::MAX)
        };
        // Fill up to the plan (the worker itself is one task).
        while in_use() < fill {
            if !fork_sleeper() {
                break;
            }
        }
        if per_sec <= 0.0 {
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        let mut pace = Pace::per_sec(per_sec);
        loop {
            pace.wait();
            // At the limit: refused (EAGAIN). Should a child have died, this one takes its
            // place and the cgroup stays full.
            fork_sleeper();
        }
    })?);
    r.note(format!(
        "cgroup {} with pids.max {LIMIT}: filled to {fill} tasks{}",
        r.cgroup.as_deref().unwrap_or("?"),
        if per_sec > 0.0 {
            format!(", then {per_sec} fork attempts a second, refused at the limit")
        } else {
            String::new()
        }
    ));
    Ok(r)
}
