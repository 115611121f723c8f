"""Compute functions: the registry and ``summary``."""

from __future__ import annotations

import pytest

from processors.processor import compute
from processors.processor.compute import COMPUTE_FUNCTIONS, get_compute, register, summary


def test_summary_values() -> None:
    assert summary({"a": 1.0, "b": 4.0, "c": -2.5}) == {
        "count": 3.0,
        "total": 2.5,
        "mean": 2.5 / 3,
        "max": 4.0,
        "min": -2.5,
    }


def test_summary_single_value() -> None:
    assert summary({"only": 7.25}) == {"count": 1.0, "total": 7.25, "mean": 7.25, "max": 7.25, "min": 7.25}


def test_summary_empty() -> None:
    out = summary({})
    assert out == {"count": 0.0, "total": 0.0, "mean": 0.0, "max": 0.0, "min": 0.0}
    assert all(type(v) is float for v in out.values())


def test_summary_count_is_float() -> None:
    assert type(summary({"a": 1.0, "b": 2.0})["count"]) is float


def test_summary_is_registered() -> None:
    assert get_compute("summary") is summary
    assert COMPUTE_FUNCTIONS["summary"] is summary


def test_register_and_get(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute, "COMPUTE_FUNCTIONS", dict(COMPUTE_FUNCTIONS))

    @register("double_total")
    def double_total(metrics: dict[str, float]) -> dict[str, float]:
        return {"double": 2 * sum(metrics.values())}

    assert get_compute("double_total") is double_total
    assert get_compute("double_total")({"a": 1.5, "b": 2.0}) == {"double": 7.0}


def test_register_duplicate_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute, "COMPUTE_FUNCTIONS", dict(COMPUTE_FUNCTIONS))

    def other(metrics: dict[str, float]) -> dict[str, float]:
        return {}

    with pytest.raises(ValueError, match="'summary' is already registered"):
        register("summary")(other)
    assert get_compute("summary") is summary


def test_get_compute_unknown_lists_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compute, "COMPUTE_FUNCTIONS", dict(COMPUTE_FUNCTIONS))
    register("zeta")(lambda metrics: {})
    register("alpha")(lambda metrics: {})
    with pytest.raises(ValueError) as info:
        get_compute("nope")
    message = str(info.value)
    assert "'nope'" in message
    assert message.endswith("known: alpha, summary, zeta")
