"""Enqueue a collection run: one request per distinct valid client, keyed by client id, all confirmed.

Order: check the topics; open the source (a bad file or query fails here, before anything is sent);
publish the run's manifest as ``enqueueing`` (reusing ``requested_at_ms`` of an earlier attempt, so
a re-run sends byte-identical requests); produce in chunks (throttled on the processors' lag when
``max_lag`` is set), then the ids that waited on disk because the ids seen outgrew
``settings.enqueue_memory_mb`` (``producers.enqueue.dedup``: a request's bytes do not depend on its order);
flush; publish ``enqueued`` with the total, or ``failed``. Re-running the same command after a crash
re-sends every request: duplicates are removed downstream (the results table is a ReplacingMergeTree
keyed by (run_id, client_id), read with FINAL).

The run's client set: each confirmed enqueue appends its own distinct clients (size and digest,
``schemas.client_set``) and the run's union after it to the manifest's ``enqueues``; ``total`` is the
union's size. When this enqueue's set is the run's set already (a re-run) or the run has none yet, the
union is known at once; otherwise (other clients for the same run id, or a manifest written before
client sets) the union is read from the requests topic: every request of the run it holds
(``streams.runs.run_clients``, a scan of the topic, logged).

The idempotent producer reports only failed deliveries (``delivery.report.only.error``): a record is
confirmed when ``flush`` leaves nothing queued and no failure was reported for it. Any failure stops
producing and ends with ``EnqueueIncompleteError`` saying how many were not confirmed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from producers.enqueue.dedup import MB, Deduplicator
from producers.enqueue.progress import NullReporter, Reporter
from producers.enqueue.sources import Chunk, ClientSource
from producers.enqueue.throttle import EnqueueThrottle, Hysteresis
from producers.enqueue.validate import BadLine, Validator
from schemas.client_set import digest_of, to_hex
from schemas.codec import request_encoder
from schemas.models import EnqueueTotal, RunManifest
from schemas.topics import REQUESTS, RUNS
from streams.kafka.admin import require_topics
from streams.kafka.clients import make_producer
from streams.kafka.producer import BatchProducer
from streams.lag.probe import LagProbe
from streams.runs.identity import Deadline, finished, now_ms, run_manifest
from streams.runs.manifests import ManifestNotDeliveredError, publish_manifest, read_manifest, run_clients
from streams.settings.model import Settings

log = logging.getLogger(__name__)
CHUNK = 10000
QUEUE_MESSAGES = 100000  # bounds librdkafka's queue (and so RSS) while the broker catches up


class EnqueueIncompleteError(RuntimeError):
    """Some requests were not confirmed by the broker."""

    def __init__(self, unconfirmed: int, total: int, errors: list[str], stopped_early: bool = False) -> None:
        detail = f": {'; '.join(errors[:3])}" if errors else ""
        early = " (producing stopped at the first failed delivery)"
        super().__init__(
            f"{unconfirmed} of {total} request(s) were not confirmed by the broker{detail}"
            f"{early if stopped_early else ''}; run the same command again to complete the run"
        )
        self.unconfirmed = unconfirmed


@dataclass
class EnqueueSummary:
    run_id: str
    enqueued: int
    seconds: float
    first_produced_at: float  # epoch seconds of the first request handed to the producer
    total: int = 0
    read: int = 0
    skipped_invalid: int = 0
    duplicates: int = 0
    throttled_seconds: float = 0.0
    source: str = ""
    bad_lines: list[BadLine] = field(default_factory=list)
    deadline_ms: int | None = None  # the run's deadline (from its first enqueue), None: none

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        data["throttled_seconds"] = round(self.throttled_seconds, 3)
        data["requests_per_s"] = round(self.enqueued / max(self.seconds, 1e-6), 1)
        return data


@dataclass
class _Failures:
    count: int = 0
    first_errors: list[str] = field(default_factory=list)

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        if err is None:
            return
        self.count += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{msg.topic()}: {err.str()}")


def _produce(producer: Producer, topic: str, ids: list[str], encode: Any, failures: _Failures) -> int:
    """Queue ``ids``; on a full queue serve callbacks and retry. Stops early (returns fewer) on failure."""
    produce = producer.produce
    for index, client_id in enumerate(ids):
        while True:
            try:
                produce(topic, encode(client_id), client_id)
                break
            except BufferError:
                producer.poll(0.05)
                if failures.count:
                    return index
    producer.poll(0)
    return len(ids)


def _batches(
    validator: Validator, first: Chunk | None, chunks: Iterator[Chunk]
) -> Iterator[tuple[int, list[str]]]:
    """(lines read, ids to produce) per chunk of the source, then (0, ids) for the ids that waited."""
    pending = first
    while pending is not None:
        yield len(pending[1]), validator.filter(pending)
        pending = next(chunks, None)
    for ids in validator.rest():
        yield 0, ids


def _publish(settings: Settings, producer: BatchProducer, manifest: RunManifest, must: bool) -> None:
    """Publish ``manifest``; when ``must`` ManifestNotDeliveredError propagates (exit 6), else is logged."""
    try:
        publish_manifest(settings, producer, manifest)
    except ManifestNotDeliveredError as exc:
        if must:
            raise
        log.error("%s", exc)


def run_client_set(
    settings: Settings,
    manifest: RunManifest,
    previous: RunManifest | None,
    source: str,
    count: int,
    digest: int,
) -> EnqueueTotal:
    """This confirmed enqueue (``count`` distinct clients, ``digest``) and the run's union after it."""
    prior = previous.client_set if previous is not None else None
    union: tuple[int, int] | None = None
    if prior is None and (previous is None or previous.status != "enqueued" or previous.total is None):
        union = count, digest  # no earlier confirmed enqueue
    elif prior is not None and (prior.union_clients, prior.union_digest) == (count, to_hex(digest)):
        union = count, digest  # the run's set again
    if union is None:
        log.info(
            "run %s: other clients than the run's earlier enqueues: reading its requests to count the union",
            manifest.run_id,
        )
        clients = run_clients(settings, manifest.run_id)
        union = len(clients), digest_of(clients)
    return EnqueueTotal(
        source=source,
        clients=count,
        digest=to_hex(digest),
        union_clients=union[0],
        union_digest=to_hex(union[1]),
        finished_at_ms=now_ms(),
    )


def enqueue_run(
    settings: Settings,
    run_id: str,
    source: ClientSource,
    requested_at_ms: int | None = None,
    *,
    reporter: Reporter | None = None,
    max_lag: int | None = None,
    resume_lag: int | None = None,
    chunk_size: int = CHUNK,
    deadline: Deadline | None = None,
) -> EnqueueSummary:
    """Produce one request per distinct valid client id of ``source`` and confirm every delivery."""
    reporter = reporter or NullReporter()
    topic = REQUESTS.name(settings.topic_prefix)
    require_topics(settings, [topic, RUNS.name(settings.topic_prefix)])
    hysteresis = Hysteresis.of(max_lag, resume_lag) if max_lag is not None else None
    if hysteresis is not None:
        chunk_size = max(1, min(chunk_size, hysteresis.max_lag))
    validator = Validator(source, Deduplicator(settings.enqueue_memory_mb * MB))  # closed below
    chunks = source.chunks(chunk_size)
    pending = next(chunks, None)  # opens the source: a failing query or file stops us before any send

    # Both producers start (idempotent producer id, connections) in the background while we read.
    manifests = BatchProducer(settings)
    failures = _Failures()
    producer = make_producer(
        settings,
        **{
            "delivery.report.only.error": True,
            "on_delivery": failures.on_delivery,
            "queue.buffering.max.messages": QUEUE_MESSAGES,
        },
    )
    previous = read_manifest(settings, run_id)
    if previous is not None:
        log.info(
            "run %s already has a manifest (%s): sending every request again with its requested_at_ms; "
            "duplicates are removed downstream",
            run_id,
            previous.status,
        )
    manifest = run_manifest(run_id, source.describe(), previous, requested_at_ms, deadline)
    _publish(settings, manifests, manifest, must=True)
    gate = (
        EnqueueThrottle(
            LagProbe(settings, settings.processor_group, topic),
            hysteresis,
            reporter,
            max_wait_seconds=settings.enqueue_throttle_max_wait_seconds,
        )
        if hysteresis
        else None
    )
    encode = request_encoder(run_id, manifest.requested_at_ms, deadline_ms=manifest.deadline_ms)
    flush_timeout = settings.broker_timeout_seconds + 5
    produced = budget = digest = 0
    reporter.start(run_id, source.total_hint())
    started, first_at = time.monotonic(), time.time()
    try:
        for read, ids in _batches(validator, pending, chunks):
            digest += digest_of(ids)
            position = 0
            while position < len(ids) and not failures.count:
                if gate is not None and budget <= 0:
                    producer.flush(flush_timeout)  # the lag must count everything produced so far
                    budget = gate.allowance()
                take = len(ids) - position if gate is None else min(budget, len(ids) - position)
                sent = _produce(producer, topic, ids[position : position + take], encode, failures)
                produced, position, budget = produced + sent, position + sent, budget - sent
            reporter.advance(read, len(ids))
            if failures.count:
                break
        producer.flush(flush_timeout)
    except BaseException:
        producer.flush(min(flush_timeout, 5))
        _publish(settings, manifests, finished(manifest, "failed", None), must=False)
        raise
    finally:
        validator.close()  # the spill files, if the ids did not fit in memory
        reporter.close()
        if gate is not None:
            gate.close()
    seconds = time.monotonic() - started
    unconfirmed = failures.count + len(producer)
    stats = validator.stats
    if unconfirmed:
        _publish(settings, manifests, finished(manifest, "failed", None), must=False)
        raise EnqueueIncompleteError(unconfirmed, produced, failures.first_errors, failures.count > 0)
    enqueue = run_client_set(settings, manifest, previous, source.describe(), stats.valid, digest)
    _publish(settings, manifests, finished(manifest, "enqueued", enqueue.union_clients, enqueue), must=True)
    return EnqueueSummary(
        run_id=run_id,
        enqueued=produced,
        seconds=seconds,
        first_produced_at=first_at,
        total=stats.valid,
        read=stats.read,
        skipped_invalid=stats.invalid,
        duplicates=stats.duplicates,
        throttled_seconds=gate.throttled_seconds if gate is not None else 0.0,
        source=source.describe(),
        bad_lines=list(stats.bad_lines),
        deadline_ms=manifest.deadline_ms,
    )
