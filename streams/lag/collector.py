"""One lag collection over many groups and topics, and a monitor that turns collections into statuses.

``LagCollector.collect()`` lists the groups (or takes the ones given), reads their committed offsets
(``streams.kafka.committed``) and descriptions (one AdminClient), the exact end offsets of every topic
in scope at once (``streams.kafka.end_offsets``: the work-around for Tansu's ListOffsets), and the time
lag of every partition behind (``TimestampReader``). ``LagMonitor`` keeps a sliding window per partition
(``streams.lag.status.LagTracker``) and fills in each row's Burrow-style status.

Scope: topics named with ``topics``; otherwise the topics under the settings' topic prefix (every topic
with ``all_topics``). A discovered group is shown only for topics it has committed on; a group named
with ``groups`` is shown for every topic in scope it committed on, or for the named ``topics``.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from streams.kafka.admin import BrokerUnreachableError, existing_topics
from streams.kafka.clients import make_admin, make_consumer
from streams.kafka.committed import CommittedOffsets
from streams.kafka.end_offsets import exact_ends
from streams.lag.discovery import GroupInfo, committed_offsets, describe_groups, list_groups
from streams.lag.probe import partition_lag
from streams.lag.status import LagTracker, Rules, Sample, Status
from streams.lag.timelag import TimestampReader, age_seconds
from streams.settings.model import Settings


@dataclass
class PartitionRow:
    """One group's position on one partition."""

    group: str
    topic: str
    partition: int
    committed: int | None
    end: int
    lag: int
    lag_seconds: float | None
    owner: str  # the member id
    host: str
    group_state: str
    status: str = Status.OK.name
    error: str | None = None
    client_id: str = ""  # the owner's client.id ("unknown" where the broker does not list members)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Snapshot:
    """A collection: rows, partition end offsets of every topic in scope, group infos, errors."""

    at: float  # time.monotonic() of the collection
    wall_ms: int
    rows: list[PartitionRow]
    ends: dict[tuple[str, int], int]
    groups: dict[str, GroupInfo]
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0


def sort_worst_first(rows: list[PartitionRow]) -> list[PartitionRow]:
    return sorted(
        rows,
        key=lambda r: (-Status[r.status], -(r.lag_seconds or 0.0), -r.lag, r.group, r.topic, r.partition),
    )


def group_statuses(rows: list[PartitionRow]) -> dict[str, Status]:
    """Group -> the worst status of its partitions."""
    result: dict[str, Status] = {}
    for row in rows:
        result[row.group] = max(result.get(row.group, Status.OK), Status[row.status])
    return result


class LagCollector:
    """Long-lived clients for repeated collections; ``close`` when done."""

    def __init__(
        self,
        settings: Settings,
        groups: list[str] | None = None,
        topics: list[str] | None = None,
        *,
        all_topics: bool = False,
        time_lag: bool = True,
    ) -> None:
        self._timeout = settings.broker_timeout_seconds
        self._prefix = "" if all_topics else settings.topic_prefix
        self._groups = groups
        self._topics = topics
        self._time_lag = time_lag
        self._admin = make_admin(settings)
        tail = {"enable.partition.eof": True, "fetch.wait.max.ms": 10}
        small = {"max.partition.fetch.bytes": 65536, "queued.max.messages.kbytes": 8192}
        tag = uuid.uuid4().hex[:8]
        self._ends_reader = make_consumer(settings, f"kcollect-lag-ends-{tag}", **tail)
        self._stamps = TimestampReader(make_consumer(settings, f"kcollect-lag-stamps-{tag}", **tail, **small))
        self._committed = CommittedOffsets(settings)

    def close(self) -> None:
        self._ends_reader.close()
        self._stamps._consumer.close()
        self._committed.close()

    def _in_scope(self, topic: str) -> bool:
        return topic in self._topics if self._topics else topic.startswith(self._prefix)

    def collect(self) -> Snapshot:
        started = time.monotonic()
        self._admin.poll(0)  # serve the admin client's log and error callbacks (streams/kafka/client_logs.py)
        present = existing_topics(self._admin, self._timeout)
        groups = self._groups if self._groups is not None else list_groups(self._admin, self._timeout)
        scope = {t: n for t, n in present.items() if self._in_scope(t)}
        partitions = [(t, p) for t, n in sorted(scope.items()) for p in range(n)]
        committed = committed_offsets(self._committed, groups, partitions, self._timeout)
        infos = describe_groups(self._admin, groups, self._timeout)
        errors = [f"topic {t} does not exist" for t in self._topics or [] if t not in present]
        ends: dict[tuple[str, int], int] = {}
        lows: dict[tuple[str, int], int] = {}
        failed: dict[str, str] = {}
        try:
            for tp, (low, end) in exact_ends(self._admin, self._ends_reader, scope, self._timeout).items():
                ends[tp], lows[tp] = end, low
        except BrokerUnreachableError as exc:
            failed = dict.fromkeys(scope, str(exc))
            errors.append(str(exc))
        wall_ms = int(time.time() * 1000)
        rows: list[PartitionRow] = []
        for group in groups:
            offsets = committed.get(group, {})
            topics = {t for t, _ in offsets if t in scope}
            if self._groups is not None and self._topics:
                topics |= set(self._topics) & set(scope)
            info = infos[group]
            for topic in sorted(topics):
                for p in range(scope[topic]):
                    at = offsets.get((topic, p))
                    end = ends.get((topic, p), 0)
                    owner = info.owner(topic, p)
                    rows.append(
                        PartitionRow(
                            group, topic, p, at, end, partition_lag(at, end, lows.get((topic, p), 0)),
                            None, owner.member, owner.host, info.state,
                            error=failed.get(topic), client_id=owner.client_id,
                        )
                    )  # fmt: skip
        if self._time_lag:
            self._fill_time_lag(rows, lows, wall_ms)
        else:
            for row in rows:
                row.lag_seconds = 0.0 if row.lag == 0 else None
        snapshot = Snapshot(started, wall_ms, rows, ends, infos, errors)
        snapshot.seconds = time.monotonic() - started
        return snapshot

    def _fill_time_lag(self, rows: list[PartitionRow], lows: dict[tuple[str, int], int], now_ms: int) -> None:
        def position(row: PartitionRow) -> tuple[str, int, int]:
            start = row.committed if row.committed is not None else lows.get((row.topic, row.partition), 0)
            return (row.topic, row.partition, start)

        behind = [row for row in rows if row.lag > 0 and row.error is None]
        stamps = self._stamps.timestamps({position(row) for row in behind}, min(self._timeout, 10.0))
        for row in rows:
            row.lag_seconds = age_seconds(stamps.get(position(row)), now_ms, row.lag)


class LagMonitor:
    """Collections plus sliding windows: each ``sample()`` returns a snapshot with statuses filled in."""

    def __init__(self, collector: LagCollector, window: int = 10, rules: Rules | None = None) -> None:
        self.collector = collector
        self.tracker = LagTracker(window, rules)

    def sample(self) -> Snapshot:
        snapshot = self.collector.collect()
        for row in snapshot.rows:
            key = (row.group, row.topic, row.partition)
            self.tracker.observe(key, Sample(snapshot.at, row.committed, row.lag, row.error))
            present = snapshot.groups[row.group].consumer_present
            row.status = self.tracker.status(key, snapshot.at, present).name
        self.tracker.forget_except((r.group, r.topic, r.partition) for r in snapshot.rows)
        return snapshot

    def close(self) -> None:
        self.collector.close()
