"""fetch_all and build_results with in-process fake subsystems."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from processors.processor.compute import summary
from processors.processor.subsystems.protocol import MetricColumns
from processors.processor.subsystems.simulated import SimulatedSubsystem, simulated_value
from schemas.models import ClientResult
from tests.oracles import build_results, fetch_all

NOW = 1_700_000_000_000


def requests(n: int, run_id: str = "run-1") -> list[dict[str, Any]]:
    return [
        {"v": 1, "run_id": run_id, "client_id": f"c{i}", "requested_at_ms": NOW - 1000, "attempt": i % 3}
        for i in range(n)
    ]


class GappySubsystem:
    """Returns ``None`` for the clients in ``gaps`` and omits the metrics in ``omit`` entirely."""

    def __init__(self, metrics: Sequence[str], gaps: dict[str, set[str]], omit: Sequence[str] = ()) -> None:
        self.name = "gappy"
        self.metrics = tuple(metrics)
        self.gaps = gaps
        self.omit = set(omit)
        self.batch_sizes: list[int] = []

    def fetch(self, reqs: Sequence[dict[str, Any]]) -> MetricColumns:
        self.batch_sizes.append(len(reqs))
        return {
            m: [None if r["client_id"] in self.gaps.get(m, set()) else 1.0 for r in reqs]
            for m in self.metrics
            if m not in self.omit
        }


def test_fetch_all_chunks_and_aligns() -> None:
    a = SimulatedSubsystem("a", ["x"])
    b = GappySubsystem(["y", "z"], {"y": {"c3"}}, omit=["z"])
    reqs = requests(7)
    columns = fetch_all([a, b], reqs, chunk=3)
    assert a.calls == 3
    assert b.batch_sizes == [3, 3, 1]
    assert list(columns) == ["x", "y", "z"]
    assert columns["x"] == [simulated_value("run-1", f"c{i}", "x") for i in range(7)]
    assert columns["y"] == [1.0, 1.0, 1.0, None, 1.0, 1.0, 1.0]
    assert columns["z"] == [None] * 7


def test_fetch_all_no_requests() -> None:
    a = SimulatedSubsystem("a", ["x"])
    assert fetch_all([a], [], chunk=10) == {}
    assert a.calls == 0


def test_build_results_all_ok() -> None:
    reqs = requests(4)
    columns = fetch_all([SimulatedSubsystem("a", ["x", "y"])], reqs, chunk=100)
    results = build_results(reqs, columns, summary, NOW)
    assert [r["client_id"] for r in results] == ["c0", "c1", "c2", "c3"]
    for req, res in zip(reqs, results, strict=True):
        metrics = {m: simulated_value("run-1", req["client_id"], m) for m in ("x", "y")}
        assert res == {
            "v": 1,
            "run_id": "run-1",
            "client_id": req["client_id"],
            "requested_at_ms": req["requested_at_ms"],
            "attempt": req["attempt"],
            "collected_at_ms": NOW,
            "status": "ok",
            "metrics": metrics,
            "missing": [],
            "computed": summary(metrics),
        }
        ClientResult.model_validate(res)


def test_build_results_marks_missing_as_partial() -> None:
    reqs = requests(4)
    sub = GappySubsystem(["m1", "m2", "m3"], {"m1": {"c1"}, "m3": {"c1", "c2"}})
    results = build_results(reqs, fetch_all([sub], reqs, chunk=2), summary, NOW)
    assert [r["status"] for r in results] == ["ok", "partial", "partial", "ok"]
    assert [r["missing"] for r in results] == [[], ["m1", "m3"], ["m3"], []]
    assert results[1]["metrics"] == {"m2": 1.0}
    assert results[2]["metrics"] == {"m1": 1.0, "m2": 1.0}
    assert results[1]["computed"] == summary({"m2": 1.0})
    assert results[0]["metrics"] == {"m1": 1.0, "m2": 1.0, "m3": 1.0}
    for res in results:
        ClientResult.model_validate(res)


def test_build_results_missing_whole_metric() -> None:
    reqs = requests(2)
    sub = GappySubsystem(["a", "b"], {}, omit=["b"])
    results = build_results(reqs, fetch_all([sub], reqs, chunk=10), summary, NOW)
    assert all(r["status"] == "partial" and r["missing"] == ["b"] for r in results)
    assert all(r["metrics"] == {"a": 1.0} for r in results)


def test_build_results_without_metrics() -> None:
    reqs = requests(3)
    results = build_results(reqs, {}, summary, NOW)
    assert len(results) == 3
    assert all(r["status"] == "ok" and r["metrics"] == {} and r["missing"] == [] for r in results)
    assert results[0]["computed"] == summary({})


def test_build_results_default_attempt() -> None:
    reqs = [{"run_id": "r", "client_id": "c", "requested_at_ms": 5}]
    results = build_results(reqs, {"m": [2.0]}, summary, NOW)
    assert results[0]["attempt"] == 0


def test_build_results_rejects_misaligned_columns() -> None:
    with pytest.raises(ValueError):
        build_results(requests(2), {"a": [1.0, 2.0], "b": [1.0]}, summary, NOW)
