//! Block I/O: requests in flight and per-device, per-operation statistics.

use crate::Hist;

/// Block request operations.
pub mod blk_op {
    /// Read.
    pub const READ: u32 = 0;
    /// Write.
    pub const WRITE: u32 = 1;
    /// Cache flush (fsync and fdatasync end here).
    pub const FLUSH: u32 = 2;
    /// Discard / secure erase.
    pub const DISCARD: u32 = 3;
    /// Anything else.
    pub const OTHER: u32 = 4;
}

/// Slots for block requests in flight, indexed by a hash of the request's address.
pub const BLK_SLOTS: u32 = 8192;

/// A block request in flight (issued, not completed): one slot of `BLK_SLOTS`.
///
/// The slot carries the request's address, so a completion whose slot another request took
/// in the meantime is detected (and counted as an unmatched completion), never mixed up.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct BlkSlot {
    /// The `struct request` address; 0 when the slot is free.
    pub rq: u64,
    /// Issue timestamp, ns.
    pub ts: u64,
    /// Bytes in the request.
    pub bytes: u32,
    /// Device number, kernel encoding (major << 20 | minor).
    pub dev: u32,
    /// Operation ([`blk_op`]).
    pub op: u32,
    /// Unused; always 0.
    pub pad: u32,
}

/// Key of the per-device, per-operation block statistics.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BlkStatKey {
    /// Device number, kernel encoding (major << 20 | minor).
    pub dev: u32,
    /// Operation ([`blk_op`]).
    pub op: u32,
}

/// Per-device, per-operation block statistics (per CPU).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct BlkStat {
    /// Completed requests.
    pub count: u64,
    /// Bytes completed.
    pub bytes: u64,
    /// Requests completed with an error.
    pub errors: u64,
    /// Issue-to-complete latency, ns.
    pub hist: Hist,
}

#[cfg(feature = "user")]
pod!(BlkSlot, BlkStatKey, BlkStat);
