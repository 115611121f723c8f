"""Topic administration: create the declared topics, and check that topics exist before producing.

Producing to a missing topic on some brokers creates it with a default partition count, so a typo
would silently make a new topic: every producer checks first (``require_topics``).

A topic the controller has just created reaches the brokers' metadata a moment later (KRaft: each
broker applies the metadata log on its own; a loaded broker can take seconds). So ``create_topics``
returns only once the metadata lists what it created, and ``require_topics`` asks again for up to
``TOPIC_GRACE_SECONDS`` before it calls a topic missing: a service started right after another
process (an init job, another broker's client) created the topics must not exit 4 for that.
"""

from __future__ import annotations

import logging
import time

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)

from schemas.topics import ALL_TOPICS, REQUESTS, REQUESTS_RETRY, RESULTS, STATE_CHANGELOG, TopicSpec
from streams.kafka.client_logs import StartWatch
from streams.kafka.clients import make_admin
from streams.settings.model import Settings

log = logging.getLogger(__name__)


class TopicMissingError(RuntimeError):
    """A topic kcollect needs does not exist."""


class BrokerUnreachableError(RuntimeError):
    """The broker did not answer within the configured time."""


class TopicChangeRefused(RuntimeError):
    """The broker refused to change a topic (Tansu cannot add partitions), or the change is not possible."""


TOPIC_GRACE_SECONDS = 5.0
TOPIC_ASK_INTERVAL = 0.25

GROWN_TOPICS = (REQUESTS, REQUESTS_RETRY, RESULTS)
"""The topics ``kcollect topics grow`` widens together: the request partition p maps to results p mod N."""


def grow_topics(settings: Settings, partitions: int) -> dict[str, tuple[int, int]]:
    """Give the requests, retry and results topics ``partitions`` partitions each; topic -> (before, after).

    Idempotent: a topic that has them already is left alone. Partitions can be added, never removed
    (TopicChangeRefused). Running services pick the new partitions up at their next metadata refresh
    (a rebalance of their groups); see docs/operations.md for what it means for ordering. The state
    changelog keeps its count; while it holds records, ``partitions`` must be a multiple of it
    (TopicChangeRefused otherwise): docs/state.md, "After kcollect topics grow".
    """
    admin, watch = checked_admin(settings)
    present = existing_topics(admin, settings.broker_timeout_seconds, watch)
    names = [spec.name(settings.topic_prefix) for spec in GROWN_TOPICS]
    missing = [name for name in names if name not in present]
    if missing:
        raise TopicMissingError(f"topic(s) {', '.join(missing)} do not exist: run `kcollect topics create`")
    fewer = [f"{name} has {present[name]}" for name in names if present[name] > partitions]
    if fewer:
        raise TopicChangeRefused(f"partitions can only be added: {', '.join(fewer)} (asked for {partitions})")
    _check_state_layout(admin, settings, present, partitions)
    wanted = [NewPartitions(name, partitions) for name in names if present[name] < partitions]
    if wanted:
        futures = admin.create_partitions(wanted, request_timeout=settings.broker_timeout_seconds)
        for name, future in futures.items():
            try:
                future.result()
            except KafkaException as exc:
                error = exc.args[0].str() if exc.args else str(exc)
                raise TopicChangeRefused(
                    f"the broker refused to add partitions to {name}: {error} (Tansu cannot add partitions: "
                    "create the topics anew with KCOLLECT_PARTITIONS)"
                ) from None
    return {name: (present[name], max(present[name], partitions)) for name in names}


def _check_state_layout(
    admin: AdminClient, settings: Settings, present: dict[str, int], partitions: int
) -> None:
    """A processor with state finds a client's history in changelog partition (request partition mod
    the changelog's count) only if the request count is a multiple of the changelog's."""
    changelog = STATE_CHANGELOG.name(settings.topic_prefix)
    count = present.get(changelog)
    if count is None or partitions % count == 0:
        return
    timeout = settings.broker_timeout_seconds
    latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    asked = {TopicPartition(changelog, p): latest for p in range(count)}
    futures = admin.list_offsets(asked, request_timeout=timeout).values()
    if any(future.result(timeout=timeout).offset > 0 for future in futures):
        raise TopicChangeRefused(
            f"{changelog} holds processor state over {count} partition(s): grow to a multiple of {count} "
            f"(asked for {partitions}), so that every client's history stays where its requests look for it"
        )


def checked_admin(settings: Settings) -> tuple[AdminClient, StartWatch]:
    """An AdminClient for a command's first contact with the broker, and the watch on its errors."""
    watch = StartWatch()
    return make_admin(settings, logger=watch, error_cb=watch.error), watch


def existing_topics(admin: AdminClient, timeout: float, watch: StartWatch | None = None) -> dict[str, int]:
    """Topic name -> partition count, or BrokerUnreachableError (one line) after ``timeout`` seconds.

    With ``watch`` (``checked_admin``) it asks in steps of a second and serves the client's callbacks in
    between: an authentication failure ends the wait at once, and the message carries the last error.
    """
    deadline = time.monotonic() + timeout
    while True:
        step = timeout if watch is None else max(0.1, min(1.0, deadline - time.monotonic()))
        try:
            metadata = admin.list_topics(timeout=step)
            break
        except KafkaException as exc:
            failure = str(exc.args[0].str()) if exc.args else str(exc)
        if watch is not None:
            admin.poll(0)
            if watch.auth_failure:
                raise BrokerUnreachableError(
                    f"the Kafka broker refused the credentials: {watch.auth_failure}"
                ) from None
            failure = watch.last_error or failure
        if watch is None or time.monotonic() >= deadline:
            raise BrokerUnreachableError(
                f"the Kafka broker did not answer within {timeout:.0f} s: {failure}"
            ) from None
    return {name: len(topic.partitions) for name, topic in metadata.topics.items() if topic.error is None}


def new_topic(settings: Settings, spec: TopicSpec) -> NewTopic:
    """The creation request of ``spec``: its partitions and config, with the replication settings
    (``KCOLLECT_TOPIC_REPLICATION_FACTOR``, ``KCOLLECT_TOPIC_MIN_INSYNC_REPLICAS``; unset: the broker's
    defaults)."""
    config = dict(spec.config)
    if settings.topic_min_insync_replicas is not None:
        config["min.insync.replicas"] = str(settings.topic_min_insync_replicas)
    return NewTopic(
        spec.name(settings.topic_prefix),
        num_partitions=spec.partition_count(settings.partitions),
        replication_factor=settings.topic_replication_factor or -1,
        config=config,
    )


def create_topics(settings: Settings, specs: tuple[TopicSpec, ...] = ALL_TOPICS) -> list[str]:
    """Create the declared topics that do not exist yet; return the names created (idempotent).

    Topics that exist are left as they are, whatever their replication (changing it is a partition
    reassignment, an operator's job)."""
    admin, watch = checked_admin(settings)
    present = existing_topics(admin, settings.broker_timeout_seconds, watch)
    wanted = [new_topic(settings, spec) for spec in specs if spec.name(settings.topic_prefix) not in present]
    if not wanted:
        return []
    created = []
    for name, future in admin.create_topics(wanted, request_timeout=settings.broker_timeout_seconds).items():
        try:
            future.result()
            created.append(name)
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    listed = wait_listed(admin, [topic.topic for topic in wanted], settings.broker_timeout_seconds, watch)
    unlisted = [topic.topic for topic in wanted if topic.topic not in listed]
    if unlisted:
        log.warning(
            "created, but not yet in the broker's metadata after %.0f s: %s",
            settings.broker_timeout_seconds,
            ", ".join(unlisted),
        )
    return created


def wait_listed(
    admin: AdminClient,
    names: list[str],
    timeout: float,
    watch: StartWatch | None = None,
    interval: float = TOPIC_ASK_INTERVAL,
) -> dict[str, int]:
    """Partition counts of the topics of ``names`` the metadata lists, asked again every ``interval`` s
    until it lists them all or ``timeout`` s have passed."""
    deadline = time.monotonic() + timeout
    while True:
        present = existing_topics(admin, max(1.0, deadline - time.monotonic()), watch)
        listed = {name: present[name] for name in names if present.get(name, 0) > 0}
        if len(listed) == len(names) or time.monotonic() + interval > deadline:
            return listed
        time.sleep(interval)


def require_topics(settings: Settings, names: list[str]) -> dict[str, int]:
    """Partition counts of ``names``; TopicMissingError naming the missing ones."""
    admin, watch = checked_admin(settings)
    present = existing_topics(admin, settings.broker_timeout_seconds, watch)
    missing = [name for name in names if present.get(name, 0) == 0]
    if missing:  # perhaps created a moment ago, not yet in this broker's metadata
        grace = min(TOPIC_GRACE_SECONDS, settings.broker_timeout_seconds)
        present |= wait_listed(admin, missing, grace, watch)
        missing = [name for name in names if present.get(name, 0) == 0]
    if missing:
        raise TopicMissingError(
            f"topic(s) {', '.join(dict.fromkeys(missing))} do not exist: run `kcollect topics create`"
        )
    return {name: present[name] for name in names}
