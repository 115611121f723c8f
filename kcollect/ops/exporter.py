"""The Prometheus exporter: consumer-group lag, time lag, offsets, statuses and run progress.

A background thread collects every ``interval`` seconds (``streams.lagmon.LagMonitor``, whose window
gives the statuses, and run progress) and builds the metric families; a scrape only serves the last
families built (a custom Collector), so it answers in milliseconds whatever the number of partitions.
Metric names are in ``streams.lag.metrics``.

Run progress comes from ``streams.runs.status.RunWatcher`` (total from the manifest, stored clients
from ClickHouse, dead-lettered from the dead-letter topics); without ClickHouse only the totals from
the manifests are exported.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

from streams.kafka.admin import BrokerUnreachableError
from streams.lag import metrics as m
from streams.lag.collector import LagCollector, LagMonitor, Snapshot, group_statuses
from streams.lag.status import Status
from streams.settings.model import Settings

log = logging.getLogger(__name__)
PARTITION_LABELS = list(m.PARTITION_LABELS)
GROUP_TOPIC_LABELS = list(m.GROUP_TOPIC_LABELS)
STATUS_HELP = ", ".join(f"{s.value} {s.name}" for s in Status)


def snapshot_families(snapshot: Snapshot) -> list[Metric]:
    """The lag metric families of one collection (pure)."""
    lag = GaugeMetricFamily(m.GROUP_LAG, "Records the group has still to consume", labels=PARTITION_LABELS)
    seconds = GaugeMetricFamily(
        m.GROUP_LAG_SECONDS, "Age of the oldest unconsumed record (seconds)", labels=PARTITION_LABELS
    )
    offset = GaugeMetricFamily(m.GROUP_OFFSET, "The group's committed offset", labels=PARTITION_LABELS)
    status = GaugeMetricFamily(m.PARTITION_STATUS, STATUS_HELP, labels=PARTITION_LABELS)
    for row in snapshot.rows:
        labels = [row.group, row.topic, str(row.partition)]
        lag.add_metric(labels, row.lag)
        if row.lag_seconds is not None:
            seconds.add_metric(labels, row.lag_seconds)
        if row.committed is not None:
            offset.add_metric(labels, row.committed)
        status.add_metric(labels, Status[row.status])
    topic = GaugeMetricFamily(m.TOPIC_OFFSET, "End offset of a partition", labels=["topic", "partition"])
    for (name, partition), end in sorted(snapshot.ends.items()):
        topic.add_metric([name, str(partition)], end)
    groups = GaugeMetricFamily(m.GROUP_STATUS, "Worst status of a group's partitions", labels=[m.GROUP_LABEL])
    for group, value in sorted(group_statuses(snapshot.rows).items()):
        groups.add_metric([group], value)
    members = GaugeMetricFamily(
        m.GROUP_MEMBERS, "Active members (when the broker lists them)", labels=[m.GROUP_LABEL]
    )
    for group, info in sorted(snapshot.groups.items()):
        if info.members is not None:
            members.add_metric([group], info.members)
    owners = GaugeMetricFamily(
        m.PARTITION_OWNER,
        'Who owns a partition (1): member id, client id and host ("unknown" where the broker does not say)',
        labels=[*PARTITION_LABELS, "member", "client_id", "host"],
    )
    for row in snapshot.rows:
        owners.add_metric([row.group, row.topic, str(row.partition), row.owner, row.client_id, row.host], 1)
    return [lag, seconds, offset, status, topic, groups, members, owners, *group_topic_families(snapshot)]


def group_topic_families(snapshot: Snapshot) -> list[Metric]:
    """Sums and maxima per consumer group and topic (pure): the numbers alerts and dashboards ask for."""
    lag_sum = GaugeMetricFamily(
        m.GROUP_LAG_SUM, "Records behind, summed over partitions", labels=GROUP_TOPIC_LABELS
    )
    lag_max = GaugeMetricFamily(
        m.GROUP_LAG_MAX, "Records behind on the worst partition", labels=GROUP_TOPIC_LABELS
    )
    seconds_max = GaugeMetricFamily(
        m.GROUP_LAG_SECONDS_MAX, "Time lag of the worst partition (seconds)", labels=GROUP_TOPIC_LABELS
    )
    offset_sum = GaugeMetricFamily(
        m.GROUP_OFFSET_SUM, "Committed offsets summed over partitions", labels=GROUP_TOPIC_LABELS
    )
    by_key: dict[tuple[str, str], list[Any]] = {}
    for row in snapshot.rows:
        by_key.setdefault((row.group, row.topic), []).append(row)
    for (group, topic), rows in sorted(by_key.items()):
        labels = [group, topic]
        lag_sum.add_metric(labels, sum(r.lag for r in rows))
        lag_max.add_metric(labels, max(r.lag for r in rows))
        measured = [r.lag_seconds for r in rows if r.lag_seconds is not None]
        if measured:
            seconds_max.add_metric(labels, max(measured))
        committed = [r.committed for r in rows if r.committed is not None]
        if committed:
            offset_sum.add_metric(labels, sum(committed))
    return [lag_sum, lag_max, seconds_max, offset_sum]


def run_families(progress: Iterable[Any]) -> list[Metric]:
    """Run progress families from ``RunProgress``-like objects (pure)."""
    names = {
        m.RUN_TOTAL: ("Clients the run enqueued (from its manifest)", "total"),
        m.RUN_STORED: ("Distinct clients of the run stored in ClickHouse", "stored"),
        m.RUN_DEAD_LETTERED: ("Clients of the run dead-lettered and not stored", "dead_lettered"),
        m.RUN_PENDING: ("Clients of the run without a final outcome yet", "pending"),
        m.RUN_COMPLETE: ("1 when stored + dead-lettered reached the total", "complete"),
    }
    families = {name: GaugeMetricFamily(name, text, labels=["run_id"]) for name, (text, _) in names.items()}
    for run in progress:
        for name, (_, attribute) in names.items():
            value = getattr(run, attribute, None)
            if value is not None:
                families[name].add_metric([run.run_id], float(value))
    return list(families.values())


class RunSource:
    """Progress of the latest runs: RunWatcher when ClickHouse answers, otherwise manifest totals only."""

    def __init__(self, settings: Settings, max_runs: int = 10) -> None:
        self._settings = settings
        self._max_runs = max_runs
        self._watcher: Any = None
        self._warned: set[str] = set()

    def _warn(self, message: str, exc: Exception) -> None:
        """Log a problem at WARNING the first time, at DEBUG after that (it repeats every interval)."""
        (log.debug if message in self._warned else log.warning)(message, exc)
        self._warned.add(message)

    def progress(self) -> list[Any]:
        from streams.runs.status import RunProgress, RunWatcher

        try:
            if self._watcher is None:
                self._watcher = RunWatcher(self._settings)
            self._watcher.refresh(5.0)
            latest = sorted(self._watcher.manifests.values(), key=lambda x: x.created_at_ms)[
                -self._max_runs :
            ]
            stored = self._watcher.stored_counts()
            return [self._watcher.progress(x.run_id, stored.get(x.run_id, 0)) for x in latest]
        except Exception as exc:  # ClickHouse or the runs topics unavailable: manifests only
            self._warn("run progress from ClickHouse unavailable (%s); exporting manifest totals", exc)
            self.close()
        from streams.runs.manifests import read_manifests

        try:
            found = read_manifests(self._settings, 5.0).values()
        except Exception as exc:  # no runs topic under this prefix: no run metrics
            self._warn("no run manifests (%s)", exc)
            return []
        manifests = sorted(found, key=lambda x: x.created_at_ms)
        return [
            RunProgress(x.run_id, x.status, x.total, 0, 0, 0, 0, 0, None, False)
            for x in manifests[-self._max_runs :]
        ]

    def close(self) -> None:
        if self._watcher is not None:
            watcher, self._watcher = self._watcher, None
            watcher.close()


class LagExporter:
    """A Collector serving families built by a background collection every ``interval`` seconds."""

    def __init__(
        self, settings: Settings, interval: float = 5.0, *, runs: bool = True, window: int = 10, **scope: Any
    ) -> None:
        self.interval = interval
        self._monitor = LagMonitor(LagCollector(settings, **scope), window=window)
        self._runs = RunSource(settings) if runs else None
        self._lock = threading.Lock()
        self._families: list[Metric] = []
        self._errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="lag-exporter", daemon=True)
        self.collections = 0
        self.last_snapshot: Snapshot | None = None

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            yield from self._families

    def refresh(self) -> None:
        """One collection; on failure the previous families stay, with ``up`` 0 and the error counted."""
        started = time.monotonic()
        families: list[Metric] = []
        up = 1.0
        try:
            snapshot = self._monitor.sample()
            self.last_snapshot = snapshot
            families += snapshot_families(snapshot)
            if self._runs is not None:
                families += run_families(self._runs.progress())
        except BrokerUnreachableError as exc:
            log.warning("lag collection failed: %s", exc)  # an outage: one line, not a traceback
            self._errors += 1
            up = 0.0
        except Exception:
            log.exception("lag collection failed")
            self._errors += 1
            up = 0.0
        took = time.monotonic() - started
        own = [
            GaugeMetricFamily(m.EXPORTER_UP, "1 when the last collection succeeded", value=up),
            GaugeMetricFamily(m.EXPORTER_COLLECT_SECONDS, "Duration of the last collection", value=took),
            GaugeMetricFamily(m.EXPORTER_LAST_COLLECT, "Unix time of the last collection", value=time.time()),
            CounterMetricFamily(m.EXPORTER_ERRORS, "Collections that failed", value=self._errors),
        ]
        with self._lock:
            if up or not self._families:
                self._families = families + own
            else:
                self._families = [f for f in self._families if f.name not in {x.name for x in own}] + own
        self.collections += 1

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.refresh()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=60)
        self._monitor.close()
        if self._runs is not None:
            self._runs.close()


def serve(exporter: LagExporter, port: int, addr: str = "0.0.0.0") -> Any:
    """Serve ``exporter`` alone on http://addr:port/metrics; returns the HTTP server (``shutdown()``)."""
    registry = CollectorRegistry()
    registry.register(exporter)
    server, _thread = start_http_server(port, addr, registry=registry)
    return server
