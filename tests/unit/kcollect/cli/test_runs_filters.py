"""`kcollect runs list` filters (pure)."""

from __future__ import annotations

from kcollect.cli.runs import matches


def test_filters_by_schedule_and_state() -> None:
    row = {"schedule": "nightly", "state": "enqueued", "complete": False}
    assert (
        matches(row, None, None) and matches(row, "nightly", "enqueued") and matches(row, None, "incomplete")
    )
    assert not matches(row, "hourly", None) and not matches(row, None, "complete")
    assert not matches(row, None, "failed")
    assert matches({"schedule": None, "state": "no-manifest", "complete": True}, None, "complete")
