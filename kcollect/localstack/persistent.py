"""A Tansu broker that survives ``kill -9``: s3 storage behind a local ``moto_server`` (the drills' broker).

``start_moto(folder)`` runs ``moto_server`` (``pip install 'kcollect[drills]'``) on a free loopback port
and creates the bucket; ``start_broker(folder, storage=...)`` starts Tansu on a chosen port with either
``memory://`` (everything lost on restart) or ``s3://BUCKET/`` on that moto (topics, records and
committed offsets kept across a broker restart; killing moto loses them, it keeps objects in RAM).
``advertised_port`` lets a proxy (``kcollect.testkit.faultproxy``) sit between clients and the broker.
Both return a ``ProcessRecord`` that ``kcollect.localstack.process.stop_process`` stops by PID.
"""

from __future__ import annotations

import os
import shutil
import sys
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from kcollect.localstack.errors import StackError
from kcollect.localstack.ports import LOOPBACK, free_port, port_open
from kcollect.localstack.process import MARKER_VARIABLE, marker, spawn_detached, wait_ready
from kcollect.localstack.tansu import NAME as TANSU
from kcollect.localstack.tansu import find_tansu, kafka_answers, tansu_env
from streams.settings.stackfile import ProcessRecord

MOTO = "moto_server"
BUCKET = "kcollect-drills"
STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class S3Store:
    """A running ``moto_server`` with the broker's bucket."""

    record: ProcessRecord
    bucket: str = BUCKET

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.record.port}"

    @property
    def storage_url(self) -> str:
        return f"s3://{self.bucket}/"

    def env(self) -> dict[str, str]:
        """What Tansu needs to reach this store."""
        return {
            "AWS_ENDPOINT": self.endpoint,
            "AWS_ALLOW_HTTP": "true",
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


def _moto_binary() -> str:
    found = shutil.which(MOTO) or str(Path(sys.executable).parent / MOTO)
    if not os.access(found, os.X_OK):
        raise StackError("moto_server is missing: pip install 'kcollect[drills]' (moto[server])")
    return found


def _create_bucket(endpoint: str, bucket: str) -> None:
    """A plain ``PUT /bucket`` (moto does not check signatures): no boto3 needed."""
    request = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT", data=b"")
    with urllib.request.urlopen(request, timeout=10) as answer:
        if answer.status >= 300:
            raise StackError(f"cannot create bucket {bucket} on {endpoint}: HTTP {answer.status}")


def start_moto(folder: Path, port: int | None = None, timeout: float = STARTUP_TIMEOUT) -> S3Store:
    """Start ``moto_server`` on 127.0.0.1 and create the broker's bucket."""
    port = port or free_port()
    env = {**os.environ, MARKER_VARIABLE: marker(MOTO, port)}
    log_path = folder / "logs" / "moto.log"
    pid = spawn_detached([_moto_binary(), "-H", LOOPBACK, "-p", str(port)], log_path, env, cwd=folder)
    record = ProcessRecord(name=MOTO, pid=pid, port=port, log_path=str(log_path))
    wait_ready(record, lambda _left: port_open(LOOPBACK, port), timeout)
    store = S3Store(record)
    _create_bucket(store.endpoint, store.bucket)
    return store


def start_broker(
    folder: Path,
    port: int | None = None,
    *,
    store: S3Store | None = None,
    advertised_port: int | None = None,
    timeout: float = STARTUP_TIMEOUT,
) -> ProcessRecord:
    """Start Tansu on 127.0.0.1:port: s3 storage on ``store`` when given, else memory.

    ``advertised_port`` (default: ``port``) is the address clients are told to use, e.g. a proxy's.
    Restart it on the same ports with the same store to find every topic, record and offset again.
    """
    port = port or free_port()
    advertised = advertised_port or port
    storage = store.storage_url if store is not None else "memory://tansu/"
    argv = [
        str(find_tansu()),
        "broker",
        "--listener-url",
        f"tcp://{LOOPBACK}:{port}",
        "--advertised-listener-url",
        f"tcp://{LOOPBACK}:{advertised}",
        "--storage-engine",
        storage,
    ]
    env = tansu_env(port) | (store.env() if store is not None else {})
    log_path = folder / "logs" / f"tansu-{port}.log"
    pid = spawn_detached(argv, log_path, env, cwd=folder)
    record = ProcessRecord(name=TANSU, pid=pid, port=port, log_path=str(log_path))
    # Ready when it answers on its own port (through a proxy the metadata answer points at the proxy).
    wait_ready(record, lambda left: port_open(LOOPBACK, port) and _answers(port, advertised, left), timeout)
    return record


def _answers(port: int, advertised: int, left: float) -> bool:
    if advertised != port:
        return port_open(LOOPBACK, port)
    return kafka_answers(f"{LOOPBACK}:{port}", min(left, 2.0))
