//! `conntrack-full`: a network namespace fills its connection-tracking table.
//!
//! `nf_conntrack_max` can only be written in the initial network namespace on this kernel
//! (it is read-only in the others), and it limits each namespace's table. So the scenario
//! lowers the host-wide limit for its duration to just above what any namespace tracks now
//! (at least [`FLOOR`], twice the fullest namespace's count if that is more, so no existing
//! namespace comes near it), and fills a namespace of its own with UDP flows. The old
//! limit is written to a file in the scenario's temporary directory first and restored when
//! the scenario stops, is dropped, or (after a crash or SIGKILL) by the next `kerno chaos`
//! run or `kerno chaos --clean` ([`restore_stale`]).

use std::{
    net::UdpSocket,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    fsguard::TempDir,
    net::Netns,
    sys::{WorkerSpec, spawn, write_file},
};
use kerno_core::procfs;

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "conntrack-full",
    rules: &["conntrack-full"],
    summary: "Lowers the host-wide nf_conntrack_max (restored afterwards, also after a crash, \
by `kerno chaos --clean`) to just above what any network namespace tracks now, and fills a \
new namespace's table with unanswered UDP flows on its loopback (an nftables `ct state` rule \
turns tracking on there).",
    intensities: "low: 85% of the lowered limit (warning); medium: 110% of it, so the table \
is full and the kernel evicts entries to admit new ones (early_drop; critical); high: 200%, \
refreshed twice as often (critical).",
    induce: start,
};

/// The sysctl the scenario lowers.
const MAX: &str = "/proc/sys/net/netfilter/nf_conntrack_max";
/// The file in a scenario's temporary directory holding the limit to restore.
pub(crate) const SAVED: &str = "nf_conntrack_max.saved";
/// The lowered limit is at least this.
pub(crate) const FLOOR: u64 = 512;

/// (flows as a share of the lowered limit, refresh period).
pub(crate) fn plan(o: &ChaosOptions) -> (f64, Duration) {
    o.intensity.pick(
        (0.85, Duration::from_secs(5)),
        (1.10, Duration::from_secs(5)),
        (2.0, Duration::from_millis(2500)),
    )
}

/// The most entries any network namespace with a process tracks now.
fn fullest_namespace() -> u64 {
    let mut seen = std::collections::HashSet::new();
    let mut most = 0;
    for pid in procfs::pids() {
        let Ok(meta) = std::fs::metadata(format!("/proc/{pid}/ns/net")) else {
            continue;
        };
        if !seen.insert(std::os::unix::fs::MetadataExt::ino(&meta)) {
            continue;
        }
        if let Some(s) = std::fs::read_to_string(format!("/proc/{pid}/net/stat/nf_conntrack"))
            .ok()
            .as_deref()
            .and_then(procfs::parse_conntrack_stat)
        {
            most = most.max(s.entries);
        }
    }
    most
}

fn read_max() -> Result<u64, ChaosError> {
    std::fs::read_to_string(MAX)
        .map_err(|e| {
            ChaosError::Unsupported(format!(
                "cannot read {MAX} ({e}): connection tracking (the nf_conntrack module) is not available"
            ))
        })?
        .trim()
        .parse()
        .map_err(|_| ChaosError::Unsupported(format!("{MAX} is not a number")))
}

/// Puts the saved limit back (and forgets it) when dropped.
struct RestoreMax {
    saved: PathBuf,
    old: u64,
}

impl Drop for RestoreMax {
    fn drop(&mut self) {
        if std::fs::write(MAX, self.old.to_string()).is_ok() {
            let _ = std::fs::remove_file(&self.saved);
        }
    }
}

/// Restore the limit a crashed run saved in its (stale) temporary directory `dir`; `Ok`
/// with what was done, `None` when it saved nothing.
pub(crate) fn restore_stale(dir: &Path) -> Option<Result<String, String>> {
    let saved = dir.join(SAVED);
    let text = std::fs::read_to_string(&saved).ok()?;
    let Ok(old) = text.trim().parse::<u64>() else {
        let _ = std::fs::remove_file(&saved);
        return Some(Err(format!("{}: not a number", saved.display())));
    };
    Some(match std::fs::write(MAX, old.to_string()) {
        Ok(()) => {
            let _ = std::fs::remove_file(&saved);
            Ok(format!("net.netfilter.nf_conntrack_max restored to {old}"))
        }
        Err(e) => Err(format!("restoring nf_conntrack_max to {old}: {e}")),
    })
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let old = read_max()?;
    let limit = (fullest_namespace() * 2).max(FLOOR);
    if limit >= old {
        return Err(ChaosError::Unsupported(format!(
            "nf_conntrack_max is {old}, no more than the {limit} entries the scenario would lower it to"
        )));
    }
    let dir = TempDir::new()?;
    let saved = dir.subdir("state")?.join(SAVED);
    write_file(&saved, &old.to_string())?;
    r.guard(dir);
    // From here on the guard puts the old limit back whatever happens.
    let restore = RestoreMax {
        saved: saved.clone(),
        old,
    };
    write_file(Path::new(MAX), &limit.to_string())?;
    r.guard(restore);
    let ns = Netns::new("-ct")?;
    ns.exec(
        "nft",
        &["-f", "-"],
        Some(
            "table inet kerno_chaos {\n chain out {\n  type filter hook output priority 0; policy accept;\n  ct state new counter\n }\n}\n",
        ),
    )?;
    let spec = WorkerSpec {
        comm: "kchaos-ctfill".into(),
        netns: Some(ns.path()),
        ..WorkerSpec::default()
    };
    r.netns.push(ns.name().to_string());
    r.guard(ns);
    let (share, refresh) = plan(o);
    let flows = ((limit as f64) * share) as u32;
    let start_after = o.start_after;
    r.workload(spawn(&spec, move |ready| {
        let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
            ready.fail("binding a UDP socket");
            return 1;
        };
        ready.ok();
        std::thread::sleep(start_after);
        loop {
            let t = Instant::now();
            // One flow per destination port; unanswered UDP entries live 30 s, so a
            // refresh every few seconds keeps them (and re-inserts evicted ones).
            for i in 0..flows {
                let port = 1024 + (i % 60000) as u16;
                let dst = std::net::Ipv4Addr::new(127, 0, 0, 1 + (i / 60000) as u8);
                let _ = sock.send_to(b"k", (dst, port));
            }
            std::thread::sleep(refresh.saturating_sub(t.elapsed()));
        }
    })?);
    r.note(format!(
        "net.netfilter.nf_conntrack_max lowered from {old} to {limit} (restored on stop; saved in {})",
        saved.display()
    ));
    r.note(format!(
        "network namespace {} tracking {flows} unanswered UDP flows on its loopback ({:.0}% of the lowered limit), refreshed every {:.1} s",
        r.netns[0],
        share * 100.0,
        refresh.as_secs_f64()
    ));
    Ok(r)
}
