"""Parts of bench/e2e: a sampler of stored rows and lag, and the wait for every client stored (the
deployment itself is ``bench.deployment``, CPU and RSS from /proc ``bench.procstat``)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from bench.deployment import Deployment
from streams.clickhouse.client import connect


@dataclass
class Sample:
    t: float
    stored: int
    processor_lag: int | None
    sink_lag: int | None


class Sampler(threading.Thread):
    """Every ``interval`` s: raw rows stored for the run and both groups' lag; CPU and peak RSS of the
    services are read at ``snapshot``."""

    def __init__(self, deployment: Deployment, run_id: str, interval: float = 0.5) -> None:
        super().__init__(daemon=True, name="e2e-sampler")
        self.deployment, self.run_id, self.interval = deployment, run_id, interval
        self.samples: list[Sample] = []
        self.started_at = time.time()
        self._halt = threading.Event()

    def run(self) -> None:
        from streams.lag.probe import LagProbe

        settings = self.deployment.settings
        prefix = settings.topic_prefix
        probes = {
            "processor": LagProbe(settings, settings.processor_group, f"{prefix}requests"),
            "sink": LagProbe(settings, settings.sink_group, f"{prefix}results"),
        }
        try:
            while not self._halt.is_set():
                lags: dict[str, int | None] = {}
                for name, probe in probes.items():
                    try:
                        lags[name] = probe.total()
                    except Exception:
                        lags[name] = None
                stored = self.deployment.stored(self.run_id)
                self.samples.append(Sample(time.time(), stored, lags["processor"], lags["sink"]))
                self._halt.wait(self.interval)
        finally:
            for probe in probes.values():
                probe.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(10)


def wait_stored(deployment: Deployment, run_id: str, clients: int, timeout: float) -> float | None:
    """The epoch time ``clients`` distinct clients of the run were seen stored (None after ``timeout``):
    polls the run's deliveries (``run_summary``, duplicates included) every 0.05 s, and counts the
    distinct clients (``client_results``) only when the deliveries grew to at least ``clients``. A
    distinct count at every poll (~36 ms of ClickHouse's CPU at 200,000 rows, growing with the rows)
    would be a load on the server the bench measures."""
    deadline = time.monotonic() + timeout
    client = connect(deployment.settings.clickhouse())
    counted_at = -1
    try:
        while time.monotonic() < deadline:
            delivered = client.execute(
                "SELECT countMerge(deliveries) FROM run_summary WHERE run_id = %(r)s", {"r": run_id}
            )
            deliveries = int(delivered[0][0]) if delivered else 0
            if deliveries >= clients and deliveries != counted_at:
                counted_at = deliveries
                distinct = client.execute(
                    "SELECT uniqExact(client_id) FROM client_results WHERE run_id = %(r)s", {"r": run_id}
                )[0][0]
                if distinct >= clients:
                    return time.time()
            time.sleep(0.05)
        return None
    finally:
        client.disconnect()
