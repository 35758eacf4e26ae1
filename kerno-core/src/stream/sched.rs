//! `kerno trace sched` (runqslower): tasks that waited on a run queue at least the
//! threshold, with the CPU and the task that ran before them.

use std::collections::HashMap;

use kerno_probes::{
    common::SchedEvent as RawSchedEvent,
    streams::{StreamKind, StreamOptions, decode},
};
use serde::{Deserialize, Serialize};

use super::{RingStream, StreamError, format_utc_time, mono_to_unix_ns, ring_stream};
use crate::{human_ns, procfs};

/// What to show.
#[derive(Clone, Debug, Default)]
pub struct SchedFilter {
    /// Only waits at least this long (in the kernel; runqslower's default is 10 ms).
    pub min_delay: std::time::Duration,
    /// Only threads of this process. The scheduler's tracepoints name threads, not
    /// processes, so this filter runs in user space, on the events past the threshold.
    pub pid: Option<u32>,
    /// Ring buffer size, bytes (default 256 KiB).
    pub ring_bytes: Option<u32>,
}

/// One long run-queue wait.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SchedEvent {
    /// When it got the CPU, Unix time in ns.
    pub time_unix_ns: u64,
    /// Its process (tgid; 0 when it exited before it could be looked up).
    pub pid: u32,
    /// The thread that waited.
    pub tid: u32,
    /// Its command name.
    pub comm: String,
    /// Kubernetes pod (`namespace/name`), when it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// How long it waited, ns.
    pub delay_ns: u64,
    /// The CPU it waited for.
    pub cpu: u32,
    /// The thread that ran before it on that CPU.
    pub prev_tid: u32,
    /// That thread's command name.
    pub prev_comm: String,
}

impl SchedEvent {
    /// The column header of [`SchedEvent::row`].
    pub fn header() -> String {
        format!(
            "{:<12} {:>7} {:>7} {:<16} {:>10} {:>4} {:>7} {:<16} {}",
            "TIME(UTC)", "PID", "TID", "COMM", "WAITED", "CPU", "PREV", "PREV COMM", "POD"
        )
    }

    /// One aligned line for a terminal.
    pub fn row(&self) -> String {
        format!(
            "{:<12} {:>7} {:>7} {:<16} {:>10} {:>4} {:>7} {:<16} {}",
            format_utc_time(self.time_unix_ns),
            self.pid,
            self.tid,
            self.comm,
            human_ns(self.delay_ns as f64),
            self.cpu,
            self.prev_tid,
            self.prev_comm,
            self.pod.as_deref().unwrap_or("-")
        )
    }
}

pub(crate) struct Decoder {
    mono_to_unix: i128,
    pid: Option<u32>,
    /// thread → (process, pod), cached.
    threads: HashMap<u32, (u32, Option<String>)>,
}

impl Decoder {
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> Option<SchedEvent> {
        let r: RawSchedEvent = decode(bytes)?;
        if self.threads.len() > 8192 {
            self.threads.clear();
        }
        let (pid, pod) = self
            .threads
            .entry(r.tid)
            .or_insert_with(|| {
                let pid = procfs::tgid_of(r.tid).unwrap_or(0);
                let pod = (pid != 0)
                    .then(|| procfs::attribute_pid(pid).pod())
                    .flatten();
                (pid, pod)
            })
            .clone();
        if self.pid.is_some_and(|want| want != pid) {
            return None;
        }
        Some(SchedEvent {
            time_unix_ns: (r.ts_ns as i128 + self.mono_to_unix).max(0) as u64,
            pid,
            tid: r.tid,
            comm: procfs::comm_str(&r.comm),
            pod,
            delay_ns: r.delay_ns,
            cpu: r.cpu,
            prev_tid: r.prev_tid,
            prev_comm: procfs::comm_str(&r.prev_comm),
        })
    }
}

/// The run-queue stream: a `Stream` of [`SchedEvent`]s.
pub struct SchedStream {
    ring: RingStream<SchedEvent>,
    decoder: Decoder,
}

impl SchedStream {
    /// Load and attach the run-queue stream's programs (inside a tokio runtime).
    pub fn open(filter: &SchedFilter) -> Result<SchedStream, StreamError> {
        let opts = StreamOptions {
            min_ns: filter.min_delay.as_nanos().min(u64::MAX as u128) as u64,
            ring_bytes: filter.ring_bytes,
            ..Default::default()
        };
        Ok(SchedStream {
            ring: RingStream::open(StreamKind::Sched, &opts)?,
            decoder: Decoder {
                mono_to_unix: mono_to_unix_ns(),
                pid: filter.pid,
                threads: HashMap::new(),
            },
        })
    }
}

ring_stream!(SchedStream, SchedEvent);
