//! A live stream from the SDK: every failed `openat` on this machine for 2 s, as typed
//! events from an async `Stream`, filtered in the kernel, with the loss accounting at the
//! end. Needs root (or CAP_BPF + CAP_PERFMON).
//!
//!     cargo run -p kerno-examples --example trace_failures

use std::time::Duration;

use kerno_core::stream::syscall::{SyscallFilter, SyscallStream};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let filter = SyscallFilter {
        syscalls: vec!["openat".into()],
        errors_only: true,
        ..Default::default()
    };
    // The stream's own programs and ring buffer, attached until it is dropped.
    let mut failures = SyscallStream::open(&filter)?;

    // Something to see: a process that opens a file that is not there.
    let child = tokio::task::spawn_blocking(|| {
        std::process::Command::new("cat")
            .arg("/nonexistent/kerno-example")
            .stderr(std::process::Stdio::null())
            .status()
    });

    let deadline = tokio::time::sleep(Duration::from_secs(2));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            ev = failures.next() => {
                let Some(ev) = ev else { break };
                let ev = ev?;
                println!(
                    "{} ({}) {} -> {}",
                    ev.comm,
                    ev.pid,
                    ev.syscall,
                    ev.errno.as_deref().unwrap_or("?")
                );
            }
            _ = &mut deadline => break,
        }
    }
    child.await??;
    let s = failures.summary()?;
    println!(
        "{} shown, {} filtered in the kernel, {} lost",
        s.shown, s.filtered, s.lost
    );
    Ok(())
}
