//! Kerno's built-in diagnosis rules. Each is a pure [`Rule`] over [`kerno_core::Signals`]
//! and [`kerno_core::Thresholds`]: no I/O, no clock, no privileges, so each runs the same on
//! a live window, a saved incident or a hand-built test window.
//!
//! A rule speaks only about a domain that was observed, only with enough samples (or it
//! says the finding is low volume and keeps it informational), never about the collector's
//! own process, and strictly above its thresholds: a value exactly at a threshold is fine.
//!
//! ```
//! use kerno_core::{Signals, Thresholds, evaluate};
//!
//! let report = evaluate(&Signals::default(), &kerno_rules::builtin(), &Thresholds::default());
//! assert!(report.findings.is_empty());
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

use kerno_core::Rule;

mod common;
pub mod disk_io;
pub mod fd_leak;
pub mod memory_pressure;
pub mod network_latency;
pub mod oom_imminent;
pub mod oom_kill;
pub mod sched_contention;
pub mod syscall_errors;
pub mod syscall_latency;
pub mod tcp_retransmits;
pub mod tcp_rtt;
#[cfg(test)]
mod testutil;

pub use disk_io::DiskIo;
pub use fd_leak::FdLeak;
pub use memory_pressure::MemoryPressure;
pub use network_latency::NetworkLatency;
pub use oom_imminent::OomImminent;
pub use oom_kill::OomKills;
pub use sched_contention::SchedContention;
pub use syscall_errors::SyscallErrors;
pub use syscall_latency::SyscallLatency;
pub use tcp_retransmits::TcpRetransmits;
pub use tcp_rtt::TcpRtt;

/// Every built-in rule, in a stable order (the order of their ids below).
///
/// `disk-io`, `oom-kill`, `tcp-retransmits`, `tcp-rtt`, `sched-contention`, `fd-leak`,
/// `syscall-latency`, `oom-imminent`, `syscall-errors`, `memory-pressure`, `network-latency`.
pub fn builtin() -> Vec<Box<dyn Rule>> {
    vec![
        Box::new(DiskIo),
        Box::new(OomKills),
        Box::new(TcpRetransmits),
        Box::new(TcpRtt),
        Box::new(SchedContention),
        Box::new(FdLeak),
        Box::new(SyscallLatency),
        Box::new(OomImminent),
        Box::new(SyscallErrors),
        Box::new(MemoryPressure),
        Box::new(NetworkLatency),
    ]
}

#[cfg(test)]
mod tests {
    use kerno_core::{Signals, Thresholds};

    #[test]
    fn ids_are_stable_unique_and_kebab_case() {
        let ids: Vec<String> = super::builtin()
            .iter()
            .map(|r| r.id().to_string())
            .collect();
        assert_eq!(
            ids,
            [
                "disk-io",
                "oom-kill",
                "tcp-retransmits",
                "tcp-rtt",
                "sched-contention",
                "fd-leak",
                "syscall-latency",
                "oom-imminent",
                "syscall-errors",
                "memory-pressure",
                "network-latency",
            ]
        );
        for r in super::builtin() {
            assert!(r.id().chars().all(|c| c.is_ascii_lowercase() || c == '-'));
            assert!(!r.description().is_empty());
        }
    }

    #[test]
    fn an_empty_window_says_nothing() {
        let t = Thresholds::default();
        for r in super::builtin() {
            assert!(r.evaluate(&Signals::default(), &t).is_empty(), "{}", r.id());
            assert!(
                r.evaluate(&crate::testutil::signals(), &t).is_empty(),
                "{}",
                r.id()
            );
        }
    }
}
