//! `cpu`: more runnable processes than CPUs, so every one of them queues for a CPU.

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    sys::{WorkerSpec, cpus, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "cpu",
    rules: &["sched-contention"],
    summary: "Busy-spinning processes, several per CPU: each one is preempted at the end of \
its time slice and waits on the run queue while the others run (every other task on the \
machine waits too).",
    intensities: "low: 2 spinners per CPU (run-queue delay p99 ~10 ms, warning), medium: 4 \
(~20-25 ms, critical), high: 12 (~90-120 ms). The spinners run at nice 10 so an observer \
still gets CPU time.",
    induce: start,
};

/// The spinners' nice value.
const NICE: libc::c_int = 10;

/// Spinners per CPU at each level.
pub(crate) fn spinners_per_cpu(o: &ChaosOptions) -> usize {
    o.intensity.pick(2, 4, 12)
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let cg = ScenarioCgroup::new()?;
    r.cgroup = Some(cg.path());
    let spec = WorkerSpec {
        comm: "kchaos-cpu".into(),
        cgroup_procs: cg.procs_files(),
        ..WorkerSpec::default()
    };
    r.guard(cg);
    let n = spinners_per_cpu(o) * cpus();
    let start_after = o.start_after;
    for _ in 0..n {
        r.workload(spawn(&spec, move |ready| {
            // Niced, so an observer (`kerno doctor`) still gets a fair share of the CPUs
            // while the spinners queue behind each other.
            // SAFETY: setpriority on this process.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, NICE) };
            ready.ok();
            std::thread::sleep(start_after);
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        })?);
    }
    r.note(format!(
        "{n} busy-spinning processes (nice {NICE}) on {} CPUs ({} per CPU)",
        cpus(),
        spinners_per_cpu(o)
    ));
    Ok(r)
}
