"""Partition owners from describe_consumer_groups: Apache Kafka lists members and their assignments;
Tansu answers the state with no members ("unknown" owners); an empty group has no owner."""

from __future__ import annotations

from typing import Any

from confluent_kafka import ConsumerGroupState, Node, TopicPartition
from confluent_kafka.admin import ConsumerGroupDescription, MemberAssignment, MemberDescription

from streams.lag.discovery import NO_OWNER, UNKNOWN_OWNER, Owner, group_info


def description(group: str, state: ConsumerGroupState, members: list[MemberDescription]) -> Any:
    return ConsumerGroupDescription(group, False, members, "range", state, Node(1, "h", 9092))


def test_kafka_members_own_their_partitions() -> None:
    members = [
        MemberDescription("m-1", "proc-a", "/10.0.0.1", MemberAssignment([TopicPartition("t", 0)])),
        MemberDescription("m-2", "", "/10.0.0.2", MemberAssignment([TopicPartition("t", 1)])),
    ]
    info = group_info("g", description("g", ConsumerGroupState.STABLE, members))
    assert info.state == "stable" and info.members == 2 and info.consumer_present is True
    assert info.owner("t", 0) == Owner("m-1", "10.0.0.1", "proc-a")
    assert info.owner("t", 1) == Owner("m-2", "10.0.0.2", "")
    assert info.owner("t", 1).label() == "m-2"  # no client id: the member id
    assert info.owner("t", 2) == Owner(UNKNOWN_OWNER, UNKNOWN_OWNER, UNKNOWN_OWNER)  # not assigned


def test_tansu_lists_no_members_and_an_empty_group_has_no_owner() -> None:
    busy = group_info("busy", description("busy", ConsumerGroupState.STABLE, []))
    idle = group_info("idle", description("idle", ConsumerGroupState.EMPTY, []))
    assert busy.members is None and busy.consumer_present is True
    assert busy.owner("t", 0) == Owner(UNKNOWN_OWNER, UNKNOWN_OWNER, UNKNOWN_OWNER)
    assert idle.members == 0 and idle.consumer_present is False
    assert idle.owner("t", 0) == Owner(NO_OWNER, NO_OWNER, NO_OWNER)
