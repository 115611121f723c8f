"""``streams.kafka.committed.CommittedOffsets`` on both brokers: a group's committed offsets read back
exactly, partitions without a commit left out, a group that never committed answers nothing, and the
reader neither joins nor commits (the group stays empty, its offsets unchanged)."""

from __future__ import annotations

import pytest
from confluent_kafka.admin import AdminClient

from streams.kafka.committed import CommittedOffsets
from streams.lag.discovery import describe_groups
from tests.integration.lagkit import commit, lag_settings, make_topic

pytestmark = pytest.mark.integration


@pytest.fixture(params=["session", "tansu"])
def bootstrap(request: pytest.FixtureRequest) -> str:
    name = "kafka_bootstrap" if request.param == "session" else "tansu_broker"
    return str(request.getfixturevalue(name))


def test_committed_offsets_read_back_without_touching_the_group(bootstrap: str, unique_name: str) -> None:
    topic, group = f"{unique_name}.t", f"{unique_name}-g"
    make_topic(bootstrap, topic, 3)
    commit(bootstrap, group, {(topic, 0): 5, (topic, 2): 7})
    reader = CommittedOffsets(lag_settings(bootstrap, f"{unique_name}."))
    partitions = [(topic, p) for p in range(3)]
    try:
        assert reader.read(group, partitions, 30) == {(topic, 0): 5, (topic, 2): 7}
        assert reader.read(group, partitions, 30) == {(topic, 0): 5, (topic, 2): 7}  # the kept consumer
        assert reader.read(f"{group}-never", partitions, 30) == {}
        assert reader.read(group, [], 30) == {}
        info = describe_groups(AdminClient({"bootstrap.servers": bootstrap}), [group], 10)[group]
        assert not info.members, info  # no member: the reader never joined
    finally:
        reader.close()
    commit(bootstrap, group, {(topic, 1): 3})
    again = CommittedOffsets(lag_settings(bootstrap, f"{unique_name}."))
    try:
        assert again.read(group, partitions, 30) == {(topic, 0): 5, (topic, 1): 3, (topic, 2): 7}
    finally:
        again.close()
