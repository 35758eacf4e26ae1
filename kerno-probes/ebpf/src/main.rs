//! Kerno's eBPF programs.
//!
//! Everything is aggregated here, in maps that only grow: per-CPU counters and log-linear
//! histograms for the hot paths (every syscall, every context switch), bounded LRU hashes
//! for per-process and per-flow detail, and a small ring of OOM kills. User space reads the
//! maps and computes windows as differences, so nothing is streamed per event.
//!
//! One module per probe domain, each with its maps and programs: [`syscalls`], [`sched`],
//! [`disk`], [`tcp`], [`oom`]; the map layouts are in the same-named modules of
//! `kerno-probes-common`. [`shared`] holds what they share (read-only globals, lost-sample
//! counters, histogram adds, tracepoint field reads).
//!
//! Portability: no kernel struct offset is compiled in (docs/probes.md says which kernels
//! each domain needs). Syscalls, the scheduler and block I/O use tp_btf, whose arguments
//! are typed by the kernel's BTF: the syscall programs read `(regs, id)` and `(regs, ret)`
//! (`pt_regs` is the x86-64 register-save layout, not a struct that moves between
//! versions); the scheduler and block programs load the few `task_struct` and `request`
//! members they need at offsets user space reads from the kernel's BTF. The TCP and OOM
//! programs are classic tracepoints whose field offsets user space reads from each
//! tracepoint's `format` file. Both kinds of offset arrive in the read-only global
//! `OFFSETS`.

// no_std/no_main only for the BPF target, so `cargo clippy --workspace` works on the host.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(target_arch = "bpf", feature(core_intrinsics))]
#![cfg_attr(target_arch = "bpf", allow(internal_features))]
// Every `unsafe` block says why it is sound (the patterns are in `shared`). Host clippy
// never sees the programs; check them with clippy for the BPF target (docs/ebpf-build.md).
#![warn(clippy::undocumented_unsafe_blocks)]

// The programs exist only for the BPF target; the host build is an empty binary.
#[cfg(target_arch = "bpf")]
mod shared;

#[cfg(target_arch = "bpf")]
mod syscalls;

#[cfg(target_arch = "bpf")]
mod sched;

#[cfg(target_arch = "bpf")]
mod disk;

#[cfg(target_arch = "bpf")]
mod tcp;

#[cfg(target_arch = "bpf")]
mod oom;

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
