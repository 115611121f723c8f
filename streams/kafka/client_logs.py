"""librdkafka's log lines and error callbacks through Python logging, each distinct message once.

Every client built from ``streams.kafka_config`` gets ``logger`` and ``error_cb`` from here, so
librdkafka never writes to stderr itself. An unreachable broker makes librdkafka report the same
failure every few milliseconds ("Connect to ipv4#127.0.0.1:1 failed: Connection refused (after 0ms in
state CONNECT)"): such repeats differ only in timings, counters and the client's name, so the text
is normalised (``message_key``) and each distinct one is logged once per process, on logger
``kcollect.librdkafka``; later repeats are counted, not logged. The set of seen keys is bounded.

``StartWatch`` is the quiet variant for a command's first contact with the broker (``streams.admin``):
it logs nothing above DEBUG, keeps the last error, and notes an authentication failure, so the command
can fail with one clear line (``BrokerUnreachableError``, exit code 3) instead of a storm of lines.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any

from confluent_kafka import KafkaError

log = logging.getLogger("kcollect.librdkafka")

MAX_DISTINCT = 2000
_THREAD_PREFIX = re.compile(r"^\[thrd:[^\]]*\]:\s*")
_TIMINGS = re.compile(r"\s*\((?:after \d+ms in state \w+)?(?:, )?(?:\d+ identical error\(s\) suppressed)?\)")
_NUMBERS = re.compile(r"\b\d+ms\b")
AUTH_CODES = frozenset({KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED})


def message_key(text: str) -> str:
    """``text`` without the parts that change between repeats (thread tag, timings, repeat counts)."""
    text = _THREAD_PREFIX.sub("", text)
    text = _TIMINGS.sub("", text)
    return _NUMBERS.sub("Nms", text).strip()


class OncePerMessage:
    """Remembers which normalised messages were seen; thread-safe, bounded to ``limit`` keys."""

    def __init__(self, limit: int = MAX_DISTINCT) -> None:
        self._limit = limit
        self._seen: dict[str, int] = {}
        self._lock = threading.Lock()

    def first(self, key: str) -> bool:
        """True the first time ``key`` is seen (and after the memory was full and cleared)."""
        with self._lock:
            count = self._seen.get(key)
            if count is not None:
                self._seen[key] = count + 1
                return False
            if len(self._seen) >= self._limit:
                self._seen.clear()
            self._seen[key] = 1
            return True

    def repeats(self, key: str) -> int:
        with self._lock:
            return self._seen.get(key, 0)

    def total(self) -> int:
        """Messages seen since the memory was last cleared, repeats included."""
        with self._lock:
            return sum(self._seen.values())


class LibrdkafkaLog:
    """A ``logger`` (``.log(level, fmt, *args)``, as confluent-kafka calls it) and an ``error_cb``."""

    def __init__(self, target: logging.Logger = log, seen: OncePerMessage | None = None) -> None:
        self._target = target
        self.seen = seen or OncePerMessage()

    def log(self, level: int, fmt: str, *args: Any) -> None:
        facility, text = (str(args[0]), str(args[2])) if len(args) == 3 else ("", fmt % args if args else fmt)
        if self.seen.first(f"log:{facility}:{message_key(text)}"):
            self._target.log(level, "%s: %s", facility or "librdkafka", message_key(text))

    def error(self, err: KafkaError) -> None:
        text = err.str()
        if self.seen.first(f"error:{err.code()}:{message_key(text)}"):
            level = logging.ERROR if err.fatal() else logging.WARNING
            self._target.log(level, "kafka error %s: %s", err.name(), message_key(text))


PROCESS_LOG = LibrdkafkaLog()
"""The one log every client of this process shares (so a message repeated by many clients shows once)."""


def with_logging(config: dict[str, Any], hooks: LibrdkafkaLog = PROCESS_LOG) -> dict[str, Any]:
    """``config`` with ``logger`` and ``error_cb`` set; an ``error_cb`` already there is called too."""
    config = dict(config)
    given = config.get("logger")
    if isinstance(given, LibrdkafkaLog):
        hooks = given  # a caller's own hooks (a StartWatch) replace the process log
    config.setdefault("logger", hooks)
    own = config.get("error_cb")
    if own is None:
        config["error_cb"] = hooks.error
    elif own != hooks.error:

        def both(err: KafkaError) -> None:
            hooks.error(err)
            own(err)

        config["error_cb"] = both
    return config


class StartWatch(LibrdkafkaLog):
    """The hooks of a first contact: quiet (DEBUG), remembering the last error and any auth failure."""

    def __init__(self) -> None:
        super().__init__(logging.getLogger("kcollect.librdkafka.start"), OncePerMessage())
        self.last_error = ""
        self.auth_failure = ""

    def log(self, level: int, fmt: str, *args: Any) -> None:
        super().log(logging.DEBUG, fmt, *args)

    def error(self, err: KafkaError) -> None:
        self._target.debug("kafka error %s: %s", err.name(), err.str())
        self.last_error = message_key(err.str())
        if err.code() in AUTH_CODES:
            self.auth_failure = self.last_error
