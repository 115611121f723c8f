"""Session fixtures that hand tests a Kafka bootstrap address and a ClickHouse URL.

Where each comes from, first match wins:

1. ``KCOLLECT_TEST_BOOTSTRAP_SERVERS`` / ``KCOLLECT_TEST_CLICKHOUSE_URL`` (used as given);
2. a reachable Docker engine: testcontainers ``KafkaContainer`` / ``ClickHouseContainer``;
3. local processes started the way ``kcollect stack up`` starts them, in a pytest tmp folder, stopped
   by PID when the session ends: one broker for the whole session, Apache Kafka by default (where
   java and mvn exist, else Tansu), ``KCOLLECT_TEST_BROKER=kafka|tansu`` to choose
   (``local_broker_choice``); and a clickhouse-server.

The ClickHouse URL always names the database ``kcollect``; tests that want their own database build
it with ``database_url(clickhouse_url, unique_name)``. When the session ends, the databases named after
the session's unique names are dropped (a server given by the environment keeps no test leftovers;
``KCOLLECT_TEST_KEEP_DATABASES=1`` keeps them for a post-mortem).
"""

from __future__ import annotations

import functools
import importlib
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    from kcollect.localstack.brokers import BrokerChoice

ENV_BOOTSTRAP = "KCOLLECT_TEST_BOOTSTRAP_SERVERS"
ENV_CLICKHOUSE = "KCOLLECT_TEST_CLICKHOUSE_URL"
ENV_BROKER = "KCOLLECT_TEST_BROKER"
DATABASE = "kcollect"
READY_TIMEOUT = 60.0
_NAMES_GIVEN: set[str] = set()  # every unique_name of this session: a database may carry each


def database_url(url: str, database: str) -> str:
    """``url`` with its database part replaced (``clickhouse://host:port/<database>``)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


@functools.cache
def docker_available() -> bool:
    """True when a Docker engine answers a ping within a few seconds."""
    try:
        import docker

        client = docker.from_env(timeout=3)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except Exception:
        return False


def _container_class(module: str, name: str) -> Any:
    """A testcontainers class: ``testcontainers.community.*`` (>= 4.14) or ``testcontainers.*``."""
    for prefix in ("testcontainers.community.", "testcontainers."):
        try:
            return getattr(importlib.import_module(prefix + module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"testcontainers has no {module}.{name}")


def _start_container(module: str, name: str, cleanup: ExitStack) -> Any | None:
    """A started container registered for cleanup, or None when that is not possible."""
    if not docker_available():
        return None
    try:
        container = _container_class(module, name)()
        cleanup.callback(container.stop)
        container.start()
    except Exception:
        return None
    return container


def _kafka_from_container(cleanup: ExitStack) -> str | None:
    container = _start_container("kafka", "KafkaContainer", cleanup)
    return None if container is None else str(container.get_bootstrap_server())


def _clickhouse_from_container(cleanup: ExitStack) -> str | None:
    container = _start_container("clickhouse", "ClickHouseContainer", cleanup)
    if container is None:
        return None
    host = container.get_container_host_ip()
    port = container.get_exposed_port(9000)
    return f"clickhouse://{container.username}:{container.password}@{host}:{port}/{DATABASE}"


def _local(start: Callable[..., Any], factory: pytest.TempPathFactory, cleanup: ExitStack) -> int:
    """Start a local process with ``kcollect.localstack.stack``; its PID is stopped at cleanup.
    Returns its port."""
    from kcollect.localstack.stack import stop_process

    record = start(factory.mktemp("stack"))
    cleanup.callback(stop_process, record)
    return int(record.port)


def local_broker_choice() -> BrokerChoice:
    """The local broker for tests: ``KCOLLECT_TEST_BROKER``, else what ``kcollect stack up`` picks."""
    from kcollect.localstack.brokers import choose_broker

    return choose_broker(ENV_BROKER) if os.environ.get(ENV_BROKER) else choose_broker()


def share_test_environment() -> None:
    """For the whole run: ``kcollect stack`` calls in tests start the test broker
    (``KCOLLECT_TEST_BROKER`` becomes ``KCOLLECT_LOCAL_BROKER``), and every Kafka started in a tmp
    folder takes its classpath from one cache (``KCOLLECT_KAFKA_CACHE_DIR``, by default the user's
    state folder's), so Maven runs at most once per version and machine."""
    from kcollect.localstack.kafka import CACHE_VARIABLE, cache_root

    if os.environ.get(ENV_BROKER):
        os.environ["KCOLLECT_LOCAL_BROKER"] = os.environ[ENV_BROKER]
    os.environ.setdefault(CACHE_VARIABLE, str(cache_root()))


def _kafka_bootstrap(factory: pytest.TempPathFactory, cleanup: ExitStack) -> str:
    from kcollect.localstack.brokers import start_local_broker
    from kcollect.localstack.stack import wait_kafka

    configured = os.environ.get(ENV_BOOTSTRAP)
    if configured:
        wait_kafka(configured, READY_TIMEOUT)
        return configured
    from_container = _kafka_from_container(cleanup)
    if from_container:
        wait_kafka(from_container, READY_TIMEOUT)
        return from_container
    broker = start_local_broker(local_broker_choice().kind, factory.mktemp("broker"), timeout=READY_TIMEOUT)
    cleanup.callback(broker.stop)
    return broker.bootstrap_servers


def _create_database(url: str) -> None:
    from kcollect.localstack.stack import parse_clickhouse_url
    from streams.clickhouse.client import connect

    address = parse_clickhouse_url(url)
    client = connect(address, database="default")
    try:
        client.execute(f"CREATE DATABASE IF NOT EXISTS {address.database}")
    finally:
        client.disconnect()


def _drop_test_databases(url: str) -> None:
    """Drop the databases named after this session's unique names (those that exist)."""
    from kcollect.localstack.stack import parse_clickhouse_url
    from streams.clickhouse.client import connect

    if os.environ.get("KCOLLECT_TEST_KEEP_DATABASES") == "1" or not _NAMES_GIVEN:
        return
    client = connect(parse_clickhouse_url(url), database="default")
    try:
        existing = {row[0] for row in client.execute("SELECT name FROM system.databases")}
        for name in sorted(_NAMES_GIVEN & existing):
            client.execute(f"DROP DATABASE IF EXISTS {name}")
    finally:
        client.disconnect()


def _clickhouse_url(factory: pytest.TempPathFactory, cleanup: ExitStack) -> str:
    from kcollect.localstack.stack import start_clickhouse, wait_clickhouse

    configured = os.environ.get(ENV_CLICKHOUSE)
    if configured:
        url = database_url(configured, DATABASE)
        wait_clickhouse(url, READY_TIMEOUT)
        _create_database(url)
        return url
    from_container = _clickhouse_from_container(cleanup)
    if from_container:
        wait_clickhouse(from_container, READY_TIMEOUT)
        _create_database(from_container)
        return from_container
    return f"clickhouse://127.0.0.1:{_local(start_clickhouse, factory, cleanup)}/{DATABASE}"


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``host:port`` of a Kafka-protocol broker for the whole session."""
    with ExitStack() as cleanup:
        yield _kafka_bootstrap(tmp_path_factory, cleanup)


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``clickhouse://[user:password@]host:port/kcollect`` of a ClickHouse server for the session."""
    with ExitStack() as cleanup:
        url = _clickhouse_url(tmp_path_factory, cleanup)
        cleanup.callback(_drop_test_databases, url)  # runs before a local server is stopped
        yield url


@pytest.fixture
def unique_name() -> str:
    """A short unique lowercase identifier (``t`` + 10 hex digits) for topics, groups and databases."""
    name = "t" + uuid.uuid4().hex[:10]
    _NAMES_GIVEN.add(name)
    return name
