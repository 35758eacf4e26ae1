//! `filesystem-full`: a small loop-mounted ext4 filesystem filling up.

use std::{
    io::Write as _,
    time::{Duration, Instant},
};

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    fsguard::{Mount, TempDir},
    loopdev::LoopDevice,
    sys::{WorkerSpec, run, spawn},
};
use kerno_core::procfs;

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "filesystem-full",
    rules: &["filesystem-full"],
    summary: "A 64 MiB ext4 filesystem on a loop device over a file in a temporary directory \
is filled by a process writing one file, to over 90% of its space, and then keeps growing \
slowly (never past 99%).",
    intensities: "low: 91%, flat (warning); medium: 93%, then +0.01% of the size a second \
(~7 KiB/s, full in ~11 min: warning); high: 96%, then +0.1%/s (~65 KiB/s, full in ~30 s: \
critical).",
    induce: start,
};

/// The filesystem's size.
pub(crate) const SIZE: u64 = 64 << 20;
/// Growth stops at this share used.
const CAP: f64 = 0.99;

/// (start share used, growth in shares of the size per second).
pub(crate) fn plan(o: &ChaosOptions) -> (f64, f64) {
    o.intensity.pick((0.91, 0.0), (0.93, 0.0001), (0.96, 0.001))
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let dir = TempDir::new()?;
    let image = dir.subdir("img")?.join("fs.img");
    std::fs::File::create(&image)
        .and_then(|f| f.set_len(SIZE))
        .map_err(|e| ChaosError::io(format!("creating {}", image.display()), e))?;
    let at = dir.subdir("fs")?;
    r.guard(dir);
    let dev = LoopDevice::attach(&image)?;
    let devpath = dev.path().to_string_lossy().into_owned();
    let name = devpath.trim_start_matches("/dev/").to_string();
    let (ma, mi) = dev.dev();
    r.guard(dev);
    run(
        "mkfs.ext4",
        &[
            "-q",
            "-F",
            "-m",
            "0",
            "-E",
            "nodiscard,lazy_itable_init=0,lazy_journal_init=0",
            &devpath,
        ],
        None,
    )?;
    let mount = Mount::new(&devpath, &at, "ext4", 0, "")?;
    r.devices.push(name.clone());
    r.mounts.push(mount.target().to_path_buf());
    r.guard(mount);
    let cg = ScenarioCgroup::new()?;
    r.cgroup = Some(cg.path());
    let spec = WorkerSpec {
        comm: "kchaos-fsfill".into(),
        cgroup_procs: cg.procs_files(),
        ..WorkerSpec::default()
    };
    r.guard(cg);
    let (share, growth) = plan(o);
    let start_after = o.start_after;
    let mountpoint = at.clone();
    r.workload(spawn(&spec, move |ready| {
        let file = mountpoint.join("fill");
        let mut f = match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&file)
        {
            Ok(f) => f,
            Err(_) => {
                ready.fail("creating the file to fill");
                return 1;
            }
        };
        ready.ok();
        std::thread::sleep(start_after);
        let used = || {
            procfs::statvfs(&mountpoint)
                .map(|s| 1.0 - s.avail as f64 / s.size.max(1) as f64)
                .unwrap_or(1.0)
        };
        let size = procfs::statvfs(&mountpoint).map(|s| s.size).unwrap_or(SIZE);
        let chunk = vec![0x5au8; 1 << 20];
        let t0 = Instant::now();
        loop {
            let want = (share + growth * t0.elapsed().as_secs_f64()).min(CAP);
            // Write in steps of at most 1 MiB and re-read the filesystem's own count
            // (metadata and all), so the worker never overshoots its plan.
            loop {
                let u = used();
                if u >= want {
                    break;
                }
                let n = (((want - u) * size as f64) as usize).clamp(4096, chunk.len());
                // No fsync: ext4 counts delayed allocations as used at once, and a sync per
                // write would make this a slow-disk incident too (the loop device's file
                // lives on the root disk).
                if f.write_all(&chunk[..n]).is_err() {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })?);
    r.note(format!(
        "{devpath} ({ma}:{mi}): a {} MiB ext4 filesystem mounted on {}; its process fills {:.0}% at once{}",
        SIZE >> 20,
        at.display(),
        share * 100.0,
        if growth > 0.0 {
            format!(
                ", then {:.2}% of the size a second, up to {:.0}%",
                growth * 100.0,
                CAP * 100.0
            )
        } else {
            String::new()
        }
    ));
    Ok(r)
}
