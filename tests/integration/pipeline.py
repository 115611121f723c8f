"""Helpers for integration tests: an isolated pipeline (own topic prefix, groups and database) on the
session's broker and ClickHouse, with the services run as real `kcollect` processes. A pipeline is a
``bench.deployment.Deployment`` with 4 partitions and 0.5 s sink windows."""

from __future__ import annotations

import time
from pathlib import Path

from bench.deployment import ROOT, Deployment, deployment_env

__all__ = ["ROOT", "Pipeline", "make_pipeline"]


class Pipeline(Deployment):
    def wait_rows(self, run_id: str, expected: int, timeout: float = 120) -> int:
        """Rows of ``run_id`` under FINAL once they reach ``expected`` (or what there is at ``timeout``)."""
        deadline = time.monotonic() + timeout
        count = 0
        while time.monotonic() < deadline:
            count = self.stored(run_id, final=True)
            if count >= expected:
                return count
            time.sleep(0.2)
        return count


def make_pipeline(
    kafka_bootstrap: str, clickhouse_url: str, name: str, workdir: Path, **extra: str
) -> Pipeline:
    extra = {"KCOLLECT_PARTITIONS": "4", "KCOLLECT_SINK_BATCH_SECONDS": "0.5"} | extra
    env = deployment_env(kafka_bootstrap, clickhouse_url, name, workdir, **extra)
    pipeline = Pipeline(name, env, workdir)
    pipeline.prepare()
    return pipeline
