"""Compute functions: pure functions from a client's metric values to its computed values.

Registered by name so a deployment's config can choose them; no I/O here.
"""

from __future__ import annotations

from collections.abc import Callable

ComputeFn = Callable[[dict[str, float]], dict[str, float]]

COMPUTE_FUNCTIONS: dict[str, ComputeFn] = {}


def register(name: str) -> Callable[[ComputeFn], ComputeFn]:
    """Decorator: make ``fn`` available under ``name``."""

    def add(fn: ComputeFn) -> ComputeFn:
        if name in COMPUTE_FUNCTIONS:
            raise ValueError(f"compute function {name!r} is already registered")
        COMPUTE_FUNCTIONS[name] = fn
        return fn

    return add


def get_compute(name: str) -> ComputeFn:
    try:
        return COMPUTE_FUNCTIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown compute function {name!r}; known: {', '.join(sorted(COMPUTE_FUNCTIONS))}"
        ) from None


@register("summary")
def summary(metrics: dict[str, float]) -> dict[str, float]:
    """count, total, mean, max and min of the metric values (all 0 when there are none)."""
    values = metrics.values()
    if not values:
        return {"count": 0.0, "total": 0.0, "mean": 0.0, "max": 0.0, "min": 0.0}
    count = len(values)
    total = sum(values)
    return {
        "count": float(count),
        "total": total,
        "mean": total / count,
        "max": max(values),
        "min": min(values),
    }


ColumnarFn = Callable[[list[list[float]]], dict[str, list[float]]]
COLUMNAR: dict[ComputeFn, ColumnarFn] = {}
"""Optional column-at-a-time twins of compute functions, used for batches where no value is missing.
A twin must give exactly what the per-client function gives (tests check ``summary``'s)."""


def _summary_columns(columns: list[list[float]]) -> dict[str, list[float]]:
    rows = list(zip(*columns, strict=True))
    count = len(columns)
    totals: list[float] = [sum(row) for row in rows]
    return {
        "count": [float(count)] * len(rows),
        "total": totals,
        "mean": [total / count for total in totals],
        "max": list(map(max, rows)),
        "min": list(map(min, rows)),
    }


COLUMNAR[summary] = _summary_columns
