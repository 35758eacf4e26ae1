//! TCP: counters, flows with retransmits, connects in flight, slow connects and slow RTTs.

/// Indexes into the TCP counter array.
pub mod tcp_ctr {
    /// Retransmitted segments seen at `tcp:tcp_retransmit_skb`.
    pub const RETRANSMITS: u32 = 0;
    /// RTT samples seen at `tcp:tcp_probe`.
    pub const RTT_SAMPLES: u32 = 1;
    /// Connections that entered SYN_SENT.
    pub const CONNECT_STARTED: u32 = 2;
    /// Active opens that reached ESTABLISHED.
    pub const ACTIVE_OPENS: u32 = 3;
    /// Passive opens that reached ESTABLISHED.
    pub const PASSIVE_OPENS: u32 = 4;
    /// Connections that reached CLOSE.
    pub const CLOSES: u32 = 5;
    /// Active opens that went from SYN_SENT to CLOSE.
    pub const CONNECT_FAILED: u32 = 6;
    /// Number of counters.
    pub const N: u32 = 8;
}

/// A TCP flow (addresses in network byte order, ports in host order).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// AF_INET (2) or AF_INET6 (10).
    pub family: u16,
    /// Local port.
    pub sport: u16,
    /// Remote port.
    pub dport: u16,
    /// Padding; always 0.
    pub pad: u16,
    /// Local address (IPv4 in the first 4 bytes).
    pub saddr: [u8; 16],
    /// Remote address (IPv4 in the first 4 bytes).
    pub daddr: [u8; 16],
}

/// Per-flow TCP statistics.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct FlowVal {
    /// Retransmitted segments.
    pub retransmits: u64,
}

/// An active open in flight (key: the socket's address).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct ConnStart {
    /// When it entered SYN_SENT, ns.
    pub ts: u64,
    /// The connecting process (connect runs in its context).
    pub tgid: u32,
    /// Padding.
    pub pad: u32,
    /// Its command name.
    pub comm: [u8; 16],
}

/// Key of the slow-connect map: who connected where.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// The connecting process.
    pub tgid: u32,
    /// AF_INET or AF_INET6.
    pub family: u16,
    /// Remote port (host order).
    pub dport: u16,
    /// Remote address (IPv4 in the first 4 bytes).
    pub daddr: [u8; 16],
}

/// Connects at least as slow as the in-kernel threshold, per [`ConnKey`].
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SlowConn {
    /// Slow connects.
    pub count: u64,
    /// Their total latency, ns.
    pub total_ns: u64,
    /// The slowest, ns.
    pub max_ns: u64,
    /// The process's command name.
    pub comm: [u8; 16],
}

/// ACKs on a flow whose smoothed RTT was at least the in-kernel threshold.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SlowRtt {
    /// Such ACKs.
    pub samples: u64,
    /// Sum of their smoothed RTTs, µs.
    pub total_us: u64,
    /// The largest smoothed RTT seen, µs.
    pub max_us: u64,
}

#[cfg(feature = "user")]
pod!(FlowKey, FlowVal, ConnStart, ConnKey, SlowConn, SlowRtt);
