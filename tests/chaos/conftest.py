"""The fault campaign's seeds, its marker and the ClickHouse its seeds share.

Which seeds run (first match wins): ``--seed N`` or ``KCOLLECT_CHAOS_SEED=N`` (one seed, to replay);
``--seeds N`` / ``KCOLLECT_CHAOS_SEEDS=N`` (N seeds in a row from ``--seed-start`` /
``KCOLLECT_CHAOS_SEED_START``, default 100: what ``make chaos SEEDS=N SEED_START=S`` runs); else the
fixed ``CI_SEEDS``, which the default ``pytest`` run includes. ``KCOLLECT_CHAOS_SCHEDULE=FILE`` plays the
schedule JSON in FILE (as a failing seed prints it, or edited by hand) instead of the seed's own.

Every seed gets its own broker (Tansu starts in a blink and a long-lived Tansu has been seen to stop
assigning a group after freezes); the seeds of a session share one clickhouse-server of their own,
which the campaign stops and restarts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from kcollect.localstack.clickhouse import start_clickhouse
from kcollect.localstack.process import stop_process
from tests.drills.kit import ClickHouse

CI_SEEDS = (1, 2, 3, 4, 5, 6)
DEFAULT_START = 100


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "chaos: a seed of the randomized fault campaign (tests/chaos)")


def _int(config: pytest.Config, option: str, variable: str) -> int | None:
    value = config.getoption(option, default=None) or os.environ.get(variable)
    return int(value) if value not in (None, "") else None


def chosen_seeds(config: pytest.Config) -> list[int]:
    one = _int(config, "chaos_seed", "KCOLLECT_CHAOS_SEED")
    if one is not None:
        return [one]
    count = _int(config, "chaos_seeds", "KCOLLECT_CHAOS_SEEDS")
    if count is not None:
        start = _int(config, "chaos_seed_start", "KCOLLECT_CHAOS_SEED_START")
        first = DEFAULT_START if start is None else start
        return list(range(first, first + count))
    return list(CI_SEEDS)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" in metafunc.fixturenames:
        seeds = chosen_seeds(metafunc.config)
        metafunc.parametrize("seed", seeds, ids=[f"seed{s}" for s in seeds])


@pytest.fixture(scope="session")
def chaos_clickhouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouse]:
    folder = tmp_path_factory.mktemp("chaos-ch")
    ch = ClickHouse(folder, start_clickhouse(folder))
    yield ch
    stop_process(ch.record)
