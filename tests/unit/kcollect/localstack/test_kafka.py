"""The Kafka launcher's pure parts: node properties, cluster id, JVM options, the shipped pom."""

from __future__ import annotations

import base64
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kcollect.localstack import kafka


def _nodes(count: int) -> tuple[kafka.KafkaNode, ...]:
    return tuple(
        kafka.KafkaNode(
            index=i, name=f"kafka-{i + 1}", port=9000 + i, controller_port=9100 + i, folder=Path(f"/s/n{i}")
        )
        for i in range(count)
    )


def test_single_node_is_combined_with_internal_topics_at_one_replica() -> None:
    (node,) = _nodes(1)
    props = kafka.node_properties(node, (node,), {})
    assert props["process.roles"] == "broker,controller"
    assert props["node.id"] == "1"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9100"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9000,CONTROLLER://127.0.0.1:9100"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9000"
    assert props["log.dirs"] == "/s/n0/data"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor"):
        assert props[key] == "1"
    assert props["min.insync.replicas"] == "1"
    assert props["group.initial.rebalance.delay.ms"] == "0"


def test_three_nodes_name_every_voter_and_replicate_three_ways() -> None:
    nodes = _nodes(3)
    props = [kafka.node_properties(n, nodes, {}) for n in nodes]
    voters = "1@127.0.0.1:9100,2@127.0.0.1:9101,3@127.0.0.1:9102"
    assert {p["controller.quorum.voters"] for p in props} == {voters}
    assert [p["node.id"] for p in props] == ["1", "2", "3"]
    assert len({p["listeners"] for p in props}) == 3
    for p in props:
        assert p["offsets.topic.replication.factor"] == "3"
        assert p["transaction.state.log.min.isr"] == "2"
        assert p["default.replication.factor"] == "3"
        assert p["min.insync.replicas"] == "2"
        assert p["unclean.leader.election.enable"] == "false"


def test_extra_properties_override_the_defaults() -> None:
    (node,) = _nodes(1)
    props = kafka.node_properties(node, (node,), {"min.insync.replicas": "1", "log.segment.bytes": "1048576"})
    assert props["min.insync.replicas"] == "1"
    assert props["log.segment.bytes"] == "1048576"
    assert kafka.render_properties({"a": "1", "b.c": "x"}) == "a=1\nb.c=x\n"


def test_cluster_ids_are_16_bytes_of_url_safe_base64() -> None:
    for _ in range(200):
        made = kafka.new_cluster_id()
        assert not made.startswith("-") and "=" not in made
        assert len(base64.urlsafe_b64decode(made + "==")) == 16


def test_jvm_options_are_bounded_and_extendable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(kafka.JVM_OPTIONS_VARIABLE, raising=False)
    assert "-Xmx512m" in kafka.jvm_options() and "-XX:+UseSerialGC" in kafka.jvm_options()
    monkeypatch.setenv(kafka.JVM_OPTIONS_VARIABLE, "-Xmx1g  -XX:+UseG1GC")
    assert kafka.jvm_options()[-2:] == ["-Xmx1g", "-XX:+UseG1GC"]


def test_cluster_nodes_get_a_smaller_heap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(kafka.JVM_OPTIONS_VARIABLE, raising=False)
    options = kafka.jvm_options(3)
    assert options[options.index("-Xmx512m") + 1 :].count("-Xmx384m") == 1  # later: it wins
    monkeypatch.setenv(kafka.JVM_OPTIONS_VARIABLE, "-Xmx1g")
    assert kafka.jvm_options(3)[-1] == "-Xmx1g"


def test_cache_root_and_version_follow_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv(kafka.CACHE_VARIABLE, raising=False)
    monkeypatch.delenv(kafka.VERSION_VARIABLE, raising=False)
    assert kafka.cache_root(tmp_path) == tmp_path / "kafka-dist"
    assert kafka.kafka_version() == kafka.KAFKA_VERSION
    monkeypatch.setenv(kafka.CACHE_VARIABLE, str(tmp_path / "c"))
    monkeypatch.setenv(kafka.VERSION_VARIABLE, "4.2.0")
    assert kafka.cache_root(tmp_path) == tmp_path / "c"
    assert kafka.kafka_version() == "4.2.0"
    assert kafka.classpath_dir(tmp_path, "4.2.0") == tmp_path / "kafka-4.2.0" / "lib"


def test_a_complete_classpath_is_used_without_maven(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    lib = kafka.classpath_dir(tmp_path, "9.9.9")
    lib.mkdir(parents=True)
    (lib / ".complete").write_text("9.9.9\n")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no java, no mvn
    assert kafka.resolve_classpath(tmp_path, "9.9.9") == lib


def test_missing_tools_say_what_is_missing_and_how_to_use_a_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(kafka.StackError) as caught:
        kafka.resolve_classpath(tmp_path, "9.9.9")
    assert "java and mvn" in str(caught.value)
    assert "KCOLLECT_BOOTSTRAP_SERVERS" in str(caught.value)


def test_the_shipped_pom_pins_the_logging_binding_and_the_plugin() -> None:
    root = ET.fromstring(kafka._pom_text())
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    artifacts = {a.text for a in root.findall("m:dependencies/m:dependency/m:artifactId", ns)}
    assert {"kafka_2.13", "slf4j-api", "log4j-slf4j2-impl", "log4j-core", "log4j-api"} == artifacts
    assert root.findtext("m:properties/m:kafka.version", namespaces=ns) == kafka.KAFKA_VERSION
    plugin = root.find("m:build/m:plugins/m:plugin", ns)
    assert plugin is not None and plugin.findtext("m:version", namespaces=ns)
