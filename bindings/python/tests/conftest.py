"""Shared fixtures. Tests named `test_root_*` (marked `root`) load the eBPF probes for real."""

from __future__ import annotations

import copy
import os
import pathlib
from typing import Any, Dict, List

import pytest

import kerno

REPO = pathlib.Path(__file__).resolve().parents[3]
EXAMPLES = REPO / "examples" / "python"
INCIDENT = EXAMPLES / "incident.json"


def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    # Without root the probes cannot load: say so in the skip reason. Under CI they run
    # regardless, so a CI that lost its root fails loudly instead of skipping quietly.
    if os.geteuid() == 0 or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason="needs root to load the eBPF probes (runs in CI)")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def incident() -> kerno.Signals:
    return kerno.load_signals(INCIDENT)


@pytest.fixture
def incident_dict(incident: kerno.Signals) -> Dict[str, Any]:
    return copy.deepcopy(incident.to_dict())


def quiet_window() -> Dict[str, Any]:
    """A window where every domain was observed and nothing happened."""
    return {
        "schema": kerno.SCHEMA_VERSION,
        "host": {"hostname": "quiet", "kernel": "6.18.0", "cpus": 2, "memory_bytes": 1 << 30, "environment": "bare-metal"},
        "window": {"start_unix_ms": 1_796_000_000_000, "duration_ms": 5_000},
        "collector_pid": 1,
        "syscalls": {"total_calls": 0, "total_errors": 0, "syscalls": []},
        "tcp": {
            "retransmits": 0, "segments_out": 0, "retrans_segs": 0, "netns_count": 1,
            "rtt": {"buckets": []}, "connect_latency": {"buckets": []},
            "active_opens": 0, "passive_opens": 0, "closes": 0, "connect_failed": 0,
        },
        "oom": {"kills": [], "vmstat_oom_kills": 0},
        "disk": {"devices": []},
        "sched": {"runq_delay": {"buckets": []}},
        "fds": {"processes": []},
        "memory": {
            "total_bytes": 1 << 30, "available_start_bytes": 1 << 29, "available_end_bytes": 1 << 29,
            "psi_some_avg10": 0.0, "psi_full_avg10": 0.0, "cgroups": [],
        },
        "filesystem": {"filesystems": []},
        "pids": {"pid_max": 32768, "threads_max": 192724, "threads_start": 100, "threads": 100, "cgroups": []},
        "conntrack": {"max": 262144, "namespaces": []},
    }
