//! [`SlowDevice`]: a real block device (a loop device) whose every request takes a chosen
//! time, because the file behind it lives on a [`SlowFs`] that waits before answering.

use std::{path::Path, time::Duration};

use super::{
    ChaosError,
    fsguard::Mount,
    fuse::{SlowFs, SlowFsStats},
    loopdev::LoopDevice,
    sys::run,
};

/// A loop device over a file on a slow FUSE filesystem: each read, write and flush of the
/// device waits `delay` in the FUSE server (one request at a time, like a saturated disk),
/// so the block layer sees a device latency of about `delay` per request (more when
/// requests queue).
///
/// ```no_run
/// use std::time::Duration;
/// use kerno_chaos::SlowDevice;
///
/// // Needs root. A 64 MiB ext4 filesystem whose writes take 50 ms each.
/// let dev = SlowDevice::with_ext4(64 << 20, Duration::from_millis(50))?;
/// let file = dev.mountpoint().unwrap().join("data");
/// std::fs::write(&file, b"hello")?;
/// std::fs::File::open(&file)?.sync_all()?; // slow
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SlowDevice {
    // Dropped in this order: the ext4 mount, the loop device, the FUSE filesystem.
    ext4: Option<Mount>,
    loopdev: LoopDevice,
    fs: SlowFs,
}

impl SlowDevice {
    /// A raw block device of `size` bytes (rounded to 4 KiB) with `delay` per request.
    /// Needs root, FUSE and loop devices.
    pub fn new(size: u64, delay: Duration) -> Result<SlowDevice, ChaosError> {
        let dev = SlowDevice::attach(size)?;
        dev.set_delay(delay);
        Ok(dev)
    }

    /// Like [`SlowDevice::new`], with an ext4 filesystem made and mounted on it (at
    /// [`SlowDevice::mountpoint`]); formatting and mounting run without the delay.
    pub fn with_ext4(size: u64, delay: Duration) -> Result<SlowDevice, ChaosError> {
        let mut dev = SlowDevice::attach(size)?;
        let devpath = dev.loopdev.path().to_string_lossy().into_owned();
        run(
            "mkfs.ext4",
            &[
                "-q",
                "-F",
                "-m",
                "0",
                "-E",
                "nodiscard,lazy_itable_init=0,lazy_journal_init=0",
                &devpath,
            ],
            None,
        )?;
        let at = dev.fs.dir().subdir("ext4")?;
        dev.ext4 = Some(Mount::new(&devpath, &at, "ext4", 0, "")?);
        dev.set_delay(delay);
        Ok(dev)
    }

    fn attach(size: u64) -> Result<SlowDevice, ChaosError> {
        let size = size.max(1 << 20).div_ceil(4096) * 4096;
        let fs = SlowFs::new(size)?;
        let loopdev = LoopDevice::attach(&fs.image())?;
        Ok(SlowDevice {
            ext4: None,
            loopdev,
            fs,
        })
    }

    /// The device node (`/dev/loopN`).
    pub fn device(&self) -> &Path {
        self.loopdev.path()
    }

    /// The kernel's name for it (`loopN`), as block signals report it.
    pub fn name(&self) -> String {
        self.device()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `(major, minor)`.
    pub fn dev(&self) -> (u32, u32) {
        self.loopdev.dev()
    }

    /// Where the ext4 filesystem is mounted ([`SlowDevice::with_ext4`] only).
    pub fn mountpoint(&self) -> Option<&Path> {
        self.ext4.as_ref().map(|m| m.target())
    }

    /// Change the per-request delay (takes effect with the next request).
    pub fn set_delay(&self, delay: Duration) {
        self.fs.set_io_delay(delay);
    }

    /// The per-request delay.
    pub fn delay(&self) -> Duration {
        self.fs.io_delay()
    }

    /// The FUSE server's pid (a helper, not a workload).
    pub fn server_pid(&self) -> u32 {
        self.fs.server_pid()
    }

    /// Requests the server answered (reads, writes, fsyncs of the backing file).
    pub fn stats(&self) -> SlowFsStats {
        self.fs.stats()
    }

    /// Whether the FUSE server died (`Some(how)`).
    pub(crate) fn server_exit(&mut self) -> Option<String> {
        self.fs.server_exit()
    }
}

impl Drop for SlowDevice {
    fn drop(&mut self) {
        // The final sync at unmount goes through at full speed.
        self.set_delay(Duration::ZERO);
    }
}
