"""DLQ tools without a broker: filters, summary, replayed values; and the processor's group settings."""

from __future__ import annotations

import orjson

from kcollect.ops.dlq import DlqRecord, replay_value, summarize
from processors.processor.service import consumer_extra
from streams.settings.model import Settings


def letter(offset: int, stage: str, error_class: str, reason: str, run_id: str = "r1") -> DlqRecord:
    headers = {"stage": stage, "error_class": error_class, "reason": reason, "run_id": run_id}
    return DlqRecord(0, offset, b"k", b'{"v":1}', headers)


def test_summary_counts_and_samples() -> None:
    records = [letter(i, "decode", "CodecError", "not_json") for i in range(5)]
    records += [letter(10, "deadline", "DeadlineExpired", "expired", "r2")]
    report = summarize(records, samples=2)
    assert report["total"] == 6
    assert report["by_stage"] == {"decode": 5, "deadline": 1}
    assert report["by_reason"] == {"not_json": 5, "expired": 1}
    assert [s["offset"] for s in report["samples"]] == [0, 1, 10]


def test_filters() -> None:
    record = letter(1, "fetch", "CallTimeout", "retries_exhausted")
    assert record.matches(None, None, None, None)
    assert record.matches("fetch", "CallTimeout", None, "r1")
    assert not record.matches(None, None, "expired", None)
    assert not record.matches(None, None, None, "r2")


def test_replayed_value_resets_attempt_and_deadline() -> None:
    value = b'{"v":1,"run_id":"r","client_id":"c","requested_at_ms":1,"attempt":3,"deadline_ms":5}'
    assert orjson.loads(replay_value(value, clear_deadline=True)) | {} == {
        "v": 1,
        "run_id": "r",
        "client_id": "c",
        "requested_at_ms": 1,
        "attempt": 0,
        "deadline_ms": None,
    }
    assert orjson.loads(replay_value(value, clear_deadline=False))["deadline_ms"] == 5
    assert replay_value(b"\xff not json", True) == b"\xff not json"


def test_group_membership_settings() -> None:
    from streams.settings.librdkafka import consumer_config

    plain = Settings(bootstrap_servers="127.0.0.1:1", broker_flavor="kafka")
    config = consumer_config(plain, "g", **consumer_extra(plain))
    assert config["partition.assignment.strategy"] == "range" and "group.instance.id" not in config
    static = Settings(
        bootstrap_servers="127.0.0.1:1",
        broker_flavor="kafka",
        processor_group_instance_id="proc-1",
        processor_assignment_strategy="cooperative-sticky",
    )
    config = consumer_config(static, "g", **consumer_extra(static))
    assert config["partition.assignment.strategy"] == "cooperative-sticky"
    assert config["group.instance.id"] == "proc-1"
