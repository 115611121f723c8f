"""A scheduled run id names its schedule and slot; an ad-hoc one names neither."""

from __future__ import annotations

from datetime import UTC, datetime

from producers.scheduler.schedule import run_id
from streams.runs.identity import schedule_slot, scheduled_run_id


def test_scheduled_ids_give_schedule_and_slot() -> None:
    slot = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    expected = ("fleet-a", int(slot.timestamp()) * 1000)
    assert schedule_slot(run_id("fleet-a", slot)) == expected
    assert schedule_slot(scheduled_run_id("fleet-a", "2026-11-23T12:00:00Z")) == expected


def test_ad_hoc_ids_give_none() -> None:
    for text in ("run-1", "20261123T120000Z", "x-2026-11-23", "a-20261399T120000Z", "-20261123T120000Z"):
        assert schedule_slot(text) is None
