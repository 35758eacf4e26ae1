//! Names for pod uids and container ids, from node-local files only (no API server, no
//! socket): the kubelet's log directories and the runtimes' OCI bundles and records.
//!
//! - `/var/log/pods/<namespace>_<pod>_<uid>/<container>/` (kubelet
//!   `BuildPodLogsDirectory`): uid → namespace, pod, container names;
//! - `/var/log/containers/<pod>_<namespace>_<container>-<id>.log` (kubelet `logSymlink`),
//!   a symlink into the pod's directory: container id → pod, namespace, container, uid;
//! - the OCI bundle's `config.json` annotations, under containerd's
//!   `/run/containerd/io.containerd.runtime.v2.task/<ns>/<id>/` (k3s:
//!   `/run/k3s/containerd/…`, microk8s: `/var/snap/microk8s/common/run/containerd/…`,
//!   docker: `…/moby/<id>`), CRI-O's `/run/containers/storage/overlay-containers/<id>/
//!   userdata/`: the fallback for a container whose log link is gone or was cut (names
//!   are cut at 255 bytes), and the only source that tells the sandbox (pause) apart;
//! - plain containers' names: docker's `/var/lib/docker/containers/<id>/config.v2.json`
//!   (`Name`), podman's `/var/lib/containers/storage/overlay-containers/containers.json`
//!   (`names`).
//!
//! Every path is read under the [`HostRoot`].

use std::{
    collections::HashMap,
    fs,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::host::HostRoot;

use super::cgroup_path::is_container_id;

/// How long a name whose source vanished still resolves (a pod that just died).
pub const TOMBSTONE: Duration = Duration::from_secs(30);

/// A pod's names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodNames {
    /// Namespace.
    pub namespace: String,
    /// Pod name.
    pub name: String,
}

/// A container's names, as far as a source tells them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerNames {
    /// Namespace.
    pub namespace: Option<String>,
    /// Pod name.
    pub pod: Option<String>,
    /// Pod uid.
    pub pod_uid: Option<String>,
    /// Container name (`POD` for a pod's sandbox, as the kubelet's dockershim named it).
    pub container: Option<String>,
    /// The runtime whose records named it (`containerd`, `cri-o`, `docker`, `podman`).
    pub runtime: Option<&'static str>,
}

/// `<namespace>_<pod>_<uid>`: a `/var/log/pods` directory name. Namespace and pod names are
/// DNS-1123 names, which have no `_`, so the split is unambiguous.
pub fn parse_pod_log_dir(name: &str) -> Option<(String, PodNames)> {
    let mut it = name.splitn(3, '_');
    let (ns, pod, uid) = (it.next()?, it.next()?, it.next()?);
    if ns.is_empty() || pod.is_empty() || uid.is_empty() {
        return None;
    }
    Some((
        uid.to_string(),
        PodNames {
            namespace: ns.into(),
            name: pod.into(),
        },
    ))
}

/// `<pod>_<namespace>_<container>-<id>.log`: a `/var/log/containers` link name.
pub fn parse_container_log(name: &str) -> Option<(String, ContainerNames)> {
    let stem = name.strip_suffix(".log")?;
    let (front, id) = stem.rsplit_once('-')?;
    if !is_container_id(id) {
        return None;
    }
    let mut it = front.splitn(3, '_');
    let (pod, ns, container) = (it.next()?, it.next()?, it.next()?);
    Some((
        id.to_string(),
        ContainerNames {
            namespace: Some(ns.into()),
            pod: Some(pod.into()),
            container: Some(container.into()),
            ..ContainerNames::default()
        },
    ))
}

/// Names from an OCI `config.json`'s annotations (containerd's CRI plugin and CRI-O keys).
pub fn parse_oci_annotations(config_json: &str) -> Option<ContainerNames> {
    let v: Value = serde_json::from_str(config_json).ok()?;
    let a = v.get("annotations")?.as_object()?;
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| a.get(*k).and_then(Value::as_str))
            .map(str::to_string)
    };
    let kind = get(&[
        "io.kubernetes.cri.container-type",
        "io.kubernetes.cri-o.ContainerType",
    ]);
    let sandbox = kind.as_deref() == Some("sandbox");
    let names = ContainerNames {
        namespace: get(&[
            "io.kubernetes.cri.sandbox-namespace",
            "io.kubernetes.pod.namespace",
        ]),
        pod: get(&["io.kubernetes.cri.sandbox-name", "io.kubernetes.pod.name"]),
        pod_uid: get(&["io.kubernetes.cri.sandbox-uid", "io.kubernetes.pod.uid"]),
        container: if sandbox {
            Some("POD".into())
        } else {
            get(&[
                "io.kubernetes.cri.container-name",
                "io.kubernetes.container.name",
            ])
        },
        runtime: None,
    };
    (names.pod.is_some() || names.container.is_some()).then_some(names)
}

/// Where runtimes keep a container's OCI bundle, relative to the host root, with the
/// runtime each belongs to. `{id}` is the container id.
pub const BUNDLES: &[(&str, &str)] = &[
    (
        "/run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json",
        "containerd",
    ),
    (
        "/run/k3s/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json",
        "containerd",
    ),
    (
        "/var/snap/microk8s/common/run/containerd/io.containerd.runtime.v2.task/k8s.io/{id}/config.json",
        "containerd",
    ),
    (
        "/run/containers/storage/overlay-containers/{id}/userdata/config.json",
        "cri-o",
    ),
    (
        "/run/containerd/io.containerd.runtime.v2.task/moby/{id}/config.json",
        "docker",
    ),
    (
        "/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby/{id}/config.json",
        "docker",
    ),
    (
        "/run/containerd/io.containerd.runtime.v2.task/default/{id}/config.json",
        "containerd",
    ),
];

/// What the kubelet's log directories say, with tombstones for entries that went away.
#[derive(Debug, Default)]
pub struct LogIndex {
    pods: HashMap<String, (PodNames, Option<Instant>)>,
    containers: HashMap<String, (ContainerNames, Option<Instant>)>,
    scanned: Option<Instant>,
}

/// Minimum time between two rescans forced by misses (a node with thousands of log
/// directories is not listed on every unknown id).
const RESCAN_EVERY: Duration = Duration::from_secs(2);

impl LogIndex {
    /// The pod with this uid, rescanning once on a miss.
    pub fn pod(&mut self, root: &HostRoot, uid: &str, now: Instant) -> Option<PodNames> {
        if live(&self.pods, uid, now).is_none() {
            self.rescan(root, now);
        }
        live(&self.pods, uid, now).cloned()
    }

    /// The container with this id, rescanning once on a miss.
    pub fn container(&mut self, root: &HostRoot, id: &str, now: Instant) -> Option<ContainerNames> {
        if live(&self.containers, id, now).is_none() {
            self.rescan(root, now);
        }
        live(&self.containers, id, now).cloned()
    }

    /// Re-read both directories (at most every [`RESCAN_EVERY`]). Entries that vanished
    /// stay for [`TOMBSTONE`], then are dropped.
    pub fn rescan(&mut self, root: &HostRoot, now: Instant) {
        if self
            .scanned
            .is_some_and(|t| now.saturating_duration_since(t) < RESCAN_EVERY)
        {
            return;
        }
        self.scanned = Some(now);
        let mut pods = HashMap::new();
        if let Ok(dir) = fs::read_dir(root.path("/var/log/pods")) {
            for e in dir.flatten() {
                if let Some((uid, p)) = parse_pod_log_dir(&e.file_name().to_string_lossy()) {
                    pods.insert(uid, p);
                }
            }
        }
        let mut containers = HashMap::new();
        if let Ok(dir) = fs::read_dir(root.path("/var/log/containers")) {
            for e in dir.flatten() {
                let Some((id, mut c)) = parse_container_log(&e.file_name().to_string_lossy())
                else {
                    continue;
                };
                // The link points into /var/log/pods/<ns>_<pod>_<uid>/<container>/: the uid.
                if let Ok(target) = fs::read_link(e.path()) {
                    c.pod_uid = target
                        .iter()
                        .filter_map(|s| parse_pod_log_dir(&s.to_string_lossy()))
                        .map(|(uid, _)| uid)
                        .next();
                }
                containers.insert(id, c);
            }
        }
        merge(&mut self.pods, pods, now);
        merge(&mut self.containers, containers, now);
    }
}

/// An entry still present, or gone for less than [`TOMBSTONE`].
fn live<'a, V>(
    m: &'a HashMap<String, (V, Option<Instant>)>,
    k: &str,
    now: Instant,
) -> Option<&'a V> {
    m.get(k)
        .filter(|(_, gone)| gone.is_none_or(|t| now.saturating_duration_since(t) < TOMBSTONE))
        .map(|(v, _)| v)
}

fn merge<V>(
    old: &mut HashMap<String, (V, Option<Instant>)>,
    new: HashMap<String, V>,
    now: Instant,
) {
    for (k, (_, gone)) in old.iter_mut() {
        if !new.contains_key(k) && gone.is_none() {
            *gone = Some(now);
        }
    }
    old.retain(|_, (_, gone)| gone.is_none_or(|t| now.saturating_duration_since(t) < TOMBSTONE));
    for (k, v) in new {
        old.insert(k, (v, None));
    }
}

/// Names of a container from its runtime's records: the OCI bundle annotations (Kubernetes
/// containers), docker's and podman's own records (plain containers).
pub fn from_runtime_records(root: &HostRoot, id: &str) -> Option<ContainerNames> {
    for (pattern, runtime) in BUNDLES {
        let path = root.path(pattern.replace("{id}", id));
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let mut names = parse_oci_annotations(&text).unwrap_or_default();
        names.runtime = Some(runtime);
        if names.container.is_none()
            && let Some(n) = plain_container_name(root, id, runtime)
        {
            names.container = Some(n);
        }
        return Some(names);
    }
    for runtime in ["docker", "podman"] {
        if let Some(n) = plain_container_name(root, id, runtime) {
            return Some(ContainerNames {
                container: Some(n),
                runtime: Some(runtime),
                ..ContainerNames::default()
            });
        }
    }
    None
}

/// A plain container's name from docker's or podman's records.
pub fn plain_container_name(root: &HostRoot, id: &str, runtime: &str) -> Option<String> {
    match runtime {
        "docker" => {
            let text = fs::read_to_string(
                root.path(format!("/var/lib/docker/containers/{id}/config.v2.json")),
            )
            .ok()?;
            docker_name(&text)
        }
        "podman" => {
            let text = fs::read_to_string(
                root.path("/var/lib/containers/storage/overlay-containers/containers.json"),
            )
            .ok()?;
            podman_name(&text, id)
        }
        _ => None,
    }
}

/// `Name` of docker's `config.v2.json`, without its leading `/`.
pub fn docker_name(config_v2: &str) -> Option<String> {
    let v: Value = serde_json::from_str(config_v2).ok()?;
    let n = v.get("Name")?.as_str()?.trim_start_matches('/');
    (!n.is_empty()).then(|| n.to_string())
}

/// The first of `names` for container `id` in containers/storage's `containers.json`.
pub fn podman_name(containers_json: &str, id: &str) -> Option<String> {
    let v: Value = serde_json::from_str(containers_json).ok()?;
    v.as_array()?
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(id))?
        .get("names")?
        .as_array()?
        .first()?
        .as_str()
        .map(str::to_string)
}
