"""ClickHouse connections (native protocol, clickhouse-driver), server features and schema migration.

18.16 quirks handled here: rows always go as a parameter (literal VALUES in the SQL hang), and the
driver silently drops settings the server does not know, so features are chosen from the server
version, never from the absence of an error.

``classify_insert_error`` sorts what an insert raised into three kinds:

- ``data``: the server refused the rows' contents (a parse, type or range error code) or the driver
  could not serialize a value into its column (``TypeMismatchError``, which the driver raises for
  every value that does not fit its column type): the batch is bisected and the rows refused on
  their own are dead-lettered;
- ``outage``: ClickHouse is down, slow, unreachable or refusing for a while (connection and protocol
  errors, any other server error code: too many parts, memory, disk, a missing table): retried with
  backoff for as long as it lasts;
- ``unexpected``: anything else (``TypeError``, ``ValueError``, ``AttributeError``, ``IndexError``...):
  a bug in kcollect or the driver. It says nothing about the rows, so it never dead-letters them, and
  it is not an outage, so it is not retried for ever (``processors.insert``: a few attempts, then the
  sink fails loudly).
"""

from __future__ import annotations

import logging
import ssl
import struct
from dataclasses import dataclass
from typing import Any, Literal

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError
from clickhouse_driver.errors import ServerException, TypeMismatchError

from schemas.ddl import DEDUP_SINCE, database_ddl, version_migration
from streams.clickhouse import driver_columns
from streams.settings.clickhouse import tls_kwargs
from streams.settings.model import ClickHouseAddress

driver_columns.install()  # DateTime columns of epoch seconds skip the driver's per-value loop
# The driver logs a traceback for every failed connection; kcollect says what failed itself (one line).
logging.getLogger("clickhouse_driver.connection").setLevel(logging.ERROR)

# insert_deduplication_token (settings) arrived in 22.2; the non_replicated_deduplication_window table
# setting is older, but the sink only needs it together with the token, so both are gated on 22.2.
DEDUP_TOKEN_SINCE = DEDUP_SINCE

# Server error codes that mean "this data cannot be stored" (bisect the batch), not "try again later".
DATA_ERROR_CODES = frozenset(
    {
        6,  # CANNOT_PARSE_TEXT
        27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
        38,  # CANNOT_PARSE_DATE
        41,  # CANNOT_PARSE_DATETIME
        53,  # TYPE_MISMATCH
        69,  # ARGUMENT_OUT_OF_BOUND
        70,  # CANNOT_CONVERT_TYPE
        72,  # CANNOT_PARSE_NUMBER
        117,  # INCORRECT_DATA
        131,  # TOO_LARGE_STRING_SIZE
        321,  # VALUE_IS_OUT_OF_RANGE_OF_DATA_TYPE
    }
)
# Raised by the driver while it serializes columns (a value that does not fit its column's type); it
# wraps its own struct and overflow errors in TypeMismatchError, bare ones are accepted as well.
_CLIENT_DATA_ERRORS = (TypeMismatchError, OverflowError, struct.error)
# The connection or the protocol failed (the driver's own errors other than TypeMismatchError, and the
# OS's: refused, reset, timed out, EOF).
_OUTAGE_ERRORS = (DriverError, OSError, EOFError)
InsertErrorKind = Literal["data", "outage", "unexpected"]


class ClickHouseUnavailableError(RuntimeError):
    """ClickHouse did not answer."""


@dataclass(frozen=True)
class ServerFeatures:
    """What the connected server supports, from its version."""

    version: tuple[int, ...]

    @property
    def dedup_token(self) -> bool:
        return self.version >= DEDUP_TOKEN_SINCE

    @property
    def dedup_window(self) -> bool:
        return self.version >= DEDUP_TOKEN_SINCE


def connect(
    address: ClickHouseAddress,
    database: str | None = None,
    *,
    connect_timeout: float = 5.0,
    send_receive_timeout: float = 60.0,
    **settings: Any,
) -> Client:
    """A client for ``address``, TLS included; ``database`` defaults to the URL's ("default" before it
    exists). Every ClickHouse client kcollect makes comes from here."""
    return Client(
        host=address.host,
        port=address.port,
        user=address.user,
        password=address.password,
        database=database or address.database,
        connect_timeout=connect_timeout,
        send_receive_timeout=send_receive_timeout,
        settings=settings or None,
        **tls_kwargs(address),
    )


def tls_failure(exc: BaseException) -> str | None:
    """The TLS problem ``exc`` reports (a certificate that does not verify, no TLS on the port), else None.

    Such an error does not heal by retrying: services fail at start with it (exit 5).
    """
    text = str(exc)
    if isinstance(exc, ssl.SSLError) or "SSL" in text or "CERTIFICATE" in text.upper():
        return " ".join(text.split())
    return None


def check_server(address: ClickHouseAddress) -> bool:
    """Connect once: True when the server answers, False when it is down (an outage, retried later);
    ClickHouseUnavailableError for what retrying cannot fix (TLS, credentials)."""
    client = connect(address, database="default")
    try:
        client.execute("SELECT 1")
        return True
    except Exception as exc:
        problem = tls_failure(exc)
        if problem is not None:
            raise ClickHouseUnavailableError(
                f"ClickHouse at {address.url()}: TLS failed ({problem}); check KCOLLECT_CLICKHOUSE_CA_CERTS"
            ) from None
        if isinstance(exc, ServerException) and exc.code in (192, 193, 516):  # unknown user, wrong password
            raise ClickHouseUnavailableError(
                f"ClickHouse at {address.url()} refused the login: {exc.message}"
            ) from None
        return False
    finally:
        client.disconnect()


def parse_version(raw: str) -> tuple[int, ...]:
    """``"18.16.1"`` -> ``(18, 16, 1)``; ``"24.3.2.23"`` -> ``(24, 3, 2, 23)``."""
    return tuple(int(part) for part in raw.split(".") if part.isdigit())


def server_version(client: Client) -> tuple[int, ...]:
    """The server version as a tuple of ints, e.g. (18, 16, 1)."""
    return parse_version(str(client.execute("SELECT version()")[0][0]))


def insert_settings(features: ServerFeatures, token: str) -> dict[str, Any]:
    """Per-insert settings: a deduplication token where the server has them, else none."""
    return {"insert_deduplication_token": token} if features.dedup_token else {}


def classify_insert_error(exc: BaseException) -> InsertErrorKind:
    """``data``, ``outage`` or ``unexpected`` (see the module docstring)."""
    if isinstance(exc, ServerException):
        return "data" if exc.code in DATA_ERROR_CODES else "outage"
    if isinstance(exc, _CLIENT_DATA_ERRORS):
        return "data"
    if isinstance(exc, _OUTAGE_ERRORS):
        return "outage"
    return "unexpected"


def is_data_error(exc: BaseException) -> bool:
    """True when ``exc`` says the rows themselves are unacceptable (bisect them)."""
    return classify_insert_error(exc) == "data"


def migrate(address: ClickHouseAddress) -> list[str]:
    """Create the database, tables and views if missing and migrate rows of an older version format
    (``schemas.ddl.version_migration``); idempotent. Returns the statements run."""
    client = connect(address, database="default")
    try:
        statements = database_ddl(address.database, server_version(client))
        for statement in statements:
            client.execute(statement)
        check, migration = version_migration(address.database)
        if client.execute(check)[0][0]:
            client.execute(migration)
            statements.append(migration)
        return statements
    except Exception as exc:
        problem = tls_failure(exc)
        if problem is not None:
            raise ClickHouseUnavailableError(
                f"ClickHouse at {address.url()}: TLS failed ({problem}); check KCOLLECT_CLICKHOUSE_CA_CERTS"
            ) from None
        if "Connection refused" in str(exc) or "timed out" in str(exc):
            raise ClickHouseUnavailableError(
                f"ClickHouse at {address.host}:{address.port} did not answer: {exc}"
            ) from None
        raise
    finally:
        client.disconnect()
