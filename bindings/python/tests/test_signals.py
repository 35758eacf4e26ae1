"""Loading, inspecting and saving windows: no root, no kernel."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import pathlib
from typing import Any, Dict

import pytest

import kerno
from conftest import EXAMPLES, INCIDENT, quiet_window


def test_incident_loads_with_every_domain(incident: kerno.Signals) -> None:
    assert incident.schema == kerno.SCHEMA_VERSION
    assert incident.host["hostname"] == "api-7"
    assert incident.window == {"start_unix_ms": 1_796_000_000_000, "duration_ms": 10_000}
    assert incident.duration_secs == 10.0
    assert incident.collector_pid == 3001
    assert incident.degraded == []
    assert incident.lost["block_unmatched"] == 3
    for domain in ["syscalls", "fds", "sched", "disk", "tcp", "oom", "memory"]:
        assert incident.observed(domain), domain
    assert not incident.observed("gpu")
    assert incident.oom == {"kills": [], "vmstat_oom_kills": 0}
    assert incident.fds is not None and incident.fds["processes"][0]["process"]["comm"] == "api"
    assert incident.custom == {}


def test_syscall_lookup(incident: kerno.Signals) -> None:
    openat = incident.syscall("openat")
    assert openat is not None
    assert (openat["count"], openat["errors"], openat["errnos"]) == (4420, 120, {"ENOENT": 120})
    assert openat["top_errors"][0]["process"]["pid"] == 4121
    assert incident.syscall("no_such_call") is None
    assert kerno.Signals.from_dict({**quiet_window(), "syscalls": None}).syscall("read") is None


def test_histograms_by_name(incident: kerno.Signals) -> None:
    hs = incident.histograms()
    assert set(hs) == {
        "syscalls.read", "syscalls.epoll_wait", "syscalls.openat", "syscalls.close", "syscalls.fsync",
        "tcp.rtt", "tcp.connect_latency", "sched.runq_delay",
        "disk.vda.write", "disk.vda.flush", "disk.vda.read",
    }
    fsync = hs["syscalls.fsync"]
    assert fsync.count == 412 == incident.syscall("fsync")["count"]  # type: ignore[index]
    p50, p99 = fsync.percentile(50), fsync.percentile(99)
    assert p50 is not None and p99 is not None
    assert 2_000_000 <= p50 <= 9_000_000, "most fsyncs take a few ms"
    assert 250_000_000 <= p99 <= 900_000_000, "the tail is hundreds of ms"
    assert sum(c for _, _, c in fsync.buckets()) == 412
    # The JSON shape carries the same numbers the object computes.
    d = fsync.to_dict()
    assert (d["count"], d["p99_ns"]) == (412, p99)


def test_histogram_percentiles_are_close_to_exact() -> None:
    samples = [1_000 + 37 * i for i in range(10_000)]
    h = kerno.Histogram(samples)
    assert h.count == len(h) == 10_000
    for q in (50, 90, 99):
        exact = samples[math.ceil(q / 100 * len(samples)) - 1]
        got = h.percentile(q)
        assert got is not None and abs(got - exact) / exact < 0.05, (q, got, exact)
    assert h.max is not None and h.max >= samples[-1]
    assert h.mean is not None and abs(h.mean - sum(samples) / len(samples)) / h.mean < 0.05
    assert h.count_above(0) == 10_000


def test_histogram_is_a_value() -> None:
    empty = kerno.Histogram()
    assert empty.count == 0 and not empty
    assert empty.percentile(99) is None and empty.max is None and empty.mean is None
    assert empty.buckets() == []
    one = empty.with_value(5_000, n=3)
    assert empty.count == 0, "with_value returns a new histogram"
    assert one.count == 3 and one == kerno.Histogram([5_000, 5_000, 5_000])
    assert one.merged(one).count == 6
    with pytest.raises(ValueError, match="percentile"):
        one.percentile(0)
    with pytest.raises(ValueError, match="percentile"):
        one.percentile(101)
    with pytest.raises(OverflowError):
        kerno.Histogram([-1])
    assert "count=3" in repr(one)


def test_dict_and_json_round_trip(incident: kerno.Signals) -> None:
    d = incident.to_dict()
    assert kerno.Signals.from_dict(d) == incident
    assert kerno.Signals.from_json(incident.to_json()) == incident
    assert kerno.parse_signals(incident.to_json()) == incident
    assert json.loads(incident.to_json()) == d
    assert "api-7" in repr(incident)


def test_save_writes_the_cli_format(incident: kerno.Signals, tmp_path: pathlib.Path) -> None:
    out = tmp_path / "again.json"
    incident.save(out)
    assert out.read_text() == INCIDENT.read_text()
    assert kerno.load_signals(str(out)) == incident
    assert [p.name for p in tmp_path.iterdir()] == ["again.json"], "no temporary file left behind"
    with pytest.raises(FileNotFoundError):
        incident.save(tmp_path / "no" / "dir" / "x.json")


def test_a_json_report_is_a_window_too(incident: kerno.Signals, tmp_path: pathlib.Path) -> None:
    report_file = tmp_path / "report.json"
    report_file.write_text(kerno.evaluate(incident).to_json())
    assert kerno.load_signals(report_file) == incident


def test_shipped_incident_is_reproducible(tmp_path: pathlib.Path) -> None:
    spec = importlib.util.spec_from_file_location("make_incident", EXAMPLES / "make_incident.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "incident.json"
    assert module.main(["make_incident.py", str(out)]) == 0
    assert out.read_bytes() == INCIDENT.read_bytes(), "re-run examples/python/make_incident.py"


def test_missing_file_is_file_not_found(tmp_path: pathlib.Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(FileNotFoundError) as e:
        kerno.load_signals(missing)
    assert e.value.filename == str(missing)
    with pytest.raises(IsADirectoryError):
        kerno.load_signals(tmp_path)


def write(tmp_path: pathlib.Path, text: str) -> pathlib.Path:
    p = tmp_path / "bad.json"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    "mutate, expect",
    [
        (lambda d: d.pop("schema"), "schema"),
        (lambda d: d.update(schema=99), "schema 99"),
        (lambda d: d.update(surprise=1), "surprise"),
        (lambda d: d.pop("collector_pid"), "collector_pid"),
        (lambda d: d["window"].update(duration_ms="ten"), "invalid type"),
    ],
)
def test_malformed_snapshot_is_value_error_naming_the_problem(
    tmp_path: pathlib.Path, incident_dict: Dict[str, Any], mutate: Any, expect: str
) -> None:
    mutate(incident_dict)
    path = write(tmp_path, json.dumps(incident_dict))
    with pytest.raises(ValueError, match=expect) as e:
        kerno.load_signals(path)
    assert str(path) in str(e.value), "the message names the file"
    with pytest.raises(ValueError, match=expect):
        kerno.Signals.from_dict(incident_dict)


def test_not_json_at_all(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValueError, match="line 1"):
        kerno.load_signals(write(tmp_path, "{not json"))
    with pytest.raises(ValueError, match="not a Kerno signals snapshot"):
        kerno.parse_signals("[]")


def test_from_dict_rejects_values_json_cannot_hold() -> None:
    window = quiet_window()
    window["sched"]["psi_cpu_some_avg10"] = float("nan")
    with pytest.raises(ValueError, match=r"signals\['sched'\]\['psi_cpu_some_avg10'\]: NaN is not a finite number"):
        kerno.Signals.from_dict(window)
    window = quiet_window()
    window["custom"] = {"x": {1, 2}}
    with pytest.raises(TypeError, match=r"signals\['custom'\]\['x'\].*set"):
        kerno.Signals.from_dict(window)
    window = quiet_window()
    window["custom"] = {"x": 1 << 70}
    with pytest.raises(ValueError, match="64 bits"):
        kerno.Signals.from_dict(window)


def test_custom_collector_data_survives(tmp_path: pathlib.Path) -> None:
    window = quiet_window()
    window["custom"] = {"queue": {"depth": 12, "names": ["a", "b"], "ok": True, "ratio": 0.5, "none": None}}
    s = kerno.Signals.from_dict(window)
    assert s.custom == window["custom"]
    assert s.observed("queue")
    s.save(tmp_path / "c.json")
    assert kerno.load_signals(os.fspath(tmp_path / "c.json")).custom == window["custom"]


def test_capacity_domains_read_back() -> None:
    window = {
        **quiet_window(),
        "filesystem": None,
        "pids": {
            "pid_max": 32768,
            "threads_max": 192724,
            "threads_start": 160,
            "threads": 168,
            "cgroups": [
                {"path": "/kerno", "version": 1, "current_start": 60, "current": 64,
                 "limit": 64, "fork_failures": 9}
            ],
        },
        "conntrack": {"max": 262144, "namespaces": []},
    }
    s = kerno.Signals.from_dict(window)
    assert s.observed("pids") and s.observed("conntrack") and not s.observed("filesystem")
    assert s.filesystem is None
    assert s.pids is not None and s.pids["cgroups"][0]["fork_failures"] == 9
    assert s.conntrack == {"max": 262144, "namespaces": []}
    report = kerno.evaluate(s)
    assert [f.rule for f in report.findings] == ["pid-exhaustion"]
