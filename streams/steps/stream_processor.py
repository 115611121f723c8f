"""The consume loop every kcollect service runs: consume a batch, submit it to the chain, poll the chain.

- Backpressure: when the chain raises MessageRejected the assigned partitions are paused and the
  same batch is offered again on the next turns; the loop keeps calling ``consume`` (short timeout)
  so the consumer stays in its group without spinning the CPU. Partitions resume once it is taken.
  A record consumed while paused (a partition assigned meanwhile) joins the waiting batch.
- Gate (optional): records that must wait (retry records before their due time) are held by the
  gate and their partition is paused until they are due; other partitions flow on.
- Rebalance, eager or cooperative: on revoke the chain is closed and joined (finishing and
  committing what it can within the deadline); of a batch still waiting only the revoked partitions'
  records are dropped (never committed, so their next owner consumes them again) and the rest is
  kept for the next chain. Work the join did not finish in time is cancelled: on an incremental
  revoke the partitions kept are then sought back to the offset their chains last committed (the
  first record not handled; the first record consumed since the assignment when none), dropping
  what is waiting or held of them, so that work is consumed again instead of being passed by later
  commits.
  A fresh chain is built while partitions are assigned. Lost partitions: everything is dropped, and
  partitions kept (if any) are sought back the same way.
- Records from before a rebalance: librdkafka serves the rebalance callbacks inside ``consume``, and
  the records that call had already taken from its queue (fetched before the revoke) are returned
  after the callback unless the partition's version barrier reaches the queue first (it comes from
  the broker thread, so a busy or just-thawed process returns them). Those records of partitions
  revoked or lost during the call are dropped: a partition that moved away is not this member's any
  more (its commit would carry the current generation, so the broker would accept offsets of a
  partition another member owns, moving its committed offset backwards or past work not done), and
  one assigned again within the same call is sought back to its committed offset.
- Commits: the chains' commit callback sends the work of the current assignment only: offsets past
  the first record consumed of the partition since it was assigned (``current_work``). A commit of
  anything else (a partition revoked, lost or sought back since) would carry the current generation
  too, and the broker would move the owner's committed offset backwards. A committed offset the broker
  answers with an error per partition is unreadable, not "none committed" (never read from the start).
- Downstream backpressure (optional ``hold``, e.g. the sink's lag on the results topic above a high
  mark): while it says so, every partition is paused and the loop keeps polling and finishing work.
- Stalled fetch: a partition not held back here whose position has stood still for 20 s while the
  broker has records past it is sought to that position again (``streams/steps/stall.py``: librdkafka
  can leave an assigned partition unfetched after a broker restart).
- Health (optional ``probe``): a beat every turn, Kafka marked reachable when records arrive, and the
  number of partitions owned after every rebalance.
- Shutdown: ``stop()`` (SIGTERM, Ctrl-C) ends the loop; the chain is joined within the shutdown
  deadline and the consumer closed. A revoke or loss served inside ``close()`` touches nothing of the
  consumer (the closing handle answers ``assignment()`` with _DESTROY when a rebalance races the close:
  the campaign's seeds 5 and 400 exited 1 so), and a failed close is logged, not raised.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition

from streams.observability import metrics as m
from streams.steps.commit import Commit
from streams.steps.stall import StallWatch
from streams.steps.strategy import Batch, MessageRejected, Partition, ProcessingStep, offsets_of

log = logging.getLogger(__name__)

# a chain gets the commit callback of its consumer (CommitOffsets calls it), never the consumer
ChainFactory = Callable[[Commit], ProcessingStep[list[Message]]]


class Gate(Protocol):
    """Holds records that may not be processed yet (see processors/processor/retry_gate.py)."""

    def admit(self, messages: list[Message]) -> list[Message]: ...

    def due(self) -> list[Message]: ...

    def held_partitions(self) -> set[Partition]: ...

    def drop(self, partitions: set[Partition]) -> None: ...

    def held(self) -> list[Message]: ...


class LoopProbe(Protocol):
    """What the loop tells its health probe (streams/observability/health.py HealthProbe)."""

    def beat(self) -> None: ...

    def kafka_ok(self) -> None: ...

    def set_assigned(self, partitions: int) -> None: ...


@dataclass
class LoopStats:
    """What the loop saw, for summaries and metrics."""

    consumed: int = 0
    batches: int = 0
    paused_seconds: float = 0.0
    rebalances: int = 0
    consumer_errors: int = 0
    first_batch_at: float = 0.0  # epoch seconds a non-empty batch was first taken by the chain
    last_batch_at: float = 0.0
    assigned: list[tuple[str, int]] = field(default_factory=list)


def _keep(batch: Batch[list[Message]] | None, gone: set[Partition]) -> Batch[list[Message]] | None:
    if batch is None:
        return None
    kept = [msg for msg in batch.payload if (msg.topic(), msg.partition()) not in gone]
    return Batch(kept, offsets_of(kept)) if kept else None


def rewind_targets(
    handled: dict[Partition, int], first_consumed: dict[Partition, int], nexts: dict[Partition, int]
) -> dict[Partition, int]:
    """Where to seek each kept partition so work handed to the chain but never finished is done again.

    ``nexts``: the first offset not handed to the chain; ``handled``: the offsets the chain committed
    (finished work) since the partition was assigned; a partition without one starts again from its
    first record consumed since the assignment.
    """
    targets: dict[Partition, int] = {}
    for partition, next_offset in nexts.items():
        start = handled.get(partition, first_consumed.get(partition))
        if start is not None and start < next_offset:
            targets[partition] = start
    return targets


def listed(offsets: dict[Partition, int]) -> str:
    """``topic/partition@offset`` of each partition, sorted, for the log."""
    return ", ".join(f"{t}/{p}@{o}" for (t, p), o in sorted(offsets.items()))


def current_work(offsets: dict[Partition, int], first_consumed: dict[Partition, int]) -> dict[Partition, int]:
    """The part of ``offsets`` (next offset per partition) that finishes work of the current assignment:
    a partition with a record consumed since it was assigned, past that record.

    Anything else is work from before (a partition revoked, lost or sought back since): the broker
    would take its commit from a member of the current generation whether or not it owns the partition,
    and the group's committed offset would move backwards under the partition's owner.
    """
    return {
        partition: offset
        for partition, offset in offsets.items()
        if partition in first_consumed and offset > first_consumed[partition]
    }


class StreamProcessor:
    """Runs one consumer and its processing chain until ``stop()``."""

    def __init__(
        self,
        consumer: Consumer,
        topics: list[str],
        chain_factory: ChainFactory,
        *,
        batch_size: int,
        shutdown_deadline: float,
        on_assigned: Callable[[list[tuple[str, int]]], None] | None = None,
        on_lost: Callable[[list[tuple[str, int]]], None] | None = None,
        gate: Gate | None = None,
        name: str = "consumer",
        probe: LoopProbe | None = None,
        hold: Callable[[], bool] | None = None,
    ) -> None:
        self._consumer = consumer
        self._topics = topics
        self._factory = chain_factory
        self._batch_size = batch_size
        self._deadline = shutdown_deadline
        self._on_assigned = on_assigned
        self._on_lost = on_lost
        self._gate = gate
        self._gated: set[Partition] = set()
        self._probe = probe
        self._hold = hold
        self._holding = False
        self._chain: ProcessingStep[list[Message]] | None = None
        self._pending: Batch[list[Message]] | None = None
        self._paused_at: float | None = None
        self._first_consumed: dict[Partition, int] = {}  # per partition since it was assigned
        self._taken_back: set[Partition] = set()  # revoked or lost during the current consume call
        self._handled: dict[Partition, int] = {}  # offsets the chains committed since then
        self._running = False
        self._closing = False  # in close(): the handle refuses calls (assignment, seek: _DESTROY)
        self._paused_gauge = m.CONSUMER_PAUSED_PARTITIONS.labels(name)
        self._paused_counter = m.CONSUMER_PAUSED_SECONDS.labels(name)
        self._turn_seconds = m.CONSUMER_LOOP_SECONDS.labels(name)
        self._stall = StallWatch(consumer)
        self.stats = LoopStats()

    def _commit(self, offsets: dict[Partition, int]) -> None:
        """The chain's commit callback: ``offsets`` (next offset per partition) to the group, synchronously
        (streams/steps/commit.py says why), for the work of the current assignment only (``current_work``)."""
        current = current_work(offsets, self._first_consumed)
        if len(current) != len(offsets):
            log.warning(
                "not committing offsets of work from before the current assignment: %s",
                listed({partition: at for partition, at in offsets.items() if partition not in current}),
            )
        if not current:
            return
        self._handled.update(current)  # finished work, whether or not this commit reaches the broker
        positions = [TopicPartition(topic, partition, at) for (topic, partition), at in current.items()]
        self._consumer.commit(offsets=positions, asynchronous=False)

    def stop(self) -> None:
        """Ask the loop to finish (safe from a signal handler)."""
        self._running = False

    def run(self) -> LoopStats:
        self._consumer.subscribe(
            self._topics, on_assign=self._assign, on_revoke=self._revoke, on_lost=self._lost
        )
        self._running = True
        try:
            while self._running:
                started = time.monotonic()
                self._turn()
                self._turn_seconds.observe(time.monotonic() - started)
        finally:
            self._shutdown()
        return self.stats

    def _turn(self) -> None:
        if self._probe is not None:
            self._probe.beat()
        self._restart_stalled()
        if self._hold is not None and self._held_back(self._hold()):
            return
        if self._pending is None:
            messages = self._consume(0.05 if self._chain is None or self._gated else 0.01)
            if self._gate is not None:
                messages = self._gate.admit(self._gate.due() + messages)
                self._sync_gate()
            if messages:
                self._pending = Batch(messages, offsets_of(messages))
        else:
            extra = self._consume(0.05)  # paused: serves the group protocol
            if extra:
                self._join_pending(extra)
        if self._chain is None:
            if not self._consumer.assignment():
                return
            self._chain = self._factory(self._commit)
        self._chain.poll()
        if self._pending is not None:
            self._offer(self._chain, self._pending)

    def _restart_stalled(self) -> None:
        """Partitions not held back here that stopped delivering get their fetch restarted (stall.py)."""
        if self._paused_at is not None or self._holding or self._pending is not None:
            self._stall.hold_all()
            return
        self._stall.check(held=self._gated)

    def _held_back(self, hold: bool) -> bool:
        """Downstream asks to wait (e.g. the results lag is high): pause everything, keep polling."""
        if hold != self._holding:
            self._holding = hold
            log.info("%s: downstream backpressure", "pausing" if hold else "resuming after")
            if hold and self._paused_at is None:
                self._pause()
            elif not hold and self._pending is None and self._paused_at is not None:
                self._resume()
        if not hold:
            return False
        extra = self._consume(0.1)  # paused: serves the group protocol
        if extra:
            if self._pending is None:
                self._pending = Batch(extra, offsets_of(extra))
            else:
                self._join_pending(extra)
        if self._chain is not None:
            self._chain.poll()
        return True

    def _join_pending(self, extra: list[Message]) -> None:
        if self._gate is not None:
            extra = self._gate.admit(extra)
            self._sync_gate()
        if extra and self._pending is not None:
            self._pending.payload.extend(extra)
            self._pending.offsets.update(offsets_of(extra))
            self._consumer.pause(self._consumer.assignment())

    def _sync_gate(self) -> None:
        assert self._gate is not None
        held = self._gate.held_partitions()
        if held != self._gated:
            pause, resume = held - self._gated, self._gated - held
            if pause:
                self._consumer.pause([TopicPartition(t, p) for t, p in pause])
            if resume and self._paused_at is None:
                self._consumer.resume([TopicPartition(t, p) for t, p in resume])
            self._gated = held
            self._paused_gauge.set(len(held))

    def _consume(self, timeout: float) -> list[Message]:
        self._taken_back = set()
        messages = self._consumer.consume(self._batch_size, timeout)
        if messages and self._taken_back:
            messages = self._drop_from_before(messages, self._taken_back)
        self._taken_back = set()
        if not messages:
            return []
        good = [msg for msg in messages if msg.error() is None]
        if len(good) != len(messages):
            for msg in messages:
                error = msg.error()
                if error is not None and error.code() != KafkaError._PARTITION_EOF:
                    self.stats.consumer_errors += 1
                    log.warning("consumer error: %s", error)
        self.stats.consumed += len(good)
        first = self._first_consumed
        for msg in good:
            key = (msg.topic(), msg.partition())
            if key not in first:
                at: int = msg.offset()  # type: ignore[assignment]  # set on consumed records
                first[key] = at  # type: ignore[index]
                log.info("%s/%d: first record since the assignment at offset %d", *key, at)
        if good and self._probe is not None:
            self._probe.kafka_ok()
        return good

    def _drop_from_before(self, messages: list[Message], taken_back: set[Partition]) -> list[Message]:
        """``messages`` without those of partitions revoked or lost during the call that returned them
        (read before the rebalance: see the module docstring); a partition of theirs assigned again
        meanwhile is sought back to its committed offset, so nothing the call returned is skipped."""
        dropped: dict[Partition, int] = {}
        kept: list[Message] = []
        for msg in messages:
            key = (msg.topic(), msg.partition())
            if key in taken_back and msg.error() is None:
                offset: int = msg.offset()  # type: ignore[assignment]  # set on consumed records
                dropped[key] = min(offset, dropped.get(key, offset))
            else:
                kept.append(msg)
        if not dropped:
            return messages
        owned = {(tp.topic, tp.partition) for tp in self._consumer.assignment()}
        again = sorted(set(dropped) & owned)
        log.warning(
            "dropped %d record(s) read before partitions were revoked or lost (%s)%s",
            len(messages) - len(kept),
            listed(dropped),
            f"; assigned again, consuming from the committed offset: {again}" if again else "",
        )
        if again:
            self._seek_committed({partition: dropped[partition] for partition in again})
        return kept

    def _seek_committed(self, lowest_dropped: dict[Partition, int]) -> None:
        """Seek each partition to its committed offset (where its new assignment started reading; the
        lowest record dropped of it when the broker does not answer, which skips nothing either)."""
        targets = dict(lowest_dropped)
        wanted = [TopicPartition(topic, partition) for topic, partition in lowest_dropped]
        try:
            answer = self._consumer.committed(wanted, timeout=self._deadline)
        except KafkaException as exc:
            log.warning("committed offsets unreadable (%s): seeking to the first record dropped", exc)
            answer = []
        for tp in answer:
            if tp.error is not None:  # its offset reads INVALID, which is not "none committed"
                log.warning("committed offset of %s/%d unreadable (%s): seeking to the first record dropped",
                            tp.topic, tp.partition, tp.error)  # fmt: skip
                continue
            targets[(tp.topic, tp.partition)] = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
        log.info("consuming again from %s", listed(targets))
        for (topic, partition), offset in targets.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException as exc:
                # not fetching yet (its committed offset is still being read): nothing of the new
                # assignment was read, so dropping the old records was enough
                if exc.args[0].code() not in (KafkaError._STATE, KafkaError._PREV_IN_PROGRESS):
                    raise
            self._first_consumed.pop((topic, partition), None)

    def _offer(self, chain: ProcessingStep[list[Message]], batch: Batch[list[Message]]) -> None:
        try:
            chain.submit(batch)
        except MessageRejected:
            if self._paused_at is None:
                self._pause()
            return
        self.stats.batches += 1
        self.stats.last_batch_at = time.time()
        self.stats.first_batch_at = self.stats.first_batch_at or self.stats.last_batch_at
        self._pending = None
        if self._paused_at is not None:
            self._resume()

    def _pause(self) -> None:
        assignment = self._consumer.assignment()
        self._consumer.pause(assignment)
        self._paused_at = time.monotonic()
        self._paused_gauge.set(len(assignment))
        log.debug("paused %d partition(s): the chain is full", len(assignment))

    def _resume(self) -> None:
        assignment = self._consumer.assignment()
        self._consumer.resume([tp for tp in assignment if (tp.topic, tp.partition) not in self._gated])
        if self._paused_at is not None:
            waited = time.monotonic() - self._paused_at
            self.stats.paused_seconds += waited
            self._paused_counter.inc(waited)
        self._paused_at = None
        self._paused_gauge.set(len(self._gated))

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self.stats.rebalances += 1
        current = {(tp.topic, tp.partition) for tp in consumer.assignment()}
        self.stats.assigned = sorted(current | {(tp.topic, tp.partition) for tp in partitions})
        log.info("assigned %d partition(s)", len(partitions))
        if self._chain is None and partitions:
            self._chain = self._factory(self._commit)
        if self._on_assigned is not None:
            self._on_assigned(self.stats.assigned)
        if self._probe is not None:
            self._probe.set_assigned(len(self.stats.assigned))

    def _revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._taken_back |= gone
        log.info("revoking %d partition(s): finishing in-flight work", len(gone))
        self._finish_chain()
        if self._closing:  # leaving the group: nothing is kept to rewind
            return
        self._forget(gone)
        self._rewind_kept(consumer, gone)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("lost %d partition(s): dropping in-flight work uncommitted", len(partitions))
        if self._chain is not None:
            self._chain.terminate()
        self._chain = None
        gone = {(tp.topic, tp.partition) for tp in partitions}
        self._taken_back |= gone
        if self._on_lost is not None:
            self._on_lost(sorted(gone))
        if self._closing:
            return
        self._forget(gone)
        self._rewind_kept(consumer, gone)

    def _rewind_kept(self, consumer: Consumer, gone: set[Partition]) -> None:
        """After the chain was joined or dropped: seek every partition still owned whose finished work
        (the offset its chains committed) stops short of what was handed to the chain back there."""
        kept = [tp for tp in consumer.assignment() if (tp.topic, tp.partition) not in gone]
        if not kept:
            return
        rewind = rewind_targets(self._handled, self._first_consumed, self._next_unhanded(consumer, kept))
        if not rewind:
            return
        log.warning(
            "%d kept partition(s) had work cancelled at the rebalance: consuming it again from %s",
            len(rewind),
            listed(rewind),
        )
        again = set(rewind)
        self._pending = _keep(self._pending, again)
        ungated = again & self._gated  # paused for the gate's sake: their held records are dropped
        if self._gate is not None:
            self._gate.drop(again)
            self._gated -= again
            self._paused_gauge.set(len(self._gated))
        for (topic, partition), offset in rewind.items():
            consumer.seek(TopicPartition(topic, partition, offset))
        if self._pending is None and self._paused_at is not None:
            self._resume()
        elif ungated and self._paused_at is None:
            consumer.resume([TopicPartition(topic, partition) for topic, partition in ungated])

    def _next_unhanded(self, consumer: Consumer, kept: list[TopicPartition]) -> dict[Partition, int]:
        """Per kept partition: the first offset not handed to the chain (waiting, held or unconsumed)."""
        nexts = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(kept) if tp.offset >= 0}
        waiting = list(self._pending.payload) if self._pending is not None else []
        if self._gate is not None:
            waiting.extend(self._gate.held())
        for msg in waiting:
            key = (msg.topic(), msg.partition())
            offset: int = msg.offset()  # type: ignore[assignment]
            if key in nexts and offset < nexts[key]:
                nexts[key] = offset
        return nexts

    def _forget(self, gone: set[Partition]) -> None:
        self._pending = _keep(self._pending, gone)
        if self._gate is not None:
            self._gate.drop(gone)
            self._gated -= gone
        self.stats.assigned = [p for p in self.stats.assigned if p not in gone]
        for partition in gone:
            self._first_consumed.pop(partition, None)
            self._handled.pop(partition, None)
        if self._probe is not None:
            self._probe.set_assigned(len(self.stats.assigned))
        if self._pending is None and self._paused_at is not None:
            self._resume()

    def _finish_chain(self) -> None:
        if self._chain is not None:
            self._chain.close()
            self._chain.join(self._deadline)
        self._chain = None

    def _shutdown(self) -> None:
        try:
            self._finish_chain()
        finally:
            self._close_consumer()

    def _close_consumer(self) -> None:
        """Leave the group. The chain was joined and its offsets committed before; a close that fails
        (a rebalance served during it, a broker gone) only means the group notices the member's
        departure by its session timeout, so it is logged and the service still stops cleanly."""
        self._closing = True
        try:
            self._consumer.close()
        except Exception as exc:  # KafkaException, or whatever a rebalance callback raised in close
            log.warning(
                "closing the consumer: %s: the group sees this member leave at its session timeout",
                exc,
                exc_info=not isinstance(exc, KafkaException),  # anything else is a bug: its traceback
            )
