"""Logging for services: one JSON object per line when stderr is not a terminal, readable lines on one.

``setup_logging(level, fmt)``: ``fmt`` is ``auto`` (JSON unless stderr is a TTY), ``json`` or ``text``
(the ``KCOLLECT_LOG_FORMAT`` setting). JSON lines carry ``ts`` (UTC ISO-8601 with milliseconds),
``level``, ``logger``, ``msg``, ``exc`` for tracebacks, and any ``extra={...}`` fields a caller adds.
Every message passes ``redact`` first: ``password=...``, ``sasl.password``, tokens and the password
part of URLs (``scheme://user:secret@host``) are replaced by ``***``, so a secret that slips into a
message is not written out.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

import orjson

from streams.settings.names import variable

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@", re.IGNORECASE)
_KEY_VALUE = re.compile(
    r"(?P<key>[\w.-]*(?:password|secret|token|credentials?)[\w.-]*['\"]?\s*[=:]\s*['\"]?)[^\s'\",}]+",
    re.IGNORECASE,
)
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def redact(text: str) -> str:
    """``text`` with URL passwords and ``*password*=value``-style secrets replaced by ``***``."""
    text = _URL_PASSWORD.sub(r"\g<head>***@", text)
    return _KEY_VALUE.sub(r"\g<key>***", text)


class JsonFormatter(logging.Formatter):
    """One JSON object per record (keys: ts, level, logger, msg, exc, and extra fields)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        if record.exc_info:
            data["exc"] = redact(self.formatException(record.exc_info))
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        return orjson.dumps(data, default=str).decode()


class RedactingFormatter(logging.Formatter):
    """The readable format, redacted like the JSON one."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def wants_json(fmt: Literal["auto", "json", "text"], stream: TextIO) -> bool:
    if fmt != "auto":
        return fmt == "json"
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def log_format_from_env() -> Literal["auto", "json", "text"]:
    """``KCOLLECT_LOG_FORMAT`` without validating every other setting (for the CLI's callback)."""
    value = os.environ.get(variable("log_format"), "auto").strip().lower()
    return value if value in ("json", "text") else "auto"  # type: ignore[return-value]


def setup_logging(
    level: str | int = "INFO", fmt: Literal["auto", "json", "text"] = "auto", stream: TextIO | None = None
) -> logging.Handler:
    """Replace the root logger's handlers with one on ``stream`` (stderr); returns the handler."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if wants_json(fmt, stream) else RedactingFormatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
