//! The domains a report speaks about.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Serialize};

/// A domain of kernel signals: a part of [`crate::Signals`], the probes and collectors that
/// fill it, and the rules that read it. Written in lowercase in configuration, JSON and flags
/// (`syscalls`, `fds`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Domain {
    /// Syscall counts, errors and latency (raw_syscalls tracepoints).
    Syscalls,
    /// File descriptors per process (the syscall probes plus `/proc/<pid>/fd`).
    Fds,
    /// Run-queue delay (sched tracepoints, PSI cpu).
    Sched,
    /// Block I/O latency (block tracepoints).
    Disk,
    /// TCP retransmits, RTT and connections (tcp/sock tracepoints, `/proc/net/snmp`).
    Tcp,
    /// OOM kills (oom:mark_victim, `/proc/vmstat`).
    Oom,
    /// Memory of the host and cgroups, PSI (procfs and cgroupfs only).
    Memory,
    /// Space and inodes of the mounted filesystems (`statvfs`).
    Filesystem,
    /// Process ids: host threads against `pid_max`/`threads-max`, pids cgroups.
    Pids,
    /// Connection tracking per network namespace (`/proc/<pid>/net/stat/nf_conntrack`).
    Conntrack,
}

impl Domain {
    /// Every domain, in report order.
    pub const ALL: [Domain; 10] = [
        Domain::Syscalls,
        Domain::Fds,
        Domain::Sched,
        Domain::Disk,
        Domain::Tcp,
        Domain::Oom,
        Domain::Memory,
        Domain::Filesystem,
        Domain::Pids,
        Domain::Conntrack,
    ];

    /// The lowercase name (`syscalls`).
    pub fn as_str(self) -> &'static str {
        match self {
            Domain::Syscalls => "syscalls",
            Domain::Fds => "fds",
            Domain::Sched => "sched",
            Domain::Disk => "disk",
            Domain::Tcp => "tcp",
            Domain::Oom => "oom",
            Domain::Memory => "memory",
            Domain::Filesystem => "filesystem",
            Domain::Pids => "pids",
            Domain::Conntrack => "conntrack",
        }
    }

    /// The kernel probes behind this domain (none for memory, filesystem, pids and conntrack, read from procfs and cgroupfs alone).
    pub fn probe(self) -> Option<kerno_probes::Domain> {
        match self {
            Domain::Syscalls | Domain::Fds => Some(kerno_probes::Domain::Syscalls),
            Domain::Sched => Some(kerno_probes::Domain::Sched),
            Domain::Disk => Some(kerno_probes::Domain::Disk),
            Domain::Tcp => Some(kerno_probes::Domain::Tcp),
            Domain::Oom => Some(kerno_probes::Domain::Oom),
            Domain::Memory | Domain::Filesystem | Domain::Pids | Domain::Conntrack => None,
        }
    }

    /// The names of every domain, comma-separated (for error messages).
    pub fn known() -> String {
        Domain::ALL.map(Domain::as_str).join(", ")
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for Domain {
    type Err = String;
    fn from_str(s: &str) -> Result<Domain, String> {
        Domain::ALL
            .into_iter()
            .find(|d| d.as_str() == s.trim())
            .ok_or_else(|| format!("unknown domain {s:?} (known: {})", Domain::known()))
    }
}

impl PartialEq<str> for Domain {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<Domain> for String {
    fn eq(&self, other: &Domain) -> bool {
        self == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_serde() {
        for d in Domain::ALL {
            assert_eq!(d.as_str().parse::<Domain>(), Ok(d));
            assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{d}\""));
        }
        let e = "bogus".parse::<Domain>().unwrap_err();
        assert!(
            e.contains("bogus") && e.contains("syscalls, fds, sched"),
            "{e}"
        );
        assert!(serde_json::from_str::<Domain>("\"bogus\"").is_err());
    }
}
