"""SASL_SSL with SCRAM-SHA-512 on Apache Kafka, with a CA the test makes (openssl): enqueue, the processor,
the sink, `kcollect lag` and the exporter all work through it; a wrong password fails at start with one
clear line and exit code 3.

The broker gets a second listener, SASL_SSL on its own port (PEM keystore signed by the test's CA, SCRAM
credentials created through the admin API on the plaintext listener); the deployment uses only that one.
"""

from __future__ import annotations

import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import (
    AdminClient,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from kcollect.localstack.ports import free_port
from tests.integration.pipeline import Pipeline, make_pipeline
from tests.tls_files import TlsFiles, make_server_files

pytestmark = pytest.mark.integration
USER, PASSWORD = "kcollect", "s3cret-scram"


def _sasl_properties(
    port: int, controller: int, plain: int, files: TlsFiles, keystore: Path
) -> dict[str, str]:
    keystore.write_text(files.server_key.read_text() + files.server_cert.read_text())
    return {
        "listeners": f"PLAINTEXT://127.0.0.1:{plain},CONTROLLER://127.0.0.1:{controller},SASL_SSL://127.0.0.1:{port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{plain},SASL_SSL://127.0.0.1:{port}",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": (
            "org.apache.kafka.common.security.scram.ScramLoginModule required;"
        ),
        "ssl.keystore.type": "PEM",
        "ssl.keystore.location": str(keystore),
        "ssl.client.auth": "none",
    }


@pytest.fixture(scope="module")
def sasl_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, TlsFiles]]:
    from kcollect.localstack import kafka

    if kafka.missing_tools():
        pytest.skip(f"Apache Kafka needs {', '.join(kafka.missing_tools())}")
    folder = tmp_path_factory.mktemp("sasl-kafka")
    files = make_server_files(folder / "tls")
    cluster = kafka.prepare_cluster(folder, cache=kafka.cache_root())
    node = cluster.nodes[0]
    sasl_port = free_port()
    props = kafka.node_properties(node, cluster.nodes, {})
    props.update(_sasl_properties(sasl_port, node.controller_port, node.port, files, folder / "keystore.pem"))
    node.config_file.write_text(kafka.render_properties(props))
    try:
        cluster.start_node(0)
        admin = AdminClient({"bootstrap.servers": node.bootstrap})
        upsert = UserScramCredentialUpsertion(
            USER, ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 4096), PASSWORD.encode()
        )
        for future in admin.alter_user_scram_credentials([upsert]).values():
            future.result(30)
        yield f"127.0.0.1:{sasl_port}", files
    finally:
        cluster.stop()


def _security(files: TlsFiles, password: str = PASSWORD) -> dict[str, str]:
    return {
        "KCOLLECT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KCOLLECT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KCOLLECT_KAFKA_SASL_USERNAME": USER,
        "KCOLLECT_KAFKA_SASL_PASSWORD": password,
        "KCOLLECT_KAFKA_SSL_CA_LOCATION": str(files.ca_cert),
    }


@pytest.fixture
def pipe(
    sasl_kafka: tuple[str, TlsFiles], clickhouse_url: str, unique_name: str, tmp_path: Path
) -> Iterator[Pipeline]:
    bootstrap, files = sasl_kafka
    pipeline = make_pipeline(bootstrap, clickhouse_url, unique_name, tmp_path, **_security(files))
    yield pipeline
    pipeline.kill_all()


def test_every_service_works_through_sasl_ssl(pipe: Pipeline) -> None:
    pipe.start("processor")
    pipe.start("sink")
    pipe.wait_ready("processor", "sink")
    done = pipe.cli("enqueue", "--clients", "3000", "--run-id", "sasl-1")
    assert done.returncode == 0, done.stderr
    assert pipe.wait_rows("sasl-1", 3000) == 3000
    lag = pipe.cli("lag", "--json", "--samples", "1")
    assert lag.returncode == 0, lag.stderr
    assert '"group_state"' in lag.stdout and pipe.settings.processor_group in lag.stdout
    port = free_port()
    pipe.launch("exporter", ["exporter", "--port", str(port), "--interval", "1"], ready=False)
    deadline = time.monotonic() + 60
    body = ""
    while "kafka_consumergroup_lag{" not in body:
        assert time.monotonic() < deadline, pipe.log("exporter")
        time.sleep(0.5)
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
                body = answer.read().decode()
        except OSError:
            continue
    assert "kcollect_lag_exporter_up 1.0" in body
    assert pipe.stop("processor") == 0 and pipe.stop("sink") == 0


@pytest.mark.parametrize(
    "command",
    [
        ["topics", "create"],
        ["processor"],
        ["sink"],
        ["enqueue", "--clients", "5", "--run-id", "sasl-x"],
        ["lag"],
        ["exporter", "--port", "0"],
        ["doctor"],
    ],
    ids=lambda c: c[0],
)
def test_a_wrong_password_is_one_line_and_exit_3(pipe: Pipeline, command: list[str]) -> None:
    pipe.env["KCOLLECT_KAFKA_SASL_PASSWORD"] = "wrong"
    done = pipe.cli(*command)
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 3, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("kcollect: the Kafka broker refused the credentials:"), lines[0]
    assert "authentication" in lines[0].lower()  # this message only comes before the broker timeout
