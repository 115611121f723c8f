"""The console's pure parts: who may act (token, loopback, cross-site checks), escaping of everything the
cluster hands us, the runs page's numbers (shares, ETA, times) and the grouping of dead letters."""

from __future__ import annotations

import pytest

from kcollect.console import pages
from kcollect.console.data import dead_letter_groups, run_row, schedule_of, shares
from kcollect.console.server import ActionGuard, Refused, is_loopback
from kcollect.ops.dlq import DlqRecord
from streams.runs.status import RunProgress

JSON = {"Content-Type": "application/json"}


def progress(total: int | None, stored: int, dead: int, complete: bool = False) -> RunProgress:
    pending = None if total is None else total - stored - dead
    return RunProgress(
        "fleet-20260101T000000Z", "enqueued", total, stored, dead, dead, 0, stored + dead, pending, complete
    )


def test_loopback_addresses() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.1.2.3") and not is_loopback("example.org")


def test_loopback_without_a_token_may_act() -> None:
    ActionGuard(None, "127.0.0.1").check(JSON | {"Host": "127.0.0.1:8088", "Origin": "http://127.0.0.1:8088"})


@pytest.mark.parametrize("addr", ["0.0.0.0", "10.0.0.5", "::"])
def test_beyond_loopback_without_a_token_every_action_is_refused(addr: str) -> None:
    with pytest.raises(Refused, match="KCOLLECT_CONSOLE_TOKEN is not set") as info:
        ActionGuard("", addr).check(JSON | {"X-Kcollect-Token": ""})
    assert info.value.status == 403


def test_a_token_is_required_once_set_even_on_loopback() -> None:
    guard = ActionGuard("s3cret", "127.0.0.1")
    for given in ({}, {"X-Kcollect-Token": "wrong"}, {"X-Kcollect-Token": "s3cre"}):
        with pytest.raises(Refused, match="valid token") as info:
            guard.check(JSON | given)
        assert info.value.status == 401
    guard.check(JSON | {"X-Kcollect-Token": "s3cret"})
    ActionGuard("s3cret", "0.0.0.0").check(JSON | {"X-Kcollect-Token": "s3cret"})


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"Content-Type": "text/plain"}, 415),
        ({"Content-Type": "application/x-www-form-urlencoded"}, 415),
        ({}, 415),
        (JSON | {"Sec-Fetch-Site": "cross-site"}, 403),
        (JSON | {"Sec-Fetch-Site": "same-site"}, 403),
        (JSON | {"Host": "127.0.0.1:8088", "Origin": "http://evil.example"}, 403),
        (JSON | {"Host": "127.0.0.1:8088", "Origin": "http://127.0.0.1:9999"}, 403),
    ],
)
def test_cross_site_requests_are_refused_before_the_token(headers: dict[str, str], status: int) -> None:
    with pytest.raises(Refused) as info:
        ActionGuard("s3cret", "127.0.0.1").check(headers | {"X-Kcollect-Token": "s3cret"})
    assert info.value.status == status


def test_pages_escape_what_the_cluster_hands_us() -> None:
    evil = "<script>alert(1)</script>\"'&"
    record = DlqRecord(
        0, 7, evil.encode(), f"password=hunter2 {evil}".encode(), {"stage": evil, "error_class": "E"}
    )
    groups = dead_letter_groups([record], stored=set())
    row = run_row(progress(10, 5, 1), {}, None, 0) | {"run_id": evil}
    html = pages.run_main({"run": row, "dead_letters": groups, "requests_waiting": []})
    html += pages.runs_main({"runs": [row], "schedules": [evil], "filter": {"schedule": None, "state": None}})
    lag_row = {"group": evil, "topic": evil, "partition": 0, "committed": 1, "end": 2, "lag": 1,
               "lag_seconds": 1.0, "owner": evil, "host": evil, "status": "OK"}  # fmt: skip
    html += pages.lag_main({"partitions": [lag_row], "groups": [], "history": [], "series": [evil]})
    schedule = {"schedule": evil, "describe": evil, "last_slot": None, "next_slot": None, "leader": evil,
                "paused": False, "runs": 1}  # fmt: skip
    html += pages.schedules_main({"schedules": [schedule]})
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "hunter2" not in html  # dead-letter text passes the log redaction too


def test_shares_eta_and_times() -> None:
    running = run_row(progress(100, 40, 10), {"ok": 30, "partial": 10, "first_ms": 0}, None, 50_000)
    assert running["shares"] == {"ok": 0.3, "partial": 0.1, "dead_lettered": 0.1, "pending": 0.5}
    assert running["eta_s"] == 50.0  # 50 done in 50 s since the first row, 50 to go
    assert running["finished"] is None and running["schedule"] == "fleet"
    done = run_row(
        progress(100, 90, 10, complete=True),
        {"ok": 90, "partial": 0, "first_ms": 0, "last_ms": 20_000},
        None,
        99_000,
    )
    assert (
        done["finished"] == "1970-01-01T00:00:20+00:00"
        and done["duration_s"] == 20.0
        and done["eta_s"] is None
    )
    unknown = shares(progress(None, 3, 0), 0)
    assert unknown == {"ok": 1.0, "partial": 0.0, "dead_lettered": 0.0, "pending": 0.0}
    assert schedule_of("fleet-20260101T000000Z") == "fleet" and schedule_of("adhoc-1") is None


def test_dead_letters_grouped_by_stage_and_class_with_open_counts() -> None:
    def record(client: str, stage: str, error: str) -> DlqRecord:
        return DlqRecord(0, 0, client.encode(), b"{}", {"stage": stage, "error_class": error})

    records = [record("a", "fetch", "Timeout"), record("b", "fetch", "Timeout"), record("c", "decode", "Bad")]
    groups = dead_letter_groups(records, stored={"a"}, samples=1)
    assert [(g["stage"], g["error_class"], g["count"], g["open"], len(g["samples"])) for g in groups] == [
        ("fetch", "Timeout", 2, 1, 1),  # most open first, then most in all
        ("decode", "Bad", 1, 1, 1),
    ]


def test_stage_rates_over_the_recent_window() -> None:
    from kcollect.console.data import RateTracker, stage_rates

    assert stage_rates([]) == {"processed": None, "stored": None, "dead_lettered": None}
    tracker = RateTracker()
    row = {"run_id": "r", "processed": 0, "stored": 0, "dead_lettered": 0}
    tracker.observe(row, 0.0)
    assert tracker.observe(row | {"processed": 50, "stored": 40, "dead_lettered": 10}, 10.0) == {
        "processed": 5.0,
        "stored": 4.0,
        "dead_lettered": 1.0,
    }
    later = tracker.observe(row | {"processed": 650, "stored": 640, "dead_lettered": 10}, 100.0)
    assert later == {
        "processed": 6.7,
        "stored": 6.7,
        "dead_lettered": 0.0,
    }  # (650-50) / 90 s: t=0 left the window
