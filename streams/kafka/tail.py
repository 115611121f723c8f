"""Read assigned partitions up to their current end: the loop behind `runs status` and the console's
dead-letter index. The consumer must be created with `enable.partition.eof` so each partition reports
its end; a partition that receives a record after its end is read again until it reports the end anew.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from streams.kafka.admin import require_topics
from streams.kafka.clients import make_consumer
from streams.settings.model import Settings

Where = tuple[str, int]


def read_to_end(
    consumer: Consumer,
    partitions: set[Where],
    at_end: set[Where],
    take: Callable[[Message], None],
    *,
    max_wait: float,
    batch_size: int = 5000,
) -> bool:
    """Hand every record of `partitions` to `take` until all are at their end (True) or `max_wait`
    seconds pass (False). `at_end` is the caller's, kept between calls, so a later call reads only what
    is new."""
    deadline = time.monotonic() + max_wait
    while partitions and time.monotonic() < deadline:
        messages = consumer.consume(batch_size, 0.05)
        for msg in messages:
            where = (str(msg.topic()), int(msg.partition() or 0))
            error = msg.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(where)
                continue
            at_end.discard(where)
            take(msg)
        if not messages and at_end >= partitions:
            return True
    return at_end >= partitions  # the last batch may have brought the last ends as time ran out


def read_topics(
    settings: Settings,
    topics: list[str],
    take: Callable[[Message], None],
    timeout: float,
    batch_size: int = 10000,
) -> None:
    """Hand every record of `topics` to `take`, from the beginning to each partition's end (assigned, no
    group); TimeoutError when that takes longer than `timeout` seconds."""
    counts = require_topics(settings, topics)
    reader = make_consumer(
        settings,
        f"kcollect-reader-{uuid.uuid4().hex[:8]}",
        **{"enable.partition.eof": True, "fetch.wait.max.ms": 10},
    )
    partitions = {(t, p) for t, n in counts.items() for p in range(n)}
    reader.assign([TopicPartition(t, p, 0) for t, p in sorted(partitions)])
    try:
        if not read_to_end(reader, partitions, set(), take, max_wait=timeout, batch_size=batch_size):
            raise TimeoutError(f"could not read {', '.join(topics)} to the end within {timeout:g} s")
    finally:
        reader.close()
