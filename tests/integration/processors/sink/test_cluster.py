"""The sink on a ClickHouse cluster (2 shards x 2 replicas, the ``local_cluster`` fixture): ``db
migrate`` ON CLUSTER, a run through real processor and sink processes, every client on the shard that
owns it and on both its replicas once, and every reader (checker, run status) through the
Distributed tables."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from schemas.ddl import RESULTS_LOCAL_TABLE, RUN_SUMMARY_LOCAL
from streams.runs.status import run_status
from tests.drills.cluster_kit import check_placement, cluster_stack
from tests.drills.kit import check_run, enqueue, start_pipeline, watched

pytestmark = pytest.mark.integration
CLIENTS = 20_000


def test_run_on_cluster(tmp_path: Path, local_cluster: Any, kafka_bootstrap: str) -> None:
    with cluster_stack(tmp_path, local_cluster, kafka_bootstrap) as stack:
        name = f"cl{int(time.time()) % 100000}"
        d = stack.deploy(name)
        tables = {r[0] for r in d.query("SELECT name FROM system.tables WHERE database = %(d)s", {"d": name})}
        assert {RESULTS_LOCAL_TABLE, RUN_SUMMARY_LOCAL, "client_results", "run_summary"} <= tables
        start_pipeline(d)
        watch = watched(d)
        run_id = f"{name}-run"
        enqueue(d, run_id, CLIENTS)
        report = check_run(d, run_id, CLIENTS, watch, dead_letters=0)
        assert report.duplicated_raw == 0, report.as_dict()
        check_placement(local_cluster, name, run_id, CLIENTS)
        progress = run_status(d.settings, run_id)
        assert progress.stored == CLIENTS and progress.complete, progress.as_dict()
