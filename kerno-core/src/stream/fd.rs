//! `kerno watch fd`: processes whose descriptor count grows, refreshed from procfs: the
//! count, the soft limit, the growth rate (the trend module's robust slope over the recent
//! samples) and the ETA to the limit.

use std::{
    collections::HashMap,
    pin::Pin,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

use crate::{Series, human_secs, procfs, trend::Trend};

/// Samples of a process kept for its trend.
const KEEP: usize = 12;

/// A process whose descriptors grow at least at the watch's rate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FdGrowth {
    /// Process id.
    pub pid: u32,
    /// Command name.
    pub comm: String,
    /// Kubernetes pod (`namespace/name`), when it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<String>,
    /// Open descriptors now.
    pub fds: u64,
    /// Soft `RLIMIT_NOFILE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    /// Growth, descriptors per second.
    pub rate_per_sec: f64,
    /// Seconds until the limit at this rate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eta_secs: Option<f64>,
}

/// One refresh: the growing processes, fastest first (empty when none grows).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FdTable {
    /// When it was taken, Unix time in ms.
    pub time_unix_ms: u64,
    /// The processes.
    pub processes: Vec<FdGrowth>,
}

impl FdTable {
    /// The table for a terminal: a header and one aligned line per process, or a line
    /// saying none grows.
    pub fn render(&self, min_rate: f64) -> String {
        let mut out = format!(
            "{:>7} {:<16} {:>8} {:>8} {:>10} {:>10} {}\n",
            "PID", "COMM", "FDS", "LIMIT", "RATE/s", "ETA", "POD"
        );
        if self.processes.is_empty() {
            out.push_str(&format!(
                "(no process's descriptors grow by {min_rate}/s or more)\n"
            ));
        }
        for p in &self.processes {
            out.push_str(&format!(
                "{:>7} {:<16} {:>8} {:>8} {:>10.1} {:>10} {}\n",
                p.pid,
                p.comm,
                p.fds,
                p.limit.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                p.rate_per_sec,
                p.eta_secs.map(human_secs).unwrap_or_else(|| "-".into()),
                p.pod.as_deref().unwrap_or("-")
            ));
        }
        out
    }
}

/// Watches every process's descriptor count.
pub struct FdWatch {
    min_rate: f64,
    interval: Duration,
    start: Instant,
    history: HashMap<u32, Series>,
    tick: Option<tokio::time::Interval>,
}

impl FdWatch {
    /// A watch that reports processes growing by at least `min_rate` descriptors a second,
    /// refreshed every `interval`.
    pub fn new(min_rate: f64, interval: Duration) -> FdWatch {
        FdWatch {
            min_rate,
            interval,
            start: Instant::now(),
            history: HashMap::new(),
            tick: None,
        }
    }

    /// Samples every process now and returns the table (the first refresh has no trend
    /// yet, so it is empty).
    pub fn refresh(&mut self) -> FdTable {
        let ms = self.start.elapsed().as_millis() as u64;
        let me = procfs::self_pid();
        let mut alive = HashMap::new();
        for pid in procfs::pids() {
            if pid == me {
                continue;
            }
            if let Some(n) = procfs::fd_count(pid) {
                alive.insert(pid, n);
            }
        }
        self.history.retain(|pid, _| alive.contains_key(pid));
        let mut rows = Vec::new();
        for (pid, n) in alive {
            let s = self.history.entry(pid).or_default();
            s.push(ms, n as f64);
            if s.len() > KEEP {
                s.0.remove(0);
            }
            let Some(t) = Trend::of(s) else {
                continue;
            };
            if t.slope_per_sec <= 0.0 || t.slope_per_sec < self.min_rate {
                continue;
            }
            let p = procfs::process(pid, "");
            let limit = procfs::nofile_soft_limit(pid);
            rows.push(FdGrowth {
                pid,
                comm: p.comm,
                pod: p.pod,
                fds: n,
                limit,
                rate_per_sec: t.slope_per_sec,
                eta_secs: limit.and_then(|l| t.eta_secs(l as f64)),
            });
        }
        rows.sort_by(|a, b| {
            b.rate_per_sec
                .total_cmp(&a.rate_per_sec)
                .then(a.pid.cmp(&b.pid))
        });
        FdTable {
            time_unix_ms: crate::unix_ms_now(),
            processes: rows,
        }
    }

    /// The next refresh, one interval after the previous (the first at once).
    pub async fn next(&mut self) -> FdTable {
        std::future::poll_fn(
            |cx| match futures_core::Stream::poll_next(Pin::new(&mut *self), cx) {
                Poll::Ready(Some(t)) => Poll::Ready(t),
                Poll::Ready(None) => Poll::Pending,
                Poll::Pending => Poll::Pending,
            },
        )
        .await
    }
}

impl futures_core::Stream for FdWatch {
    type Item = FdTable;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<FdTable>> {
        let this = self.get_mut();
        let interval = this.interval;
        let tick = this.tick.get_or_insert_with(|| {
            let mut t = tokio::time::interval(interval);
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            t
        });
        match tick.poll_tick(cx) {
            Poll::Ready(_) => Poll::Ready(Some(this.refresh())),
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_table_says_so() {
        let t = FdTable::default();
        insta::assert_snapshot!(t.render(10.0));
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            r#"{"time_unix_ms":0,"processes":[]}"#
        );
    }

    #[test]
    fn a_growing_process_is_a_row() {
        let t = FdTable {
            time_unix_ms: 0,
            processes: vec![FdGrowth {
                pid: 4242,
                comm: "leaker".into(),
                pod: Some("shop/cart-7d9".into()),
                fds: 812,
                limit: Some(1024),
                rate_per_sec: 50.0,
                eta_secs: Some(4.24),
            }],
        };
        insta::assert_snapshot!(t.render(10.0));
    }
}
