"""The ClickHouse settings mapped onto clickhouse-driver's ``Client`` keywords.

The address (URL with ``KCOLLECT_CLICKHOUSE_USER`` / ``_PASSWORD`` / ``_SECURE`` / ``_CA_CERTS`` /
``_VERIFY`` applied) is ``Settings.clickhouse()``; ``tls_kwargs`` gives an address's TLS keywords.
``streams.clickhouse.client.connect`` builds every client.
"""

from __future__ import annotations

from typing import Any

from streams.settings.model import ClickHouseAddress


def tls_kwargs(address: ClickHouseAddress) -> dict[str, Any]:
    """clickhouse-driver ``Client`` keywords for the address's TLS (empty without TLS)."""
    if not address.secure:
        return {}
    kwargs: dict[str, Any] = {"secure": True, "verify": address.verify}
    if address.ca_certs:
        kwargs["ca_certs"] = address.ca_certs
    return kwargs
