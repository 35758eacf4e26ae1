use std::{
    collections::{HashMap, HashSet},
    path::Path,
    sync::mpsc,
    time::Duration,
};

use super::ends;
use crate::{
    Collector, CollectorError, Filesystem, FilesystemSignals, Sample, Series, Signals,
    procfs::{self, FsStat, MountInfo},
};

/// At most this many filesystems are listed (the fullest).
const TOP: usize = 50;

/// Filesystem types that hold no data of their own (node-exporter's default exclusions,
/// plus overlay: a container's root filesystem is its lower filesystem's space, listed
/// once under its own mount).
const PSEUDO: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "efivarfs",
    "erofs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nfsd",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "ramfs",
    "rootfs",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// Types whose `statvfs` asks a server or a user-space daemon, which may hang: read with a
/// timeout, and not again in this collector's life once one timed out.
fn may_hang(fstype: &str) -> bool {
    fstype.starts_with("fuse")
        || fstype.starts_with("nfs")
        || matches!(
            fstype,
            "cifs" | "smb3" | "ceph" | "glusterfs" | "9p" | "afs"
        )
}

/// How long a `statvfs` of a filesystem that may hang is waited for.
const HANG_TIMEOUT: Duration = Duration::from_millis(300);

/// The directories a Kubernetes node keeps its state in, and the role of the filesystem
/// holding each (the kubelet evicts pods when these fill).
pub const NODE_DIRS: &[(&str, &str)] = &[
    ("/var/lib/kubelet", "kubelet"),
    ("/var/lib/containerd", "containerd"),
    ("/var/lib/docker", "docker"),
];

/// A filesystem to read: one per device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FsTarget {
    /// `major:minor`.
    pub dev: String,
    /// The shortest mount point of the device.
    pub mountpoint: String,
    /// Mount source.
    pub source: String,
    /// Type.
    pub fstype: String,
    /// `kubelet`, `containerd`, `docker` (see [`NODE_DIRS`]).
    pub roles: Vec<String>,
}

/// The filesystems worth reading from a mount table: writable, not pseudo, one per device
/// (its shortest mount point), with the roles of [`NODE_DIRS`] whose directory `exists`
/// (the filesystem holding a directory is the mount with the longest mount point above it).
pub fn targets(mounts: &[MountInfo], exists: &dyn Fn(&str) -> bool) -> Vec<FsTarget> {
    let mut by_dev: HashMap<&str, FsTarget> = HashMap::new();
    let mut order: Vec<&str> = Vec::new();
    for m in mounts {
        if m.read_only || PSEUDO.contains(&m.fstype.as_str()) {
            continue;
        }
        match by_dev.get_mut(m.dev.as_str()) {
            Some(t) => {
                if m.mountpoint.len() < t.mountpoint.len() {
                    t.mountpoint = m.mountpoint.clone();
                }
            }
            None => {
                order.push(&m.dev);
                by_dev.insert(
                    &m.dev,
                    FsTarget {
                        dev: m.dev.clone(),
                        mountpoint: m.mountpoint.clone(),
                        source: m.source.clone(),
                        fstype: m.fstype.clone(),
                        roles: Vec::new(),
                    },
                );
            }
        }
    }
    for (dir, role) in NODE_DIRS {
        if !exists(dir) {
            continue;
        }
        // The last mount listed wins among equals: a later mount hides an earlier one.
        let holder = mounts
            .iter()
            .filter(|m| under(dir, &m.mountpoint))
            .max_by_key(|m| m.mountpoint.len());
        if let Some(t) = holder.and_then(|m| by_dev.get_mut(m.dev.as_str())) {
            t.roles.push(role.to_string());
        }
    }
    order.into_iter().filter_map(|d| by_dev.remove(d)).collect()
}

/// Whether `path` is on the device `dev` (`major:minor`).
fn same_device(path: &Path, dev: &str) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let d = meta.dev();
    format!("{}:{}", libc::major(d), libc::minor(d)) == dev
}

/// Whether `path` is `mountpoint` or below it.
fn under(path: &str, mountpoint: &str) -> bool {
    mountpoint == "/"
        || path == mountpoint
        || path
            .strip_prefix(mountpoint)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Space and inodes of every mounted filesystem that can fill (not pseudo, not read-only),
/// from the mount table and `statvfs`. Needs no eBPF and no privileges.
#[derive(Default)]
pub struct FilesystemCollector {
    /// Mount points whose `statvfs` timed out once: never asked again.
    stuck: HashSet<String>,
}

impl FilesystemCollector {
    /// A new filesystem collector.
    pub fn new() -> Self {
        FilesystemCollector::default()
    }

    fn stat(&mut self, t: &FsTarget) -> Option<FsStat> {
        let path = procfs::host_path(&t.mountpoint);
        if !may_hang(&t.fstype) {
            // Under a host root, a host mount that is not visible here would statvfs the
            // filesystem below it instead: only the device the mount table names counts.
            if !same_device(&path, &t.dev) {
                return None;
            }
            return procfs::statvfs(&path);
        }
        if self.stuck.contains(&t.mountpoint) {
            return None;
        }
        let (tx, rx) = mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("kerno-statvfs".into())
            .spawn(move || {
                let _ = tx.send(procfs::statvfs(&path));
            });
        if spawned.is_err() {
            return None;
        }
        match rx.recv_timeout(HANG_TIMEOUT) {
            Ok(st) => st,
            Err(_) => {
                self.stuck.insert(t.mountpoint.clone());
                None
            }
        }
    }
}

#[derive(Clone, Debug)]
struct FsReading {
    target: FsTarget,
    stat: FsStat,
}

struct FsSample(Vec<FsReading>);

impl Collector for FilesystemCollector {
    fn name(&self) -> &str {
        "filesystem"
    }

    fn sample(&mut self) -> Result<Sample, CollectorError> {
        let mounts = procfs::mounts();
        if mounts.is_empty() {
            return Err(CollectorError::Source {
                source_name: "mountinfo".into(),
                reason: "the mount table is unreadable or empty".into(),
            });
        }
        let exists = |d: &str| procfs::host_path(d).is_dir();
        let mut out = Vec::new();
        for t in targets(&mounts, &exists) {
            if let Some(stat) = self.stat(&t).filter(|s| s.size > 0) {
                out.push(FsReading { target: t, stat });
            }
        }
        Ok(Sample::now(FsSample(out)))
    }

    fn fill(&self, samples: &[&Sample], signals: &mut Signals) -> Result<(), CollectorError> {
        let Some((first, last)) = ends::<FsSample>(samples) else {
            return Ok(());
        };
        let t0 = samples[0].unix_ms;
        let firsts: HashMap<&str, &FsStat> = first
            .0
            .iter()
            .map(|r| (r.target.dev.as_str(), &r.stat))
            .collect();
        let mut list: Vec<Filesystem> = last
            .0
            .iter()
            .map(|r| {
                let f = firsts
                    .get(r.target.dev.as_str())
                    .copied()
                    .unwrap_or(&r.stat);
                Filesystem {
                    mountpoint: r.target.mountpoint.clone(),
                    device: r.target.source.clone(),
                    dev: r.target.dev.clone(),
                    fstype: r.target.fstype.clone(),
                    roles: r.target.roles.clone(),
                    size_bytes: r.stat.size,
                    avail_bytes: r.stat.avail,
                    avail_start_bytes: f.avail,
                    free_bytes: r.stat.free,
                    inodes: r.stat.inodes,
                    inodes_free: r.stat.inodes_free,
                    inodes_free_start: f.inodes_free,
                    used_series: Series::default(),
                    inodes_used_series: Series::default(),
                }
            })
            .collect();
        let fullest = |f: &Filesystem| f.used_pct().max(f.inodes_used_pct());
        list.sort_by(|a, b| {
            fullest(b)
                .total_cmp(&fullest(a))
                .then(a.mountpoint.cmp(&b.mountpoint))
        });
        list.truncate(TOP);
        for s in samples {
            let Some(FsSample(readings)) = s.get::<FsSample>() else {
                continue;
            };
            let at = s.unix_ms.saturating_sub(t0);
            for r in readings {
                if let Some(f) = list.iter_mut().find(|f| f.dev == r.target.dev) {
                    f.used_series
                        .push(at, r.stat.size.saturating_sub(r.stat.avail) as f64);
                    if r.stat.inodes > 0 {
                        f.inodes_used_series
                            .push(at, r.stat.inodes.saturating_sub(r.stat.inodes_free) as f64);
                    }
                }
            }
        }
        signals.filesystem = Some(FilesystemSignals { filesystems: list });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(dev: &str, mountpoint: &str, fstype: &str, ro: bool) -> MountInfo {
        MountInfo {
            dev: dev.into(),
            root: "/".into(),
            mountpoint: mountpoint.into(),
            read_only: ro,
            fstype: fstype.into(),
            source: format!("/dev/{dev}"),
        }
    }

    #[test]
    fn pseudo_read_only_and_bind_mounts_are_skipped() {
        let mounts = vec![
            m("8:1", "/", "ext4", false),
            m("0:22", "/proc", "proc", false),
            m("0:26", "/sys/fs/cgroup/memory", "cgroup", false),
            m(
                "0:40",
                "/var/lib/docker/overlay2/x/merged",
                "overlay",
                false,
            ),
            m("7:0", "/snap/core/1", "squashfs", true),
            m("8:2", "/boot", "ext4", true),
            m("0:30", "/run", "tmpfs", false),
            m("8:1", "/home/u/bind", "ext4", false),
            m("8:3", "/data/b", "xfs", false),
            m("8:3", "/data", "xfs", false),
        ];
        let t = targets(&mounts, &|_| false);
        let names: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.dev.as_str(), t.mountpoint.as_str()))
            .collect();
        assert_eq!(names, [("8:1", "/"), ("0:30", "/run"), ("8:3", "/data")]);
        assert!(t.iter().all(|t| t.roles.is_empty()));
    }

    #[test]
    fn node_directories_name_the_filesystem_holding_them() {
        let mounts = vec![
            m("8:1", "/", "ext4", false),
            m("8:16", "/var/lib/containerd", "xfs", false),
            m("8:17", "/var/lib/kubelet-other", "xfs", false),
        ];
        // The kubelet's directory is on the root filesystem (its own mount is absent; a
        // sibling with a longer name is not a parent); containerd's has its own.
        let all = |_: &str| true;
        let t = targets(&mounts, &all);
        let roles = |dev: &str| t.iter().find(|t| t.dev == dev).unwrap().roles.clone();
        assert_eq!(roles("8:1"), ["kubelet", "docker"]);
        assert_eq!(roles("8:16"), ["containerd"]);
        assert!(roles("8:17").is_empty());
        // A directory that does not exist names nothing.
        let t = targets(&mounts, &|d: &str| d == "/var/lib/containerd");
        assert!(t.iter().find(|t| t.dev == "8:1").unwrap().roles.is_empty());
    }

    #[test]
    fn reads_this_machine() {
        let mut c = FilesystemCollector::new();
        let a = c.sample().unwrap();
        let b = c.sample().unwrap();
        let mut s = Signals::default();
        c.fill(&[&a, &b], &mut s).unwrap();
        let fs = s.filesystem.unwrap();
        assert!(!fs.filesystems.is_empty());
        for f in &fs.filesystems {
            assert!(f.size_bytes > 0 && f.used_pct() <= 100.0, "{f:?}");
            assert_eq!(f.used_series.len(), 2, "{f:?}");
        }
    }
}
