"""Exit codes and the one place that turns known errors into a clear message and a non-zero exit."""

from __future__ import annotations

import sys
from collections.abc import Callable
from enum import IntEnum
from functools import wraps
from typing import ParamSpec, TypeVar

from processors.processor.config import ConfigError
from processors.processor.dead_letters import ProcessorFailing
from producers.enqueue.dedup import SpillError
from producers.enqueue.enqueue import EnqueueIncompleteError
from producers.enqueue.sources import SourceError, SourceReadError
from producers.enqueue.throttle import ThrottleTimeout
from streams.clickhouse.client import ClickHouseUnavailableError
from streams.kafka.admin import BrokerUnreachableError, TopicChangeRefused, TopicMissingError
from streams.runs.identity import DeadlineError
from streams.runs.manifests import ManifestNotDeliveredError
from streams.settings.names import SettingsError
from streams.steps.commit import DeliveryFailed

P = ParamSpec("P")
R = TypeVar("R")


class ExitCode(IntEnum):
    """Every exit code of the commands: the one place they are numbered and said (``EXIT_CODES_HELP``)."""

    DONE = 0
    FAILED = 1
    USAGE = 2
    BROKER_UNREACHABLE = 3
    TOPIC_MISSING = 4
    CLICKHOUSE_UNAVAILABLE = 5
    NOT_DELIVERED = 6
    SOURCE_UNREADABLE = 7
    TOPIC_CHANGE_REFUSED = 8


MEANINGS = {
    ExitCode.DONE: "done",
    ExitCode.FAILED: "run incomplete or failed",
    ExitCode.USAGE: "bad settings or arguments",
    ExitCode.BROKER_UNREACHABLE: "broker unreachable",
    ExitCode.TOPIC_MISSING: "topic missing",
    ExitCode.CLICKHOUSE_UNAVAILABLE: "ClickHouse unavailable",
    ExitCode.NOT_DELIVERED: "deliveries not confirmed",
    ExitCode.SOURCE_UNREADABLE: (
        "client source unreadable (enqueue: a file that cannot be read, a failing ClickHouse query)"
    ),
    ExitCode.TOPIC_CHANGE_REFUSED: "the broker refused a topic change (topics grow)",
}
EXIT_CODES_HELP = "Exit codes: " + "; ".join(f"{code.value} {MEANINGS[code]}" for code in ExitCode) + "."

# (error, exit code, what the message starts with after "kcollect: "); the first that matches wins
ERROR_EXIT_CODES: tuple[tuple[type[Exception], ExitCode, str], ...] = (
    (SettingsError, ExitCode.USAGE, ""),
    (DeadlineError, ExitCode.USAGE, ""),
    (ConfigError, ExitCode.USAGE, "processor config: "),
    (SourceReadError, ExitCode.SOURCE_UNREADABLE, ""),
    (SourceError, ExitCode.USAGE, ""),
    (BrokerUnreachableError, ExitCode.BROKER_UNREACHABLE, ""),
    (TopicMissingError, ExitCode.TOPIC_MISSING, ""),
    (TopicChangeRefused, ExitCode.TOPIC_CHANGE_REFUSED, ""),
    (ClickHouseUnavailableError, ExitCode.CLICKHOUSE_UNAVAILABLE, ""),
    (EnqueueIncompleteError, ExitCode.NOT_DELIVERED, ""),
    (ThrottleTimeout, ExitCode.FAILED, ""),
    (DeliveryFailed, ExitCode.NOT_DELIVERED, ""),
    (ManifestNotDeliveredError, ExitCode.NOT_DELIVERED, ""),
    (ProcessorFailing, ExitCode.FAILED, "processor stopped: "),
    (SpillError, ExitCode.FAILED, ""),  # enqueue's duplicate removal could not use its temporary directory
)


def exit_on_known_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn``; a known error prints ``kcollect: <message>`` to stderr and exits with its code."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except tuple(cls for cls, _, _ in ERROR_EXIT_CODES) as exc:
            code, lead = next((code, lead) for cls, code, lead in ERROR_EXIT_CODES if isinstance(exc, cls))
            print(f"kcollect: {lead}{exc}", file=sys.stderr)
            raise SystemExit(code) from None

    return wrapper
