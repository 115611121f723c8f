"""The ClickHouse settings mapped onto clickhouse-driver's ``Client`` keywords.

The address (URL with ``KCOLLECT_CLICKHOUSE_USER`` / ``_PASSWORD`` / ``_SECURE`` applied) is
``Settings.clickhouse()``; ``clickhouse_tls_kwargs`` gives the TLS keywords.
``streams.clickhouse.client.connect`` builds every client.
"""

from __future__ import annotations

from typing import Any

from streams.settings.model import Settings


def clickhouse_tls_kwargs(settings: Settings) -> dict[str, Any]:
    """clickhouse-driver ``Client`` keywords for TLS (``secure``, ``verify``, ``ca_certs``)."""
    if not settings.clickhouse().secure:
        return {}
    kwargs: dict[str, Any] = {"secure": True, "verify": settings.clickhouse_verify}
    if settings.clickhouse_ca_certs:
        kwargs["ca_certs"] = settings.clickhouse_ca_certs
    return kwargs
