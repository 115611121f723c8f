"""Fault drills: markers, selection and the shared ClickHouse.

``drill`` marks every drill, ``ci_drill`` the fast subset (the crash-point matrix at 20k clients)
that the default ``pytest`` run from the repository root keeps. Selection without any pytest option:
when no argument names ``tests/drills`` (or a file in it), drills not marked ``ci_drill`` are
deselected; ``pytest tests/drills`` or ``pytest tests/drills/test_broker.py`` runs them all, as does
``KCOLLECT_DRILLS=1``. An explicit ``-m`` expression is left alone.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kcollect.localstack import kafka
from kcollect.localstack.clickhouse import start_clickhouse
from kcollect.localstack.process import stop_process
from tests.drills.kafka_cluster_kit import ClusterDrillStack, kafka_cluster_stack
from tests.drills.kit import ClickHouse

HERE = Path(__file__).resolve().parent


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "drill: a fault drill (needs a local broker, ClickHouse, and moto for Tansu on s3)"
    )
    config.addinivalue_line("markers", "ci_drill: a drill fast enough for the default test run")


def _drills_named(config: pytest.Config) -> bool:
    for arg in config.args:
        path = Path(arg.split("::", 1)[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("KCOLLECT_DRILLS") == "1" or config.option.markexpr or _drills_named(config):
        return
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        slow_drill = item.get_closest_marker("drill") and not item.get_closest_marker("ci_drill")
        (drop if slow_drill else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def shared_clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouse]:
    """One clickhouse-server for the drills that do not break ClickHouse."""
    folder = tmp_path_factory.mktemp("drill-ch")
    ch = ClickHouse(folder, start_clickhouse(folder))
    yield ch
    stop_process(ch.record)


@pytest.fixture
def kafka_cluster(tmp_path: Path, shared_clickhouse: ClickHouse) -> Iterator[ClusterDrillStack]:
    """A fresh 3-broker Apache Kafka cluster on loopback for one drill (RF 3, min ISR 2, acks=all,
    unclean election off: ``tests/drills/kafka_cluster_kit.py``), stopped by PID after it."""
    if kafka.missing_tools():
        pytest.skip(f"Apache Kafka needs {', '.join(kafka.missing_tools())}")
    with kafka_cluster_stack(tmp_path / "kafka-cluster", shared_clickhouse) as stack:
        yield stack
