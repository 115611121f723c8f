"""Run completion arithmetic (streams.runs.status.summarize): stored + dead-lettered = total."""

from __future__ import annotations

from schemas.client_set import digest_of, to_hex
from schemas.models import EnqueueTotal, RunManifest
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


def with_set(clients: list[str]) -> RunManifest:
    digest = to_hex(digest_of(clients))
    entry = EnqueueTotal(
        source="t", clients=len(clients), digest=digest, union_clients=len(clients), union_digest=digest,
        finished_at_ms=0,
    )  # fmt: skip
    return manifest(total=len(clients)).model_copy(update={"enqueues": (entry,)})


def test_set_check_counts_only_clients_of_the_set() -> None:
    clients = [str(i) for i in range(10)]
    stored = clients[:9]
    garbage = {"junk"}  # a result that did not decode, naming the run: no client of it
    p = summarize(
        "r1",
        with_set(clients),
        9,
        set(),
        garbage,
        set(),
        undecodable=garbage,
        stored_digest=digest_of(stored),
    )
    assert (p.complete, p.pending, p.dead_lettered, p.unmatched, p.checked_by) == (False, 1, 0, 1, "set")
    late = {"9", "junk"}  # client 9's result did not decode either: it is the missing one
    p = summarize(
        "r1", with_set(clients), 9, set(), late, set(), undecodable=late, stored_digest=digest_of(stored)
    )
    assert (p.complete, p.pending, p.dead_lettered, p.unmatched) == (True, 0, 1, 1)


def test_same_count_other_clients_is_not_complete() -> None:
    clients = [str(i) for i in range(10)]
    others = [*clients[:9], "x"]
    p = summarize("r1", with_set(clients), 10, set(), set(), set(), stored_digest=digest_of(others))
    assert not p.complete and p.checked_by == "set"


def test_expired_dead_letters_are_counted() -> None:
    p = summarize("r1", manifest(total=3), 1, {"a", "b"}, set(), set(), expired={"a", "b"})
    assert (p.expired, p.complete) == (2, True)
