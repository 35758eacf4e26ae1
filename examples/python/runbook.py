#!/usr/bin/env python3
"""A runbook step: diagnose this host and fail the step on a critical finding.

    sudo python runbook.py --duration 10                 # collect from the kernel (root)
    python runbook.py --from incident.json               # or judge a saved window
    python runbook.py --threshold syscall_p99_ms=50      # tighten a threshold

Prints the report, then one summary line (the last line, for a chat message or a log).
Exit status: 0 when nothing is critical, 2 on a critical finding, 1 when kerno could not
run (no privileges, unreadable snapshot, bad threshold).
"""

from __future__ import annotations

import argparse
import sys
from typing import Dict, List, Optional, Union

import kerno

# Errnos that mean a process cannot get what it asked for, not that it asked for nothing.
RESOURCE_ERRNOS = ("EMFILE", "ENFILE", "ENOMEM", "ENOSPC")


class OpenFailures:
    """A custom rule: a process whose openat calls fail for lack of a resource."""

    id = "open-resource-failures"
    description = "openat failed with EMFILE, ENFILE, ENOMEM or ENOSPC"

    def evaluate(self, signals: kerno.Signals) -> List[kerno.Finding]:
        stat = signals.syscall("openat")
        if stat is None:
            return []
        findings = []
        for e in stat["top_errors"]:
            if e["errno"] not in RESOURCE_ERRNOS:
                continue
            p = e["process"]
            findings.append(
                kerno.Finding(
                    rule=self.id,
                    severity="critical",
                    title=f"{p['comm']} (pid {p['pid']}): {e['count']} opens failed with {e['errno']}",
                    cause=f"the process ran out of a resource it needs to open files ({e['errno']})",
                    impact="requests that need a file or socket fail",
                    evidence=[f"{e['count']} failed openat calls in {signals.duration_secs:.1f} s"],
                    value=e["count"],
                    threshold=0,
                    unit="calls",
                    fix=[f"ls /proc/{p['pid']}/fd | wc -l", f"grep 'open files' /proc/{p['pid']}/limits"],
                    subject={"kind": "process", "name": f"{p['comm']} (pid {p['pid']})", "process": p},
                )
            )
        return findings


def parse_thresholds(pairs: List[str]) -> Dict[str, Union[float, List[str]]]:
    out: Dict[str, Union[float, List[str]]] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--threshold wants KEY=VALUE, got {pair!r}")
        try:
            out[key] = float(value)
        except ValueError:
            out[key] = [v.strip() for v in value.split(",")]
    return out


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="seconds to collect (1-300)")
    ap.add_argument("--from", dest="source", metavar="FILE", help="judge a saved window instead (no root)")
    ap.add_argument("--threshold", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--json", action="store_true", help="print the JSON report instead of text")
    args = ap.parse_args(argv)

    rules = [OpenFailures()]
    try:
        thresholds = parse_thresholds(args.threshold)
        if args.source:
            report = kerno.evaluate(kerno.load_signals(args.source), thresholds=thresholds, rules=rules)
        else:
            report = kerno.doctor(duration=args.duration, thresholds=thresholds, rules=rules)
    except PermissionError as e:
        print(f"kerno: {e}\nkerno: run as root, or use --from FILE to judge a saved window", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"kerno: {e}", file=sys.stderr)
        return 1

    print(report.to_json() if args.json else report)
    print(kerno.summary_line(report))
    return 2 if report.status == "critical" else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
