#!/usr/bin/env python3
"""Write incident.json: the saved window the notebook analyses.

The window is built by hand, deterministically, so the file can be regenerated and checked
(tests compare it byte for byte): an API process leaking file descriptors towards its limit
while fsync on the database's disk is slow. It is saved with kerno's own writer, so it is
exactly what `kerno doctor --save` would write for such a window.

    python examples/python/make_incident.py [OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence, Tuple

import kerno

US = 1_000
MS = 1_000_000
GIB = 1 << 30


def histogram(parts: Sequence[Tuple[int, int, int]]) -> kerno.Histogram:
    """`n` samples spread geometrically over [lo, hi) for each (lo, hi, n)."""
    h = kerno.Histogram()
    for lo, hi, n in parts:
        points = 32
        for i in range(points):
            value = int(lo * (hi / lo) ** (i / points))
            share = n // points + (1 if i < n % points else 0)
            if share:
                h = h.with_value(value, share)
    return h


def process(pid: int, comm: str, cgroup: str) -> Dict[str, Any]:
    return {"pid": pid, "comm": comm, "cgroup": cgroup}


API = process(4121, "api", "/system.slice/api.service")
DB = process(2210, "postgres", "/system.slice/postgresql.service")


def syscall(
    nr: int, name: str, count: int, latency: kerno.Histogram, wait: bool = False, **rest: Any
) -> Dict[str, Any]:
    stat: Dict[str, Any] = {
        "nr": nr,
        "name": name,
        "wait": wait,
        "count": count,
        "errors": 0,
        "errnos": {},
        "latency": latency,
        "top_errors": [],
        "top_slow": [],
    }
    stat.update(rest)
    return stat


def build() -> kerno.Signals:
    syscalls: List[Dict[str, Any]] = [
        syscall(0, "read", 120_000, histogram([(800, 20 * US, 119_000), (20 * US, 2 * MS, 1_000)])),
        syscall(232, "epoll_wait", 9_000, histogram([(50 * US, 500 * MS, 9_000)]), wait=True),
        syscall(
            257,
            "openat",
            4_420,
            histogram([(2 * US, 40 * US, 4_400), (40 * US, 900 * US, 20)]),
            errors=120,
            errnos={"ENOENT": 120},
            top_errors=[{"process": API, "errno": "ENOENT", "count": 120}],
        ),
        syscall(3, "close", 130, histogram([(1 * US, 10 * US, 130)])),
        syscall(
            74,
            "fsync",
            412,
            histogram([(2 * MS, 9 * MS, 340), (9 * MS, 60 * MS, 44), (250 * MS, 900 * MS, 28)]),
            top_slow=[{"process": DB, "count": 72, "mean_ns": 310 * MS, "max_ns": 899 * MS}],
        ),
    ]
    syscalls.sort(key=lambda s: -int(s["count"]))
    total = sum(int(s["count"]) for s in syscalls)
    errors = sum(int(s["errors"]) for s in syscalls)
    data: Dict[str, Any] = {
        "schema": kerno.SCHEMA_VERSION,
        "host": {
            "hostname": "api-7",
            "kernel": "6.18.0-example",
            "cpus": 8,
            "memory_bytes": 16 * GIB,
            "environment": "systemd",
        },
        "window": {"start_unix_ms": 1_796_000_000_000, "duration_ms": 10_000},
        "collector_pid": 3001,
        "degraded": [],
        "lost": {
            "syscall_samples": 0,
            "sched_samples": 0,
            "map_full": 0,
            "block_unmatched": 3,
            "oom_kills": 0,
        },
        "syscalls": {"total_calls": total, "total_errors": errors, "syscalls": syscalls},
        "tcp": {
            "retransmits": 118,
            "segments_out": 180_000,
            "retrans_segs": 120,
            "netns_count": 1,
            "rtt": histogram([(200 * US, 2 * MS, 60_000)]),
            "connect_latency": histogram([(300 * US, 3 * MS, 340)]),
            "active_opens": 340,
            "passive_opens": 1_200,
            "closes": 1_500,
            "connect_failed": 0,
            "top_flows": [],
        },
        "oom": {"kills": [], "vmstat_oom_kills": 0},
        "disk": {
            "devices": [
                {
                    "dev": "253:0",
                    "name": "vda",
                    "ops": [
                        {
                            "op": "write",
                            "count": 2_400,
                            "bytes": 98_304_000,
                            "errors": 0,
                            "latency": histogram([(1 * MS, 5 * MS, 2_300), (5 * MS, 120 * MS, 100)]),
                        },
                        {
                            "op": "flush",
                            "count": 410,
                            "bytes": 0,
                            "errors": 0,
                            "latency": histogram([(20 * MS, 80 * MS, 330), (200 * MS, 880 * MS, 80)]),
                        },
                        {
                            "op": "read",
                            "count": 800,
                            "bytes": 26_214_400,
                            "errors": 0,
                            "latency": histogram([(500 * US, 3 * MS, 800)]),
                        },
                    ],
                }
            ]
        },
        "sched": {
            "runq_delay": histogram([(5 * US, 50 * US, 51_000), (50 * US, 2 * MS, 1_000)]),
            "top_delayed": [],
            "psi_cpu_some_avg10": 1.2,
        },
        "fds": {
            "processes": [
                {
                    "process": API,
                    "opens": 4_300,
                    "closes": 120,
                    "open_fds": 25_800,
                    "soft_limit": 65_536,
                    "net_per_interval": [421, 415, 418, 420, 416, 419, 417, 418, 414, 422],
                }
            ]
        },
        "memory": {
            "total_bytes": 16 * GIB,
            "available_start_bytes": 9_800_000_000,
            "available_end_bytes": 9_750_000_000,
            "psi_some_avg10": 0.0,
            "psi_full_avg10": 0.0,
            "cgroups": [
                {
                    "path": "/system.slice/api.service",
                    "version": 2,
                    "usage_start_bytes": 1_180_000_000,
                    "usage_bytes": 1_200_000_000,
                    "limit_bytes": 2 * GIB,
                    "oom_kills": 0,
                    "processes": [API],
                }
            ],
        },
    }
    return kerno.Signals.from_dict(data)


def main(argv: List[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).with_name("incident.json")
    build().save(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
