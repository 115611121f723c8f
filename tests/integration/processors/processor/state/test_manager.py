"""The state stores on the real broker after `kcollect topics grow`: a client whose requests moved from
request partition 1 to 3 (2 -> 4 partitions, the changelog kept at 2) while its old partition still
handled a run of it. Its new partition's store, restored before that run was written, catches up
before its next run: that run is computed against the one handled in the old partition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from processors.processor.state.history import FIRST_SIGHT, StateSpec, owner_of
from processors.processor.state.manager import Bounds, StateStores
from schemas.topics import REQUESTS, STATE_CHANGELOG
from streams.kafka.admin import create_topics, grow_topics
from streams.kafka.producer import BatchProducer
from streams.settings.model import Settings, load_settings

pytestmark = pytest.mark.integration
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = StateSpec({"bytes": ("increase",)})


def run_id(n: int) -> str:
    return f"fleet-{T0 + timedelta(minutes=n):%Y%m%dT%H%M%SZ}"


class Member:
    """One processor's state stores, with the producer that writes their changelog records."""

    def __init__(self, settings: Settings, folder: Path) -> None:
        mine = settings.model_copy(update={"processor_store_dir": str(folder)})
        changelog = STATE_CHANGELOG.name(settings.topic_prefix)
        self.producer = BatchProducer(mine)
        self.state = StateStores(mine, changelog, self.producer, SPEC, Bounds(10, 10**12))


def handle(member: Member, partition: int, n: int, value: float) -> dict[str, float]:
    """Run ``n`` of client c in request partition ``partition``; waits for its changelog record."""
    state = member.state
    tracker = state.tracker()
    out = state.apply([{"run_id": run_id(n), "client_id": "c"}], [partition], {"bytes": [value]}, tracker)
    assert member.producer.wait(tracker, 30) and not tracker.failed
    return {key: values[0] for key, values in out.items() if values[0] is not None}


def test_a_moved_client_is_computed_against_the_run_its_old_partition_handled(
    apache_kafka: str, unique_name: str, tmp_path: Path
) -> None:
    settings = load_settings(bootstrap_servers=apache_kafka, topic_prefix=f"{unique_name}.", partitions=2)
    create_topics(settings)
    requests = REQUESTS.name(settings.topic_prefix)
    old, new = Member(settings, tmp_path / "old"), Member(settings, tmp_path / "new")
    try:
        old.state.sync([(requests, 1)])
        assert handle(old, 1, 1, 100.0) == {"bytes_reason": float(FIRST_SIGHT)}

        grow_topics(settings, 4)
        new.state.sync([(requests, 3)])  # restored now: run 1 only
        old.state.sync([(requests, 1)])  # the rebalance after the growth: it keeps partition 1
        assert new.state.layout.grown and old.state.layout.grown
        assert handle(old, 1, 2, 160.0) == {"bytes_increase": 60.0, "bytes_reason": 0.0}  # enqueued before

        assert handle(new, 3, 3, 250.0) == {"bytes_increase": 90.0, "bytes_reason": 0.0}  # against run 2
        history = new.state.stores[3].get(b"fleet\x00c")
        assert history is not None and owner_of(history, 1) == 3  # so the old partition never drops it
    finally:
        old.state.close()
        new.state.close()
