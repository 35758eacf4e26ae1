"""Live collection: these load the eBPF probes and need root (named test_root_*)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from typing import Iterator, List

import pytest

import kerno
from conftest import EXAMPLES

root = pytest.mark.root

# Opens a path that cannot exist, as fast as it can: every call is a failed openat (ENOENT).
FAILING_OPENS = textwrap.dedent(
    """
    import os, sys
    print("ready", flush=True)
    while True:
        try:
            os.open("/nonexistent/kerno-test-%d" % os.getpid(), os.O_RDONLY)
        except OSError:
            pass
    """
)


@pytest.fixture
def failing_opens() -> Iterator[subprocess.Popen[str]]:
    p = subprocess.Popen([sys.executable, "-c", FAILING_OPENS], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline() == "ready\n"
        yield p
    finally:
        p.kill()
        p.wait()


@root
def test_root_doctor_sees_the_workload(failing_opens: subprocess.Popen[str]) -> None:
    report = kerno.doctor(duration=2)
    s = report.signals
    assert s.collector_pid == os.getpid()
    assert 1.5 <= s.duration_secs <= 4.0
    assert s.host["hostname"] == os.uname().nodename
    assert s.host["kernel"] == os.uname().release
    for domain in ["syscalls", "fds", "sched", "disk", "tcp", "oom", "memory"]:
        assert s.observed(domain) or any(d["domain"] == domain for d in s.degraded), domain
    openat = s.syscall("openat")
    assert openat is not None, "the workload's openat calls were counted"
    mine = [e for e in openat["top_errors"] if e["process"]["pid"] == failing_opens.pid]
    assert mine, f"the workload is among the top openat failures: {openat['top_errors']}"
    assert mine[0]["errno"] == "ENOENT"
    # A Python loop manages tens of thousands of opens a second even on a busy machine.
    assert mine[0]["count"] >= 10_000
    assert openat["count"] >= openat["errors"]
    # Per-syscall totals and per-process records are separate maps read a moment apart, so
    # they agree to a fraction of a percent, not exactly.
    assert openat["errors"] >= 0.99 * mine[0]["count"]
    assert openat["errnos"]["ENOENT"] >= 0.99 * mine[0]["count"]
    assert abs(s.histograms()["syscalls.openat"].count - openat["count"]) <= 0.01 * openat["count"]
    text = str(report)
    assert text.startswith("kerno doctor: ") and "ok  syscalls" in text


@root
def test_root_doctor_counts_move_with_the_workload(failing_opens: subprocess.Popen[str]) -> None:
    with_load = kerno.doctor(duration=1.5, domains=["syscalls"]).signals.syscall("openat")
    failing_opens.kill()
    failing_opens.wait()
    without = kerno.doctor(duration=1.5, domains=["syscalls"]).signals.syscall("openat")
    assert with_load is not None
    quiet_errors = without["errnos"].get("ENOENT", 0) if without else 0
    assert with_load["errnos"]["ENOENT"] > 10 * max(quiet_errors, 100)


@root
def test_root_domains_limit_what_is_observed() -> None:
    report = kerno.doctor(duration=1, domains=["syscalls", "memory"])
    s = report.signals
    assert s.observed("syscalls") and s.observed("memory")
    assert not s.observed("tcp") and not s.observed("disk")
    assert report.status != "healthy", "a report never calls unobserved domains healthy"
    assert {d["domain"]: d["observed"] for d in report.domains}["tcp"] is False


@root
def test_root_custom_rule_sees_the_live_window(failing_opens: subprocess.Popen[str]) -> None:
    seen: List[kerno.Signals] = []

    @kerno.rule("sees-openat")
    def sees(s: kerno.Signals) -> List[kerno.Finding]:
        seen.append(s)
        o = s.syscall("openat")
        return [kerno.Finding(rule="sees-openat", severity="info", title=f"{o['errors'] if o else 0} failed opens")]

    report = kerno.doctor(duration=1, rules=[sees], domains=["syscalls"])
    assert seen == [report.signals]
    assert [f.rule for f in report.findings if f.rule == "sees-openat"] == ["sees-openat"]


@root
def test_root_doctor_releases_the_gil() -> None:
    result: List[kerno.Report] = []
    t = threading.Thread(target=lambda: result.append(kerno.doctor(duration=2, domains=["syscalls"])))
    t.start()
    ticks = 0
    while t.is_alive():
        ticks += 1
        time.sleep(0.01)
    t.join()
    assert result, "doctor finished in its thread"
    # ~2.5 s of collection at 100 ticks/s; a held GIL would stall this loop for all of it.
    assert ticks >= 100, ticks


INTERRUPTED = textwrap.dedent(
    """
    import sys, time, kerno
    print("collecting", flush=True)
    start = time.monotonic()
    try:
        kerno.doctor(duration=60)
    except KeyboardInterrupt:
        print("interrupted after %.1f s" % (time.monotonic() - start), flush=True)
        sys.exit(130)
    print("not interrupted")
    """
)


@root
def test_root_ctrl_c_interrupts_collection() -> None:
    p = subprocess.Popen([sys.executable, "-c", INTERRUPTED], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline() == "collecting\n"
        time.sleep(3)  # past the probe load, inside the window
        sent = time.monotonic()
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=20)
        took = time.monotonic() - sent
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 130, out
    assert out.startswith("interrupted after"), out
    assert took < 5, f"Ctrl-C took {took:.1f} s to stop collection"


def test_doctor_without_privileges_is_permission_error() -> None:
    if os.geteuid() != 0:
        with pytest.raises(PermissionError, match="not permitted to load eBPF probes"):
            kerno.doctor(duration=1)
        return
    # As root: the same call in a process that has dropped every capability.
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop capabilities")
    code = textwrap.dedent(
        """
        import kerno
        try:
            kerno.doctor(duration=1)
        except PermissionError as e:
            print("PermissionError:", e)
        """
    )
    r = subprocess.run(
        [setpriv, "--bounding-set=-all", "--inh-caps=-all", "--", sys.executable, "-c", code],
        capture_output=True, text=True, timeout=60,
    )
    assert r.stdout.startswith("PermissionError: not permitted to load eBPF probes: missing CAP_BPF and CAP_PERFMON"), r.stdout + r.stderr


@pytest.mark.parametrize("duration", [0.5, 0, -1, 301, float("nan"), float("inf")])
def test_doctor_window_is_checked_first(duration: float) -> None:
    with pytest.raises(ValueError, match="duration"):
        kerno.doctor(duration=duration)


def test_doctor_unknown_domain_is_value_error() -> None:
    with pytest.raises(ValueError, match='unknown domain "gpu"'):
        kerno.doctor(duration=1, domains=["gpu"])


@root
def test_root_runbook_collects() -> None:
    r = subprocess.run(
        [sys.executable, str(EXAMPLES / "runbook.py"), "--duration", "1"], capture_output=True, text=True, timeout=120
    )
    assert r.returncode in (0, 2), r.stderr
    last = r.stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith("kerno: ") and f"on {os.uname().nodename} (" in last
    assert (r.returncode == 2) == last.startswith("kerno: CRITICAL")


@root
def test_root_trace_syscalls_yields_the_failed_opens_of_one_process() -> None:
    """The syscall stream as an iterator: exactly one process's failed opens, as dicts."""
    script = textwrap.dedent(
        """
        import os, sys
        sys.stdin.readline()
        for _ in range(200):
            try:
                os.open("/nonexistent/kerno-py-stream", os.O_RDONLY)
            except OSError:
                pass
        """
    )
    p = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, text=True)
    try:
        with kerno.trace_syscalls(pid=p.pid, syscalls=["openat"], errors=True, duration=5) as t:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
            seen = []
            for ev in t:
                seen.append(ev)
                if len(seen) == 200:
                    break
            summary = t.summary()
        assert len(seen) == 200
        assert all(e["pid"] == p.pid and e["syscall"] == "openat" for e in seen)
        assert all(e["errno"] == "ENOENT" and e["ret"] == -2 for e in seen)
        assert summary["shown"] == 200 and summary["lost"] == 0
    finally:
        p.kill()
        p.wait()


def test_trace_syscalls_refuses_bad_filters() -> None:
    with pytest.raises(ValueError, match="unknown syscall"):
        kerno.trace_syscalls(syscalls=["frobnicate"])
    with pytest.raises(ValueError, match="min_latency_ms"):
        kerno.trace_syscalls(min_latency_ms=-1)
