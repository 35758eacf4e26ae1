"""The examples run as a user would run them: the runbook script and the notebook."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import List

import pytest

import kerno
from conftest import EXAMPLES, INCIDENT, quiet_window

RUNBOOK = EXAMPLES / "runbook.py"


def runbook(*args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run([sys.executable, str(RUNBOOK), *args], capture_output=True, text=True, timeout=120)


def test_runbook_on_the_incident() -> None:
    r = runbook("--from", str(INCIDENT))
    report = kerno.evaluate(kerno.load_signals(INCIDENT))
    assert r.returncode == (2 if report.status == "critical" else 0), r.stderr
    lines: List[str] = r.stdout.rstrip("\n").splitlines()
    assert lines[0].startswith("kerno doctor: api-7")
    assert lines[-1].startswith(f"kerno: {report.status.upper()} on api-7 (10.0 s window)")


def test_runbook_fails_the_step_on_a_critical_finding(tmp_path: pathlib.Path) -> None:
    window = quiet_window()
    api = {"pid": 4121, "comm": "api"}
    window["syscalls"] = {
        "total_calls": 1000, "total_errors": 900,
        "syscalls": [{
            "nr": 257, "name": "openat", "wait": False, "count": 1000, "errors": 900,
            "errnos": {"EMFILE": 900}, "latency": kerno.Histogram([3_000] * 1000),
            "top_errors": [{"process": api, "errno": "EMFILE", "count": 900}],
        }],
    }
    path = tmp_path / "emfile.json"
    kerno.Signals.from_dict(window).save(path)
    r = runbook("--from", str(path))
    assert r.returncode == 2, r.stdout + r.stderr
    last = r.stdout.rstrip("\n").splitlines()[-1]
    assert last.startswith("kerno: CRITICAL on quiet (5.0 s window): ")
    assert "[open-resource-failures] api (pid 4121): 900 opens failed with EMFILE" in last

    r = runbook("--from", str(path), "--json")
    body = r.stdout.rstrip("\n").rsplit("\n", 1)[0]
    assert json.loads(body)["status"] == "critical"


def test_runbook_passes_a_quiet_window(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "quiet.json"
    kerno.Signals.from_dict(quiet_window()).save(path)
    r = runbook("--from", str(path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.rstrip("\n").splitlines()[-1] == "kerno: HEALTHY on quiet (5.0 s window): 0 critical, 0 warning, 0 info"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--from", "/nonexistent/incident.json"], "No such file or directory: '/nonexistent/incident.json'"),
        (["--from", str(INCIDENT), "--threshold", "bogus=1"], "thresholds.bogus: no such threshold"),
        (["--from", str(INCIDENT), "--threshold", "syscall_error_pct=250"], "thresholds.syscall_error_pct: out of range: use 0 to 100, got 250"),
        (["--duration", "0.2"], "invalid value for duration"),
    ],
)
def test_runbook_errors_exit_1_with_the_reason(args: List[str], message: str) -> None:
    r = runbook(*args)
    assert r.returncode == 1
    assert message in r.stderr
    assert "Traceback" not in r.stderr


def test_notebook_runs_headless() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(EXAMPLES / "incident.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(EXAMPLES)}}
    ).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "api (pid 4121): 25800 of 65536 descriptors, +418/s, limit in about 95 s" in text
    assert "p50 4.6 ms, p99 620.8 ms, 28 calls over 100 ms" in text
    assert "[slow-fsync-tail]" not in text and "rule:     slow-fsync-tail" in text
    assert any("image/png" in o.get("data", {}) for o in outputs), "the latency plot is drawn"
    assert any("text/html" in o.get("data", {}) for o in outputs), "the report shows as HTML"
