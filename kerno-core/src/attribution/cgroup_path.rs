//! What a cgroup path alone says about who lives in it: a Kubernetes pod and container, a
//! plain docker/podman container, or a systemd unit. One table of layouts, read from the
//! innermost segment outwards; a path no row matches is unattributed, never an error.
//!
//! The layouts (docs/kubernetes.md lists them with their sources):
//!
//! | layout | example (relative to the cgroup root) |
//! |---|---|
//! | kubelet, systemd driver | `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod<uid_>.slice/<leaf>` |
//! | kubelet, systemd driver, Guaranteed | `kubepods.slice/kubepods-pod<uid_>.slice/<leaf>` |
//! | kubelet, systemd driver, `--cgroup-root` (kind) | `kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod<uid_>.slice/<leaf>` |
//! | kubelet, cgroupfs driver | `kubepods/burstable/pod<uid>/<leaf>`, Guaranteed `kubepods/pod<uid>/<leaf>` |
//! | containerd under its own unit | `system.slice/containerd.service/kubepods-burstable-pod<uid_>.slice:cri-containerd:<id>` |
//! | plain docker | `system.slice/docker-<id>.scope`, cgroupfs `docker/<id>` |
//! | plain podman | `machine.slice/libpod-<id>.scope`, rootless `user.slice/…/user@1000.service/user.slice/libpod-<id>.scope`, cgroupfs `libpod_parent/libpod-<id>` |
//! | systemd | `system.slice/nginx.service`, `user.slice/user-1000.slice/session-3.scope` |
//!
//! Container leaves (the [`LEAVES`] table): `cri-containerd-<id>.scope`, `crio-<id>.scope`,
//! `crio-<id>` (cgroupfs), `crio-conmon-<id>.scope` (CRI-O's monitor, not the container),
//! `docker-<id>.scope`, `libpod-<id>.scope`, `libpod-conmon-<id>.scope`, `nerdctl-<id>.scope`
//! and a bare 64-hex id (cgroupfs: containerd, k3s, microk8s, docker). crun's extra
//! `container` sub-cgroup below a leaf, and any deeper sub-cgroup the container made
//! itself, belong to the same container. A path read through a cgroup namespace
//! (`/../../kubepods-burstable.slice/…`) is parsed from what remains after the `..`s.

/// Kubernetes QoS class, from the pod's cgroup parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Qos {
    /// No QoS level in the path: requests equal limits for every container.
    Guaranteed,
    /// Some requests below limits.
    Burstable,
    /// No requests or limits.
    BestEffort,
}

impl Qos {
    /// `guaranteed`, `burstable`, `besteffort` (as the kubelet names the slices).
    pub fn name(self) -> &'static str {
        match self {
            Qos::Guaranteed => "guaranteed",
            Qos::Burstable => "burstable",
            Qos::BestEffort => "besteffort",
        }
    }
}

/// What a process in a container cgroup is, for the container runtime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A process of the container (or of the pod's sandbox, which only the runtime's
    /// records tell apart).
    Container,
    /// The runtime's monitor for the container (CRI-O's and podman's `conmon`): it belongs
    /// to the pod, not to the container.
    Monitor,
}

/// One row of the container-leaf table: a segment `<prefix><64 hex><suffix>`.
#[derive(Debug)]
pub struct Leaf {
    /// Text before the id.
    pub prefix: &'static str,
    /// Text after the id (`.scope` under the systemd driver, empty under cgroupfs).
    pub suffix: &'static str,
    /// The runtime the prefix names (`None`: a bare id names none).
    pub runtime: Option<&'static str>,
    /// Container process or runtime monitor.
    pub role: Role,
}

const fn leaf(
    prefix: &'static str,
    suffix: &'static str,
    runtime: Option<&'static str>,
    role: Role,
) -> Leaf {
    Leaf {
        prefix,
        suffix,
        runtime,
        role,
    }
}

/// Container leaves, most specific first (`crio-conmon-` before `crio-`).
pub const LEAVES: &[Leaf] = &[
    // kubelet: SystemdPathPrefixOfRuntime maps containerd to `cri-containerd`.
    leaf(
        "cri-containerd-",
        ".scope",
        Some("containerd"),
        Role::Container,
    ),
    leaf("crio-conmon-", ".scope", Some("cri-o"), Role::Monitor),
    leaf("crio-conmon-", "", Some("cri-o"), Role::Monitor),
    leaf("crio-", ".scope", Some("cri-o"), Role::Container),
    leaf("crio-", "", Some("cri-o"), Role::Container),
    leaf("docker-", ".scope", Some("docker"), Role::Container),
    leaf("libpod-conmon-", ".scope", Some("podman"), Role::Monitor),
    leaf("libpod-", ".scope", Some("podman"), Role::Container),
    leaf("libpod-", "", Some("podman"), Role::Container),
    leaf("nerdctl-", ".scope", Some("containerd"), Role::Container),
    leaf("", "", None, Role::Container),
];

/// What a cgroup path says, before any name is looked up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PathInfo {
    /// The layout that matched (`kubelet-systemd`, `kubelet-cgroupfs`,
    /// `containerd-unit`, `docker`, `podman`, `containerd`, `systemd`), `None` when
    /// unattributed.
    pub layout: Option<&'static str>,
    /// Pod uid, with dashes (`_` under the systemd driver is turned back into `-`).
    pub pod_uid: Option<String>,
    /// QoS class, when the path is a pod's.
    pub qos: Option<&'static str>,
    /// 64-hex container id.
    pub container_id: Option<String>,
    /// Runtime the leaf names.
    pub runtime: Option<&'static str>,
    /// The runtime's monitor (`conmon`) rather than a container process.
    pub monitor: bool,
    /// Innermost systemd unit (`nginx.service`, `session-3.scope`) for a path that is not
    /// a container's.
    pub unit: Option<String>,
    /// The slice holding the unit (`system.slice`, `user-1000.slice`).
    pub slice: Option<String>,
}

impl PathInfo {
    /// Whether the path is a Kubernetes pod's (or one of its containers').
    pub fn is_pod(&self) -> bool {
        self.pod_uid.is_some()
    }
}

/// Whether `s` is a container id: 64 lowercase hex digits.
pub fn is_container_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A pod uid as the kubelet writes it: a UUID (dashes, or underscores under the systemd
/// driver), or the 32-hex hash a static pod gets. Returned with dashes.
fn pod_uid(s: &str) -> Option<String> {
    let uid = s.replace('_', "-");
    let hex = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_hexdigit());
    let parts: Vec<&str> = uid.split('-').collect();
    let uuid = parts.len() == 5
        && parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts.iter().all(|p| hex(p));
    let static_hash = uid.len() == 32 && hex(&uid);
    (uuid || static_hash).then(|| uid.to_ascii_lowercase())
}

/// A container leaf segment: its id, runtime and role.
pub fn parse_leaf(seg: &str) -> Option<(&'static Leaf, String)> {
    LEAVES.iter().find_map(|l| {
        let id = seg.strip_prefix(l.prefix)?.strip_suffix(l.suffix)?;
        is_container_id(id).then(|| (l, id.to_string()))
    })
}

/// A pod segment: `(uid, qos)`. Systemd driver: `<parent>-pod<uid_>.slice` where the parent
/// names `kubepods` (`kubepods-burstable`, `kubepods`, `kubelet-kubepods-besteffort`);
/// cgroupfs driver: `pod<uid>` whose parent segment is the QoS (`burstable`, `besteffort`)
/// or `kubepods` itself (Guaranteed).
fn parse_pod(seg: &str, parent: Option<&str>) -> Option<(String, Option<&'static str>)> {
    let qos_of = |s: &str| match s {
        "burstable" => Some(Qos::Burstable.name()),
        "besteffort" => Some(Qos::BestEffort.name()),
        "kubepods" => Some(Qos::Guaranteed.name()),
        _ => None,
    };
    if let Some(stem) = seg.strip_suffix(".slice") {
        let (parent, uid) = stem.rsplit_once("-pod")?;
        if !parent.split('-').any(|p| p == "kubepods") {
            return None;
        }
        let qos = qos_of(parent.rsplit('-').next().unwrap_or(parent));
        return Some((pod_uid(uid)?, qos));
    }
    let uid = pod_uid(seg.strip_prefix("pod")?)?;
    // A relative path may have lost the parent; the uid alone still names the pod.
    Some((uid, parent.and_then(qos_of)))
}

/// The `kubepods-…-pod<uid_>.slice:cri-containerd:<id>` segment containerd writes when its
/// CRI plugin uses the systemd cgroup driver but the pod slice is placed under
/// `containerd.service` (a kubelet on cgroupfs with containerd on systemd).
fn parse_colon_leaf(seg: &str) -> Option<(String, Option<&'static str>, &'static Leaf, String)> {
    let mut parts = seg.split(':');
    let (pod, kind, id) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_container_id(id) {
        return None;
    }
    let (uid, qos) = parse_pod(pod, None)?;
    let leaf = LEAVES
        .iter()
        .find(|l| l.suffix == ".scope" && l.prefix.trim_end_matches('-') == kind)?;
    Some((uid, qos, leaf, id.to_string()))
}

/// Systemd unit suffixes a process's cgroup can end in.
const UNIT_SUFFIXES: [&str; 2] = [".service", ".scope"];

/// What `path` (as `/proc/<pid>/cgroup` gives it, or relative to a cgroup mount) says.
pub fn parse(path: &str) -> PathInfo {
    let segs: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != "." && *s != "..")
        .collect();
    // Kubernetes first: a pod segment anywhere (kind and k3d nest the kubelet's tree under
    // a docker container's cgroup; the pod is what the reader wants).
    for (i, seg) in segs.iter().enumerate() {
        if let Some((uid, qos, leaf, id)) = parse_colon_leaf(seg) {
            return PathInfo {
                layout: Some("containerd-unit"),
                pod_uid: Some(uid),
                qos,
                container_id: Some(id),
                runtime: leaf.runtime,
                monitor: leaf.role == Role::Monitor,
                ..PathInfo::default()
            };
        }
        let parent = i.checked_sub(1).map(|j| segs[j]);
        let Some((uid, qos)) = parse_pod(seg, parent) else {
            continue;
        };
        // cgroupfs needs the tree to name kubepods, unless the path was cut by a cgroup
        // namespace (then the uid's shape is the evidence).
        let systemd = seg.ends_with(".slice");
        if !systemd && !segs[..i].contains(&"kubepods") && !path.starts_with("/..") && i > 0 {
            continue;
        }
        let mut info = PathInfo {
            layout: Some(if systemd {
                "kubelet-systemd"
            } else {
                "kubelet-cgroupfs"
            }),
            pod_uid: Some(uid),
            qos,
            ..PathInfo::default()
        };
        if let Some((leaf, id)) = segs.get(i + 1).and_then(|s| parse_leaf(s)) {
            info.container_id = Some(id);
            info.runtime = leaf.runtime;
            info.monitor = leaf.role == Role::Monitor;
        }
        return info;
    }
    // A plain container: the innermost leaf a runtime names (a bare id only under
    // `docker/`, where docker's cgroupfs driver puts it).
    for (i, seg) in segs.iter().enumerate().rev() {
        let Some((leaf, id)) = parse_leaf(seg) else {
            continue;
        };
        let runtime = match leaf.runtime {
            Some(r) => r,
            None if i > 0 && segs[i - 1] == "docker" => "docker",
            None => continue,
        };
        return PathInfo {
            layout: Some(match runtime {
                "docker" => "docker",
                "podman" => "podman",
                "cri-o" => "cri-o",
                _ => "containerd",
            }),
            container_id: Some(id),
            runtime: Some(runtime),
            monitor: leaf.role == Role::Monitor,
            ..PathInfo::default()
        };
    }
    // systemd: the innermost unit, and the slice it sits in.
    let unit = segs.iter().rposition(|s| {
        UNIT_SUFFIXES
            .iter()
            .any(|x| s.ends_with(x) && s.len() > x.len())
    });
    let slice_before = |end: usize| {
        segs[..end]
            .iter()
            .rev()
            .find(|s| s.ends_with(".slice"))
            .map(|s| s.to_string())
    };
    match unit {
        Some(u) => PathInfo {
            layout: Some("systemd"),
            unit: Some(segs[u].to_string()),
            slice: slice_before(u).or_else(|| Some("-.slice".into())),
            ..PathInfo::default()
        },
        None if segs.last().is_some_and(|s| s.ends_with(".slice")) => PathInfo {
            layout: Some("systemd"),
            slice: slice_before(segs.len()),
            ..PathInfo::default()
        },
        None => PathInfo::default(),
    }
}

/// The cgroup paths in the text of `/proc/<pid>/cgroup`, in the order attribution tries
/// them: the v2 line (`0::`), then the v1 `memory`, `cpu`, `pids` and `name=systemd`
/// lines, then the others. Root paths (`/`) are left out.
pub fn candidate_paths(text: &str) -> Vec<String> {
    let mut ranked: Vec<(u8, String)> = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if path == "/" || path.is_empty() {
            continue;
        }
        let has = |c: &str| ctrls.split(',').any(|x| x == c);
        let rank = if ctrls.is_empty() {
            0
        } else if has("memory") {
            1
        } else if has("cpu") {
            2
        } else if has("pids") {
            3
        } else if has("name=systemd") {
            4
        } else {
            5
        };
        if !ranked.iter().any(|(_, p)| p == path) {
            ranked.push((rank, path.to_string()));
        }
    }
    ranked.sort_by_key(|(r, _)| *r);
    ranked.into_iter().map(|(_, p)| p).collect()
}

/// The best attribution among a process's cgroup paths: the first (in
/// [`candidate_paths`] order) that names a pod or container, else the first that names a
/// systemd unit, else nothing. On a hybrid host a kubelet on the cgroupfs driver may only
/// have placed the container in the v1 controllers, so the v2 line alone is not enough.
pub fn parse_proc_cgroup(text: &str) -> PathInfo {
    let infos: Vec<PathInfo> = candidate_paths(text).iter().map(|p| parse(p)).collect();
    infos
        .iter()
        .find(|i| i.is_pod() || i.container_id.is_some())
        .or_else(|| infos.iter().find(|i| i.layout.is_some()))
        .cloned()
        .unwrap_or_default()
}

/// Real-world path shapes, written by us from the sources each names (the kubelet's
/// cgroup naming code, runtime documentation and code, peers' published fixtures); the
/// ids and uids are made up.
#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b";
    const UID_: &str = "0f1e2d3c_4b5a_6978_8a9b_0c1d2e3f4a5b";
    const ID: &str = "9a8b7c6d5e4f3a2b1c0d9a8b7c6d5e4f3a2b1c0d9a8b7c6d5e4f3a2b1c0d9a8b";
    const NODE: &str = "5d41402abc4b2a76b9719d911017c5925d41402abc4b2a76b9719d911017c592";

    /// `(layout, pod uid, qos, container id, runtime, monitor)` of a `/proc/<pid>/cgroup`.
    fn k8s(
        text: &str,
    ) -> (
        &'static str,
        String,
        Option<&'static str>,
        Option<String>,
        Option<&'static str>,
        bool,
    ) {
        let i = parse_proc_cgroup(text);
        (
            i.layout.unwrap_or("-"),
            i.pod_uid.clone().unwrap_or_default(),
            i.qos,
            i.container_id.clone(),
            i.runtime,
            i.monitor,
        )
    }

    fn ctr(
        layout: &'static str,
        qos: Option<&'static str>,
        runtime: Option<&'static str>,
    ) -> (
        &'static str,
        String,
        Option<&'static str>,
        Option<String>,
        Option<&'static str>,
        bool,
    ) {
        (layout, UID.into(), qos, Some(ID.into()), runtime, false)
    }

    // kubelet pkg/kubelet/cm/cgroup_manager_linux.go: ToSystemd() escapes `-` to `_` and
    // expands each part into a slice; SystemdPathPrefixOfRuntime maps containerd to
    // `cri-containerd`; the leaf is `<prefix>-<id>.scope`. Same shape in coroot-node-agent
    // cgroup/cgroup_test.go.
    #[test]
    fn containerd_systemd_driver_v2() {
        let t = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(
            k8s(&t),
            ctr("kubelet-systemd", Some("burstable"), Some("containerd"))
        );
    }

    // cgroup v1 (hybrid host): the kubelet creates the same path under every controller;
    // the unified line is `0::/`.
    #[test]
    fn containerd_systemd_driver_v1_controllers() {
        let p = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope"
        );
        let t =
            format!("12:pids:{p}\n11:cpu,cpuacct:{p}\n4:memory:{p}\n1:name=systemd:{p}\n0::/\n");
        assert_eq!(
            k8s(&t),
            ctr("kubelet-systemd", Some("besteffort"), Some("containerd"))
        );
    }

    // kubelet pod_container_manager_linux.go: a Guaranteed pod's parent is the node's pod
    // root itself (no QoS level), so its slice is `kubepods-pod<uid>.slice`.
    #[test]
    fn guaranteed_pods_have_no_qos_level() {
        let t = format!("0::/kubepods.slice/kubepods-pod{UID_}.slice/cri-containerd-{ID}.scope\n");
        assert_eq!(
            k8s(&t),
            ctr("kubelet-systemd", Some("guaranteed"), Some("containerd"))
        );
        // cgroupfs: `/kubepods/pod<uid>/<id>` (tracee#1786 shows it on k3s).
        let t = format!("0::/kubepods/pod{UID}/{ID}\n");
        assert_eq!(k8s(&t), ctr("kubelet-cgroupfs", Some("guaranteed"), None));
    }

    // kubelet ToCgroupfs() joins the parts with `/`: `/kubepods/burstable/pod<uid>`; the
    // containerd leaf is the bare id (pixie cgroup_path_resolver tests, `GKEFormat`).
    #[test]
    fn containerd_cgroupfs_driver() {
        let t = format!("0::/kubepods/burstable/pod{UID}/{ID}\n");
        assert_eq!(k8s(&t), ctr("kubelet-cgroupfs", Some("burstable"), None));
    }

    // CRI-O, systemd driver: SystemdPathPrefixOfRuntime maps cri-o to `crio` (kubelet);
    // coroot cgroup_test.go has `crio-<id>.scope`.
    #[test]
    fn crio_systemd_driver() {
        let t = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-{ID}.scope\n"
        );
        assert_eq!(
            k8s(&t),
            ctr("kubelet-systemd", Some("burstable"), Some("cri-o"))
        );
    }

    // crun under CRI-O puts the container's processes in a `container` sub-cgroup of the
    // scope (tetragon PR#2776, "subgroup"); the container is still the scope's.
    #[test]
    fn crio_with_crun_has_an_extra_container_leaf() {
        let t = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/crio-{ID}.scope/container\n"
        );
        assert_eq!(
            k8s(&t),
            ctr("kubelet-systemd", Some("besteffort"), Some("cri-o"))
        );
    }

    // CRI-O runs each container's monitor in `crio-conmon-<id>.scope` (cri-o#811): the
    // pod's, not the container's.
    #[test]
    fn crio_conmon_is_the_pods_not_the_containers() {
        let t = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/crio-conmon-{ID}.scope\n"
        );
        let got = k8s(&t);
        assert_eq!(
            (got.0, got.4, got.5),
            ("kubelet-systemd", Some("cri-o"), true)
        );
    }

    // CRI-O on cgroupfs: `crio-<id>` under the pod (cri-o PR#812; coroot
    // TestContainerByCgroup).
    #[test]
    fn crio_cgroupfs_driver() {
        let t = format!("0::/kubepods/burstable/pod{UID}/crio-{ID}\n");
        assert_eq!(
            k8s(&t),
            ctr("kubelet-cgroupfs", Some("burstable"), Some("cri-o"))
        );
    }

    // cri-dockerd with the systemd driver: `docker-<id>.scope` (falcosecurity/libs
    // container_engine/cri.cpp, "cri-dockerd scenario"; pixie `StandardFormatDocker`).
    #[test]
    fn cri_dockerd_systemd_driver() {
        let t = format!("0::/kubepods.slice/kubepods-pod{UID_}.slice/docker-{ID}.scope\n");
        assert_eq!(
            k8s(&t),
            ctr("kubelet-systemd", Some("guaranteed"), Some("docker"))
        );
    }

    // Docker on cgroupfs under the kubelet: a bare id (coroot fixtures proc/300).
    #[test]
    fn docker_cgroupfs_under_the_kubelet() {
        let t = format!("4:memory:/kubepods/besteffort/pod{UID}/{ID}\n0::/\n");
        assert_eq!(k8s(&t), ctr("kubelet-cgroupfs", Some("besteffort"), None));
    }

    // containerd's CRI plugin on the systemd driver with the pod slice under its own unit,
    // `<slice>:cri-containerd:<id>` (pixie cgroup_path_resolver.cc, "seen in the wild";
    // falcosecurity/libs cri.cpp `:cri-containerd:`).
    #[test]
    fn containerd_under_its_own_unit() {
        let t = format!(
            "0::/system.slice/containerd.service/kubepods-besteffort-pod{UID_}.slice:cri-containerd:{ID}\n"
        );
        assert_eq!(
            k8s(&t),
            ctr("containerd-unit", Some("besteffort"), Some("containerd"))
        );
    }

    // k3s before v1.23.7 and microk8s use cgroupfs, v1 here (k3s PR#5462; tracee#1786: "k3s
    // paths name no runtime"); the v1 memory line is the one to read.
    #[test]
    fn k3s_and_microk8s_cgroupfs_v1() {
        let p = format!("/kubepods/besteffort/pod{UID}/{ID}");
        let t = format!("11:memory:{p}\n7:cpu,cpuacct:{p}\n1:name=systemd:{p}\n0::/\n");
        assert_eq!(k8s(&t), ctr("kubelet-cgroupfs", Some("besteffort"), None));
    }

    // k3s from v1.23.7 on a systemd host uses the systemd driver (k3s PR#5462; cryptnono#47
    // shows the path on k3s).
    #[test]
    fn k3s_systemd_driver() {
        let t = format!(
            "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod{UID_}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(
            k8s(&t),
            ctr("kubelet-systemd", Some("besteffort"), Some("containerd"))
        );
    }

    // kind runs the kubelet with `cgroupRoot: /kubelet` (kind's kubeadm config) inside a
    // docker container: the slices are prefixed `kubelet-` and nested under the node
    // container's scope. The pod wins over the outer container.
    #[test]
    fn kind_cgroup_root_nested_in_docker() {
        let t = format!(
            "0::/system.slice/docker-{NODE}.scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-burstable.slice/kubelet-kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(
            k8s(&t),
            ctr("kubelet-systemd", Some("burstable"), Some("containerd"))
        );
    }

    // k3d (k3s in docker, cgroupfs): the kubelet's tree under `/docker/<node>`.
    #[test]
    fn k3d_cgroupfs_nested_in_docker() {
        let t = format!("4:memory:/docker/{NODE}/kubepods/burstable/pod{UID}/{ID}\n0::/\n");
        assert_eq!(k8s(&t), ctr("kubelet-cgroupfs", Some("burstable"), None));
    }

    // An agent in its own cgroup namespace reads other processes' paths relative to its
    // root: `0::/../../kubepods-burstable.slice/...` (inspektor-gadget PR#3085).
    #[test]
    fn cgroup_namespaced_relative_paths() {
        let t = format!(
            "0::/../../kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice/cri-containerd-{ID}.scope\n"
        );
        assert_eq!(
            k8s(&t),
            ctr("kubelet-systemd", Some("burstable"), Some("containerd"))
        );
        // cgroupfs, cut below the QoS level: the uid's shape still names the pod.
        let t = format!("0::/../pod{UID}/{ID}\n");
        assert_eq!(k8s(&t), ctr("kubelet-cgroupfs", None, None));
    }

    // Static (mirror) pods have a 32-hex uid without dashes (coroot cgroup_test.go).
    #[test]
    fn static_pods_have_a_hash_uid() {
        let t = format!(
            "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod3e61c214bc3ed9ff81e21474dd6cba17.slice/cri-containerd-{ID}.scope\n"
        );
        let i = parse_proc_cgroup(&t);
        assert_eq!(
            i.pod_uid.as_deref(),
            Some("3e61c214bc3ed9ff81e21474dd6cba17")
        );
        assert_eq!(i.container_id.as_deref(), Some(ID));
    }

    // The pause (sandbox) container has a leaf of its own, shaped like any container's;
    // only the runtime's records tell it apart (names.rs reads them). The pod-level cgroup
    // (the one with the pod's memory limit) names the pod and no container.
    #[test]
    fn sandbox_and_pod_level_cgroups() {
        let p =
            format!("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{UID_}.slice");
        let i = parse(&p);
        assert_eq!((i.pod_uid.as_deref(), i.container_id), (Some(UID), None));
        let i = parse(&format!("{p}/cri-containerd-{NODE}.scope"));
        assert_eq!(i.container_id.as_deref(), Some(NODE));
    }

    // On a hybrid host the v2 line may be a systemd unit while the v1 controllers hold the
    // kubelet's cgroupfs tree: attribution takes the line that names a pod.
    #[test]
    fn hybrid_prefers_the_line_that_names_a_pod() {
        let t = format!(
            "4:memory:/kubepods/burstable/pod{UID}/{ID}\n0::/system.slice/containerd.service\n"
        );
        assert_eq!(k8s(&t), ctr("kubelet-cgroupfs", Some("burstable"), None));
    }

    /// `(layout, container id, runtime, monitor)` of a plain container's path.
    fn plain(
        path: &str,
    ) -> (
        Option<&'static str>,
        Option<String>,
        Option<&'static str>,
        bool,
    ) {
        let i = parse(path);
        assert!(i.pod_uid.is_none());
        (i.layout, i.container_id, i.runtime, i.monitor)
    }

    // Docker, systemd cgroup driver: `system.slice/docker-<id>.scope`; cgroupfs:
    // `/docker/<id>` (docker docs, "--cgroup-parent"; coroot fixtures proc/200).
    #[test]
    fn plain_docker_both_drivers() {
        let want = (Some("docker"), Some(ID.to_string()), Some("docker"), false);
        assert_eq!(plain(&format!("/system.slice/docker-{ID}.scope")), want);
        assert_eq!(plain(&format!("/docker/{ID}")), want);
        // A bare id elsewhere is not a container anyone named.
        assert_eq!(parse(&format!("/ecs/{ID}")).container_id, None);
    }

    // Podman: `machine.slice/libpod-<id>.scope`, with crun's `container` sub-cgroup, its
    // monitor in `libpod-conmon-<id>.scope` (tracee pkg/datastores/container/containers.go;
    // backend.ai#13797), rootless under the user's manager, cgroupfs under `libpod_parent`.
    #[test]
    fn plain_podman() {
        let want = (Some("podman"), Some(ID.to_string()), Some("podman"), false);
        assert_eq!(
            plain(&format!("/machine.slice/libpod-{ID}.scope/container")),
            want
        );
        assert_eq!(
            plain(&format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-{ID}.scope"
            )),
            want
        );
        assert_eq!(plain(&format!("/libpod_parent/libpod-{ID}")), want);
        assert!(plain(&format!("/machine.slice/libpod-conmon-{ID}.scope")).3);
    }

    // nerdctl (containerd without Kubernetes) on systemd: `system.slice/nerdctl-<id>.scope`.
    #[test]
    fn plain_nerdctl() {
        assert_eq!(
            plain(&format!("/system.slice/nerdctl-{ID}.scope")),
            (
                Some("containerd"),
                Some(ID.to_string()),
                Some("containerd"),
                false
            )
        );
    }

    // systemd.special(7): services in `system.slice`; pam_systemd(8): a login session is
    // `user.slice/user-<uid>.slice/session-<n>.scope`; user services live under
    // `user@<uid>.service`.
    #[test]
    fn systemd_units_slices_and_session_scopes() {
        let u = |p: &str| {
            let i = parse(p);
            (i.unit, i.slice)
        };
        let s = |a: &str, b: &str| (Some(a.to_string()), Some(b.to_string()));
        assert_eq!(
            u("/system.slice/nginx.service"),
            s("nginx.service", "system.slice")
        );
        assert_eq!(
            u("/user.slice/user-1000.slice/session-3.scope"),
            s("session-3.scope", "user-1000.slice")
        );
        assert_eq!(
            u("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.service"),
            s("foo.service", "app.slice")
        );
        assert_eq!(u("/init.scope"), s("init.scope", "-.slice"));
        let t = "0::/system.slice/foo.service\n";
        assert_eq!(parse_proc_cgroup(t).unit.as_deref(), Some("foo.service"));
    }

    // Unknown layouts are unattributed, never an error: this VM's sandbox cgroup, the root,
    // Talos' `/podruntime/kubelet` (not covered), garbage.
    #[test]
    fn unknown_layouts_are_unattributed() {
        for p in [
            "/process_api/28bc666f7b07eccb5cf51215248e5b9b",
            "/",
            "",
            "/podruntime/kubelet",
            "/kubepods/burstable/podnot-a-uid/x",
            "not a path at all :::",
        ] {
            assert_eq!(parse(p), PathInfo::default(), "{p}");
        }
        assert_eq!(parse_proc_cgroup("garbage\n0::/\n"), PathInfo::default());
    }
}
