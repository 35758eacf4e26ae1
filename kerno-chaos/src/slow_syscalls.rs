//! `slow-syscalls`: `stat` and `statfs` on a filesystem that takes its time to answer.

use std::{ffi::CString, os::unix::ffi::OsStrExt as _, time::Duration};

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    fuse::SlowFs,
    sys::{WorkerSpec, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "slow-syscalls",
    rules: &["syscall-latency"],
    summary: "Processes stat() a file and statfs() the filesystem it lives on, over and over; \
the filesystem is a FUSE mount whose lookups, getattrs and statfs each wait before \
answering (like a hung network filesystem), so those syscalls really block.",
    intensities: "low: 150 ms per request (statfs p99 ~165 ms, stat twice that), medium: 300 \
ms (~310 ms), high: 800 ms (critical); 8 processes at every level.",
    induce: start,
};

/// The filesystem's delay per metadata request.
pub(crate) fn delay(o: &ChaosOptions) -> Duration {
    Duration::from_millis(o.intensity.pick(150, 300, 800))
}

/// Processes calling.
const WORKERS: usize = 8;

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let fs = SlowFs::new(1 << 20)?;
    fs.set_meta_delay(delay(o));
    r.helper_pids.push(fs.server_pid());
    r.mounts.push(fs.mountpoint().to_path_buf());
    let mnt = CString::new(fs.mountpoint().as_os_str().as_bytes()).unwrap_or_default();
    let file = CString::new(fs.slow_file().as_os_str().as_bytes()).unwrap_or_default();
    r.note(format!(
        "a FUSE filesystem at {} answering every lookup, getattr and statfs after {} ms",
        fs.mountpoint().display(),
        delay(o).as_millis()
    ));
    r.guard(fs);
    let cg = ScenarioCgroup::new()?;
    r.cgroup = Some(cg.path());
    let spec = WorkerSpec {
        comm: "kchaos-slow".into(),
        cgroup_procs: cg.procs_files(),
        ..WorkerSpec::default()
    };
    r.guard(cg);
    let start_after = o.start_after;
    for _ in 0..WORKERS {
        let (mnt, file) = (mnt.clone(), file.clone());
        r.workload(spawn(&spec, move |ready| {
            ready.ok();
            std::thread::sleep(start_after);
            loop {
                // SAFETY: stat/statfs into zeroed buffers with valid paths.
                unsafe {
                    let mut st: libc::stat = std::mem::zeroed();
                    libc::stat(file.as_ptr(), &mut st);
                    let mut sf: libc::statfs = std::mem::zeroed();
                    libc::statfs(mnt.as_ptr(), &mut sf);
                }
            }
        })?);
    }
    r.note(format!(
        "{WORKERS} processes stat() and statfs() it in a loop"
    ));
    Ok(r)
}
