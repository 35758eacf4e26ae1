//! A private three-namespace network for the TCP scenarios, and the TCP workers.
//!
//! ```text
//!  client ns (A)            router ns (R)                server ns (B)
//!  veth0 10.201.0.1/30 ---- veth-a 10.201.0.2/30
//!                           veth-b 10.201.0.5/30 ---- veth0 10.201.0.6/30
//! ```
//!
//! The addresses exist only inside these namespaces, which hold nothing but the veth pairs:
//! no packet can leave them. Impairments sit on the router, as they would on a real lossy
//! or slow path, where the sender's own TCP stack (TCP small queues, pacing, BBR) cannot
//! hide them: random drop with nftables `numgen`, and a delay line (this kernel has no
//! netem): the router routes packets from the client through a TUN device whose reader
//! holds each packet for a fixed time before writing it back, to be forwarded on.

use std::{
    io::{Read as _, Write as _},
    net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpListener, TcpStream},
    os::fd::AsRawFd as _,
    path::PathBuf,
    time::{Duration, Instant},
};

use super::{
    ChaosError, Running,
    cgroup::ScenarioCgroup,
    sys::{Pace, Ready, Worker, WorkerSpec, run, spawn, unique_name},
};

/// The set-up every TCP scenario shares, on a path already shaped (loss, delay): the
/// scenario's cgroup, a server (`kchaos-tcp-rx`) in the server namespace doing `mode`, and
/// the spec for the scenario's own workers (`client_comm`, client namespace, in the
/// cgroup). The path and the cgroup are handed to `r`, which tears them down.
pub(crate) fn client_server(
    r: &mut Running,
    path: Path3,
    client_comm: &str,
    mode: ServerMode,
) -> Result<WorkerSpec, ChaosError> {
    r.netns = path.names();
    let cg = ScenarioCgroup::new()?;
    r.cgroup = Some(cg.path());
    let receiver = WorkerSpec {
        comm: "kchaos-tcp-rx".into(),
        netns: Some(path.server.path()),
        ..WorkerSpec::default()
    };
    let client = WorkerSpec {
        comm: client_comm.into(),
        netns: Some(path.client.path()),
        cgroup_procs: cg.procs_files(),
        ..WorkerSpec::default()
    };
    r.guard(path);
    r.guard(cg);
    r.helper(spawn(&receiver, move |ready| server(ready, mode))?);
    Ok(client)
}

/// Client address (namespace A).
pub(crate) const CLIENT: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 1);
/// Server address (namespace B).
pub(crate) const SERVER: Ipv4Addr = Ipv4Addr::new(10, 201, 0, 6);
/// The server's port.
pub(crate) const PORT: u16 = 5001;

/// A named network namespace, deleted (after killing what is left in it) on drop.
pub(crate) struct Netns {
    name: String,
}

impl Netns {
    pub(crate) fn new(suffix: &str) -> Result<Netns, ChaosError> {
        let name = format!("{}{suffix}", unique_name());
        run("ip", &["netns", "add", &name], None)?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`, for `setns`.
    pub(crate) fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// `ip -n <name> ARGS`.
    pub(crate) fn ip(&self, args: &[&str]) -> Result<String, ChaosError> {
        let mut v = vec!["-n", &self.name];
        v.extend_from_slice(args);
        run("ip", &v, None)
    }

    /// `ip netns exec <name> TOOL ARGS` (with `stdin`).
    pub(crate) fn exec(
        &self,
        tool: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Result<String, ChaosError> {
        let mut v = vec!["netns", "exec", &self.name, tool];
        v.extend_from_slice(args);
        run("ip", &v, stdin).map_err(|e| match e {
            ChaosError::Command { stderr, .. } if stderr.contains("No such file") => {
                ChaosError::MissingTool {
                    tool: tool.into(),
                    package: if tool == "nft" { "nftables" } else { "procps" }.into(),
                }
            }
            other => other,
        })
    }

    /// Set a sysctl inside the namespace.
    pub(crate) fn sysctl(&self, key: &str, value: &str) -> Result<(), ChaosError> {
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        self.exec("sh", &["-c", &format!("echo {value} > {path}")], None)
            .map(|_| ())
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Ok(out) = run("ip", &["netns", "pids", &self.name], None) {
            for pid in out.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: killing a process left in our own namespace.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        let _ = run("ip", &["netns", "del", &self.name], None);
    }
}

/// Client, router and server namespaces wired as in the module docs.
pub(crate) struct Path3 {
    pub client: Netns,
    pub router: Netns,
    pub server: Netns,
}

impl Path3 {
    pub(crate) fn new() -> Result<Path3, ChaosError> {
        let p = Path3 {
            client: Netns::new("-client")?,
            router: Netns::new("-router")?,
            server: Netns::new("-server")?,
        };
        let (a, r, b) = (p.client.name(), p.router.name(), p.server.name());
        run(
            "ip",
            &[
                "link", "add", "veth0", "netns", a, "type", "veth", "peer", "name", "veth-a",
                "netns", r,
            ],
            None,
        )?;
        run(
            "ip",
            &[
                "link", "add", "veth0", "netns", b, "type", "veth", "peer", "name", "veth-b",
                "netns", r,
            ],
            None,
        )?;
        p.client
            .ip(&["addr", "add", "10.201.0.1/30", "dev", "veth0"])?;
        p.router
            .ip(&["addr", "add", "10.201.0.2/30", "dev", "veth-a"])?;
        p.router
            .ip(&["addr", "add", "10.201.0.5/30", "dev", "veth-b"])?;
        p.server
            .ip(&["addr", "add", "10.201.0.6/30", "dev", "veth0"])?;
        p.client.ip(&["link", "set", "veth0", "up"])?;
        p.router.ip(&["link", "set", "veth-a", "up"])?;
        p.router.ip(&["link", "set", "veth-b", "up"])?;
        p.server.ip(&["link", "set", "veth0", "up"])?;
        p.client
            .ip(&["route", "add", "default", "via", "10.201.0.2"])?;
        p.server
            .ip(&["route", "add", "default", "via", "10.201.0.5"])?;
        p.router.sysctl("net.ipv4.ip_forward", "1")?;
        Ok(p)
    }

    pub(crate) fn names(&self) -> Vec<String> {
        vec![
            self.client.name().to_string(),
            self.router.name().to_string(),
            self.server.name().to_string(),
        ]
    }

    /// Drop `permille`/1000 of the packets the router forwards to the server's port, at
    /// random (nftables `numgen random`).
    pub(crate) fn drop_to_server(&self, permille: u32) -> Result<(), ChaosError> {
        let rules = format!(
            "table ip kerno_chaos {{\n chain drops {{\n  type filter hook forward priority 0; policy accept;\n  ip daddr {SERVER} tcp dport {PORT} numgen random mod 1000 < {permille} counter drop\n }}\n}}\n"
        );
        self.router
            .exec("nft", &["-f", "-"], Some(&rules))
            .map(|_| ())
    }

    /// Delay every packet from the client to the server by `delay` on the router: a
    /// TUN device `kchaos0` in the router namespace, whose reader (the returned helper
    /// worker) holds each packet for `delay`, and policy routing that sends what arrives
    /// from the client through it.
    pub(crate) fn delay_to_server(&self, delay: Duration) -> Result<Worker, ChaosError> {
        let spec = WorkerSpec {
            comm: "kchaos-delay".into(),
            netns: Some(self.router.path()),
            ..WorkerSpec::default()
        };
        let line = spawn(&spec, move |ready| delay_line(ready, delay))?;
        let r = &self.router;
        r.ip(&["link", "set", TUN, "up"])?;
        r.ip(&[
            "rule", "add", "iif", "veth-a", "lookup", "100", "pref", "100",
        ])?;
        r.ip(&["route", "add", "10.201.0.4/30", "dev", TUN, "table", "100"])?;
        // Packets come back from the TUN device with the client's source address, which
        // is routed via veth-a: strict reverse-path filtering would drop them.
        r.sysctl(&format!("net.ipv4.conf.{TUN}.rp_filter"), "0")?;
        r.sysctl("net.ipv4.conf.all.rp_filter", "0")?;
        r.sysctl(&format!("net.ipv4.conf.{TUN}.forwarding"), "1")?;
        Ok(line)
    }
}

/// The delay line's TUN device (in the router namespace).
const TUN: &str = "kchaos0";
const TUNSETIFF: libc::c_ulong = 0x4004_54ca;
const IFF_TUN: libc::c_short = 0x0001;
const IFF_NO_PI: libc::c_short = 0x1000;

/// Create the TUN device, then forward every packet read from it back into it `delay`
/// later, in order.
fn delay_line(ready: Ready, delay: Duration) -> i32 {
    // SAFETY: opening the TUN clone device.
    let fd = unsafe { libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        ready.fail(&format!(
            "opening /dev/net/tun: {} (TUN support?)",
            std::io::Error::last_os_error()
        ));
        return 1;
    }
    // struct ifreq: the name, then the flags (a short) at offset 16.
    let mut ifr = [0u8; 40];
    ifr[..TUN.len()].copy_from_slice(TUN.as_bytes());
    ifr[16..18].copy_from_slice(&(IFF_TUN | IFF_NO_PI).to_ne_bytes());
    // SAFETY: TUNSETIFF with a 40-byte ifreq.
    if unsafe { libc::ioctl(fd, TUNSETIFF, ifr.as_mut_ptr()) } != 0 {
        ready.fail(&format!(
            "creating TUN device {TUN}: {}",
            std::io::Error::last_os_error()
        ));
        return 1;
    }
    ready.ok();
    let (tx, rx) = std::sync::mpsc::channel::<(Instant, Vec<u8>)>();
    let writer = std::thread::Builder::new().spawn(move || {
        for (due, pkt) in rx {
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
            // SAFETY: writing one packet to the TUN device.
            unsafe { libc::write(fd, pkt.as_ptr().cast(), pkt.len()) };
        }
    });
    if writer.is_err() {
        return 1;
    }
    let mut buf = vec![0u8; 65536];
    loop {
        // SAFETY: reading one packet into our buffer.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n <= 0 {
            if n < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return 1;
        }
        if tx
            .send((Instant::now() + delay, buf[..n as usize].to_vec()))
            .is_err()
        {
            return 1;
        }
    }
}

// ---- workers (run in forked children, inside a namespace) -----------------------------

/// What the server does with a connection.
#[derive(Clone, Copy)]
pub(crate) enum ServerMode {
    /// Read and discard until the peer closes.
    Sink,
    /// Close at once (the server takes the TIME_WAIT, the client none).
    CloseAtOnce,
}

/// Listen on the server address and serve connections (threads) forever.
pub(crate) fn server(ready: Ready, mode: ServerMode) -> i32 {
    let listener = match TcpListener::bind(SocketAddrV4::new(SERVER, PORT)) {
        Ok(l) => l,
        Err(e) => {
            ready.fail(&format!("listening on {SERVER}:{PORT}: {e}"));
            return 1;
        }
    };
    ready.ok();
    loop {
        let Ok((mut conn, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        match mode {
            ServerMode::CloseAtOnce => drop(conn),
            ServerMode::Sink => {
                let spawned = std::thread::Builder::new()
                    .stack_size(128 * 1024)
                    .spawn(move || {
                        let mut buf = vec![0u8; 64 * 1024];
                        while matches!(conn.read(&mut buf), Ok(n) if n > 0) {}
                    });
                drop(spawned);
            }
        }
    }
}

fn server_addr() -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(SERVER, PORT))
}

fn set_sndbuf(s: &TcpStream, bytes: usize) {
    let v = bytes as libc::c_int;
    // SAFETY: setsockopt with an int option on our socket.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_SNDBUF,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
    }
}

/// Send to the server forever: `rate` bytes a second in 16 KiB writes (`None`: as fast as
/// TCP allows), with the send buffer capped at `sndbuf` bytes when given. Reconnects when
/// the connection breaks.
pub(crate) fn bulk_sender(
    ready: Ready,
    start_after: Duration,
    rate: Option<u64>,
    sndbuf: Option<usize>,
) -> i32 {
    let connect = || -> std::io::Result<TcpStream> {
        let s = TcpStream::connect_timeout(&server_addr(), Duration::from_secs(5))?;
        if let Some(b) = sndbuf {
            set_sndbuf(&s, b);
        }
        Ok(s)
    };
    // Fail early, with a reason, when the path does not work at all.
    match connect() {
        Ok(s) => drop(s),
        Err(e) => {
            ready.fail(&format!("connecting to {SERVER}:{PORT}: {e}"));
            return 1;
        }
    }
    ready.ok();
    std::thread::sleep(start_after);
    let chunk = vec![0x5au8; 16 * 1024];
    let mut pace = rate.map(|r| Pace::per_sec(r as f64 / chunk.len() as f64));
    loop {
        let Ok(mut s) = connect() else {
            std::thread::sleep(Duration::from_millis(200));
            continue;
        };
        loop {
            if let Some(p) = pace.as_mut() {
                p.wait();
            }
            if s.write_all(&chunk).is_err() {
                break;
            }
        }
    }
}

/// Connect to the server `per_sec` times a second (each from a thread of its own, so a
/// slow connect does not hold up the next) and close.
pub(crate) fn prober(ready: Ready, start_after: Duration, per_sec: f64) -> i32 {
    ready.ok();
    std::thread::sleep(start_after);
    let mut pace = Pace::per_sec(per_sec);
    loop {
        pace.wait();
        let spawned = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(|| TcpStream::connect_timeout(&server_addr(), Duration::from_secs(5)));
        drop(spawned);
    }
}

/// Open and close connections `per_sec` times a second: connect, wait for the server to
/// close, close.
pub(crate) fn churner(ready: Ready, start_after: Duration, per_sec: f64) -> i32 {
    ready.ok();
    std::thread::sleep(start_after);
    let mut pace = Pace::per_sec(per_sec);
    let mut buf = [0u8; 16];
    loop {
        pace.wait();
        if let Ok(mut s) = TcpStream::connect_timeout(&server_addr(), Duration::from_secs(2)) {
            let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = s.read(&mut buf);
        }
    }
}

/// TCP `OutSegs` and `RetransSegs` of the namespace a process is in
/// (`/proc/<pid>/net/snmp`).
pub fn tcp_segments(pid: u32) -> Option<(u64, u64)> {
    std::fs::read_to_string(format!("/proc/{pid}/net/snmp"))
        .ok()
        .as_deref()
        .and_then(kerno_core::procfs::parse_snmp_tcp)
}
