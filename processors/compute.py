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
