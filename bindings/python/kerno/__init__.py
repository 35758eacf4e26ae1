"""Kerno in Python: eBPF incident diagnosis for Linux.

Collect a window from the kernel and diagnose it (needs root)::

    import kerno
    report = kerno.doctor(duration=10)
    print(report)                      # the same text as `kerno doctor`
    if report.status == "critical":
        raise SystemExit(2)

Or analyse a saved incident anywhere, without root::

    signals = kerno.load_signals("incident.json")
    report = kerno.evaluate(signals, thresholds={"syscall_p99_ms": 50})

Custom rules are objects with an ``id`` and ``evaluate(signals) -> list[Finding]``; pass
them as ``rules=[...]`` to :func:`doctor` or :func:`evaluate` and they run beside the
built-in rules. :func:`rule` turns a function into one.
"""

from __future__ import annotations

from typing import Callable, List, Optional, Protocol, runtime_checkable

from ._kerno import (
    SCHEMA_VERSION,
    Finding,
    Histogram,
    ProbeError,
    Report,
    Signals,
    SyscallTrace,
    __version__,
    builtin_rules,
    default_thresholds,
    thresholds,
    doctor,
    evaluate,
    load_signals,
    parse_signals,
    trace_syscalls,
)

__all__ = [
    "SCHEMA_VERSION",
    "Finding",
    "FunctionRule",
    "Histogram",
    "ProbeError",
    "Report",
    "Rule",
    "Signals",
    "SyscallTrace",
    "__version__",
    "builtin_rules",
    "default_thresholds",
    "thresholds",
    "doctor",
    "evaluate",
    "load_signals",
    "parse_signals",
    "rule",
    "summary_line",
    "trace_syscalls",
]


@runtime_checkable
class Rule(Protocol):
    """What a custom rule looks like: a stable kebab-case ``id`` and a pure ``evaluate``.

    A rule reads only the window it is given: no I/O, no clock, so it gives the same answer
    on a live window, a saved incident and in a test.
    """

    @property
    def id(self) -> str: ...

    def evaluate(self, signals: Signals) -> List[Finding]: ...


class FunctionRule:
    """A custom rule made from a function (see :func:`rule`)."""

    def __init__(
        self, id: str, func: Callable[[Signals], List[Finding]], description: str = ""
    ) -> None:
        self.id = id
        self.description = description
        self._func = func

    def evaluate(self, signals: Signals) -> List[Finding]:
        return self._func(signals)

    def __call__(self, signals: Signals) -> List[Finding]:
        return self._func(signals)

    def __repr__(self) -> str:
        return f"<kerno.FunctionRule {self.id}>"


def rule(
    id: str, description: Optional[str] = None
) -> Callable[[Callable[[Signals], List[Finding]]], FunctionRule]:
    """Decorator: make a function ``f(signals) -> list[Finding]`` a rule with this ``id``.

    ::

        @kerno.rule("openat-failures")
        def openat_failures(signals: kerno.Signals) -> list[kerno.Finding]:
            ...

        kerno.evaluate(signals, rules=[openat_failures])
    """

    def wrap(func: Callable[[Signals], List[Finding]]) -> FunctionRule:
        doc = (func.__doc__ or "").strip().splitlines()
        return FunctionRule(id, func, description or (doc[0] if doc else ""))

    return wrap


def summary_line(report: Report) -> str:
    """One line for a log or a chat message: status, counts, host, window, the top finding.

    ``kerno: CRITICAL on db-1 (10.0 s window): 1 critical, 2 warning, 0 info; #1 ...``
    """
    s = report.summary
    host = report.host.get("hostname") or "?"
    secs = report.window.get("duration_ms", 0) / 1000.0
    line = (
        f"kerno: {report.status.upper()} on {host} ({secs:.1f} s window): "
        f"{s['critical']} critical, {s['warning']} warning, {s['info']} info"
    )
    findings = report.findings
    if findings:
        line += f"; #1 [{findings[0].rule}] {findings[0].title}"
    not_observed = [d["domain"] for d in report.domains if not d["observed"]]
    if not_observed:
        line += f"; not observed: {', '.join(not_observed)}"
    return line
