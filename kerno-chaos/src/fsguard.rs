//! Temporary directories and mounts that undo themselves when dropped.

use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
};

use super::{ChaosError, sys::unique_name};

/// `temp_dir()/kerno-chaos-<pid>-<n>`, removed on drop (unless something is still
/// mounted below it: then stale cleanup removes it later, after the mount is gone).
pub(crate) struct TempDir {
    path: PathBuf,
}

impl TempDir {
    pub(crate) fn new() -> Result<TempDir, ChaosError> {
        let path = std::env::temp_dir().join(unique_name());
        std::fs::create_dir(&path)
            .map_err(|e| ChaosError::io(format!("creating {}", path.display()), e))?;
        Ok(TempDir { path })
    }

    /// A subdirectory, created.
    pub(crate) fn subdir(&self, name: &str) -> Result<PathBuf, ChaosError> {
        let p = self.path.join(name);
        std::fs::create_dir_all(&p)
            .map_err(|e| ChaosError::io(format!("creating {}", p.display()), e))?;
        Ok(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if mounts_below(&self.path).is_empty() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Mount points at or below `dir`, deepest first.
pub(crate) fn mounts_below(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with(dir))
        .collect();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v
}

/// Every mount point of this mount namespace.
pub(crate) fn mount_points() -> Vec<PathBuf> {
    mounts().into_iter().map(|(p, _)| p).collect()
}

/// Every mount point of this mount namespace with its filesystem type.
pub(crate) fn mounts() -> Vec<(PathBuf, String)> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let point = l.split(' ').nth(4)?;
            let fstype = l.split(" - ").nth(1)?.split(' ').next()?;
            Some((PathBuf::from(unescape(point)), fstype.to_string()))
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
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

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).unwrap_or_default()
}

/// Unmount `target`; lazily (MNT_DETACH) when it is busy.
pub(crate) fn unmount(target: &Path) -> Result<(), String> {
    let c = cstr(target);
    // SAFETY: umount2 with a valid path.
    if unsafe { libc::umount2(c.as_ptr(), 0) } == 0 {
        return Ok(());
    }
    // SAFETY: as above.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) } == 0 {
        return Ok(());
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINVAL) || e.raw_os_error() == Some(libc::ENOENT) {
        // Not a mount point (any more).
        return Ok(());
    }
    Err(format!("unmounting {}: {e}", target.display()))
}

/// A mount, unmounted on drop.
pub(crate) struct Mount {
    target: PathBuf,
}

impl Mount {
    pub(crate) fn new(
        source: &str,
        target: &Path,
        fstype: &str,
        flags: libc::c_ulong,
        data: &str,
    ) -> Result<Mount, ChaosError> {
        let (s, t, f, d) = (
            CString::new(source).unwrap_or_default(),
            cstr(target),
            CString::new(fstype).unwrap_or_default(),
            CString::new(data).unwrap_or_default(),
        );
        // SAFETY: mount with valid NUL-terminated strings.
        if unsafe { libc::mount(s.as_ptr(), t.as_ptr(), f.as_ptr(), flags, d.as_ptr().cast()) } != 0
        {
            return Err(ChaosError::last_os(format!(
                "mounting {source} ({fstype}) on {}",
                target.display()
            )));
        }
        Ok(Mount {
            target: target.to_path_buf(),
        })
    }

    /// Take over a mount made elsewhere (by a worker).
    pub(crate) fn adopt(target: &Path) -> Mount {
        Mount {
            target: target.to_path_buf(),
        }
    }

    pub(crate) fn target(&self) -> &Path {
        &self.target
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = unmount(&self.target);
    }
}
