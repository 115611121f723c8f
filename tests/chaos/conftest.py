"""The fault campaign's seeds, its marker and the ClickHouse its seeds share.

Which seeds run (first match wins): ``--seed N`` or ``CHAOS_SEED=N`` (one seed, to replay);
``--seeds N`` / ``CHAOS_SEEDS=N`` (N seeds in a row from ``--seed-start`` /
``CHAOS_SEED_START``, default 100: what ``make chaos SEEDS=N SEED_START=S`` runs); else the
fixed ``CI_SEEDS``, which the default ``pytest`` run includes. ``CHAOS_SCHEDULE=FILE`` plays the
schedule JSON in FILE (as a failing seed prints it, or edited by hand) instead of the seed's own.

The broker is the one the test fixtures pick (Apache Kafka where java and mvn exist, else Tansu;
``KCOLLECT_TEST_BROKER=kafka|tansu`` chooses). Apache Kafka is started once per session (it takes
seconds to start; each seed has its own topics and groups on it); Tansu once per seed (it starts in a
blink, and a long-lived Tansu has been seen to stop assigning a group after freezes). The seeds share
one clickhouse-server of their own, which the campaign stops and restarts. Both are module-scoped: in
the whole suite they stop once the last seed is done.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from kcollect.localstack.clickhouse import start_clickhouse
from kcollect.localstack.ports import free_port
from kcollect.localstack.process import stop_process
from tests.drills.kit import Broker, ClickHouse, drill_broker_kind

CI_SEEDS = (1, 2, 3, 4, 5, 6)
DEFAULT_START = 100


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: a seed of the randomized fault campaign (tests/chaos)")


def _int(config: pytest.Config, option: str, variable: str) -> int | None:
    value = config.getoption(option, default=None) or os.environ.get(variable)
    return int(value) if value not in (None, "") else None


def chosen_seeds(config: pytest.Config) -> list[int]:
    one = _int(config, "chaos_seed", "CHAOS_SEED")
    if one is not None:
        return [one]
    count = _int(config, "chaos_seeds", "CHAOS_SEEDS")
    if count is not None:
        start = _int(config, "chaos_seed_start", "CHAOS_SEED_START")
        first = DEFAULT_START if start is None else start
        return list(range(first, first + count))
    return list(CI_SEEDS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" in metafunc.fixturenames:
        seeds = chosen_seeds(metafunc.config)
        metafunc.parametrize("seed", seeds, ids=[f"seed{s}" for s in seeds])


@pytest.fixture(scope="module")
def chaos_clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouse]:
    folder = tmp_path_factory.mktemp("chaos-ch")
    ch = ClickHouse(folder, start_clickhouse(folder))
    yield ch
    stop_process(ch.record)


def _broker(folder: Path) -> Broker:
    broker = Broker(folder, free_port(), None, None, drill_broker_kind())
    broker.start()
    return broker


@pytest.fixture(scope="module")
def chaos_session_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker | None]:
    """Apache Kafka for every seed of the module; None on Tansu (each seed starts its own)."""
    if drill_broker_kind() != "kafka":
        yield None
        return
    broker = _broker(tmp_path_factory.mktemp("chaos-kafka"))
    yield broker
    broker.stop()


@pytest.fixture
def chaos_broker(chaos_session_broker: Broker | None, tmp_path: Path) -> Iterator[Broker]:
    """The seed's broker: the session's Apache Kafka, or a Tansu of its own."""
    if chaos_session_broker is not None:
        yield chaos_session_broker
        return
    broker = _broker(tmp_path / "broker")
    yield broker
    broker.stop()
