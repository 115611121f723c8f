"""Apache Kafka (KRaft) run from its Maven jars as plain local processes: one node or a cluster of N.

The broker's runtime classpath is resolved once per version from the pom shipped in this package
(``kafka_pom.xml``) with ``mvn dependency:copy-dependencies`` into ``<cache>/kafka-<version>/lib``
(``cache`` is ``KCOLLECT_KAFKA_CACHE_DIR`` or ``<state folder>/kafka-dist``); Maven's own download cache
is its default local repository (``~/.m2/repository`` unless the user's Maven settings say otherwise).
Later starts find the finished folder and need no network and no Maven.

``start_kafka(folder, nodes=N)`` formats each node's storage (same cluster id, same properties file
as the start) and starts every node as ``java ... kafka.Kafka server.properties``:

- N=1: one combined broker+controller; internal topics at replication factor 1.
- N=3 (any N >= 2): N combined nodes on loopback, ``controller.quorum.voters`` naming all of them,
  internal and default topic replication ``min(3, N)``, ``min.insync.replicas`` 2, unclean leader
  election off.

Readiness is the metadata answer of an AdminClient listing every node, never just an open port.
``KafkaCluster.stop()`` sends SIGTERM to every node at once (a controlled shutdown), then SIGKILL after a
timeout; ``stop_node(i)``, ``kill_node(i)`` and ``start_node(i)`` act on one node by index (0-based).
Every node is recorded as a ``ProcessRecord`` (name ``kafka`` for a single node, ``kafka-1``… in a
cluster) that ``kcollect.localstack.process.stop_process`` stops by PID.
"""

from __future__ import annotations

import base64
import fcntl
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from confluent_kafka.admin import AdminClient

from kcollect.localstack.errors import StackError
from kcollect.localstack.ports import LOOPBACK, deadline_after, ensure_free, free_port, port_open, remaining
from kcollect.localstack.process import (
    MARKER_VARIABLE,
    exited,
    is_recorded_process,
    log_tail,
    marker,
    spawn_detached,
    stop_processes,
    wait_ready,
)
from streams.settings.names import variable
from streams.settings.stackfile import ProcessRecord, state_dir

NAME = "kafka"
KAFKA_VERSION = "4.4.0"
STARTUP_TIMEOUT = 60.0
RESOLVE_TIMEOUT = 900.0
STOP_TIMEOUT = 20.0
CACHE_VARIABLE = variable("kafka_cache_dir")
VERSION_VARIABLE = variable("kafka_version")
JVM_OPTIONS_VARIABLE = variable("kafka_jvm_options")
POM_RESOURCE = "kafka_pom.xml"
_COMPLETE = ".complete"

# Small, shared machine: a bounded heap, the serial collector, C1 only (the broker answers in ~2 s
# instead of ~4 s; drop TieredStopAtLevel for throughput work through KCOLLECT_KAFKA_JVM_OPTIONS).
JVM_OPTIONS: tuple[str, ...] = (
    "-Xms128m",
    "-Xmx512m",
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
# A cluster's nodes (three JVMs beside the services on two cores) get a smaller heap each: the idle
# RSS is ~170 MB, and a drill's load stays well under it.
CLUSTER_HEAP: tuple[str, ...] = ("-Xms64m", "-Xmx384m")

# Broker settings for every local node: few threads, a small cleaner buffer (allocated on the heap at
# start), no wait before the first rebalance, and group session timeouts down to what tests use.
BASE_PROPERTIES: dict[str, str] = {
    "num.network.threads": "2",
    "num.io.threads": "2",
    "background.threads": "2",
    "num.replica.fetchers": "1",
    "log.cleaner.threads": "1",
    "log.cleaner.dedupe.buffer.size": "16777216",
    "group.initial.rebalance.delay.ms": "0",
    "group.min.session.timeout.ms": "500",
    "group.consumer.min.session.timeout.ms": "1000",
    "group.consumer.min.heartbeat.interval.ms": "100",
    "unclean.leader.election.enable": "false",
}

LOG4J2_PROPERTIES = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.request.name = kafka.request.logger
logger.request.level = WARN
logger.state.name = state.change.logger
logger.state.level = WARN
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = INFO
"""

_BOOTSTRAP_HINT = (
    "or point KCOLLECT_BOOTSTRAP_SERVERS at an existing Kafka cluster "
    "(or set KCOLLECT_LOCAL_BROKER=tansu for the light broker)"
)


# --- tools and classpath -------------------------------------------------------------------------


def missing_tools() -> list[str]:
    """The programs the Kafka launcher needs (``java``, ``mvn``) that are not on PATH."""
    return [tool for tool in ("java", "mvn") if shutil.which(tool) is None]


def kafka_version() -> str:
    """The broker version to run: ``KCOLLECT_KAFKA_VERSION`` or the pinned default."""
    return os.environ.get(VERSION_VARIABLE, "").strip() or KAFKA_VERSION


def cache_root(folder: Path | None = None) -> Path:
    """Where resolved classpaths live: ``KCOLLECT_KAFKA_CACHE_DIR`` or ``<state folder>/kafka-dist``."""
    configured = os.environ.get(CACHE_VARIABLE)
    if configured:
        return Path(configured)
    return (folder or state_dir()) / "kafka-dist"


def classpath_dir(root: Path, version: str) -> Path:
    """The folder of jars for one version (complete once ``.complete`` is in it)."""
    return root / f"kafka-{version}" / "lib"


def _pom_text() -> str:
    return resources.files("kcollect.localstack").joinpath(POM_RESOURCE).read_text()


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_maven(pom: Path, lib: Path, version: str, log_path: Path, timeout: float) -> None:
    argv = [
        "mvn",
        "-B",
        "-q",
        "-f",
        str(pom),
        "dependency:copy-dependencies",
        f"-Dkafka.version={version}",
        f"-Dkcollect.lib={lib}",
    ]
    with log_path.open("wb") as log:
        try:
            done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise StackError(
                f"resolving Apache Kafka {version} with Maven took over {timeout:g} s; see {log_path}; "
                + _BOOTSTRAP_HINT
            ) from exc
        except OSError as exc:
            raise StackError(f"cannot run mvn: {exc}; " + _BOOTSTRAP_HINT) from exc
    if done.returncode != 0:
        raise StackError(
            f"resolving Apache Kafka {version} from Maven failed (mvn exit {done.returncode}): "
            f"{log_tail(log_path, 3)}; see {log_path}; " + _BOOTSTRAP_HINT
        )


def resolve_classpath(
    root: Path | None = None, version: str | None = None, *, timeout: float = RESOLVE_TIMEOUT
) -> Path:
    """The broker's jar folder for ``version``, resolving it with Maven the first time (locked).

    Returns at once, without Maven, when the folder is complete. The jars are copied into a fresh
    folder and renamed into place, so an interrupted resolution never leaves a half classpath.
    """
    root = root or cache_root()
    version = version or kafka_version()
    lib = classpath_dir(root, version)
    if (lib / _COMPLETE).is_file():
        return lib
    missing = missing_tools()
    if missing:
        raise StackError(f"Apache Kafka needs {' and '.join(missing)} on PATH; " + _BOOTSTRAP_HINT)
    home = lib.parent
    with _file_lock(home / "resolve.lock"):
        if (lib / _COMPLETE).is_file():
            return lib
        pom = home / "pom.xml"
        pom.write_text(_pom_text())
        partial = home / "lib.partial"
        shutil.rmtree(partial, ignore_errors=True)
        _run_maven(pom, partial, version, home / "mvn.log", timeout)
        if not any(partial.glob(f"kafka_2.13-{version}.jar")):
            raise StackError(
                f"Maven finished but {partial} has no kafka_2.13-{version}.jar; see {home}/mvn.log"
            )
        (partial / _COMPLETE).write_text(version + "\n")
        shutil.rmtree(lib, ignore_errors=True)
        partial.rename(lib)
    return lib


# --- node layout and properties ------------------------------------------------------------------


def new_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding, never starting with ``-``."""
    while True:
        text = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


@dataclass(frozen=True)
class KafkaNode:
    """One node (broker and controller in one process) of a local cluster."""

    index: int
    name: str
    port: int
    controller_port: int
    folder: Path
    cluster_size: int = 1

    @property
    def node_id(self) -> int:
        return self.index + 1

    @property
    def bootstrap(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def config_file(self) -> Path:
        return self.folder / "server.properties"

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    @property
    def log_dir(self) -> Path:
        return self.folder / "logs"

    @property
    def server_log(self) -> Path:
        return self.log_dir / "server.log"

    @property
    def stdout_log(self) -> Path:
        return self.log_dir / "stdout.log"


def cluster_properties(count: int) -> dict[str, str]:
    """Replication of internal and default topics for a cluster of ``count`` nodes."""
    replicas = str(min(3, count))
    min_isr = "1" if count == 1 else "2"
    return {
        "offsets.topic.replication.factor": replicas,
        "offsets.topic.num.partitions": "1" if count == 1 else "3",
        "transaction.state.log.replication.factor": replicas,
        "transaction.state.log.min.isr": min_isr,
        "transaction.state.log.num.partitions": "1" if count == 1 else "3",
        "share.coordinator.state.topic.replication.factor": replicas,
        "share.coordinator.state.topic.min.isr": min_isr,
        "default.replication.factor": replicas,
        "min.insync.replicas": min_isr,
    }


def node_properties(node: KafkaNode, voters: Sequence[KafkaNode], extra: Mapping[str, str]) -> dict[str, str]:
    """The ``server.properties`` of one node; ``extra`` overrides anything."""
    quorum = ",".join(f"{v.node_id}@{LOOPBACK}:{v.controller_port}" for v in voters)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": quorum,
        "listeners": f"PLAINTEXT://{LOOPBACK}:{node.port},CONTROLLER://{LOOPBACK}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{node.port}",
        "inter.broker.listener.name": "PLAINTEXT",
        "controller.listener.names": "CONTROLLER",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(node.data_dir),
        **BASE_PROPERTIES,
        **cluster_properties(len(voters)),
    }
    props.update(extra)
    return props


def render_properties(props: Mapping[str, str]) -> str:
    return "".join(f"{key}={value}\n" for key, value in props.items())


def jvm_options(cluster_size: int = 1) -> list[str]:
    """The JVM options: the small-machine defaults (a smaller heap per node of a cluster), then
    ``KCOLLECT_KAFKA_JVM_OPTIONS`` (split on spaces; a later option wins)."""
    heap = CLUSTER_HEAP if cluster_size > 1 else ()
    return [*JVM_OPTIONS, *heap, *os.environ.get(JVM_OPTIONS_VARIABLE, "").split()]


def _java_argv(lib: Path, node: KafkaNode, main: Sequence[str]) -> list[str]:
    return [
        "java",
        *jvm_options(node.cluster_size),
        f"-Dkafka.logs.dir={node.log_dir}",
        f"-Dlog4j2.configurationFile={node.folder / 'log4j2.properties'}",
        "-cp",
        f"{lib}/*",
        *main,
    ]


def _node_env(node: KafkaNode) -> dict[str, str]:
    drop = ("KAFKA_HEAP_OPTS", "KAFKA_OPTS", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "CLASSPATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env[MARKER_VARIABLE] = marker(node.name, node.port)
    return env


def format_storage(lib: Path, node: KafkaNode, cluster_id: str, timeout: float = 120.0) -> None:
    """``kafka.tools.StorageTool format`` on the node's own properties file; skipped (no JVM started)
    once the data folder has its ``meta.properties`` (the tool itself would ignore it too)."""
    if (node.data_dir / "meta.properties").is_file():
        return
    main = ["kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(node.config_file)]
    argv = [*_java_argv(lib, node, main), "--ignore-formatted"]
    log_path = node.log_dir / "format.log"
    with log_path.open("wb") as log:
        try:
            done = subprocess.run(
                argv, stdout=log, stderr=subprocess.STDOUT, env=_node_env(node), timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise StackError(
                f"formatting Kafka storage of {node.name} took over {timeout:g} s; see {log_path}"
            ) from exc
        except OSError as exc:
            raise StackError(f"cannot run java to format Kafka storage: {exc}; " + _BOOTSTRAP_HINT) from exc
    if done.returncode != 0:
        raise StackError(
            f"formatting Kafka storage of {node.name} failed (exit {done.returncode}): "
            f"{log_tail(log_path, 3)}; see {log_path}"
        )


# --- readiness -----------------------------------------------------------------------------------


def broker_ids(bootstrap: str, timeout: float) -> set[int]:
    """The node ids a metadata answer from ``bootstrap`` lists (empty when nothing answers)."""
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    if not port_open(host, int(port), timeout=max(0.1, min(timeout, 0.5))):
        return set()
    # log_level 0: a node still starting refuses connections; the caller reports what matters.
    admin = AdminClient(
        {"bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 2000, "log_level": 0}
    )
    try:
        metadata = admin.list_topics(timeout=max(timeout, 1.0))
    except Exception:  # KafkaException and friends: not ready yet
        return set()
    return set(metadata.brokers)


# --- the cluster ---------------------------------------------------------------------------------


@dataclass
class KafkaCluster:
    """N local Kafka nodes (each broker and controller) and the processes that run them."""

    folder: Path
    lib: Path
    cluster_id: str
    nodes: tuple[KafkaNode, ...]
    records: dict[int, ProcessRecord] = field(default_factory=dict)

    @property
    def bootstrap_servers(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes)

    @property
    def version(self) -> str:
        return self.lib.parent.name.removeprefix("kafka-")

    def running_records(self) -> list[ProcessRecord]:
        """The records of the nodes started and not stopped, in node order."""
        return [self.records[i] for i in sorted(self.records)]

    def start_node(self, index: int, timeout: float = STARTUP_TIMEOUT) -> ProcessRecord:
        """Start node ``index`` (formatted already) and wait until its own listener lists it."""
        node = self.nodes[index]
        ensure_free(node.port)
        argv = _java_argv(self.lib, node, ["kafka.Kafka", str(node.config_file)])
        pid = spawn_detached(argv, node.stdout_log, _node_env(node), cwd=node.folder)
        record = ProcessRecord(name=node.name, pid=pid, port=node.port, log_path=str(node.stdout_log))
        self.records[index] = record
        wait_ready(
            record,
            lambda left: node.node_id in broker_ids(node.bootstrap, min(left, 2.0)),
            timeout,
            (node.server_log,),
        )
        return record

    def wait_all(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Wait until the metadata answer lists every node; StackError naming the missing ones."""
        wanted = {node.node_id for node in self.nodes}
        deadline = deadline_after(timeout)
        seen: set[int] = set()
        while remaining(deadline) > 0:
            seen = broker_ids(self.bootstrap_servers, min(remaining(deadline), 2.0))
            if wanted <= seen:
                return
            time.sleep(0.1)
        missing = ", ".join(n.name for n in self.nodes if n.node_id not in seen)
        raise StackError(
            f"Kafka nodes {missing} not listed in metadata within {timeout:g} s; see {self.folder}"
        )

    def stop_node(self, index: int, timeout: float = STOP_TIMEOUT) -> bool:
        """SIGTERM node ``index`` (controlled shutdown), SIGKILL after ``timeout``; True when it ran."""
        record = self.records.pop(index, None)
        return record is not None and bool(stop_processes([record], timeout))

    def kill_node(self, index: int) -> bool:
        """SIGKILL node ``index`` (no shutdown at all); True when it ran."""
        record = self.records.pop(index, None)
        if record is None or not is_recorded_process(record):
            return False
        os.kill(record.pid, signal.SIGKILL)
        deadline = deadline_after(10.0)
        while not exited(record.pid) and remaining(deadline) > 0:
            time.sleep(0.05)
        return True

    def stop(self, timeout: float = STOP_TIMEOUT) -> list[str]:
        """Stop every node at once (SIGTERM to all, then SIGKILL); the names of those that ran."""
        records = self.running_records()
        self.records.clear()
        return stop_processes(records, timeout)


def _node_ports(count: int, port: int | None) -> list[tuple[int, int]]:
    chosen: list[int] = [ensure_free(port)] if port else []
    while len(chosen) < 2 * count:
        candidate = free_port()
        if candidate not in chosen:
            chosen.append(candidate)
    brokers, controllers = chosen[:count], chosen[count:]
    return list(zip(brokers, controllers, strict=True))


def _cluster_id(folder: Path) -> str:
    """The cluster id kept in the folder (made once), so formatted data stays readable across starts."""
    path = folder / "cluster.id"
    try:
        existing = path.read_text().strip()
    except OSError:
        existing = ""
    if existing:
        return existing
    made = new_cluster_id()
    path.write_text(made + "\n")
    return made


def prepare_cluster(
    folder: Path,
    nodes: int = 1,
    port: int | None = None,
    *,
    extra: Mapping[str, str] | None = None,
    cache: Path | None = None,
    version: str | None = None,
) -> KafkaCluster:
    """Resolve the classpath, choose ports, write each node's files and format its storage.

    Nodes live in ``folder/kafka/<name>/`` (``server.properties``, ``log4j2.properties``, ``data/``,
    ``logs/``). Data already formatted there with the folder's cluster id is kept.
    """
    if nodes < 1:
        raise ValueError(f"a Kafka cluster needs at least one node, not {nodes}")
    lib = resolve_classpath(cache or cache_root(folder), version)
    base = folder / "kafka"
    base.mkdir(parents=True, exist_ok=True)
    names = [NAME] if nodes == 1 else [f"{NAME}-{i + 1}" for i in range(nodes)]
    members = tuple(
        KafkaNode(index=i, name=name, port=b, controller_port=c, folder=base / name, cluster_size=nodes)
        for i, (name, (b, c)) in enumerate(zip(names, _node_ports(nodes, port), strict=True))
    )
    cluster = KafkaCluster(folder=base, lib=lib, cluster_id=_cluster_id(base), nodes=members)
    for node in members:
        node.log_dir.mkdir(parents=True, exist_ok=True)
        node.data_dir.mkdir(parents=True, exist_ok=True)
        node.config_file.write_text(render_properties(node_properties(node, members, extra or {})))
        (node.folder / "log4j2.properties").write_text(LOG4J2_PROPERTIES)
        format_storage(lib, node, cluster.cluster_id)
    return cluster


def start_kafka(
    folder: Path,
    port: int | None = None,
    *,
    nodes: int = 1,
    timeout: float = STARTUP_TIMEOUT,
    extra: Mapping[str, str] | None = None,
    cache: Path | None = None,
    version: str | None = None,
) -> KafkaCluster:
    """Resolve, format and start ``nodes`` Kafka nodes under ``folder/kafka``; wait until all answer.

    ``port`` fixes the first node's client port. ``extra`` adds or overrides broker properties on every
    node. On any failure every started node is stopped and StackError says what failed, where its log is,
    and how to use an existing cluster instead.
    """
    cluster = prepare_cluster(folder, nodes, port, extra=extra, cache=cache, version=version)
    try:
        for node in cluster.nodes:  # all nodes up before waiting: a quorum needs a majority
            argv = _java_argv(cluster.lib, node, ["kafka.Kafka", str(node.config_file)])
            pid = spawn_detached(argv, node.stdout_log, _node_env(node), cwd=node.folder)
            cluster.records[node.index] = ProcessRecord(
                name=node.name, pid=pid, port=node.port, log_path=str(node.stdout_log)
            )
        _wait_started(cluster, timeout)
    except BaseException as exc:
        cluster.stop()
        if isinstance(exc, StackError):
            raise StackError(f"Apache Kafka did not start: {exc}; " + _BOOTSTRAP_HINT) from exc
        raise
    return cluster


def _wait_started(cluster: KafkaCluster, timeout: float) -> None:
    """Every node's process alive and listed in metadata; fail fast when one exits."""
    wanted = {node.node_id for node in cluster.nodes}
    deadline = deadline_after(timeout)
    while True:
        for index, record in cluster.records.items():
            if exited(record.pid):
                node = cluster.nodes[index]
                tails = f"{log_tail(node.server_log, 3)} | {log_tail(node.stdout_log, 3)}"
                raise StackError(f"{node.name} exited during startup; see {node.server_log}: {tails}")
        if wanted <= broker_ids(cluster.bootstrap_servers, min(remaining(deadline), 2.0)):
            return
        if remaining(deadline) <= 0:
            logs = ", ".join(str(n.server_log) for n in cluster.nodes)
            raise StackError(f"Kafka did not list all {len(wanted)} node(s) within {timeout:g} s; see {logs}")
        time.sleep(0.1)
