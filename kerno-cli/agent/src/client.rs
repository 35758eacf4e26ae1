//! Asking a running agent for a window, over its unix socket: what `kerno doctor` does
//! before loading probes of its own. Plain blocking HTTP/1.1, no runtime.

use std::{
    io::{Read, Write},
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use kerno_core::{Signals, readiness::Readiness};
use thiserror::Error;

/// Why an agent could not answer.
#[derive(Debug, Error)]
pub enum ClientError {
    /// Nothing listens on the socket (no agent runs): collect standalone.
    #[error("no agent listens on {socket}: {source}")]
    NoAgent {
        /// The socket.
        socket: String,
        /// The connection error.
        #[source]
        source: std::io::Error,
    },
    /// The agent was reached but the exchange failed (timeout, closed connection).
    #[error("talking to the agent on {socket}: {source}")]
    Io {
        /// The socket.
        socket: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The agent answered with an error status.
    #[error("the agent answered {status}: {body}")]
    Status {
        /// HTTP status.
        status: u16,
        /// Its message.
        body: String,
    },
    /// The answer is not a window this Kerno reads.
    #[error("the agent's answer is not a window: {0}")]
    Invalid(String),
    /// The `/readyz` answer is not a readiness this Kerno reads.
    #[error("the agent's /readyz answer is not a readiness: {0}")]
    InvalidReadiness(String),
}

/// The agent's window of the last `window`, as [`Signals`]; the caller runs its own rules
/// and thresholds over it. The agent waits, at most `window`, until its history covers the
/// request (it may have just started), so `timeout` should exceed `window`.
pub fn fetch_signals(
    socket: &Path,
    window: Duration,
    timeout: Duration,
) -> Result<Signals, ClientError> {
    let body = get(
        socket,
        &format!("/signals?window={}ms", window.as_millis()),
        timeout,
    )?;
    kerno_core::parse_signals(&body).map_err(ClientError::Invalid)
}

/// The agent's level history over the last `window` (its `/levels`), as [`Signals`]:
/// what `kerno predict` projects.
pub fn fetch_levels(
    socket: &Path,
    window: Duration,
    timeout: Duration,
) -> Result<Signals, ClientError> {
    let body = get(
        socket,
        &format!("/levels?window={}ms", window.as_millis()),
        timeout,
    )?;
    kerno_core::parse_signals(&body).map_err(ClientError::Invalid)
}

/// The agent's readiness (`/readyz`), whether it is ready (200) or not yet (503).
pub fn fetch_readiness(socket: &Path, timeout: Duration) -> Result<Readiness, ClientError> {
    let (status, body) = request(socket, "/readyz", timeout)?;
    if status != 200 && status != 503 {
        return Err(ClientError::Status {
            status,
            body: body.trim().to_string(),
        });
    }
    serde_json::from_str(&body).map_err(|e| ClientError::InvalidReadiness(e.to_string()))
}

/// `GET path` on the agent's socket; the body of a 200 answer.
pub fn get(socket: &Path, path: &str, timeout: Duration) -> Result<String, ClientError> {
    let (status, body) = request(socket, path, timeout)?;
    if status != 200 {
        return Err(ClientError::Status {
            status,
            body: body.trim().to_string(),
        });
    }
    Ok(body)
}

/// `GET path` on the agent's socket: the answer's status and body.
fn request(socket: &Path, path: &str, timeout: Duration) -> Result<(u16, String), ClientError> {
    let name = socket.display().to_string();
    let io = |source| ClientError::Io {
        socket: name.clone(),
        source,
    };
    let mut s = UnixStream::connect(socket).map_err(|source| match source.kind() {
        // No socket, or a stale one nobody listens on: no agent runs.
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ClientError::NoAgent {
                socket: name.clone(),
                source,
            }
        }
        // An agent runs but this user may not ask it (the socket is root's), and so on.
        _ => io(source),
    })?;
    s.set_read_timeout(Some(timeout)).map_err(io)?;
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: kerno-agent\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(io)?;
    parse_response(&raw).map_err(ClientError::Invalid)
}

/// Status and body of an HTTP/1.1 response (`Content-Length`, chunked, or until close).
fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP header")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut rest = &raw[split + 4..];
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no HTTP status line")?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
        if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
            chunked = true;
        } else if k == "content-length" {
            length = v.parse::<usize>().ok();
        }
    }
    let body = if chunked {
        let mut out = Vec::new();
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or("truncated chunk")?;
            let size_text = String::from_utf8_lossy(&rest[..eol]);
            let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
                .map_err(|_| "bad chunk size")?;
            rest = &rest[eol + 2..];
            if size == 0 {
                break;
            }
            if rest.len() < size {
                return Err("truncated chunk".into());
            }
            out.extend_from_slice(&rest[..size]);
            rest = rest.get(size + 2..).unwrap_or(&[]);
        }
        out
    } else if let Some(n) = length {
        rest.get(..n).ok_or("truncated body")?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_bodies() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_response(plain).unwrap(), (200, "hello".into()));
        let chunked =
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (503, "abcde".into()));
        assert!(parse_response(b"garbage").is_err());
    }

    /// What comes back on the socket (a stale socket's new owner, a half-written reply):
    /// an error or a body, never a panic (docs/reliability.md).
    #[test]
    fn fuzz_responses() {
        let corpus: Vec<Vec<u8>> = [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"[..],
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n{\"schema\":1}",
        ]
        .iter()
        .map(|s| s.to_vec())
        .collect();
        let f = kerno_fuzz::run(
            "agent-response",
            &corpus,
            &[
                "\r\n",
                "ffffffffffffffff",
                "content-length: ",
                "chunked",
                ";ext",
                "0\r\n\r\n",
            ],
            kerno_fuzz::Budget::from_env(100_000, 5.0),
            |b| {
                let _ = parse_response(b);
            },
        );
        kerno_fuzz::assert_no_panics(&f);
    }

    /// Answer each connection on a fresh socket with the next of `answers`; the socket.
    fn fake_agent(name: &str, answers: Vec<String>) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("kerno-{name}-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        std::thread::spawn(move || {
            for answer in answers {
                let (mut s, _) = listener.accept().unwrap();
                // The whole request first: the client writes it in pieces.
                let mut request = Vec::new();
                let mut byte = [0u8; 1];
                while !request.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap() == 1 {
                    request.push(byte[0]);
                }
                s.write_all(answer.as_bytes()).unwrap();
            }
        });
        path
    }

    #[test]
    fn readiness_is_read_ready_or_not() {
        let body = |ready: bool, status: &str| {
            format!(
                r#"{{"collectors":[],"degraded":[],"domains":[],"history_secs":4.5,"ready":{ready},"status":"{status}","uptime_secs":5.0}}"#
            )
        };
        let answer = |code: &str, body: &str| {
            format!(
                "HTTP/1.1 {code}\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
        };
        let socket = fake_agent(
            "readyz",
            vec![
                answer("200 OK", &body(true, "ready")),
                answer("503 Service Unavailable", &body(false, "warming_up")),
                answer("404 Not Found", "no"),
                answer("200 OK", "{}"),
            ],
        );
        let t = Duration::from_secs(5);
        let r = fetch_readiness(&socket, t).unwrap();
        assert!(r.ready && r.history_secs == 4.5, "{r:?}");
        let r = fetch_readiness(&socket, t).unwrap();
        assert_eq!(
            (r.ready, r.status),
            (false, kerno_core::readiness::ReadyStatus::WarmingUp)
        );
        let e = fetch_readiness(&socket, t).unwrap_err();
        assert!(matches!(e, ClientError::Status { status: 404, .. }), "{e}");
        let e = fetch_readiness(&socket, t).unwrap_err();
        assert!(matches!(e, ClientError::InvalidReadiness(_)), "{e}");
        let _ = std::fs::remove_file(&socket);
    }

    #[test]
    fn a_missing_socket_means_no_agent() {
        let e = fetch_signals(
            Path::new("/nonexistent/kerno.sock"),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(e, ClientError::NoAgent { .. }), "{e}");
    }
}
