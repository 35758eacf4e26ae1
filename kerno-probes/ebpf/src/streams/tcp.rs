//! `kerno watch tcp`: retransmitted segments (`tcp:tcp_retransmit_skb`) with the flow, its
//! state and its last smoothed RTT (kept per socket from `tcp:tcp_probe`), and connection
//! state changes (`sock:inet_sock_set_state`), IPv4 and IPv6, one [`TcpEvent`] each.

use aya_ebpf::{
    helpers::{bpf_get_current_comm, bpf_get_current_pid_tgid},
    macros::{map, tracepoint},
    maps::{LruHashMap, RingBuf},
    programs::TracePointContext,
};
use kerno_probes_common::{TcpEvent, stream_flag, stream_stat, tcp_event};

use crate::shared::{count, emit, filter, now, o, tp, tp_read};

/// The last smoothed RTT (µs) seen per socket address.
#[map]
static TCP_STREAM_SRTT: LruHashMap<u64, u32> = LruHashMap::with_max_entries(8192, 0);
#[map]
static TCP_EVENTS: RingBuf = RingBuf::with_byte_size(256 * 1024, 0);

const AF_INET6: u16 = 10;
const IPPROTO_TCP: u16 = 6;

#[tracepoint]
pub fn stream_tcp_probe(ctx: TracePointContext) -> u32 {
    let t = tp();
    if let (Ok(sk), Ok(srtt)) = (
        tp_read::<u64>(&ctx, o(&t.probe_skaddr)),
        tp_read::<u32>(&ctx, o(&t.probe_srtt)),
    ) {
        // A cache of the socket's last RTT, shown beside its next event: a failed insert
        // loses that annotation only, not an event.
        let _ = TCP_STREAM_SRTT.insert(&sk, &srtt, 0);
    }
    0
}

#[inline(always)]
fn blank() -> TcpEvent {
    TcpEvent {
        ts_ns: now(),
        kind: 0,
        state: 0,
        old_state: 0,
        srtt_us: 0,
        pid: (bpf_get_current_pid_tgid() >> 32) as u32,
        family: 0,
        sport: 0,
        dport: 0,
        pad: [0; 3],
        saddr: [0; 16],
        daddr: [0; 16],
        comm: bpf_get_current_comm().unwrap_or([0; 16]),
    }
}

#[tracepoint]
pub fn stream_tcp_retransmit_skb(ctx: TracePointContext) -> u32 {
    let _ = try_retransmit(&ctx);
    0
}

#[inline(always)]
fn try_retransmit(ctx: &TracePointContext) -> Result<(), i64> {
    let f = filter();
    if f.flags & stream_flag::TCP_RETRANSMITS == 0 {
        return Ok(());
    }
    let t = tp();
    let sk: u64 = tp_read(ctx, o(&t.rtx_skaddr))?;
    // SAFETY: a map value (see `shared`'s safety patterns), copied out.
    let srtt = unsafe { TCP_STREAM_SRTT.get(&sk) }.copied().unwrap_or(0);
    if (srtt as u64) * 1000 < f.min_ns {
        count(stream_stat::FILTERED);
        return Ok(());
    }
    let mut ev = blank();
    ev.kind = tcp_event::RETRANSMIT;
    ev.srtt_us = srtt;
    ev.state = tp_read::<i32>(ctx, o(&t.rtx_state))? as u32;
    ev.family = tp_read(ctx, o(&t.rtx_family))?;
    ev.sport = tp_read(ctx, o(&t.rtx_sport))?;
    ev.dport = tp_read(ctx, o(&t.rtx_dport))?;
    if ev.family == AF_INET6 {
        ev.saddr = tp_read(ctx, o(&t.rtx_saddr_v6))?;
        ev.daddr = tp_read(ctx, o(&t.rtx_daddr_v6))?;
    } else {
        let s: [u8; 4] = tp_read(ctx, o(&t.rtx_saddr))?;
        let d: [u8; 4] = tp_read(ctx, o(&t.rtx_daddr))?;
        ev.saddr[..4].copy_from_slice(&s);
        ev.daddr[..4].copy_from_slice(&d);
    }
    emit(&TCP_EVENTS, &ev);
    Ok(())
}

#[tracepoint]
pub fn stream_inet_sock_set_state(ctx: TracePointContext) -> u32 {
    let _ = try_set_state(&ctx);
    0
}

#[inline(always)]
fn try_set_state(ctx: &TracePointContext) -> Result<(), i64> {
    let f = filter();
    let t = tp();
    let proto: u16 = tp_read(ctx, o(&t.st_protocol))?;
    if proto != IPPROTO_TCP {
        return Ok(());
    }
    let sk: u64 = tp_read(ctx, o(&t.st_skaddr))?;
    let new: i32 = tp_read(ctx, o(&t.st_new))?;
    // A closed socket's RTT is of no more use.
    if new == 7 {
        let _ = TCP_STREAM_SRTT.remove(&sk);
    }
    if f.flags & stream_flag::TCP_STATES == 0 {
        return Ok(());
    }
    let mut ev = blank();
    ev.kind = tcp_event::STATE;
    ev.state = new as u32;
    ev.old_state = tp_read::<i32>(ctx, o(&t.st_old))? as u32;
    // SAFETY: a map value (see `shared`'s safety patterns), copied out.
    ev.srtt_us = unsafe { TCP_STREAM_SRTT.get(&sk) }.copied().unwrap_or(0);
    ev.family = tp_read(ctx, o(&t.st_family))?;
    ev.sport = tp_read(ctx, o(&t.st_sport))?;
    ev.dport = tp_read(ctx, o(&t.st_dport))?;
    if ev.family == AF_INET6 {
        ev.saddr = tp_read(ctx, o(&t.st_saddr_v6))?;
        ev.daddr = tp_read(ctx, o(&t.st_daddr_v6))?;
    } else {
        let s: [u8; 4] = tp_read(ctx, o(&t.st_saddr))?;
        let d: [u8; 4] = tp_read(ctx, o(&t.st_daddr))?;
        ev.saddr[..4].copy_from_slice(&s);
        ev.daddr[..4].copy_from_slice(&d);
    }
    emit(&TCP_EVENTS, &ev);
    Ok(())
}
