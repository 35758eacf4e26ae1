//! `kerno watch oom`: each OOM kill as it happens: the victim, its memory at the kill,
//! its memory cgroup and pod, the constraint (a cgroup's limit or the whole host) and the
//! task that triggered it.
//!
//! The event comes from the `oom:mark_victim` probe (victim pid, comm and memory, and the
//! triggering task, in whose context the tracepoint runs). The constraint and the memory
//! cgroups are in the kernel's `oom-kill:constraint=...` log line, written just before the
//! victim is marked; the stream reads it from `/dev/kmsg` and matches it by victim pid, so
//! kills of other processes (other tests, other pods) are never confused with this one.

use std::{collections::VecDeque, fs::File, io::Read, os::fd::AsRawFd};

use kerno_probes::{
    common::OomEvent as RawOomEvent,
    streams::{StreamKind, StreamOptions, decode},
};
use serde::{Deserialize, Serialize};

use super::{RingStream, StreamError, format_utc_time, mono_to_unix_ns, ring_stream};
use crate::{human_bytes, procfs};

/// One OOM kill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OomEvent {
    /// When the victim was marked, Unix time in ns.
    pub time_unix_ns: u64,
    /// Victim pid.
    pub pid: u32,
    /// Victim command name.
    pub comm: String,
    /// The victim's memory cgroup (`task_memcg` in the kernel's report).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memcg: Option<String>,
    /// Kubernetes pod (`namespace/name`) of that cgroup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Anonymous RSS at the kill, bytes.
    pub anon_rss_bytes: u64,
    /// File-backed RSS at the kill, bytes.
    pub file_rss_bytes: u64,
    /// Shared-memory RSS at the kill, bytes.
    pub shmem_rss_bytes: u64,
    /// Total virtual memory at the kill, bytes.
    pub total_vm_bytes: u64,
    /// What ran out: `memcg` (a cgroup's limit), `host` (the whole machine), `cpuset`,
    /// `mempolicy`; absent when the kernel's report could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<String>,
    /// The cgroup whose limit was hit (`oom_memcg`), for a `memcg` constraint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oom_memcg: Option<String>,
    /// That cgroup's memory limit, bytes, when readable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit_bytes: Option<u64>,
    /// The task whose allocation triggered the kill (pid).
    pub trigger_pid: u32,
    /// Its command name.
    pub trigger_comm: String,
}

impl OomEvent {
    /// The column header of [`OomEvent::row`].
    pub fn header() -> String {
        format!(
            "{:<12} {:>7} {:<16} {:>10} {:<10} {:<28} {:<24} {}",
            "TIME(UTC)", "PID", "COMM", "RSS", "CONSTRAINT", "MEMCG", "POD", "TRIGGER"
        )
    }

    /// One aligned line for a terminal.
    pub fn row(&self) -> String {
        format!(
            "{:<12} {:>7} {:<16} {:>10} {:<10} {:<28} {:<24} {} ({})",
            format_utc_time(self.time_unix_ns),
            self.pid,
            self.comm,
            human_bytes(self.anon_rss_bytes + self.file_rss_bytes + self.shmem_rss_bytes),
            self.constraint.as_deref().unwrap_or("?"),
            self.memcg.as_deref().unwrap_or("-"),
            self.pod.as_deref().unwrap_or("-"),
            self.trigger_comm,
            self.trigger_pid
        )
    }
}

/// What the kernel's `oom-kill:` line says about one kill.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OomReport {
    /// Victim pid.
    pub pid: u32,
    /// `CONSTRAINT_MEMCG` → `memcg`, `CONSTRAINT_NONE` → `host`, ...
    pub constraint: String,
    /// `oom_memcg=`.
    pub oom_memcg: Option<String>,
    /// `task_memcg=`.
    pub task_memcg: Option<String>,
}

/// Parses a kernel log record holding `oom-kill:constraint=...,pid=N,...` (a `/dev/kmsg`
/// record or a dmesg line).
pub fn parse_oom_kill_line(line: &str) -> Option<OomReport> {
    let at = line.find("oom-kill:")?;
    let body = line[at + "oom-kill:".len()..].trim_end();
    let mut r = OomReport::default();
    let mut pid = None;
    for field in body.split(',') {
        let Some((k, v)) = field.split_once('=') else {
            continue;
        };
        match k.trim() {
            "constraint" => {
                r.constraint = match v {
                    "CONSTRAINT_MEMCG" => "memcg",
                    "CONSTRAINT_NONE" => "host",
                    "CONSTRAINT_CPUSET" => "cpuset",
                    "CONSTRAINT_MEMORY_POLICY" => "mempolicy",
                    other => other,
                }
                .to_string()
            }
            "oom_memcg" => r.oom_memcg = Some(v.to_string()),
            "task_memcg" => r.task_memcg = Some(v.to_string()),
            "pid" => pid = v.parse().ok(),
            _ => {}
        }
    }
    r.pid = pid?;
    (!r.constraint.is_empty()).then_some(r)
}

/// The kernel log from the moment the stream opened (`/dev/kmsg`, non-blocking).
struct Kmsg {
    file: Option<File>,
    recent: VecDeque<OomReport>,
}

impl Kmsg {
    fn open() -> Kmsg {
        use std::os::unix::fs::OpenOptionsExt;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open("/dev/kmsg")
            .ok();
        if let Some(f) = &file {
            // SAFETY: lseek on a descriptor we own; SEEK_END on /dev/kmsg skips the records
            // written before now.
            unsafe { libc::lseek(f.as_raw_fd(), 0, libc::SEEK_END) };
        }
        Kmsg {
            file,
            recent: VecDeque::new(),
        }
    }

    /// Reads every record written since the last call and keeps the `oom-kill:` ones.
    fn poll(&mut self) {
        let Some(f) = self.file.as_mut() else {
            return;
        };
        let mut buf = vec![0u8; 8192];
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let rec = String::from_utf8_lossy(&buf[..n]);
                    if let Some(r) = parse_oom_kill_line(&rec) {
                        self.recent.push_back(r);
                        if self.recent.len() > 64 {
                            self.recent.pop_front();
                        }
                    }
                }
                // EPIPE: records were overwritten before we read them; go on reading.
                Err(e) if e.raw_os_error() == Some(libc::EPIPE) => continue,
                Err(_) => break,
            }
        }
    }

    fn report_for(&mut self, pid: u32) -> Option<OomReport> {
        self.poll();
        let i = self.recent.iter().rposition(|r| r.pid == pid)?;
        self.recent.remove(i)
    }
}

/// The memory limit of a memory cgroup path, v1 or v2 (`None`: unlimited or unreadable).
fn memcg_limit(path: &str) -> Option<u64> {
    let rel = path.trim_start_matches('/');
    let mut candidates = Vec::new();
    if let Some(v1) = procfs::cgroup1_memory_root() {
        candidates.push(v1.join(rel).join("memory.limit_in_bytes"));
    }
    if let Some(v2) = procfs::cgroup2_root() {
        candidates.push(v2.join(rel).join("memory.max"));
    }
    for c in candidates {
        if let Ok(s) = std::fs::read_to_string(&c) {
            let v = s.trim();
            if v == "max" {
                return None;
            }
            // v1 reports "unlimited" as a huge page-rounded number.
            return v.parse::<u64>().ok().filter(|b| *b < (1u64 << 62));
        }
    }
    None
}

pub(crate) struct Decoder {
    mono_to_unix: i128,
    kmsg: Kmsg,
}

impl Decoder {
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> Option<OomEvent> {
        let r: RawOomEvent = decode(bytes)?;
        let report = self.kmsg.report_for(r.pid);
        let comm = procfs::comm_str(&r.comm);
        let (memcg, pod) = match report.as_ref().and_then(|r| r.task_memcg.clone()) {
            Some(cg) => {
                let pod = procfs::attribute_cgroup(&cg).pod();
                (Some(cg), pod)
            }
            None => {
                // No kernel report: the victim's own cgroup, while it is still there.
                let p = procfs::process(r.pid, &comm);
                (p.cgroup, p.pod)
            }
        };
        let oom_memcg = report.as_ref().and_then(|r| r.oom_memcg.clone());
        let limit_bytes = oom_memcg.as_deref().and_then(memcg_limit);
        Some(OomEvent {
            time_unix_ns: (r.ts_ns as i128 + self.mono_to_unix).max(0) as u64,
            pid: r.pid,
            comm,
            memcg,
            pod,
            anon_rss_bytes: r.anon_rss_kb * 1024,
            file_rss_bytes: r.file_rss_kb * 1024,
            shmem_rss_bytes: r.shmem_rss_kb * 1024,
            total_vm_bytes: r.total_vm_kb * 1024,
            constraint: report.map(|r| r.constraint),
            oom_memcg,
            limit_bytes,
            trigger_pid: r.trigger_pid,
            trigger_comm: procfs::comm_str(&r.trigger_comm),
        })
    }
}

/// The OOM stream: a `Stream` of [`OomEvent`]s.
pub struct OomStream {
    ring: RingStream<OomEvent>,
    decoder: Decoder,
}

impl OomStream {
    /// Load and attach the OOM stream's program (inside a tokio runtime).
    pub fn open() -> Result<OomStream, StreamError> {
        // The log is opened first, so a kill marked after the probe attaches always has
        // its report after the log position.
        let kmsg = Kmsg::open();
        Ok(OomStream {
            ring: RingStream::open(StreamKind::Oom, &StreamOptions::default())?,
            decoder: Decoder {
                mono_to_unix: mono_to_unix_ns(),
                kmsg,
            },
        })
    }
}

ring_stream!(OomStream, OomEvent);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_oom_kill_line_is_parsed() {
        let rec = "6,1234,5678,-;oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,\
                   mems_allowed=0,oom_memcg=/kerno-oom,task_memcg=/kerno-oom/x,task=hog,pid=4242,uid=0";
        let r = parse_oom_kill_line(rec).unwrap();
        assert_eq!(r.pid, 4242);
        assert_eq!(r.constraint, "memcg");
        assert_eq!(r.oom_memcg.as_deref(), Some("/kerno-oom"));
        assert_eq!(r.task_memcg.as_deref(), Some("/kerno-oom/x"));
        let host = "[  1.0] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/,task=x,pid=7,uid=0";
        assert_eq!(parse_oom_kill_line(host).unwrap().constraint, "host");
        assert!(parse_oom_kill_line("Out of memory: Killed process 7 (x)").is_none());
    }
}
