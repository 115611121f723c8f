"""The ``KCOLLECT_`` prefix of every setting's variable, and the error every settings module raises.

The lowest module of ``streams.settings``: it imports none of the others.
"""

from __future__ import annotations

ENV_PREFIX = "KCOLLECT_"


class SettingsError(ValueError):
    """Settings that cannot be used; the message names the variable(s)."""


def variable(field: str) -> str:
    """The environment variable of a settings field: ``partitions`` -> ``KCOLLECT_PARTITIONS``."""
    return f"{ENV_PREFIX}{field.upper()}"


def field_of(key: str) -> str:
    """The field a settings-file key names: ``KCOLLECT_PARTITIONS`` or ``partitions`` -> ``partitions``."""
    return key[len(ENV_PREFIX) :].lower() if key.upper().startswith(ENV_PREFIX) else key.lower()
