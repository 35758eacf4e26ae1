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

use kerno_core::{Rule, ThresholdRegistry};

mod common;
#[cfg(test)]
mod testutil;

/// Declares the built-in rules: each line is a rule's module (one file in `src/`) and its
/// type. The module becomes public, the type is re-exported, and [`builtin`] returns the rules
/// in this order. Adding a rule is its file plus one line here; its thresholds come with it
/// (`Rule::thresholds`).
macro_rules! builtin_rules {
    ($($module:ident => $rule:ident,)+) => {
        $(pub mod $module;)+
        $(pub use $module::$rule;)+

        /// Every built-in rule, in a stable order (the order of their ids below).
        ///
        /// `disk-io`, `oom-kill`, `tcp-retransmits`, `tcp-rtt`, `sched-contention`, `fd-leak`,
        /// `syscall-latency`, `oom-imminent`, `syscall-errors`, `memory-pressure`,
        /// `network-latency`, `filesystem-full`, `conntrack-full`, `pid-exhaustion`,
        /// `cpu-throttling`, `memory-reclaim-stall`, `io-pressure`, `listen-overflow`.
        pub fn builtin() -> Vec<Box<dyn Rule>> {
            vec![$(Box::new($rule)),+]
        }
    };
}

builtin_rules! {
    disk_io => DiskIo,
    oom_kill => OomKills,
    tcp_retransmits => TcpRetransmits,
    tcp_rtt => TcpRtt,
    sched_contention => SchedContention,
    fd_leak => FdLeak,
    syscall_latency => SyscallLatency,
    oom_imminent => OomImminent,
    syscall_errors => SyscallErrors,
    memory_pressure => MemoryPressure,
    network_latency => NetworkLatency,
    filesystem_full => FilesystemFull,
    conntrack_full => ConntrackFull,
    pid_exhaustion => PidExhaustion,
    cpu_throttling => CpuThrottling,
    memory_reclaim_stall => MemoryReclaimStall,
    io_pressure => IoPressure,
    listen_overflow => ListenOverflow,
}

/// The thresholds of the built-in rules, for checking configuration and listing them.
pub fn thresholds() -> ThresholdRegistry {
    ThresholdRegistry::of(&builtin())
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
                "filesystem-full",
                "conntrack-full",
                "pid-exhaustion",
                "cpu-throttling",
                "memory-reclaim-stall",
                "io-pressure",
                "listen-overflow",
            ]
        );
        for r in super::builtin() {
            assert!(r.id().chars().all(|c| c.is_ascii_lowercase() || c == '-'));
            assert!(!r.description().is_empty());
        }
    }

    #[test]
    fn every_threshold_is_declared_once_with_a_valid_default() {
        let reg = super::thresholds();
        assert!(reg.conflicts().is_empty(), "{:?}", reg.conflicts());
        let keys = reg.keys();
        assert_eq!(keys.len(), 54, "{keys:?}");
        for (rule, spec) in reg.iter() {
            assert!(super::builtin().iter().any(|r| r.id() == rule));
            assert!(
                spec.key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{}",
                spec.key
            );
            assert!(!spec.doc.is_empty(), "{}", spec.key);
            assert_eq!(
                spec.check(spec.default_value()),
                Ok(spec.default_value()),
                "{}: default outside its own range",
                spec.key
            );
        }
    }

    #[test]
    fn every_rule_says_what_it_checks_naming_each_threshold_and_what_to_do() {
        for r in super::builtin() {
            let doc = r.doc();
            assert_ne!(
                doc.checks,
                r.description(),
                "{}: only the default doc",
                r.id()
            );
            assert!(!doc.when_it_fires.is_empty(), "{}", r.id());
            for spec in r.thresholds() {
                assert!(
                    doc.checks.contains(spec.key),
                    "{}: the doc does not name {}",
                    r.id(),
                    spec.key
                );
            }
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
