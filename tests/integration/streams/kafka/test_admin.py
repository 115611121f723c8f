"""Topics a service needs: one created a moment after the service asked is found (the brokers' metadata
trails the controller; the fault campaign saw a processor exit 4 right after `topics create`), one
that never comes is named once, after the grace."""

from __future__ import annotations

import threading
import time

import pytest

from schemas.topics import ALL_TOPICS, REQUESTS, REQUESTS_RETRY, RESULTS
from streams.kafka.admin import TOPIC_GRACE_SECONDS, TopicMissingError, create_topics, require_topics
from streams.settings.model import load_settings

pytestmark = pytest.mark.integration


def test_a_topic_created_just_after_the_check_began_is_found(kafka_bootstrap: str, unique_name: str) -> None:
    settings = load_settings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"{unique_name}.")
    names = [spec.name(settings.topic_prefix) for spec in (REQUESTS, REQUESTS_RETRY, RESULTS)]
    creator = threading.Timer(1.0, create_topics, args=(settings,))
    creator.start()
    try:
        counts = require_topics(settings, names)
    finally:
        creator.join(60)
    assert counts == {name: settings.partitions for name in names}


def test_a_topic_that_never_comes_is_named_once(kafka_bootstrap: str, unique_name: str) -> None:
    settings = load_settings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"{unique_name}.")
    create_topics(settings, tuple(spec for spec in ALL_TOPICS if spec is not RESULTS))
    results = RESULTS.name(settings.topic_prefix)
    asked = time.monotonic()
    with pytest.raises(TopicMissingError) as raised:
        require_topics(settings, [REQUESTS.name(settings.topic_prefix), results, results])
    assert time.monotonic() - asked >= TOPIC_GRACE_SECONDS * 0.9  # it did wait for a late creation
    assert str(raised.value) == f"topic(s) {results} do not exist: run `kcollect topics create`"


def test_create_topics_returns_once_the_metadata_lists_them(kafka_bootstrap: str, unique_name: str) -> None:
    settings = load_settings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"{unique_name}.")
    created = create_topics(settings)
    assert sorted(created) == sorted(spec.name(settings.topic_prefix) for spec in ALL_TOPICS)
    assert create_topics(settings) == []  # idempotent
