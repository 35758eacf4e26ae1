//! Live streams: the kernel's events as they happen, each stream a typed async
//! [`Stream`](futures_core::Stream).
//!
//! `doctor` answers "what is wrong" from aggregated maps; a stream shows it happening, one
//! event at a time: [`syscall`] (`kerno trace syscall`), [`disk`] (`kerno trace disk`),
//! [`sched`] (`kerno trace sched`),
//! [`tcp`] (`kerno watch tcp`), [`oom`] (`kerno watch oom`), and [`fd`] (`kerno watch fd`,
//! a table refreshed from procfs). A kernel stream loads its own
//! eBPF programs and ring buffer (`kerno_probes::streams`), attached only while it lives,
//! with its filters in the kernel; what the filters drop costs no ring traffic, and what
//! the ring had no room for is counted ([`Summary::lost`]), never silently dropped.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kerno_core::stream::StreamError> {
//! use kerno_core::stream::syscall::{SyscallFilter, SyscallStream};
//!
//! let filter = SyscallFilter { errors_only: true, ..Default::default() };
//! let mut failures = SyscallStream::open(&filter)?;
//! while let Some(ev) = failures.next().await {
//!     let ev = ev?;
//!     println!("{} {} {} {:?}", ev.pid, ev.comm, ev.syscall, ev.errno);
//! }
//! # Ok(()) }
//! ```
//!
//! Draining follows the ring buffer's edge-triggered readiness: every wakeup drains the
//! ring to empty before waiting again, and a 100 ms timer drains it too (the programs batch
//! their wakeups, so a few events may wait for the timer).

pub mod disk;
pub mod fd;
pub mod oom;
pub mod sched;
pub mod syscall;
pub mod tcp;
mod time;

use std::{
    collections::VecDeque,
    io,
    task::{Context, Poll},
    time::Duration,
};

use kerno_probes::streams::{StreamCounters, StreamKind, StreamOptions, StreamProbe, StreamRing};
use serde::{Deserialize, Serialize};
use tokio::io::{Interest, unix::AsyncFd};

pub use kerno_probes::ProbeError;
pub use time::{format_utc_time, mono_to_unix_ns};

/// What can go wrong opening or reading a stream.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    /// The probes could not be loaded or attached (privileges, kernel support).
    #[error(transparent)]
    Probes(#[from] kerno_probes::ProbeError),
    /// A filter that cannot be applied (an unknown syscall name, a negative threshold).
    #[error("{0}")]
    Filter(String),
    /// The stream must be opened inside a tokio runtime (it registers with its reactor).
    #[error("a stream must be opened inside a tokio runtime")]
    NoRuntime,
    /// Polling the ring buffer failed.
    #[error("polling the ring buffer: {0}")]
    Io(#[from] io::Error),
}

/// The end-of-stream summary: what was shown, what the filters dropped, what was lost.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Events handed to the consumer.
    pub shown: u64,
    /// Events the filters dropped (in the kernel, and in user space for filters that
    /// live there).
    pub filtered: u64,
    /// Matching events dropped because the ring buffer was full.
    pub lost: u64,
}

/// How often the ring is drained when no wakeup came (the programs batch wakeups).
pub const BACKSTOP: Duration = Duration::from_millis(100);

/// The machinery under every kernel stream: the probe, its ring registered with tokio,
/// the backstop timer and the events decoded but not yet handed out.
struct RingStream<E> {
    probe: StreamProbe,
    ring: AsyncFd<StreamRing>,
    tick: tokio::time::Interval,
    queue: VecDeque<E>,
    shown: u64,
    user_filtered: u64,
}

impl<E> RingStream<E> {
    fn open(kind: StreamKind, opts: &StreamOptions) -> Result<RingStream<E>, StreamError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StreamError::NoRuntime);
        }
        let mut probe = StreamProbe::open(kind, opts)?;
        let ring = probe.take_ring().ok_or(kerno_probes::ProbeError::Missing {
            kind: "map",
            name: "ring".into(),
        })?;
        // SAFETY: the ring buffer owns its file descriptor, which stays open and the same
        // until the `AsyncFd` (which owns the ring) is dropped.
        let ring = unsafe { AsyncFd::register_with_interest(ring, Interest::READABLE) }
            .map_err(|e| StreamError::Io(e.into_parts().1))?;
        let mut tick = tokio::time::interval(BACKSTOP);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ok(RingStream {
            probe,
            ring,
            tick,
            queue: VecDeque::new(),
            shown: 0,
            user_filtered: 0,
        })
    }

    /// Drains the ring to empty, decoding each record; `decode` returns `None` for a
    /// record a user-space filter drops.
    fn drain(&mut self, decode: &mut dyn FnMut(&[u8]) -> Option<E>) -> usize {
        let mut n = 0;
        while let Some(item) = self.ring.get_mut().next() {
            n += 1;
            match decode(&item) {
                Some(e) => self.queue.push_back(e),
                None => self.user_filtered += 1,
            }
        }
        n
    }

    fn poll_next(
        &mut self,
        cx: &mut Context<'_>,
        decode: &mut dyn FnMut(&[u8]) -> Option<E>,
    ) -> Poll<Option<Result<E, StreamError>>> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                self.shown += 1;
                return Poll::Ready(Some(Ok(e)));
            }
            if self.drain(decode) > 0 {
                continue;
            }
            match self.ring.poll_read_ready_mut(cx) {
                Poll::Ready(Ok(mut guard)) => {
                    // Edge-triggered: drain to empty before clearing the readiness, or a
                    // record committed in between would wait for the next wakeup.
                    let mut got = 0;
                    while let Some(item) = guard.get_inner_mut().next() {
                        got += 1;
                        match decode(&item) {
                            Some(e) => self.queue.push_back(e),
                            None => self.user_filtered += 1,
                        }
                    }
                    if got == 0 {
                        guard.clear_ready();
                    }
                    continue;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Some(Err(e.into()))),
                Poll::Pending => {}
            }
            match self.tick.poll_tick(cx) {
                Poll::Ready(_) => continue,
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn counters(&self) -> Result<StreamCounters, StreamError> {
        Ok(self.probe.counters()?)
    }

    fn summary(&self) -> Result<Summary, StreamError> {
        let c = self.counters()?;
        Ok(Summary {
            shown: self.shown,
            filtered: c.filtered + self.user_filtered,
            lost: c.lost,
        })
    }
}

/// Implements `futures_core::Stream`, an inherent `next()`, `summary()` and `lost()` for
/// a stream type that has a `ring: RingStream<E>` and a `decode(&mut self, &[u8])`.
macro_rules! ring_stream {
    ($t:ty, $e:ty) => {
        impl futures_core::Stream for $t {
            type Item = Result<$e, $crate::stream::StreamError>;

            fn poll_next(
                self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Self::Item>> {
                let this = self.get_mut();
                let (ring, dec) = (&mut this.ring, &mut this.decoder);
                ring.poll_next(cx, &mut |b| dec.decode(b))
            }
        }

        impl $t {
            /// The next event (`None` never comes: a stream ends when its consumer stops
            /// reading it).
            pub async fn next(&mut self) -> Option<Result<$e, $crate::stream::StreamError>> {
                std::future::poll_fn(|cx| {
                    futures_core::Stream::poll_next(std::pin::Pin::new(&mut *self), cx)
                })
                .await
            }

            /// What was shown, filtered and lost so far.
            pub fn summary(&self) -> Result<$crate::stream::Summary, $crate::stream::StreamError> {
                self.ring.summary()
            }

            /// Matching events lost so far because the ring was full (monotonic).
            pub fn lost(&self) -> Result<u64, $crate::stream::StreamError> {
                Ok(self.ring.counters()?.lost)
            }

            /// The ring buffer's size, bytes.
            pub fn ring_bytes(&self) -> u32 {
                self.ring.probe.ring_bytes()
            }
        }
    };
}
pub(crate) use ring_stream;

/// A duration such as `10ms`, `2s`, `1.5s`, `500us`, `100ns`, `5m` (a bare number is
/// milliseconds), for thresholds; negative or malformed values are a [`StreamError::Filter`].
pub fn parse_threshold(s: &str) -> Result<Duration, StreamError> {
    let t = s.trim();
    let bad = || {
        StreamError::Filter(format!(
            "invalid threshold {s:?}: expected a non-negative duration such as 10ms, 2s or 500us"
        ))
    };
    if t.starts_with('-') {
        return Err(bad());
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| bad())?;
    let ns = match unit.trim() {
        "ns" => v,
        "us" | "µs" => v * 1e3,
        "" | "ms" => v * 1e6,
        "s" => v * 1e9,
        "m" => v * 60e9,
        _ => return Err(bad()),
    };
    if !ns.is_finite() || !(0.0..=3600e9).contains(&ns) {
        return Err(bad());
    }
    Ok(Duration::from_nanos(ns as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_with_units_and_refuse_negatives() {
        assert_eq!(parse_threshold("10ms").unwrap(), Duration::from_millis(10));
        assert_eq!(parse_threshold("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(
            parse_threshold("500us").unwrap(),
            Duration::from_micros(500)
        );
        assert_eq!(
            parse_threshold("1.5ms").unwrap(),
            Duration::from_micros(1500)
        );
        assert_eq!(parse_threshold("7").unwrap(), Duration::from_millis(7));
        assert_eq!(parse_threshold("0").unwrap(), Duration::ZERO);
        for bad in ["-5ms", "ten", "5 parsecs", "", "1e999s"] {
            assert!(parse_threshold(bad).is_err(), "{bad}");
        }
    }
}
