"""Server features from the version (dedup tokens only from 22.2) and the data-error/outage split."""

from __future__ import annotations

import struct

import pytest
from clickhouse_driver.errors import NetworkError, ServerException, SocketTimeoutError, TypeMismatchError

from streams.clickhouse.client import (
    ServerFeatures,
    classify_insert_error,
    insert_settings,
    is_data_error,
    parse_version,
)


def test_parse_version() -> None:
    assert parse_version("18.16.1") == (18, 16, 1)
    assert parse_version("24.3.2.23") == (24, 3, 2, 23)


@pytest.mark.parametrize(
    ("version", "supported"),
    [((18, 16, 1), False), ((21, 12, 4), False), ((22, 1, 9), False), ((22, 2), True), ((24, 3, 1), True)],
)
def test_dedup_token_and_window_are_gated_on_22_2(version: tuple[int, ...], supported: bool) -> None:
    features = ServerFeatures(version)
    assert features.dedup_token is supported
    settings = insert_settings(features, "results:3:100-200:202611:100-199:100")
    if supported:
        assert settings == {"insert_deduplication_token": "results:3:100-200:202611:100-199:100"}
    else:
        assert settings == {}


@pytest.mark.parametrize(
    "exc",
    [
        TypeMismatchError("Column b: ushort format requires 0 <= number <= 65535"),
        struct.error("argument out of range"),
        OverflowError("x"),
        ServerException("Cannot parse input", code=27),
        ServerException("Type mismatch", code=53),
        ServerException("Value out of range", code=321),
    ],
)
def test_data_errors(exc: Exception) -> None:
    assert is_data_error(exc)
    assert classify_insert_error(exc) == "data"


@pytest.mark.parametrize(
    "exc",
    [
        NetworkError("Code: 210. Connection refused"),
        SocketTimeoutError("timed out"),
        ConnectionRefusedError(111, "refused"),
        TimeoutError("slow"),
        EOFError("Unexpected EOF while reading bytes"),
        ServerException("Too many parts (300)", code=252),
        ServerException("Cannot reserve 1.00 MiB, not enough space", code=243),
        ServerException("Timeout exceeded", code=159),
        ServerException("Memory limit exceeded", code=241),
        ServerException("Table doesn't exist", code=60),
    ],
)
def test_outages_are_not_data_errors(exc: Exception) -> None:
    assert not is_data_error(exc)
    assert classify_insert_error(exc) == "outage"


@pytest.mark.parametrize(
    "exc",
    [
        TypeError("unsupported operand type(s)"),
        AttributeError("'int' object has no attribute 'encode'"),
        ValueError("x"),
        IndexError("list index out of range"),
        KeyError("run_id"),
        RuntimeError("x"),
    ],
)
def test_bugs_are_neither_data_errors_nor_outages(exc: Exception) -> None:
    """A bug (in kcollect or the driver) raised while inserting says nothing about the rows: bisecting it
    would dead-letter every row of every window; retrying it for ever would stop the partitions."""
    assert not is_data_error(exc)
    assert classify_insert_error(exc) == "unexpected"
