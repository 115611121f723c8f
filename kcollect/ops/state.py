"""`kcollect state inspect | reset`: the processors' per-client state, read from its changelog topic.

The changelog is the state of record (the processors' local stores are restored from it), so both
commands work from any machine: ``inspect`` reads every partition to its end and keeps the last
record per key; ``reset`` writes a tombstone for every row of one schedule (its clients and its run
clocks) to the partition that holds it. Processors apply the tombstones when they next restore those
partitions, which is why ``reset`` refuses while the processor group has members.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from confluent_kafka import Message

from processors.processor.state.history import (
    Clock,
    Observation,
    decode_history,
    gap_bit,
    reason_code,
    reason_names,
)
from processors.processor.state.store import split_key
from schemas.topics import STATE_CHANGELOG
from streams.kafka.clients import make_admin
from streams.kafka.producer import BatchProducer, DeliveryTracker
from streams.kafka.tail import read_topics
from streams.lag.discovery import describe_groups
from streams.settings.model import Settings


@dataclass(frozen=True)
class Row:
    partition: int
    schedule: str
    client_id: str  # "" for a run clock
    value: bytes


def read_state(settings: Settings, timeout: float | None = None) -> list[Row]:
    """The live rows of the changelog (last record per key, tombstones removed)."""
    topic = STATE_CHANGELOG.name(settings.topic_prefix)
    latest: dict[tuple[int, bytes], bytes | None] = {}

    def take(msg: Message) -> None:
        key = msg.key()
        if key is not None:
            latest[(int(msg.partition() or 0), key if isinstance(key, bytes) else bytes(key))] = msg.value()

    try:
        read_topics(settings, [topic], take, timeout or settings.broker_timeout_seconds, 5000)
    except TimeoutError:
        raise TimeoutError(f"the state changelog {topic} was not read to its end in time") from None
    rows = []
    for (partition, key), value in latest.items():
        if value is not None:
            schedule, client = split_key(key)
            rows.append(Row(partition, schedule, client, value))
    return rows


def kept_reasons(obs: Observation, before: Observation) -> dict[str, list[str]]:
    """The reason of each kept metric of a run computed against the kept run before it (``["ok"]``
    for 0). The oldest kept run has none: the run it was computed against is no longer kept."""
    gap = gap_bit(obs.seq, before.seq)
    return {
        metric: reason_names(reason_code(v, before.values.get(metric), gap))
        for metric, v in obs.values.items()
    }


def describe(row: Row) -> dict[str, Any]:
    """One row as JSON-ready data: a client's history with each run's reasons, or a run clock."""
    if not row.client_id:
        clock = Clock.from_bytes(row.value)
        return {"partition": row.partition, "schedule": row.schedule, "runs_seen": clock.count}
    runs = []
    before: Observation | None = None
    for obs in decode_history(row.value):
        reasons = {} if before is None else kept_reasons(obs, before)
        reasons |= {k: reason_names(v) for k, v in obs.computed.items() if k.endswith("_reason")}
        before = obs
        runs.append(
            {
                "run_id": obs.run_id,
                "at_ms": obs.at_ms,
                "seq": obs.seq,
                "values": obs.values,
                "computed": obs.computed,
            }
            | ({"reasons": reasons} if reasons else {})
        )
    return {"partition": row.partition, "schedule": row.schedule, "client_id": row.client_id, "runs": runs}


def inspect_client(settings: Settings, client_id: str, schedule: str | None) -> list[dict[str, Any]]:
    return [
        describe(row)
        for row in read_state(settings)
        if row.client_id == client_id and (schedule is None or row.schedule == schedule)
    ]


def processor_members(settings: Settings) -> int | None:
    """Members of the processor group (None when the broker does not say: Tansu lists none)."""
    group = settings.processor_group
    info = describe_groups(make_admin(settings), [group], settings.broker_timeout_seconds)[group]
    return info.members


def reset_schedule(settings: Settings, schedule: str, dry_run: bool) -> dict[str, int]:
    """Tombstones for every client row and run clock of ``schedule``, and the counts (none on a dry run)."""
    rows = [row for row in read_state(settings) if row.schedule == schedule]
    result = {
        "clients": sum(1 for r in rows if r.client_id),
        "clocks": sum(1 for r in rows if not r.client_id),
    }
    if dry_run or not rows:
        return result | {"deleted": 0}
    producer = BatchProducer(settings)
    tracker = DeliveryTracker()
    topic = STATE_CHANGELOG.name(settings.topic_prefix)
    by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {}
    for row in rows:
        key = f"{row.schedule}\x00{row.client_id}".encode()
        by_partition.setdefault(row.partition, []).append((key, None))
    for partition, records in by_partition.items():
        producer.produce_keyed_to_partition(topic, partition, records, tracker)
    producer.wait(tracker, settings.broker_timeout_seconds)
    return result | {"deleted": tracker.delivered, "failed": tracker.failed + tracker.pending}
