//! Stale cleanup: remove what an earlier run that crashed (or was SIGKILLed) left behind.
//!
//! Everything a scenario creates carries its owner's pid in its name
//! (`kerno-chaos-<pid>-<n>`); an object whose owner no longer runs is stale. Workers die
//! with their owner (`PR_SET_PDEATHSIG`), namespaces take their firewall rules and qdiscs
//! with them, loop devices detach themselves once unmounted (autoclear): what is left to
//! remove is named here.

use std::path::PathBuf;

use super::{
    ChaosError,
    cgroup::remove_cgroup_dir,
    fsguard::{mount_points, mounts, mounts_below, unmount},
    loopdev::detach,
    sys::{PREFIX, clean_stale_locks, owner_gone, read_pids, run},
};

/// Remove every `kerno-chaos-*` object (network namespace, cgroup, mount, loop device,
/// temporary directory) whose owning process is gone, and put back an `nf_conntrack_max` a
/// crashed `conntrack-full` lowered. Objects of running owners (another
/// `kerno chaos`, a test) are left alone. Returns what was removed; fails with
/// [`ChaosError::Teardown`] naming what could not be.
pub fn clean_stale() -> Result<Vec<String>, ChaosError> {
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    let stale = |name: &str| name.contains(PREFIX) && owner_gone(name);

    // Network namespaces (with their veths, nftables rules and qdiscs).
    if let Ok(dir) = std::fs::read_dir("/run/netns") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(PREFIX) || !stale(&name) {
                continue;
            }
            if let Ok(out) = run("ip", &["netns", "pids", &name], None) {
                for pid in out.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                    // SAFETY: killing a stale worker left in the namespace.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            match run("ip", &["netns", "del", &name], None) {
                Ok(_) => removed.push(format!("network namespace {name}")),
                Err(e) => failed.push(format!("network namespace {name}: {e}")),
            }
        }
    }

    // Cgroups, in every hierarchy (top level, where scenarios create them).
    for root in cgroup_roots() {
        let Ok(dir) = std::fs::read_dir(&root) else {
            continue;
        };
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(PREFIX) && stale(&name) {
                match remove_cgroup_dir(&e.path()) {
                    Ok(()) => removed.push(format!("cgroup {}", e.path().display())),
                    Err(msg) => failed.push(msg),
                }
            }
        }
    }

    // Mounts: deepest first, and FUSE filesystems last (a loop device, and the ext4
    // filesystem on it, may sit on a file in one).
    let mut stale_mounts: Vec<(PathBuf, String)> = mounts()
        .into_iter()
        .filter(|(m, _)| stale(&m.to_string_lossy()))
        .collect();
    stale_mounts.sort_by_key(|(p, fstype)| {
        (
            fstype.starts_with("fuse"),
            std::cmp::Reverse(p.components().count()),
        )
    });
    stale_mounts.dedup();
    for (m, _) in stale_mounts {
        match unmount(&m) {
            Ok(()) => removed.push(format!("mount {}", m.display())),
            Err(msg) => failed.push(msg),
        }
    }

    // Loop devices whose backing file was ours (autoclear usually beat us to it).
    if let Ok(dir) = std::fs::read_dir("/sys/block") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with("loop") {
                continue;
            }
            let backing =
                std::fs::read_to_string(e.path().join("loop/backing_file")).unwrap_or_default();
            if stale(&backing) {
                let dev = PathBuf::from(format!("/dev/{name}"));
                match detach(&dev) {
                    Ok(()) => removed.push(format!("loop device {}", dev.display())),
                    Err(msg) => failed.push(msg),
                }
            }
        }
    }

    // Temporary directories, once nothing is mounted below them.
    if let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.starts_with(PREFIX) || !stale(&name) {
                continue;
            }
            let path = e.path();
            // A limit a crashed `conntrack-full` lowered is put back first.
            match crate::conntrack_full::restore_stale(&path.join("state")) {
                Some(Ok(done)) => removed.push(done),
                Some(Err(msg)) => {
                    failed.push(msg);
                    continue;
                }
                None => {}
            }
            if !mounts_below(&path).is_empty() {
                failed.push(format!("{} still has mounts", path.display()));
                continue;
            }
            match std::fs::remove_dir_all(&path) {
                Ok(()) => removed.push(format!("directory {}", path.display())),
                Err(err) => failed.push(format!("removing {}: {err}", path.display())),
            }
        }
    }

    clean_stale_locks();
    if failed.is_empty() {
        Ok(removed)
    } else {
        Err(ChaosError::Teardown(failed))
    }
}

/// [`clean_stale`], ignoring what it could not remove (it is tried again next time).
pub(crate) fn clean_stale_quietly() {
    let _ = clean_stale();
}

/// Every mounted cgroup hierarchy (v1 controllers and v2).
fn cgroup_roots() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (_src, dir, fstype) = (f.next()?, f.next()?, f.next()?);
            (fstype == "cgroup" || fstype == "cgroup2").then(|| PathBuf::from(dir))
        })
        .collect()
}

/// Every object a `kerno-chaos` run by process `owner` still has (network namespaces,
/// cgroups, mounts, loop devices, temporary directories, worker processes), one line
/// each: empty once its scenarios are stopped. Tests use it to check that a stop left
/// nothing behind.
pub fn leftovers(owner: u32) -> Vec<String> {
    let tag = format!("{PREFIX}{owner}-");
    let mut out = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/run/netns") {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&tag) {
                out.push(format!("network namespace {name}"));
            }
        }
    }
    for root in cgroup_roots() {
        if let Ok(dir) = std::fs::read_dir(&root) {
            for e in dir.flatten() {
                if e.file_name().to_string_lossy().starts_with(&tag) {
                    let procs = read_pids(&e.path().join("cgroup.procs"));
                    out.push(format!(
                        "cgroup {} ({} processes)",
                        e.path().display(),
                        procs.len()
                    ));
                }
            }
        }
    }
    for m in mount_points() {
        if m.to_string_lossy().contains(&tag) {
            out.push(format!("mount {}", m.display()));
        }
    }
    if let Ok(dir) = std::fs::read_dir("/sys/block") {
        for e in dir.flatten() {
            let backing =
                std::fs::read_to_string(e.path().join("loop/backing_file")).unwrap_or_default();
            if backing.contains(&tag) {
                out.push(format!(
                    "loop device {} over {}",
                    e.file_name().to_string_lossy(),
                    backing.trim()
                ));
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) {
        for e in dir.flatten() {
            if e.file_name().to_string_lossy().starts_with(&tag) {
                out.push(format!("directory {}", e.path().display()));
            }
        }
    }
    for pid in kerno_core::procfs::pids() {
        let comm = kerno_core::procfs::comm(pid).unwrap_or_default();
        if comm.starts_with("kchaos-") && descends_from(pid, owner) {
            out.push(format!("process {pid} ({comm})"));
        }
    }
    out
}

/// Whether `owner` is among the ancestors of `pid` (a few generations up).
fn descends_from(pid: u32, owner: u32) -> bool {
    let mut p = pid;
    for _ in 0..8 {
        let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
        let Some(ppid) = stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u32>().ok())
        else {
            return false;
        };
        if ppid == owner {
            return true;
        }
        if ppid <= 1 {
            return false;
        }
        p = ppid;
    }
    false
}
