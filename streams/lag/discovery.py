"""Consumer groups, their committed offsets and who owns each partition, from the AdminClient.

Several groups are asked at once (one future each). ``describe_consumer_groups`` gives a group's state
and its members' assignments; Tansu answers the state but never the members, so an owner there is
``unknown`` (see ../../shared/local-stack.md), while an empty group has no owner at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import ConsumerGroupState, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from streams.kafka.admin import BrokerUnreachableError
from streams.kafka.committed import CommittedOffsets

UNKNOWN_OWNER = "unknown"
NO_OWNER = "-"
_GONE_STATES = {ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD}


@dataclass(frozen=True)
class Owner:
    """The member that owns a partition: its member id, its client id (``client.id``) and its host."""

    member: str
    host: str
    client_id: str = ""

    def label(self) -> str:
        """The client id, else the member id (what a table has room for)."""
        return self.client_id or self.member


@dataclass
class GroupInfo:
    """What the broker says about one group: state, owners per (topic, partition), member count."""

    group: str
    state: str = "unknown"
    owners: dict[tuple[str, int], Owner] = field(default_factory=dict)
    members: int | None = None  # None: the broker did not list members (Tansu)

    @property
    def consumer_present(self) -> bool | None:
        """False when the group has no active member, True when it has, None when unknown."""
        if self.state in ("empty", "dead"):
            return False
        if self.members:
            return True
        return True if self.state == "stable" else None

    def owner(self, topic: str, partition: int) -> Owner:
        found = self.owners.get((topic, partition))
        if found is not None:
            return found
        if self.consumer_present is False:
            return Owner(NO_OWNER, NO_OWNER, NO_OWNER)
        return Owner(UNKNOWN_OWNER, UNKNOWN_OWNER, UNKNOWN_OWNER)


def list_groups(admin: AdminClient, timeout: float) -> list[str]:
    """Every consumer group id the cluster knows (sorted)."""
    try:
        answer = admin.list_consumer_groups(request_timeout=timeout).result(timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnreachableError(f"could not list consumer groups: {exc}") from None
    return sorted(listing.group_id for listing in answer.valid)


def committed_offsets(
    reader: CommittedOffsets, groups: Iterable[str], partitions: list[tuple[str, int]], timeout: float
) -> dict[str, dict[tuple[str, int], int]]:
    """Group -> (topic, partition) -> committed offset, for each of ``partitions`` the group committed on
    (read through ``streams.kafka.committed``, never the AdminClient's offset listing)."""
    result: dict[str, dict[tuple[str, int], int]] = {}
    for group in groups:
        try:
            result[group] = reader.read(group, partitions, timeout)
        except KafkaException as exc:
            raise BrokerUnreachableError(f"could not read offsets of group {group}: {exc}") from None
    return result


def describe_groups(admin: AdminClient, groups: list[str], timeout: float) -> dict[str, GroupInfo]:
    """Group -> its state and owners; a group the broker cannot describe is left ``unknown``."""
    infos = {group: GroupInfo(group) for group in groups}
    if not groups:
        return infos
    for group, future in admin.describe_consumer_groups(groups, request_timeout=timeout).items():
        try:
            infos[group] = group_info(group, future.result(timeout=timeout))
        except KafkaException:
            continue
    return infos


def group_info(group: str, description: Any) -> GroupInfo:
    """A group's state and partition owners from its ConsumerGroupDescription (pure).

    Apache Kafka lists the members and their assignments; Tansu lists no members (owners stay
    "unknown"); a group in a gone state (empty, dead) has no owner.
    """
    info = GroupInfo(group)
    state = description.state
    info.state = state.name.lower() if isinstance(state, ConsumerGroupState) else str(state).lower()
    info.members = len(description.members) if description.members else None
    if state in _GONE_STATES:
        info.members = 0
    for member in description.members or []:
        owner = Owner(member.member_id, member.host.lstrip("/"), member.client_id or "")
        assigned: list[TopicPartition] = member.assignment.topic_partitions if member.assignment else []
        for tp in assigned:
            info.owners[(tp.topic, tp.partition)] = owner
    return info
