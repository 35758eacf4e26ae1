//! `syscall-errors`: a client hammering a service that is not there.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    net::Netns,
    sys::{Pace, WorkerSpec, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "syscall-errors",
    rules: &["syscall-errors"],
    summary: "A process in a private network namespace connects, again and again, to two \
local services, one of which is down: the connects to it fail with ECONNREFUSED (a real \
error, not one of the benign errnos), the way a client of a crashed backend does.",
    intensities: "low: 200 connects/s, 5% refused (a warning), medium: 1000/s, 30% refused, \
high: 4000/s, all refused (critical).",
    induce: start,
};

/// The refused port.
const PORT: u16 = 9;
/// The port of the service that is up (in the worker's own namespace).
const UP_PORT: u16 = 8080;

/// (connects per second, share of them refused).
pub(crate) fn plan(o: &ChaosOptions) -> (f64, f64) {
    o.intensity
        .pick((200.0, 0.05), (1000.0, 0.3), (4000.0, 1.0))
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let ns = Netns::new("-errors")?;
    r.netns = vec![ns.name().to_string()];
    let cg = ScenarioCgroup::new()?;
    r.cgroup = Some(cg.path());
    let spec = WorkerSpec {
        comm: "kchaos-errors".into(),
        netns: Some(ns.path()),
        cgroup_procs: cg.procs_files(),
        ..WorkerSpec::default()
    };
    r.guard(ns);
    r.guard(cg);
    let (per_sec, refused) = plan(o);
    let start_after = o.start_after;
    r.workload(spawn(&spec, move |ready| {
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, PORT);
        let up = SocketAddrV4::new(Ipv4Addr::LOCALHOST, UP_PORT);
        let listener = match TcpListener::bind(up) {
            Ok(l) => l,
            Err(e) => {
                ready.fail(&format!("listening on {up}: {e}"));
                return 1;
            }
        };
        let accepting = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || {
                loop {
                    drop(listener.accept());
                }
            });
        if accepting.is_err() {
            ready.fail("starting the accepting thread");
            return 1;
        }
        match TcpStream::connect(addr) {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => ready.ok(),
            Err(e) => {
                ready.fail(&format!("expected ECONNREFUSED from {addr}, got {e}"));
                return 1;
            }
            Ok(_) => {
                ready.fail(&format!("{addr} unexpectedly accepted"));
                return 1;
            }
        }
        std::thread::sleep(start_after);
        let mut pace = Pace::per_sec(per_sec);
        let mut i: u64 = 0;
        loop {
            pace.wait();
            // Spread the refused ones evenly: call i goes to the dead port when the
            // running count of refusals owed steps up.
            let dead = ((i + 1) as f64 * refused).floor() > (i as f64 * refused).floor();
            i += 1;
            let _ = TcpStream::connect(if dead { addr } else { up });
        }
    })?);
    r.note(format!(
        "one process connecting {per_sec} times a second in namespace {}: {:.0}% to 127.0.0.1:{PORT} (nothing listens), the rest to 127.0.0.1:{UP_PORT}",
        r.netns[0],
        refused * 100.0
    ));
    Ok(r)
}
