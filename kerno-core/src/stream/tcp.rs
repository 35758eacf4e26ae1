//! `kerno watch tcp`: retransmitted segments with their flow, state and smoothed RTT, and
//! connection opens, closes and failures, IPv4 and IPv6.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use kerno_probes::{
    common::{TcpEvent as RawTcpEvent, tcp_event},
    streams::{StreamKind, StreamOptions, decode},
};
use serde::{Deserialize, Serialize};

use super::{RingStream, StreamError, format_utc_time, mono_to_unix_ns, ring_stream};
use crate::procfs;

/// What to show. With neither `retransmits` nor `state_changes`, both.
#[derive(Clone, Debug, Default)]
pub struct TcpFilter {
    /// Retransmitted segments.
    pub retransmits: bool,
    /// Only retransmits on flows whose smoothed RTT is at least this (in the kernel).
    pub rtt_above: std::time::Duration,
    /// Connection state changes.
    pub state_changes: bool,
    /// Ring buffer size, bytes (default 256 KiB).
    pub ring_bytes: Option<u32>,
}

/// The kernel's TCP state names (`include/net/tcp_states.h`).
pub fn state_name(s: u32) -> &'static str {
    match s {
        1 => "ESTABLISHED",
        2 => "SYN_SENT",
        3 => "SYN_RECV",
        4 => "FIN_WAIT1",
        5 => "FIN_WAIT2",
        6 => "TIME_WAIT",
        7 => "CLOSE",
        8 => "CLOSE_WAIT",
        9 => "LAST_ACK",
        10 => "LISTEN",
        11 => "CLOSING",
        12 => "NEW_SYN_RECV",
        _ => "UNKNOWN",
    }
}

/// One TCP event.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TcpEvent {
    /// When, Unix time in ns.
    pub time_unix_ns: u64,
    /// `retransmit`, `open` (SYN_SENT → ESTABLISHED), `accept` (SYN_RECV → ESTABLISHED),
    /// `connect` (→ SYN_SENT), `failed` (SYN_SENT → CLOSE), `close` (→ CLOSE), or `state`.
    pub event: String,
    /// Local address.
    pub saddr: IpAddr,
    /// Local port.
    pub sport: u16,
    /// Remote address.
    pub daddr: IpAddr,
    /// Remote port.
    pub dport: u16,
    /// The state (retransmit: the socket's; state change: the new one).
    pub state: String,
    /// The old state (state changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub old_state: Option<String>,
    /// The flow's last smoothed RTT, µs (absent when none was seen yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub srtt_us: Option<u32>,
    /// The process in whose context it happened: the connecting process for `connect`,
    /// `open` and `failed`; for retransmits and closes often whoever was running.
    pub pid: u32,
    /// Its command name.
    pub comm: String,
}

impl TcpEvent {
    /// The column header of [`TcpEvent::row`].
    pub fn header() -> String {
        format!(
            "{:<12} {:<10} {:<46} {:<24} {:>9} {:>7} {}",
            "TIME(UTC)", "EVENT", "LOCAL -> REMOTE", "STATE", "SRTT", "PID", "COMM"
        )
    }

    /// One aligned line for a terminal.
    pub fn row(&self) -> String {
        let ep = |a: &IpAddr, p: u16| match a {
            IpAddr::V4(a) => format!("{a}:{p}"),
            IpAddr::V6(a) => format!("[{a}]:{p}"),
        };
        let state = match &self.old_state {
            Some(o) => format!("{o}>{}", self.state),
            None => self.state.clone(),
        };
        format!(
            "{:<12} {:<10} {:<46} {:<24} {:>9} {:>7} {}",
            format_utc_time(self.time_unix_ns),
            self.event,
            format!(
                "{} -> {}",
                ep(&self.saddr, self.sport),
                ep(&self.daddr, self.dport)
            ),
            state,
            self.srtt_us
                .map(|u| format!("{:.1} ms", u as f64 / 1000.0))
                .unwrap_or_else(|| "-".into()),
            self.pid,
            self.comm
        )
    }
}

fn addr(family: u16, raw: [u8; 16]) -> IpAddr {
    if family == 10 {
        IpAddr::V6(Ipv6Addr::from(raw))
    } else {
        IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]))
    }
}

pub(crate) struct Decoder {
    mono_to_unix: i128,
}

impl Decoder {
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> Option<TcpEvent> {
        let r: RawTcpEvent = decode(bytes)?;
        let (event, old_state) = if r.kind == tcp_event::RETRANSMIT {
            ("retransmit", None)
        } else {
            let e = match (r.old_state, r.state) {
                (2, 1) => "open",
                (3, 1) => "accept",
                (_, 2) => "connect",
                (2, 7) => "failed",
                (_, 7) => "close",
                _ => "state",
            };
            (e, Some(state_name(r.old_state).to_string()))
        };
        Some(TcpEvent {
            time_unix_ns: (r.ts_ns as i128 + self.mono_to_unix).max(0) as u64,
            event: event.into(),
            saddr: addr(r.family, r.saddr),
            sport: r.sport,
            daddr: addr(r.family, r.daddr),
            dport: r.dport,
            state: state_name(r.state).into(),
            old_state,
            srtt_us: (r.srtt_us != 0).then_some(r.srtt_us),
            pid: r.pid,
            comm: procfs::comm_str(&r.comm),
        })
    }
}

/// The TCP stream: a `Stream` of [`TcpEvent`]s.
pub struct TcpStream {
    ring: RingStream<TcpEvent>,
    decoder: Decoder,
}

impl TcpStream {
    /// Load and attach the TCP stream's programs (inside a tokio runtime).
    pub fn open(filter: &TcpFilter) -> Result<TcpStream, StreamError> {
        let both = !filter.retransmits && !filter.state_changes;
        let opts = StreamOptions {
            min_ns: filter.rtt_above.as_nanos().min(u64::MAX as u128) as u64,
            tcp_retransmits: filter.retransmits || both,
            tcp_states: filter.state_changes || both,
            ring_bytes: filter.ring_bytes,
            ..Default::default()
        };
        Ok(TcpStream {
            ring: RingStream::open(StreamKind::Tcp, &opts)?,
            decoder: Decoder {
                mono_to_unix: mono_to_unix_ns(),
            },
        })
    }
}

ring_stream!(TcpStream, TcpEvent);
