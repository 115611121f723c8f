"""Exit codes and the one place that turns known errors into a clear message and a non-zero exit."""

from __future__ import annotations

import sys
from collections.abc import Callable
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

EXIT_CODES_HELP = """Exit codes: 0 done; 1 run incomplete or failed; 2 bad settings or arguments;
3 broker unreachable; 4 topic missing; 5 ClickHouse unavailable; 6 deliveries not confirmed;
7 client source unreadable (enqueue: a file that cannot be read, a failing ClickHouse query);
8 the broker refused a topic change (topics grow)."""

# (error, exit code, what the message starts with after "kcollect: "); the first that matches wins
ERROR_EXIT_CODES: tuple[tuple[type[Exception], int, str], ...] = (
    (SettingsError, 2, ""),
    (DeadlineError, 2, ""),
    (ConfigError, 2, "processor config: "),
    (SourceReadError, 7, ""),
    (SourceError, 2, ""),
    (BrokerUnreachableError, 3, ""),
    (TopicMissingError, 4, ""),
    (TopicChangeRefused, 8, ""),
    (ClickHouseUnavailableError, 5, ""),
    (EnqueueIncompleteError, 6, ""),
    (ThrottleTimeout, 1, ""),
    (DeliveryFailed, 6, ""),
    (ManifestNotDeliveredError, 6, ""),
    (ProcessorFailing, 1, "processor stopped: "),
    (SpillError, 1, ""),  # enqueue's duplicate removal could not use its temporary directory
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
