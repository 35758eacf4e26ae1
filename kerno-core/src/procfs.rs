//! Small readers for /proc, /sys and cgroupfs. Every function returns `None` (or an empty
//! value) when a process is gone or a file is missing: processes come and go between
//! listing and reading, and that is not an error.
//!
//! Every path is the host's, read under the [`crate::host::HostRoot`] in use
//! (`--host-root`).

use std::{
    collections::HashMap,
    fs,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

use crate::{Attribution, Process, attribution, host};

/// Where the host's `path` is for this process (under the host root).
pub fn host_path(path: impl AsRef<Path>) -> PathBuf {
    host::host_root().path(path)
}

/// This process's pid as the host's `/proc` numbers it (the kernel probes report those
/// pids; in a container's own pid namespace `std::process::id()` differs).
pub fn self_pid() -> u32 {
    fs::read_link(host_path("/proc/self"))
        .ok()
        .and_then(|p| p.to_str()?.parse().ok())
        .unwrap_or_else(std::process::id)
}

/// The command name of a process.
pub fn comm(pid: u32) -> Option<String> {
    fs::read_to_string(host_path(format!("/proc/{pid}/comm")))
        .ok()
        .map(|s| s.trim_end().to_string())
}

/// The thread group (process) id of a thread.
pub fn tgid_of(tid: u32) -> Option<u32> {
    let s = fs::read_to_string(host_path(format!("/proc/{tid}/status"))).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The cgroup path of a process: the v2 path when the process is in a non-root v2 cgroup,
/// else the v1 memory controller's path, else the first path listed.
pub fn cgroup_of(pid: u32) -> Option<String> {
    parse_proc_cgroup(&proc_cgroup(pid)?)
}

/// The text of `/proc/<pid>/cgroup`.
fn proc_cgroup(pid: u32) -> Option<String> {
    fs::read_to_string(host_path(format!("/proc/{pid}/cgroup"))).ok()
}

/// Who a process belongs to, from the text of its `/proc/<pid>/cgroup`.
fn attribute_proc_cgroup(text: &str) -> Attribution {
    attribution::with_resolver(|r| r.attribute_proc_cgroup(text))
}

/// The path [`cgroup_of`] picks from the text of `/proc/<pid>/cgroup`.
pub fn parse_proc_cgroup(text: &str) -> Option<String> {
    let mut v2 = None;
    let mut memory = None;
    let mut first = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_id), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        if first.is_none() {
            first = Some(path.to_string());
        }
        if ctrls.is_empty() && path != "/" {
            v2 = Some(path.to_string());
        }
        if ctrls.split(',').any(|c| c == "memory") {
            memory = Some(path.to_string());
        }
    }
    v2.or(memory).or(first)
}

/// Kubernetes pod uid and container id named by a cgroup path, for both the cgroupfs
/// (`/kubepods/burstable/pod<uid>/<id>`) and systemd
/// (`kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope`) drivers
/// (every layout of [`attribution::cgroup_path`]).
pub fn pod_from_cgroup(path: &str) -> (Option<String>, Option<String>) {
    let info = attribution::cgroup_path::parse(path);
    match info.pod_uid {
        Some(uid) => (Some(uid), info.container_id),
        None => (None, None),
    }
}

/// `namespace/name` of a pod uid, from the kubelet's local log directory
/// (`/var/log/pods/<namespace>_<name>_<uid>`); no API server involved.
pub fn pod_name(uid: &str) -> Option<String> {
    let dir = fs::read_dir(host_path("/var/log/pods")).ok()?;
    dir.flatten().find_map(|e| {
        let (u, p) = attribution::names::parse_pod_log_dir(&e.file_name().to_string_lossy())?;
        (u == uid).then(|| format!("{}/{}", p.namespace, p.name))
    })
}

/// Who the cgroup `path` belongs to (pod, container, unit), through the process-wide
/// [`attribution::Resolver`].
pub fn attribute_cgroup(path: &str) -> Attribution {
    attribution::with_resolver(|r| r.attribute_path(path))
}

/// Who process `pid` belongs to, from its `/proc/<pid>/cgroup` (every line: a hybrid host
/// may have the container only in the v1 controllers).
pub fn attribute_pid(pid: u32) -> Attribution {
    proc_cgroup(pid)
        .map(|t| attribute_proc_cgroup(&t))
        .unwrap_or_default()
}

/// Fill a process's attribution (and its `pod` and `container`) from its cgroup path,
/// when its `/proc` entry is gone but the path is known (an OOM victim).
pub fn attribute_from_cgroup(p: &mut Process) {
    if p.attribution.is_empty()
        && let Some(c) = &p.cgroup
    {
        p.attribution = attribute_cgroup(c);
        p.pod = p.attribution.pod();
        p.container = p.attribution.container_id.clone();
    }
}

/// A process, resolved as fully as the system allows. The live name wins (a process may
/// have renamed itself or exec'd since the kernel first saw it); `comm_hint`, the name the
/// kernel recorded, is used when the process has exited.
pub fn process(pid: u32, comm_hint: &str) -> Process {
    let comm = comm(pid)
        .or_else(|| (!comm_hint.is_empty()).then(|| comm_hint.to_string()))
        .unwrap_or_else(|| "?".into());
    // One read of /proc/<pid>/cgroup for both the path and the attribution.
    let text = proc_cgroup(pid);
    let cgroup = text.as_deref().and_then(parse_proc_cgroup);
    let attribution = text.map(|t| attribute_proc_cgroup(&t)).unwrap_or_default();
    Process {
        pid,
        comm,
        cgroup,
        pod: attribution.pod(),
        container: attribution.container_id.clone(),
        attribution,
    }
}

/// A NUL-padded kernel comm as a string.
pub fn comm_str(raw: &[u8; 16]) -> String {
    let end = raw.iter().position(|b| *b == 0).unwrap_or(raw.len());
    String::from_utf8_lossy(&raw[..end]).into_owned()
}

/// Open descriptors of a process.
pub fn fd_count(pid: u32) -> Option<u64> {
    Some(
        fs::read_dir(host_path(format!("/proc/{pid}/fd")))
            .ok()?
            .count() as u64,
    )
}

/// The soft `RLIMIT_NOFILE` of a process.
pub fn nofile_soft_limit(pid: u32) -> Option<u64> {
    let s = fs::read_to_string(host_path(format!("/proc/{pid}/limits"))).ok()?;
    let line = s.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
}

/// `(MemTotal, MemAvailable)` in bytes.
pub fn meminfo() -> Option<(u64, u64)> {
    let s = fs::read_to_string(host_path("/proc/meminfo")).ok()?;
    let get = |key: &str| -> Option<u64> {
        s.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((get("MemTotal:")?, get("MemAvailable:")?))
}

/// PSI `(some avg10, full avg10)` for `cpu`, `memory` or `io`.
pub fn psi(resource: &str) -> (Option<f64>, Option<f64>) {
    let Ok(s) = fs::read_to_string(host_path(format!("/proc/pressure/{resource}"))) else {
        return (None, None);
    };
    let avg10 = |kind: &str| {
        s.lines()
            .find(|l| l.starts_with(kind))?
            .split_whitespace()
            .find_map(|f| f.strip_prefix("avg10="))?
            .parse()
            .ok()
    };
    (avg10("some"), avg10("full"))
}

/// A counter from /proc/vmstat.
pub fn vmstat(key: &str) -> Option<u64> {
    let s = fs::read_to_string(host_path("/proc/vmstat")).ok()?;
    s.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// `(OutSegs, RetransSegs)` from a `net/snmp` file's `Tcp:` lines.
pub fn parse_snmp_tcp(text: &str) -> Option<(u64, u64)> {
    let mut lines = text.lines().filter(|l| l.starts_with("Tcp:"));
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().collect();
    let get = |k: &str| -> Option<u64> {
        let i = header.iter().position(|h| *h == k)?;
        values.get(i)?.parse().ok()
    };
    Some((get("OutSegs")?, get("RetransSegs")?))
}

/// `(OutSegs, RetransSegs, namespaces)` summed over every network namespace that has a
/// process in it (one `/proc/<pid>/net/snmp` read per namespace).
pub fn tcp_snmp_all_netns() -> (u64, u64, u32) {
    let mut seen = std::collections::HashSet::new();
    let (mut out, mut retrans, mut n) = (0, 0, 0);
    for pid in pids() {
        let Ok(meta) = fs::metadata(host_path(format!("/proc/{pid}/ns/net"))) else {
            continue;
        };
        if !seen.insert(meta.ino()) {
            continue;
        }
        if let Some((o, r)) = fs::read_to_string(host_path(format!("/proc/{pid}/net/snmp")))
            .ok()
            .as_deref()
            .and_then(parse_snmp_tcp)
        {
            out += o;
            retrans += r;
            n += 1;
        }
    }
    (out, retrans, n)
}

/// Every pid in /proc.
pub fn pids() -> Vec<u32> {
    let Ok(dir) = fs::read_dir(host_path("/proc")) else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect()
}

/// The kernel name of a block device (`sda`, `loop0`) from `major:minor`.
pub fn block_device_name(major: u32, minor: u32) -> Option<String> {
    let s = fs::read_to_string(host_path(format!("/sys/dev/block/{major}:{minor}/uevent"))).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix("DEVNAME="))
        .map(str::to_string)
}

/// Where the cgroup v2 hierarchy is mounted (`/sys/fs/cgroup` or `/sys/fs/cgroup/unified`).
/// Under a host root, the host's usual places are tried (the host's `/sys` is mounted
/// there, so this process's own mount table does not say).
pub fn cgroup2_root() -> Option<PathBuf> {
    let root = host::host_root();
    if !root.is_own_root() {
        return ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
            .into_iter()
            .map(|p| root.path(p))
            .find(|p| p.join("cgroup.controllers").is_file());
    }
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_src, dir, fstype) = (f.next()?, f.next()?, f.next()?);
        (fstype == "cgroup2").then(|| PathBuf::from(dir))
    })
}

/// Where the cgroup v1 memory controller is mounted, if it is.
pub fn cgroup1_memory_root() -> Option<PathBuf> {
    let root = host::host_root();
    if !root.is_own_root() {
        let p = root.path("/sys/fs/cgroup/memory");
        return p.join("memory.limit_in_bytes").is_file().then_some(p);
    }
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_src, dir, fstype, opts) = (f.next()?, f.next()?, f.next()?, f.next()?);
        (fstype == "cgroup" && opts.split(',').any(|o| o == "memory")).then(|| PathBuf::from(dir))
    })
}

/// Map cgroup v2 ids (the directory's inode number, as `bpf_get_current_cgroup_id`
/// returns) to paths, by walking the v2 hierarchy.
pub fn cgroup2_ids() -> HashMap<u64, String> {
    let mut out = HashMap::new();
    if let Some(root) = cgroup2_root() {
        walk_dirs(&root, 12, &mut |p| {
            if let Ok(m) = fs::metadata(p) {
                let rel = p.strip_prefix(&root).unwrap_or(p);
                out.insert(m.ino(), format!("/{}", rel.display()));
            }
        });
    }
    out
}

/// Visit `root` and its subdirectories, at most `depth` levels down.
pub fn walk_dirs(root: &Path, depth: u32, f: &mut dyn FnMut(&Path)) {
    f(root);
    if depth == 0 {
        return;
    }
    let Ok(dir) = fs::read_dir(root) else {
        return;
    };
    for e in dir.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            walk_dirs(&e.path(), depth - 1, f);
        }
    }
}

/// Read a file holding one integer (or `max`, read as `None`).
pub fn read_u64(path: &Path) -> Option<u64> {
    let s = fs::read_to_string(path).ok()?;
    let s = s.trim();
    if s == "max" {
        return None;
    }
    s.parse().ok()
}

/// A `key value` counter from a flat-keyed file (memory.events, memory.oom_control).
pub fn read_keyed(path: &Path, key: &str) -> Option<u64> {
    keyed_value(&fs::read_to_string(path).ok()?, key)
}

/// The value of `key` in the text of a flat-keyed file (`key value` lines).
pub fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// The kernel's text for one line of a mount table (`\040` for a space, `\011` a tab,
/// `\012` a newline, `\134` a backslash) decoded.
pub fn unescape_mount_field(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One line of `/proc/<pid>/mountinfo`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MountInfo {
    /// `major:minor` of the filesystem.
    pub dev: String,
    /// The root of the mount within the filesystem (`/` unless a bind mount of a subtree).
    pub root: String,
    /// Where it is mounted.
    pub mountpoint: String,
    /// Whether the mount or the filesystem is read-only.
    pub read_only: bool,
    /// Filesystem type (`ext4`, `fuse.sshfs`).
    pub fstype: String,
    /// The mount source (`/dev/sda1`, `tmpfs`).
    pub source: String,
}

/// The mounts listed in the text of a `mountinfo` file (see proc(5)); malformed lines are
/// skipped.
pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let l: Vec<&str> = left.split_whitespace().collect();
            let r: Vec<&str> = right.split_whitespace().collect();
            if l.len() < 6 || r.len() < 2 {
                return None;
            }
            let ro = |opts: &str| opts.split(',').any(|o| o == "ro");
            Some(MountInfo {
                dev: l[2].to_string(),
                root: unescape_mount_field(l[3]),
                mountpoint: unescape_mount_field(l[4]),
                read_only: ro(l[5]) || r.get(2).is_some_and(|o| ro(o)),
                fstype: r[0].to_string(),
                source: unescape_mount_field(r[1]),
            })
        })
        .collect()
}

/// The host's mount table: the host's pid 1's under a host root (the host's own mounts),
/// else this process's.
pub fn mounts() -> Vec<MountInfo> {
    let path = if host::host_root().is_own_root() {
        PathBuf::from("/proc/self/mountinfo")
    } else {
        host_path("/proc/1/mountinfo")
    };
    fs::read_to_string(path)
        .map(|t| parse_mountinfo(&t))
        .unwrap_or_default()
}

/// Space and inodes of the filesystem mounted at `path`, from `statvfs(3)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsStat {
    /// Size, bytes.
    pub size: u64,
    /// Free, bytes (root's reserve included).
    pub free: u64,
    /// Available to unprivileged writers, bytes.
    pub avail: u64,
    /// Inodes in all.
    pub inodes: u64,
    /// Inodes available to unprivileged users.
    pub inodes_free: u64,
}

/// `statvfs(path)`; `None` when it fails.
pub fn statvfs(path: &Path) -> Option<FsStat> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frsize = if st.f_frsize > 0 {
        st.f_frsize
    } else {
        st.f_bsize
    } as u64;
    Some(FsStat {
        size: st.f_blocks as u64 * frsize,
        free: st.f_bfree as u64 * frsize,
        avail: st.f_bavail as u64 * frsize,
        inodes: st.f_files as u64,
        inodes_free: st.f_favail as u64,
    })
}

/// Tasks (threads) on the host now: the total in `/proc/loadavg` (`0.10 0.05 0.01 2/345
/// 6789` has 345).
pub fn threads_total() -> Option<u64> {
    let s = fs::read_to_string(host_path("/proc/loadavg")).ok()?;
    parse_loadavg_tasks(&s)
}

/// The task total of a `/proc/loadavg` text.
pub fn parse_loadavg_tasks(text: &str) -> Option<u64> {
    text.split_whitespace()
        .nth(3)?
        .split_once('/')?
        .1
        .parse()
        .ok()
}

/// A sysctl as an integer (`kernel/pid_max`, `net/netfilter/nf_conntrack_max`), from the
/// host's `/proc/sys`.
pub fn sysctl_u64(name: &str) -> Option<u64> {
    read_u64(&host_path(format!("/proc/sys/{name}")))
}

/// The per-namespace counters of `/proc/<pid>/net/stat/nf_conntrack`: one line per CPU,
/// hexadecimal; `entries` is the namespace's count (the same on every line), the others are
/// per CPU and summed here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConntrackStat {
    /// Tracked connections in the namespace.
    pub entries: u64,
    /// New connections dropped for a full table.
    pub drop: u64,
    /// Entries evicted early to make room.
    pub early_drop: u64,
    /// Insertions that failed.
    pub insert_failed: u64,
}

/// Parse the text of a `net/stat/nf_conntrack` file; `None` without a header and a line.
pub fn parse_conntrack_stat(text: &str) -> Option<ConntrackStat> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split_whitespace().collect();
    let col = |k: &str| header.iter().position(|h| *h == k);
    let (entries, drop, early, failed) = (
        col("entries")?,
        col("drop"),
        col("early_drop"),
        col("insert_failed"),
    );
    let mut out = ConntrackStat::default();
    let mut any = false;
    for line in lines {
        let v: Vec<u64> = line
            .split_whitespace()
            .map(|f| u64::from_str_radix(f, 16).unwrap_or(0))
            .collect();
        if v.len() < header.len() {
            continue;
        }
        let at = |i: Option<usize>| i.map(|i| v[i]).unwrap_or(0);
        if !any {
            out.entries = v[entries];
        }
        any = true;
        out.drop += at(drop);
        out.early_drop += at(early);
        out.insert_failed += at(failed);
    }
    any.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_v2_then_memory_path() {
        let hybrid = "12:memory:/kubepods/burstable/podabc\n0::/\n";
        assert_eq!(
            parse_proc_cgroup(hybrid).as_deref(),
            Some("/kubepods/burstable/podabc")
        );
        let v2 = "0::/system.slice/nginx.service\n";
        assert_eq!(
            parse_proc_cgroup(v2).as_deref(),
            Some("/system.slice/nginx.service")
        );
    }

    #[test]
    fn pods_from_both_cgroup_drivers() {
        let (uid, c) = pod_from_cgroup(
            "/kubepods/burstable/pod0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b/\
             9a8b7c6d5e4f3a2b1c0d9a8b7c6d5e4f3a2b1c0d9a8b7c6d5e4f3a2b1c0d9a8b",
        );
        assert_eq!(uid.as_deref(), Some("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"));
        assert!(c.unwrap().starts_with("9a8b7c6d"));
        let (uid, c) = pod_from_cgroup(
            "/kubepods.slice/kubepods-besteffort.slice/\
             kubepods-besteffort-pod0f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b.slice/\
             cri-containerd-1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef.scope",
        );
        assert_eq!(uid.as_deref(), Some("0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"));
        assert_eq!(
            c.as_deref(),
            Some("1234567890abcdef1234567890abcdef1234567890abcdef1234567890abcdef")
        );
        assert_eq!(pod_from_cgroup("/system.slice/sshd.service"), (None, None));
    }

    #[test]
    fn snmp_tcp_counters() {
        let text = "Ip: Forwarding\nIp: 1\nTcp: RtoAlgorithm RtoMin OutSegs RetransSegs InErrs\n\
                    Tcp: 1 200 12345 67 0\nUdp: InDatagrams\nUdp: 5\n";
        assert_eq!(parse_snmp_tcp(text), Some((12345, 67)));
    }

    #[test]
    fn mountinfo_lines() {
        let text = "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n\
                    30 22 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n\
                    41 22 7:3 /sub /mnt/with\\040space rw master:4 - xfs /dev/loop3 rw\n\
                    garbage\n";
        let m = parse_mountinfo(text);
        assert_eq!(m.len(), 3);
        assert_eq!(
            m[0],
            MountInfo {
                dev: "8:1".into(),
                root: "/".into(),
                mountpoint: "/".into(),
                read_only: false,
                fstype: "ext4".into(),
                source: "/dev/sda1".into(),
            }
        );
        assert!(m[1].read_only);
        assert_eq!(
            (m[2].mountpoint.as_str(), m[2].root.as_str()),
            ("/mnt/with space", "/sub")
        );
        assert!(statvfs(Path::new("/")).unwrap().size > 0);
        assert!(statvfs(Path::new("/nonexistent/kerno")).is_none());
    }

    #[test]
    fn loadavg_and_conntrack_stat() {
        assert_eq!(
            parse_loadavg_tasks("0.10 0.05 0.01 2/345 6789\n"),
            Some(345)
        );
        assert_eq!(parse_loadavg_tasks("0.10 0.05"), None);
        let text = "entries  clashres found new invalid ignore delete chainlength insert insert_failed drop early_drop icmp_error  expect_new expect_create expect_delete search_restart\n\
                    000000c8  00000000 00000000 00000000 00000003 00000000 00000000 00000000 00000000 00000001 0000000a 00000002 00000000  00000000 00000000 00000000 00000000\n\
                    000000c8  00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000010 00000001 00000000  00000000 00000000 00000000 00000000\n";
        assert_eq!(
            parse_conntrack_stat(text),
            Some(ConntrackStat {
                entries: 200,
                drop: 26,
                early_drop: 3,
                insert_failed: 1,
            })
        );
        assert_eq!(parse_conntrack_stat("entries drop\n"), None);
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(fd_count(me).unwrap() >= 1);
        assert!(nofile_soft_limit(me).unwrap() >= 64);
        assert_eq!(tgid_of(me), Some(me));
        assert!(meminfo().unwrap().0 > 0);
    }
}

/// A TCP socket's `(local, remote)` endpoints as Kerno prints them (`1.2.3.4:80`,
/// `[::1]:80`), parsed from a `/proc/<pid>/net/tcp{,6}` line, with its inode.
pub fn parse_proc_net_tcp_line(line: &str, v6: bool) -> Option<(String, String, u64)> {
    let f: Vec<&str> = line.split_whitespace().collect();
    if f.len() < 10 || f[0] == "sl" {
        return None;
    }
    let ep = |s: &str| -> Option<String> {
        let (addr, port) = s.split_once(':')?;
        let port = u16::from_str_radix(port, 16).ok()?;
        if v6 {
            if addr.len() != 32 {
                return None;
            }
            let mut bytes = [0u8; 16];
            for w in 0..4 {
                let word = u32::from_str_radix(&addr[w * 8..w * 8 + 8], 16).ok()?;
                bytes[w * 4..w * 4 + 4].copy_from_slice(&word.to_ne_bytes());
            }
            Some(format!("[{}]:{port}", std::net::Ipv6Addr::from(bytes)))
        } else {
            let word = u32::from_str_radix(addr, 16).ok()?;
            Some(format!(
                "{}:{port}",
                std::net::Ipv4Addr::from(word.to_ne_bytes())
            ))
        }
    };
    Some((ep(f[1])?, ep(f[2])?, f[9].parse().ok()?))
}

/// Find the processes owning TCP sockets with the given `(local, remote)` endpoints, in any
/// network namespace that has a process. Returns `(local, remote) -> pid`.
pub fn tcp_socket_owners(wanted: &[(String, String)]) -> HashMap<(String, String), u32> {
    let mut out = HashMap::new();
    if wanted.is_empty() {
        return out;
    }
    let mut inodes: HashMap<u64, (String, String)> = HashMap::new();
    let mut seen = std::collections::HashSet::new();
    let all = pids();
    for pid in &all {
        let Ok(meta) = fs::metadata(host_path(format!("/proc/{pid}/ns/net"))) else {
            continue;
        };
        if !seen.insert(meta.ino()) {
            continue;
        }
        for (file, v6) in [("tcp", false), ("tcp6", true)] {
            let Ok(text) = fs::read_to_string(host_path(format!("/proc/{pid}/net/{file}"))) else {
                continue;
            };
            for line in text.lines() {
                if let Some((l, r, ino)) = parse_proc_net_tcp_line(line, v6)
                    && ino != 0
                    && wanted.iter().any(|(wl, wr)| *wl == l && *wr == r)
                {
                    inodes.insert(ino, (l, r));
                }
            }
        }
    }
    if inodes.is_empty() {
        return out;
    }
    for pid in all {
        let Ok(dir) = fs::read_dir(host_path(format!("/proc/{pid}/fd"))) else {
            continue;
        };
        for e in dir.flatten() {
            let Ok(target) = fs::read_link(e.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            if let Some(ino) = t
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
                && let Some(key) = inodes.get(&ino)
            {
                out.entry(key.clone()).or_insert(pid);
            }
        }
    }
    out
}

#[cfg(test)]
mod tcp_tests {
    use super::*;

    #[test]
    fn parses_proc_net_tcp() {
        let v4 = "   0: 0100007F:1F90 0200000A:D431 01 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 20 4 30 10 -1";
        let (l, r, ino) = parse_proc_net_tcp_line(v4, false).unwrap();
        assert_eq!(
            (l.as_str(), r.as_str(), ino),
            ("127.0.0.1:8080", "10.0.0.2:54321", 12345)
        );
        let v6 = "   0: 00000000000000000000000001000000:0050 00000000000000000000000001000000:C000 01 00000000:00000000 00:00000000 00000000     0        0 777 1";
        let (l, r, ino) = parse_proc_net_tcp_line(v6, true).unwrap();
        assert_eq!(
            (l.as_str(), r.as_str(), ino),
            ("[::1]:80", "[::1]:49152", 777)
        );
        assert!(parse_proc_net_tcp_line("  sl  local_address rem_address   st", false).is_none());
    }
}

/// Where the cgroup v1 `controller` is mounted (alone or co-mounted, as `cpu,cpuacct`),
/// if it is. Under a host root, `/sys/fs/cgroup/<controller>` and the usual co-mounts are
/// tried, recognised by `probe_file` (a file every directory of that controller has).
pub fn cgroup1_root(controller: &str, probe_file: &str) -> Option<PathBuf> {
    let root = host::host_root();
    if !root.is_own_root() {
        return [
            controller.to_string(),
            "cpu,cpuacct".to_string(),
            "cpuacct,cpu".to_string(),
        ]
        .into_iter()
        .map(|d| root.path(format!("/sys/fs/cgroup/{d}")))
        .find(|p| p.join(probe_file).is_file());
    }
    let mounts = fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_src, dir, fstype, opts) = (f.next()?, f.next()?, f.next()?, f.next()?);
        (fstype == "cgroup" && opts.split(',').any(|o| o == controller)).then(|| PathBuf::from(dir))
    })
}

/// One process in each network namespace that has any: `(namespace inode, pid)`.
pub fn netns_pids() -> Vec<(u64, u32)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for pid in pids() {
        let Ok(meta) = fs::metadata(host_path(format!("/proc/{pid}/ns/net"))) else {
            continue;
        };
        if seen.insert(meta.ino()) {
            out.push((meta.ino(), pid));
        }
    }
    out
}

/// The pids listed in a `cgroup.procs`-like file (empty when it cannot be read).
pub fn read_pid_list(path: &Path) -> Vec<u32> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The processes holding the sockets with the given inodes (`socket:[<inode>]` links in
/// `/proc/<pid>/fd`): `inode -> pid`, the first holder found.
pub fn socket_inode_owners(inodes: &std::collections::HashSet<u64>) -> HashMap<u64, u32> {
    let mut out = HashMap::new();
    if inodes.is_empty() {
        return out;
    }
    for pid in pids() {
        let Ok(dir) = fs::read_dir(host_path(format!("/proc/{pid}/fd"))) else {
            continue;
        };
        for e in dir.flatten() {
            let Ok(target) = fs::read_link(e.path()) else {
                continue;
            };
            if let Some(ino) = target
                .to_string_lossy()
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
                && inodes.contains(&ino)
            {
                out.entry(ino).or_insert(pid);
            }
        }
        if out.len() == inodes.len() {
            break;
        }
    }
    out
}
