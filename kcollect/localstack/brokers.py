"""Which local broker to run (Apache Kafka or Tansu) and how to start it: the stack, the test fixtures,
the benchmarks and the drills all start their broker through ``start_local_broker``.

``KCOLLECT_LOCAL_BROKER=kafka|tansu`` chooses. Without it the broker is Apache Kafka where ``java`` and
``mvn`` are on PATH, else Tansu, with a one-line note that says why.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from kcollect.localstack import kafka
from kcollect.localstack.errors import StackError
from kcollect.localstack.ports import LOOPBACK
from kcollect.localstack.process import stop_processes
from kcollect.localstack.tansu import start_tansu
from streams.settings.names import variable
from streams.settings.stackfile import ProcessRecord

BrokerKind = Literal["kafka", "tansu"]
BROKER_VARIABLE = variable("local_broker")
KINDS: tuple[BrokerKind, ...] = ("kafka", "tansu")


@dataclass(frozen=True)
class BrokerChoice:
    """The broker to run and, when it is not the one asked for or the default, why."""

    kind: BrokerKind
    note: str | None = None


def choose_broker(variable: str = BROKER_VARIABLE) -> BrokerChoice:
    """``kafka`` or ``tansu`` from the environment variable, else Apache Kafka when java and mvn exist.

    A cached classpath is not enough without java; mvn is needed only the first time, but its absence
    is reported up front rather than half-way into a start.
    """
    asked = os.environ.get(variable, "").strip().lower()
    if asked in KINDS:
        return BrokerChoice("kafka" if asked == "kafka" else "tansu")
    if asked:
        raise StackError(f"{variable}={asked!r} is not a local broker: use kafka or tansu")
    missing = kafka.missing_tools()
    if missing:
        tools = " and ".join(missing)
        return BrokerChoice(
            "tansu",
            f"{tools} not found on PATH: the local broker is Tansu, not Apache Kafka "
            f"(install a JDK 17 and Maven, or set {variable}=tansu to silence this)",
        )
    return BrokerChoice("kafka")


@dataclass
class LocalBroker:
    """A running local broker: its kind, address and the processes that make it."""

    kind: BrokerKind
    bootstrap_servers: str
    records: list[ProcessRecord] = field(default_factory=list)
    cluster: kafka.KafkaCluster | None = None  # Apache Kafka only

    def stop(self) -> list[str]:
        """Stop every process (SIGTERM at once, then SIGKILL); the names of those that ran."""
        if self.cluster is not None:
            return self.cluster.stop()
        return stop_processes(self.records)


def start_local_broker(
    kind: BrokerKind,
    folder: Path,
    port: int | None = None,
    *,
    timeout: float = kafka.STARTUP_TIMEOUT,
    nodes: int = 1,
    extra: Mapping[str, str] | None = None,
) -> LocalBroker:
    """Start ``kind`` under ``folder`` and wait until it answers metadata requests.

    ``nodes`` and ``extra`` (broker properties) apply to Apache Kafka only; Tansu is always one node.
    """
    if kind == "tansu":
        if nodes != 1 or extra:
            raise StackError("Tansu runs as one node with no broker properties")
        record = start_tansu(folder, port, timeout=timeout)
        return LocalBroker("tansu", f"{LOOPBACK}:{record.port}", [record])
    cluster = kafka.start_kafka(folder, port, nodes=nodes, timeout=timeout, extra=extra)
    return LocalBroker("kafka", cluster.bootstrap_servers, cluster.running_records(), cluster)
