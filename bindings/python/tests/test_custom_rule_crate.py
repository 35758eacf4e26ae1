"""A Rust rule from a crate of its own (tests/kerno-test-rule), linked into a test build of
this wheel (`maturin develop --features test-rule`, done by run-tests.sh, which runs this file
alone against that build): its declared threshold is visible and settable from Python like a
built-in one, and the rule reads what Python sets."""

from __future__ import annotations

import pytest

import kerno

from conftest import quiet_window


def storm() -> kerno.Signals:
    """10,000 openat calls in the 5 s window: 2,000 a second."""
    w = quiet_window()
    w["syscalls"] = {
        "total_calls": 10_000, "total_errors": 0,
        "syscalls": [{"nr": 257, "name": "openat", "wait": False, "count": 10_000, "errors": 0,
                      "latency": {"buckets": []}}],
    }
    return kerno.Signals.from_dict(w)


def test_the_crates_threshold_is_listed_with_its_declaration() -> None:
    specs = {d["key"]: d for d in kerno.thresholds()}
    s = specs["open_storm_per_sec"]
    assert (s["rule"], s["kind"], s["default"], s["unit"], s["min"], s["max"]) == (
        "open-storm", "number", 50_000.0, "calls/s", 1.0, 10_000_000.0,
    )
    assert s["doc"] == "descriptor-creating calls per second above this warn"
    assert "open-storm" in {i for i, _ in kerno.builtin_rules()}
    assert kerno.default_thresholds()["open_storm_per_sec"] == 50_000.0


def test_the_rule_reads_what_python_sets_and_bad_values_are_refused() -> None:
    assert [f.rule for f in kerno.evaluate(storm()).findings] == []
    fired = kerno.evaluate(storm(), thresholds={"open_storm_per_sec": 1_500})
    assert [(f.rule, f.threshold) for f in fired.findings] == [("open-storm", 1_500.0)]
    with pytest.raises(ValueError, match=r"thresholds\.open_storm_per_sec: out of range: use 1 to 10000000, got 0"):
        kerno.evaluate(storm(), thresholds={"open_storm_per_sec": 0})
