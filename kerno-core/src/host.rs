//! The host: where its files are ([`HostRoot`]), its node name, and its environment
//! (Kubernetes node, systemd machine, container, bare metal).
//!
//! In a Kubernetes DaemonSet the host's filesystems are mounted under a prefix (`/host`):
//! every host path Kerno reads (`/proc`, `/sys/fs/cgroup`, `/var/log/pods`,
//! `/run/containerd`, ...) goes through the process-wide [`HostRoot`], set once with
//! [`configure`] (`--host-root`, `KERNO_HOST_ROOT`, config `host_root`).

use std::{
    fs,
    path::{Path, PathBuf},
    sync::{PoisonError, RwLock},
};

use crate::{Host, attribution::cgroup_path};

/// Where the host's root filesystem is, as this process sees it (`/` unless Kerno runs in
/// a container with the host mounted under a prefix).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostRoot(PathBuf);

impl Default for HostRoot {
    fn default() -> Self {
        HostRoot(PathBuf::from("/"))
    }
}

impl HostRoot {
    /// The host root at `prefix` (`""` and `/` mean this process's own root).
    pub fn new(prefix: impl AsRef<Path>) -> HostRoot {
        let p = prefix.as_ref();
        if p.as_os_str().is_empty() {
            HostRoot::default()
        } else {
            HostRoot(p.to_path_buf())
        }
    }

    /// Whether this is the process's own root (no prefix).
    pub fn is_own_root(&self) -> bool {
        self.0 == Path::new("/")
    }

    /// The prefix.
    pub fn prefix(&self) -> &Path {
        &self.0
    }

    /// Where the host's `path` (absolute, e.g. `/proc/1/cgroup`) is for this process.
    pub fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        let p = path.as_ref();
        if self.is_own_root() {
            return p.to_path_buf();
        }
        self.0.join(p.strip_prefix("/").unwrap_or(p))
    }
}

#[derive(Debug)]
struct Settings {
    root: Option<HostRoot>,
    node_name: Option<String>,
}

static SETTINGS: RwLock<Settings> = RwLock::new(Settings {
    root: None,
    node_name: None,
});

/// Set the host root and the node name (`None`: the host's name) for this process. The
/// frontends call it once, from the configuration; [`crate::Engine::kernel`] calls it with
/// its [`crate::KernelOptions`].
pub fn configure(root: HostRoot, node_name: Option<String>) {
    let mut s = SETTINGS.write().unwrap_or_else(PoisonError::into_inner);
    s.root = Some(root);
    s.node_name = node_name.filter(|n| !n.trim().is_empty());
}

/// The host root in use.
pub fn host_root() -> HostRoot {
    SETTINGS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .root
        .clone()
        .unwrap_or_default()
}

/// The node name set with [`configure`], if any.
pub fn configured_node_name() -> Option<String> {
    SETTINGS
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .node_name
        .clone()
}

/// The node name: the configured one (`--node-name`, `KERNO_NODE_NAME`, `NODE_NAME`,
/// config `node_name`), else the host's name (`/etc/hostname` under a host root: this
/// process's own hostname is the pod's there).
pub fn node_name() -> String {
    if let Some(n) = configured_node_name() {
        return n;
    }
    let root = host_root();
    if !root.is_own_root()
        && let Ok(n) = fs::read_to_string(root.path("/etc/hostname"))
        && !n.trim().is_empty()
    {
        return n.trim().to_string();
    }
    uname().0
}

fn uname() -> (String, String) {
    // SAFETY: uname fills a zeroed struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return (String::new(), String::new());
    }
    let s = |f: &[libc::c_char]| {
        let b: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&b).into_owned()
    };
    (s(&u.nodename), s(&u.release))
}

/// Describe this machine.
pub fn detect_host() -> Host {
    let (hostname, kernel) = uname();
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) }.max(1) as u32;
    let env: Vec<(String, String)> = std::env::vars().collect();
    Host {
        hostname,
        kernel,
        cpus,
        memory_bytes: crate::procfs::meminfo().map(|m| m.0).unwrap_or(0),
        environment: detect_environment(&HostRoot::default(), &host_root(), &env)
            .kind
            .into(),
        node: node_name(),
    }
}

/// `kubernetes`, `container`, `systemd` or `bare-metal` (see [`detect_environment`]).
pub fn environment() -> &'static str {
    let env: Vec<(String, String)> = std::env::vars().collect();
    detect_environment(&HostRoot::default(), &host_root(), &env).kind
}

/// The environment and the evidence it was told from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment {
    /// `kubernetes`, `container`, `systemd` or `bare-metal`.
    pub kind: &'static str,
    /// What decided it, one fact a line.
    pub evidence: Vec<String>,
}

/// The initial pid namespace's inode (`PROC_PID_INIT_INO`): `/proc/self/ns/pid` reads
/// `pid:[4026531836]` outside any container.
const INIT_PID_NS: &str = "pid:[4026531836]";

/// Files the kubelet (kubeadm, k3s, microk8s, EKS/GKE images) keeps on a node.
const KUBELET_FILES: [&str; 6] = [
    "/var/lib/kubelet/config.yaml",
    "/var/lib/kubelet/kubeconfig",
    "/etc/kubernetes/kubelet.conf",
    "/var/lib/rancher/k3s/agent/kubelet.kubeconfig",
    "/var/snap/microk8s/current/args/kubelet",
    "/etc/kubernetes/kubelet/kubelet-config.json",
];

/// The kubelet's top cgroup, by driver, under each place a cgroup hierarchy is mounted.
const KUBEPODS: [&str; 8] = [
    "/sys/fs/cgroup/kubepods.slice",
    "/sys/fs/cgroup/kubepods",
    "/sys/fs/cgroup/unified/kubepods.slice",
    "/sys/fs/cgroup/unified/kubepods",
    "/sys/fs/cgroup/memory/kubepods.slice",
    "/sys/fs/cgroup/memory/kubepods",
    "/sys/fs/cgroup/cpu,cpuacct/kubepods.slice",
    "/sys/fs/cgroup/cpu,cpuacct/kubepods",
];

/// Tell the environment from evidence stronger than marker files:
///
/// 1. **kubernetes**: the kubelet's cgroup tree (`kubepods`, `kubepods.slice`) or its
///    config files exist on the host, or Kerno itself runs in a pod (its own cgroup is a
///    pod's, or it has a service account token, or `KUBERNETES_SERVICE_HOST` is set);
/// 2. **container**: Kerno observes its own namespaces (no host root) and they are a
///    container's: a pid namespace other than the initial one, a cgroup a container
///    runtime named, podman's `/run/.containerenv`, or `container=` in pid 1's
///    environment. `/.dockerenv` alone proves nothing (VM images built from docker
///    images keep it);
/// 3. **systemd**: `/run/systemd/system` exists and pid 1 is systemd;
/// 4. **bare-metal** otherwise (a VM without systemd included).
///
/// `own` is this process's own root (`/`), `host` the host root; `env` the process
/// environment.
pub fn detect_environment(
    own: &HostRoot,
    host: &HostRoot,
    env: &[(String, String)],
) -> Environment {
    let mut k8s = Vec::new();
    for f in KUBEPODS {
        if host.path(f).is_dir() {
            k8s.push(format!("the kubelet's cgroup {f} exists"));
            break;
        }
    }
    for f in KUBELET_FILES {
        if host.path(f).is_file() {
            k8s.push(format!("kubelet file {f}"));
            break;
        }
    }
    let own_cgroup = fs::read_to_string(own.path("/proc/self/cgroup")).unwrap_or_default();
    let own_info = cgroup_path::parse_proc_cgroup(&own_cgroup);
    if own_info.is_pod() {
        k8s.push("kerno runs in a pod (its cgroup is a pod's)".into());
    }
    if own
        .path("/var/run/secrets/kubernetes.io/serviceaccount/token")
        .is_file()
    {
        k8s.push("kerno has a Kubernetes service account token".into());
    }
    if env.iter().any(|(k, _)| k == "KUBERNETES_SERVICE_HOST") {
        k8s.push("KUBERNETES_SERVICE_HOST is set".into());
    }
    if !k8s.is_empty() {
        return Environment {
            kind: "kubernetes",
            evidence: k8s,
        };
    }
    if host == own {
        let mut ctr = Vec::new();
        if let Ok(ns) = fs::read_link(own.path("/proc/self/ns/pid")) {
            let ns = ns.to_string_lossy();
            if ns != INIT_PID_NS {
                ctr.push(format!("kerno's pid namespace {ns} is not the initial one"));
            }
        }
        if let (Some(id), Some(rt)) = (&own_info.container_id, own_info.runtime) {
            ctr.push(format!("kerno's cgroup is {rt} container {}", &id[..12]));
        }
        if own.path("/run/.containerenv").is_file() {
            ctr.push("/run/.containerenv (podman) exists".into());
        }
        if let Ok(environ) = fs::read(own.path("/proc/1/environ"))
            && let Some(c) = environ
                .split(|b| *b == 0)
                .find_map(|v| v.strip_prefix(b"container="))
        {
            ctr.push(format!(
                "pid 1 has container={}",
                String::from_utf8_lossy(c)
            ));
        }
        if !ctr.is_empty() {
            return Environment {
                kind: "container",
                evidence: ctr,
            };
        }
    }
    let pid1 = fs::read_to_string(host.path("/proc/1/comm")).ok();
    if host.path("/run/systemd/system").is_dir()
        && pid1.as_deref().is_none_or(|c| c.trim() == "systemd")
    {
        return Environment {
            kind: "systemd",
            evidence: vec!["/run/systemd/system exists and pid 1 is systemd".into()],
        };
    }
    Environment {
        kind: "bare-metal",
        evidence: vec![match pid1 {
            Some(c) => format!(
                "no kubelet, container or systemd evidence; pid 1 is {}",
                c.trim()
            ),
            None => "no kubelet, container or systemd evidence".into(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A fake root: `files` are (path, content), `links` are (path, target).
    fn root(
        files: &[(&str, &str)],
        links: &[(&str, &str)],
        dirs: &[&str],
    ) -> (tempdir::Dir, HostRoot) {
        let d = tempdir::Dir::new();
        for (p, c) in files {
            let p = d.0.join(p.trim_start_matches('/'));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            fs::write(p, c).unwrap();
        }
        for (p, t) in links {
            let p = d.0.join(p.trim_start_matches('/'));
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            symlink(t, p).unwrap();
        }
        for p in dirs {
            fs::create_dir_all(d.0.join(p.trim_start_matches('/'))).unwrap();
        }
        let r = HostRoot::new(&d.0);
        (d, r)
    }

    mod tempdir {
        /// A directory removed when dropped.
        pub struct Dir(pub std::path::PathBuf);
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicU32, Ordering};
                static N: AtomicU32 = AtomicU32::new(0);
                let p = std::env::temp_dir().join(format!(
                    "kerno-host-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::create_dir_all(&p).unwrap();
                Dir(p)
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    const HOST_NS: (&str, &str) = ("/proc/self/ns/pid", "pid:[4026531836]");
    const CTR_NS: (&str, &str) = ("/proc/self/ns/pid", "pid:[4026532301]");

    #[test]
    fn host_root_prefixes_every_path() {
        let r = HostRoot::new("/host");
        assert_eq!(
            r.path("/proc/1/cgroup"),
            PathBuf::from("/host/proc/1/cgroup")
        );
        assert_eq!(HostRoot::new("").path("/proc"), PathBuf::from("/proc"));
        assert!(HostRoot::new("/").is_own_root());
    }

    #[test]
    fn a_vm_with_dockerenv_is_not_a_container() {
        // This VM's shape: /.dockerenv, initial pid namespace, no systemd, pid 1 a plain
        // program, a v1 memory cgroup no runtime names.
        let (_d, r) = root(
            &[
                ("/.dockerenv", ""),
                ("/proc/1/comm", "process_api\n"),
                (
                    "/proc/self/cgroup",
                    "4:memory:/process_api/28bc666f7b07eccb5cf51215248e5b9b\n0::/\n",
                ),
            ],
            &[HOST_NS],
            &[],
        );
        let e = detect_environment(&r, &r, &[]);
        assert_eq!(e.kind, "bare-metal", "{e:?}");
    }

    #[test]
    fn a_systemd_machine() {
        let (_d, r) = root(
            &[
                ("/.dockerenv", ""),
                ("/proc/1/comm", "systemd\n"),
                (
                    "/proc/self/cgroup",
                    "0::/user.slice/user-1000.slice/session-3.scope\n",
                ),
            ],
            &[HOST_NS],
            &["/run/systemd/system"],
        );
        assert_eq!(detect_environment(&r, &r, &[]).kind, "systemd");
    }

    #[test]
    fn containers_by_pid_namespace_cgroup_or_marker() {
        let (_d, r) = root(
            &[("/proc/1/comm", "sh\n"), ("/proc/self/cgroup", "0::/\n")],
            &[CTR_NS],
            &[],
        );
        let e = detect_environment(&r, &r, &[]);
        assert_eq!(e.kind, "container");
        assert!(e.evidence[0].contains("pid namespace"), "{e:?}");
        // podman with --pid=host: its marker file and its cgroup.
        let id = "3f2a9c1e5d4b4a8fb7e60c9d8e7f6a5b3f2a9c1e5d4b4a8fb7e60c9d8e7f6a5b";
        let (_d, r) = root(
            &[
                ("/run/.containerenv", ""),
                (
                    "/proc/self/cgroup",
                    &format!("0::/machine.slice/libpod-{id}.scope/container\n"),
                ),
            ],
            &[HOST_NS],
            &["/run/systemd/system"],
        );
        let e = detect_environment(&r, &r, &[]);
        assert_eq!(e.kind, "container");
        assert_eq!(e.evidence.len(), 2, "{e:?}");
    }

    #[test]
    fn kubernetes_nodes_and_pods() {
        // A node seen through --host-root: the kubelet's cgroup tree, systemd driver.
        let (_own_d, own) = root(&[("/proc/self/cgroup", "0::/\n")], &[CTR_NS], &[]);
        let (_d, host) = root(
            &[("/proc/1/comm", "systemd\n")],
            &[],
            &["/sys/fs/cgroup/kubepods.slice", "/run/systemd/system"],
        );
        let e = detect_environment(&own, &host, &[]);
        assert_eq!(e.kind, "kubernetes", "{e:?}");
        // Kerno in a pod, without a host root: its service account and env.
        let (_d, r) = root(
            &[("/var/run/secrets/kubernetes.io/serviceaccount/token", "x")],
            &[CTR_NS],
            &[],
        );
        let env = [(
            "KUBERNETES_SERVICE_HOST".to_string(),
            "10.0.0.1".to_string(),
        )];
        let e = detect_environment(&r, &r, &env);
        assert_eq!((e.kind, e.evidence.len()), ("kubernetes", 2), "{e:?}");
        // A kubeadm node on cgroupfs, v1: the memory controller's kubepods.
        let (_d, r) = root(
            &[("/var/lib/kubelet/config.yaml", "kind: KubeletConfiguration")],
            &[HOST_NS],
            &["/sys/fs/cgroup/memory/kubepods"],
        );
        assert_eq!(detect_environment(&r, &r, &[]).evidence.len(), 2);
    }

    #[test]
    fn under_a_host_root_the_hosts_environment_counts_not_kernos() {
        // In a container (own pid namespace) with a systemd host mounted at the root.
        let (_own_d, own) = root(&[("/proc/self/cgroup", "0::/\n")], &[CTR_NS], &[]);
        let (_d, host) = root(
            &[("/proc/1/comm", "systemd\n")],
            &[],
            &["/run/systemd/system"],
        );
        assert_eq!(detect_environment(&own, &host, &[]).kind, "systemd");
    }

    #[test]
    fn this_machine_is_not_called_a_container_for_its_dockerenv() {
        // The VM these tests run on has /.dockerenv; it runs in the initial pid namespace.
        let e = detect_environment(&HostRoot::default(), &HostRoot::default(), &[]);
        let own_ns = fs::read_link("/proc/self/ns/pid").map(|l| l.to_string_lossy().into_owned());
        if own_ns.ok().as_deref() == Some(INIT_PID_NS) && !Path::new("/run/.containerenv").exists()
        {
            assert_ne!(e.kind, "container", "{e:?}");
        }
    }
}
