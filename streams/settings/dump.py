"""Every setting by variable name with its secrets masked, for ``kcollect settings show``, logs and
``repr(settings)``."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, SecretStr

from streams.settings.names import variable

MASK = "***"
SECRET_WORDS = ("password", "secret", "token", "credential", "private", "sasl.jaas")


def mask_url(url: str) -> str:
    """A URL with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:{MASK}@{netloc[1]}"))


def is_secret_key(key: str) -> bool:
    return any(word in key.lower() for word in SECRET_WORDS)


def settings_dump(settings: BaseModel) -> dict[str, Any]:
    """Every setting by variable name, with secrets masked (safe to print or log)."""
    dump: dict[str, Any] = {}
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            value = MASK
        elif name == "clickhouse_url" and isinstance(value, str):
            value = mask_url(value)
        elif name == "kafka_config" and isinstance(value, dict):
            value = {k: MASK if is_secret_key(k) else v for k, v in value.items()}
        dump[variable(name)] = value
    return dump
