//! `io-throttle`: a process reading a block device through a cgroup whose reads from that
//! device are throttled (cgroup v1 `blkio.throttle.read_bps_device`, v2 `io.max`): it waits
//! for I/O nearly all the time, whatever the device could do.

use std::{os::unix::fs::OpenOptionsExt as _, path::PathBuf};

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    fsguard::TempDir,
    loopdev::LoopDevice,
    sys::{WorkerSpec, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "io-throttle",
    rules: &["io-pressure"],
    summary: "A loop device over a 64 MiB file, and a process in a cgroup whose reads from \
it are throttled, reading it with O_DIRECT in 64 KiB requests: each read waits in the \
throttle, so the cgroup's only task is blocked on I/O nearly all of the window.",
    intensities: "low: reads throttled to 4 MiB/s (~16 ms a read), medium: 1 MiB/s (~62 ms), \
high: 256 KiB/s (~250 ms, slow syscalls too). At medium the cgroup's io.pressure full \
measured 50-52% (2 CPUs, Linux 6.18), above the io-pressure rule's critical 30%.",
    induce: start,
};

const SIZE: u64 = 64 << 20;
const CHUNK: usize = 64 << 10;

pub(crate) fn read_bps(o: &ChaosOptions) -> u64 {
    o.intensity.pick(4 << 20, 1 << 20, 256 << 10)
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let dir = TempDir::new()?;
    let backing = dir.subdir("backing")?.join("disk.img");
    let f = std::fs::File::create(&backing)
        .map_err(|e| ChaosError::io(format!("creating {}", backing.display()), e))?;
    f.set_len(SIZE)
        .map_err(|e| ChaosError::io(format!("sizing {}", backing.display()), e))?;
    drop(f);
    // Removed last (guards drop in reverse order): workers, cgroup, device, then the file.
    r.guard(dir);
    let dev = LoopDevice::attach(&backing)?;
    let (ma, mi) = dev.dev();
    let path: PathBuf = dev.path().to_path_buf();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    r.devices.push(name.clone());
    r.guard(dev);
    let bps = read_bps(o);
    let cg = ScenarioCgroup::with_read_bps((ma, mi), bps)?;
    r.cgroup = Some(cg.path());
    let spec = WorkerSpec {
        comm: "kchaos-ioread".into(),
        cgroup_procs: cg.procs_files(),
        ..WorkerSpec::default()
    };
    r.guard(cg);
    let start_after = o.start_after;
    let dev_path = path.clone();
    r.workload(spawn(&spec, move |ready| {
        let f = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECT)
            .open(&dev_path)
        {
            Ok(f) => f,
            Err(e) => {
                ready.fail(&format!(
                    "opening {} with O_DIRECT: {e}",
                    dev_path.display()
                ));
                return 1;
            }
        };
        let layout = std::alloc::Layout::from_size_align(CHUNK, 4096).expect("layout");
        // SAFETY: a non-zero-sized layout; the buffer lives as long as the loop.
        let buf = unsafe { std::alloc::alloc_zeroed(layout) };
        if buf.is_null() {
            ready.fail("allocating an aligned buffer");
            return 1;
        }
        ready.ok();
        std::thread::sleep(start_after);
        use std::os::fd::AsRawFd as _;
        let mut off: u64 = 0;
        loop {
            // SAFETY: reading into our aligned buffer of CHUNK bytes.
            let n = unsafe { libc::pread(f.as_raw_fd(), buf.cast(), CHUNK, off as libc::off_t) };
            if n <= 0 {
                off = 0;
                continue;
            }
            off = (off + CHUNK as u64) % SIZE;
        }
    })?);
    r.note(format!(
        "{} ({ma}:{mi}), a loop device over a sparse {} MiB file; cgroup {} may read it at {} KiB/s; its process reads it with O_DIRECT, {} KiB at a time",
        path.display(),
        SIZE >> 20,
        r.cgroup.as_deref().unwrap_or("?"),
        bps >> 10,
        CHUNK >> 10
    ));
    Ok(r)
}
