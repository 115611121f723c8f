"""The peers' per-request work yields what kcollect's processor would: a valid ClientResult with every
simulated metric and the built-in summary of them."""

from __future__ import annotations

from bench.peer_work import METRICS, collect_one
from processors.processor.compute import summary
from schemas.codec import decode
from schemas.models import ClientResult


def test_one_request_gives_a_valid_result_of_every_metric() -> None:
    request = {"run_id": "r-1", "client_id": "c-7", "requested_at_ms": 1_700_000_000_000}
    result = decode(ClientResult, collect_one(request))
    assert (result.run_id, result.client_id, result.status, result.attempt) == ("r-1", "c-7", "ok", 0)
    assert set(result.metrics) == set(METRICS) and len(METRICS) > 0
    assert result.computed == summary(dict(result.metrics))
    assert collect_one(request) != collect_one({**request, "client_id": "c-8"})
