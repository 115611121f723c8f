"""Five-field cron schedules (minute hour day-of-month month day-of-week), evaluated in UTC.

Parsing and matching are cronsim's (https://github.com/cuu508/cronsim, the cron engine of
Healthchecks.io): numbers, ``*``, ranges, steps, lists, names (``MON``, ``JAN``, any case), ``L``
(last day of the month), ``W`` (nearest weekday) and ``#`` (``MON#1``: the first Monday); day of week
0-7 (0 and 7 are Sunday). The day rule is Vixie/Debian cron's (as Kubernetes CronJobs): when both day
fields are restricted a day matching either runs, but a field starting with ``*`` (``*/2``) counts as
unrestricted, so ``0 0 */2 * 1`` runs on odd days that are Mondays, and ``0 0 1-31/2 * 1`` on odd
days and on Mondays. An expression that can never run (``0 0 31 2 *``) is refused when parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cronsim import CronSim, CronSimError


def utc(when: datetime) -> datetime:
    """``when`` in UTC (naive means UTC), microseconds dropped."""
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return when.replace(microsecond=0)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Cron:
    """A five-field cron expression, evaluated in UTC (see the module docstring for the rules)."""

    expression: str

    @classmethod
    def parse(cls, text: str) -> Cron:
        fields = text.split()
        if len(fields) != 5:
            raise ValueError(
                f"cron needs 5 fields: minute hour day-of-month month day-of-week (got {text!r})"
            )
        expression = " ".join(fields)
        try:
            CronSim(expression, EPOCH)
        except CronSimError as exc:
            raise ValueError(f"cron {expression!r}: {str(exc).lower()}") from None
        return cls(expression)

    def next_after(self, when: datetime) -> datetime:
        """The first slot strictly after ``when`` (whole minutes, UTC)."""
        try:
            return utc(next(CronSim(self.expression, utc(when))))
        except StopIteration:
            raise ValueError(f"cron {self.expression!r} never runs after {utc(when).isoformat()}") from None

    def describe(self) -> str:
        return f"cron {self.expression!r}"
