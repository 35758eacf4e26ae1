//! Loop devices attached with `LOOP_CONFIGURE` and the autoclear flag: the device detaches
//! itself when its last user closes it, so even a crashed run leaves no attached loop
//! device once its mounts are gone.

use std::{
    fs::{File, OpenOptions},
    os::{fd::AsRawFd as _, unix::fs::MetadataExt as _},
    path::{Path, PathBuf},
    time::Duration,
};

use super::ChaosError;

const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

/// An attached loop device. Dropping it detaches it (at once, or when its last user, such
/// as a mount, lets go).
pub(crate) struct LoopDevice {
    dev: File,
    path: PathBuf,
    major: u32,
    minor: u32,
}

impl LoopDevice {
    /// Attach `backing` (read-write) to a free loop device.
    pub(crate) fn attach(backing: &Path) -> Result<LoopDevice, ChaosError> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(backing)
            .map_err(|e| ChaosError::io(format!("opening {}", backing.display()), e))?;
        let ctl = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/loop-control")
            .map_err(|e| ChaosError::io("opening /dev/loop-control (loop device support)", e))?;
        let mut name = [0u8; 64];
        let s = backing.as_os_str().as_encoded_bytes();
        let n = s.len().min(63);
        name[..n].copy_from_slice(&s[..n]);
        // Another process can take the free device between the two calls: retry.
        let mut last = None;
        for _ in 0..20 {
            // SAFETY: ioctl on /dev/loop-control without argument.
            let nr = unsafe { libc::ioctl(ctl.as_raw_fd(), LOOP_CTL_GET_FREE) };
            if nr < 0 {
                return Err(ChaosError::last_os("finding a free loop device"));
            }
            let path = PathBuf::from(format!("/dev/loop{nr}"));
            let dev = match OpenOptions::new().read(true).write(true).open(&path) {
                Ok(d) => d,
                Err(e) => {
                    last = Some(ChaosError::io(format!("opening {}", path.display()), e));
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            };
            let cfg = LoopConfig {
                fd: file.as_raw_fd() as u32,
                block_size: 0,
                info: LoopInfo64 {
                    lo_device: 0,
                    lo_inode: 0,
                    lo_rdevice: 0,
                    lo_offset: 0,
                    lo_sizelimit: 0,
                    lo_number: 0,
                    lo_encrypt_type: 0,
                    lo_encrypt_key_size: 0,
                    lo_flags: LO_FLAGS_AUTOCLEAR,
                    lo_file_name: name,
                    lo_crypt_name: [0; 64],
                    lo_encrypt_key: [0; 32],
                    lo_init: [0; 2],
                },
                reserved: [0; 8],
            };
            // SAFETY: LOOP_CONFIGURE with a valid, fully initialised struct.
            if unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE, &cfg) } == 0 {
                let rdev = dev
                    .metadata()
                    .map_err(|e| ChaosError::io(format!("stat {}", path.display()), e))?
                    .rdev();
                return Ok(LoopDevice {
                    dev,
                    path,
                    major: libc::major(rdev),
                    minor: libc::minor(rdev),
                });
            }
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EBUSY) {
                return Err(ChaosError::io(
                    format!("attaching {} to {}", backing.display(), path.display()),
                    e,
                ));
            }
            last = Some(ChaosError::io(format!("attaching {}", path.display()), e));
        }
        Err(last.unwrap_or_else(|| ChaosError::Unsupported("no free loop device".into())))
    }

    /// `/dev/loopN`.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// `(major, minor)`.
    pub(crate) fn dev(&self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

/// Detach a loop device by path (stale cleanup). With other users the kernel detaches it
/// when they let go.
pub(crate) fn detach(path: &Path) -> Result<(), String> {
    let f = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    // SAFETY: LOOP_CLR_FD takes no argument.
    if unsafe { libc::ioctl(f.as_raw_fd(), LOOP_CLR_FD, 0) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::ENXIO) {
            return Err(format!("detaching {}: {e}", path.display()));
        }
    }
    Ok(())
}

impl Drop for LoopDevice {
    fn drop(&mut self) {
        // SAFETY: LOOP_CLR_FD on our own open device; failure (busy) leaves autoclear to
        // finish the job when the last user closes it.
        unsafe { libc::ioctl(self.dev.as_raw_fd(), LOOP_CLR_FD, 0) };
    }
}
