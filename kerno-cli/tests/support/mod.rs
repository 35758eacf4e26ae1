//! What the root tests of kerno-cli share: a free loopback port, a fresh directory, a GET
//! over a plain socket, and a running `kerno start` (its command line, readiness, stop and
//! cleanup). Each test binary takes it with `mod support;` and uses a part of it.

#![allow(dead_code)]

use std::{
    collections::HashMap,
    io::{Read, Write},
    net::{TcpListener, TcpStream, ToSocketAddrs},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    thread::sleep,
    time::{Duration, Instant},
};

/// The `kerno` binary under test.
pub const KERNO: &str = env!("CARGO_BIN_EXE_kerno");

/// A loopback port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A fresh, empty `$TMPDIR/kerno-{name}-{pid}`.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("kerno-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A fresh directory (see [`temp_dir`]), removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        TempDir(temp_dir(name))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Kills a process when dropped.
pub struct Guard(pub Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A file's text, or nothing when it cannot be read (an agent's log).
pub fn read_log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// A response: status (0 when there is none), headers (lower-case names), body (joined
/// when it came chunked).
pub struct Http {
    pub status: u16,
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// A GET over a plain socket with `Connection: close`, so the body ends at EOF. By default
/// HTTP/1.1 to 127.0.0.1 with a 10 s read timeout.
pub struct Get<'a> {
    host: &'a str,
    port: u16,
    path: &'a str,
    version: &'static str,
    headers: String,
    read_timeout: Duration,
    connect_timeout: Option<Duration>,
}

impl<'a> Get<'a> {
    pub fn new(port: u16, path: &'a str) -> Get<'a> {
        Get {
            host: "127.0.0.1",
            port,
            path,
            version: "HTTP/1.1",
            headers: String::new(),
            read_timeout: Duration::from_secs(10),
            connect_timeout: None,
        }
    }

    /// Connect to `host` (also the `Host` header) instead of 127.0.0.1.
    pub fn host(mut self, host: &'a str) -> Self {
        self.host = host;
        self
    }

    /// HTTP/1.0: the answer is never chunked.
    pub fn http10(mut self) -> Self {
        self.version = "HTTP/1.0";
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push_str(&format!("{name}: {value}\r\n"));
        self
    }

    pub fn read_timeout(mut self, t: Duration) -> Self {
        self.read_timeout = t;
        self
    }

    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = Some(t);
        self
    }

    pub fn send(self) -> std::io::Result<Http> {
        let mut s = match self.connect_timeout {
            Some(t) => {
                let addr = (self.host, self.port)
                    .to_socket_addrs()?
                    .next()
                    .ok_or_else(|| std::io::Error::other("no address"))?;
                TcpStream::connect_timeout(&addr, t)?
            }
            None => TcpStream::connect((self.host, self.port))?,
        };
        s.set_read_timeout(Some(self.read_timeout))?;
        write!(
            s,
            "GET {} {}\r\nHost: {}\r\n{}Connection: close\r\n\r\n",
            self.path, self.version, self.host, self.headers
        )?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        Ok(parse_response(&raw))
    }
}

/// `GET path` on 127.0.0.1:`port` with the defaults of [`Get`].
pub fn http_get(port: u16, path: &str) -> std::io::Result<Http> {
    Get::new(port, path).send()
}

/// An HTTP response's status, headers and body.
pub fn parse_response(raw: &[u8]) -> Http {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    Http {
        status,
        headers,
        body,
    }
}

/// A chunked body, joined.
pub fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// Appends `start --listen <listen> --socket <socket>` to `c` (the kerno binary, or a
/// wrapper that execs it), without the environment a developer's shell may carry
/// (`KERNO_CONFIG`, `KERNO_FAIL_PROBES`), and with stdout to /dev/null.
pub fn start_args<'c>(c: &'c mut Command, listen: &str, socket: &Path) -> &'c mut Command {
    c.args(["start", "--listen", listen, "--socket"])
        .arg(socket)
        .env_remove("KERNO_CONFIG")
        .env_remove("KERNO_FAIL_PROBES")
        .stdout(Stdio::null())
}

/// Calls `probe` every `every` until it answers, for at most `limit` (None then). Panics
/// with the log when `child` exits first; `who` names it in that message.
pub fn poll_running<T>(
    child: &mut Child,
    who: &str,
    log: impl Fn() -> String,
    limit: Duration,
    every: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(st) = child.try_wait().unwrap() {
            panic!("{who} exited with {st}:\n{}", log());
        }
        if let Some(v) = probe() {
            return Some(v);
        }
        sleep(every);
    }
    None
}

/// Sends `signal` to `child`, then waits at most `limit` for it to exit (None if it does
/// not).
pub fn signal_and_wait(
    child: &mut Child,
    signal: libc::c_int,
    limit: Duration,
) -> Option<ExitStatus> {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, signal) };
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if let Some(st) = child.try_wait().unwrap() {
            return Some(st);
        }
        sleep(Duration::from_millis(20));
    }
    None
}

/// Kills `child` and reaps it, unless it has exited already.
pub fn kill_if_running(child: &mut Child) {
    if child.try_wait().ok().flatten().is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// A process's resident set (VmRSS), in KiB; 0 when it cannot be read.
pub fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The value of one series (`name{labels}` exactly) of `/metrics` text.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// A running `kerno start` on 127.0.0.1:`port` with its socket and log (`agent.log`, its
/// stderr) in a fresh directory; killed, and the directory removed, when dropped (so a
/// failing test leaves nothing behind).
pub struct Agent {
    pub child: Child,
    pub port: u16,
    pub socket: PathBuf,
    pub dir: TempDir,
    /// When set, a drop first sends SIGTERM (the probes detached cleanly) and waits this
    /// long for the exit before it kills.
    pub term_on_drop: Option<Duration>,
    /// The read timeout of [`Agent::get`]: 10 s unless set.
    pub read_timeout: Duration,
}

impl Agent {
    /// `kerno start` with `args` after the listen address and socket, and `env` added;
    /// the directory is `kerno-{name}-{pid}`.
    pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Agent {
        Agent::start_with(name, args, |c| {
            for (k, v) in env {
                c.env(k, v);
            }
        })
    }

    /// As [`Agent::start`], with `edit` applied to the command before it is spawned.
    pub fn start_with(name: &str, args: &[&str], edit: impl FnOnce(&mut Command)) -> Agent {
        let dir = TempDir::new(name);
        let port = free_port();
        let socket = dir.0.join("agent.sock");
        let log = std::fs::File::create(dir.0.join("agent.log")).unwrap();
        let mut c = Command::new(KERNO);
        start_args(&mut c, &format!("127.0.0.1:{port}"), &socket)
            .args(args)
            .stderr(log);
        edit(&mut c);
        Agent {
            child: c.spawn().expect("spawn kerno start"),
            port,
            socket,
            dir,
            term_on_drop: None,
            read_timeout: Duration::from_secs(10),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.0.join("agent.log")
    }

    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    /// `GET path`; a failed connection panics with the agent's log.
    pub fn get(&self, path: &str) -> Http {
        Get::new(self.port, path)
            .read_timeout(self.read_timeout)
            .send()
            .unwrap_or_else(|e| panic!("GET {path}: {e}\nagent log:\n{}", self.log()))
    }

    /// Calls `probe` (given the port) every `every` until it answers, for at most `limit`
    /// (None then); panics with the log if the agent exits first.
    pub fn poll<T>(
        &mut self,
        limit: Duration,
        every: Duration,
        probe: impl FnMut(u16) -> Option<T>,
    ) -> Option<T> {
        let (port, log) = (self.port, self.log_path());
        let mut probe = probe;
        poll_running(
            &mut self.child,
            "agent",
            || read_log(&log),
            limit,
            every,
            || probe(port),
        )
    }

    /// Poll `/readyz` every 50 ms until 200, at most 30 s: its answer.
    pub fn wait_ready(&mut self) -> Http {
        self.poll(Duration::from_secs(30), Duration::from_millis(50), |port| {
            http_get(port, "/readyz").ok().filter(|r| r.status == 200)
        })
        .unwrap_or_else(|| panic!("agent not ready after 30 s:\n{}", self.log()))
    }

    pub fn rss_kb(&self) -> u64 {
        rss_kb(self.pid())
    }

    /// SIGTERM, then wait (at most 20 s) for the exit.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_with(libc::SIGTERM)
    }

    /// Send `signal`, then wait (at most 20 s) for the exit.
    pub fn stop_with(&mut self, signal: libc::c_int) -> ExitStatus {
        signal_and_wait(&mut self.child, signal, Duration::from_secs(20))
            .unwrap_or_else(|| panic!("agent did not stop within 20 s:\n{}", self.log()))
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if let Some(grace) = self.term_on_drop
            && self.child.try_wait().ok().flatten().is_none()
        {
            // SAFETY: kill(2) on our own child's pid.
            unsafe { libc::kill(self.pid() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + grace;
            while Instant::now() < deadline && self.child.try_wait().ok().flatten().is_none() {
                sleep(Duration::from_millis(20));
            }
        }
        kill_if_running(&mut self.child);
    }
}
