"""Crash points for drills and tests: ``KCOLLECT_FAULT_AT=point:N[,point:N...]``.

``fault_point("after_insert")`` makes the process die at once with ``os._exit(97)`` (no cleanup, no
flush, no commit: as close to ``kill -9`` as Python gets) the Nth time that point is reached. When the
variable is unset the call is one dictionary check, so the points stay in production code.

Points: in the processor ``after_poll`` (a consumed batch reaches the chain), ``after_fetch`` (its
metrics are fetched and computed, nothing produced yet), ``after_produce`` (its results are handed to
the producer, not yet confirmed or committed); in the sink ``before_insert`` (before each ClickHouse
insert) and ``after_insert`` (ClickHouse acknowledged an insert, its offsets not yet committed); in
both ``before_commit`` (before each offset commit is sent to the broker, streams/steps/commit.py).
"""

from __future__ import annotations

import logging
import os

from streams.settings.names import variable

ENV_VARIABLE = variable("fault_at")
EXIT_CODE = 97
POINTS = ("after_poll", "after_fetch", "after_produce", "before_insert", "after_insert", "before_commit")

log = logging.getLogger(__name__)


def parse_plan(spec: str | None) -> dict[str, int]:
    """``"after_insert:2,before_commit:1"`` -> ``{"after_insert": 2, "before_commit": 1}``.

    A point without a count means 1; an unknown point or a bad count raises ValueError.
    """
    plan: dict[str, int] = {}
    for part in (spec or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, _, count = part.partition(":")
        if name not in POINTS:
            raise ValueError(f"{ENV_VARIABLE}: unknown crash point {name!r} (known: {', '.join(POINTS)})")
        if count and (not count.isdigit() or int(count) < 1):
            raise ValueError(f"{ENV_VARIABLE}: the count of {name} must be a positive integer")
        plan[name] = int(count) if count else 1
    return plan


_plan: dict[str, int] = parse_plan(os.environ.get(ENV_VARIABLE))
_seen: dict[str, int] = {}


def configure(spec: str | None) -> None:
    """Replace the plan (tests); ``None`` or ``""`` disables every point."""
    global _plan
    _plan = parse_plan(spec)
    _seen.clear()


def fault_point(name: str) -> None:
    """Die with exit code 97 when ``name`` is reached for the planned Nth time; otherwise nothing."""
    if not _plan:
        return
    target = _plan.get(name)
    if target is None:
        return
    seen = _seen.get(name, 0) + 1
    _seen[name] = seen
    if seen >= target:
        log.error("crash point %s reached (%d): exiting with %d", name, seen, EXIT_CODE)
        for handler in logging.getLogger().handlers:
            handler.flush()
        os._exit(EXIT_CODE)
