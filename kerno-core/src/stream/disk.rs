//! `kerno trace disk` (biosnoop): one event per block request: device, op, bytes, sector,
//! queue and service latency, and the process that asked for it.

use std::collections::HashMap;

use kerno_probes::{
    common::{DiskEvent as RawDiskEvent, blk_op},
    streams::{StreamKind, StreamOptions, decode},
};
use serde::{Deserialize, Serialize};

use super::{RingStream, StreamError, format_utc_time, mono_to_unix_ns, ring_stream};
use crate::{human_ns, procfs};

/// What to trace; every filter runs in the kernel.
#[derive(Clone, Debug, Default)]
pub struct DiskFilter {
    /// Only this device, by kernel name (`sda`, `nvme0n1`, `loop3`).
    pub device: Option<String>,
    /// Only requests of this command name (the process that queued or issued them).
    pub comm: Option<String>,
    /// Only these ops: `read`, `write`, `flush`, `discard` (empty: all).
    pub ops: Vec<String>,
    /// Only requests at least this slow (queue plus service).
    pub min_latency: std::time::Duration,
    /// Ring buffer size, bytes (default 256 KiB).
    pub ring_bytes: Option<u32>,
}

/// The name of a `blk_op`.
pub fn op_name(op: u32) -> &'static str {
    match op {
        blk_op::READ => "read",
        blk_op::WRITE => "write",
        blk_op::FLUSH => "flush",
        blk_op::DISCARD => "discard",
        _ => "other",
    }
}

fn op_number(name: &str) -> Option<u32> {
    Some(match name {
        "read" => blk_op::READ,
        "write" => blk_op::WRITE,
        "flush" => blk_op::FLUSH,
        "discard" => blk_op::DISCARD,
        _ => return None,
    })
}

/// `(major, minor)` of a block device by its kernel name (`/sys/class/block/NAME/dev`).
pub fn device_numbers(name: &str) -> Result<(u32, u32), StreamError> {
    let bad = || {
        StreamError::Filter(format!(
            "unknown block device {name:?} (names as in /sys/class/block, e.g. sda, loop0)"
        ))
    };
    if name.is_empty() || name.contains('/') {
        return Err(bad());
    }
    let s = std::fs::read_to_string(procfs::host_path(format!("/sys/class/block/{name}/dev")))
        .map_err(|_| bad())?;
    let (ma, mi) = s.trim().split_once(':').ok_or_else(bad)?;
    Ok((
        ma.parse().map_err(|_| bad())?,
        mi.parse().map_err(|_| bad())?,
    ))
}

/// One block request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskEvent {
    /// When it completed, Unix time in ns.
    pub time_unix_ns: u64,
    /// Device name (`major:minor` when unknown).
    pub device: String,
    /// `read`, `write`, `flush`, `discard` or `other`.
    pub op: String,
    /// Bytes.
    pub bytes: u32,
    /// First sector.
    pub sector: u64,
    /// Time queued before it was issued to the device, ns (0: issued at once).
    pub queue_ns: u64,
    /// Time at the device, issue to completion, ns.
    pub service_ns: u64,
    /// Queue plus service, ns.
    pub latency_ns: u64,
    /// The completion's error (0: none).
    pub error: i32,
    /// The process that queued or issued it (not the completing context).
    pub pid: u32,
    /// Its command name.
    pub comm: String,
}

impl DiskEvent {
    /// The column header of [`DiskEvent::row`].
    pub fn header() -> String {
        format!(
            "{:<12} {:>7} {:<16} {:<8} {:<7} {:>12} {:>8} {:>10} {:>10}",
            "TIME(UTC)", "PID", "COMM", "DISK", "OP", "SECTOR", "BYTES", "QUEUE", "LATENCY"
        )
    }

    /// One aligned line for a terminal.
    pub fn row(&self) -> String {
        format!(
            "{:<12} {:>7} {:<16} {:<8} {:<7} {:>12} {:>8} {:>10} {:>10}",
            format_utc_time(self.time_unix_ns),
            self.pid,
            self.comm,
            self.device,
            self.op,
            self.sector,
            self.bytes,
            human_ns(self.queue_ns as f64),
            human_ns(self.latency_ns as f64)
        )
    }
}

pub(crate) struct Decoder {
    mono_to_unix: i128,
    names: HashMap<u32, String>,
}

impl Decoder {
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> Option<DiskEvent> {
        let r: RawDiskEvent = decode(bytes)?;
        let device = self
            .names
            .entry(r.dev)
            .or_insert_with(|| {
                let (ma, mi) = (r.dev >> 20, r.dev & 0xfffff);
                procfs::block_device_name(ma, mi).unwrap_or_else(|| format!("{ma}:{mi}"))
            })
            .clone();
        Some(DiskEvent {
            time_unix_ns: (r.ts_ns as i128 + self.mono_to_unix).max(0) as u64,
            device,
            op: op_name(r.op).into(),
            bytes: r.bytes,
            sector: r.sector,
            queue_ns: r.queue_ns,
            service_ns: r.service_ns,
            latency_ns: r.queue_ns + r.service_ns,
            error: r.error,
            pid: r.pid,
            comm: procfs::comm_str(&r.comm),
        })
    }
}

/// The block I/O stream: a `Stream` of [`DiskEvent`]s.
pub struct DiskStream {
    ring: RingStream<DiskEvent>,
    decoder: Decoder,
}

impl DiskStream {
    /// Load and attach the block I/O stream's programs (inside a tokio runtime).
    pub fn open(filter: &DiskFilter) -> Result<DiskStream, StreamError> {
        let ops = filter
            .ops
            .iter()
            .map(|o| {
                op_number(o).ok_or_else(|| {
                    StreamError::Filter(format!("unknown op {o:?} (read, write, flush or discard)"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let device = filter.device.as_deref().map(device_numbers).transpose()?;
        let opts = StreamOptions {
            comm: filter.comm.clone(),
            min_ns: filter.min_latency.as_nanos().min(u64::MAX as u128) as u64,
            device,
            ops,
            ring_bytes: filter.ring_bytes,
            ..Default::default()
        };
        Ok(DiskStream {
            ring: RingStream::open(StreamKind::Disk, &opts)?,
            decoder: Decoder {
                mono_to_unix: mono_to_unix_ns(),
                names: HashMap::new(),
            },
        })
    }
}

ring_stream!(DiskStream, DiskEvent);
