//! TCP: retransmits (`tcp_retransmit_skb`), RTT (`tcp_probe`) and connection states
//! (`inet_sock_set_state`).

use aya_ebpf::{
    bindings::BPF_NOEXIST,
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid},
    macros::{map, tracepoint},
    maps::{LruHashMap, PerCpuArray},
    programs::TracePointContext,
};
use kerno_probes_common::{
    ConnKey, ConnStart, FlowKey, FlowVal, Hist, SlowConn, SlowRtt, lost, tcp_ctr,
};

use crate::shared::{atomic_add, cfg, count_inserted, count_lost, hist_add, now, o, off, tp_read};

#[map]
static TCP_COUNTERS: PerCpuArray<u64> = PerCpuArray::with_max_entries(tcp_ctr::N, 0);
#[map]
static TCP_RTT_HIST: PerCpuArray<Hist> = PerCpuArray::with_max_entries(1, 0);
#[map]
static TCP_CONNECT_HIST: PerCpuArray<Hist> = PerCpuArray::with_max_entries(1, 0);
#[map]
static TCP_FLOWS: LruHashMap<FlowKey, FlowVal> = LruHashMap::with_max_entries(4096, 0);
#[map]
static TCP_CONNECTING: LruHashMap<u64, ConnStart> = LruHashMap::with_max_entries(8192, 0);
#[map]
static TCP_SLOW_CONNECTS: LruHashMap<ConnKey, SlowConn> = LruHashMap::with_max_entries(4096, 0);
#[map]
static TCP_SLOW_RTT: LruHashMap<FlowKey, SlowRtt> = LruHashMap::with_max_entries(4096, 0);

const AF_INET6: u16 = 10;
const TCP_ESTABLISHED: i32 = 1;
const TCP_SYN_SENT: i32 = 2;
const TCP_SYN_RECV: i32 = 3;
const TCP_CLOSE: i32 = 7;
const IPPROTO_TCP: u16 = 6;

#[inline(always)]
fn tcp_count(which: u32) {
    if let Some(p) = TCP_COUNTERS.get_ptr_mut(which) {
        // SAFETY: a map value (see `shared`'s safety patterns).
        unsafe { *p += 1 };
    }
}

#[tracepoint]
pub fn tcp_retransmit_skb(ctx: TracePointContext) -> u32 {
    if try_tcp_retransmit(&ctx).is_err() {
        count_lost(lost::TCP_READ);
    }
    0
}

#[inline(always)]
fn try_tcp_retransmit(ctx: &TracePointContext) -> Result<(), i64> {
    tcp_count(tcp_ctr::RETRANSMITS);
    let o_ = off();
    let family: u16 = tp_read(ctx, o(&o_.rtx_family))?;
    let mut key = FlowKey {
        family,
        sport: tp_read(ctx, o(&o_.rtx_sport))?,
        dport: tp_read(ctx, o(&o_.rtx_dport))?,
        pad: 0,
        saddr: [0; 16],
        daddr: [0; 16],
    };
    if family == AF_INET6 {
        key.saddr = tp_read(ctx, o(&o_.rtx_saddr_v6))?;
        key.daddr = tp_read(ctx, o(&o_.rtx_daddr_v6))?;
    } else {
        let s: [u8; 4] = tp_read(ctx, o(&o_.rtx_saddr))?;
        let d: [u8; 4] = tp_read(ctx, o(&o_.rtx_daddr))?;
        key.saddr[..4].copy_from_slice(&s);
        key.daddr[..4].copy_from_slice(&d);
    }
    if let Some(v) = TCP_FLOWS.get_ptr_mut(&key) {
        // SAFETY: a map value (see `shared`'s safety patterns).
        atomic_add(unsafe { &mut (*v).retransmits }, 1);
    } else {
        if TCP_FLOWS
            .insert(&key, &FlowVal { retransmits: 1 }, BPF_NOEXIST as u64)
            .is_ok()
        {
            count_inserted(lost::INSERTED_TCP_FLOWS);
        } else if let Some(v) = TCP_FLOWS.get_ptr_mut(&key) {
            // Another CPU inserted first: add to its entry.
            // SAFETY: a map value (see `shared`'s safety patterns).
            atomic_add(unsafe { &mut (*v).retransmits }, 1);
        } else {
            count_lost(lost::TCP_MAP_FULL);
        }
    }
    Ok(())
}

#[tracepoint]
pub fn tcp_probe(ctx: TracePointContext) -> u32 {
    if try_tcp_probe(&ctx).is_err() {
        count_lost(lost::TCP_READ);
    }
    0
}

#[inline(always)]
fn try_tcp_probe(ctx: &TracePointContext) -> Result<(), i64> {
    let o_ = off();
    let srtt_us: u32 = tp_read(ctx, o(&o_.probe_srtt))?;
    if srtt_us == 0 {
        return Ok(());
    }
    tcp_count(tcp_ctr::RTT_SAMPLES);
    if let Some(h) = TCP_RTT_HIST.get_ptr_mut(0) {
        hist_add(h, srtt_us as u64 * 1000);
    }
    if (srtt_us as u64) * 1000 < cfg().slow_rtt_ns {
        return Ok(());
    }
    // A slow flow: remember which, so user space can name its process.
    let family: u16 = tp_read(ctx, o(&o_.probe_family))?;
    let mut key = FlowKey {
        family,
        sport: tp_read(ctx, o(&o_.probe_sport))?,
        dport: tp_read(ctx, o(&o_.probe_dport))?,
        pad: 0,
        saddr: [0; 16],
        daddr: [0; 16],
    };
    // saddr/daddr are sockaddr_in (address at byte 4) or sockaddr_in6 (at byte 8).
    let (at, len) = if family == AF_INET6 { (8, 16) } else { (4, 4) };
    let s: [u8; 16] = tp_read(ctx, o(&o_.probe_saddr) + at)?;
    let d: [u8; 16] = tp_read(ctx, o(&o_.probe_daddr) + at)?;
    let mut i = 0;
    while i < 16 {
        if i < len {
            key.saddr[i] = s[i];
            key.daddr[i] = d[i];
        }
        i += 1;
    }
    if let Some(v) = TCP_SLOW_RTT.get_ptr_mut(&key) {
        // SAFETY: a map value (see `shared`'s safety patterns).
        unsafe {
            atomic_add(&mut (*v).samples, 1);
            atomic_add(&mut (*v).total_us, srtt_us as u64);
            if srtt_us as u64 > (*v).max_us {
                (*v).max_us = srtt_us as u64;
            }
        }
    } else {
        let v = SlowRtt {
            samples: 1,
            total_us: srtt_us as u64,
            max_us: srtt_us as u64,
        };
        if TCP_SLOW_RTT.insert(&key, &v, BPF_NOEXIST as u64).is_ok() {
            count_inserted(lost::INSERTED_TCP_SLOW_RTT);
        } else if let Some(p) = TCP_SLOW_RTT.get_ptr_mut(&key) {
            // Another CPU inserted first: add to its entry.
            // SAFETY: a map value (see `shared`'s safety patterns).
            unsafe {
                atomic_add(&mut (*p).samples, 1);
                atomic_add(&mut (*p).total_us, srtt_us as u64);
            }
        } else {
            count_lost(lost::TCP_MAP_FULL);
        }
    }
    Ok(())
}

#[tracepoint]
pub fn inet_sock_set_state(ctx: TracePointContext) -> u32 {
    if try_set_state(&ctx).is_err() {
        count_lost(lost::TCP_READ);
    }
    0
}

#[inline(always)]
fn try_set_state(ctx: &TracePointContext) -> Result<(), i64> {
    let o_ = off();
    let proto: u16 = tp_read(ctx, o(&o_.state_protocol))?;
    if proto != IPPROTO_TCP {
        return Ok(());
    }
    let sk: u64 = tp_read(ctx, o(&o_.state_skaddr))?;
    let old: i32 = tp_read(ctx, o(&o_.state_old))?;
    let new: i32 = tp_read(ctx, o(&o_.state_new))?;
    if new == TCP_SYN_SENT {
        tcp_count(tcp_ctr::CONNECT_STARTED);
        // connect() runs in the caller's context: remember who connects.
        let start = ConnStart {
            ts: now(),
            tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
            pad: 0,
            comm: bpf_get_current_comm().unwrap_or([0; 16]),
        };
        if TCP_CONNECTING.insert(&sk, &start, 0).is_err() {
            count_lost(lost::TCP_MAP_FULL);
        }
    } else if new == TCP_ESTABLISHED {
        if old == TCP_SYN_SENT {
            tcp_count(tcp_ctr::ACTIVE_OPENS);
            // SAFETY: a map value (see `shared`'s safety patterns), copied out before the
            // entry is removed.
            if let Some(start) = unsafe { TCP_CONNECTING.get(&sk) } {
                let (ts, tgid, comm) = (start.ts, start.tgid, start.comm);
                let lat = now().wrapping_sub(ts);
                // Fails only when another CPU removed it first: nothing is lost.
                let _ = TCP_CONNECTING.remove(&sk);
                if let Some(h) = TCP_CONNECT_HIST.get_ptr_mut(0) {
                    hist_add(h, lat);
                }
                if lat >= cfg().slow_connect_ns {
                    record_slow_connect(ctx, tgid, comm, lat)?;
                }
            } else {
                count_lost(lost::TCP_UNMATCHED_CONNECT);
            }
        } else if old == TCP_SYN_RECV {
            tcp_count(tcp_ctr::PASSIVE_OPENS);
        }
    } else if new == TCP_CLOSE {
        tcp_count(tcp_ctr::CLOSES);
        if old == TCP_SYN_SENT {
            tcp_count(tcp_ctr::CONNECT_FAILED);
            // Fails when the connect began before the probes attached (or was evicted):
            // only its failure is counted, which needs no entry.
            let _ = TCP_CONNECTING.remove(&sk);
        }
    }
    Ok(())
}

#[inline(always)]
fn record_slow_connect(
    ctx: &TracePointContext,
    tgid: u32,
    comm: [u8; 16],
    lat: u64,
) -> Result<(), i64> {
    let o_ = off();
    let family: u16 = tp_read(ctx, o(&o_.state_family))?;
    let mut key = ConnKey {
        tgid,
        family,
        dport: tp_read(ctx, o(&o_.state_dport))?,
        daddr: [0; 16],
    };
    if family == AF_INET6 {
        key.daddr = tp_read(ctx, o(&o_.state_daddr_v6))?;
    } else {
        let d: [u8; 4] = tp_read(ctx, o(&o_.state_daddr))?;
        key.daddr[..4].copy_from_slice(&d);
    }
    if let Some(v) = TCP_SLOW_CONNECTS.get_ptr_mut(&key) {
        // SAFETY: a map value (see `shared`'s safety patterns).
        unsafe {
            atomic_add(&mut (*v).count, 1);
            atomic_add(&mut (*v).total_ns, lat);
            if lat > (*v).max_ns {
                (*v).max_ns = lat;
            }
        }
    } else {
        let v = SlowConn {
            count: 1,
            total_ns: lat,
            max_ns: lat,
            comm,
        };
        if TCP_SLOW_CONNECTS
            .insert(&key, &v, BPF_NOEXIST as u64)
            .is_ok()
        {
            count_inserted(lost::INSERTED_TCP_SLOW_CONNECTS);
        } else if let Some(p) = TCP_SLOW_CONNECTS.get_ptr_mut(&key) {
            // Another CPU inserted first: add to its entry.
            // SAFETY: a map value (see `shared`'s safety patterns).
            unsafe {
                atomic_add(&mut (*p).count, 1);
                atomic_add(&mut (*p).total_ns, lat);
            }
        } else {
            count_lost(lost::TCP_MAP_FULL);
        }
    }
    Ok(())
}
