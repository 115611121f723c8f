"""A processor builds a fresh chain at every rebalance: the chains it dropped must not be kept alive
(their counts live on in the processor's totals)."""

from __future__ import annotations

import gc
import weakref

import pytest
from confluent_kafka import Consumer

from processors.processor.config import load_config
from processors.processor.service import Processor
from streams.kafka.admin import create_topics
from streams.kafka.producer import BatchProducer
from streams.settings.librdkafka import consumer_config
from streams.settings.model import load_settings

pytestmark = pytest.mark.integration


def test_rebalances_do_not_keep_old_chains_alive(kafka_bootstrap: str, unique_name: str) -> None:
    settings = load_settings(bootstrap_servers=kafka_bootstrap, topic_prefix=f"{unique_name}.")
    create_topics(settings)
    producer = BatchProducer(settings)
    processor = Processor(settings, load_config(None), producer)
    consumer = Consumer(consumer_config(settings, f"{unique_name}-g"))

    def commit(offsets: dict[tuple[str, int], int]) -> None:
        pass  # nothing is consumed here

    try:
        produce_steps = []
        for _ in range(5):  # as five rebalances would
            chain = processor.chain(commit)
            produce_steps.append(weakref.ref(chain.next_step.next_step))  # type: ignore[attr-defined]
            chain.close()
            del chain
        gc.collect()
        assert sum(ref() is not None for ref in produce_steps) == 0
        assert processor.stats()["results"] == 0
    finally:
        consumer.close()
        processor.close()
        producer.flush(5)
