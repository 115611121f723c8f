"""The SIGSEGV of issue 15, deterministically: one NOT_COORDINATOR answer to an OffsetFetch.

librdkafka (2.16) handles that answer to the AdminClient's ListConsumerGroupOffsets by queueing a
coordinator query on the consumer-group handle an AdminClient does not have (librdkafka #5040): its
main thread dereferences NULL and the process dies with SIGSEGV. faulthandler is on and prints nothing,
since librdkafka's threads block every signal and the kernel then kills without running a handler. A
fresh broker's coordinator (the processor's lag gate at start-up) and a coordinator that just moved
give that answer by chance; librdkafka's mock cluster (tests/librdkafka_mock.py) gives it on demand.

``streams.kafka.committed`` (a consumer of the group, which has the handle) gets the same answers as
exceptions, asks again while they pass, and raises once they outlast its timeout. The first test fails
the day librdkafka fixes the bug: then the reader may go back to the AdminClient, and
docs/reliability.md is to be revisited.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[4]

PRELUDE = textwrap.dedent(
    """
    import faulthandler, sys
    faulthandler.enable()
    sys.path.insert(0, {root!r})
    from tests.librdkafka_mock import NOT_COORDINATOR, OFFSET_FETCH, start_mock_cluster
    cluster = start_mock_cluster()
    cluster.create_topic("t", 2)
    cluster.push_errors(OFFSET_FETCH, *[NOT_COORDINATOR] * {answers})
    """
)

ADMIN = """
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient
admin = AdminClient({"bootstrap.servers": cluster.bootstrap})
request = ConsumerGroupTopicPartitions("g", [TopicPartition("t", 0)])
try:
    print("answer", admin.list_consumer_group_offsets([request])["g"].result(30))
except Exception as exc:
    print("raised", exc)
print("survived")
"""

READER = """
from confluent_kafka import KafkaException
from streams.kafka.committed import CommittedOffsets
from streams.settings.model import load_settings
reader = CommittedOffsets(load_settings(bootstrap_servers=cluster.bootstrap))
try:
    print("answer", reader.read("g", [("t", 0), ("t", 1)], {timeout}))
except KafkaException as exc:
    print("raised", exc)
reader.close()
print("survived")
"""


def _run(body: str, answers: int = 3) -> subprocess.CompletedProcess[str]:
    program = PRELUDE.format(root=str(ROOT), answers=answers) + body
    return subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_admin_offset_listing_segfaults_on_not_coordinator_without_a_python_trace() -> None:
    done = _run(ADMIN)
    assert done.returncode == -signal.SIGSEGV, (
        f"librdkafka #5040 fixed? exit {done.returncode}: {done.stdout}{done.stderr}"
    )
    assert "survived" not in done.stdout
    assert "Fatal Python error" not in done.stderr  # faulthandler could not run in librdkafka's thread


def test_committed_offsets_reader_asks_again_while_the_coordinator_is_away() -> None:
    done = _run(READER.format(timeout=30))
    assert done.returncode == 0, f"exit {done.returncode}: {done.stdout}{done.stderr[-3000:]}"
    assert "answer {}" in done.stdout and "survived" in done.stdout  # nothing committed in group g


def test_committed_offsets_reader_raises_once_the_coordinator_stays_away() -> None:
    done = _run(READER.format(timeout=2), answers=100_000)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stdout}{done.stderr[-3000:]}"
    assert "raised" in done.stdout and "NOT_COORDINATOR" in done.stdout and "survived" in done.stdout
