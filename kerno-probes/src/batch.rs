//! Whole-map reads with `BPF_MAP_LOOKUP_BATCH`.
//!
//! Iterating a hash map costs two `bpf()` calls per entry (next key, then lookup): a few
//! thousand a second for an idle node's per-process maps, tens of thousands during a storm
//! of short-lived processes, when the maps are full. A batch lookup returns up to
//! [`CHUNK`] entries per call. Kernels or maps that refuse it fall back to iterating.

use std::{
    io,
    mem::size_of,
    os::fd::{AsFd as _, AsRawFd as _},
};

use aya::{
    Pod,
    maps::{HashMap, IterableMap as _, MapData},
};

/// Entries asked for per call (grown when a hash bucket holds more).
const CHUNK: usize = 1024;
/// `BPF_MAP_LOOKUP_BATCH` (include/uapi/linux/bpf.h).
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
/// The kernel's ENOTSUPP (not in libc: kernel-internal, yet returned by bpf()).
const ENOTSUPP: i32 = 524;

/// The `batch` member of `union bpf_attr`.
#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// Every entry of `map`, read in batches. `Ok(None)` when the kernel does not support
/// batch lookups on this map (the caller iterates instead).
pub(crate) fn read_all<K: Pod, V: Pod>(
    map: &HashMap<MapData, K, V>,
) -> io::Result<Option<Vec<(K, V)>>> {
    let fd = map.map().fd().as_fd().as_raw_fd() as u32;
    let mut out = Vec::new();
    let mut chunk = CHUNK;
    let mut keys: Vec<K> = Vec::with_capacity(chunk);
    let mut values: Vec<V> = Vec::with_capacity(chunk);
    // The kernel's position token: a bucket index for hash maps (u32); 8 bytes is room.
    let (mut token_in, mut token_out) = (0u64, 0u64);
    let mut first = true;
    loop {
        keys.reserve(chunk);
        values.reserve(chunk);
        let mut attr = BatchAttr {
            in_batch: if first { 0 } else { &raw mut token_in as u64 },
            out_batch: &raw mut token_out as u64,
            keys: keys.as_mut_ptr() as u64,
            values: values.as_mut_ptr() as u64,
            count: chunk as u32,
            map_fd: fd,
            ..BatchAttr::default()
        };
        // SAFETY: `attr` points at buffers with room for `chunk` keys and values of the
        // map's key and value sizes (K and V are the map's types), and at two 8-byte tokens,
        // all alive for the call; the kernel writes at most `count` entries and one token.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_bpf,
                BPF_MAP_LOOKUP_BATCH,
                &raw mut attr,
                size_of::<BatchAttr>() as u32,
            )
        };
        let done = if rc == 0 {
            false
        } else {
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                // The last chunk: entries may still have been returned with it.
                Some(libc::ENOENT) => true,
                // A bucket holds more entries than the buffer: ask for more at once.
                Some(libc::ENOSPC) if chunk < 1 << 20 => {
                    chunk *= 2;
                    continue;
                }
                Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP | ENOTSUPP) if first => {
                    return Ok(None);
                }
                _ => return Err(e),
            }
        };
        let n = (attr.count as usize).min(chunk);
        // SAFETY: the kernel filled the first `n` keys and values (the vectors are empty
        // before each call, so that is their whole length).
        unsafe {
            keys.set_len(n);
            values.set_len(n);
        }
        out.extend(keys.drain(..).zip(values.drain(..)));
        if done {
            return Ok(Some(out));
        }
        token_in = token_out;
        first = false;
    }
}
