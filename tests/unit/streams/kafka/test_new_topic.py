"""``streams.kafka.admin.new_topic``: the replication settings reach every topic creation request."""

from __future__ import annotations

import pytest

from schemas.topics import ALL_TOPICS, REQUESTS, RUNS
from streams.kafka.admin import new_topic
from streams.settings.model import load_settings
from streams.settings.names import SettingsError

BOOTSTRAP = "127.0.0.1:9092"


def test_unset_replication_leaves_the_broker_defaults() -> None:
    settings = load_settings(bootstrap_servers=BOOTSTRAP)
    request = new_topic(settings, REQUESTS)
    assert request.replication_factor == -1
    assert "min.insync.replicas" not in request.config
    assert request.config == REQUESTS.config


def test_replication_settings_apply_to_every_declared_topic() -> None:
    settings = load_settings(
        bootstrap_servers=BOOTSTRAP, topic_replication_factor=3, topic_min_insync_replicas=2, partitions=5
    )
    for spec in ALL_TOPICS:
        request = new_topic(settings, spec)
        assert request.replication_factor == 3, spec.suffix
        assert request.config["min.insync.replicas"] == "2", spec.suffix
        assert request.num_partitions == spec.partition_count(5)
        assert {k: request.config[k] for k in spec.config} == spec.config  # the topic's own config kept
    assert new_topic(settings, RUNS).config["cleanup.policy"] == "compact"


def test_min_insync_above_the_replication_factor_is_refused() -> None:
    with pytest.raises(SettingsError, match="KCOLLECT_TOPIC_MIN_INSYNC_REPLICAS"):
        load_settings(bootstrap_servers=BOOTSTRAP, topic_replication_factor=1, topic_min_insync_replicas=2)
