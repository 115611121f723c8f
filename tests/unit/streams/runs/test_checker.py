"""The run checker's pure parts: the simulated value check and the verdict."""

from __future__ import annotations

from typing import Any

from processors.processor.compute import summary
from processors.processor.subsystems.simulated import simulated_check, simulated_value
from streams.runs.checker import RowChecks, VerifyReport, _problems, row_problems


def _report(**counts: Any) -> VerifyReport:
    base: dict[str, Any] = dict(
        run_id="r1",
        manifest_state="enqueued",
        manifest_total=10,
        enqueued=10,
        expected=10,
        stored_raw_rows=10,
        stored=10,
        dead_lettered=0,
        lost=0,
        duplicated_raw=0,
        duplicated_final=0,
        unexpected=0,
        wrong=0,
        values_checked=True,
    )
    return VerifyReport(**(base | counts))


def test_simulated_check_names_only_wrong_metrics() -> None:
    right = {m: simulated_value("r1", "c1", m) for m in ("uptime", "load_0")}
    assert simulated_check("r1", "c1", right) == []
    assert simulated_check("r1", "c1", right | {"load_0": -1.0}) == ["load_0"]
    assert simulated_check("r1", "c1", right | {"load_1": None}) == []


def test_clean_run_is_ok() -> None:
    report = _report()
    assert _problems(report, has_manifest=True, has_expected=False) == []


def test_raw_duplicates_alone_are_not_a_problem() -> None:
    assert _problems(_report(duplicated_raw=5), True, False) == []


def test_every_failure_is_named() -> None:
    report = _report(lost=2, duplicated_final=1, unexpected=3, wrong=4)
    problems = _problems(report, True, False)
    assert problems == ["2 lost", "1 duplicated final", "3 unexpected", "4 wrong"]


def test_missing_manifest_fails_even_when_rows_exist() -> None:
    report = _report(manifest_state="no-manifest", manifest_total=None)
    assert any("no manifest" in p for p in _problems(report, has_manifest=False, has_expected=True))


def test_unfinished_enqueue_fails() -> None:
    report = _report(manifest_state="enqueueing", manifest_total=None)
    assert any("enqueueing" in p for p in _problems(report, has_manifest=True, has_expected=False))


def test_new_failures_are_named() -> None:
    report = _report(
        stored_and_dead_lettered=1, incomplete_ok=2, status_contradicts_missing=3, wrong_computed=4
    )
    assert _problems(report, True, False) == [
        "1 stored and dead lettered",
        "2 incomplete ok",
        "3 status contradicts missing",
        "4 wrong computed",
    ]


def test_row_problems() -> None:
    metrics = {"a": 1.0, "b": 2.0}
    assert row_problems("ok", metrics, [], summary(metrics), summary) == []
    assert row_problems("partial", {"a": 1.0}, ["b"], summary({"a": 1.0}), summary) == []
    assert row_problems("ok", metrics, ["c"], summary(metrics), summary) == ["status_contradicts_missing"]
    assert row_problems("partial", metrics, [], summary(metrics), None) == ["status_contradicts_missing"]
    assert row_problems("partial", metrics, ["b"], summary(metrics), None) == ["status_contradicts_missing"]
    assert row_problems("ok", metrics, [], summary({"a": 1.0}), summary) == ["wrong_computed"]
    assert row_problems("ok", metrics, [], summary({"a": 1.0}), None) == []


def test_row_checks_find_ok_rows_without_every_metric() -> None:
    checks = RowChecks()
    checks.add("c1", "ok", {"a": 1.0, "b": 1.0}, [], {})
    checks.add("c2", "ok", {"a": 1.0}, [], {})  # lacks b, seen in the run
    checks.add("c3", "partial", {"a": 1.0}, ["b"], {})
    assert checks.finish() == {"incomplete_ok": ["c2"]}
    configured = RowChecks(metric_names=frozenset({"a", "b", "c"}))
    configured.add("c1", "ok", {"a": 1.0, "b": 1.0}, [], {})
    assert configured.finish() == {"incomplete_ok": ["c1"]}
