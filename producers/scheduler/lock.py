"""Leadership and pause state of a schedule, kept in Kafka: the single-partition scheduler lock topic.

Every `kcollect scheduler run` instance of a schedule joins the consumer group
``<topic prefix>scheduler.<name>`` on the lock topic (``schemas.topics.SCHEDULER_LOCK``, one
partition). The member that owns partition 0 is the leader; the others stand by. The group uses the
classic, eager protocol: before a new member is given partition 0 the old owner must give it up in
its own ``consume`` call, which it makes only between two enqueues; so two leaders never act at the
same time (unless one stalls past ``max.poll.interval.ms``; the run-manifest check before each
enqueue covers that case too).

The lock topic also carries pause records (key ``pause:<name>``, JSON ``{"schedule", "paused",
"at_ms"}``; the last one wins) and each instance's schedule at start (key ``spec:<name>``, JSON
``{"schedule", "every", "cron", "describe", "at_ms"}``), which the console reads for the next slot.
The group never commits: each new leader reads the partition from the start and acts only once it has
reached the end, so it knows the current pause state.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from schemas.topics import SCHEDULER_LOCK
from streams.kafka.admin import require_topics
from streams.kafka.clients import make_consumer
from streams.kafka.producer import BatchProducer, DeliveryTracker
from streams.observability.health import HealthProbe, client_hooks
from streams.settings.model import Settings

log = logging.getLogger(__name__)


class PauseNotDeliveredError(RuntimeError):
    """The broker did not confirm a pause or resume record."""


def lock_group(settings: Settings, name: str) -> str:
    return f"{settings.topic_prefix}scheduler.{name}"


def pause_key(name: str) -> str:
    return f"pause:{name}"


SPEC_PREFIX = "spec:"


def _publish(settings: Settings, key: str, value: dict[str, Any], what: str) -> None:
    topic = SCHEDULER_LOCK.name(settings.topic_prefix)
    require_topics(settings, [topic])
    producer = BatchProducer(settings)
    body = orjson.dumps(value | {"at_ms": int(time.time() * 1000)})
    tracker = producer.produce_batch(topic, [(key, body)], DeliveryTracker())
    if not producer.wait(tracker, settings.broker_timeout_seconds) or tracker.failed:
        raise PauseNotDeliveredError(
            f"the {what} was not confirmed: {'; '.join(tracker.first_errors) or 'timed out'}"
        )


def publish_pause(settings: Settings, name: str, paused: bool) -> None:
    """Record that schedule ``name`` is paused (or resumed); waits for the broker's confirmation."""
    what = f"{'pause' if paused else 'resume'} record for {name}"
    _publish(settings, pause_key(name), {"schedule": name, "paused": paused}, what)


def publish_spec(settings: Settings, name: str, every: str | None, cron: str | None, describe: str) -> None:
    """Record the schedule's period (for the console's next slot); waits for the broker's confirmation."""
    spec = {"schedule": name, "every": every, "cron": cron, "describe": describe}
    _publish(settings, f"{SPEC_PREFIX}{name}", spec, f"schedule spec record of {name}")


class ScheduleLock:
    """A member of the schedule's lock group; ``poll`` serves it and says whether it may act."""

    def __init__(self, settings: Settings, name: str, probe: HealthProbe | None = None) -> None:
        self.name = name
        self.topic = SCHEDULER_LOCK.name(settings.topic_prefix)
        require_topics(settings, [self.topic])
        extra: dict[str, Any] = {
            "enable.partition.eof": True,
            "partition.assignment.strategy": "range",  # eager: the old owner gives up first
            "group.protocol": "classic",
        }
        if probe is not None:
            extra.update(client_hooks(probe, 2000))
        self._probe = probe
        self._consumer = make_consumer(settings, lock_group(settings, name), **extra)
        self._consumer.subscribe(
            [self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )
        self.owns = False
        self.caught_up = False
        self.paused = False

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.owns = any(p.partition == 0 for p in partitions)
        self.caught_up = False
        if self.owns:
            log.info("schedule %s: this instance is the leader (owns %s[0])", self.name, self.topic)
            for partition in partitions:
                partition.offset = OFFSET_BEGINNING  # never committed: read from the start

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        if self.owns:
            log.info("schedule %s: leadership given up", self.name)
        self.owns = self.caught_up = False

    @property
    def leader(self) -> bool:
        """True while this member owns partition 0 and has read the pause state up to the end."""
        return self.owns and self.caught_up

    def poll(self, timeout: float) -> bool:
        """Serve the group (rebalances, heartbeats) and read pause records; returns ``leader``."""
        for msg in self._consumer.consume(500, timeout):
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF and self.owns:
                    self.caught_up = True
                continue
            if self._probe is not None:
                self._probe.kafka_ok()
            self._take(msg.key(), msg.value())
        return self.leader

    def _take(self, key: bytes | None, value: bytes | None) -> None:
        if key is None or key.decode(errors="replace") != pause_key(self.name) or not value:
            return
        try:
            paused = bool(orjson.loads(value)["paused"])
        except (orjson.JSONDecodeError, KeyError, TypeError):
            log.warning("schedule %s: ignoring an unreadable pause record", self.name)
            return
        if paused != self.paused:
            log.info("schedule %s %s", self.name, "paused" if paused else "resumed")
        self.paused = paused

    def close(self) -> None:
        """Leave the group at once, so a standby takes over without waiting for the session timeout."""
        self._consumer.close()
