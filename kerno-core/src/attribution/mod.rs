//! Whose is it: the Kubernetes pod and container, the plain container, or the systemd
//! unit a process or cgroup belongs to, from node-local files alone (no API server, no
//! network, no runtime socket), so attribution keeps working while the control plane is
//! down.
//!
//! - [`cgroup_path`]: the one table of cgroup layouts (kubelet systemd and cgroupfs
//!   drivers, containerd, CRI-O, docker/cri-dockerd, podman, k3s, microk8s, cgroup v1 and
//!   v2, cgroup-namespaced relative paths);
//! - [`names`]: names for pod uids and container ids (`/var/log/pods`,
//!   `/var/log/containers`, OCI bundle annotations, docker's and podman's records);
//! - [`infer_workload`]: the owning workload, told from the pod name (marked inferred);
//! - [`Resolver`]: the cache in front of both, keyed by cgroup path, refreshed on a miss,
//!   with ~30 s tombstones so a pod that just died still resolves;
//! - [`Scope`]: `--namespace NS` / `--pod NS/NAME`, which findings a report keeps.
//!
//! Every host path is read under the [`HostRoot`] (`--host-root`). docs/kubernetes.md
//! describes the sources and the layouts covered.

pub mod cgroup_path;
pub mod names;

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::host::HostRoot;
use cgroup_path::PathInfo;
use names::{LogIndex, TOMBSTONE};

/// The workload that owns a pod.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Workload {
    /// `Deployment`, `StatefulSet`, `CronJob`, `Job`, `DaemonSet or Job` (a single random
    /// suffix does not tell them apart) or `Node` (a static pod).
    pub kind: String,
    /// Its name.
    pub name: String,
    /// Told from the pod name, not read from the API server: Kerno never asks it.
    pub inferred: bool,
}

/// Who a process or cgroup belongs to. Every field is optional: a path no layout matches
/// leaves them all empty ("unattributed"), which is not an error.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Attribution {
    /// Kubernetes namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Pod name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_name: Option<String>,
    /// Pod uid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_uid: Option<String>,
    /// Container name (`POD` for a pod's sandbox).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Container id, 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_id: Option<String>,
    /// Container runtime: `containerd`, `cri-o`, `docker` (also cri-dockerd) or `podman`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Kubernetes QoS class: `guaranteed`, `burstable` or `besteffort`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qos: Option<String>,
    /// The pod's owning workload, inferred from its name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
    /// systemd unit (`nginx.service`, or the scope of a user session, `session-3.scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// systemd slice holding the unit (`system.slice`, `user-1000.slice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slice: Option<String>,
}

impl Attribution {
    /// Nothing known.
    pub fn is_empty(&self) -> bool {
        *self == Attribution::default()
    }

    /// `namespace/name`, when the pod's names are known; `pod<uid>` when only its uid is.
    pub fn pod(&self) -> Option<String> {
        match (&self.namespace, &self.pod_name, &self.pod_uid) {
            (Some(ns), Some(p), _) => Some(format!("{ns}/{p}")),
            (_, _, Some(uid)) => Some(format!("pod{uid}")),
            _ => None,
        }
    }

    /// One short line saying whose it is: `payments/checkout-api-7d9f8b6c5-x2k4q (container
    /// api)`, `container 3f2a9c1e5d4b (podman)`, `unit nginx.service`; `None` when nothing
    /// is known.
    pub fn describe(&self) -> Option<String> {
        let short = |id: &str| id.get(..12).unwrap_or(id).to_string();
        if let Some(pod) = self.pod() {
            let ctr = match (&self.container, &self.container_id) {
                (Some(c), _) if c == "POD" => Some("the pod's sandbox".to_string()),
                (Some(c), _) => Some(format!("container {c}")),
                (None, Some(id)) => Some(format!("container {}", short(id))),
                (None, None) => None,
            };
            return Some(match ctr {
                Some(c) => format!("{pod} ({c})"),
                None => pod,
            });
        }
        if let Some(id) = &self.container_id {
            let name = match &self.container {
                Some(n) => format!("container {n} ({})", short(id)),
                None => format!("container {}", short(id)),
            };
            return Some(match &self.runtime {
                Some(r) => format!("{name}, {r}"),
                None => name,
            });
        }
        match (&self.unit, &self.slice) {
            (Some(u), _) => Some(format!("unit {u}")),
            (None, Some(s)) if s != "-.slice" => Some(format!("slice {s}")),
            _ => None,
        }
    }
}

/// The workload owning a pod, told from its name (marked inferred):
///
/// - Deployment: `<deployment>-<pod-template-hash>-<suffix>` (the ReplicaSet is
///   `<deployment>-<hash>`; hash and suffix use the kubelet's random alphabet,
///   `bcdfghjklmnpqrstvwxz2456789`);
/// - CronJob: `<cronjob>-<scheduled minute, 8+ digits>-<suffix>` (its Job is
///   `<cronjob>-<minute>`); an indexed Job: `<job>-<index>-<suffix>`;
/// - StatefulSet: `<statefulset>-<ordinal>`;
/// - a static pod: `<name>-<node>` (its mirror pod is owned by the Node);
/// - `DaemonSet or Job`: `<name>-<suffix>`, which both produce.
///
/// `None` for a name no rule fits (a bare pod).
pub fn infer_workload(pod: &str, node: Option<&str>) -> Option<Workload> {
    const ALPHABET: &str = "bcdfghjklmnpqrstvwxz2456789";
    let random = |s: &str, lens: std::ops::RangeInclusive<usize>| {
        lens.contains(&s.len()) && s.chars().all(|c| ALPHABET.contains(c))
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let w = |kind: &str, name: &str| {
        Some(Workload {
            kind: kind.into(),
            name: name.into(),
            inferred: true,
        })
    };
    if let Some(node) = node.filter(|n| !n.is_empty())
        && let Some(name) = pod.strip_suffix(node).and_then(|p| p.strip_suffix('-'))
        && !name.is_empty()
    {
        return w("Node", node);
    }
    let parts: Vec<&str> = pod.split('-').collect();
    let n = parts.len();
    if n >= 3 && random(parts[n - 1], 5..=5) {
        let owner = parts[..n - 2].join("-");
        let mid = parts[n - 2];
        if digits(mid) && mid.len() >= 8 {
            return w("CronJob", &owner);
        }
        if digits(mid) {
            return w("Job", &owner);
        }
        if random(mid, 6..=10) {
            return w("Deployment", &owner);
        }
    }
    if n >= 2 {
        let last = parts[n - 1];
        let owner = parts[..n - 1].join("-");
        if digits(last) && (last == "0" || !last.starts_with('0')) {
            return w("StatefulSet", &owner);
        }
        if random(last, 5..=5) {
            return w("DaemonSet or Job", &owner);
        }
    }
    None
}

/// Names for the paths [`cgroup_path`] parses, cached by cgroup path.
#[derive(Debug)]
pub struct Resolver {
    root: HostRoot,
    node: Option<String>,
    logs: LogIndex,
    cache: HashMap<String, Cached>,
    swept: Option<Instant>,
}

#[derive(Debug)]
struct Cached {
    attribution: Attribution,
    /// Every name the path called for was found (else a later lookup tries again).
    complete: bool,
    last_used: Instant,
}

impl Resolver {
    /// A resolver reading under `root`; `node` names the node (for static pods).
    pub fn new(root: HostRoot, node: Option<String>) -> Resolver {
        Resolver {
            root,
            node,
            logs: LogIndex::default(),
            cache: HashMap::new(),
            swept: None,
        }
    }

    /// The host root it reads under.
    pub fn root(&self) -> &HostRoot {
        &self.root
    }

    /// Who the cgroup `path` belongs to.
    pub fn attribute_path(&mut self, path: &str) -> Attribution {
        self.attribute_parsed(path, &cgroup_path::parse(path), Instant::now())
    }

    /// Who a process belongs to, from the text of its `/proc/<pid>/cgroup`.
    pub fn attribute_proc_cgroup(&mut self, text: &str) -> Attribution {
        let info = cgroup_path::parse_proc_cgroup(text);
        let key = format!("proc:{text}");
        self.attribute_parsed(&key, &info, Instant::now())
    }

    /// [`Resolver::attribute_path`] at a given time (for tests of the cache).
    pub fn attribute_at(&mut self, path: &str, now: Instant) -> Attribution {
        self.attribute_parsed(path, &cgroup_path::parse(path), now)
    }

    fn attribute_parsed(&mut self, key: &str, info: &PathInfo, now: Instant) -> Attribution {
        self.sweep(now);
        if let Some(c) = self.cache.get_mut(key)
            && c.complete
        {
            c.last_used = now;
            return c.attribution.clone();
        }
        let (attribution, complete) = self.resolve(info, now);
        self.cache.insert(
            key.to_string(),
            Cached {
                attribution: attribution.clone(),
                complete,
                last_used: now,
            },
        );
        attribution
    }

    /// Drop cache entries unused for longer than the tombstone time (every 10 s at most).
    fn sweep(&mut self, now: Instant) {
        if self
            .swept
            .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(10))
        {
            return;
        }
        self.swept = Some(now);
        self.cache
            .retain(|_, c| now.saturating_duration_since(c.last_used) < TOMBSTONE);
    }

    fn resolve(&mut self, info: &PathInfo, now: Instant) -> (Attribution, bool) {
        let mut a = Attribution {
            pod_uid: info.pod_uid.clone(),
            qos: info.qos.map(str::to_string),
            runtime: info.runtime.map(str::to_string),
            unit: info.unit.clone(),
            slice: info.slice.clone(),
            ..Attribution::default()
        };
        let mut complete = true;
        // The runtime's monitor belongs to the pod (or to nothing), not to the container.
        let container_id = info.container_id.clone().filter(|_| !info.monitor);
        if let Some(uid) = &info.pod_uid {
            if let Some(p) = self.logs.pod(&self.root, uid, now) {
                a.namespace = Some(p.namespace);
                a.pod_name = Some(p.name);
            }
            if let Some(id) = &container_id {
                a.container_id = Some(id.clone());
                let names = self
                    .logs
                    .container(&self.root, id, now)
                    .or_else(|| names::from_runtime_records(&self.root, id));
                match names {
                    Some(n) => {
                        a.container = n.container;
                        a.namespace = a.namespace.or(n.namespace);
                        a.pod_name = a.pod_name.or(n.pod);
                        a.runtime = a.runtime.or(n.runtime.map(str::to_string));
                    }
                    None => complete = false,
                }
            }
            if a.pod_name.is_none() {
                complete = false;
            }
            a.workload = a
                .pod_name
                .as_deref()
                .and_then(|p| infer_workload(p, self.node.as_deref()));
        } else if let Some(id) = &container_id {
            a.container_id = Some(id.clone());
            let runtime = info.runtime.unwrap_or("docker");
            a.container = names::plain_container_name(&self.root, id, runtime)
                .or_else(|| names::from_runtime_records(&self.root, id).and_then(|n| n.container));
            complete = a.container.is_some();
        }
        (a, complete)
    }
}

static RESOLVER: Mutex<Option<Resolver>> = Mutex::new(None);

/// Run `f` with the process-wide resolver for the current [`HostRoot`] and node name
/// (replaced when either changes).
pub fn with_resolver<T>(f: impl FnOnce(&mut Resolver) -> T) -> T {
    let root = crate::host::host_root();
    let node = crate::host::configured_node_name();
    let mut guard = RESOLVER.lock().unwrap_or_else(PoisonError::into_inner);
    if guard
        .as_ref()
        .is_none_or(|r| r.root != root || r.node != node)
    {
        *guard = Some(Resolver::new(root, node));
    }
    f(guard.as_mut().expect("set above"))
}

/// Which findings a report keeps: those about one namespace, or one pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every finding whose subject is in this namespace.
    Namespace(String),
    /// Every finding whose subject is in this pod: `(namespace, name)`.
    Pod(String, String),
}

impl Scope {
    /// `--pod NS/NAME`.
    pub fn pod(spec: &str) -> Result<Scope, String> {
        match spec.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(Scope::Pod(ns.into(), name.into()))
            }
            _ => Err(format!(
                "expected NAMESPACE/NAME (e.g. payments/checkout-api-7d9f8b6c5-x2k4q), got {spec:?}"
            )),
        }
    }

    /// `--namespace NS`.
    pub fn namespace(ns: &str) -> Result<Scope, String> {
        if ns.is_empty() || ns.contains('/') {
            return Err(format!("expected a namespace name, got {ns:?}"));
        }
        Ok(Scope::Namespace(ns.into()))
    }

    /// Whether a subject whose pod is `namespace/name` is in scope.
    pub fn contains(&self, namespace: Option<&str>, pod_name: Option<&str>) -> bool {
        match self {
            Scope::Namespace(ns) => namespace == Some(ns.as_str()),
            Scope::Pod(ns, name) => {
                namespace == Some(ns.as_str()) && pod_name == Some(name.as_str())
            }
        }
    }

    /// `namespace payments`, `pod payments/checkout-api`.
    pub fn describe(&self) -> String {
        match self {
            Scope::Namespace(ns) => format!("namespace {ns}"),
            Scope::Pod(ns, name) => format!("pod {ns}/{name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{fs, os::unix::fs::symlink, path::PathBuf};

    use super::*;

    const UID: &str = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
    const UID_: &str = "0f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b";
    const ID: &str = "9a8b7c6d5e4f3a2b1c0d9a8b7c6d5e4f3a2b1c0d9a8b7c6d5e4f3a2b1c0d9a8b";
    const PAUSE: &str = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592";
    const POD: &str = "checkout-api-7d9f8b6c5-x2k4q";

    struct Root(PathBuf);
    impl Drop for Root {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn fake_root(tag: &str) -> (Root, HostRoot) {
        let p = std::env::temp_dir().join(format!("kerno-attr-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        let r = HostRoot::new(&p);
        (Root(p), r)
    }

    /// What the kubelet lays down for a running container (kubelet kuberuntime
    /// `BuildPodLogsDirectory`, `logSymlink`).
    fn kubelet_logs(root: &HostRoot, ns: &str, pod: &str, uid: &str, ctr: &str, id: &str) {
        let dir = root.path(format!("/var/log/pods/{ns}_{pod}_{uid}/{ctr}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("0.log"), "").unwrap();
        let links = root.path("/var/log/containers");
        fs::create_dir_all(&links).unwrap();
        symlink(
            format!("/var/log/pods/{ns}_{pod}_{uid}/{ctr}/0.log"),
            links.join(format!("{pod}_{ns}_{ctr}-{id}.log")),
        )
        .unwrap();
    }

    fn systemd_path(id: &str) -> String {
        format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{id}.scope"
        )
    }

    #[test]
    fn names_from_the_kubelets_log_directories() {
        let (_d, root) = fake_root("logs");
        kubelet_logs(&root, "payments", POD, UID, "api", ID);
        let mut r = Resolver::new(root, None);
        let a = r.attribute_path(&systemd_path(ID));
        assert_eq!(
            a,
            Attribution {
                namespace: Some("payments".into()),
                pod_name: Some(POD.into()),
                pod_uid: Some(UID.into()),
                container: Some("api".into()),
                container_id: Some(ID.into()),
                runtime: Some("containerd".into()),
                qos: Some("burstable".into()),
                workload: Some(Workload {
                    kind: "Deployment".into(),
                    name: "checkout-api".into(),
                    inferred: true,
                }),
                unit: None,
                slice: None,
            }
        );
        assert_eq!(
            a.describe().as_deref(),
            Some("payments/checkout-api-7d9f8b6c5-x2k4q (container api)")
        );
    }

    #[test]
    fn oci_annotations_are_the_fallback_and_tell_the_sandbox() {
        let (_d, root) = fake_root("oci");
        // containerd's CRI keys for a container (no log link yet), and CRI-O's for another.
        let bundle = |base: &str, id: &str, json: &str| {
            let dir = root.path(format!("{base}/{id}"));
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("config.json"), json).unwrap();
        };
        bundle(
            "/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io",
            ID,
            r#"{"ociVersion":"1.1.0","annotations":{"io.kubernetes.cri.container-type":"container","io.kubernetes.cri.container-name":"api","io.kubernetes.cri.sandbox-name":"web-0","io.kubernetes.cri.sandbox-namespace":"shop","io.kubernetes.cri.sandbox-uid":"0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}}"#,
        );
        bundle(
            "/run/containerd/io.containerd.runtime.v2.task/k8s.io",
            PAUSE,
            r#"{"annotations":{"io.kubernetes.cri.container-type":"sandbox","io.kubernetes.cri.sandbox-name":"web-0","io.kubernetes.cri.sandbox-namespace":"shop"}}"#,
        );
        let mut r = Resolver::new(root.clone(), None);
        // cgroupfs (k3s): the path names no runtime; the bundle's location does.
        let a = r.attribute_path(&format!("/kubepods/burstable/pod{UID}/{ID}"));
        assert_eq!(a.namespace.as_deref(), Some("shop"));
        assert_eq!(a.pod_name.as_deref(), Some("web-0"));
        assert_eq!(a.container.as_deref(), Some("api"));
        assert_eq!(a.runtime.as_deref(), Some("containerd"));
        assert_eq!(
            a.workload.as_ref().map(|w| w.kind.as_str()),
            Some("StatefulSet")
        );
        let a = r.attribute_path(&systemd_path(PAUSE));
        assert_eq!(a.container.as_deref(), Some("POD"));
        assert_eq!(
            a.describe().as_deref(),
            Some("shop/web-0 (the pod's sandbox)")
        );
        // CRI-O's keys, in its bundle.
        let crio = "1111111111111111111111111111111111111111111111111111111111111111";
        bundle(
            "/run/containers/storage/overlay-containers",
            &format!("{crio}/userdata"),
            r#"{"annotations":{"io.kubernetes.cri-o.ContainerType":"container","io.kubernetes.container.name":"db","io.kubernetes.pod.name":"pg-0","io.kubernetes.pod.namespace":"data","io.kubernetes.pod.uid":"0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"}}"#,
        );
        let a = r.attribute_path(&format!(
            "/kubepods.slice/kubepods-pod{UID_}.slice/crio-{crio}.scope/container"
        ));
        assert_eq!(
            (
                a.namespace.as_deref(),
                a.container.as_deref(),
                a.runtime.as_deref(),
                a.qos.as_deref()
            ),
            (Some("data"), Some("db"), Some("cri-o"), Some("guaranteed"))
        );
    }

    #[test]
    fn refreshes_on_a_miss_and_keeps_tombstones() {
        let (_d, root) = fake_root("cache");
        let mut r = Resolver::new(root.clone(), None);
        let t0 = Instant::now();
        let path = systemd_path(ID);
        // Not there yet: uid and container id only, and not cached as complete.
        let a = r.attribute_at(&path, t0);
        assert_eq!((a.pod_uid.as_deref(), a.pod_name), (Some(UID), None));
        // The pod appears; the next miss (after the rescan interval) finds it.
        kubelet_logs(&root, "payments", POD, UID, "api", ID);
        let a = r.attribute_at(&path, t0 + Duration::from_secs(3));
        assert_eq!(a.container.as_deref(), Some("api"));
        // The pod dies: its log directory goes; it still resolves for 30 s.
        fs::remove_dir_all(root.path("/var/log/pods")).unwrap();
        fs::remove_dir_all(root.path("/var/log/containers")).unwrap();
        let mut fresh = Resolver::new(root.clone(), None);
        assert_eq!(fresh.attribute_at(&path, t0).pod_name, None);
        let a = r.attribute_at(&path, t0 + Duration::from_secs(20));
        assert_eq!(a.pod_name.as_deref(), Some(POD), "cached");
        // Another container of the same pod, looked up after the pod died: the index's
        // tombstone still names the pod for 30 s, then forgets it.
        let other = systemd_path(PAUSE);
        let a = r.attribute_at(&other, t0 + Duration::from_secs(25));
        assert_eq!(a.pod_name.as_deref(), Some(POD), "tombstone");
        let a = r.attribute_at(&format!("{other}/x"), t0 + Duration::from_secs(80));
        assert_eq!(a.pod_name, None, "forgotten after the tombstone time");
    }

    #[test]
    fn plain_containers_named_from_docker_and_podman_records() {
        let (_d, root) = fake_root("plain");
        let dir = root.path(format!("/var/lib/docker/containers/{ID}"));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("config.v2.json"),
            r#"{"ID":"x","Name":"/redis-cache"}"#,
        )
        .unwrap();
        let store = root.path("/var/lib/containers/storage/overlay-containers");
        fs::create_dir_all(&store).unwrap();
        fs::write(
            store.join("containers.json"),
            format!(r#"[{{"id":"{PAUSE}","names":["web"],"image":"x"}}]"#),
        )
        .unwrap();
        let mut r = Resolver::new(root, None);
        let a = r.attribute_path(&format!("/system.slice/docker-{ID}.scope"));
        assert_eq!(
            (a.container.as_deref(), a.runtime.as_deref()),
            (Some("redis-cache"), Some("docker"))
        );
        assert_eq!(
            a.describe().as_deref(),
            Some("container redis-cache (9a8b7c6d5e4f), docker")
        );
        let a = r.attribute_path(&format!("/machine.slice/libpod-{PAUSE}.scope/container"));
        assert_eq!(
            (a.container.as_deref(), a.runtime.as_deref()),
            (Some("web"), Some("podman"))
        );
        let a = r.attribute_path("/system.slice/foo.service");
        assert_eq!(a.describe().as_deref(), Some("unit foo.service"));
        assert!(r.attribute_path("/process_api/abc").is_empty());
    }

    #[test]
    fn workloads_from_pod_names() {
        let w = |pod: &str| infer_workload(pod, Some("node-1")).map(|w| (w.kind, w.name));
        let k = |kind: &str, name: &str| Some((kind.to_string(), name.to_string()));
        // Deployment: ReplicaSet `<deployment>-<pod-template-hash>`, then a 5-char suffix
        // (kubernetes pkg/controller/deployment: ComputeHash + rand.SafeEncodeString).
        assert_eq!(
            w("checkout-api-7d9f8b6c5-x2k4q"),
            k("Deployment", "checkout-api")
        );
        assert_eq!(w("coredns-5d78c9869d-8cx4j"), k("Deployment", "coredns"));
        // StatefulSet: `<name>-<ordinal>`.
        assert_eq!(w("postgres-0"), k("StatefulSet", "postgres"));
        assert_eq!(w("kafka-broker-12"), k("StatefulSet", "kafka-broker"));
        // CronJob: Job `<cronjob>-<scheduled minute>`, then the pod suffix.
        assert_eq!(w("backup-28329840-7xkzp"), k("CronJob", "backup"));
        // Indexed Job: `<job>-<index>-<suffix>`.
        assert_eq!(w("train-3-fg7kd"), k("Job", "train"));
        // DaemonSet and a Job's pod look alike: `<name>-<suffix>`.
        assert_eq!(w("kube-proxy-x2k4q"), k("DaemonSet or Job", "kube-proxy"));
        // A static pod: `<name>-<node>`, owned by the Node.
        assert_eq!(w("kube-apiserver-node-1"), k("Node", "node-1"));
        // A bare pod.
        assert_eq!(w("debug"), None);
        assert_eq!(w("my-pod"), None);
    }

    #[test]
    fn scopes_parse() {
        assert_eq!(Scope::pod("a/b"), Ok(Scope::Pod("a".into(), "b".into())));
        assert!(
            Scope::pod("a").is_err() && Scope::pod("a/b/c").is_err() && Scope::pod("/b").is_err()
        );
        assert!(Scope::namespace("a/b").is_err() && Scope::namespace("").is_err());
        assert_eq!(Scope::namespace("x").unwrap().describe(), "namespace x");
    }
}
