//! A tiny FUSE filesystem whose answers take as long as we say: the honest way to make a
//! device or a filesystem slow on a kernel without netem-like block tools (no null_blk,
//! no device-mapper delay).
//!
//! It speaks the kernel's FUSE protocol on `/dev/fuse` directly (the handful of operations
//! a loop device and `stat` need) from a forked server process. The root directory holds:
//!
//! - `disk.img`: a regular file, kept in the server's memory, whose reads, writes and
//!   fsyncs each wait the *I/O delay* (one at a time, like a saturated device). A loop
//!   device over it is a block device with that latency.
//! - `slow`: an empty file that is never cached, so every `stat`/`open` of it asks the
//!   server, and every lookup, getattr and statfs waits the *metadata delay* (served
//!   concurrently, like a hung network filesystem).

use std::{
    ffi::CString,
    os::unix::ffi::OsStrExt as _,
    path::{Path, PathBuf},
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use super::{
    ChaosError,
    fsguard::{Mount, TempDir},
    sys::{OwnerToken, Ready, Worker, WorkerSpec, spawn},
};

const ROOT: u64 = 1;
const IMAGE: u64 = 2;
const SLOW: u64 = 3;
/// The largest write the kernel sends in one request (with `FUSE_MAX_PAGES`).
const MAX_WRITE: usize = 1 << 20;
const IN_HEADER: usize = 40;

// Opcodes (include/uapi/linux/fuse.h).
const LOOKUP: u32 = 1;
const FORGET: u32 = 2;
const GETATTR: u32 = 3;
const SETATTR: u32 = 4;
const OPEN: u32 = 14;
const READ: u32 = 15;
const WRITE: u32 = 16;
const STATFS: u32 = 17;
const RELEASE: u32 = 18;
const FSYNC: u32 = 20;
const FLUSH: u32 = 25;
const INIT: u32 = 26;
const OPENDIR: u32 = 27;
const READDIR: u32 = 28;
const RELEASEDIR: u32 = 29;
const FSYNCDIR: u32 = 30;
const ACCESS: u32 = 34;
const INTERRUPT: u32 = 36;
const DESTROY: u32 = 38;
const BATCH_FORGET: u32 = 42;

// INIT flags.
const ASYNC_READ: u32 = 1 << 0;
const BIG_WRITES: u32 = 1 << 5;
const PARALLEL_DIROPS: u32 = 1 << 18;
const MAX_PAGES: u32 = 1 << 22;

/// Requests the server answered, by kind (since it was mounted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SlowFsStats {
    /// READ requests.
    pub reads: u64,
    /// WRITE requests.
    pub writes: u64,
    /// FSYNC requests.
    pub fsyncs: u64,
    /// LOOKUP requests.
    pub lookups: u64,
    /// GETATTR requests.
    pub getattrs: u64,
    /// STATFS requests.
    pub statfs: u64,
}

/// Shared between the parent and the server: the delays (set by the parent at any time)
/// and the request counters (kept by the server).
#[repr(C)]
struct Ctl {
    io_delay_ns: AtomicU64,
    meta_delay_ns: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    fsyncs: AtomicU64,
    lookups: AtomicU64,
    getattrs: AtomicU64,
    statfs: AtomicU64,
}

/// One shared anonymous page holding a [`Ctl`].
struct Shared {
    ptr: *mut Ctl,
}

// SAFETY: the page is only accessed through atomics.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    fn new() -> Result<Shared, ChaosError> {
        // SAFETY: a fresh anonymous shared mapping, zero-filled by the kernel (zero is a
        // valid AtomicU64).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(ChaosError::last_os("mapping a shared page"));
        }
        Ok(Shared { ptr: p.cast() })
    }

    fn ctl(&self) -> &Ctl {
        // SAFETY: the mapping lives as long as self and holds a Ctl.
        unsafe { &*self.ptr }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // SAFETY: unmapping our own mapping.
        unsafe { libc::munmap(self.ptr.cast(), 4096) };
    }
}

/// A mounted slow FUSE filesystem (see the module docs). Dropping it unmounts it and
/// stops its server.
pub struct SlowFs {
    // Dropped in this order: the mount, then the server, then the page, then the directory.
    mount: Mount,
    server: Worker,
    shared: Shared,
    dir: TempDir,
    _owner: OwnerToken,
}

impl SlowFs {
    /// Mount a new slow filesystem in a fresh temporary directory, with a `disk.img` of
    /// `image_size` bytes (kept in the server's memory, allocated as written). Both delays
    /// start at zero.
    pub fn new(image_size: u64) -> Result<SlowFs, ChaosError> {
        super::sys::require_root()?;
        let owner = OwnerToken::take();
        super::cleanup::clean_stale_quietly();
        let dir = TempDir::new()?;
        let at = dir.subdir("fuse")?;
        let shared = Shared::new()?;
        let ctl_addr = shared.ptr as usize;
        let target = CString::new(at.as_os_str().as_bytes()).unwrap_or_default();
        let spec = WorkerSpec {
            comm: "kchaos-fuse".into(),
            ..WorkerSpec::default()
        };
        let server = spawn(&spec, move |ready| {
            // SAFETY: the shared page is inherited by the child at the same address.
            let ctl = unsafe { &*(ctl_addr as *const Ctl) };
            serve(ready, &target, ctl, image_size as usize)
        })?;
        Ok(SlowFs {
            mount: Mount::adopt(&at),
            server,
            shared,
            dir,
            _owner: owner,
        })
    }

    /// Where it is mounted.
    pub fn mountpoint(&self) -> &Path {
        self.mount.target()
    }

    /// The slow regular file (`disk.img`), for a loop device.
    pub fn image(&self) -> PathBuf {
        self.mountpoint().join("disk.img")
    }

    /// The never-cached file (`slow`) whose every lookup waits the metadata delay.
    pub fn slow_file(&self) -> PathBuf {
        self.mountpoint().join("slow")
    }

    /// Delay of each read, write and fsync of `disk.img`.
    pub fn set_io_delay(&self, d: Duration) {
        self.shared
            .ctl()
            .io_delay_ns
            .store(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The current I/O delay.
    pub fn io_delay(&self) -> Duration {
        Duration::from_nanos(self.shared.ctl().io_delay_ns.load(Ordering::Relaxed))
    }

    /// Delay of each lookup, getattr and statfs.
    pub fn set_meta_delay(&self, d: Duration) {
        self.shared
            .ctl()
            .meta_delay_ns
            .store(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// The server process.
    pub fn server_pid(&self) -> u32 {
        self.server.pid()
    }

    /// Requests answered so far.
    pub fn stats(&self) -> SlowFsStats {
        let c = self.shared.ctl();
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        SlowFsStats {
            reads: l(&c.reads),
            writes: l(&c.writes),
            fsyncs: l(&c.fsyncs),
            lookups: l(&c.lookups),
            getattrs: l(&c.getattrs),
            statfs: l(&c.statfs),
        }
    }

    /// The temporary directory the mount point is in (for sibling mounts).
    pub(crate) fn dir(&self) -> &TempDir {
        &self.dir
    }

    /// Whether the server is still running.
    pub(crate) fn server_exit(&mut self) -> Option<String> {
        self.server.poll_exit().map(str::to_string)
    }
}

impl Drop for SlowFs {
    fn drop(&mut self) {
        // Whatever is still queued (a final sync at unmount) goes through at full speed.
        self.set_io_delay(Duration::ZERO);
        self.set_meta_delay(Duration::ZERO);
    }
}

// ---- the server (runs in the forked child) ---------------------------------------------

fn serve(ready: Ready, target: &CString, ctl: &Ctl, image_size: usize) -> i32 {
    // The server writes back pages of a loop device stacked on it: let reclaim know it is
    // part of the I/O path (PR_SET_IO_FLUSHER) so memory pressure cannot deadlock it.
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(57, 1, 0, 0, 0) };
    // SAFETY: opening the FUSE device.
    let fd = unsafe { libc::open(c"/dev/fuse".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        ready.fail(&format!(
            "opening /dev/fuse: {} (is FUSE available?)",
            std::io::Error::last_os_error()
        ));
        return 1;
    }
    let opts = CString::new(format!(
        "fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions"
    ))
    .unwrap_or_default();
    // SAFETY: mount with valid strings.
    let r = unsafe {
        libc::mount(
            c"kerno-chaos".as_ptr(),
            target.as_ptr(),
            c"fuse.kerno-chaos".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            opts.as_ptr().cast(),
        )
    };
    if r != 0 {
        ready.fail(&format!(
            "mounting FUSE: {}",
            std::io::Error::last_os_error()
        ));
        return 1;
    }
    // SAFETY: a private anonymous mapping, zero-filled and allocated as touched.
    let img = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            image_size.max(4096),
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    if img == libc::MAP_FAILED {
        ready.fail("mapping the image");
        return 1;
    }
    // SAFETY: the mapping is image_size bytes and only this thread touches it.
    let image = unsafe { std::slice::from_raw_parts_mut(img.cast::<u8>(), image_size) };
    ready.ok();
    let mut server = Server {
        fd,
        ctl,
        image,
        start: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    };
    server.run()
}

struct Server<'a> {
    fd: libc::c_int,
    ctl: &'a Ctl,
    image: &'a mut [u8],
    start: u64,
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    b.get(off..off + 4)
        .map(|s| u32::from_ne_bytes(s.try_into().unwrap_or([0; 4])))
        .unwrap_or(0)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    b.get(off..off + 8)
        .map(|s| u64::from_ne_bytes(s.try_into().unwrap_or([0; 8])))
        .unwrap_or(0)
}

/// A reply under construction.
struct Out(Vec<u8>);

impl Out {
    fn new() -> Out {
        Out(Vec::with_capacity(256))
    }
    fn u64(&mut self, v: u64) -> &mut Out {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Out {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
    fn u16(&mut self, v: u16) -> &mut Out {
        self.0.extend_from_slice(&v.to_ne_bytes());
        self
    }
}

/// Write one reply (header + payload) to the FUSE device.
fn send(fd: libc::c_int, unique: u64, error: i32, payload: &[u8]) {
    let mut msg = Vec::with_capacity(16 + payload.len());
    msg.extend_from_slice(&((16 + payload.len()) as u32).to_ne_bytes());
    msg.extend_from_slice(&(-error).to_ne_bytes());
    msg.extend_from_slice(&unique.to_ne_bytes());
    msg.extend_from_slice(payload);
    // SAFETY: writing our buffer to the FUSE device; an error means the request was
    // interrupted or the filesystem is going away, and there is nobody left to tell.
    unsafe { libc::write(fd, msg.as_ptr().cast(), msg.len()) };
}

fn sleep_ns(ns: u64) {
    if ns > 0 {
        std::thread::sleep(Duration::from_nanos(ns));
    }
}

impl Server<'_> {
    fn run(&mut self) -> i32 {
        let mut buf = vec![0u8; MAX_WRITE + 64 * 1024];
        loop {
            // SAFETY: reading one request into our buffer.
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                match std::io::Error::last_os_error().raw_os_error() {
                    Some(libc::EINTR) | Some(libc::EAGAIN) | Some(libc::ENOENT) => continue,
                    // Unmounted.
                    Some(libc::ENODEV) => return 0,
                    _ => return 1,
                }
            }
            let n = n as usize;
            if n < IN_HEADER {
                continue;
            }
            let opcode = u32_at(&buf, 4);
            let unique = u64_at(&buf, 8);
            let node = u64_at(&buf, 16);
            let body = &buf[IN_HEADER..n];
            if opcode == DESTROY {
                send(self.fd, unique, 0, &[]);
                return 0;
            }
            self.handle(opcode, unique, node, body);
        }
    }

    fn attr(&self, out: &mut Out, ino: u64) {
        let (size, mode, nlink) = match ino {
            ROOT => (0, 0o040755, 2),
            IMAGE => (self.image.len() as u64, 0o100600, 1),
            _ => (0, 0o100644, 1),
        };
        out.u64(ino)
            .u64(size)
            .u64(size.div_ceil(512))
            .u64(self.start)
            .u64(self.start)
            .u64(self.start)
            .u32(0)
            .u32(0)
            .u32(0)
            .u32(mode)
            .u32(nlink)
            .u32(0)
            .u32(0)
            .u32(0)
            .u32(4096)
            .u32(0);
    }

    /// How long the kernel may cache a name or attributes: the slow file never.
    fn valid_secs(ino: u64) -> u64 {
        if ino == SLOW { 0 } else { 3600 }
    }

    /// Reply to a metadata request after the metadata delay, from a thread of its own so
    /// that concurrent callers each wait the delay once (not in a queue).
    fn reply_meta(&self, unique: u64, error: i32, payload: Vec<u8>) {
        let ns = self.ctl.meta_delay_ns.load(Ordering::Relaxed);
        if ns == 0 {
            send(self.fd, unique, error, &payload);
            return;
        }
        let fd = self.fd;
        let inline = payload.clone();
        let spawned = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                sleep_ns(ns);
                send(fd, unique, error, &payload);
            });
        if spawned.is_err() {
            sleep_ns(ns);
            send(self.fd, unique, error, &inline);
        }
    }

    fn handle(&mut self, opcode: u32, unique: u64, node: u64, body: &[u8]) {
        let fd = self.fd;
        let io_delay = || sleep_ns(self.ctl.io_delay_ns.load(Ordering::Relaxed));
        match opcode {
            INIT => {
                let minor = u32_at(body, 4);
                let readahead = u32_at(body, 8);
                let flags = u32_at(body, 12);
                let mut out = Out::new();
                out.u32(7)
                    .u32(minor.min(38))
                    .u32(readahead)
                    .u32(flags & (ASYNC_READ | BIG_WRITES | PARALLEL_DIROPS | MAX_PAGES))
                    .u16(64)
                    .u16(48)
                    .u32(MAX_WRITE as u32)
                    .u32(1)
                    .u16((MAX_WRITE / 4096) as u16)
                    .u16(0)
                    .u32(0);
                for _ in 0..7 {
                    out.u32(0);
                }
                send(fd, unique, 0, &out.0);
            }
            LOOKUP => {
                self.ctl.lookups.fetch_add(1, Ordering::Relaxed);
                let name = body.split(|&b| b == 0).next().unwrap_or(&[]);
                let ino = match (node, name) {
                    (ROOT, b"disk.img") => Some(IMAGE),
                    (ROOT, b"slow") => Some(SLOW),
                    _ => None,
                };
                match ino {
                    None => self.reply_meta(unique, libc::ENOENT, Vec::new()),
                    Some(ino) => {
                        let v = Self::valid_secs(ino);
                        let mut out = Out::new();
                        out.u64(ino).u64(0).u64(v).u64(v).u32(0).u32(0);
                        self.attr(&mut out, ino);
                        self.reply_meta(unique, 0, out.0);
                    }
                }
            }
            GETATTR | SETATTR => {
                if !(ROOT..=SLOW).contains(&node) {
                    send(fd, unique, libc::ENOENT, &[]);
                    return;
                }
                let mut out = Out::new();
                out.u64(Self::valid_secs(node)).u32(0).u32(0);
                self.attr(&mut out, node);
                if opcode == GETATTR {
                    self.ctl.getattrs.fetch_add(1, Ordering::Relaxed);
                    self.reply_meta(unique, 0, out.0);
                } else {
                    send(fd, unique, 0, &out.0);
                }
            }
            STATFS => {
                self.ctl.statfs.fetch_add(1, Ordering::Relaxed);
                let blocks = (self.image.len() / 4096) as u64;
                let mut out = Out::new();
                out.u64(blocks)
                    .u64(0)
                    .u64(0)
                    .u64(3)
                    .u64(0)
                    .u32(4096)
                    .u32(255)
                    .u32(4096)
                    .u32(0);
                for _ in 0..6 {
                    out.u32(0);
                }
                self.reply_meta(unique, 0, out.0);
            }
            OPEN | OPENDIR => {
                if (opcode == OPEN) == (node == ROOT) {
                    let e = if node == ROOT {
                        libc::EISDIR
                    } else {
                        libc::ENOTDIR
                    };
                    send(fd, unique, e, &[]);
                    return;
                }
                let mut out = Out::new();
                out.u64(0).u32(0).u32(0);
                send(fd, unique, 0, &out.0);
            }
            READ => {
                self.ctl.reads.fetch_add(1, Ordering::Relaxed);
                io_delay();
                let off = u64_at(body, 8) as usize;
                let size = u32_at(body, 16) as usize;
                let data: &[u8] = if node == IMAGE && off < self.image.len() {
                    &self.image[off..(off + size).min(self.image.len())]
                } else {
                    &[]
                };
                send(fd, unique, 0, data);
            }
            WRITE => {
                self.ctl.writes.fetch_add(1, Ordering::Relaxed);
                io_delay();
                let off = u64_at(body, 8) as usize;
                let size = u32_at(body, 16) as usize;
                let data = body.get(40..40 + size).unwrap_or(&[]);
                if node != IMAGE || off.saturating_add(data.len()) > self.image.len() {
                    send(fd, unique, libc::ENOSPC, &[]);
                    return;
                }
                self.image[off..off + data.len()].copy_from_slice(data);
                let mut out = Out::new();
                out.u32(data.len() as u32).u32(0);
                send(fd, unique, 0, &out.0);
            }
            FSYNC => {
                self.ctl.fsyncs.fetch_add(1, Ordering::Relaxed);
                io_delay();
                send(fd, unique, 0, &[]);
            }
            READDIR => {
                let want = u32_at(body, 16) as usize;
                let from = u64_at(body, 8);
                let entries: [(u64, &[u8], u32); 4] = [
                    (ROOT, b".", 4),
                    (ROOT, b"..", 4),
                    (IMAGE, b"disk.img", 8),
                    (SLOW, b"slow", 8),
                ];
                let mut out = Out::new();
                for (i, (ino, name, kind)) in entries.iter().enumerate().skip(from as usize) {
                    let len = (24 + name.len()).div_ceil(8) * 8;
                    if out.0.len() + len > want {
                        break;
                    }
                    out.u64(*ino)
                        .u64(i as u64 + 1)
                        .u32(name.len() as u32)
                        .u32(*kind);
                    out.0.extend_from_slice(name);
                    out.0.resize(out.0.len() + len - 24 - name.len(), 0);
                }
                send(fd, unique, 0, &out.0);
            }
            RELEASE | FLUSH | RELEASEDIR | FSYNCDIR | ACCESS => send(fd, unique, 0, &[]),
            FORGET | BATCH_FORGET | INTERRUPT => {}
            _ => send(fd, unique, libc::ENOSYS, &[]),
        }
    }
}
