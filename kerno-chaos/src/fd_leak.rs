//! `fd-leak`: a process that opens descriptors and never closes them.

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    sys::{Pace, WorkerSpec, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "fd-leak",
    rules: &["fd-leak"],
    summary: "A process opens /dev/null at a steady rate and never closes it, with a soft \
RLIMIT_NOFILE of 65536 (or the hard limit, when lower), so its descriptor count climbs \
towards the limit and the time to EMFILE can be told.",
    intensities: "low: 20 descriptors/s, medium: 60/s, high: 200/s (with a 65536 limit: \
EMFILE in ~55 min, ~18 min and ~5.5 min, the last inside the critical ETA; with a 20000 \
limit: ~17 min, ~6 min, ~100 s).",
    induce: start,
};

/// The leaking worker's soft (and hard) descriptor limit.
pub(crate) const NOFILE: u64 = 65536;

/// Descriptors leaked per second.
pub(crate) fn rate(o: &ChaosOptions) -> f64 {
    o.intensity.pick(20.0, 60.0, 200.0)
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let cg = ScenarioCgroup::new()?;
    r.cgroup = Some(cg.path());
    let spec = WorkerSpec {
        comm: "kchaos-fdleak".into(),
        cgroup_procs: cg.procs_files(),
        nofile: Some(NOFILE),
        ..WorkerSpec::default()
    };
    r.guard(cg);
    let per_sec = rate(o);
    let start_after = o.start_after;
    r.workload(spawn(&spec, move |ready| {
        ready.ok();
        std::thread::sleep(start_after);
        let mut pace = Pace::per_sec(per_sec);
        loop {
            pace.wait();
            // Leaked on purpose: the descriptor is never closed.
            // SAFETY: open with a static path.
            unsafe { libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY) };
        }
    })?);
    r.note(format!(
        "one process opening /dev/null {per_sec}/s without closing, soft RLIMIT_NOFILE {}",
        NOFILE.min(super::sys::nofile_hard())
    ));
    Ok(r)
}
