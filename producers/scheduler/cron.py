"""A minimal five-field cron (minute hour day-of-month month day-of-week), evaluated in UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def utc(when: datetime) -> datetime:
    """``when`` in UTC (naive means UTC), microseconds dropped."""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.replace(microsecond=0)


def _field(text: str, low: int, high: int, name: str) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"cron {name} field has a bad step in {part!r}")
        if body == "*":
            first, last = low, high
        elif body.isdigit():
            first = int(body)
            last = high if step else first
        elif re.fullmatch(r"\d+-\d+", body):
            first, last = (int(x) for x in body.split("-"))
        else:
            raise ValueError(f"cron {name} field has a bad value {part!r}")
        if not low <= first <= last <= high:
            raise ValueError(f"cron {name} field must stay within {low}-{high} (got {part!r})")
        values.update(range(first, last + 1, step or 1))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    """A five-field cron expression (minute hour day-of-month month day-of-week), evaluated in UTC.

    Supports ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``, lists; day of week 0-7 (0 and
    7 are Sunday). As in Vixie cron, when both day fields are restricted a day matching either runs.
    """

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, text: str) -> Cron:
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(f"cron needs 5 fields: minute hour day month weekday (got {text!r})")
        weekdays = _field(fields[4], 0, 7, "weekday")
        return cls(
            " ".join(fields),
            _field(fields[0], 0, 59, "minute"),
            _field(fields[1], 0, 23, "hour"),
            _field(fields[2], 1, 31, "day"),
            _field(fields[3], 1, 12, "month"),
            frozenset(d % 7 for d in weekdays),
            fields[2] != "*",
            fields[4] != "*",
        )

    def _day_matches(self, when: datetime) -> bool:
        day_ok = when.day in self.days
        weekday_ok = (when.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def next_after(self, when: datetime) -> datetime:
        slot = utc(when).replace(second=0) + timedelta(minutes=1)
        limit = slot + timedelta(days=366 * 5)
        while slot < limit:
            if slot.month not in self.months or not self._day_matches(slot):
                slot = (slot + timedelta(days=1)).replace(hour=0, minute=0)
            elif slot.hour not in self.hours:
                slot = (slot + timedelta(hours=1)).replace(minute=0)
            elif slot.minute not in self.minutes:
                slot += timedelta(minutes=1)
            else:
                return slot
        raise ValueError(f"cron {self.expression!r} never runs")

    def describe(self) -> str:
        return f"cron {self.expression!r}"
