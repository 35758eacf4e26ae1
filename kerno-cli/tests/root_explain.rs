//! Root tests: `kerno explain` with no input reads the real kernel log and explains messages
//! this test makes the kernel print: an OOM kill in a memory-limited cgroup, a user-space
//! segfault, and an I/O error from a loop device over a FUSE file whose server died. The log
//! is shared with everything else on the machine, so each test finds its own event by pid,
//! device and sector. Needs root; scripts/test.sh runs it with --test-threads=1 under the
//! kernel lock.

use std::{
    os::unix::{fs::OpenOptionsExt, process::CommandExt, process::ExitStatusExt},
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

fn kerno(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kerno"))
        .args(args)
        .env_remove("KERNO_CONFIG")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run kerno")
}

fn require_root() {
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "root tests need root (scripts/test.sh runs them as root)"
    );
}

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("kerno-explain-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Compile a C program with gcc.
fn compile(dir: &Path, name: &str, src: &str) -> PathBuf {
    let c = dir.join(format!("{name}.c"));
    std::fs::write(&c, src).unwrap();
    let bin = dir.join(name);
    let o = Command::new("gcc")
        .args(["-O0", "-o"])
        .arg(&bin)
        .arg(&c)
        .output()
        .expect("run gcc (the test needs a C compiler)");
    assert!(
        o.status.success(),
        "gcc: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    bin
}

/// `kerno explain -o json --since 5m` on the real kernel log.
fn explain_log() -> Value {
    let o = kerno(&["explain", "-o", "json", "--since", "5m"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("JSON")
}

/// The group and event of the log whose event matches `pred`, waiting a little for the
/// kernel to print it.
fn find_event(pred: impl Fn(&Value) -> bool) -> Option<(Value, Value)> {
    let t0 = Instant::now();
    loop {
        let e = explain_log();
        for g in e["groups"].as_array().unwrap() {
            for ev in g["events"].as_array().unwrap() {
                if pred(ev) {
                    return Some((g.clone(), ev.clone()));
                }
            }
        }
        if t0.elapsed() > Duration::from_secs(3) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A memory cgroup with a limit (cgroup v1's memory controller, or v2), removed on drop.
struct MemCgroup {
    dir: PathBuf,
    /// The path as the kernel prints it (`task_memcg`).
    path: String,
}

impl MemCgroup {
    fn new(limit: u64) -> MemCgroup {
        let name = format!("kerno-explain-oom-{}", std::process::id());
        let v1 = Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists();
        let dir = if v1 {
            PathBuf::from("/sys/fs/cgroup/memory").join(&name)
        } else {
            PathBuf::from("/sys/fs/cgroup").join(&name)
        };
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir).unwrap();
        let cg = MemCgroup {
            dir,
            path: format!("/{name}"),
        };
        let file = if v1 {
            "memory.limit_in_bytes"
        } else {
            "memory.max"
        };
        std::fs::write(cg.dir.join(file), limit.to_string()).unwrap();
        if !v1 {
            let _ = std::fs::write(cg.dir.join("memory.swap.max"), "0");
        }
        cg
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

const HOG: &str = r#"
#include <stdlib.h>
#include <string.h>
int main(void) {
    for (;;) {
        char *p = malloc(1 << 20);
        if (!p) return 1;
        memset(p, 1, 1 << 20);
    }
}
"#;

#[test]
fn root_explain_names_the_cgroup_and_victim_of_a_real_oom_kill() {
    require_root();
    let t0 = Instant::now();
    let dir = TempDir::new("oom");
    let hog = compile(&dir.0, "kerno-oom-hog", HOG);
    let cg = MemCgroup::new(32 << 20);
    let procs = cg.dir.join("cgroup.procs");
    let mut cmd = Command::new(&hog);
    // SAFETY: only a write(2) to a path between fork and exec.
    unsafe {
        cmd.pre_exec(move || std::fs::write(&procs, "0"));
    }
    let mut child = cmd.spawn().expect("spawn the hog");
    let pid = child.id();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the OOM killer kills it"
    );

    let (g, ev) = find_event(|ev| ev["fields"]["pid"] == pid)
        .unwrap_or_else(|| panic!("no event for victim pid {pid} in the kernel log"));
    assert_eq!(g["pattern"], "oom-killed-memcg", "{g:#}");
    assert_eq!(ev["fields"]["cgroup"], cg.path.as_str());
    assert_eq!(ev["fields"]["comm"], "kerno-oom-hog");
    assert_eq!(ev["fields"]["other"]["limit_kb"], "32768");
    assert_eq!(ev["fields"]["other"]["constraint"], "CONSTRAINT_MEMCG");
    let parts: Vec<&str> = ev["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for p in [
        "oom-invoked",
        "memcg-usage-at-limit",
        "oom-summary",
        "oom-killed-memcg",
    ] {
        assert!(
            parts.contains(&p),
            "the whole report is one event: {parts:?}"
        );
    }
    assert!(
        g["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("in cgroup {}", cg.path)),
        "{}",
        g["summary"]
    );
    // The pretty output names the cgroup too.
    let o = kerno(&["explain", "--since", "5m"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains(&format!("process kerno-oom-hog (pid {pid})")),
        "{text}"
    );
    assert!(text.contains(&format!("cgroup {}", cg.path)), "{text}");
    eprintln!("oom: {:?}", t0.elapsed());
}

const SEGV: &str = r#"
int main(void) {
    volatile int *p = (int *)0x10;
    return *p;
}
"#;

#[test]
fn root_explain_finds_a_real_user_space_segfault() {
    require_root();
    let t0 = Instant::now();
    let trace = std::fs::read_to_string("/proc/sys/debug/exception-trace").unwrap_or_default();
    assert_eq!(
        trace.trim(),
        "1",
        "debug.exception-trace is off: the kernel does not log segfaults"
    );
    let dir = TempDir::new("segv");
    let bin = compile(&dir.0, "kerno-segv", SEGV);
    // show_signal_msg() is ratelimited (printk_ratelimit, shared by the machine): try a few
    // times, each with a new pid.
    for attempt in 0..5 {
        let mut child = Command::new(&bin)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(libc::SIGSEGV));
        if let Some((g, ev)) = find_event(|ev| ev["fields"]["pid"] == pid) {
            assert_eq!(g["pattern"], "user-segfault", "{g:#}");
            assert_eq!(ev["fields"]["comm"], "kerno-segv");
            assert_eq!(ev["fields"]["other"]["address"], "10");
            assert_eq!(ev["fields"]["other"]["object"], "kerno-segv");
            // error 4: a user-mode read of an unmapped page.
            assert_eq!(ev["fields"]["other"]["error"], "4");
            assert!(g["summary"].as_str().unwrap().contains("in kerno-segv"));
            eprintln!("segfault: {:?} ({} attempts)", t0.elapsed(), attempt + 1);
            return;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("no segfault of ours in the kernel log after 5 attempts");
}

#[test]
fn root_explain_finds_a_real_io_error_on_a_loop_device_over_a_dead_fuse_file() {
    require_root();
    let t0 = Instant::now();
    let dev = kerno_chaos::SlowDevice::new(8 << 20, Duration::ZERO).expect("slow device");
    let name = dev.name();
    // The FUSE server answering for the loop device's backing file dies: every request of
    // the device now fails. A sector of our own tells our error from earlier ones on a
    // reused loop device.
    let sector = 2048 + 8 * (std::process::id() as u64 % 1000);
    // SAFETY: kill(2) on the helper process this test owns.
    unsafe { libc::kill(dev.server_pid() as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(200));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(dev.device())
        .expect("open the loop device");
    let mut found = None;
    for _ in 0..5 {
        let mut buf = vec![0u8; 8192];
        // O_DIRECT needs an aligned buffer: take a 4 KiB-aligned slice.
        let off = buf.as_ptr().align_offset(4096);
        let slice = &mut buf[off..off + 4096];
        let r = std::os::unix::fs::FileExt::read_at(&f, slice, sector * 512);
        assert!(r.is_err(), "a read through the dead FUSE server fails");
        let want = sector.to_string();
        found = find_event(|ev| {
            ev["fields"]["device"] == name.as_str()
                && ev["fields"]["other"]["sector"] == want.as_str()
        });
        if found.is_some() {
            break;
        }
        // blk_print_req_error() is ratelimited; wait for the next interval.
        std::thread::sleep(Duration::from_secs(1));
    }
    drop(f);
    let (g, ev) = found.unwrap_or_else(|| panic!("no I/O error on {name} sector {sector}"));
    assert_eq!(g["pattern"], "blk-io-error", "{g:#}");
    assert_eq!(ev["fields"]["other"]["kind"], "I/O");
    assert_eq!(ev["fields"]["other"]["op_name"], "READ");
    assert!(
        g["summary"]
            .as_str()
            .unwrap()
            .contains(&format!("on {name}"))
    );
    assert!(
        g["check"][0]
            .as_str()
            .unwrap()
            .contains(&format!("/dev/{name}")),
        "{}",
        g["check"]
    );
    drop(dev);
    eprintln!("io error: {:?}", t0.elapsed());
}

#[test]
fn root_explain_reads_the_kernel_log_and_says_where_from() {
    require_root();
    let o = kerno(&["explain", "--since", "1h"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.starts_with("Kernel log (/dev/kmsg, last 60m)"),
        "{text}"
    );
}

#[test]
fn root_explain_reads_ext4_errors_when_its_device_fails() {
    require_root();
    let t0 = Instant::now();
    let start_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let dev = kerno_chaos::SlowDevice::with_ext4(16 << 20, Duration::ZERO).expect("ext4 device");
    let name = dev.name();
    let mnt = dev.mountpoint().unwrap().to_path_buf();
    std::fs::write(mnt.join("before"), b"x").unwrap();
    // SAFETY: kill(2) on the helper process this test owns.
    unsafe { libc::kill(dev.server_pid() as i32, libc::SIGKILL) };
    std::thread::sleep(Duration::from_millis(200));
    // Metadata changes and a sync: the journal write fails and ext4 reports it.
    for i in 0..20 {
        let _ = std::fs::write(mnt.join(format!("after-{i}")), vec![1u8; 4096]);
    }
    if let Ok(f) = std::fs::File::open(&mnt) {
        let _ = f.sync_all();
    }
    let _ = std::fs::File::open(mnt.join("before")).and_then(|f| f.sync_all());
    // This test's events: on its device, logged after it started (the log is shared, and
    // loop devices are reused).
    let mine = |e: &Value| -> Vec<String> {
        let mut ids: Vec<String> = e["groups"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|g| {
                g["events"].as_array().unwrap().iter().any(|ev| {
                    let d = ev["fields"]["device"].as_str().unwrap_or("");
                    (d == name || d.starts_with(&format!("{name}-")))
                        && ev["time"]["unix_ms"].as_u64().unwrap_or(0) + 50 >= start_ms
                })
            })
            .map(|g| g["pattern"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    let want = [
        "blk-io-error",
        "buffer-lost-write",
        "ext4-error",
        "ext4-remount-ro",
        "jbd2-abort",
    ];
    let deadline = Instant::now() + Duration::from_secs(3);
    let got = loop {
        let e = explain_log();
        let got = mine(&e);
        if want.iter().all(|w| got.iter().any(|g| g == w)) || Instant::now() > deadline {
            break (got, e);
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    drop(dev);
    let (got, e) = got;
    for w in want {
        assert!(got.iter().any(|g| g == w), "no {w} on {name}: {got:?}");
    }
    let unknown: Vec<&str> = e["unknown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["text"].as_str().unwrap())
        .filter(|t| t.contains(&format!("({name})")) && t.contains("error"))
        .collect();
    eprintln!(
        "ext4: {:?}: {got:?}; unknown error lines on {name}: {unknown:?}",
        t0.elapsed()
    );
}
