//! A scenario's cgroup: the same name `kerno-chaos-<pid>-<n>` in the cgroup v2 hierarchy
//! (so every worker's cgroup path names the scenario) and, for memory scenarios, with a
//! memory limit (cgroup v1 `memory` controller, or v2 `memory.max` on a pure v2 host).

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    ChaosError,
    sys::{read_pids, unique_name, write_file},
};
use kerno_core::procfs;

/// A cgroup that removes itself (killing anything left in it) when dropped.
pub(crate) struct ScenarioCgroup {
    name: String,
    /// Directory in the v2 hierarchy, when there is one.
    v2: Option<PathBuf>,
    /// The memory-limited directory and its cgroup version.
    memory: Option<(PathBuf, u8)>,
    /// The pids-limited directory in the cgroup v1 `pids` controller.
    pids: Option<PathBuf>,
    /// Directories in other cgroup v1 controllers (`cpu`, `blkio`) with their limits.
    v1: Vec<PathBuf>,
}

impl ScenarioCgroup {
    /// A cgroup without limits (only a name for the workers' processes). Without a cgroup
    /// v2 hierarchy it is empty, which is fine: it only labels.
    pub(crate) fn new() -> Result<ScenarioCgroup, ChaosError> {
        let name = unique_name();
        let mut cg = ScenarioCgroup {
            name,
            v2: None,
            memory: None,
            pids: None,
            v1: Vec::new(),
        };
        if let Some(root) = procfs::cgroup2_root() {
            let dir = root.join(&cg.name);
            std::fs::create_dir(&dir)
                .map_err(|e| ChaosError::io(format!("creating cgroup {}", dir.display()), e))?;
            cg.v2 = Some(dir);
        }
        Ok(cg)
    }

    /// A cgroup whose memory is limited to `limit` bytes, without swap.
    pub(crate) fn with_memory_limit(limit: u64) -> Result<ScenarioCgroup, ChaosError> {
        let mut cg = ScenarioCgroup::new()?;
        if let Some(root) = procfs::cgroup1_memory_root() {
            let dir = root.join(&cg.name);
            std::fs::create_dir(&dir)
                .map_err(|e| ChaosError::io(format!("creating cgroup {}", dir.display()), e))?;
            cg.memory = Some((dir.clone(), 1));
            write_file(&dir.join("memory.limit_in_bytes"), &limit.to_string())?;
            // Without swap in the picture the limit is the limit.
            let _ = std::fs::write(dir.join("memory.swappiness"), "0");
            let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), limit.to_string());
            return Ok(cg);
        }
        let (Some(root), Some(dir)) = (procfs::cgroup2_root(), cg.v2.clone()) else {
            return Err(ChaosError::Unsupported(
                "no memory cgroup controller is mounted (neither cgroup v1 `memory` nor cgroup v2)"
                    .into(),
            ));
        };
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if !controllers.split_whitespace().any(|c| c == "memory") {
            return Err(ChaosError::Unsupported(format!(
                "the cgroup v2 hierarchy at {} has no memory controller and cgroup v1 `memory` is not mounted",
                root.display()
            )));
        }
        write_file(&root.join("cgroup.subtree_control"), "+memory")?;
        write_file(&dir.join("memory.max"), &limit.to_string())?;
        let _ = std::fs::write(dir.join("memory.swap.max"), "0");
        cg.memory = Some((dir, 2));
        Ok(cg)
    }

    /// A cgroup whose tasks (processes and threads) are limited to `max` (cgroup v1 `pids`
    /// controller, or v2 `pids.max` when the v2 hierarchy has the controller).
    pub(crate) fn with_pids_limit(max: u64) -> Result<ScenarioCgroup, ChaosError> {
        let mut cg = ScenarioCgroup::new()?;
        if let Some(root) = procfs::cgroup1_root("pids", "cgroup.procs") {
            let dir = root.join(&cg.name);
            std::fs::create_dir(&dir)
                .map_err(|e| ChaosError::io(format!("creating cgroup {}", dir.display()), e))?;
            cg.pids = Some(dir.clone());
            write_file(&dir.join("pids.max"), &max.to_string())?;
            return Ok(cg);
        }
        let (Some(root), Some(dir)) = (procfs::cgroup2_root(), cg.v2.clone()) else {
            return Err(ChaosError::Unsupported(
                "no pids cgroup controller is mounted (neither cgroup v1 `pids` nor cgroup v2)"
                    .into(),
            ));
        };
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if !controllers.split_whitespace().any(|c| c == "pids") {
            return Err(ChaosError::Unsupported(format!(
                "the cgroup v2 hierarchy at {} has no pids controller and cgroup v1 `pids` is not mounted",
                root.display()
            )));
        }
        write_file(&root.join("cgroup.subtree_control"), "+pids")?;
        write_file(&dir.join("pids.max"), &max.to_string())?;
        Ok(cg)
    }

    /// The directory holding `pids.current` and `pids.events`, when the cgroup has a pids
    /// limit.
    pub(crate) fn pids_dir(&self) -> Option<PathBuf> {
        self.pids
            .clone()
            .or_else(|| self.v2.clone().filter(|d| d.join("pids.max").is_file()))
    }

    /// A cgroup whose CPU is limited to `quota_us` every `period_us` (the cgroup v1 `cpu`
    /// controller's CFS quota, or v2 `cpu.max` on a host without it).
    pub(crate) fn with_cpu_quota(
        quota_us: u64,
        period_us: u64,
    ) -> Result<ScenarioCgroup, ChaosError> {
        let mut cg = ScenarioCgroup::new()?;
        if let Some(root) = procfs::cgroup1_root("cpu", "cpu.cfs_quota_us") {
            let dir = cg.v1_dir(&root)?;
            write_file(&dir.join("cpu.cfs_period_us"), &period_us.to_string())?;
            write_file(&dir.join("cpu.cfs_quota_us"), &quota_us.to_string())?;
            return Ok(cg);
        }
        let dir = cg.v2_with("cpu")?;
        write_file(&dir.join("cpu.max"), &format!("{quota_us} {period_us}"))?;
        Ok(cg)
    }

    /// A cgroup whose reads from block device `major:minor` are throttled to `bps` bytes a
    /// second (cgroup v1 `blkio.throttle.read_bps_device`, or v2 `io.max`).
    pub(crate) fn with_read_bps(dev: (u32, u32), bps: u64) -> Result<ScenarioCgroup, ChaosError> {
        let mut cg = ScenarioCgroup::new()?;
        let (ma, mi) = dev;
        if let Some(root) = procfs::cgroup1_root("blkio", "blkio.throttle.read_bps_device") {
            let dir = cg.v1_dir(&root)?;
            write_file(
                &dir.join("blkio.throttle.read_bps_device"),
                &format!("{ma}:{mi} {bps}"),
            )?;
            return Ok(cg);
        }
        let dir = cg.v2_with("io")?;
        write_file(&dir.join("io.max"), &format!("{ma}:{mi} rbps={bps}"))?;
        Ok(cg)
    }

    fn v1_dir(&mut self, root: &Path) -> Result<PathBuf, ChaosError> {
        let dir = root.join(&self.name);
        std::fs::create_dir(&dir)
            .map_err(|e| ChaosError::io(format!("creating cgroup {}", dir.display()), e))?;
        self.v1.push(dir.clone());
        Ok(dir)
    }

    /// The v2 directory, with `controller` enabled for it.
    fn v2_with(&self, controller: &str) -> Result<PathBuf, ChaosError> {
        let (Some(root), Some(dir)) = (procfs::cgroup2_root(), self.v2.clone()) else {
            return Err(ChaosError::Unsupported(format!(
                "no cgroup `{controller}` controller is mounted (neither cgroup v1 nor v2)"
            )));
        };
        let controllers =
            std::fs::read_to_string(root.join("cgroup.controllers")).unwrap_or_default();
        if !controllers.split_whitespace().any(|c| c == controller) {
            return Err(ChaosError::Unsupported(format!(
                "the cgroup v2 hierarchy at {} has no {controller} controller and cgroup v1 `{controller}` is not mounted",
                root.display()
            )));
        }
        write_file(
            &root.join("cgroup.subtree_control"),
            &format!("+{controller}"),
        )?;
        Ok(dir)
    }

    /// The cgroup's path below each controller's mount (`/kerno-chaos-<pid>-<n>`), as
    /// Kerno's signals report it.
    pub(crate) fn path(&self) -> String {
        format!("/{}", self.name)
    }

    /// The `cgroup.procs` files a worker writes its pid to.
    pub(crate) fn procs_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = Vec::new();
        for d in self
            .v2
            .iter()
            .chain(self.memory.as_ref().map(|(d, _)| d))
            .chain(self.pids.as_ref())
            .chain(&self.v1)
        {
            let p = d.join("cgroup.procs");
            if !v.contains(&p) {
                v.push(p);
            }
        }
        v
    }

    /// The file holding current memory usage, bytes.
    pub(crate) fn usage_file(&self) -> Option<PathBuf> {
        self.memory.as_ref().map(|(d, v)| {
            d.join(if *v == 1 {
                "memory.usage_in_bytes"
            } else {
                "memory.current"
            })
        })
    }
}

/// Kill whatever is in a cgroup directory and remove it. Errors name the directory.
pub(crate) fn remove_cgroup_dir(dir: &Path) -> Result<(), String> {
    let procs = dir.join("cgroup.procs");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let pids = read_pids(&procs);
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            // SAFETY: kill takes any pid; these are the scenario's own workers.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
        }
        if Instant::now() > deadline {
            return Err(format!("cgroup {} still has processes", dir.display()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // A cgroup whose last process just died can briefly refuse removal.
    let mut last = None;
    for _ in 0..100 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => last = Some(e),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Err(format!(
        "removing cgroup {}: {}",
        dir.display(),
        last.map(|e| e.to_string()).unwrap_or_default()
    ))
}

impl ScenarioCgroup {
    /// Remove the cgroup now; errors name what is left.
    pub(crate) fn remove(&mut self) -> Vec<String> {
        let mut errors = Vec::new();
        if let Some((dir, 1)) = self.memory.take() {
            errors.extend(remove_cgroup_dir(&dir).err());
        }
        if let Some(dir) = self.pids.take() {
            errors.extend(remove_cgroup_dir(&dir).err());
        }
        for dir in std::mem::take(&mut self.v1) {
            errors.extend(remove_cgroup_dir(&dir).err());
        }
        if let Some(dir) = self.v2.take() {
            errors.extend(remove_cgroup_dir(&dir).err());
        }
        errors
    }
}

impl Drop for ScenarioCgroup {
    fn drop(&mut self) {
        let _ = self.remove();
    }
}
