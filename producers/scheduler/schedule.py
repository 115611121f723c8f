"""Pure slot math for `kcollect scheduler`: schedules, slot enumeration, missed slots, run ids, jitter.

A schedule is ``Every`` (a fixed period aligned to the Unix epoch, so every instance computes the same
slots: ``--every 5m`` gives :00, :05, ...) or ``Cron`` (five fields, UTC). Slots are UTC datetimes
with whole seconds. The run id of a slot is ``NAME-YYYYMMDDTHHMMSSZ`` (as ``kcollect enqueue
--schedule NAME --scheduled-for SLOT``), so every scheduler instance, restart or retry names a slot
the same way.

Missed slots (after downtime, ``plan``): ``latest`` (default) enqueues only the newest slot that is due
and skips the older ones ("latest once"); ``skip`` enqueues a slot only while it is fresh (at most
``grace`` seconds old) and skips anything older.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from producers.scheduler.cron import Cron, utc
from schemas.models import check_run_id
from streams.runs.identity import SLOT_TIME_FORMAT, Deadline

__all__ = ["Cron", "Every", "Plan", "Schedule", "parse_schedule", "plan", "run_id", "slot_of", "utc"]
CatchUp = Literal["latest", "skip"]
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+)([smhd])")
RUN_ID_TIME = SLOT_TIME_FORMAT  # streams/runs/identity.py: the processor reads slots back
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_duration(text: str) -> int:
    """Seconds of ``30s``, ``5m``, ``1h30m``, ``1d`` or a bare number of seconds; ValueError otherwise."""
    text = text.strip().lower()
    if text.isdigit():
        seconds = int(text)
    else:
        parts = _DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise ValueError(f"must be a duration like 30s, 5m, 1h30m or 1d (got {text!r})")
        seconds = sum(int(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError(f"must be longer than 0 s (got {text!r})")
    return seconds


class Schedule(Protocol):
    def next_after(self, when: datetime) -> datetime:
        """The first slot strictly after ``when``."""

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Every:
    """Every ``seconds``, aligned to the epoch."""

    seconds: int

    @classmethod
    def parse(cls, text: str) -> Every:
        return cls(parse_duration(text))

    def next_after(self, when: datetime) -> datetime:
        elapsed = int((when.astimezone(UTC) - EPOCH).total_seconds() // 1)
        return EPOCH + timedelta(seconds=(elapsed // self.seconds + 1) * self.seconds)

    def describe(self) -> str:
        return f"every {self.seconds}s"


def parse_schedule(every: str | None, cron: str | None) -> Schedule:
    """``--every`` or ``--cron`` (exactly one); ValueError naming the option."""
    if (every is None) == (cron is None):
        raise ValueError("give exactly one of --every and --cron")
    try:
        return Every.parse(every) if every is not None else Cron.parse(cron or "")
    except ValueError as exc:
        raise ValueError(f"{'--every' if every is not None else '--cron'}: {exc}") from None


def slots_between(schedule: Schedule, start: datetime, end: datetime) -> Iterator[datetime]:
    """Slots ``s`` with ``start <= s <= end``, oldest first."""
    slot = schedule.next_after(utc(start) - timedelta(seconds=1))
    while slot <= end:
        yield slot
        slot = schedule.next_after(slot)


@dataclass(frozen=True)
class Plan:
    """What to do with the slots due since the last one handled."""

    run: datetime | None
    skipped: tuple[datetime, ...]


def plan(due: list[datetime], now: datetime, catch_up: CatchUp, grace: float) -> Plan:
    """Choose among ``due`` (oldest first, all ``<= now``): at most one slot to run, the rest skipped."""
    if not due:
        return Plan(None, ())
    newest = due[-1]
    if catch_up == "skip" and (now - newest).total_seconds() > grace:
        return Plan(None, tuple(due))
    return Plan(newest, tuple(due[:-1]))


def run_id(name: str, slot: datetime) -> str:
    """``NAME-YYYYMMDDTHHMMSSZ``; ValueError when that is not a valid run id."""
    return check_run_id(f"{name}-{utc(slot):{RUN_ID_TIME}}")


def slot_of(name: str, run_id_text: str) -> datetime | None:
    """The slot a run id of schedule ``name`` stands for (None for other run ids)."""
    prefix = f"{name}-"
    if not run_id_text.startswith(prefix):
        return None
    try:
        return datetime.strptime(run_id_text[len(prefix) :], RUN_ID_TIME).replace(tzinfo=UTC)
    except ValueError:
        return None


def jitter_seconds(name: str, slot: datetime, jitter: float) -> float:
    """A delay in ``[0, jitter)`` that every instance computes alike for the same slot."""
    if jitter <= 0:
        return 0.0
    digest = hashlib.sha256(run_id(name, slot).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * jitter


def parse_time(text: str) -> datetime:
    """An ISO-8601 time (``Z`` or an offset; none means UTC); ValueError saying the expected form."""
    try:
        return utc(datetime.fromisoformat(text.strip()))
    except ValueError:
        raise ValueError(f"must be an ISO-8601 time such as 2026-11-23T12:00:00Z (got {text!r})") from None


def parse_deadline(text: str) -> Deadline:
    """``--deadline``: a duration (``90m``, ``2h``, ``1h30m``, ``1d``, seconds) after the run's request
    time, or an ISO-8601 time (no offset: UTC); ValueError naming the option otherwise."""
    try:
        return Deadline(after_ms=parse_duration(text) * 1000)
    except ValueError:
        pass
    try:
        when = parse_time(text)
    except ValueError:
        raise ValueError(
            "--deadline must be a duration after the run's request time (90m, 2h, 1d) or an ISO-8601 "
            f"time such as 2026-11-23T18:00:00Z (got {text!r})"
        ) from None
    return Deadline(at_ms=int(when.timestamp() * 1000))
