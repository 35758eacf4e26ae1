//! Processes and helpers every scenario uses: forked workers that die with their parent,
//! helper commands, unique names, pacing.

use std::{
    ffi::CString,
    io::Write as _,
    path::PathBuf,
    process::{Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

use super::ChaosError;

/// Every object a scenario creates (namespace, cgroup, temp dir, mount point) is named
/// `kerno-chaos-<owner pid>-<n>...`, so a later run can find what a crashed one left.
pub(crate) const PREFIX: &str = "kerno-chaos-";

static SEQ: AtomicU32 = AtomicU32::new(0);

/// Owners hold an exclusive `flock` on `/run/kerno-chaos/<pid>.lock` while they live, so
/// "is the owner gone" survives pid reuse and zombies.
const LOCK_DIR: &str = "/run/kerno-chaos";

fn lock_path(pid: u32) -> PathBuf {
    PathBuf::from(LOCK_DIR).join(format!("{pid}.lock"))
}

/// Live [`OwnerToken`]s and the lock file they share.
static OWNER: std::sync::Mutex<(usize, Option<std::fs::File>)> = std::sync::Mutex::new((0, None));

/// Held by everything that owns chaos objects ([`super::Running`], [`super::SlowFs`]):
/// while one lives, this process holds its owner lock; when the last goes, the lock file
/// is removed, so a finished run leaves nothing behind.
pub(crate) struct OwnerToken(());

impl OwnerToken {
    pub(crate) fn take() -> OwnerToken {
        let mut g = OWNER.lock().unwrap_or_else(|e| e.into_inner());
        g.0 += 1;
        if g.1.is_none() {
            g.1 = (|| {
                use std::os::fd::AsRawFd as _;
                std::fs::create_dir_all(LOCK_DIR).ok()?;
                let f = std::fs::File::create(lock_path(std::process::id())).ok()?;
                // SAFETY: flock on our own open file.
                (unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0)
                    .then_some(f)
            })();
        }
        OwnerToken(())
    }
}

impl Drop for OwnerToken {
    fn drop(&mut self) {
        let mut g = OWNER.lock().unwrap_or_else(|e| e.into_inner());
        g.0 = g.0.saturating_sub(1);
        if g.0 == 0 && g.1.take().is_some() {
            let _ = std::fs::remove_file(lock_path(std::process::id()));
            let _ = std::fs::remove_dir(LOCK_DIR);
        }
    }
}

/// A new unique name `kerno-chaos-<pid>-<n>` for this process.
pub(crate) fn unique_name() -> String {
    format!(
        "{PREFIX}{}-{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    )
}

/// The owner pid a `kerno-chaos-<pid>-...` name carries.
pub(crate) fn owner_pid(name: &str) -> Option<u32> {
    let rest = &name[name.find(PREFIX)? + PREFIX.len()..];
    rest.split('-').next()?.parse().ok()
}

/// Remove the lock files of owners that are gone.
pub(crate) fn clean_stale_locks() {
    let Ok(dir) = std::fs::read_dir(LOCK_DIR) else {
        return;
    };
    for e in dir.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(pid) = name.strip_suffix(".lock") {
            // owner_gone removes the file when its lock is free.
            let _ = owner_gone(&format!("{PREFIX}{pid}-"));
        }
    }
    let _ = std::fs::remove_dir(LOCK_DIR);
}

/// Whether the process that owns a name is gone (so what it named is stale).
pub(crate) fn owner_gone(name: &str) -> bool {
    let Some(pid) = owner_pid(name) else {
        return false;
    };
    if pid == std::process::id() {
        return false;
    }
    if let Ok(f) = std::fs::File::open(lock_path(pid)) {
        use std::os::fd::AsRawFd as _;
        // SAFETY: flock on a file we just opened; the lock (if we get it) is released when
        // `f` closes.
        let free = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if free {
            let _ = std::fs::remove_file(lock_path(pid));
        }
        return free;
    }
    // No lock file (an owner that could not create one): alive unless gone or a zombie.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Fail unless the effective uid is root.
pub(crate) fn require_root() -> Result<(), ChaosError> {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        Ok(())
    } else {
        Err(ChaosError::NotRoot { euid })
    }
}

fn package_of(tool: &str) -> &'static str {
    match tool {
        "ip" | "tc" => "iproute2",
        "nft" => "nftables",
        "mkfs.ext4" => "e2fsprogs",
        _ => "unknown",
    }
}

/// Run a helper program to completion; its stdout on success.
pub(crate) fn run(tool: &str, args: &[&str], stdin: Option<&str>) -> Result<String, ChaosError> {
    let line = format!("{tool} {}", args.join(" "));
    let mut child = Command::new(tool)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ChaosError::MissingTool {
                    tool: tool.into(),
                    package: package_of(tool).into(),
                }
            } else {
                ChaosError::io(format!("running `{line}`"), e)
            }
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| ChaosError::io(format!("writing to `{line}`"), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| ChaosError::io(format!("waiting for `{line}`"), e))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ChaosError::Command {
            command: line,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

/// Paces a loop at a fixed rate: `wait` sleeps until the next tick.
pub(crate) struct Pace {
    interval: Duration,
    next: Instant,
}

impl Pace {
    /// `per_sec` ticks a second.
    pub(crate) fn per_sec(per_sec: f64) -> Pace {
        Pace {
            interval: Duration::from_secs_f64(1.0 / per_sec.max(0.001)),
            next: Instant::now(),
        }
    }

    /// Sleep until the next tick. A loop that fell behind catches up without sleeping,
    /// but never by more than a second's worth of ticks.
    pub(crate) fn wait(&mut self) {
        self.next += self.interval;
        let now = Instant::now();
        if self.next > now {
            std::thread::sleep(self.next - now);
        } else if now - self.next > Duration::from_secs(1) {
            self.next = now;
        }
    }
}

/// What a forked worker joins before it runs its workload.
#[derive(Default, Clone)]
pub(crate) struct WorkerSpec {
    /// Its name (`comm`, at most 15 bytes shown).
    pub comm: String,
    /// `cgroup.procs` files it writes its pid to.
    pub cgroup_procs: Vec<PathBuf>,
    /// A network namespace to enter (`/run/netns/<name>`).
    pub netns: Option<PathBuf>,
    /// Soft `RLIMIT_NOFILE` (capped at the hard limit, which is kept).
    pub nofile: Option<u64>,
    /// `oom_score_adj`.
    pub oom_score_adj: Option<i32>,
    /// Drop to this uid and gid (after joining everything else).
    pub uid: Option<u32>,
}

/// Handed to a worker's workload: tell the parent the worker is ready (or why it is not).
pub(crate) struct Ready {
    fd: libc::c_int,
}

impl Ready {
    /// The worker is ready; the parent's `spawn` returns.
    pub(crate) fn ok(self) {
        let b = [0u8];
        // SAFETY: fd is the pipe's write end, owned by this worker.
        unsafe {
            libc::write(self.fd, b.as_ptr().cast(), 1);
            libc::close(self.fd);
        }
    }

    /// The worker cannot run; the parent's `spawn` fails with `reason`.
    pub(crate) fn fail(self, reason: &str) {
        let mut msg = vec![1u8];
        msg.extend_from_slice(reason.as_bytes());
        msg.truncate(500);
        // SAFETY: as in `ok`.
        unsafe {
            libc::write(self.fd, msg.as_ptr().cast(), msg.len());
            libc::close(self.fd);
        }
    }
}

/// A forked workload process. Dropping it kills (SIGKILL) and reaps it.
///
/// The process gets `PR_SET_PDEATHSIG(SIGKILL)`, so it also dies when the thread that
/// spawned it exits (or the whole program crashes): a worker never outlives its owner.
/// It runs in its own process group, so a Ctrl-C at the terminal reaches only the owner,
/// which then tears everything down in order.
pub(crate) struct Worker {
    pid: libc::pid_t,
    comm: String,
    exited: Option<String>,
}

impl Worker {
    /// Its pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// Its name.
    pub(crate) fn comm(&self) -> &str {
        &self.comm
    }

    /// `None` while it runs; how it ended once it has (reaps it).
    pub(crate) fn poll_exit(&mut self) -> Option<&str> {
        if self.exited.is_none() {
            let mut status = 0;
            // SAFETY: waitpid on our own child with WNOHANG.
            let r = unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            if r == self.pid {
                self.exited = Some(describe_status(status));
            } else if r < 0 {
                self.exited = Some("already reaped".into());
            }
        }
        self.exited.as_deref()
    }

    /// Wait for it to exit by itself; how it ended.
    pub(crate) fn wait(mut self) -> String {
        if let Some(s) = &self.exited {
            return s.clone();
        }
        let status = reap(self.pid);
        self.exited = Some(status.clone());
        status
    }
}

fn reap(pid: libc::pid_t) -> String {
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            return describe_status(status);
        }
        if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return "already reaped".into();
        }
    }
}

/// `exit 3`, `killed by signal 9`.
pub(crate) fn describe_status(status: libc::c_int) -> String {
    if libc::WIFEXITED(status) {
        format!("exit {}", libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("status {status:#x}")
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if self.exited.is_none() {
            // SAFETY: signalling and reaping our own, not yet reaped, child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            self.exited = Some(reap(self.pid));
        }
    }
}

fn setup_child(spec: &WorkerSpec, comm: &CString) -> Result<(), String> {
    // SAFETY: prctl with a valid NUL-terminated name.
    unsafe { libc::prctl(libc::PR_SET_NAME, comm.as_ptr() as libc::c_ulong, 0, 0, 0) };
    let pid = std::process::id().to_string();
    for procs in &spec.cgroup_procs {
        std::fs::write(procs, &pid).map_err(|e| format!("joining {}: {e}", procs.display()))?;
    }
    if let Some(ns) = &spec.netns {
        let f = std::fs::File::open(ns).map_err(|e| format!("opening {}: {e}", ns.display()))?;
        use std::os::fd::AsRawFd as _;
        // SAFETY: setns on a namespace file we hold open.
        if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!(
                "entering {}: {}",
                ns.display(),
                std::io::Error::last_os_error()
            ));
        }
    }
    if let Some(n) = spec.nofile {
        let lim = libc::rlimit {
            rlim_cur: n.min(nofile_hard()),
            rlim_max: nofile_hard(),
        };
        // SAFETY: setrlimit with a valid struct.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(format!(
                "setting RLIMIT_NOFILE: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    if let Some(adj) = spec.oom_score_adj {
        std::fs::write("/proc/self/oom_score_adj", adj.to_string())
            .map_err(|e| format!("setting oom_score_adj: {e}"))?;
    }
    if let Some(uid) = spec.uid {
        // SAFETY: dropping privileges; each call is checked.
        unsafe {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(uid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(format!(
                    "dropping to uid {uid}: {}",
                    std::io::Error::last_os_error()
                ));
            }
        }
    }
    Ok(())
}

/// Fork a worker that joins what `spec` names and runs `work`, which must call
/// [`Ready::ok`] (or [`Ready::fail`]) once it is running; its return value is the
/// worker's exit status. Returns once the worker said it is ready.
///
/// The child runs `work` in a copy of this process without exec: it must not touch locks
/// other threads of the parent might have held at the fork (stdout/stderr, the
/// environment). Allocation is fine (glibc's allocator is fork-safe).
pub(crate) fn spawn(
    spec: &WorkerSpec,
    work: impl FnOnce(Ready) -> i32,
) -> Result<Worker, ChaosError> {
    let comm = CString::new(spec.comm.as_bytes()).unwrap_or_default();
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(ChaosError::last_os("creating a pipe for a worker"));
    }
    let (rd, wr) = (fds[0], fds[1]);
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: fork; the child below only runs the setup and the workload and always ends
    // with _exit, never returning into the caller's frames.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = ChaosError::last_os("forking a worker");
        // SAFETY: closing our own fds.
        unsafe {
            libc::close(rd);
            libc::close(wr);
        }
        return Err(e);
    }
    if pid == 0 {
        // SAFETY: in the child: plain syscalls on its own state.
        unsafe {
            libc::close(rd);
            libc::prctl(
                libc::PR_SET_PDEATHSIG,
                libc::SIGKILL as libc::c_ulong,
                0,
                0,
                0,
            );
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            libc::setpgid(0, 0);
            for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT] {
                libc::signal(sig, libc::SIG_DFL);
            }
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            // The status pipe becomes fd 3; every other inherited descriptor (the
            // parent's probes, a FUSE device, test harness pipes) is closed.
            if wr != 3 && libc::dup2(wr, 3) != 3 {
                libc::_exit(1);
            }
            libc::syscall(libc::SYS_close_range, 4u32, u32::MAX, 0u32);
        }
        let ready = Ready { fd: 3 };
        let code = match setup_child(spec, &comm) {
            Err(reason) => {
                ready.fail(&reason);
                1
            }
            Ok(()) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(ready)))
                .unwrap_or(101),
        };
        // SAFETY: ending the child without running the parent's atexit handlers.
        unsafe { libc::_exit(code) };
    }
    // SAFETY: the parent's copy of the write end.
    unsafe { libc::close(wr) };
    let mut worker = Worker {
        pid,
        comm: spec.comm.clone(),
        exited: None,
    };
    let mut buf = [0u8; 512];
    let mut pfd = libc::pollfd {
        fd: rd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll and read on our pipe.
    let n = unsafe {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = libc::poll(&mut pfd, 1, left.as_millis() as libc::c_int);
            if r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            break if r > 0 {
                libc::read(rd, buf.as_mut_ptr().cast(), buf.len())
            } else {
                -2
            };
        }
    };
    // SAFETY: closing our read end.
    unsafe { libc::close(rd) };
    match n {
        n if n >= 1 && buf[0] == 0 => Ok(worker),
        -2 => Err(ChaosError::Worker {
            name: spec.comm.clone(),
            reason: "not ready after 30 s".into(),
        }),
        n if n >= 1 => Err(ChaosError::Worker {
            name: spec.comm.clone(),
            reason: String::from_utf8_lossy(&buf[1..n as usize]).into_owned(),
        }),
        _ => {
            let status = worker.poll_exit().map(str::to_string);
            drop(worker);
            Err(ChaosError::Worker {
                name: spec.comm.clone(),
                reason: format!(
                    "exited before it was ready ({})",
                    status.unwrap_or_else(|| "no status".into())
                ),
            })
        }
    }
}

/// Write a value to a kernel file (cgroupfs, procfs), with the path in the error.
pub(crate) fn write_file(path: &std::path::Path, value: &str) -> Result<(), ChaosError> {
    std::fs::write(path, value)
        .map_err(|e| ChaosError::io(format!("writing {value:?} to {}", path.display()), e))
}

/// The pids listed in a `cgroup.procs`-like file.
pub(crate) fn read_pids(path: &std::path::Path) -> Vec<u32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

/// The hard `RLIMIT_NOFILE` of this process (a worker's soft limit cannot exceed it
/// without CAP_SYS_RESOURCE, which containers often drop).
pub(crate) fn nofile_hard() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 1024;
    }
    lim.rlim_max
}

/// Online CPUs.
pub(crate) fn cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}
