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
    StateSpec,
    apply_wave,
    decode_history,
    encode_history,
    is_stale,
    merge_histories,
    newest_of,
    owner_of,
    unscheduled_outputs,
)
from processors.processor.state.layout import Layout
from processors.processor.state.store import (
    Index,
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

        def write(p: int, part_rows: list[Row], end: int, known: dict[bytes, Index] | None) -> None:
            if p in merging:
                stores[p].put(self._merged(p, stores[p], part_rows, known or {}))
                stores[p].write([], end)
            else:
                stores[p].write(part_rows, end, known)
            applied[p] += len(part_rows)

        try:
            while open_parts:
                messages = consumer.consume(5000, 0.2)
                rows: dict[int, list[Row]] = {}
                index: dict[int, dict[bytes, Index]] = {}
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
                                write(p, rows.pop(p, []), ends[q], index.pop(p, None))
                        continue
                    offset = int(msg.offset() or 0)
                    if offset < lowest[q]:
                        ends[q] = offset
                        open_parts.discard(q)
                        for p in readers[q]:
                            rows.pop(p, None)
                            index.pop(p, None)
                        continue
                    found = indexed_row(msg.key(), msg.value())
                    if found is None:
                        skipped += 1
                        if skipped <= 5:
                            log.warning(
                                "state: partition %d offset %d: not a state record, skipped", q, offset
                            )
                    else:
                        row, row_index = found
                        for p in readers[q]:
                            if offset >= starts[p]:
                                rows.setdefault(p, []).append(row)
                                if row_index is not None:
                                    index.setdefault(p, {})[row[0]] = row_index
                    ends[q] = offset + 1
                for p, part_rows in rows.items():
                    write(p, part_rows, ends[self.layout.source(p)], index.pop(p, None))
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

    def _merged(
        self, partition: int, store: PartitionStore, rows: list[Row], known: dict[bytes, Index]
    ) -> dict[bytes, tuple[bytes, Index]]:
        """Changelog rows read into a store kept open since its last restore (grown layout only): a
        client's history read is merged with the one held (runs of both, newest kept), since the store
        may hold newer writes of its own than the changelog has delivered; tombstones are skipped (only
        this partition drops its clients, and did so in its store already); so is its own run clock.
        The rows to ``put``: key -> (value, its index; ``known``: the indexes of the rows read)."""
        source = self.layout.source(partition)
        merged: dict[bytes, tuple[bytes, Index]] = {}
        for key, value in rows:
            if value is None:
                continue
            schedule, client = split_key(key)
            read = (value, known.get(key) or index_of(key, value))
            if not client:
                if key != self.layout.clock_key(schedule, partition):
                    merged[key] = read
                continue
            earlier = merged.get(key)
            held = earlier[0] if earlier is not None else store.get(key)
            if held is None:
                merged[key] = read
                continue
            try:
                mine, theirs = decode_history(held), decode_history(value)
            except (ValueError, TypeError, KeyError):
                merged[key] = read
                continue
            runs = merge_histories(mine, theirs, self.spec.keep_runs)
            newer = value if theirs and (not mine or theirs[-1].at_ms >= mine[-1].at_ms) else held
            newest = (runs[-1].seq, runs[-1].at_ms) if runs else (0, 0)
            merged[key] = (encode_history(runs, owner_of(newer, source)), (schedule, *newest))
        return merged

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
        """The state's output columns for ``requests`` (in order), the stores and changelog moved on.

        The batch is cut into *waves* of clients computed at once (``history.apply_wave``): a wave ends
        before a client already in it (its second request must see the first one's state) and before a
        new run slot of a partition already in it (the slot drops stale clients, which the clients
        after it must see). A batch of one run is one wave.
        """
        n = len(requests)
        run_ids = [str(r["run_id"]) for r in requests]
        slots = {run_id: schedule_slot(run_id) for run_id in set(run_ids)}
        keys: list[bytes | None] = []
        for run_id, request in zip(run_ids, requests, strict=True):
            scheduled = slots[run_id]
            keys.append(None if scheduled is None else client_key(scheduled[0], str(request["client_id"])))
        batch = _BatchState(self, tracker)
        if self.layout.grown:
            self._catch_up_on_new_runs(requests, partitions, slots)
        out: dict[str, list[Any]] = {}
        at_ms = [0] * n
        seqs = [0] * n
        schedules = [""] * n
        wave: list[int] = []
        wave_keys: set[bytes] = set()
        wave_partitions: set[int] = set()
        numbered: dict[tuple[int, str], tuple[str, int, int]] = {}  # (partition, run id) -> slot, number
        for i, key in enumerate(keys):
            if key is None:
                batch.unscheduled += 1
                self._unscheduled(out, columns, i, n)
                continue
            partition = partitions[i]
            run = numbered.get((partition, run_ids[i]))
            if run is None:
                schedule, at = slots[run_ids[i]]  # type: ignore[misc]
                seq, new_slot = batch.advance(partition, schedule, at)
                numbered[(partition, run_ids[i])] = (schedule, at, seq)
            else:
                (schedule, at, seq), new_slot = run, False
            if key in wave_keys or (new_slot and partition in wave_partitions):
                batch.wave(wave, _Clients(keys, partitions, run_ids, at_ms, seqs, schedules), columns, out)
                wave, wave_keys, wave_partitions = [], set(), set()
            if new_slot:
                batch.drop_stale(partition, schedule, seq, at)
            wave.append(i)
            wave_keys.add(key)
            wave_partitions.add(partition)
            at_ms[i], seqs[i], schedules[i] = at, seq, schedule
        if wave:
            batch.wave(wave, _Clients(keys, partitions, run_ids, at_ms, seqs, schedules), columns, out)
        batch.flush()
        return out

    def _unscheduled(self, out: dict[str, list[Any]], columns: MetricColumns, i: int, n: int) -> None:
        """An ad-hoc run reads and writes no state: only the reason (``unscheduled_outputs``)."""
        values = {m: columns[m][i] for m in self.spec.metrics if m in columns}
        for name, value in unscheduled_outputs(values, self.spec).items():
            out.setdefault(name, [None] * n)[i] = value

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


def indexed_row(key: bytes | str | None, value: bytes | None) -> tuple[Row, Index | None] | None:
    """A changelog record as a store row with its index (``PartitionStore.write``; None for a
    tombstone), or None when it is not one (no key, or a value that does not decode as what its key
    says): a bad record is skipped, it never stops a restore."""
    if key is None:
        return None
    raw = key if isinstance(key, bytes) else key.encode()
    try:
        schedule, client = split_key(raw)
        if value is None:
            return (raw, None), None
        if not client:
            Clock.from_bytes(value)
            return (raw, value), (schedule, -1, -1)
        seq, slot = newest_of(value)
    except (ValueError, TypeError, KeyError, UnicodeDecodeError):
        return None
    return (raw, value), (schedule, seq, slot)


@dataclass(frozen=True)
class _Clients:
    """A batch's requests as the state sees them (same order; key None: an ad-hoc run)."""

    keys: list[bytes | None]
    partitions: Sequence[int]
    run_ids: list[str]
    at_ms: list[int]
    seqs: list[int]
    schedules: list[str]


class _BatchState:
    """The rows one batch reads and writes, per partition, written at the end in one transaction each."""

    def __init__(self, stores: StateStores, tracker: DeliveryTracker) -> None:
        self._stores = stores
        self._tracker = tracker
        self._upserts: dict[int, dict[bytes, tuple[bytes, Index]]] = {}  # per partition: value, index
        self._deletes: dict[int, set[bytes]] = {}
        self._clocks: dict[tuple[int, str], Clock] = {}
        self._slots: dict[tuple[int, str, int], int] = {}  # (partition, schedule, slot) -> run number
        self._local: dict[int, set[bytes]] = {}  # store-only deletes (not in the changelog)
        self.hits = 0
        self.misses = 0
        self.unscheduled = 0

    def _store(self, partition: int) -> PartitionStore:
        store = self._stores.stores.get(partition)
        if store is None:  # a partition assigned without a sync (not in the assignment list yet)
            store = self._stores.restore([partition])[partition]
            self._stores.stores[partition] = store
        return store

    def _read(self, partition: int, key: bytes) -> bytes | None:
        return self._read_many([partition], [key])[0]

    def _read_many(self, partitions: Sequence[int], keys: Sequence[bytes]) -> list[bytes | None]:
        """The value of each (partition, key) as this batch left it: written, deleted, else the store's."""
        held = {p: self._store(p).rows for p in set(partitions)}
        upserts, deletes = self._upserts, self._deletes
        found: list[bytes | None] = []
        append = found.append
        for partition, key in zip(partitions, keys, strict=True):
            pending = upserts.get(partition)
            if pending is not None and key in pending:
                append(pending[key][0])
                continue
            gone = deletes.get(partition)
            if gone is not None and key in gone:
                append(None)
                continue
            row = held[partition].get(key)
            append(None if row is None else row[0])
        return found

    def _write(self, partition: int, key: bytes, value: bytes, index: Index) -> None:
        self._upserts.setdefault(partition, {})[key] = (value, index)
        if self._deletes:
            self._deletes.get(partition, set()).discard(key)
        if self._local:
            self._local.get(partition, set()).discard(key)

    def _delete(self, partition: int, key: bytes) -> None:
        self._deletes.setdefault(partition, set()).add(key)
        self._upserts.get(partition, {}).pop(key, None)

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

    def advance(self, partition: int, schedule: str, at_ms: int) -> tuple[int, bool]:
        """(the run's number in the partition's clock of ``schedule``, whether its slot is new there)."""
        known = self._slots.get((partition, schedule, at_ms))
        if known is not None:
            return known, False
        clock, seq, new_slot = self._clock(partition, schedule).advance(at_ms)
        if new_slot:
            self._clocks[(partition, schedule)] = clock
            key = self._stores.layout.clock_key(schedule, partition)
            self._write(partition, key, clock.to_bytes(), (schedule, -1, -1))
        self._slots[(partition, schedule, at_ms)] = seq
        return seq, new_slot

    def wave(
        self, wave: list[int], clients: _Clients, columns: MetricColumns, out: dict[str, list[Any]]
    ) -> None:
        """Compute the clients ``wave`` indexes at once, note their new histories, fill ``out``."""
        n = len(clients.keys)
        whole = len(wave) == n
        spec = self._stores.spec
        wave_keys = [clients.keys[i] for i in wave]
        wave_partitions = [clients.partitions[i] for i in wave]
        schedules = [clients.schedules[i] for i in wave]
        stored = self._read_many(wave_partitions, wave_keys)  # type: ignore[arg-type]
        if whole:
            done = apply_wave(
                spec, stored, clients.run_ids, clients.at_ms, clients.seqs, columns, clients.partitions
            )
        else:
            done = apply_wave(
                spec,
                stored,
                [clients.run_ids[i] for i in wave],
                [clients.at_ms[i] for i in wave],
                [clients.seqs[i] for i in wave],
                {m: [columns[m][i] for i in wave] for m in spec.kept if m in columns},
                wave_partitions,
            )
        self.hits += done.hits
        self.misses += len(wave) - done.hits
        for j in done.undecodable:
            log.warning(
                "state: partition %d: the history of %r does not decode: first sight",
                wave_partitions[j],
                wave_keys[j],
            )
        changed = zip(wave_partitions, wave_keys, schedules, done.stored, strict=True)
        if self._deletes or self._local:
            for partition, key, schedule, new in changed:
                if new is not None:
                    self._write(partition, key, new[0], (schedule, new[1], new[2]))  # type: ignore[arg-type]
        else:  # ``_write`` without deletes to undo: the usual batch
            upserts = self._upserts
            for partition, key, schedule, new in changed:
                if new is not None:
                    part = upserts.get(partition)
                    if part is None:
                        part = upserts[partition] = {}
                    part[key] = (new[0], (schedule, new[1], new[2]))  # type: ignore[index]
        for name, column in done.outputs.items():
            if whole and name not in out:
                out[name] = column
                continue
            target = out.setdefault(name, [None] * n)
            for i, value in zip(wave, column, strict=True):
                target[i] = value

    def _owned(self, partition: int, value: bytes) -> bool:
        """Whether ``partition`` wrote a history last (always, unless grown): only then may it drop it."""
        layout = self._stores.layout
        try:
            return not layout.grown or owner_of(value, layout.source(partition)) == partition
        except ValueError:
            return True

    def drop_stale(self, partition: int, schedule: str, seq: int, at_ms: int) -> None:
        bounds = self._stores.bounds
        store = self._store(partition)
        dropped = 0
        for key in store.stale(schedule, seq - bounds.runs, at_ms - bounds.ms):
            value = self._read(partition, key)
            if value is None:
                continue
            try:
                newest = decode_history(value)[-1:]
            except (ValueError, TypeError, KeyError):
                newest = ()
            if newest and is_stale(newest[0], seq, at_ms, bounds.runs, bounds.ms):
                if self._owned(partition, value):
                    self._delete(partition, key)
                    dropped += 1
                else:  # another request partition's client now: forgotten here, kept in the changelog
                    self._local.setdefault(partition, set()).add(key)
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
        for partition in sorted(set(self._upserts) | set(self._deletes) | set(self._local)):
            upserts = self._upserts.get(partition, {})
            deletes = self._deletes.get(partition, set())
            local = self._local.get(partition, set()) - deletes - upserts.keys()
            if not upserts and not deletes and not local:
                continue
            records: list[Row] = [(key, row[0]) for key, row in upserts.items()]
            records.extend((key, None) for key in deletes)
            if records:
                self._stores.produce(partition, records, self._tracker)
            written += sum(map(len, upserts)) + sum(len(row[0]) for row in upserts.values())
            written += sum(map(len, deletes))
            store = self._store(partition)
            store.put(upserts, deletes | local)
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
        if err is not None:
            super().on_delivery(err, msg)
            return
        self.pending -= 1  # ``DeliveryTracker.on_delivery`` of a delivered record, inlined: one per client
        self.delivered += 1
        if self._generation == self._stores.generation:
            partition, offset = msg.partition() or 0, msg.offset() or 0
            if offset >= self._ends.get(partition, 0):
                self._ends[partition] = offset + 1
