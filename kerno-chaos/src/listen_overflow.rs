//! `listen-overflow`: a server that listens with a tiny backlog and never accepts, and a
//! client that keeps connecting to it: the accept queue is full, so the kernel drops every
//! new handshake (and every retransmitted SYN).

use std::{
    collections::VecDeque,
    net::{Ipv4Addr, SocketAddrV4, TcpListener},
    os::fd::AsRawFd as _,
    time::Duration,
};

use super::{
    ChaosError, ChaosOptions, Running, Scenario,
    cgroup::ScenarioCgroup,
    net::Netns,
    sys::{Pace, WorkerSpec, spawn},
};

pub(crate) const SCENARIO: Scenario = Scenario {
    name: "listen-overflow",
    rules: &["listen-overflow"],
    summary: "In a network namespace of its own, a server listens on 127.0.0.1:5001 with a \
backlog of 1 and never calls accept(); a client opens non-blocking connections to it at a \
steady rate, keeping the last few open. Two handshakes fill the accept queue; the \
kernel drops every later SYN (ListenOverflows, ListenDrops), retransmissions included.",
    intensities: "low: 5 connects a second, medium: 20, high: 100; every SYN is dropped \
(measured at medium: ~20 drops a second).",
    induce: start,
};

const PORT: u16 = 5001;
/// Connections the client keeps open (each retransmits its SYN until it is closed); few,
/// so its descriptors hold steady instead of growing like a leak.
const KEEP: usize = 4;

pub(crate) fn rate(o: &ChaosOptions) -> f64 {
    o.intensity.pick(5.0, 20.0, 100.0)
}

fn start(o: &ChaosOptions) -> Result<Running, ChaosError> {
    let mut r = Running::new(SCENARIO.name, o.intensity);
    let ns = Netns::new("-l")?;
    r.netns = vec![ns.name().to_string()];
    let cg = ScenarioCgroup::new()?;
    r.cgroup = Some(cg.path());
    let server = WorkerSpec {
        comm: "kchaos-listen".into(),
        netns: Some(ns.path()),
        cgroup_procs: cg.procs_files(),
        ..WorkerSpec::default()
    };
    let client = WorkerSpec {
        comm: "kchaos-connect".into(),
        ..server.clone()
    };
    r.guard(ns);
    r.guard(cg);
    r.workload(spawn(&server, move |ready| {
        let l = match TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, PORT)) {
            Ok(l) => l,
            Err(e) => {
                ready.fail(&format!("binding 127.0.0.1:{PORT}: {e}"));
                return 1;
            }
        };
        // std listens with a backlog of 128: listen again with 1 (the kernel just
        // updates the backlog of a listening socket).
        // SAFETY: listen on our own socket.
        if unsafe { libc::listen(l.as_raw_fd(), 1) } != 0 {
            ready.fail("listen(fd, 1)");
            return 1;
        }
        ready.ok();
        // Never accepts.
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    })?);
    let per_sec = rate(o);
    let start_after = o.start_after;
    r.helper(spawn(&client, move |ready| {
        ready.ok();
        std::thread::sleep(start_after);
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: PORT.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        };
        let mut open: VecDeque<libc::c_int> = VecDeque::new();
        let mut pace = Pace::per_sec(per_sec);
        loop {
            // SAFETY: a new non-blocking socket; connect with a valid sockaddr_in; the fd
            // is ours and closed below.
            unsafe {
                let fd = libc::socket(
                    libc::AF_INET,
                    libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                    0,
                );
                if fd >= 0 {
                    libc::connect(
                        fd,
                        (&addr as *const libc::sockaddr_in).cast(),
                        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    );
                    open.push_back(fd);
                }
                while open.len() > KEEP {
                    if let Some(old) = open.pop_front() {
                        libc::close(old);
                    }
                }
            }
            pace.wait();
        }
    })?);
    r.note(format!(
        "network namespace {}: a server on 127.0.0.1:{PORT} with a backlog of 1 that never accepts; a client connects {per_sec} times a second, keeping the last {KEEP} connections",
        r.netns[0]
    ));
    Ok(r)
}
