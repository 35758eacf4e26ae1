//! The built-in collectors: kernel maps (through kerno-probes) and procfs/cgroupfs.

mod conntrack;
mod disk;
mod fd_counts;
mod fds;
mod filesystem;
mod layered;
mod lost;
mod memory;
mod oom;
mod pids;
mod saturation;
mod sched;
mod syscalls;
mod tcp;

pub use conntrack::ConntrackCollector;
pub use disk::DiskCollector;
pub use fd_counts::FdCountCollector;
pub use fds::FdCollector;
pub use filesystem::FilesystemCollector;
pub use lost::LostCollector;
pub use memory::MemoryCollector;
pub use oom::OomCollector;
pub use pids::PidsCollector;
pub use saturation::{
    CpuStat, ListenCounters, PsiReading, SaturationCollector, parse_cpu_max, parse_cpu_stat,
    parse_netstat_listen, parse_psi, parse_waiting_listener, pressure_between,
};
pub use sched::SchedCollector;
pub use syscalls::SyscallCollector;
pub use tcp::TcpCollector;

use crate::Sample;

/// The first and last samples' data, downcast.
pub(crate) fn ends<'a, T: 'static>(samples: &[&'a Sample]) -> Option<(&'a T, &'a T)> {
    let first = samples.first()?.get::<T>()?;
    let last = samples.last()?.get::<T>()?;
    Some((first, last))
}
