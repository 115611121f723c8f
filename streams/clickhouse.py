"""ClickHouse connections (native protocol, clickhouse-driver) and schema migration.

18.16 quirks handled here: rows always go as a parameter (literal VALUES in the SQL hang), and the
driver silently drops settings the server does not know, so features are chosen from the server
version, never from the absence of an error.
"""

from __future__ import annotations

from typing import Any

from clickhouse_driver import Client

from schemas.ddl import database_ddl
from streams.settings import ClickHouseAddress


class ClickHouseUnavailableError(RuntimeError):
    """ClickHouse did not answer."""


def connect(address: ClickHouseAddress, database: str | None = None, **settings: Any) -> Client:
    """A client for ``address``; ``database`` defaults to the URL's (use "default" before it exists)."""
    return Client(
        host=address.host,
        port=address.port,
        user=address.user,
        password=address.password,
        database=database or address.database,
        secure=address.secure,
        connect_timeout=5,
        send_receive_timeout=60,
        settings=settings or None,
    )


def server_version(client: Client) -> tuple[int, ...]:
    """The server version as a tuple of ints, e.g. (18, 16, 1)."""
    raw = str(client.execute("SELECT version()")[0][0])
    return tuple(int(part) for part in raw.split(".") if part.isdigit())


def migrate(address: ClickHouseAddress) -> list[str]:
    """Create the database and tables if missing (idempotent); returns the statements run."""
    client = connect(address, database="default")
    try:
        statements = database_ddl(address.database)
        for statement in statements:
            client.execute(statement)
        return statements
    except Exception as exc:
        if "Connection refused" in str(exc) or "timed out" in str(exc):
            raise ClickHouseUnavailableError(
                f"ClickHouse at {address.host}:{address.port} did not answer: {exc}"
            ) from None
        raise
    finally:
        client.disconnect()
