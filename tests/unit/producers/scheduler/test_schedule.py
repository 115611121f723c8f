"""Slot math of `kcollect scheduler` (producers/scheduler/schedule.py): durations, every/cron,
missed slots, run ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from producers.scheduler.schedule import (
    Cron,
    Every,
    jitter_seconds,
    parse_duration,
    parse_schedule,
    parse_time,
    plan,
    run_id,
    slot_of,
    slots_between,
)
from streams.runs.identity import scheduled_run_id


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"), [("30s", 30), ("5m", 300), ("1h30m", 5400), ("1d", 86400), ("45", 45), ("2s", 2)]
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "5x", "m5", "5m 3", "-5m", "1.5h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match=r"duration|longer than 0"):
        parse_duration(text)


def test_every_is_aligned_to_the_epoch() -> None:
    every = Every.parse("5m")
    assert every.next_after(t("2026-11-23T12:03:17")) == t("2026-11-23T12:05:00")
    assert every.next_after(t("2026-11-23T12:05:00")) == t("2026-11-23T12:10:00")  # strictly after
    assert Every.parse("2s").next_after(t("2026-11-23T12:00:01.500000")) == t("2026-11-23T12:00:02")


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("*/5 * * * *", "2026-11-23T12:03:00", "2026-11-23T12:05:00"),
        ("*/5 * * * *", "2026-11-23T12:05:00", "2026-11-23T12:10:00"),
        ("0 * * * *", "2026-11-23T23:30:00", "2026-11-24T00:00:00"),
        ("30 2 * * *", "2026-11-23T03:00:00", "2026-11-24T02:30:00"),
        ("0 0 1 * *", "2026-12-15T00:00:00", "2027-01-01T00:00:00"),
        ("0 0 29 2 *", "2026-03-01T00:00:00", "2028-02-29T00:00:00"),  # leap day
        ("0 9 * * 1-5", "2026-11-27T10:00:00", "2026-11-30T09:00:00"),  # Friday → Monday
        ("0 9 * * 7", "2026-11-23T00:00:00", "2026-11-29T09:00:00"),  # 7 is Sunday
        ("0 0 1 * 1", "2026-11-23T01:00:00", "2026-11-30T00:00:00"),  # day OR weekday (Monday 30th)
        ("15,45 8-10/2 * * *", "2026-11-23T08:20:00", "2026-11-23T08:45:00"),
        ("15,45 8-10/2 * * *", "2026-11-23T08:50:00", "2026-11-23T10:15:00"),
    ],
)
def test_cron_next(expression: str, after: str, expected: str) -> None:
    assert Cron.parse(expression).next_after(t(after)) == t(expected)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * * *", "5 fields"),
        ("* * * * * *", "5 fields"),
        ("60 * * * *", "bad minute"),
        ("* 24 * * *", "bad hour"),
        ("*/0 * * * *", "bad minute"),
        ("a * * * *", "bad minute"),
        ("* * 0 * *", "bad day-of-month"),
        ("* * * 13 *", "bad month"),
        ("* * * * 8", "bad day-of-week"),
        ("* * * * FUN", "bad day-of-week"),
        ("5-1 * * * *", "bad minute"),
    ],
)
def test_bad_cron(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Cron.parse(expression)


def test_cron_that_never_runs_is_refused_when_parsed() -> None:
    with pytest.raises(ValueError, match="day-of-month"):
        Cron.parse("0 0 31 2 *")


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("0 9 * * MON-FRI", "2026-11-27T10:00:00", "2026-11-30T09:00:00"),  # Friday → Monday
        ("0 9 * * sun", "2026-11-23T00:00:00", "2026-11-29T09:00:00"),  # names in any case
        ("0 0 1 JAN,JUL *", "2026-02-01T00:00:00", "2026-07-01T00:00:00"),
        ("0 0 L * *", "2026-11-02T00:00:00", "2026-11-30T00:00:00"),  # the last day of the month
        ("0 0 * * MON#1", "2026-11-03T00:00:00", "2026-12-07T00:00:00"),  # the first Monday
    ],
)
def test_cron_takes_names_and_the_usual_extensions(expression: str, after: str, expected: str) -> None:
    assert Cron.parse(expression).next_after(t(after)) == t(expected)


def test_restricted_day_of_month_and_day_of_week_follow_vixie_cron() -> None:
    """Both day fields restricted: a day matching either runs, except that a field starting with ``*``
    (such as ``*/2``) counts as unrestricted, so both must match (Vixie/Debian cron, Kubernetes)."""
    after = t("2026-11-01T00:00:00")  # a Sunday
    odd_mondays = Cron.parse("0 0 */2 * 1")  # odd days that are Mondays
    assert [odd_mondays.next_after(s) for s in (after, t("2026-11-09T00:00:00"))] == [
        t("2026-11-09T00:00:00"),
        t("2026-11-23T00:00:00"),
    ]
    odd_or_monday = Cron.parse("0 0 1-31/2 * 1")  # no leading *: odd days, or Mondays
    assert [odd_or_monday.next_after(s) for s in (after, t("2026-11-02T00:00:00"))] == [
        t("2026-11-02T00:00:00"),
        t("2026-11-03T00:00:00"),
    ]


def test_parse_schedule_needs_exactly_one() -> None:
    assert parse_schedule("5m", None) == Every(300)
    assert isinstance(parse_schedule(None, "*/5 * * * *"), Cron)
    for every, cron in ((None, None), ("5m", "* * * * *")):
        with pytest.raises(ValueError, match="exactly one"):
            parse_schedule(every, cron)
    with pytest.raises(ValueError, match=r"^--every: "):
        parse_schedule("soon", None)
    with pytest.raises(ValueError, match=r"^--cron: "):
        parse_schedule(None, "* *")


def test_slots_between_is_inclusive() -> None:
    slots = list(slots_between(Every(300), t("2026-11-23T12:00:00"), t("2026-11-23T12:15:00")))
    assert slots == [t("2026-11-23T12:00:00"), t("2026-11-23T12:05:00"), t("2026-11-23T12:10:00"),
                     t("2026-11-23T12:15:00")]  # fmt: skip
    cron = list(slots_between(Cron.parse("*/5 * * * *"), t("2026-11-23T12:01:00"), t("2026-11-23T12:14:59")))
    assert cron == [t("2026-11-23T12:05:00"), t("2026-11-23T12:10:00")]


def test_missed_slots_latest_once() -> None:
    now = t("2026-11-23T12:21:00")
    due = [
        t("2026-11-23T12:05:00"),
        t("2026-11-23T12:10:00"),
        t("2026-11-23T12:15:00"),
        t("2026-11-23T12:20:00"),
    ]
    decided = plan(due, now, "latest", grace=60)
    assert decided.run == t("2026-11-23T12:20:00")
    assert decided.skipped == tuple(due[:-1])
    assert plan([], now, "latest", 60).run is None


def test_missed_slots_skip_runs_only_a_fresh_slot() -> None:
    due = [t("2026-11-23T12:15:00"), t("2026-11-23T12:20:00")]
    fresh = plan(due, t("2026-11-23T12:20:30"), "skip", grace=60)
    assert fresh.run == due[-1] and fresh.skipped == (due[0],)
    stale = plan(due, t("2026-11-23T12:24:00"), "skip", grace=60)
    assert stale.run is None and stale.skipped == tuple(due)


def test_run_ids_are_those_of_enqueue_and_round_trip() -> None:
    slot = t("2026-11-23T12:05:00")
    assert run_id("nightly", slot) == "nightly-20261123T120500Z"
    assert run_id("nightly", slot) == scheduled_run_id("nightly", "2026-11-23T12:05:00Z")
    assert slot_of("nightly", "nightly-20261123T120500Z") == slot
    assert slot_of("nightly", "other-20261123T120500Z") is None
    assert slot_of("nightly", "nightly-manual") is None
    with pytest.raises(ValueError):
        run_id("bad name", slot)


def test_jitter_is_deterministic_and_bounded() -> None:
    slot = t("2026-11-23T12:05:00")
    values = {jitter_seconds("s", slot + timedelta(minutes=5 * i), 30) for i in range(50)}
    assert all(0 <= v < 30 for v in values) and len(values) > 40
    assert jitter_seconds("s", slot, 30) == jitter_seconds("s", slot, 30)
    assert jitter_seconds("s", slot, 0) == 0


def test_parse_time() -> None:
    assert parse_time("2026-11-23T12:00:00Z") == t("2026-11-23T12:00:00")
    assert parse_time("2026-11-23T13:00:00+01:00") == t("2026-11-23T12:00:00")
    assert parse_time("2026-11-23 12:00") == t("2026-11-23T12:00:00")
    with pytest.raises(ValueError, match="ISO-8601"):
        parse_time("yesterday")
