"""The drills' toolkit: a stack each drill can break (its own broker, optionally persistent, optionally
behind a fault proxy; a ClickHouse shared or its own), deployments with real service processes, a
watcher that proves committed offsets never move backwards, and the final check through the run checker.

The broker is the one the test fixtures pick (Apache Kafka where java and mvn exist, else Tansu;
``KCOLLECT_TEST_BROKER=kafka|tansu`` chooses), or the ``broker=`` a drill asks for. Apache Kafka keeps
its data on disk, so it is always persistent; Tansu is on memory storage unless ``persistent`` puts it
on s3 (moto).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from bench.deployment import Deployment, make_deployment
from kcollect.localstack.brokers import BrokerKind
from kcollect.localstack.clickhouse import clickhouse_url, start_clickhouse
from kcollect.localstack.kafka import KafkaCluster, prepare_cluster
from kcollect.localstack.persistent import S3Store, start_broker, start_moto
from kcollect.localstack.ports import LOOPBACK, free_port
from kcollect.localstack.process import is_recorded_process, stop_process, wait_exit
from kcollect.ops.value_check import compute_for
from kcollect.testkit.faultproxy import FaultProxy
from processors.processor.subsystems.simulated import simulated_check
from producers.enqueue.enqueue import EnqueueSummary, enqueue_run
from producers.enqueue.sources import RangeSource
from streams.runs.checker import VerifyReport, pipeline_groups, verify_run, watch_recovery
from streams.settings.stackfile import ProcessRecord
from tests.stack_fixtures import local_broker_choice

RECOVERY_TIMEOUT = 180.0


@dataclass
class ClickHouse:
    folder: Path
    record: ProcessRecord
    proxy: FaultProxy | None = None

    @property
    def url(self) -> str:
        port = self.proxy.port if self.proxy is not None else self.record.port
        return clickhouse_url(port)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.record.pid, sig)
        wait_exit(self.record.pid, 30)

    def start(self) -> None:
        self.record = _retry(lambda: start_clickhouse(self.folder, self.record.port))


def _retry(start: Callable[[], ProcessRecord], attempts: int = 20) -> ProcessRecord:
    """Start on a port just released (the old listener may linger a moment)."""
    for attempt in range(attempts):
        try:
            return start()
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def drill_broker_kind() -> BrokerKind:
    """The broker drills run on unless one asks for another."""
    return local_broker_choice().kind


@dataclass
class Broker:
    folder: Path
    port: int
    store: S3Store | None
    proxy: FaultProxy | None
    kind: BrokerKind = "tansu"
    record: ProcessRecord | None = None
    cluster: KafkaCluster | None = None  # Apache Kafka: the one-node cluster, prepared on first start
    properties: dict[str, str] = field(default_factory=dict)  # Apache Kafka: extra broker properties

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.proxy.port if self.proxy is not None else self.port}"

    def start(self) -> None:
        if self.kind == "kafka":
            self.record = _retry(self._start_kafka)
            return
        advertised = self.proxy.port if self.proxy is not None else None
        self.record = _retry(
            lambda: start_broker(self.folder, self.port, store=self.store, advertised_port=advertised)
        )

    def _start_kafka(self) -> ProcessRecord:
        if self.cluster is None:
            extra = dict(self.properties)
            if self.proxy is not None:  # clients are told to use the proxy
                extra["advertised.listeners"] = f"PLAINTEXT://{LOOPBACK}:{self.proxy.port}"
            self.cluster = prepare_cluster(self.folder / "broker", 1, self.port, extra=extra)
        return self.cluster.start_node(0)

    def kill(self) -> None:
        assert self.record is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.record.pid, signal.SIGKILL)
        wait_exit(self.record.pid, 30)
        if self.cluster is not None:
            self.cluster.records.pop(0, None)

    def wipe(self) -> None:
        """Lose every topic, record and offset (the broker must be stopped): what a restart on Tansu's
        memory storage does; Apache Kafka's data folder is removed and formatted again."""
        assert self.record is None or not is_recorded_process(self.record)
        if self.kind == "kafka":
            assert self.cluster is not None
            shutil.rmtree(self.folder / "broker")
            self.cluster = None
        elif self.store is not None:
            raise AssertionError("a Tansu broker on s3 storage keeps its data: wipe the store instead")

    def stop(self) -> None:
        if self.record is not None:
            stop_process(self.record)


@dataclass
class DrillStack:
    """What one drill runs on; ``close`` stops everything it started, by PID."""

    broker: Broker
    clickhouse: ClickHouse
    cleanup: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def deploy(self, name: str, **env: str) -> Deployment:
        return deploy_on(
            self.cleanup, self.broker.bootstrap, self.clickhouse, self.broker.folder / name, **env
        )


def deploy_on(
    cleanup: contextlib.ExitStack, bootstrap: str, clickhouse: ClickHouse, folder: Path, **env: str
) -> Deployment:
    """Deployment ``folder.name`` on ``bootstrap`` and ``clickhouse``; its services stopped by ``cleanup``."""
    d = make_deployment(bootstrap, clickhouse.url, folder.name, folder, **env)
    cleanup.callback(d.stop_all, 10)
    return d


class Deploys(Protocol):
    """A drill stack: anything that makes deployments (``DrillStack``, the Kafka cluster's stack)."""

    def deploy(self, name: str, **env: str) -> Deployment: ...


@contextlib.contextmanager
def drill_stack(
    folder: Path,
    shared_clickhouse: ClickHouse | None,
    *,
    persistent: bool = False,
    broker_proxy: bool = False,
    own_clickhouse: bool = False,
    clickhouse_proxy: bool = False,
    broker: BrokerKind | None = None,
    broker_properties: dict[str, str] | None = None,
) -> Iterator[DrillStack]:
    kind = broker or drill_broker_kind()
    with contextlib.ExitStack() as cleanup:
        store = None
        if persistent and kind == "tansu":
            store = start_moto(folder)
            cleanup.callback(stop_process, store.record)
        port = free_port()
        proxy = FaultProxy(port).start() if broker_proxy else None
        if proxy is not None:
            cleanup.callback(proxy.stop)
        running = Broker(folder, port, store, proxy, kind, properties=dict(broker_properties or {}))
        running.start()
        cleanup.callback(running.stop)
        if own_clickhouse or clickhouse_proxy:
            ch_folder = folder / "ch"
            ch = ClickHouse(ch_folder, start_clickhouse(ch_folder))
            cleanup.callback(lambda: stop_process(ch.record))
            if clickhouse_proxy:
                ch.proxy = FaultProxy(ch.record.port).start()
                cleanup.callback(ch.proxy.stop)
        else:
            assert shared_clickhouse is not None
            ch = shared_clickhouse
        stack = DrillStack(running, ch)
        cleanup.enter_context(stack.cleanup)
        yield stack


class OffsetWatch(threading.Thread):
    """Samples the committed offsets of the processor and sink groups every ``interval`` s and records
    every partition whose committed offset moved backwards (with ``time.monotonic()`` of the sample
    that saw it in ``moved_at``, so a caller can place it on its own timeline)."""

    def __init__(self, d: Deployment, interval: float = 0.5) -> None:
        super().__init__(daemon=True, name="offset-watch")
        self.d, self.interval = d, interval
        self.backwards: list[str] = []
        self.moved_at: list[float] = []
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        from streams.lag.probe import LagProbe

        settings = self.d.settings
        probes = {g: LagProbe(settings, g, t) for g, t in pipeline_groups(settings).items()}
        last: dict[tuple[str, int], int] = {}
        try:
            while not self._halt.is_set():
                for group, probe in probes.items():
                    try:
                        committed = probe.committed()
                    except Exception:  # broker down: try again next tick
                        continue
                    for partition, offset in committed.items():
                        if offset is None:
                            continue
                        before = last.get((group, partition))
                        if before is not None and offset < before:
                            self.backwards.append(f"{group}[{partition}] {before} -> {offset}")
                            self.moved_at.append(time.monotonic())
                        last[(group, partition)] = offset
                    self.samples += 1
                self._halt.wait(self.interval)
        finally:
            for probe in probes.values():
                probe.close()

    def stop(self) -> list[str]:
        self._halt.set()
        self.join(30)
        return self.backwards


def watched(d: Deployment) -> OffsetWatch:
    """A started ``OffsetWatch`` over ``d``'s groups (stopped by ``check_run``)."""
    watch = OffsetWatch(d)
    watch.start()
    return watch


@dataclass
class DrillRun:
    """A run under way on a deployment whose committed offsets are watched since before it began."""

    d: Deployment
    run_id: str
    clients: int
    watch: OffsetWatch

    def check(self, *, dead_letters: int) -> VerifyReport:
        return check_run(self.d, self.run_id, self.clients, self.watch, dead_letters=dead_letters)


def start_run(
    stack: Deploys,
    name: str,
    clients: int,
    stored_first: int,
    processors: int = 1,
    env: dict[str, str] | None = None,
) -> DrillRun:
    """Deploy ``name`` (``env`` added), start its processors and sink, watch its offsets, enqueue run
    ``name-run`` of ``clients`` and wait until ``stored_first`` rows of it are stored: the moment a
    drill breaks something."""
    d = stack.deploy(name, **(env or {}))
    start_pipeline(d, processors=processors)
    return begin_run(d, f"{name}-run", clients, watched(d), stored_first)


def begin_run(
    d: Deployment, run_id: str, clients: int, watch: OffsetWatch, stored_first: int, timeout: float = 60
) -> DrillRun:
    """Enqueue ``run_id`` of ``clients`` on a running pipeline and wait until ``stored_first`` rows of
    it are stored."""
    run = DrillRun(d, run_id, clients, watch)
    enqueue(d, run_id, clients)
    wait_stored_some(d, run_id, stored_first, timeout)
    return run


def start_pipeline(d: Deployment, processors: int = 1, **env: str) -> None:
    names = [f"processor{i}" for i in range(processors)]
    for name in names:
        d.launch(name, ["processor"], env=env)
    d.launch("sink", ["sink"])
    d.wait_ready(*names, "sink")


def enqueue(d: Deployment, run_id: str, clients: int) -> EnqueueSummary:
    return enqueue_run(d.settings, run_id, RangeSource(0, clients - 1))


def wait_stored_some(d: Deployment, run_id: str, at_least: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            count = d.stored(run_id)
            if count >= at_least:
                return count
        time.sleep(0.1)
    raise AssertionError(f"fewer than {at_least} rows of {run_id} stored after {timeout} s")


def check_run(
    d: Deployment, run_id: str, clients: int, watch: OffsetWatch | None = None, *, dead_letters: int
) -> VerifyReport:
    """The drill's verdict: lag back to zero, then the checker (nothing lost, no duplicate under FINAL,
    nothing unexpected, every value, ``computed`` and status right, no client both stored and
    dead-lettered), exactly ``dead_letters`` of the run's clients dead-lettered and the others stored,
    and committed offsets never backwards."""
    assert_no_crash(d)
    recovery = watch_recovery(d.settings, pipeline_groups(d.settings), RECOVERY_TIMEOUT)
    assert_no_crash(d)
    compute, metric_names = compute_for(d.settings)
    report = verify_run(
        d.settings,
        run_id,
        expected=RangeSource(0, clients - 1),
        value_check=simulated_check,
        compute=compute,
        metric_names=metric_names,
    )
    report.recovery_seconds = recovery
    backwards = watch.stop() if watch is not None else []
    details = report.as_dict()
    assert recovery is not None, f"lag not back to zero in {RECOVERY_TIMEOUT} s: {lags_left(d)}; {details}"
    assert report.ok, f"checker failed: {details}"
    assert report.dead_lettered == dead_letters, f"expected {dead_letters} dead letter(s): {details}"
    assert report.stored == clients - dead_letters, details
    assert not backwards, f"committed offsets moved backwards: {backwards}"
    return report


def assert_no_crash(d: Deployment) -> None:
    """Fail with each dead service's report (signal, log tail, native stacks from its core) when a
    service of ``d`` died by a signal the drill did not send (SIGSEGV, SIGABRT, ...)."""
    crashed = d.crashed()
    assert not crashed, "a service crashed:\n" + "\n\n".join(crashed.values())


def lags_left(d: Deployment) -> dict[str, list[str]]:
    """Each pipeline group's partitions with lag: ``partition: committed/end``."""
    from streams.lag.probe import partition_lags

    return {
        group: [
            f"{x.partition}: {x.committed}/{x.end}" for x in partition_lags(d.settings, group, topic) if x.lag
        ]
        for group, topic in pipeline_groups(d.settings).items()
    }


def wait_all_stored(d: Deployment, run_id: str, clients: int, timeout: float = RECOVERY_TIMEOUT) -> None:
    """Wait until every client is stored or dead-lettered (run status), for drills that then check."""
    from streams.runs.status import wait_complete

    progress = wait_complete(d.settings, run_id, timeout, interval=0.25)
    assert progress.complete, f"run not complete after {timeout} s: {progress.as_dict()}"
