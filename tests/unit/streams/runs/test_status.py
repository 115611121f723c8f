"""Run completion arithmetic (streams.runs.status.summarize): stored + dead-lettered = total."""

from __future__ import annotations

from schemas.models import RunManifest
from streams.runs.status import summarize


def manifest(status: str = "enqueued", total: int | None = 10) -> RunManifest:
    return RunManifest.model_validate(
        {"run_id": "r1", "source": "test", "status": status, "total": total,
         "requested_at_ms": 0, "created_at_ms": 0}
    )  # fmt: skip


def test_complete_when_stored_plus_dead_lettered_reach_the_total() -> None:
    p = summarize("r1", manifest(), 8, {"a"}, {"b"}, set())
    assert (p.total, p.stored, p.dead_lettered, p.processed, p.pending, p.complete) == (10, 8, 2, 10, 0, True)
    assert (p.dead_lettered_requests, p.dead_lettered_results, p.state) == (1, 1, "enqueued")


def test_pending_and_not_complete() -> None:
    p = summarize("r1", manifest(), 5, set(), {"b"}, set())
    assert (p.processed, p.pending, p.complete) == (6, 4, False)


def test_a_client_dead_lettered_in_both_topics_counts_once() -> None:
    p = summarize("r1", manifest(total=3), 2, {"a"}, {"a"}, set())
    assert p.dead_lettered == 1 and p.complete


def test_a_dead_lettered_client_stored_later_is_not_counted_twice() -> None:
    p = summarize("r1", manifest(total=3), 3, {"a"}, set(), {"a"})
    assert p.dead_lettered == 0 and p.processed == 3 and p.complete


def test_total_unknown_without_a_manifest_or_while_enqueueing() -> None:
    assert summarize("r1", None, 10, set(), set(), set()).complete is False
    assert summarize("r1", None, 10, set(), set(), set()).state == "no-manifest"
    enqueueing = summarize("r1", manifest("enqueueing", None), 10, set(), set(), set())
    assert enqueueing.total is None and enqueueing.pending is None and not enqueueing.complete
    failed = summarize("r1", manifest("failed", None), 10, set(), set(), set())
    assert not failed.complete


def test_fallback_total_when_no_manifest() -> None:
    p = summarize("r1", None, 10, set(), set(), set(), fallback_total=10)
    assert p.complete and p.total == 10 and p.as_dict()["run_id"] == "r1"
