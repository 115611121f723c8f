"""The simulated subsystems: deterministic values in [0, 1000), one column per metric."""

from __future__ import annotations

from processors.processor.subsystems.simulated import (
    DEFAULT_METRICS,
    SimulatedSubsystem,
    default_subsystems,
    simulated_value,
)


def test_simulated_value_is_deterministic() -> None:
    # Pinned values: the run checker recomputes them in other processes (crc32, not hash()).
    assert simulated_value("run-1", "c1", "uptime") == 462.82
    assert simulated_value("run-2", "client-42", "load_3") == 904.07
    fresh = SimulatedSubsystem("again", ["uptime"]).fetch([{"run_id": "run-1", "client_id": "c1"}])
    assert fresh == {"uptime": [462.82]}


def test_simulated_values_in_range_with_two_decimals() -> None:
    values = [
        simulated_value(f"run-{r}", f"client-{c}", m) for r in range(5) for c in range(200) for m in "abc"
    ]
    assert all(0.0 <= v < 1000.0 for v in values)
    assert all(abs(v * 100 - round(v * 100)) < 1e-6 for v in values)
    assert max(values) > 900.0 and min(values) < 100.0  # spread over the range


def test_simulated_values_differ_across_metrics_runs_and_clients() -> None:
    base = simulated_value("run-1", "c1", "load_0")
    by_metric = {simulated_value("run-1", "c1", f"load_{i}") for i in range(20)}
    by_run = {simulated_value(f"run-{i}", "c1", "load_0") for i in range(20)}
    by_client = {simulated_value("run-1", f"c{i}", "load_0") for i in range(20)}
    for values in (by_metric, by_run, by_client):
        assert base in values
        assert len(values) >= 18


def test_run_and_client_are_not_just_concatenated() -> None:
    assert simulated_value("ab", "c", "m") != simulated_value("a", "bc", "m")


def test_fetch_columns_match_simulated_value() -> None:
    sub = SimulatedSubsystem("s", ["m1", "m2"])
    requests = [{"run_id": "run-1", "client_id": f"c{i}", "requested_at_ms": 0} for i in range(5)]
    columns = sub.fetch(requests)
    assert list(columns) == ["m1", "m2"]
    for metric, column in columns.items():
        assert column == [simulated_value("run-1", f"c{i}", metric) for i in range(5)]
    assert sub.calls == 1
    assert sub.fetch([]) == {"m1": [], "m2": []}
    assert sub.calls == 2


def test_default_subsystems() -> None:
    subs = default_subsystems()
    assert [s.name for s in subs] == ["alpha", "beta"]
    assert sum(len(s.metrics) for s in subs) == 11
    assert subs[1].metrics == DEFAULT_METRICS["beta"] == tuple(f"load_{i}" for i in range(10))
