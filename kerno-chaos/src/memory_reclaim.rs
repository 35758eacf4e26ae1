//! `memory-reclaim`: a process writing a file through the page cache in a small
//! memory-limited cgroup: every page it dirties must first be reclaimed from its own
//! cache, which waits for the disk to write back the pages before it.

use std::os::unix::fs::FileExt as _;

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    fsguard::TempDir,
    sys::{WorkerSpec, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "memory-reclaim",
    rules: &["memory-reclaim-stall"],
    summary: "A process in a memory-limited cgroup (no swap) writes a file through the page \
cache without end: at the limit each new page waits in reclaim for dirty and writeback pages \
of its own to be written out (cgroup v1 reclaim waits on writeback), so the cgroup's tasks \
stall on memory most of the time.",
    intensities: "low: a 192 MiB limit, medium: 96 MiB, high: 64 MiB; 1 MiB writes, the \
file wrapping at 512 MiB (measured at medium: memory full ~36% of the window in its v2 \
cgroup's memory.pressure).",
    induce: start,
};

/// The file wraps at this size, so the disk use stays bounded.
const WRAP: u64 = 512 << 20;
const TMPFS_MAGIC: i64 = 0x0102_1994;

pub(crate) fn limit(o: &ChaosOptions) -> u64 {
    o.intensity.pick(192 << 20, 96 << 20, 64 << 20)
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let dir = TempDir::new()?;
    let data = dir.subdir("data")?;
    // A file on tmpfs is memory that cannot be reclaimed without swap: the cgroup would be
    // OOM-killed instead of reclaiming.
    let c = std::ffi::CString::new(data.as_os_str().as_encoded_bytes()).unwrap_or_default();
    // SAFETY: statfs fills the struct for a NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } == 0 && st.f_type as i64 == TMPFS_MAGIC {
        return Err(ChaosError::Unsupported(format!(
            "{} is on tmpfs: page cache there cannot be written back (set TMPDIR to a disk)",
            data.display()
        )));
    }
    let file = data.join("pages");
    // Removed last: guards drop in reverse order, workers and cgroup first.
    r.guard(dir);
    let cg = ScenarioCgroup::with_memory_limit(limit(o))?;
    r.cgroup = Some(cg.path());
    let spec = WorkerSpec {
        comm: "kchaos-reclaim".into(),
        cgroup_procs: cg.procs_files(),
        ..WorkerSpec::default()
    };
    r.guard(cg);
    let start_after = o.start_after;
    let path = file.clone();
    r.workload(spawn(&spec, move |ready| {
        let f = match std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .read(true)
            .write(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) => {
                ready.fail(&format!("creating {}: {e}", path.display()));
                return 1;
            }
        };
        ready.ok();
        std::thread::sleep(start_after);
        let block = vec![0x5au8; 1 << 20];
        let mut off = 0u64;
        loop {
            if f.write_all_at(&block, off).is_err() {
                off = 0;
                continue;
            }
            off = (off + block.len() as u64) % WRAP;
        }
    })?);
    r.note(format!(
        "cgroup {} limited to {} MiB without swap; its process writes {} through the page cache, wrapping at {} MiB",
        r.cgroup.as_deref().unwrap_or("?"),
        limit(o) >> 20,
        file.display(),
        WRAP >> 20
    ));
    Ok(r)
}
