//! Kerno's stream programs (`kerno trace ...`, `kerno watch ...`): an object of their own,
//! `kerno-streams.bpf.o`, apart from the aggregating programs of `kerno.bpf.o`.
//!
//! A stream loads this object, attaches only its own programs, and detaches them when it
//! ends, so while no stream runs nothing here costs anything, and the aggregating programs
//! `doctor` and the agent attach are exactly what they were. Each stream has its own ring
//! buffer; its filters (pid, comm, cgroup, thresholds, ops) are the read-only global
//! `STREAM`, so an event a filter drops costs a few instructions and no ring traffic, and
//! a matching event that finds the ring full is counted, per CPU, in `STREAM_STATS`.
//!
//! Portability as for the aggregating programs: tp_btf with typed arguments for syscalls,
//! classic tracepoints with field offsets from their `format` files (`STREAM_OFFSETS`) for
//! the rest.

#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![warn(clippy::undocumented_unsafe_blocks)]

#[cfg(target_arch = "bpf")]
mod shared;

#[cfg(target_arch = "bpf")]
mod syscall;

#[cfg(target_arch = "bpf")]
mod disk;

#[cfg(target_arch = "bpf")]
mod oom;

#[cfg(target_arch = "bpf")]
mod sched;

#[cfg(target_arch = "bpf")]
mod tcp;

#[cfg(target_arch = "bpf")]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[cfg(target_arch = "bpf")]
#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 4] = *b"GPL\0";

#[cfg(not(target_arch = "bpf"))]
fn main() {}
