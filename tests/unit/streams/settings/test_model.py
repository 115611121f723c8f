"""Settings from KCOLLECT_* variables: one line per bad variable; ClickHouse URL parsing.

Every test clears the KCOLLECT_* environment and points KCOLLECT_STATE_DIR at an empty tmp folder,
so no real local stack is ever read.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from schemas.topics import REQUESTS, RESULTS
from streams.settings.model import (
    ClickHouseAddress,
    Settings,
    SettingsError,
    load_settings,
    parse_clickhouse_url,
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("KCOLLECT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KCOLLECT_STATE_DIR", str(tmp_path))


def error_lines(monkeypatch: pytest.MonkeyPatch, **env: str) -> list[str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    return str(info.value).splitlines()


def test_defaults() -> None:
    settings = load_settings()
    assert settings.bootstrap_servers is None
    assert settings.clickhouse_url is None
    assert settings.partitions == 8
    assert settings.topic_prefix == "kcollect."
    assert REQUESTS.name(settings.topic_prefix) == "kcollect.requests"


def test_values_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KCOLLECT_BOOTSTRAP_SERVERS", "k1:9092, k2:9093")
    monkeypatch.setenv("KCOLLECT_CLICKHOUSE_URL", "clickhouse://ch:9001/metrics")
    monkeypatch.setenv("KCOLLECT_PARTITIONS", "16")
    monkeypatch.setenv("KCOLLECT_TOPIC_PREFIX", "test-1.")
    monkeypatch.setenv("KCOLLECT_KAFKA_CONFIG", '{"linger.ms": "5"}')
    settings = load_settings()
    assert settings.partitions == 16
    assert settings.kafka_bootstrap() == "k1:9092, k2:9093"
    assert settings.clickhouse() == ClickHouseAddress("ch", 9001, "metrics")
    assert RESULTS.name(settings.topic_prefix) == "test-1.results"
    assert settings.kafka_config == {"linger.ms": "5"}


def test_overrides_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KCOLLECT_PARTITIONS", "16")
    assert load_settings(partitions=3).partitions == 3


@pytest.mark.parametrize(
    "url",
    [
        "http://ch:8123/db",
        "ch:9000/db",
        "clickhouse://ch:9000/",
        "clickhouse://ch/bad-name",
        "clickhouse:///db",
    ],
)
def test_bad_clickhouse_url(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    lines = error_lines(monkeypatch, KCOLLECT_CLICKHOUSE_URL=url)
    assert len(lines) == 1
    assert lines[0].startswith("KCOLLECT_CLICKHOUSE_URL: ")
    assert repr(url) in lines[0]
    assert "Value error" not in lines[0]


@pytest.mark.parametrize(
    "servers", ["localhost", "host:", ":9092", "host:port", "host:0", "host:65536", "a:1,b"]
)
def test_bad_bootstrap(monkeypatch: pytest.MonkeyPatch, servers: str) -> None:
    lines = error_lines(monkeypatch, KCOLLECT_BOOTSTRAP_SERVERS=servers)
    assert len(lines) == 1
    assert lines[0].startswith("KCOLLECT_BOOTSTRAP_SERVERS: must be host:port")
    assert repr(servers) in lines[0]


@pytest.mark.parametrize("value", ["abc", "1.5", "0", "1025"])  # "" is unset: test_cli_conventions
def test_bad_partitions(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    lines = error_lines(monkeypatch, KCOLLECT_PARTITIONS=value)
    assert len(lines) == 1
    assert lines[0].startswith("KCOLLECT_PARTITIONS: ")
    assert f"(got {value!r})" in lines[0]


def test_one_line_per_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = error_lines(
        monkeypatch,
        KCOLLECT_CLICKHOUSE_URL="mysql://x/db",
        KCOLLECT_BOOTSTRAP_SERVERS="nohost",
        KCOLLECT_PARTITIONS="many",
        KCOLLECT_SINK_BATCH_SECONDS="0",
        KCOLLECT_TOPIC_PREFIX="bad prefix",
        KCOLLECT_BROKER_FLAVOR="redis",
    )
    assert sorted(line.split(":", 1)[0] for line in lines) == [
        "KCOLLECT_BOOTSTRAP_SERVERS",
        "KCOLLECT_BROKER_FLAVOR",
        "KCOLLECT_CLICKHOUSE_URL",
        "KCOLLECT_PARTITIONS",
        "KCOLLECT_SINK_BATCH_SECONDS",
        "KCOLLECT_TOPIC_PREFIX",
    ]


def test_settings_error_is_value_error() -> None:
    assert issubclass(SettingsError, ValueError)


def test_missing_addresses_without_stack() -> None:
    settings = load_settings()
    with pytest.raises(SettingsError, match="KCOLLECT_BOOTSTRAP_SERVERS is not set"):
        settings.kafka_bootstrap()
    with pytest.raises(SettingsError, match="KCOLLECT_CLICKHOUSE_URL is not set"):
        settings.clickhouse()


def test_settings_model_is_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError):
        settings.partitions = 2  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("clickhouse://ch/db", ClickHouseAddress("ch", 9000, "db")),
        ("clickhouse://ch:9440/db_2", ClickHouseAddress("ch", 9440, "db_2")),
        ("clickhouse://alice@ch/db", ClickHouseAddress("ch", 9000, "db", "alice", "")),
        ("clickhouse://alice:s3cret@ch:1234/db", ClickHouseAddress("ch", 1234, "db", "alice", "s3cret")),
        ("clickhouse://al%20ice:p%40ss%3Aw@ch/db", ClickHouseAddress("ch", 9000, "db", "al ice", "p@ss:w")),
        ("clickhouses://u:p@ch:9440/db", ClickHouseAddress("ch", 9440, "db", "u", "p", secure=True)),
        ("clickhouse://[::1]:9001/db", ClickHouseAddress("::1", 9001, "db")),
        ("clickhouse://CH.example.com/db", ClickHouseAddress("ch.example.com", 9000, "db")),
    ],
)
def test_parse_clickhouse_url(url: str, expected: ClickHouseAddress) -> None:
    assert parse_clickhouse_url(url) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://ch/db", "must look like"),
        ("ch:9000", "must look like"),
        ("clickhouse://ch", "needs a host and a database"),
        ("clickhouse://ch/", "needs a host and a database"),
        ("clickhouse://:9000/db", "needs a host and a database"),
        ("clickhouse://ch/my-db", "needs a host and a database"),
        ("clickhouse://ch/a/b", "needs a host and a database"),
        ("clickhouse://ch:abc/db", "bad port"),
        ("clickhouse://ch:70000/db", "bad port"),
    ],
)
def test_parse_clickhouse_url_errors(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_clickhouse_url(url)


def test_address_url_plain() -> None:
    address = parse_clickhouse_url("clickhouse://ch/db")
    assert address.url() == "clickhouse://ch:9000/db"
    assert parse_clickhouse_url(address.url()) == address


@pytest.mark.parametrize(
    "url", ["clickhouse://alice:s3cret@ch:9000/db", "clickhouses://ch:9440/db", "clickhouse://[::1]:9000/db"]
)
def test_child_services_get_the_same_clickhouse_address(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    from kcollect.localstack.runner import service_env

    monkeypatch.setenv("KCOLLECT_BOOTSTRAP_SERVERS", "k:9092")
    monkeypatch.setenv("KCOLLECT_CLICKHOUSE_URL", url)
    settings = load_settings()
    env = service_env(settings)
    assert parse_clickhouse_url(env["KCOLLECT_CLICKHOUSE_URL"]) == settings.clickhouse()


def test_parse_clickhouse_url_port_zero_is_bad() -> None:
    with pytest.raises(ValueError, match="bad port"):
        parse_clickhouse_url("clickhouse://ch:0/db")


def test_clickhouse_cluster_travels_in_the_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KCOLLECT_CLICKHOUSE_URL", "clickhouse://ch:9001/metrics")
    assert load_settings().clickhouse().cluster is None
    monkeypatch.setenv("KCOLLECT_CLICKHOUSE_CLUSTER", "prod_1")
    assert load_settings().clickhouse() == ClickHouseAddress("ch", 9001, "metrics", cluster="prod_1")


def test_a_bad_cluster_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    lines = error_lines(monkeypatch, KCOLLECT_CLICKHOUSE_CLUSTER="prod; DROP")
    assert len(lines) == 1 and lines[0].startswith("KCOLLECT_CLICKHOUSE_CLUSTER:")


def test_the_local_stack_names_its_cluster(tmp_path: Path) -> None:
    from streams.settings.stackfile import ProcessRecord, StackFile, write_stack_file

    me = ProcessRecord(name="x", pid=os.getpid(), port=1, log_path="-")
    stack = StackFile(
        bootstrap_servers="127.0.0.1:1",
        clickhouse_url="clickhouse://127.0.0.1:2/kcollect",
        clickhouse_cluster="kcollect",
        processes=(me,),
    )
    write_stack_file(stack, tmp_path)
    assert load_settings().clickhouse().cluster == "kcollect"
