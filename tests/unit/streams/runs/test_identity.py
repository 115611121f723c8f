"""Run identity: deterministic run ids from a schedule, and manifests reused across re-runs."""

from __future__ import annotations

import io

import pytest

from producers.enqueue.progress import LogReporter
from schemas.codec import encode_record, request_encoder, request_record
from streams.runs.identity import finished, resolve_run_id, run_manifest, scheduled_run_id


def test_scheduled_run_id_is_deterministic_utc() -> None:
    assert scheduled_run_id("nightly", "2026-11-23T12:00:00Z") == "nightly-20261123T120000Z"
    assert scheduled_run_id("nightly", "2026-11-23T13:00:00+01:00") == "nightly-20261123T120000Z"
    assert scheduled_run_id("nightly", "2026-11-23 12:00") == "nightly-20261123T120000Z"  # no offset: UTC
    with pytest.raises(ValueError, match="ISO-8601"):
        scheduled_run_id("nightly", "tomorrow")
    with pytest.raises(ValueError, match="run id"):
        scheduled_run_id("bad name", "2026-11-23T12:00:00Z")


def test_resolve_run_id() -> None:
    assert resolve_run_id("r-1", None, None) == "r-1"
    assert resolve_run_id(None, "s", "2026-01-02T03:04:05Z") == "s-20260102T030405Z"
    for args in ((None, None, None), (None, "s", None), ("r", "s", "2026-01-02")):
        with pytest.raises(ValueError):
            resolve_run_id(*args)


def test_a_rerun_reuses_the_request_time_so_requests_are_byte_identical() -> None:
    first = run_manifest("r-1", "range 0-9", None, requested_at_ms=1_700_000_000_000)
    assert first.status == "enqueueing" and first.requested_at_ms == 1_700_000_000_000
    again = run_manifest("r-1", "range 0-9", finished(first, "failed", None))
    assert (again.requested_at_ms, again.created_at_ms, again.status) == (
        first.requested_at_ms,
        first.created_at_ms,
        "enqueueing",
    )
    done = finished(again, "enqueued", 10)
    assert done.status == "enqueued" and done.total == 10 and done.finished_at_ms is not None
    encode = request_encoder("r-1", again.requested_at_ms)
    assert encode("7") == encode_record(request_record("r-1", "7", first.requested_at_ms))


def test_log_reporter_lines_show_throttling() -> None:
    out = io.StringIO()
    reporter = LogReporter(out, interval=3600)
    reporter.start("r-1", 100)
    reporter.advance(10, 9)
    assert out.getvalue() == ""  # not yet: one line per interval
    reporter.throttled("processor lag 5 >= max 5")
    reporter.throttled(None)
    reporter.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 3
    assert "read 10/100, enqueued 9" in lines[0] and "THROTTLED: processor lag 5 >= max 5" in lines[0]
    assert "THROTTLED" not in lines[1]


def test_a_deadline_is_an_absolute_time_or_a_duration_after_the_request_time() -> None:
    from producers.scheduler.schedule import parse_deadline

    requested = 1_700_000_000_000  # 2023-11-14T22:13:20Z
    assert parse_deadline("2h").resolve(requested) == requested + 7_200_000
    assert parse_deadline("1h30m").resolve(requested) == requested + 5_400_000
    assert parse_deadline("2023-11-15T00:00:00Z").resolve(requested) == 1_700_006_400_000
    assert parse_deadline("2023-11-15T01:00:00+01:00").resolve(requested) == 1_700_006_400_000
    assert parse_deadline("2023-11-15 00:00").resolve(requested) == 1_700_006_400_000  # no offset: UTC
    for bad in ("soon", "-5m", "0s"):
        with pytest.raises(ValueError, match="--deadline"):
            parse_deadline(bad)
    with pytest.raises(ValueError, match="after the run's request time"):
        parse_deadline("2023-11-14T00:00:00Z").resolve(requested)


def test_the_deadline_goes_into_the_manifest_and_every_request_and_a_rerun_keeps_it() -> None:
    from producers.scheduler.schedule import parse_deadline

    requested = 1_700_000_000_000
    first = run_manifest("r-1", "range 0-9", None, requested, parse_deadline("30m"))
    assert first.deadline_ms == requested + 1_800_000
    again = run_manifest("r-1", "range 0-9", finished(first, "failed", None), None, parse_deadline("2h"))
    assert again.deadline_ms == first.deadline_ms  # the first enqueue fixed it: requests stay identical
    encode = request_encoder("r-1", requested, deadline_ms=first.deadline_ms)
    expected = request_record("r-1", "7", requested) | {"deadline_ms": requested + 1_800_000}
    assert encode("7") == encode_record(expected)
    assert run_manifest("r-2", "range 0-9", None, requested).deadline_ms is None
