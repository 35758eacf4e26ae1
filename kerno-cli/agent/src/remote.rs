//! Asking other nodes' agents for their reports, over HTTP on their TCP port (`/doctor`
//! with a bearer token): what `kerno doctor --cluster` does. Every name is resolved to all
//! its addresses (a headless Service's name is every pod of the DaemonSet), each address
//! is asked in parallel with a per-node timeout, and whatever has not answered by the
//! overall deadline is reported as not observed: a partial answer, never a hang.

use std::{
    collections::VecDeque,
    net::{SocketAddr, ToSocketAddrs},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use kerno_core::{Report, cluster::NodeReply};

/// The port an agent listens on when a target names none.
pub const DEFAULT_PORT: u16 = 9090;

/// At most this many agents are asked at the same time.
const PARALLEL: usize = 64;

/// How to ask the agents.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// The window each agent reports on.
    pub window: Duration,
    /// The bearer token the agents ask for.
    pub token: String,
    /// How long one agent may take to answer.
    pub node_timeout: Duration,
    /// How long the whole question may take, resolution included.
    pub deadline: Duration,
}

/// `HOST:PORT`, `HOST` (port 9090), `[v6]:PORT`: the text to resolve.
fn with_port(target: &str) -> String {
    let t = target.trim();
    if t.parse::<SocketAddr>().is_ok() {
        return t.to_string();
    }
    let bracketed = t.starts_with('[') && t.ends_with(']');
    let has_port = !bracketed
        && t.rsplit_once(':')
            .is_some_and(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok());
    if has_port {
        t.to_string()
    } else if t.parse::<std::net::Ipv6Addr>().is_ok() {
        format!("[{t}]:{DEFAULT_PORT}")
    } else {
        format!("{t}:{DEFAULT_PORT}")
    }
}

/// Resolve each target to all its addresses (in parallel, within `deadline`); a target
/// that resolves to nothing is a reply that says why, under its own name.
pub fn resolve_agents(targets: &[String], deadline: Duration) -> (Vec<SocketAddr>, Vec<NodeReply>) {
    let until = Instant::now() + deadline;
    let (tx, rx) = mpsc::channel();
    for (i, t) in targets.iter().enumerate() {
        let (tx, name) = (tx.clone(), with_port(t));
        // getaddrinfo cannot be given a timeout: a thread each, abandoned at the deadline.
        std::thread::spawn(move || {
            let r = name
                .to_socket_addrs()
                .map(|a| a.collect::<Vec<_>>())
                .map_err(|e| e.to_string());
            let _ = tx.send((i, r));
        });
    }
    drop(tx);
    let mut results: Vec<Option<Result<Vec<SocketAddr>, String>>> = vec![None; targets.len()];
    while results.iter().any(Option::is_none) {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, r)) => results[i] = Some(r),
            Err(_) => break,
        }
    }
    let mut addrs = Vec::new();
    let mut failed = Vec::new();
    for (t, r) in targets.iter().zip(results) {
        let reason = match r {
            Some(Ok(a)) if !a.is_empty() => {
                for x in a {
                    if !addrs.contains(&x) {
                        addrs.push(x);
                    }
                }
                continue;
            }
            Some(Ok(_)) => "the name has no address".to_string(),
            Some(Err(e)) => format!("cannot resolve: {e}"),
            None => format!(
                "cannot resolve: no answer within the deadline ({} s)",
                deadline.as_secs_f64()
            ),
        };
        failed.push(NodeReply {
            address: t.trim().to_string(),
            answer: Err(reason),
        });
    }
    (addrs, failed)
}

/// Ask one agent for its report.
fn ask(addr: SocketAddr, opts: &ClusterOptions, timeout: Duration) -> Result<Report, String> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .user_agent(concat!("kerno/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    let url = format!(
        "http://{addr}/doctor?window={}ms&signals=0",
        opts.window.as_millis()
    );
    let secs = timeout.as_secs_f64();
    let mut resp = agent
        .get(&url)
        .header("Authorization", &format!("Bearer {}", opts.token))
        .header("Accept", "application/json")
        .call()
        .map_err(|e| match e {
            ureq::Error::Timeout(_) => format!("no answer within {secs} s"),
            ureq::Error::Io(io) => io.to_string(),
            other => other.to_string(),
        })?;
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .map_err(|e| match e {
            ureq::Error::Timeout(_) => format!("no answer within {secs} s"),
            other => format!("reading the answer: {other}"),
        })?;
    match status {
        200 => serde_json::from_str::<Report>(&body)
            .map_err(|e| format!("the answer is not a report this kerno reads: {e}")),
        401 => Err("unauthorized (401): the agent did not accept the token (--token-file)".into()),
        404 => Err(
            "404: this agent does not serve /doctor on its port (kerno start --serve-doctor)"
                .into(),
        ),
        s => {
            let why = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_string))
                .unwrap_or_else(|| body.trim().chars().take(200).collect());
            Err(format!("the agent answered {s}: {why}"))
        }
    }
}

/// Ask every agent `targets` name (all addresses of each) for its report of the last
/// `opts.window`, in parallel; one reply per address (and one per name that resolved to
/// nothing), in no particular order. Returns by `opts.deadline`: agents still silent then
/// are replies that say so.
pub fn ask_cluster(targets: &[String], opts: &ClusterOptions) -> Vec<NodeReply> {
    let start = Instant::now();
    let until = start + opts.deadline;
    let (addrs, mut replies) = resolve_agents(targets, opts.deadline);
    let queue = Arc::new(Mutex::new(addrs.iter().copied().collect::<VecDeque<_>>()));
    let (tx, rx) = mpsc::channel();
    for _ in 0..addrs.len().min(PARALLEL) {
        let (queue, tx, opts) = (queue.clone(), tx.clone(), opts.clone());
        std::thread::spawn(move || {
            loop {
                let next = queue.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
                let Some(addr) = next else { break };
                let left = until.saturating_duration_since(Instant::now());
                let answer = if left.is_zero() {
                    Err(String::new())
                } else {
                    ask(addr, &opts, opts.node_timeout.min(left))
                };
                if tx.send((addr, answer)).is_err() {
                    break;
                }
            }
        });
    }
    drop(tx);
    let mut pending: Vec<SocketAddr> = addrs.clone();
    while !pending.is_empty() {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((addr, answer)) => {
                pending.retain(|a| *a != addr);
                replies.push(NodeReply {
                    address: addr.to_string(),
                    answer: answer.map_err(|e| {
                        if e.is_empty() {
                            deadline_reason(opts.deadline)
                        } else {
                            e
                        }
                    }),
                });
            }
            Err(_) => break,
        }
    }
    replies.extend(pending.into_iter().map(|addr| NodeReply {
        address: addr.to_string(),
        answer: Err(deadline_reason(opts.deadline)),
    }));
    replies
}

fn deadline_reason(deadline: Duration) -> String {
    format!(
        "no answer within the deadline ({} s)",
        deadline.as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    #[test]
    fn targets_get_the_default_port() {
        assert_eq!(
            with_port("kerno.kerno-system.svc"),
            "kerno.kerno-system.svc:9090"
        );
        assert_eq!(with_port("10.0.0.1:9191"), "10.0.0.1:9191");
        assert_eq!(with_port("::1"), "[::1]:9090");
        assert_eq!(with_port("[::1]"), "[::1]:9090");
        assert_eq!(with_port("[::1]:9191"), "[::1]:9191");
        assert_eq!(with_port(" host:1 "), "host:1");
    }

    /// An agent on loopback that answers each request with `answer`, after `delay`.
    fn fake_agent(answer: String, delay: Duration) -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { break };
                let answer = answer.clone();
                std::thread::spawn(move || {
                    let mut req = Vec::new();
                    let mut b = [0u8; 1];
                    while !req.ends_with(b"\r\n\r\n") && s.read(&mut b).unwrap_or(0) == 1 {
                        req.push(b[0]);
                    }
                    std::thread::sleep(delay);
                    let _ = s.write_all(answer.as_bytes());
                });
            }
        });
        addr
    }

    fn http(code: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {code}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[test]
    fn answers_refusals_and_silence_each_become_a_reply_by_the_deadline() {
        let mut s = kerno_core::Signals::default();
        s.host.node = "node-a".into();
        let report = kerno_core::evaluate(&s, &[], &kerno_core::Thresholds::default());
        let good = fake_agent(
            http("200 OK", &kerno_core::render::json(&report)),
            Duration::ZERO,
        );
        let denied = fake_agent(
            http("401 Unauthorized", r#"{"error":"unauthorized"}"#),
            Duration::ZERO,
        );
        let silent = fake_agent(http("200 OK", "{}"), Duration::from_secs(30));
        // A port nobody listens on.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let opts = ClusterOptions {
            window: Duration::from_secs(10),
            token: "t".into(),
            node_timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(5),
        };
        let targets: Vec<String> = [good, denied, silent, closed]
            .iter()
            .map(|a| a.to_string())
            .chain(["no-such-host.invalid".to_string()])
            .collect();
        let start = Instant::now();
        let replies = ask_cluster(&targets, &opts);
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "{:?}",
            start.elapsed()
        );
        let get = |a: &str| {
            replies
                .iter()
                .find(|r| r.address == a)
                .unwrap_or_else(|| panic!("no reply for {a}: {replies:?}"))
        };
        assert_eq!(
            get(&good.to_string()).answer.as_ref().unwrap().host.node,
            "node-a"
        );
        let why = |a: &str| get(a).answer.as_ref().unwrap_err().clone();
        assert!(why(&denied.to_string()).contains("401"));
        assert!(why(&silent.to_string()).contains("no answer within 1 s"));
        assert!(
            why(&closed.to_string()).contains("refused"),
            "{}",
            why(&closed.to_string())
        );
        assert!(why("no-such-host.invalid").contains("cannot resolve"));
        assert_eq!(replies.len(), 5);
    }
}
