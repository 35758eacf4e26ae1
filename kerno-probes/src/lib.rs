//! Kerno's eBPF probes, seen from user space.
//!
//! One compiled object ([`EBPF_OBJECT`]) holds every program. [`Probes::load`] loads it once,
//! attaches the domains asked for, and hands back typed readers, one per domain, plus a
//! [`ProbeStatus`] for each domain saying whether it is attached and, if not, why. A domain
//! that fails to load or attach degrades alone; the others keep working.
//!
//! The maps only grow (cumulative counters and histograms). Readers take `&self` and never
//! reset anything, so any number of readers can compute windows as differences of two
//! reads without disturbing each other.
#![deny(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod batch;
mod error;
mod kbtf;
mod loader;
mod readers;
pub mod streams;
mod syscall_table;
pub mod syscalls;
pub mod tracefs;

pub use error::ProbeError;
pub use kerno_probes_common as common;
pub use loader::{
    Domain, LoadOptions, ProbeStatus, Probes, Tracepoint, bpf_syscall_allowed, check_privileges,
    check_tracepoints,
};
pub use readers::{
    DiskReader, DiskTotals, LostCounters, LostReading, OomReader, SchedReader, SyscallReader,
    SyscallTotals, TcpCounters, TcpReader,
};

/// The compiled eBPF object, built by `scripts/build-ebpf.sh` and committed, so a plain
/// stable `cargo build` needs no eBPF toolchain. CI rebuilds it and fails when it is stale.
pub static EBPF_OBJECT: &[u8] = aya::include_bytes_aligned!("../ebpf/prebuilt/kerno.bpf.o");
