#!/usr/bin/env python3
"""Unit tests of scripts/vmtest/check.py on hand-made guest logs (no qemu, no root):
a complete run passes, and each kind of wrong result fails its check.

    python3 scripts/vmtest/test_check.py
"""

import copy
import json
import sys
import tempfile
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import check  # noqa: E402

TPS = ["tp_btf/sys_enter", "sched:sched_switch", "tcp:tcp_probe"]
PID = 117


def good():
    """The sections of a run where everything worked, as the guest writes them."""
    doctor = {
        "status": "healthy",
        "domains": [{"domain": d, "observed": True} for d in
                    ["syscalls", "fds", "sched", "disk", "tcp", "oom", "memory", "filesystem", "pids", "conntrack"]],
        "signals": {
            "syscalls": {"syscalls": [{"name": "openat", "count": 400, "errors": 211, "top_errors": [
                {"process": {"pid": PID}, "errno": "ENOENT", "count": 211}]}]},
            "fds": {"processes": [{"process": {"pid": PID}, "opens": 157, "closes": 100, "open_fds": 60,
                                   "soft_limit": 1024, "net_per_interval": [0, 57]}]},
        },
    }
    ready = {"ready": True, "status": "ready", "degraded": [], "domains": [
        {"domain": "syscalls", "programs": ["sys_enter"], "state": "attached"},
        {"domain": "sched", "programs": ["sched_switch"], "state": "attached"},
        {"domain": "tcp", "programs": ["tcp_probe"], "state": "attached"}]}
    return {
        "uname": (0, "6.1.0-57-amd64"),
        "btf": (0, "/sys/kernel/btf/vmlinux: 4360537 bytes"),
        "events": (0, "sched:sched_switch\ntcp:tcp_probe"),
        "btf_trace": (0, "sys_enter\nsys_exit"),
        "features": (0, "present /proc/net/stat/nf_conntrack"),
        "preflight": (0, json.dumps({"ok": True, "passed": 3, "warnings": 0, "checks": [
            {"name": f"tracepoint {t}", "verdict": "pass"} for t in TPS]})),
        "doctor": (0, json.dumps(doctor)),
        "workload": (0, f"pid={PID}\nfds=60\nsoft_limit=1024\nready failing=211 succeeding=100 leaked=57\ndone"),
        "readyz": (0, "status=200 polls=3\n" + json.dumps(ready)),
        "running-prog": (0, json.dumps([{"id": 1, "name": "sys_enter"}, {"id": 2, "name": "sched_switch"},
                                        {"id": 3, "name": "tcp_probe"}])),
        "running-link": (0, json.dumps([{"prog_id": 1, "type": "raw_tracepoint", "tp_name": "sys_enter"},
                                        {"prog_id": 2, "type": "perf_event"}, {"prog_id": 3, "type": "perf_event"}])),
        "running-perf": (0, "[]"),
        "start": (0, "agent stopped"),
        "stopped-prog": (0, "[]"), "stopped-link": (0, "[]"), "stopped-perf": (0, "[]"), "stopped-map": (0, "[]"),
    }


def judge(secs, done=True):
    with tempfile.TemporaryDirectory() as d:
        lines = [f"{check.MARK} guest up"]
        for name, (rc, body) in secs.items():
            lines += [f"{check.MARK} begin {name}", body, "", f"{check.MARK} end {name} rc={rc}"]
        if done:
            lines.append(f"{check.MARK} guest done")
        (Path(d) / "results.log").write_text("\r\n".join(lines) + "\r\n")
        (Path(d) / "seconds").write_text("30\n")
        r = check.Run(d)
        r.judge()
        return {n: ok for n, ok, _ in r.checks}, r


def edit(secs, name, f):
    """secs with section `name`'s JSON changed by f (the readyz status line kept)."""
    s = copy.deepcopy(secs)
    rc, body = s[name]
    head, _, js = body.partition("\n") if name == "readyz" else ("", "", body)
    v = json.loads(js)
    f(v)
    s[name] = (rc, (head + "\n" if head else "") + json.dumps(v))
    return s


def degrade_tcp(reason):
    def f(d):
        d["domains"][4] = {"domain": "tcp", "observed": False, "reason": reason}
    return f


class CheckTest(unittest.TestCase):
    def test_a_complete_run_passes(self):
        got, _ = judge(good())
        self.assertTrue(all(got.values()), got)
        self.assertEqual(len(got), 11)

    def test_a_guest_that_did_not_finish_fails(self):
        got, _ = judge(good(), done=False)
        self.assertFalse(got["boot"])

    def test_one_error_too_few_fails(self):
        s = edit(good(), "doctor", lambda d: d["signals"]["syscalls"]["syscalls"][0]["top_errors"][0].update(count=210))
        self.assertFalse(judge(s)[0]["openat-errors"])

    def test_open_fds_unlike_proc_fails(self):
        s = edit(good(), "doctor", lambda d: d["signals"]["fds"]["processes"][0].update(open_fds=59))
        self.assertFalse(judge(s)[0]["fd-counts"])

    def test_a_probe_domain_missing_on_6_1_fails_whatever_the_reason(self):
        s = edit(good(), "doctor", degrade_tcp("tcp probe not attached: tcp:tcp_foo missing"))
        s["events"] = (0, "sched:sched_switch")
        self.assertFalse(judge(s)[0]["domains"])

    def test_on_an_older_kernel_only_a_truly_missing_tracepoint_excuses_a_domain(self):
        s = edit(good(), "doctor", degrade_tcp("tcp probe not attached: tracepoint tcp:tcp_probe not found"))
        s["uname"] = (0, "5.4.0-100-generic")
        s["events"] = (0, "sched:sched_switch\ntcp:tcp_probe")  # the kernel has it: no excuse
        self.assertFalse(judge(s)[0]["domains"])
        s["events"] = (0, "sched:sched_switch")  # the kernel lacks it
        self.assertTrue(judge(s)[0]["domains"])

    def test_a_program_left_after_stop_fails(self):
        s = good()
        s["stopped-prog"] = (0, json.dumps([{"id": 3, "name": "tcp_probe"}]))
        self.assertFalse(judge(s)[0]["detached"])

    def test_a_loaded_but_unattached_program_fails(self):
        s = good()
        s["running-link"] = (0, json.dumps([{"prog_id": 1, "type": "raw_tracepoint"}, {"prog_id": 2, "type": "perf_event"}]))
        got, r = judge(s)
        self.assertFalse(got["programs"])
        self.assertFalse(r.programs["tcp:tcp_probe"][0])

    def test_readyz_not_ready_fails(self):
        s = edit(good(), "readyz", lambda v: v.update(ready=False))
        self.assertFalse(judge(s)[0]["readyz"])

    def test_conntrack_is_excused_only_when_the_guest_has_no_conntrack(self):
        s = edit(good(), "doctor", lambda d: d["domains"].__setitem__(9, {
            "domain": "conntrack", "observed": False, "reason": "the nf_conntrack module is not loaded"}))
        self.assertFalse(judge(s)[0]["domains"])
        s["features"] = (0, "absent /proc/net/stat/nf_conntrack")
        self.assertTrue(judge(s)[0]["domains"])


if __name__ == "__main__":
    unittest.main()
