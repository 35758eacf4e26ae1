//! `disk-sat`: fsync-heavy writers on a block device that is slow to answer.

use std::{io::Write as _, os::unix::fs::FileExt as _, time::Duration};

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    device::SlowDevice,
    sys::{WorkerSpec, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "disk-sat",
    rules: &["disk-io"],
    summary: "Processes write 64 KiB and fsync() in a loop on an ext4 filesystem whose block \
device (a loop device over a file on a FUSE filesystem) takes a fixed time per request, one \
request at a time: fsync waits for the data, the journal and the flush, and the writers \
queue behind each other, like a saturated disk.",
    intensities: "low: 12 ms per request, 1 writer (fsync p99 ~60-100 ms), medium: 20 ms, 2 \
writers (fsync p99 ~150-190 ms), high: 60 ms, 3 writers (fsync p99 ~500 ms, device write p99 \
~250 ms: critical).",
    induce: start,
};

/// (per-request delay, writers).
pub(crate) fn plan(o: &ChaosOptions) -> (Duration, usize) {
    o.intensity.pick(
        (Duration::from_millis(12), 1),
        (Duration::from_millis(20), 2),
        (Duration::from_millis(60), 3),
    )
}

/// Each writer's file.
const FILE_SIZE: u64 = 8 << 20;
const CHUNK: usize = 64 << 10;

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let (delay, writers) = plan(o);
    let dev = SlowDevice::with_ext4(128 << 20, Duration::ZERO)?;
    let mnt = dev
        .mountpoint()
        .map(|p| p.to_path_buf())
        .ok_or_else(|| ChaosError::Unsupported("ext4 was not mounted".into()))?;
    let mut files = Vec::new();
    for i in 0..writers {
        let path = mnt.join(format!("writer-{i}"));
        let mut f = std::fs::File::create(&path)
            .map_err(|e| ChaosError::io(format!("creating {}", path.display()), e))?;
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..FILE_SIZE >> 20 {
            f.write_all(&zeros)
                .map_err(|e| ChaosError::io(format!("writing {}", path.display()), e))?;
        }
        f.sync_all()
            .map_err(|e| ChaosError::io(format!("syncing {}", path.display()), e))?;
        files.push(path);
    }
    dev.set_delay(delay);
    r.device(dev);
    let cg = ScenarioCgroup::new()?;
    r.cgroup = Some(cg.path());
    let spec = WorkerSpec {
        comm: "kchaos-fsync".into(),
        cgroup_procs: cg.procs_files(),
        ..WorkerSpec::default()
    };
    r.guard(cg);
    let start_after = o.start_after;
    for path in files {
        r.workload(spawn(&spec, move |ready| {
            let f = match std::fs::OpenOptions::new().write(true).open(&path) {
                Ok(f) => f,
                Err(e) => {
                    ready.fail(&format!("opening {}: {e}", path.display()));
                    return 1;
                }
            };
            ready.ok();
            std::thread::sleep(start_after);
            let buf = vec![0xa5u8; CHUNK];
            let chunks = FILE_SIZE / CHUNK as u64;
            let mut i: u64 = std::process::id() as u64;
            loop {
                // A cheap scramble so writes land all over the file.
                i = i
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let off = ((i >> 33) % chunks) * CHUNK as u64;
                let _ = f.write_all_at(&buf, off);
                let _ = f.sync_all();
            }
        })?);
    }
    r.note(format!(
        "{writers} process(es) writing 64 KiB + fsync() in a loop on ext4 at {}",
        mnt.display()
    ));
    Ok(r)
}
