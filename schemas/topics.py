"""Every Kafka topic kcollect uses, declared once: name, partitions, key and retention or compaction.

Names are ``<prefix><suffix>``; the prefix is a setting (``KCOLLECT_TOPIC_PREFIX``, default
``kcollect.``) so that tests and several deployments can share one cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    """One declared topic."""

    suffix: str
    partitions: int | None  # None: the deployment's ``partitions`` setting (the data topics scale with it)
    key: str
    description: str
    config: dict[str, str] = field(default_factory=dict)

    def name(self, prefix: str) -> str:
        return f"{prefix}{self.suffix}"

    def partition_count(self, default: int) -> int:
        return default if self.partitions is None else self.partitions


REQUESTS = TopicSpec(
    "requests",
    None,
    "client_id",
    "one collection request per client per run",
    {"retention.ms": str(7 * DAY_MS)},
)
RESULTS = TopicSpec(
    "results",
    None,
    "none: partition = request partition",
    "result batches (schemas/result_batch.py): up to 1,000 clients' results per record",
    {"retention.ms": str(7 * DAY_MS)},
)
RUNS = TopicSpec(
    "runs", 1, "run_id", "run manifests; the last record per run id wins", {"cleanup.policy": "compact"}
)
REQUESTS_RETRY = TopicSpec(
    "requests.retry",
    None,
    "client_id",
    "requests waiting for a later attempt",
    {"retention.ms": str(7 * DAY_MS)},
)
REQUESTS_DLQ = TopicSpec(
    "requests.dlq", 1, "client_id", "requests that could not be collected", {"retention.ms": str(30 * DAY_MS)}
)
RESULTS_DLQ = TopicSpec(
    "results.dlq", 1, "client_id", "results that could not be stored", {"retention.ms": str(30 * DAY_MS)}
)

SCHEDULER_LOCK = TopicSpec(
    "scheduler.lock",
    1,
    "pause:<schedule>",
    "`kcollect scheduler`: its consumer group's owner of partition 0 is the leader; pause/resume records",
    {"cleanup.policy": "compact"},
)

STATE_CHANGELOG = TopicSpec(
    "state.clients.changelog",
    None,
    "<schedule> NUL <client_id> (NUL alone after the schedule: its run clock)",
    "the processor's per-client state (processors/processor/state/): one partition per requests partition",
    {"cleanup.policy": "compact"},
)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    REQUESTS,
    RESULTS,
    RUNS,
    REQUESTS_RETRY,
    REQUESTS_DLQ,
    RESULTS_DLQ,
    SCHEDULER_LOCK,
    STATE_CHANGELOG,
)
