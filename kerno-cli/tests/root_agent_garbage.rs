//! Root test: garbage on the running agent's HTTP port and unix socket. Mutated valid
//! requests (`kerno_fuzz`), raw bytes, huge headers, cut-off requests and bad query strings
//! must each get an answer or a closed connection, never a dead or stuck agent: after every
//! batch the agent is alive, and at the end `/healthz`, `/readyz` and `/doctor` still answer.
//! It starts with an unknown `KERNO_*` variable in its environment, which it warns about once.
//! Needs root (the agent loads its probes); scripts/test.sh runs it with --test-threads=1.

mod support;

use std::{
    io::{Read, Write},
    net::TcpStream,
    os::unix::net::UnixStream,
    path::Path,
    thread::sleep,
    time::{Duration, Instant},
};

use kerno_fuzz::{Budget, Rng, mutate};
use support::Agent;

/// The agent, killed and its directory removed when dropped (even on failure).
fn start_agent() -> Agent {
    Agent::start_with(
        "garbage",
        &["--domains", "syscalls,fds", "--window", "1m"],
        |c| {
            // A leftover variable in a DaemonSet's environment: a warning, not a dead agent.
            c.env("KERNO_LEFTOVER_FROM_AN_OLD_CHART", "1");
        },
    )
}

impl Agent {
    fn alive(&mut self) {
        if let Some(st) = self.child.try_wait().unwrap() {
            panic!("the agent died ({st}):\n{}", self.log());
        }
    }
}

/// Send `raw`, read what comes back within `wait`; the status when there is one. Garbage
/// is sent with the write side shut (so a request cut short ends); a well-formed request
/// keeps it open, since the server drops a slow answer to a client that hung up.
fn exchange<S: Read + Write>(mut s: S, raw: &[u8], half_close: impl FnOnce(&S)) -> Option<u16> {
    let _ = s.write_all(raw);
    if !raw.ends_with(b"Connection: close\r\n\r\n") {
        half_close(&s);
    }
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out);
    text.split_whitespace().nth(1).and_then(|c| c.parse().ok())
}

fn tcp(port: u16, raw: &[u8], wait: Duration) -> Option<u16> {
    let s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(wait)).unwrap();
    s.set_write_timeout(Some(wait)).unwrap();
    exchange(s, raw, |s| {
        let _ = s.shutdown(std::net::Shutdown::Write);
    })
}

fn unix(path: &Path, raw: &[u8], wait: Duration) -> Option<u16> {
    let s = UnixStream::connect(path).ok()?;
    s.set_read_timeout(Some(wait)).unwrap();
    s.set_write_timeout(Some(wait)).unwrap();
    exchange(s, raw, |s| {
        let _ = s.shutdown(std::net::Shutdown::Write);
    })
}

fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes()
}

#[test]
fn root_agent_survives_garbage_requests() {
    let mut agent = start_agent();
    let deadline = Instant::now() + Duration::from_secs(40);
    while tcp(agent.port, &get("/readyz"), Duration::from_secs(2)) != Some(200) {
        agent.alive();
        assert!(Instant::now() < deadline, "not ready:\n{}", agent.log());
        sleep(Duration::from_millis(100));
    }
    let mut corpus: Vec<Vec<u8>> = [
        "/metrics",
        "/healthz",
        "/readyz",
        "/signals?window=5s",
        "/doctor?window=5s",
        "/doctor?window=2s&ai=0",
        "/levels?window=10s",
        "/",
    ]
    .iter()
    .map(|p| get(p))
    .collect();
    corpus.push(b"POST /doctor HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello".to_vec());
    corpus.push(
        b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0\r\n\r\n"
            .to_vec(),
    );
    let dict = [
        "?window=",
        "&ai=",
        "99999999999999999999",
        "6000000000000000h",
        "NaN",
        "-1",
        "%00",
        "%",
        "..",
        "/../",
        "\r\n",
        "Content-Length: 99999999999999999999\r\n",
        "Transfer-Encoding: chunked\r\n",
        "HTTP/1.0",
        "HTTP/9.9",
        " ",
        "\0",
    ];
    let budget = Budget::from_env(1500, 25.0);
    let mut rng = Rng::new(budget.seed);
    let start = Instant::now();
    let wait = Duration::from_millis(1500);
    let (mut sent, mut answered, mut slowest) = (0u64, 0u64, Duration::ZERO);
    while sent < budget.cases && start.elapsed() < budget.time {
        let raw: Vec<u8> = match rng.below(10) {
            0 => (0..rng.below(4096)).map(|_| rng.next_u64() as u8).collect(),
            1 => {
                let mut v = get("/metrics");
                let at = v.len() - 2;
                let header = format!(
                    "X-Big: {}\r\n",
                    "a".repeat(64 * 1024 + rng.below(64 * 1024))
                );
                v.splice(at..at, header.bytes());
                v
            }
            2 => {
                let v = rng.pick(&corpus).clone();
                let cut = rng.below(v.len());
                v[..cut].to_vec()
            }
            3 => get(&format!(
                "/doctor?window={}{}",
                rng.pick(kerno_fuzz::EDGE_NUMBERS),
                rng.pick(kerno_fuzz::UNITS)
            )),
            _ => {
                let base = rng.pick(&corpus).clone();
                let mut v = base;
                for _ in 0..(1 + rng.below(3)) {
                    v = mutate(&mut rng, &v, &corpus, &dict);
                }
                v
            }
        };
        let t0 = Instant::now();
        let status = if rng.below(2) == 0 {
            tcp(agent.port, &raw, wait)
        } else {
            unix(&agent.socket, &raw, wait)
        };
        slowest = slowest.max(t0.elapsed());
        sent += 1;
        answered += u64::from(status.is_some());
        if sent % 50 == 0 {
            agent.alive();
        }
    }
    agent.alive();
    eprintln!(
        "fuzz agent-http: {sent} requests, {answered} with an HTTP status, 0 panics, slowest {:.0} ms, {:.1} s",
        slowest.as_secs_f64() * 1e3,
        start.elapsed().as_secs_f64()
    );
    assert_eq!(
        tcp(agent.port, &get("/healthz"), Duration::from_secs(5)),
        Some(200)
    );
    assert_eq!(
        tcp(agent.port, &get("/readyz"), Duration::from_secs(5)),
        Some(200)
    );
    assert_eq!(
        unix(
            &agent.socket,
            &get("/doctor?window=2s"),
            Duration::from_secs(10)
        ),
        Some(200),
        "{}",
        agent.log()
    );
    let log = agent.log();
    assert!(!log.contains("panicked"), "the agent panicked:\n{log}");
    assert_eq!(
        log.matches("ignoring unknown environment variable KERNO_LEFTOVER_FROM_AN_OLD_CHART")
            .count(),
        1,
        "warned once:\n{log}"
    );
    assert!(sent >= 100, "too few requests to mean anything: {sent}");
}
