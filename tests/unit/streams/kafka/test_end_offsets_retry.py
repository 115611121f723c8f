"""Which ListOffsets errors are asked again (a leader just elected) and which fail at once."""

from __future__ import annotations

from confluent_kafka import KafkaError, KafkaException

from streams.kafka.end_offsets import is_retriable


def test_a_leader_moving_is_retried() -> None:
    error = KafkaError(
        KafkaError.UNKNOWN_LEADER_EPOCH, "Leader epoch is newer than broker epoch", retriable=True
    )
    assert is_retriable(KafkaException(error))


def test_a_missing_topic_or_a_refusal_is_not() -> None:
    assert not is_retriable(KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, "unknown")))
    assert not is_retriable(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "denied")))
    assert not is_retriable(KafkaException("no KafkaError inside"))
