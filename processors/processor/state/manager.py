"""The processor's state: one local store per assigned partition, restored from the changelog topic on
assignment, and the per-batch update (history math in ``history``; the store in ``store``).

Changelog partition p holds the state of requests partition p (and of retry partition p: the same
client id hashes to the same partition number in both topics, and the processor's state needs them
assigned together, which the ``range`` assignor does). Every change is produced to the changelog with
the batch's trackers, so the commit step commits a batch's offsets only once its changelog records are
delivered. The local store is written at once; what a crash leaves in it beyond the changelog is the
state of runs whose requests were not committed, and handling them again gives the same answer.

Restore: read changelog partition p from the offset the local store was restored up to (0 for a new
or deleted store) to its end, applying every record in order (a value is a whole row; a tombstone
deletes it). A store whose offset is past the topic's start but finds an earlier record (the topic was
recreated) is wiped and rebuilt from the beginning.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from confluent_kafka import KafkaError, Message, TopicPartition

from processors.processor.state.history import (
    CLOCK_SLOTS,
    Clock,
    History,
    StateSpec,
    apply_run,
    decode_history,
    encode_history,
    is_stale,
    merge_histories,
    owner_of,
    unscheduled_outputs,
)
from processors.processor.state.layout import Layout
from processors.processor.state.store import (
    PartitionStore,
    Row,
    client_key,
    index_of,
    split_key,
)
from processors.processor.subsystems.protocol import MetricColumns, Record
from schemas.topics import REQUESTS
from streams.kafka.clients import make_consumer
from streams.kafka.producer import BatchProducer, DeliveryTracker
from streams.observability import metrics as m
from streams.runs.identity import schedule_slot
from streams.settings.model import Settings
from streams.settings.stackfile import state_dir

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 5.0
GAUGE_SECONDS = 10.0


@dataclass(frozen=True)
class Bounds:
    """When a client is dropped: not seen for more than ``runs`` runs or ``ms`` milliseconds."""

    runs: int
    ms: int


def store_folder(settings: Settings) -> Path:
    """``KCOLLECT_PROCESSOR_STORE_DIR`` (or ``<KCOLLECT_STATE_DIR>/processor-store``) / <prefix><group>."""
    base = (
        Path(settings.processor_store_dir)
        if settings.processor_store_dir
        else state_dir() / "processor-store"
    )
    return base / quote(f"{settings.topic_prefix}{settings.processor_group}", safe="")


class StateStores:
    """The local stores of the partitions this processor owns, and the changelog behind them."""

    def __init__(
        self, settings: Settings, changelog: str, producer: BatchProducer, spec: StateSpec, bounds: Bounds
    ) -> None:
        self._settings = settings
        self._changelog = changelog
        self._producer = producer
        self.spec = spec
        self.bounds = bounds
        self.folder = store_folder(settings)
        self.stores: dict[int, PartitionStore] = {}
        self.own_ends: dict[int, int] = {}  # per partition: offset after this process's last confirmed write
        self.generation = 0  # moves on when partitions are lost: older writes' deliveries no longer count
        self._gauged: dict[int, float] = {}
        self.layout = Layout(settings.partitions, settings.partitions)
        self.caught_up: dict[int, dict[tuple[str, int], None]] = {}  # per partition: (schedule, slot)

    # --- assignment ---------------------------------------------------------------------------

    def sync(self, assigned: Sequence[tuple[str, int]]) -> None:
        """After an assignment: close the stores of partition numbers no longer owned, open the new
        ones, and bring every owned one up to its changelog's end. A store kept open reads only what
        was written after its own last confirmed write (nothing, unless it was lost to another
        member meanwhile), so a rebalance that moves nothing costs one read to the end."""
        wanted = {partition for _, partition in assigned}
        self.layout = self._current_layout()
        for partition in sorted(set(self.stores) - wanted):
            self.stores.pop(partition).close()
            self.own_ends.pop(partition, None)
            self.caught_up.pop(partition, None)
            log.info("state: partition %d released", partition)
        self._checkpoint_own_writes()
        self.stores.update(self.restore(sorted(wanted), self.stores))

    def _current_layout(self) -> Layout:
        """The partition counts now (the requests topic may have grown since the last assignment)."""
        prefix = self._settings.topic_prefix
        requests = self._producer.partition_count(REQUESTS.name(prefix))
        layout = Layout(requests, self._producer.partition_count(self._changelog))
        if layout != self.layout:
            log.info("state: %d request partition(s), %d changelog partition(s)", requests, layout.changelog)
        if not layout.aligned:
            log.error(
                "state: the requests topic has %d partitions, not a multiple of the changelog's %d: clients "
                "that moved partition start from first sight (see docs/state.md)",
                layout.requests,
                layout.changelog,
            )
        return layout

    def _checkpoint_own_writes(self) -> None:
        """A store owned since its restore holds everything up to this process's last confirmed write:
        its next restore may start there. Not once grown: other request partitions write between."""
        if self.layout.grown:
            return
        for partition, store in self.stores.items():
            own = self.own_ends.get(partition, 0)
            if own > store.changelog_offset():
                store.write([], own)

    def restore(
        self, partitions: Sequence[int], open_stores: dict[int, PartitionStore] | None = None
    ) -> dict[int, PartitionStore]:
        """The stores of ``partitions`` (those in ``open_stores`` reused), each brought up to the end of
        its changelog partition (all read at once by one consumer). Once grown, a reused store merges
        what it reads into what it holds (``_merged``): its own newest writes may not be delivered yet."""
        if not partitions:
            return {}
        started = time.monotonic()
        known = open_stores or {}
        stores = {p: known.get(p) or PartitionStore(self.folder / f"p{p}.sqlite") for p in partitions}
        merging = {p for p in partitions if p in known} if self.layout.grown else set()
        starts = {p: store.changelog_offset() for p, store in stores.items()}
        done = self._replay(stores, starts, merging)
        recreated = [p for p, (_, end) in done.items() if end < starts[p]]
        for p in recreated:
            log.warning(
                "state: partition %d changelog is behind its store (%d < %d): rebuilt",
                p,
                done[p][1],
                starts[p],
            )
            stores[p].wipe()
        if recreated:
            done.update(self._replay({p: stores[p] for p in recreated}, dict.fromkeys(recreated, 0), set()))
        seconds = time.monotonic() - started
        for p, (applied, end) in sorted(done.items()):
            m.PROCESSOR_STATE_RESTORE_SECONDS.labels(str(p)).set(seconds)
            m.PROCESSOR_STATE_RESTORED_RECORDS.labels(str(p)).inc(applied)
            self._gauges(p, stores[p])
            log.info(
                "state: partition %d restored: %d changelog record(s) of partition %d from offset %d to %d "
                "(%d rows)",
                p,
                applied,
                self.layout.source(p),
                0 if p in recreated else starts[p],
                end,
                stores[p].count(),
            )
        total = sum(applied for applied, _ in done.values())
        log.info("state: %d partition(s) restored in %.2f s (%d record(s))", len(stores), seconds, total)
        return stores

    def _replay(
        self, stores: dict[int, PartitionStore], starts: dict[int, int], merging: set[int]
    ) -> dict[int, tuple[int, int]]:
        """Apply to each store its changelog partition's records from its start offset to the end:
        {partition: (records applied, end offset)}. Stores sharing a changelog partition (grown) share
        one read. A changelog partition that answers a record before the lowest start offset (the topic
        was recreated) stops there, with that offset as its end."""
        readers: dict[int, list[int]] = {}
        for p in stores:
            readers.setdefault(self.layout.source(p), []).append(p)
        lowest = {q: min(starts[p] for p in group) for q, group in readers.items()}
        consumer = make_consumer(
            self._settings, f"kcollect-state-restore-{uuid.uuid4().hex[:8]}", **{"enable.partition.eof": True}
        )
        consumer.assign([TopicPartition(self._changelog, q, at) for q, at in lowest.items()])
        applied = dict.fromkeys(stores, 0)
        skipped = 0
        ends = dict(lowest)
        open_parts = set(readers)
        patience = max(60.0, self._settings.broker_timeout_seconds)
        deadline = time.monotonic() + patience
        last_note = time.monotonic()

        def write(p: int, part_rows: list[Row], end: int) -> None:
            if p in merging:
                part_rows = self._merged(p, stores[p], part_rows)
            stores[p].write(part_rows, end)
            applied[p] += len(part_rows)

        try:
            while open_parts:
                messages = consumer.consume(5000, 0.2)
                rows: dict[int, list[Row]] = {}
                for msg in messages:
                    q = int(msg.partition() or 0)
                    if q not in open_parts:
                        continue
                    error = msg.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            ends[q] = int(msg.offset() or 0)
                            open_parts.discard(q)
                            for p in readers[q]:
                                write(p, rows.pop(p, []), ends[q])
                        continue
                    offset = int(msg.offset() or 0)
                    if offset < lowest[q]:
                        ends[q] = offset
                        open_parts.discard(q)
                        for p in readers[q]:
                            rows.pop(p, None)
                        continue
                    row = usable_row(msg.key(), msg.value())
                    if row is None:
                        skipped += 1
                        if skipped <= 5:
                            log.warning(
                                "state: partition %d offset %d: not a state record, skipped", q, offset
                            )
                    else:
                        for p in readers[q]:
                            if offset >= starts[p]:
                                rows.setdefault(p, []).append(row)
                    ends[q] = offset + 1
                for p, part_rows in rows.items():
                    write(p, part_rows, ends[self.layout.source(p)])
                if messages:
                    deadline = time.monotonic() + patience
                elif time.monotonic() > deadline:
                    raise TimeoutError(
                        f"state: changelog partitions {sorted(open_parts)} not read to their end"
                    )
                if time.monotonic() - last_note > PROGRESS_SECONDS:
                    last_note = time.monotonic()
                    log.info(
                        "state: restoring: %d record(s) so far, %d partition(s) to go",
                        sum(applied.values()),
                        len(open_parts),
                    )
        finally:
            consumer.close()
        return {p: (applied[p], ends[self.layout.source(p)]) for p in stores}

    def _merged(self, partition: int, store: PartitionStore, rows: list[Row]) -> list[Row]:
        """Changelog rows read into a store kept open since its last restore (grown layout only): a
        client's history read is merged with the one held (runs of both, newest kept), since the store
        may hold newer writes of its own than the changelog has delivered; tombstones are skipped (only
        this partition drops its clients, and did so in its store already); so is its own run clock."""
        source = self.layout.source(partition)
        merged: dict[bytes, bytes] = {}
        for key, value in rows:
            if value is None:
                continue
            schedule, client = split_key(key)
            if not client:
                if key != self.layout.clock_key(schedule, partition):
                    merged[key] = value
                continue
            held = merged.get(key) or store.get(key)
            if held is None:
                merged[key] = value
                continue
            try:
                mine, theirs = decode_history(held), decode_history(value)
            except (ValueError, TypeError, KeyError):
                merged[key] = value
                continue
            runs = merge_histories(mine, theirs, self.spec.keep_runs)
            newer = value if theirs and (not mine or theirs[-1].at_ms >= mine[-1].at_ms) else held
            merged[key] = encode_history(runs, owner_of(newer, source))
        return list(merged.items())

    def catch_up(self, partition: int) -> None:
        """Grown layout: read what other request partitions wrote to this one's changelog partition
        since the last restore (a moved client's last run, handled where its request was enqueued)."""
        if partition in self.stores:
            self.stores.update(self.restore([partition], self.stores))

    def gauges_now_and_then(self, partition: int, store: PartitionStore) -> None:
        """The size gauges, at most every GAUGE_SECONDS per partition (a count scans the store)."""
        now = time.monotonic()
        if now - self._gauged.get(partition, 0.0) >= GAUGE_SECONDS:
            self._gauged[partition] = now
            self._gauges(partition, store)

    def _gauges(self, partition: int, store: PartitionStore) -> None:
        label = str(partition)
        m.PROCESSOR_STATE_STORE_BYTES.labels(label).set(store.size_bytes())
        m.PROCESSOR_STATE_ENTRIES.labels(label).set(store.count())

    def produce(self, partition: int, records: list[Row], tracker: DeliveryTracker) -> None:
        """Request partition ``partition``'s changed rows, to its changelog partition."""
        changelog_partition = self.layout.source(partition)
        self._producer.produce_keyed_to_partition(self._changelog, changelog_partition, records, tracker)

    def tracker(self) -> ChangelogTracker:
        return ChangelogTracker(self)

    def lost(self, partitions: Sequence[tuple[str, int]]) -> None:
        """Partitions lost (session expired): another member may have written their changelog since,
        so the next sync reads from the store's last restore, not from this process's own writes;
        deliveries of writes made before now are not counted as this process's any more."""
        self.generation += 1
        for _, partition in partitions:
            self.own_ends.pop(partition, None)

    def close(self) -> None:
        """At shutdown (the chain joined, every delivery reported): a restart restores from here."""
        self._checkpoint_own_writes()
        for store in self.stores.values():
            store.close()
        self.stores.clear()

    # --- one batch ----------------------------------------------------------------------------

    def apply(
        self,
        requests: Sequence[Record],
        partitions: Sequence[int],
        columns: MetricColumns,
        tracker: DeliveryTracker,
    ) -> dict[str, list[Any]]:
        """The state's output columns for ``requests`` (in order), the stores and changelog moved on."""
        slots: dict[str, tuple[str, int] | None] = {}
        for run_id in {str(r["run_id"]) for r in requests}:
            slots[run_id] = schedule_slot(run_id)
        batch = _BatchState(self, tracker)
        wanted: dict[int, list[bytes]] = {}
        for request, partition in zip(requests, partitions, strict=True):
            scheduled = slots[str(request["run_id"])]
            if scheduled is not None:
                wanted.setdefault(partition, []).append(client_key(scheduled[0], str(request["client_id"])))
        if self.layout.grown:
            self._catch_up_on_new_runs(requests, partitions, slots)
        for partition, client_keys in wanted.items():
            batch.prefetch(partition, client_keys)
        outputs: list[dict[str, float]] = []
        names = list(columns)
        for i, request in enumerate(requests):
            values = {name: columns[name][i] for name in names}
            scheduled = slots[str(request["run_id"])]
            if scheduled is None:
                batch.unscheduled += 1
                outputs.append(unscheduled_outputs(values, self.spec))
                continue
            schedule, at_ms = scheduled
            outputs.append(
                batch.run(
                    partitions[i], schedule, str(request["client_id"]), str(request["run_id"]), at_ms, values
                )
            )
        batch.flush()
        keys: dict[str, None] = {}
        for out in outputs:
            keys.update(dict.fromkeys(out))
        return {key: [out.get(key) for out in outputs] for key in keys}

    def _catch_up_on_new_runs(
        self, requests: Sequence[Record], partitions: Sequence[int], slots: dict[str, tuple[str, int] | None]
    ) -> None:
        """Before a partition's first request of each run: ``catch_up``."""
        for request, partition in zip(requests, partitions, strict=True):
            scheduled = slots[str(request["run_id"])]
            if scheduled is None:
                continue
            seen = self.caught_up.setdefault(partition, {})
            if scheduled not in seen:
                seen[scheduled] = None
                while len(seen) > CLOCK_SLOTS:  # the runs a clock remembers: older ones are late anyway
                    del seen[next(iter(seen))]
                self.catch_up(partition)


def usable_row(key: bytes | str | None, value: bytes | None) -> Row | None:
    """A changelog record as a store row, or None when it is not one (no key, or a value that does not
    decode as what its key says): a bad record is skipped, it never stops a restore."""
    if key is None:
        return None
    raw = key if isinstance(key, bytes) else key.encode()
    try:
        if value is not None:
            index_of(raw, value)
            if not split_key(raw)[1]:
                Clock.from_bytes(value)
    except (ValueError, TypeError, KeyError):
        return None
    return raw, value


class _BatchState:
    """The rows one batch reads and writes, per partition, written at the end in one transaction each."""

    def __init__(self, stores: StateStores, tracker: DeliveryTracker) -> None:
        self._stores = stores
        self._tracker = tracker
        self._rows: dict[int, dict[bytes, bytes | None]] = {}
        self._clocks: dict[tuple[int, str], Clock] = {}
        self._index: dict[bytes, tuple[str, int, int]] = {}
        self._loaded: dict[bytes, bytes] = {}  # prefetched rows
        self._local: dict[int, dict[bytes, bytes | None]] = {}  # store-only deletes (not in the changelog)
        self.hits = 0
        self.misses = 0
        self.unscheduled = 0

    def prefetch(self, partition: int, keys: list[bytes]) -> None:
        self._loaded.update(self._store(partition).get_many(keys))

    def _store(self, partition: int) -> PartitionStore:
        store = self._stores.stores.get(partition)
        if store is None:  # a partition assigned without a sync (not in the assignment list yet)
            store = self._stores.restore([partition])[partition]
            self._stores.stores[partition] = store
        return store

    def _read(self, partition: int, key: bytes) -> bytes | None:
        rows = self._rows.setdefault(partition, {})
        if key in rows:
            return rows[key]
        if key in self._loaded:
            return self._loaded[key]
        return self._store(partition).get(key)

    def _clock(self, partition: int, schedule: str) -> Clock:
        clock = self._clocks.get((partition, schedule))
        if clock is None:
            layout = self._stores.layout
            value = self._read(partition, layout.clock_key(schedule, partition))
            seed = layout.seed_key(schedule, partition)
            if value is None and seed is not None:
                value = self._read(partition, seed)
            try:
                clock = Clock.from_bytes(value) if value is not None else Clock()
            except (ValueError, TypeError, KeyError):
                log.warning(
                    "state: partition %d: the run clock of %s does not decode: started afresh",
                    partition,
                    schedule,
                )
                clock = Clock()
            self._clocks[(partition, schedule)] = clock
        return clock

    def run(
        self,
        partition: int,
        schedule: str,
        client_id: str,
        run_id: str,
        at_ms: int,
        values: dict[str, float | None],
    ) -> dict[str, float]:
        clock, seq, new_slot = self._clock(partition, schedule).advance(at_ms)
        if new_slot:
            self._clocks[(partition, schedule)] = clock
            self._rows.setdefault(partition, {})[self._stores.layout.clock_key(schedule, partition)] = (
                clock.to_bytes()
            )
            self._drop_stale(partition, schedule, seq, at_ms)
        key = client_key(schedule, client_id)
        value = self._read(partition, key)
        history = self._history(partition, key, value)
        if history:
            self.hits += 1
        else:
            self.misses += 1
        step = apply_run(history, run_id, at_ms, seq, values, self._stores.spec)
        if step.history is not None:
            self._rows.setdefault(partition, {})[key] = encode_history(step.history, partition)
            newest = step.history[-1]
            self._index[key] = (schedule, newest.seq, newest.at_ms)
        return step.outputs

    @staticmethod
    def _history(partition: int, key: bytes, value: bytes | None) -> History:
        """A stored history; one that does not decode counts as none (the client's first sight)."""
        if value is None:
            return ()
        try:
            return decode_history(value)
        except (ValueError, TypeError, KeyError):
            log.warning("state: partition %d: the history of %r does not decode: first sight", partition, key)
            return ()

    def _owned(self, partition: int, value: bytes) -> bool:
        layout = self._stores.layout
        try:
            return not layout.grown or owner_of(value, layout.source(partition)) == partition
        except (ValueError, TypeError):
            return True

    def _drop_stale(self, partition: int, schedule: str, seq: int, at_ms: int) -> None:
        bounds = self._stores.bounds
        store = self._store(partition)
        rows = self._rows.setdefault(partition, {})
        dropped = 0
        for key in store.stale(schedule, seq - bounds.runs, at_ms - bounds.ms):
            value = rows.get(key, store.get(key))
            if value is None:
                continue
            newest = self._history(partition, key, value)[-1:]
            if newest and is_stale(newest[0], seq, at_ms, bounds.runs, bounds.ms):
                if self._owned(partition, value):
                    rows[key] = None
                    dropped += 1
                else:  # another request partition's client now: forgotten here, kept in the changelog
                    self._local.setdefault(partition, {})[key] = None
        if dropped:
            m.PROCESSOR_STATE_DROPPED.inc(dropped)
            log.info(
                "state: partition %d, schedule %s: %d client(s) dropped (not seen lately)",
                partition,
                schedule,
                dropped,
            )

    def flush(self) -> None:
        """Changelog records first (their delivery gates the commit), then the local stores."""
        for outcome, count in (("hit", self.hits), ("miss", self.misses), ("none", self.unscheduled)):
            if count:
                m.PROCESSOR_STATE_LOOKUPS.labels(outcome).inc(count)
        written = 0
        for partition in self._rows.keys() | self._local.keys():
            records = list(self._rows.get(partition, {}).items())
            local = list(self._local.get(partition, {}).items())
            if not records and not local:
                continue
            if records:
                self._stores.produce(partition, records, self._tracker)
            written += sum(len(k) + len(v or b"") for k, v in records)
            store = self._store(partition)
            store.write(local + records, index=self._index)
            self._stores.gauges_now_and_then(partition, store)
        if written:
            m.PROCESSOR_STATE_CHANGELOG_BYTES.inc(written)


class ChangelogTracker(DeliveryTracker):
    """A delivery tracker that also notes, per partition, the offset after the last confirmed record
    (unless partitions were lost since the tracker was made)."""

    def __init__(self, stores: StateStores) -> None:
        super().__init__()
        self._stores = stores
        self._ends = stores.own_ends
        self._generation = stores.generation

    def on_delivery(self, err: KafkaError | None, msg: Message) -> None:
        super().on_delivery(err, msg)
        if err is None and self._generation == self._stores.generation:
            partition, offset = int(msg.partition() or 0), int(msg.offset() or 0)
            if offset + 1 > self._ends.get(partition, 0):
                self._ends[partition] = offset + 1
