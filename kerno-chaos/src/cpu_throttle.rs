//! `cpu-throttle`: busy spinners in a cgroup with a small CPU limit on an otherwise idle
//! machine: the CFS quota, not a lack of CPUs, stops them in nearly every period.

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    sys::{WorkerSpec, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "cpu-throttle",
    rules: &["cpu-throttling"],
    summary: "Busy-spinning processes in a cgroup limited to a fraction of one CPU (a CFS \
quota: cgroup v1 `cpu.cfs_quota_us`, or v2 `cpu.max`): they use up the quota early in each \
100 ms period and are stopped until the next, while the machine's CPUs stay mostly idle.",
    intensities: "low: 1 spinner at a 50% quota, medium: 1 at 20%, high: 2 at 20%. Each is \
throttled in nearly every period (measured: 100 of 100 periods at medium, ~8 s of the 10 s \
window throttled).",
    induce: start,
};

/// The CFS period, µs (the kernel's and the kubelet's default).
const PERIOD_US: u64 = 100_000;

/// (spinners, quota in µs per period).
pub(crate) fn plan(o: &ChaosOptions) -> (usize, u64) {
    o.intensity.pick((1, 50_000), (1, 20_000), (2, 20_000))
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let (n, quota) = plan(o);
    let cg = ScenarioCgroup::with_cpu_quota(quota, PERIOD_US)?;
    r.cgroup = Some(cg.path());
    let spec = WorkerSpec {
        comm: "kchaos-throttle".into(),
        cgroup_procs: cg.procs_files(),
        ..WorkerSpec::default()
    };
    r.guard(cg);
    let start_after = o.start_after;
    for _ in 0..n {
        r.workload(spawn(&spec, move |ready| {
            ready.ok();
            std::thread::sleep(start_after);
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        })?);
    }
    r.note(format!(
        "cgroup {} limited to {} µs of CPU every {} µs ({:.2} CPU); {n} busy-spinning process(es) in it",
        r.cgroup.as_deref().unwrap_or("?"),
        quota,
        PERIOD_US,
        quota as f64 / PERIOD_US as f64
    ));
    Ok(r)
}
