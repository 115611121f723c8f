"""Kafka and ClickHouse security settings mapped onto their clients, and a settings dump without secrets.

- ``kafka_security_config(settings)``: the librdkafka keys (``security.protocol``, ``sasl.*``,
  ``ssl.*``) of the ``KCOLLECT_KAFKA_*`` security settings; ``streams/kafka_config._common`` merges it
  before ``KCOLLECT_KAFKA_CONFIG`` (one line, the lead's hook), so raw librdkafka keys still win.
- ``clickhouse_address(settings)`` / ``clickhouse_tls_kwargs(settings)``: the URL's address with
  ``KCOLLECT_CLICKHOUSE_USER`` / ``_PASSWORD`` / ``_SECURE`` / ``_CA_CERTS`` / ``_VERIFY`` applied, and
  clickhouse-driver's TLS keywords (``tls_kwargs``, used by ``streams.clickhouse.connect``, the one
  builder of ClickHouse clients).
- ``settings_dump(settings)``: every setting, secrets masked (``kcollect settings show``).

This module imports ``streams.settings`` only for type checking: settings.py uses its checks.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import SecretStr

if TYPE_CHECKING:
    from streams.settings import ClickHouseAddress, Settings

MASK = "***"
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
SECRET_WORDS = ("password", "secret", "token", "credential", "private", "sasl.jaas")


def check_sasl_mechanism(mechanism: str | None, protocol: str | None) -> str | None:
    """A SASL protocol needs a mechanism; a mechanism needs a SASL protocol."""
    if protocol in SASL_PROTOCOLS and mechanism is None:
        raise ValueError(f"required when KCOLLECT_KAFKA_SECURITY_PROTOCOL is {protocol}")
    if mechanism is not None and protocol not in SASL_PROTOCOLS:
        raise ValueError(
            f"{mechanism} needs KCOLLECT_KAFKA_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT (got {protocol})"
        )
    return mechanism


def check_sasl_credentials(mechanism: str | None, username: str | None, password: SecretStr | None) -> None:
    """PLAIN and SCRAM need both a user name and a password (never echoes the password)."""
    if mechanism in PASSWORD_MECHANISMS and (not username or password is None):
        missing = "KCOLLECT_KAFKA_SASL_USERNAME" if not username else "the password"
        raise ValueError(
            f"SASL {mechanism} needs KCOLLECT_KAFKA_SASL_USERNAME and KCOLLECT_KAFKA_SASL_PASSWORD "
            f"(or KCOLLECT_KAFKA_SASL_PASSWORD_FILE); {missing} is missing"
        )


def kafka_security_config(settings: Settings) -> dict[str, Any]:
    """The librdkafka security keys for the configured settings (empty when none is set)."""
    config: dict[str, Any] = {}
    pairs: tuple[tuple[str, Any], ...] = (
        ("security.protocol", settings.kafka_security_protocol),
        ("sasl.mechanism", settings.kafka_sasl_mechanism),
        ("sasl.username", settings.kafka_sasl_username),
        ("sasl.password", settings.kafka_sasl_password),
        ("ssl.ca.location", settings.kafka_ssl_ca_location),
        ("ssl.certificate.location", settings.kafka_ssl_certificate_location),
        ("ssl.key.location", settings.kafka_ssl_key_location),
        ("ssl.key.password", settings.kafka_ssl_key_password),
        ("ssl.endpoint.identification.algorithm", settings.kafka_ssl_endpoint_identification),
    )
    for key, value in pairs:
        if value is not None:
            config[key] = value.get_secret_value() if isinstance(value, SecretStr) else value
    return config


def apply_clickhouse_overrides(settings: Settings, address: ClickHouseAddress) -> ClickHouseAddress:
    """``address`` with ``KCOLLECT_CLICKHOUSE_USER`` / ``_PASSWORD`` / ``_SECURE`` / ``_CA_CERTS`` /
    ``_VERIFY`` applied over the URL's.

    The hook for ``Settings.clickhouse()``:
    ``return apply_clickhouse_overrides(self, parse_clickhouse_url(url))``.
    """
    changes: dict[str, Any] = {}
    if settings.clickhouse_user is not None:
        changes["user"] = settings.clickhouse_user
    if settings.clickhouse_password is not None:
        changes["password"] = settings.clickhouse_password.get_secret_value()
    if settings.clickhouse_secure is not None:
        changes["secure"] = settings.clickhouse_secure
    if settings.clickhouse_ca_certs:
        changes["ca_certs"] = settings.clickhouse_ca_certs
    if not settings.clickhouse_verify:
        changes["verify"] = False
    return dataclasses.replace(address, **changes) if changes else address


def clickhouse_address(settings: Settings) -> ClickHouseAddress:
    """``settings.clickhouse()`` with the user, password and TLS settings applied (idempotent)."""
    return apply_clickhouse_overrides(settings, settings.clickhouse())


def clickhouse_tls_kwargs(settings: Settings) -> dict[str, Any]:
    """clickhouse-driver ``Client`` keywords for TLS (``secure``, ``verify``, ``ca_certs``)."""
    return tls_kwargs(clickhouse_address(settings))


def tls_kwargs(address: ClickHouseAddress) -> dict[str, Any]:
    """clickhouse-driver ``Client`` keywords for the address's TLS (empty without TLS)."""
    if not address.secure:
        return {}
    kwargs: dict[str, Any] = {"secure": True, "verify": address.verify}
    if address.ca_certs:
        kwargs["ca_certs"] = address.ca_certs
    return kwargs


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


def settings_dump(settings: Settings) -> dict[str, Any]:
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
        dump[f"KCOLLECT_{name.upper()}"] = value
    return dump
