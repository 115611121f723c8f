"""Options that take one of a fixed set of values, as Enums: typer lists the values in ``--help`` and
refuses any other with a one-line error and exit 2 (``kcollect.cli.main``)."""

from __future__ import annotations

from enum import StrEnum


class LogLevel(StrEnum):
    """Written as ``--help`` lists them (any case is taken); ``logging`` wants the upper case."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class CatchUp(StrEnum):
    """Missed slots after downtime: the newest once, or none."""

    latest = "latest"
    skip = "skip"


class Overlap(StrEnum):
    """The schedule's previous run is still incomplete: skip the slot, queue one, or start anyway."""

    skip = "skip"
    queue = "queue"
    allow = "allow"


class ValueCheck(StrEnum):
    """``runs verify --values``."""

    auto = "auto"
    simulated = "simulated"
    none = "none"


class DeadLetterStage(StrEnum):
    """Stages that dead-letter a request (``processors.processor.steps``; each named in
    ``processors.processor.dead_letters``' log words)."""

    decode = "decode"
    deadline = "deadline"
    fetch = "fetch"
    compute = "compute"
    produce = "produce"  # a result too large for the results topic (RecordTooLarge)


class SettingsFormat(StrEnum):
    """``settings show --format``: lines for reading, one JSON object, or an env file that
    ``KCOLLECT_SETTINGS_FILE`` reads back."""

    text = "text"
    json = "json"
    env = "env"
