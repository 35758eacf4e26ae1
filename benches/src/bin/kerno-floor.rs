//! `kerno-floor [syscalls|sched|disk]...`: attaches empty programs from Kerno's own eBPF
//! object to the tracepoints of those paths, the way Kerno attaches its own (tp_btf):
//! `sys_enter`/`sys_exit` (the default), `sched_wakeup`/`sched_wakeup_new`/`sched_switch`,
//! `block_rq_issue`/`block_rq_complete`. Prints `READY` and holds them until SIGINT or
//! SIGTERM.
//!
//! `benches/overhead.sh` runs it as the `floor`, `floor-sched` and `floor-disk` modes: what
//! an event pays for being watched at all (the tracepoint's call into BPF) before any
//! program does any work. Kerno's cost per event minus this is what Kerno's programs add.
//! Needs root.

use std::process::ExitCode;

use aya::{Btf, Ebpf, programs::BtfTracePoint};

fn attach(ebpf: &mut Ebpf, btf: &Btf, program: &str, tracepoint: &str) -> Result<(), String> {
    let prog: &mut BtfTracePoint = ebpf
        .program_mut(program)
        .ok_or_else(|| format!("program {program} is not in the object"))?
        .try_into()
        .map_err(|e| format!("{program}: {e}"))?;
    prog.load(tracepoint, btf)
        .map_err(|e| format!("loading {program}: {e}"))?;
    prog.attach()
        .map_err(|e| format!("attaching {program}: {e}"))?;
    Ok(())
}

fn run() -> Result<(), String> {
    // Block the stop signals first, so one that arrives early is not lost.
    // SAFETY: plain libc signal-set calls on a local set.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    unsafe {
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    let mut ebpf = Ebpf::load(kerno_probes::EBPF_OBJECT)
        .map_err(|e| format!("loading Kerno's eBPF object (needs root): {e}"))?;
    let btf = Btf::from_sys_fs().map_err(|e| format!("reading kernel BTF: {e}"))?;
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        paths.push("syscalls".into());
    }
    for path in &paths {
        let tracepoints: &[&str] = match path.as_str() {
            "syscalls" => &["sys_enter", "sys_exit"],
            "sched" => &["sched_wakeup", "sched_wakeup_new", "sched_switch"],
            "disk" => &["block_rq_issue", "block_rq_complete"],
            other => {
                return Err(format!(
                    "unknown path {other:?} (expected syscalls, sched or disk)"
                ));
            }
        };
        for tp in tracepoints {
            attach(&mut ebpf, &btf, &format!("floor_{tp}"), tp)?;
        }
    }
    println!("READY");
    let mut sig = 0;
    // SAFETY: waits on the set blocked above.
    unsafe { libc::sigwait(&set, &mut sig) };
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("kerno-floor: {e}");
            ExitCode::FAILURE
        }
    }
}
