"""Rules over a window: built-in and custom rules, thresholds, the report. No root."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Dict, List

import pytest

import kerno
from conftest import INCIDENT, REPO, quiet_window

SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


def finding(rule: str = "custom", severity: Any = "warning", title: str = "something", **kw: Any) -> kerno.Finding:
    return kerno.Finding(rule=rule, severity=severity, title=title, **kw)


class Fixed:
    """A custom rule that returns what it was given."""

    def __init__(self, id: str, findings: Any) -> None:
        self.id = id
        self.findings = findings
        self.seen: List[kerno.Signals] = []

    def evaluate(self, signals: kerno.Signals) -> Any:
        self.seen.append(signals)
        return self.findings


# ---- the report --------------------------------------------------------------------------


def test_report_of_the_incident(incident: kerno.Signals) -> None:
    report = kerno.evaluate(incident)
    assert report.signals == incident
    assert report.host == incident.host and report.window == incident.window
    assert report.generator.startswith("kerno ")
    assert report.schema == kerno.SCHEMA_VERSION
    s = report.summary
    assert s["critical"] + s["warning"] + s["info"] == len(report.findings)
    # The incident was saved before the filesystem, pids and conntrack domains existed: they
    # are listed, as not observed.
    assert [d["domain"] for d in report.domains] == [
        "syscalls", "fds", "sched", "disk", "tcp", "oom", "memory", "filesystem", "pids", "conntrack",
    ]
    assert [d["domain"] for d in report.domains if not d["observed"]] == ["filesystem", "pids", "conntrack"]
    assert all(d["observed"] for d in report.domains if d["domain"] not in ("filesystem", "pids", "conntrack"))
    assert report.degraded == [] and report.lost == incident.lost
    expected = "critical" if s["critical"] else "warning" if s["warning"] else "healthy"
    assert report.status == expected
    ranks = [SEVERITY_ORDER[f.severity] for f in report.findings]
    assert ranks == sorted(ranks)


def test_text_is_the_cli_pretty_report(incident: kerno.Signals) -> None:
    demo = Fixed("demo", [finding(rule="demo", severity="critical", title="disk on fire")])
    report = kerno.evaluate(incident, builtin=False, rules=[demo])
    text = str(report)
    assert text == report.render() == report.render(color=False)
    assert text.startswith("kerno doctor: api-7 — kernel 6.18.0-example, 8 CPUs, 16.0 GiB memory, systemd\n")
    assert "window: 10.0 s from 2026-11-30 00:53:20 UTC" in text
    assert " 1. CRIT  disk on fire" in text
    assert "\x1b[" not in text
    assert "\x1b[1;31mCRIT\x1b[0m" in report.render(color=True)
    assert text.rstrip().endswith("start with #1.")


def test_json_and_dict(incident: kerno.Signals) -> None:
    report = kerno.evaluate(incident, rules=[Fixed("demo", [finding(rule="demo", eta_secs=90.0)])])
    data = json.loads(report.to_json())
    assert data == report.to_dict()
    assert data["status"] == report.status and data["summary"] == report.summary
    assert data["signals"] == incident.to_dict()
    demo = [f for f in data["findings"] if f["rule"] == "demo"]
    assert demo == [report.findings[[f.rule for f in report.findings].index("demo")].to_dict()]
    assert demo[0]["eta_secs"] == 90.0 and demo[0]["severity"] == "warning"


def test_html_for_notebooks_escapes_everything(incident: kerno.Signals) -> None:
    evil = finding(
        rule="x<y", severity="critical", title="<script>alert(1)</script>", cause="a & b",
        evidence=["\"quoted\""], fix=["kill -9 'pid'"], eta_secs=30.0, value=6.796116, threshold=5, unit="%",
    )
    html = kerno.evaluate(incident, rules=[Fixed("evil", [evil])])._repr_html_()
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "a &amp; b" in html and "&quot;quoted&quot;" in html and "kill -9 &#39;pid&#39;" in html
    assert "CRITICAL" in html and "limit reached in about 30 s" in html
    assert '<b>6.80 %</b> <span class="muted">(threshold 5 %)</span>' in html
    assert html.startswith('<div class="kerno-report"><style>') and html.endswith("</div>")


def test_html_says_what_was_not_observed() -> None:
    window = {**quiet_window(), "tcp": None, "degraded": [{"domain": "tcp", "reason": "probe & co failed"}]}
    report = kerno.evaluate(kerno.Signals.from_dict(window))
    html = report._repr_html_()
    assert "DEGRADED" in html
    assert '<td class="no">not observed: probe &amp; co failed</td>' in html
    domains = {d["domain"]: d for d in report.domains}
    assert domains["tcp"].get("reason") == "probe & co failed"
    assert "reason" not in domains["syscalls"], "an observed domain has no reason"


def test_summary_line(incident: kerno.Signals) -> None:
    report = kerno.evaluate(incident, builtin=False, rules=[Fixed("demo", [finding(rule="demo", severity="critical", title="it broke")])])
    assert kerno.summary_line(report) == (
        "kerno: CRITICAL on api-7 (10.0 s window): 1 critical, 0 warning, 0 info; #1 [demo] it broke;"
        " not observed: filesystem, pids, conntrack"
    )
    partial = kerno.Signals.from_dict({**quiet_window(), "tcp": None, "oom": None})
    line = kerno.summary_line(kerno.evaluate(partial, builtin=False))
    assert line == "kerno: DEGRADED on quiet (5.0 s window): 0 critical, 0 warning, 0 info; not observed: tcp, oom"


# ---- built-in rules ------------------------------------------------------------------------


def test_builtin_rules_listed() -> None:
    rules = kerno.builtin_rules()
    assert all(isinstance(i, str) and isinstance(d, str) and i for i, d in rules)
    assert len({i for i, _ in rules}) == len(rules)


def lenient() -> dict[str, Any]:
    """Every threshold as far as it goes: nothing can cross them."""
    out: dict[str, Any] = {}
    for key, value in kerno.default_thresholds().items():
        if key.endswith("_pct"):
            out[key] = 100.0
        elif key == "fd_sustained_ratio":
            out[key] = 1.0
        elif key.endswith("_eta_secs"):
            out[key] = 0.0
        elif isinstance(value, float):
            out[key] = 1e12
        elif isinstance(value, int):
            out[key] = 10**15
    return out


def test_thresholds_reach_the_builtin_rules(incident: kerno.Signals) -> None:
    if not kerno.builtin_rules():
        pytest.skip("kerno-rules has no built-in rules yet")
    # The incident leaks descriptors towards the limit and has a slow fsync tail: the
    # built-in rules flag it with the shipped thresholds, and not with impossible ones.
    assert kerno.evaluate(incident).status in ("warning", "critical")
    quiet = kerno.evaluate(incident, thresholds=lenient())
    assert [f for f in quiet.findings if f.severity != "info"] == []


def test_quiet_window_has_no_findings() -> None:
    report = kerno.evaluate(kerno.Signals.from_dict(quiet_window()))
    assert report.findings == []
    assert report.status == "healthy"


# ---- thresholds ---------------------------------------------------------------------------


def test_default_thresholds() -> None:
    t = kerno.default_thresholds()
    assert t["syscall_p99_ms"] == 100.0 and t["disk_min_samples"] == 20
    assert "EAGAIN" in t["benign_errnos"]
    assert set(t) == {d["key"] for d in kerno.thresholds()}


def test_thresholds_are_declared_by_the_rules() -> None:
    specs = {d["key"]: d for d in kerno.thresholds()}
    rule_ids = {i for i, _ in kerno.builtin_rules()}
    assert all(d["rule"] in rule_ids for d in specs.values())
    pct = specs["syscall_error_pct"]
    assert (pct["rule"], pct["kind"], pct["default"], pct["unit"], pct["min"], pct["max"]) == (
        "syscall-errors", "number", 1.0, "%", 0.0, 100.0,
    )
    assert specs["disk_min_samples"]["kind"] == "count" and specs["disk_min_samples"]["max"] is None
    assert specs["benign_errnos"]["kind"] == "list" and specs["benign_errnos"]["min"] is None
    assert all(d["doc"] for d in specs.values())


def test_thresholds_accepted(incident: kerno.Signals) -> None:
    def by_rule(report: kerno.Report) -> dict[str, float]:
        return {f.rule: f.threshold for f in report.findings}

    default = by_rule(kerno.evaluate(incident))
    assert default == {"fd-leak": 10.0, "disk-io": 200.0}, default
    assert by_rule(kerno.evaluate(incident, thresholds={})) == default
    assert by_rule(kerno.evaluate(incident, thresholds=None)) == default
    # The keys the rules read show up in the findings' thresholds (a whole float is a
    # count; a custom section is kept).
    changed = kerno.evaluate(
        incident,
        thresholds={
            "syscall_p99_ms": 50, "runq_p99_ms": 2.5, "disk_min_samples": 20.0,
            "benign_errnos": ["EAGAIN"], "custom": {"my_rule_ms": 3.0},
            "fd_growth_per_sec": 12, "disk_critical_p99_ms": 150.5,
        },
    )
    # benign_errnos=["EAGAIN"] makes the incident's ENOENTs count: syscall-errors speaks up.
    assert by_rule(changed) == {"fd-leak": 12.0, "disk-io": 150.5, "syscall-errors": 1.0}, by_rule(changed)
    assert by_rule(kerno.evaluate(incident, thresholds=lenient())) == {}


@pytest.mark.parametrize(
    "thresholds, message",
    [
        ({"syscall_p99": 5}, r"thresholds\.syscall_p99: no such threshold \(known: .*syscall_p99_ms"),
        ({"syscall_p99_ms": "fast"}, r"thresholds\.syscall_p99_ms: invalid type: string"),
        ({"syscall_p99_ms": -1}, r"thresholds\.syscall_p99_ms: out of range: use 0 or more, got -1"),
        ({"syscall_p99_ms": float("inf")}, r"syscall_p99_ms.*not a finite number"),
        ({"syscall_error_pct": 150}, r"thresholds\.syscall_error_pct: out of range: use 0 to 100, got 150"),
        ({"fd_sustained_ratio": 2}, r"thresholds\.fd_sustained_ratio: out of range: use 0 to 1, got 2"),
        ({"disk_min_samples": 20.5}, r"thresholds\.disk_min_samples: expected a whole number, got 20.5"),
        ({"runq_p99_ms": True}, r"thresholds\.runq_p99_ms: invalid type: boolean"),
        ({"benign_errnos": "EAGAIN"}, r"thresholds\.benign_errnos: invalid type: string"),
        ({"custom": {"x": "1"}}, r"thresholds\.custom"),
    ],
)
def test_bad_thresholds_are_value_errors_naming_the_key(incident: kerno.Signals, thresholds: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        kerno.evaluate(incident, thresholds=thresholds)
    with pytest.raises(ValueError, match=message):
        kerno.doctor(duration=1, thresholds=thresholds)  # checked before the probes load


def test_thresholds_must_be_a_mapping(incident: kerno.Signals) -> None:
    with pytest.raises(TypeError, match="thresholds must be a dict"):
        kerno.evaluate(incident, thresholds=[("syscall_p99_ms", 1)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="threshold names must be str"):
        kerno.evaluate(incident, thresholds={1: 2})  # type: ignore[dict-item]


# ---- custom rules -------------------------------------------------------------------------


def test_custom_rule_runs_beside_the_builtin_ones(incident: kerno.Signals) -> None:
    builtin_only = kerno.evaluate(incident)
    # Critical with the nearest ETA: it ranks before every built-in finding.
    rule = Fixed("my-check", [finding(rule="my-check", severity="critical", title="mine", eta_secs=1)])
    report = kerno.evaluate(incident, rules=[rule])
    assert rule.seen == [incident], "the rule gets the window as kerno.Signals"
    assert isinstance(rule.seen[0], kerno.Signals)
    assert len(report.findings) == len(builtin_only.findings) + 1
    assert report.findings[0].title == "mine", "ranked with the built-in findings"
    assert report.summary["critical"] == builtin_only.summary["critical"] + 1
    assert report.status == "critical"


def test_builtin_false_runs_only_the_custom_rules(incident: kerno.Signals) -> None:
    report = kerno.evaluate(incident, builtin=False, rules=[Fixed("a", [finding(rule="a", severity="info")])])
    assert [f.rule for f in report.findings] == ["a"]
    assert kerno.evaluate(incident, builtin=False).findings == []


def test_findings_are_ranked_across_rules(incident: kerno.Signals) -> None:
    rules = [
        Fixed("w", [finding(rule="w", severity="warning", value=3, threshold=1)]),
        Fixed("c", [finding(rule="c", severity="critical", value=2, threshold=1)]),
        Fixed("i", [finding(rule="i", severity="info")]),
        Fixed("e", [finding(rule="e", severity="warning", value=2, threshold=1, eta_secs=60)]),
    ]
    report = kerno.evaluate(incident, builtin=False, rules=rules)
    assert [f.rule for f in report.findings] == ["c", "e", "w", "i"]


def test_decorated_function_rule(incident: kerno.Signals) -> None:
    @kerno.rule("tcp-retrans-any")
    def retrans(s: kerno.Signals) -> List[kerno.Finding]:
        """Any retransmit at all."""
        tcp = s.tcp
        if not tcp or not tcp["retransmits"]:
            return []
        return [kerno.Finding(rule="tcp-retrans-any", severity="info", title=f"{tcp['retransmits']} retransmits")]

    assert retrans.id == "tcp-retrans-any" and retrans.description == "Any retransmit at all."
    assert isinstance(retrans, kerno.Rule)
    report = kerno.evaluate(incident, builtin=False, rules=[retrans])
    assert [f.title for f in report.findings] == ["118 retransmits"]


def test_rule_returning_none_or_a_generator(incident: kerno.Signals) -> None:
    assert kerno.evaluate(incident, builtin=False, rules=[Fixed("n", None)]).findings == []
    gen = Fixed("g", (finding(rule="g") for _ in range(2)))
    assert len(kerno.evaluate(incident, builtin=False, rules=[gen]).findings) == 2


def test_rule_raising_propagates_its_own_exception(incident: kerno.Signals) -> None:
    class Broken:
        id = "broken"

        def evaluate(self, signals: kerno.Signals) -> List[kerno.Finding]:
            raise ZeroDivisionError("oops")

    with pytest.raises(ZeroDivisionError, match="oops") as e:
        kerno.evaluate(incident, rules=[Broken()])
    assert any("broken" in n for n in getattr(e.value, "__notes__", [])), "the note names the rule"


@pytest.mark.parametrize("bad", [[{"rule": "x"}], 42, ["a string"]])
def test_rule_returning_the_wrong_type_is_type_error(incident: kerno.Signals, bad: Any) -> None:
    with pytest.raises(TypeError, match="custom rule \"bad\": evaluate\\(\\) must return a list of kerno.Finding"):
        kerno.evaluate(incident, rules=[Fixed("bad", bad)])


def test_rule_shape_is_checked_before_running(incident: kerno.Signals) -> None:
    class NoId:
        def evaluate(self, signals: kerno.Signals) -> List[kerno.Finding]:
            return []

    class NoEvaluate:
        id = "x"

    for bad in (NoId(), NoEvaluate(), object(), "fd-leak"):
        with pytest.raises(TypeError, match="a custom rule needs an `id`"):
            kerno.evaluate(incident, rules=[bad])
    with pytest.raises(TypeError, match="not a single rule"):
        kerno.evaluate(incident, rules=Fixed("one", []))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="must not be empty"):
        kerno.evaluate(incident, rules=[Fixed(" ", [])])
    with pytest.raises(ValueError, match='two rules have the id "dup"'):
        kerno.evaluate(incident, rules=[Fixed("dup", []), Fixed("dup", [])])
    with pytest.raises(TypeError, match="a custom rule needs an `id`"):
        kerno.doctor(duration=1, rules=[object()])  # checked before the probes load


def test_custom_rule_cannot_reuse_a_builtin_id(incident: kerno.Signals) -> None:
    builtins = kerno.builtin_rules()
    if not builtins:
        pytest.skip("kerno-rules has no built-in rules yet")
    with pytest.raises(ValueError, match="two rules have the id"):
        kerno.evaluate(incident, rules=[Fixed(builtins[0][0], [])])
    kerno.evaluate(incident, builtin=False, rules=[Fixed(builtins[0][0], [])])


# ---- findings -----------------------------------------------------------------------------


def test_finding_from_keywords() -> None:
    f = kerno.Finding(
        rule="fd-watch", title="api leaks", cause="c", impact="i", evidence=["e1", "e2"],
        severity="warn",  # type: ignore[arg-type]
        value=12.5, threshold=10, unit="fd/s", fix=["ls /proc/1/fd"], eta_secs=90, low_volume=True,
        subject={"kind": "process", "name": "api (pid 1)", "process": {"pid": 1, "comm": "api"}},
    )
    assert (f.rule, f.severity, f.title, f.cause, f.impact) == ("fd-watch", "warning", "api leaks", "c", "i")
    assert (f.evidence, f.value, f.threshold, f.unit, f.fix) == (["e1", "e2"], 12.5, 10.0, "fd/s", ["ls /proc/1/fd"])
    assert f.eta_secs == 90.0 and f.low_volume
    assert f.subject == {"kind": "process", "name": "api (pid 1)", "process": {"pid": 1, "comm": "api"}}
    assert f.to_dict()["subject"] == f.subject
    assert json.loads(f.to_json()) == f.to_dict()
    assert f == kerno.Finding(**{**f.to_dict(), "severity": "warning"})
    assert "WARN fd-watch" in repr(f)


def test_finding_defaults_and_subjects() -> None:
    f = kerno.Finding(rule="r", severity="info", title="t")
    assert (f.cause, f.impact, f.evidence, f.fix, f.unit) == ("", "", [], [], "")
    assert (f.value, f.threshold, f.eta_secs, f.low_volume) == (0.0, 0.0, None, False)
    assert f.subject == {"kind": "host", "name": ""}
    assert kerno.Finding(rule="r", severity="info", title="t", subject="db-1").subject == {"kind": "host", "name": "db-1"}
    assert kerno.Finding(rule="r", severity="CRITICAL", title="t", subject={"name": "vda"}).subject == {"kind": "host", "name": "vda"}  # type: ignore[arg-type]


def test_bad_findings() -> None:
    with pytest.raises(ValueError, match="severity must be 'info', 'warning' or 'critical', got \"bad\""):
        kerno.Finding(rule="r", severity="bad", title="t")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        kerno.Finding(rule="r", severity="info")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        kerno.Finding("r", "info", "t")  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        kerno.Finding(rule="r", severity="info", title="t", evidence="one string")
    with pytest.raises(ValueError, match="rule must name"):
        kerno.Finding(rule="", severity="info", title="t")
    with pytest.raises(ValueError, match="eta_secs"):
        kerno.Finding(rule="r", severity="info", title="t", eta_secs=-1)
    with pytest.raises(ValueError, match="subject: missing field `name`"):
        kerno.Finding(rule="r", severity="info", title="t", subject={"kind": "process"})
    with pytest.raises(ValueError, match="subject must be a str or a dict"):
        kerno.Finding(rule="r", severity="info", title="t", subject=[1])  # type: ignore[arg-type]


def test_odd_windows_do_not_crash_the_rules() -> None:
    # Rules must not panic on anything a snapshot can hold: zero-length windows, empty
    # histograms, huge counts.
    window = quiet_window()
    window["window"]["duration_ms"] = 0
    window["syscalls"] = {
        "total_calls": 2**64 - 1, "total_errors": 2**64 - 1,
        "syscalls": [{"nr": 0, "name": "read", "wait": False, "count": 2**64 - 1, "errors": 2**64 - 1,
                      "latency": {"buckets": [[0, 2**64 - 1], [10_000, 5]]}}],
    }
    window["fds"] = {"processes": [{"process": {"pid": 1, "comm": "x"}, "opens": 2**64 - 1, "closes": 0,
                                    "open_fds": 2**64 - 1, "soft_limit": 0, "net_per_interval": []}]}
    window["memory"]["total_bytes"] = 0
    report = kerno.evaluate(kerno.Signals.from_dict(window))
    assert report.status in ("healthy", "degraded", "warning", "critical")
    str(report)
    report._repr_html_()


# ---- the same report as the CLI -----------------------------------------------------------


def kerno_cli() -> str:
    path = os.environ.get("PYKERNO_CLI") or str(REPO / "target" / "debug" / "kerno")
    if not os.access(path, os.X_OK):
        pytest.skip(f"no kerno binary at {path} (cargo build -p kerno-cli, or set PYKERNO_CLI)")
    return path


def run_cli(*args: str) -> "subprocess.CompletedProcess[str]":
    # The CLI reads KERNO_* settings (and rejects unknown ones): run it without any.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERNO_")}
    return subprocess.run([kerno_cli(), *args], capture_output=True, text=True, timeout=60, env=env)


def test_text_matches_kerno_doctor_from() -> None:
    cli = run_cli("doctor", "--from", str(INCIDENT), "--no-color")
    assert cli.stdout == str(kerno.evaluate(kerno.load_signals(INCIDENT))), cli.stderr


def test_json_matches_kerno_doctor_from() -> None:
    cli = run_cli("doctor", "--from", str(INCIDENT), "--output", "json")
    assert json.loads(cli.stdout) == kerno.evaluate(kerno.load_signals(INCIDENT)).to_dict(), cli.stderr


# ---- attribution -------------------------------------------------------------------------


def test_findings_say_whose_they_are_and_reports_scope_to_a_pod(incident_dict: Dict[str, Any]) -> None:
    uid = "0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"
    attribution = {
        "namespace": "payments", "pod_name": "checkout-api-7d9f8b6c5-x2k4q", "pod_uid": uid,
        "container": "api", "container_id": "9a" * 32, "runtime": "containerd", "qos": "burstable",
        "workload": {"kind": "Deployment", "name": "checkout-api", "inferred": True},
    }
    for p in incident_dict["fds"]["processes"]:
        p["process"]["attribution"] = attribution
        p["process"]["pod"] = "payments/checkout-api-7d9f8b6c5-x2k4q"
    incident_dict["host"]["node"] = "node-7"
    report = kerno.evaluate(kerno.Signals.from_dict(incident_dict))
    leaks = [f for f in report.findings if f.rule == "fd-leak"]
    assert leaks, [f.rule for f in report.findings]
    s = leaks[0].subject
    assert (s["namespace"], s["pod_name"], s["container"], s["qos"]) == (
        "payments", "checkout-api-7d9f8b6c5-x2k4q", "api", "burstable")
    assert s["workload"] == {"kind": "Deployment", "name": "checkout-api", "inferred": True}
    assert s["node"] == "node-7" and report.host["node"] == "node-7"
    assert leaks[0].whose == "payments/checkout-api-7d9f8b6c5-x2k4q (container api)"
    assert "in:       payments/checkout-api-7d9f8b6c5-x2k4q (container api)" in str(report)
    mine = report.scoped(pod="payments/checkout-api-7d9f8b6c5-x2k4q")
    assert [f.rule for f in mine.findings] == [f.rule for f in report.findings if f.subject.get("namespace") == "payments"]
    assert mine.to_dict()["scope"] == "pod payments/checkout-api-7d9f8b6c5-x2k4q"
    assert report.scoped(namespace="kube-system").findings == []
    assert mine.domains == report.domains
    with pytest.raises(ValueError):
        report.scoped(pod="no-slash")
    with pytest.raises(ValueError):
        report.scoped()
