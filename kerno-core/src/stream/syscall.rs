//! `kerno trace syscall`: one event per matching syscall (time, process, syscall,
//! latency, return value or errno), filtered in the kernel.

use std::collections::HashMap;

use kerno_probes::{
    common::SyscallEvent as RawSyscallEvent,
    streams::{StreamKind, StreamOptions, decode},
    syscalls,
};
use serde::{Deserialize, Serialize};

use super::{RingStream, StreamError, format_utc_time, mono_to_unix_ns, ring_stream};
use crate::{human_ns, procfs};

/// What to trace. Every filter but the pod's runs in the kernel.
#[derive(Clone, Debug, Default)]
pub struct SyscallFilter {
    /// Only this process (tgid).
    pub pid: Option<u32>,
    /// Only threads with this command name (at most 15 bytes).
    pub comm: Option<String>,
    /// Only tasks in this cgroup v2 id (a pod's: [`pod_cgroup`]).
    pub cgroup_id: Option<u64>,
    /// With `cgroup_id`: the cgroup's depth, matched as an ancestor of the task's own
    /// cgroup (a pod's cgroup holds its containers' cgroups); 0: the task's own cgroup.
    pub cgroup_level: u32,
    /// Only these syscalls, by name (empty: all).
    pub syscalls: Vec<String>,
    /// Only calls at least this slow.
    pub min_latency: std::time::Duration,
    /// Only failed calls.
    pub errors_only: bool,
    /// Ring buffer size, bytes (default 256 KiB).
    pub ring_bytes: Option<u32>,
}

impl SyscallFilter {
    /// The syscall numbers of [`SyscallFilter::syscalls`]; an unknown name is an error.
    pub fn numbers(&self) -> Result<Vec<u32>, StreamError> {
        self.syscalls
            .iter()
            .map(|n| {
                syscalls::number(n).ok_or_else(|| {
                    StreamError::Filter(format!(
                        "unknown syscall {n:?} (names as in `man 2 syscalls`, e.g. openat)"
                    ))
                })
            })
            .collect()
    }
}

/// One syscall that matched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyscallEvent {
    /// When it returned, Unix time in ns.
    pub time_unix_ns: u64,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// The thread's command name.
    pub comm: String,
    /// Kubernetes pod (`namespace/name`), when the process is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Syscall name.
    pub syscall: String,
    /// Enter to exit, ns.
    pub latency_ns: u64,
    /// Return value (negative: `-errno`).
    pub ret: i64,
    /// The errno's name when the call failed (`ENOENT`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub errno: Option<String>,
}

impl SyscallEvent {
    /// The column header of [`SyscallEvent::row`].
    pub fn header() -> String {
        format!(
            "{:<12} {:>7} {:<16} {:<18} {:>10} {:<12} {}",
            "TIME(UTC)", "PID", "COMM", "SYSCALL", "LATENCY", "RESULT", "POD"
        )
    }

    /// One aligned line for a terminal.
    pub fn row(&self) -> String {
        let result = match &self.errno {
            Some(e) => e.clone(),
            None => self.ret.to_string(),
        };
        format!(
            "{:<12} {:>7} {:<16} {:<18} {:>10} {:<12} {}",
            format_utc_time(self.time_unix_ns),
            self.pid,
            self.comm,
            self.syscall,
            human_ns(self.latency_ns as f64),
            result,
            self.pod.as_deref().unwrap_or("-")
        )
    }
}

/// Turns ring records into events: dates them and names the pod (cached per process).
pub(crate) struct Decoder {
    mono_to_unix: i128,
    pods: HashMap<u32, Option<String>>,
}

impl Decoder {
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> Option<SyscallEvent> {
        let r: RawSyscallEvent = decode(bytes)?;
        if self.pods.len() > 4096 {
            self.pods.clear();
        }
        let pod = self
            .pods
            .entry(r.pid)
            .or_insert_with(|| procfs::attribute_pid(r.pid).pod())
            .clone();
        let failed = r.ret < 0 && r.ret > -4096;
        Some(SyscallEvent {
            time_unix_ns: (r.ts_ns as i128 + self.mono_to_unix).max(0) as u64,
            pid: r.pid,
            tid: r.tid,
            comm: procfs::comm_str(&r.comm),
            pod,
            syscall: syscalls::name(r.nr),
            latency_ns: r.lat_ns,
            ret: r.ret,
            errno: failed.then(|| syscalls::errno_name((-r.ret) as u32)),
        })
    }
}

/// The syscall stream: a `Stream` of [`SyscallEvent`]s.
pub struct SyscallStream {
    ring: RingStream<SyscallEvent>,
    decoder: Decoder,
}

impl SyscallStream {
    /// Load and attach the syscall stream's programs with `filter` (inside a tokio
    /// runtime). They stay attached until the stream is dropped.
    pub fn open(filter: &SyscallFilter) -> Result<SyscallStream, StreamError> {
        let opts = StreamOptions {
            pid: filter.pid,
            comm: filter.comm.clone(),
            cgroup_id: filter.cgroup_id,
            cgroup_level: filter.cgroup_level,
            min_ns: filter.min_latency.as_nanos().min(u64::MAX as u128) as u64,
            syscalls: filter.numbers()?,
            errors_only: filter.errors_only,
            ring_bytes: filter.ring_bytes,
            ..Default::default()
        };
        Ok(SyscallStream {
            ring: RingStream::open(StreamKind::Syscall, &opts)?,
            decoder: Decoder {
                mono_to_unix: mono_to_unix_ns(),
                pods: HashMap::new(),
            },
        })
    }
}

ring_stream!(SyscallStream, SyscallEvent);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_syscall_names_are_refused() {
        let f = SyscallFilter {
            syscalls: vec!["openat".into(), "frobnicate".into()],
            ..Default::default()
        };
        let e = f.numbers().unwrap_err().to_string();
        assert!(e.contains("frobnicate"), "{e}");
        let ok = SyscallFilter {
            syscalls: vec!["openat".into(), "nanosleep".into()],
            ..Default::default()
        };
        assert_eq!(ok.numbers().unwrap(), vec![257, 35]);
    }

    #[test]
    fn a_row_is_aligned_under_its_header() {
        let ev = SyscallEvent {
            time_unix_ns: 1_767_323_045_678_000_000,
            pid: 4242,
            tid: 4242,
            comm: "victim".into(),
            pod: None,
            syscall: "openat".into(),
            latency_ns: 3_100,
            ret: -2,
            errno: Some("ENOENT".into()),
        };
        insta::assert_snapshot!(format!("{}\n{}", SyscallEvent::header(), ev.row()));
    }
}

/// A pod's cgroup in the cgroup v2 hierarchy, for [`SyscallFilter::cgroup_id`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodCgroup {
    /// Its path below the v2 mount (`/kubepods.slice/.../kubepods-pod<uid>.slice`).
    pub path: String,
    /// Its cgroup id (the directory's inode number).
    pub id: u64,
    /// Its depth (the root is 0).
    pub level: u32,
}

/// The cgroup v2 directory of pod `spec` (`namespace/name`): the shallowest directory that
/// node-local attribution names as that pod (its containers' cgroups are below it). Needs
/// the pod in the cgroup v2 hierarchy: a v2 host, or a hybrid host whose kubelet uses the
/// systemd driver.
pub fn pod_cgroup(spec: &str) -> Result<PodCgroup, StreamError> {
    use std::os::unix::fs::MetadataExt;
    let scope = crate::Scope::pod(spec).map_err(|e| StreamError::Filter(format!("--pod: {e}")))?;
    let root = crate::procfs::cgroup2_root().ok_or_else(|| {
        StreamError::Filter("--pod: no cgroup v2 hierarchy is mounted, so a pod's cgroup cannot be told to the kernel".into())
    })?;
    let mut level_dirs = vec![root.clone()];
    for level in 1..=8u32 {
        let mut next = Vec::new();
        for dir in &level_dirs {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            for e in entries.flatten() {
                let path = e.path();
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                if !meta.is_dir() {
                    continue;
                }
                let rel = format!("/{}", path.strip_prefix(&root).unwrap_or(&path).display());
                let a = crate::procfs::attribute_cgroup(&rel);
                if scope.contains(a.namespace.as_deref(), a.pod_name.as_deref()) {
                    return Ok(PodCgroup {
                        path: rel,
                        id: meta.ino(),
                        level,
                    });
                }
                next.push(path);
            }
        }
        level_dirs = next;
    }
    Err(StreamError::Filter(format!(
        "--pod: no cgroup of pod {spec} under {} (it is not running on this node, or its cgroups are only in the cgroup v1 hierarchy)",
        root.display()
    )))
}
