"""Which local broker the stack and the test fixtures start."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kcollect.localstack.brokers import BROKER_VARIABLE, choose_broker
from kcollect.localstack.errors import StackError


def _tools(folder: Path, *names: str) -> str:
    folder.mkdir(exist_ok=True)
    for name in names:
        tool = folder / name
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
    return str(folder)


def test_kafka_by_default_where_java_and_maven_exist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BROKER_VARIABLE, raising=False)
    monkeypatch.setenv("PATH", _tools(tmp_path / "bin", "java", "mvn"))
    choice = choose_broker()
    assert choice.kind == "kafka" and choice.note is None


@pytest.mark.parametrize("present", [(), ("java",), ("mvn",)])
def test_tansu_with_a_note_that_says_what_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, present: tuple[str, ...]
) -> None:
    monkeypatch.delenv(BROKER_VARIABLE, raising=False)
    monkeypatch.setenv("PATH", _tools(tmp_path / "bin", *present))
    choice = choose_broker()
    assert choice.kind == "tansu"
    assert choice.note is not None and "\n" not in choice.note
    for tool in {"java", "mvn"} - set(present):
        assert tool in choice.note


@pytest.mark.parametrize(("asked", "kind"), [("kafka", "kafka"), ("tansu", "tansu"), (" Kafka ", "kafka")])
def test_the_variable_chooses_whatever_is_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, asked: str, kind: str
) -> None:
    monkeypatch.setenv("PATH", _tools(tmp_path / "bin"))
    monkeypatch.setenv(BROKER_VARIABLE, asked)
    assert choose_broker() == choose_broker(BROKER_VARIABLE)
    assert choose_broker().kind == kind and choose_broker().note is None


def test_an_unknown_broker_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BROKER_VARIABLE, "redpanda")
    with pytest.raises(StackError, match="use kafka or tansu"):
        choose_broker()
    assert os.environ[BROKER_VARIABLE] == "redpanda"
