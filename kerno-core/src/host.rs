//! The host and its environment (Kubernetes node, systemd machine, container, bare metal).

use std::path::Path;

use crate::Host;

/// Describe this machine.
pub fn detect_host() -> Host {
    // SAFETY: uname fills a zeroed struct; sysconf has no preconditions.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    let (hostname, kernel) = if unsafe { libc::uname(&mut u) } == 0 {
        let s = |f: &[libc::c_char]| {
            let b: Vec<u8> = f
                .iter()
                .take_while(|c| **c != 0)
                .map(|c| *c as u8)
                .collect();
            String::from_utf8_lossy(&b).into_owned()
        };
        (s(&u.nodename), s(&u.release))
    } else {
        (String::new(), String::new())
    };
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u32;
    Host {
        hostname,
        kernel,
        cpus,
        memory_bytes: crate::procfs::meminfo().map(|m| m.0).unwrap_or(0),
        environment: environment().into(),
    }
}

/// `kubernetes`, `container`, `systemd` or `bare-metal`.
pub fn environment() -> &'static str {
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
        || Path::new("/var/lib/kubelet").is_dir()
    {
        "kubernetes"
    } else if Path::new("/.dockerenv").exists() || Path::new("/run/.containerenv").exists() {
        "container"
    } else if Path::new("/run/systemd/system").is_dir() {
        "systemd"
    } else {
        "bare-metal"
    }
}
