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
import time
from dataclasses import dataclass
from typing import Any, Literal

from clickhouse_driver import Client
from clickhouse_driver.errors import Error as DriverError
from clickhouse_driver.errors import ServerException, TypeMismatchError

from schemas.ddl import (
    CLIENT_RUNS_COLUMNS,
    CLIENT_RUNS_TABLE,
    DEDUP_SINCE,
    RESULTS_LOCAL_TABLE,
    RESULTS_TABLE,
    TYPED_COLUMNS,
    database_ddl,
    typed_migration,
    version_migration,
)
from streams.clickhouse import driver_columns
from streams.clickhouse.cluster import read_shards
from streams.settings.clickhouse import tls_kwargs
from streams.settings.model import ClickHouseAddress
from streams.settings.names import SettingsError

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


class OldVersionFormatError(SettingsError):
    """A cluster's tables hold rows of the older version format (migrate them on the single server)."""


class ClickHouseUnavailableError(RuntimeError):
    """ClickHouse did not answer."""


@dataclass(frozen=True)
class ServerFeatures:
    """What the connected server supports, from its version."""

    version: tuple[int, ...]

    @property
    def dedup_token(self) -> bool:
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


def _raise_on_tls_failure(address: ClickHouseAddress, exc: BaseException) -> None:
    """A failed TLS handshake is not an outage: retrying cannot fix it (ClickHouseUnavailableError)."""
    problem = tls_failure(exc)
    if problem is not None:
        raise ClickHouseUnavailableError(
            f"ClickHouse at {address.url()}: TLS failed ({problem}); check KCOLLECT_CLICKHOUSE_CA_CERTS"
        ) from None


def check_server(address: ClickHouseAddress) -> bool:
    """Connect once: True when the server answers, False when it is down (an outage, retried later);
    ClickHouseUnavailableError for what retrying cannot fix (TLS, credentials)."""
    client = connect(address, database="default")
    try:
        client.execute("SELECT 1")
        return True
    except Exception as exc:
        _raise_on_tls_failure(address, exc)
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


MUTATION_TIMEOUT_SECONDS = 3600.0


def _columns(client: Client, database: str, table: str) -> dict[str, str]:
    """column -> default kind ('' stored, 'ALIAS', ...) of an existing table (empty when it is missing)."""
    rows = client.execute(
        "SELECT name, default_kind FROM system.columns WHERE database = %(d)s AND table = %(t)s",
        {"d": database, "t": table},
    )
    return {str(name): str(kind) for name, kind in rows}


def _wait_mutations(client: Client, database: str, table: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    query = "SELECT count() FROM system.mutations WHERE database = %(d)s AND table = %(t)s AND is_done = 0"
    while client.execute(query, {"d": database, "t": table})[0][0]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the mutation of {database}.{table} did not finish in {timeout:.0f} s")
        time.sleep(0.2)


def migrate_to_typed(client: Client, database: str, version: tuple[int, ...]) -> list[str]:
    """Move a ``client_results`` of the JSON-text layout to the typed one, in place; nothing to do on a
    typed table (a second run does nothing). See ``schemas.ddl.TypedMigration``. Returns what ran."""
    columns = _columns(client, database, RESULTS_TABLE)
    if "metrics" not in columns or columns["metrics"] == "ALIAS":
        return []
    steps = typed_migration(database, version)
    ran: list[str] = []
    for statement, column in zip(steps.add_columns, TYPED_COLUMNS, strict=True):
        if column not in columns:
            client.execute(statement)
            ran.append(statement)
    if client.execute(steps.pending)[0][0]:
        client.execute(steps.convert)
        ran.append(steps.convert)
        _wait_mutations(client, database, RESULTS_TABLE, MUTATION_TIMEOUT_SECONDS)
    left = client.execute(steps.pending)[0][0]
    if left:
        raise RuntimeError(f"{left} row(s) of {database}.{RESULTS_TABLE} kept their JSON text unconverted")
    for statement in (*steps.drop_text, *steps.add_aliases):
        client.execute(statement)
        ran.append(statement)
    return ran


def _backfill_client_runs(client: Client, database: str) -> list[str]:
    """Fill a just created ``client_runs`` from the rows ``client_results`` held before it."""
    names = ", ".join(name for name, _ in CLIENT_RUNS_COLUMNS)
    statement = (
        f"INSERT INTO {database}.{CLIENT_RUNS_TABLE} ({names}) SELECT {names} FROM {database}.{RESULTS_TABLE}"
    )
    client.execute(statement)
    return [statement]


def migrate(address: ClickHouseAddress) -> list[str]:
    """Create the database, tables and views if missing; move a table of the JSON-text layout to the
    typed one (``migrate_to_typed``, single server only) and rows of an older version format
    (``schemas.ddl.version_migration``); idempotent. Returns the statements run.

    With ``address.cluster`` every statement runs ``ON CLUSTER`` (each server of the cluster creates
    its replicated tables, the Distributed tables and the views); the cluster must be known to the
    server (``system.clusters``), or this fails before any statement runs. Rows of the older version
    format are not migrated on a cluster: migrate the single server before copying its rows over
    (docs/operations.md); a cluster holding such rows is refused with that advice. The same holds for
    the JSON-text layout: a cluster is created typed, and a single server is migrated before its rows
    are copied to one.
    """
    client = connect(address, database="default")
    database = address.database
    try:
        if address.cluster:
            read_shards(client, address)  # ClusterConfigError naming the cluster when it is unknown
        version = server_version(client)
        migrated: list[str] = []
        if address.cluster is None:
            client.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
            migrated = migrate_to_typed(client, database, version)
        elif _columns(client, database, RESULTS_LOCAL_TABLE).get("metrics") == "":
            raise OldVersionFormatError(
                f"{database}.{RESULTS_LOCAL_TABLE} on cluster {address.cluster} stores the JSON-text "
                "layout: migrate the single server the rows came from (`kcollect db migrate`), then copy "
                "them to a cluster created by this version"
            )
        had_results = bool(_columns(client, database, RESULTS_TABLE))
        had_client_runs = bool(_columns(client, database, CLIENT_RUNS_TABLE))
        statements = database_ddl(database, version, address.cluster)
        for statement in statements:
            client.execute(statement)
        statements = migrated + statements
        if had_results and not had_client_runs:
            statements += _backfill_client_runs(client, database)
        check, migration = version_migration(database)
        if client.execute(check)[0][0]:
            if address.cluster:
                raise OldVersionFormatError(
                    f"{address.database}.client_results on cluster {address.cluster} holds rows of the "
                    "older version format: run `kcollect db migrate` on the single server they came "
                    "from, then copy them again (docs/operations.md)"
                )
            client.execute(migration)
            statements.append(migration)
        return statements
    except Exception as exc:
        _raise_on_tls_failure(address, exc)
        if "Connection refused" in str(exc) or "timed out" in str(exc):
            raise ClickHouseUnavailableError(
                f"ClickHouse at {address.host}:{address.port} did not answer: {exc}"
            ) from None
        raise
    finally:
        client.disconnect()
