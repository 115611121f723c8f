"""Where settings come from besides ``KCOLLECT_*`` variables: a settings file and ``*_FILE`` secrets.

Priority, highest first: arguments given in code, ``KCOLLECT_*`` variables, secrets read from files
named by ``KCOLLECT_<SECRET>_FILE``, the settings file named by ``KCOLLECT_SETTINGS_FILE``, defaults.

The settings file is TOML (``.toml``), JSON (``.json``) or env lines (anything else:
``KEY=VALUE``, ``#`` comments, optional quotes). Keys are field names (``partitions``) or variable
names (``KCOLLECT_PARTITIONS``); an unknown key is an error naming the file and the key. Problems
raise ``SettingsError`` with one line naming the variable, never the secret.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
from pydantic import SecretStr
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from streams.settings.names import SettingsError, field_of, variable

SETTINGS_FILE_VARIABLE = variable("settings_file")
SECRET_FIELDS = ("clickhouse_password", "kafka_sasl_password", "kafka_ssl_key_password")


def _env_lines(text: str, path: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"{SETTINGS_FILE_VARIABLE}: {path} line {number} is not KEY=VALUE")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def read_settings_file(path: Path) -> dict[str, Any]:
    """The raw key → value mapping of a settings file; SettingsError when unreadable or malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{SETTINGS_FILE_VARIABLE}: cannot read {path}: {_reason(exc)}") from None
    try:
        if path.suffix == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix == ".json":
            data = orjson.loads(text)
        else:
            data = _env_lines(text, path)
    except (tomllib.TOMLDecodeError, orjson.JSONDecodeError) as exc:
        raise SettingsError(
            f"{SETTINGS_FILE_VARIABLE}: {path} is not valid {path.suffix[1:]}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise SettingsError(f"{SETTINGS_FILE_VARIABLE}: {path} must hold a table/object of settings")
    return data


def _reason(exc: BaseException) -> str:
    return exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__


def normalise_keys(data: dict[str, Any], fields: set[str], path: Path) -> dict[str, Any]:
    """Field-name keys; SettingsError naming the first unknown key."""
    result: dict[str, Any] = {}
    for key, value in data.items():
        name = field_of(key)
        if name not in fields or name == "settings_file":
            raise SettingsError(f"{SETTINGS_FILE_VARIABLE}: {path} names an unknown setting {key!r}")
        if isinstance(value, dict) and name != "kafka_config":
            raise SettingsError(f"{SETTINGS_FILE_VARIABLE}: {path}: {key} must be a single value")
        if name == "kafka_config" and isinstance(value, str):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise SettingsError(
                    f"{SETTINGS_FILE_VARIABLE}: {path}: {key} must be a JSON object"
                ) from None
        result[name] = value
    return result


def read_secret_file(variable: str, path_text: str) -> str:
    """The content of a secret file without its trailing newline; the error names the variable only."""
    path = Path(path_text)
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{variable}: cannot read the secret file {path}: {_reason(exc)}") from None


class SettingsFileSource(PydanticBaseSettingsSource):
    """Values from the file named by ``KCOLLECT_SETTINGS_FILE`` (below environment variables)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ reads the whole file at once

    def __call__(self) -> dict[str, Any]:
        location = os.environ.get(SETTINGS_FILE_VARIABLE)
        if not location:
            return {}
        path = Path(location)
        fields = set(self.settings_cls.model_fields)
        return normalise_keys(read_settings_file(path), fields, path) | {"settings_file": location}


class SecretFilesSource(PydanticBaseSettingsSource):
    """``KCOLLECT_<SECRET>_FILE`` variables: the secret is the named file's content."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name in SECRET_FIELDS:
            file_variable = f"{variable(name)}_FILE"
            location = os.environ.get(file_variable)
            if location and name in self.settings_cls.model_fields:
                values[name] = read_secret_file(file_variable, location)
        return values


def extra_sources(settings_cls: type[BaseSettings]) -> tuple[PydanticBaseSettingsSource, ...]:
    """The sources below environment variables, highest priority first."""
    return SecretFilesSource(settings_cls), SettingsFileSource(settings_cls)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user_part, host_part = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user_part.split(':', 1)[0]}@{host_part}"))


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return orjson.dumps(value).decode()
    return str(value)


def settings_env_file(settings: BaseSettings) -> str:
    """The effective settings as env lines that ``KCOLLECT_SETTINGS_FILE`` reads back to the same values.

    Secrets are never written: a secret setting, a URL's password and a secret ``kafka_config`` key each
    leave a comment saying so (set them with their variable or ``*_FILE``). Unset settings are comments.
    """
    from streams.settings.dump import is_secret_key

    lines = ["# kcollect settings (kcollect settings show --format env); read with KCOLLECT_SETTINGS_FILE"]
    for name in type(settings).model_fields:
        key = variable(name)
        value = getattr(settings, name)
        if name == "settings_file":
            continue
        if isinstance(value, SecretStr):
            lines.append(f"# {key} is a secret and is not written")
            continue
        if value is None:
            lines.append(f"# {key} is not set")
            continue
        if name == "clickhouse_url" and urlsplit(value).password is not None:
            lines.append(f"# the password of {key} is not written (use KCOLLECT_CLICKHOUSE_PASSWORD)")
            value = _without_password(value)
        if name == "kafka_config":
            secret = sorted(k for k in value if is_secret_key(k))
            if secret:
                lines.append(f"# {key}: secret keys not written: {', '.join(secret)}")
            value = {k: v for k, v in value.items() if not is_secret_key(k)}
        # Quoted: the reader strips one pair of matching quotes, so any inner quote survives.
        lines.append(f'{key}="{_env_value(value)}"')
    return "\n".join(lines) + "\n"
