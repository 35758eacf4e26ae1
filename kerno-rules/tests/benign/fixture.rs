//! What a benign case creates, each removed when dropped (also when the case fails): child
//! processes (killed with their process group), a scratch directory, a memory-limited
//! cgroup, a pair of network namespaces joined by a veth.

use std::{
    fs,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use kerno_core::procfs;

/// The environment variable that makes this test binary run a workload role instead of
/// tests (see `benign_workload` in root_benign.rs).
pub const ROLE_VAR: &str = "KERNO_BENIGN_ROLE";

/// Prefix of every cgroup, namespace and scratch directory a case creates.
const PREFIX: &str = "kbn";

/// A name unique to this test process and call: `kbn<pid><tag><n>` (short enough for a
/// veth).
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{PREFIX}{}{tag}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The test process that created `name` (one of [`unique`]'s or a [`Scratch`]'s), if it is
/// ours and that process is gone.
fn stale_owner(name: &str) -> Option<u32> {
    let rest = name
        .strip_prefix(PREFIX)
        .or_else(|| name.strip_prefix("kerno-benign-"))?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    let pid: u32 = digits.parse().ok()?;
    (!Path::new(&format!("/proc/{pid}")).exists()).then_some(pid)
}

/// Remove what an earlier run that was killed (no destructors ran) left behind: its
/// cgroups, network namespaces and scratch directories.
pub fn sweep_stale() {
    for m in procfs::mounts() {
        let name = Path::new(&m.mountpoint)
            .strip_prefix(std::env::temp_dir())
            .ok()
            .and_then(|rest| rest.components().next())
            .map(|c| c.as_os_str().to_string_lossy().into_owned());
        if name.is_some_and(|n| n.starts_with("kerno-benign-") && stale_owner(&n).is_some()) {
            unmount(Path::new(&m.mountpoint));
        }
    }
    let roots = [
        procfs::cgroup1_memory_root(),
        procfs::cgroup1_root("pids", "cgroup.procs"),
        procfs::cgroup2_root(),
        procfs::cgroup1_root("cpu", "cpu.cfs_quota_us"),
    ];
    for root in roots.into_iter().flatten() {
        for e in fs::read_dir(&root).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(PREFIX) && stale_owner(&name).is_some() {
                drop(MemCgroup {
                    dir: e.path(),
                    version: 0,
                    path: String::new(),
                });
            }
        }
    }
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for name in netns.lines().filter_map(|l| l.split_whitespace().next()) {
        if stale_owner(name).is_some() {
            let _ = ip(&["netns", "del", name]);
        }
    }
    for e in fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with("kerno-benign-") && stale_owner(&name).is_some() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// A child process in its own process group; dropping it kills the group and reaps it. It
/// also dies if the thread that started it ends (PR_SET_PDEATHSIG), so a test that aborts
/// leaves no workload behind.
pub struct Child {
    what: String,
    child: std::process::Child,
}

impl Child {
    /// `sh -c script` in `cwd`.
    pub fn shell(what: &str, cwd: &Path, script: &str) -> Child {
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(script).current_dir(cwd);
        Child::spawn(what, c)
    }

    /// This test binary re-executed as the workload `role` with `args`, optionally under a
    /// wrapper (`ip netns exec NS`).
    pub fn role(what: &str, wrapper: &[&str], role: &str, args: &[&str]) -> Child {
        let exe = std::env::current_exe().expect("the test binary's path");
        let mut c = match wrapper.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        // The harness runs only the workload entry point; its own report goes to /dev/null.
        c.args([
            "benign_workload",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            ROLE_VAR,
            std::iter::once(role)
                .chain(args.iter().copied())
                .collect::<Vec<_>>()
                .join("\t"),
        )
        .stdout(Stdio::null());
        Child::spawn(what, c)
    }

    /// A command of one's own (`ip netns exec NS python3 -c ...`).
    pub fn command(what: &str, c: Command) -> Child {
        Child::spawn(what, c)
    }

    fn spawn(what: &str, mut c: Command) -> Child {
        c.process_group(0).stdin(Stdio::null());
        // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
        unsafe {
            c.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = c.spawn().unwrap_or_else(|e| panic!("starting {what}: {e}"));
        Child {
            what: what.into(),
            child,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// An error when the process has exited (a workload that should still be running).
    pub fn running(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(st)) => Err(format!("{} (pid {}) exited: {st}", self.what, self.pid())),
            Err(e) => Err(format!("{}: {e}", self.what)),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let pgid = self.child.id() as libc::pid_t;
        // SAFETY: kill has no memory effects; the group is the child's own (process_group(0)).
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A scratch directory (on disk, not tmpfs: page cache must be reclaimable) removed when
/// dropped.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    /// A new empty directory named after the case.
    pub fn new(case: &str) -> Scratch {
        let path = std::env::temp_dir().join(format!("kerno-benign-{}-{case}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        Scratch { path }
    }

    /// A path inside it.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// The path as a string (for a child's arguments).
    pub fn arg(&self, name: &str) -> String {
        self.join(name).display().to_string()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}

/// Write counters a parent reads (`1 2 3`), atomically.
pub fn write_counters(path: &Path, values: &[u64]) {
    let text: Vec<String> = values.iter().map(u64::to_string).collect();
    let tmp = path.with_extension("tmp");
    if fs::write(&tmp, text.join(" ")).is_ok() {
        let _ = fs::rename(&tmp, path);
    }
}

/// Read counters written by [`write_counters`]; `None` before the first write.
pub fn read_counters(path: &Path) -> Option<Vec<u64>> {
    let s = fs::read_to_string(path).ok()?;
    s.split_whitespace().map(|v| v.parse().ok()).collect()
}

/// Poll `cond` every 100 ms until it holds (its detail) or `limit` passes (its last error).
pub fn wait_until(
    limit: Duration,
    mut cond: impl FnMut() -> Result<String, String>,
) -> Result<String, String> {
    let start = Instant::now();
    loop {
        match cond() {
            Ok(detail) => return Ok(detail),
            Err(e) if start.elapsed() >= limit => return Err(format!("after {limit:?}: {e}")),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// A memory cgroup with a limit (v1 `memory` controller or v2 `memory.max`), removed with
/// everything in it when dropped.
pub struct MemCgroup {
    pub dir: PathBuf,
    pub version: u8,
    /// The path as Kerno's signals name it (`/kb...`).
    pub path: String,
}

/// What a memory cgroup holds now.
#[derive(Debug)]
pub struct MemUsage {
    pub usage: u64,
    pub limit: u64,
    /// Page cache (v1 `total_cache`, v2 `file`).
    pub cache: u64,
    /// Inactive file-backed pages (v1 `total_inactive_file`, v2 `inactive_file`).
    pub inactive_file: u64,
    /// Anonymous memory (v1 `total_rss`, v2 `anon`).
    pub anon: u64,
}

impl MemCgroup {
    /// A v1 cgroup limited to `limit` bytes, without swap; `Err` (with the reason) when the
    /// v1 memory controller is not mounted.
    pub fn v1(limit: u64) -> Result<MemCgroup, String> {
        let root = procfs::cgroup1_memory_root()
            .ok_or("the cgroup v1 memory controller is not mounted")?;
        let name = unique("m");
        let dir = root.join(&name);
        fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let cg = MemCgroup {
            dir,
            version: 1,
            path: format!("/{name}"),
        };
        cg.write("memory.limit_in_bytes", &limit.to_string())?;
        let _ = fs::write(cg.dir.join("memory.swappiness"), "0");
        Ok(cg)
    }

    /// A v2 cgroup limited to `limit` bytes, without swap; `Err` with the reason when no v2
    /// hierarchy has the memory controller (on a hybrid host it is bound to v1).
    pub fn v2(limit: u64) -> Result<MemCgroup, String> {
        let root = procfs::cgroup2_root().ok_or("no cgroup v2 hierarchy is mounted")?;
        let controllers = fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return Err(format!(
                "the cgroup v2 hierarchy at {} has no memory controller (its controllers: {:?}); \
                 on a hybrid host the memory controller is bound to cgroup v1",
                root.display(),
                controllers.trim()
            ));
        }
        fs::write(root.join("cgroup.subtree_control"), "+memory")
            .map_err(|e| format!("enabling memory in {}: {e}", root.display()))?;
        let name = unique("m");
        let dir = root.join(&name);
        fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let cg = MemCgroup {
            dir,
            version: 2,
            path: format!("/{name}"),
        };
        cg.write("memory.max", &limit.to_string())?;
        let _ = fs::write(cg.dir.join("memory.swap.max"), "0");
        Ok(cg)
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        fs::write(self.dir.join(file), value)
            .map_err(|e| format!("writing {value} to {}: {e}", self.dir.join(file).display()))
    }

    /// The file a process writes its pid to, to join.
    pub fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// Usage, limit and the parts of it.
    pub fn usage(&self) -> MemUsage {
        let (usage, limit, cache, inactive, anon) = if self.version == 1 {
            (
                "memory.usage_in_bytes",
                "memory.limit_in_bytes",
                "total_cache",
                "total_inactive_file",
                "total_rss",
            )
        } else {
            (
                "memory.current",
                "memory.max",
                "file",
                "inactive_file",
                "anon",
            )
        };
        let stat = self.dir.join("memory.stat");
        MemUsage {
            usage: procfs::read_u64(&self.dir.join(usage)).unwrap_or(0),
            limit: procfs::read_u64(&self.dir.join(limit)).unwrap_or(u64::MAX),
            cache: procfs::read_keyed(&stat, cache).unwrap_or(0),
            inactive_file: procfs::read_keyed(&stat, inactive).unwrap_or(0),
            anon: procfs::read_keyed(&stat, anon).unwrap_or(0),
        }
    }

    fn pids(&self) -> Vec<i32> {
        fs::read_to_string(self.procs())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

/// A cgroup with a CPU limit: cgroup v1 `cpu` (`cpu.cfs_quota_us`), else v2 `cpu.max`.
pub struct CpuCgroup {
    /// The directory (removed, its processes killed, on drop).
    pub cg: MemCgroup,
}

impl CpuCgroup {
    /// A cgroup allowed `quota_us` of CPU every `period_us`.
    pub fn new(quota_us: u64, period_us: u64) -> Result<CpuCgroup, String> {
        let name = unique("c");
        if let Some(root) = procfs::cgroup1_root("cpu", "cpu.cfs_quota_us") {
            let dir = root.join(&name);
            fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let cg = MemCgroup {
                dir,
                version: 1,
                path: format!("/{name}"),
            };
            cg.write("cpu.cfs_period_us", &period_us.to_string())?;
            cg.write("cpu.cfs_quota_us", &quota_us.to_string())?;
            return Ok(CpuCgroup { cg });
        }
        let root = procfs::cgroup2_root().ok_or("no cgroup cpu controller is mounted")?;
        fs::write(root.join("cgroup.subtree_control"), "+cpu")
            .map_err(|e| format!("enabling cpu in {}: {e}", root.display()))?;
        let dir = root.join(&name);
        fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let cg = MemCgroup {
            dir,
            version: 2,
            path: format!("/{name}"),
        };
        cg.write("cpu.max", &format!("{quota_us} {period_us}"))?;
        Ok(CpuCgroup { cg })
    }

    /// Move a process (all its threads) into the cgroup.
    pub fn join(&self, pid: u32) -> Result<(), String> {
        self.cg.write("cgroup.procs", &pid.to_string())
    }

    /// `(nr_periods, nr_throttled)` of its `cpu.stat`.
    pub fn periods(&self) -> (u64, u64) {
        let stat = self.cg.dir.join("cpu.stat");
        (
            procfs::read_keyed(&stat, "nr_periods").unwrap_or(0),
            procfs::read_keyed(&stat, "nr_throttled").unwrap_or(0),
        )
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        let start = Instant::now();
        loop {
            for pid in self.pids() {
                // SAFETY: kill has no memory effects; these are the cgroup's own processes.
                unsafe {
                    libc::kill(pid, libc::SIGKILL);
                }
            }
            if fs::remove_dir(&self.dir).is_ok() || start.elapsed() > Duration::from_secs(10) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Two network namespaces joined by a veth pair, `10.231.7.1/24` in `a` and `.2` in `b`;
/// deleting the namespaces (on drop) deletes the veth.
pub struct NetnsPair {
    pub a: String,
    pub b: String,
}

impl NetnsPair {
    /// Address of the `a` side.
    pub const A_ADDR: &'static str = "10.231.7.1";
    /// Address of the `b` side.
    pub const B_ADDR: &'static str = "10.231.7.2";

    /// Create both namespaces and the link.
    pub fn new() -> Result<NetnsPair, String> {
        let pair = NetnsPair {
            a: unique("a"),
            b: unique("b"),
        };
        ip(&["netns", "add", &pair.a])?;
        ip(&["netns", "add", &pair.b])?;
        let (va, vb) = (format!("{}v", pair.a), format!("{}v", pair.b));
        ip(&[
            "link", "add", &va, "netns", &pair.a, "type", "veth", "peer", "name", &vb, "netns",
            &pair.b,
        ])?;
        for (ns, dev, addr) in [(&pair.a, &va, Self::A_ADDR), (&pair.b, &vb, Self::B_ADDR)] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(pair)
    }
}

impl Drop for NetnsPair {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.a]);
        let _ = ip(&["netns", "del", &self.b]);
    }
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("running ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// TCP `RetransSegs` in the network namespace of `pid` (`/proc/<pid>/net/snmp`).
pub fn retrans_segs(pid: u32) -> Option<u64> {
    tcp_snmp(pid, "RetransSegs")
}

/// A `Tcp:` counter of `/proc/<pid>/net/snmp` (the process's network namespace).
pub fn tcp_snmp(pid: u32, field: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/net/snmp")).ok()?;
    let mut tcp = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (tcp.next()?, tcp.next()?);
    let i = names.split_whitespace().position(|n| n == field)?;
    values.split_whitespace().nth(i)?.parse().ok()
}

fn unmount(at: &Path) {
    use std::os::unix::ffi::OsStrExt as _;
    if let Ok(c) = std::ffi::CString::new(at.as_os_str().as_bytes()) {
        // SAFETY: umount2 with a valid path; a lazy unmount cannot fail on a busy mount.
        unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
    }
}

/// A tmpfs of a given size mounted on a directory, unmounted when dropped.
pub struct TmpfsMount {
    pub at: PathBuf,
}

impl TmpfsMount {
    /// Mount a tmpfs of `size` bytes on `at` (created).
    pub fn new(at: &Path, size: u64) -> Result<TmpfsMount, String> {
        use std::os::unix::ffi::OsStrExt as _;
        fs::create_dir_all(at).map_err(|e| format!("creating {}: {e}", at.display()))?;
        let target =
            std::ffi::CString::new(at.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        let data = std::ffi::CString::new(format!("size={size},mode=0755")).unwrap_or_default();
        // SAFETY: mount with valid NUL-terminated strings.
        let rc = unsafe {
            libc::mount(
                c"tmpfs".as_ptr(),
                target.as_ptr(),
                c"tmpfs".as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        };
        if rc != 0 {
            return Err(format!(
                "mounting a tmpfs on {}: {}",
                at.display(),
                std::io::Error::last_os_error()
            ));
        }
        Ok(TmpfsMount {
            at: at.to_path_buf(),
        })
    }

    /// Share of the size not available to writers now (as Kerno counts used).
    pub fn used(&self) -> f64 {
        procfs::statvfs(&self.at)
            .map(|s| 1.0 - s.avail as f64 / s.size.max(1) as f64)
            .unwrap_or(0.0)
    }
}

impl Drop for TmpfsMount {
    fn drop(&mut self) {
        unmount(&self.at);
    }
}

/// A cgroup v1 `pids` controller cgroup with a limit, removed with everything in it when
/// dropped (through [`MemCgroup`]'s removal, which is controller-agnostic).
pub struct PidsCgroup {
    cg: MemCgroup,
}

impl PidsCgroup {
    /// A v1 pids cgroup with `pids.max` `max`; `Err` when the controller is not mounted.
    pub fn v1(max: u64) -> Result<PidsCgroup, String> {
        let root = procfs::cgroup1_root("pids", "cgroup.procs")
            .ok_or("the cgroup v1 pids controller is not mounted")?;
        let name = unique("p");
        let dir = root.join(&name);
        fs::create_dir(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let cg = MemCgroup {
            dir,
            version: 1,
            path: format!("/{name}"),
        };
        cg.write("pids.max", &max.to_string())?;
        Ok(PidsCgroup { cg })
    }

    /// The path as Kerno's signals name it.
    pub fn path(&self) -> &str {
        &self.cg.path
    }

    /// The file a process writes its pid to, to join.
    pub fn procs(&self) -> PathBuf {
        self.cg.procs()
    }

    /// `(pids.current, pids.events max)`.
    pub fn usage(&self) -> (u64, u64) {
        (
            procfs::read_u64(&self.cg.dir.join("pids.current")).unwrap_or(0),
            procfs::read_keyed(&self.cg.dir.join("pids.events"), "max").unwrap_or(0),
        )
    }
}
