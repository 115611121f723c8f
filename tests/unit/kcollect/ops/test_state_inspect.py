"""`kcollect state inspect`'s reasons of a kept run, against the kept run before it."""

from __future__ import annotations

from kcollect.ops.state import kept_reasons
from processors.processor.state.history import Observation


def test_each_kept_metric_gets_its_reason_and_an_ordinary_one_is_ok() -> None:
    before = Observation("s-1", 60_000, 1, {"bytes": 100.0, "errors": 5.0})
    now = Observation("s-2", 120_000, 2, {"bytes": 160.0, "errors": 2.0, "new": 1.0})
    assert kept_reasons(now, before) == {"bytes": ["ok"], "errors": ["reset"], "new": ["first_sight"]}


def test_a_missed_run_is_a_gap_on_every_metric() -> None:
    before = Observation("s-1", 60_000, 1, {"bytes": 100.0})
    now = Observation("s-3", 180_000, 3, {"bytes": 50.0, "new": 1.0})
    assert kept_reasons(now, before) == {"bytes": ["reset", "gap"], "new": ["first_sight", "gap"]}
