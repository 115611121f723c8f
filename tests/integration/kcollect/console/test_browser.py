"""The console in a real browser (headless Chromium through chromedriver, Selenium) against a running
pipeline: the runs page shows a run's progress moving while it drains; a run with dead letters shows
them and a replay from the page re-enqueues them until the run is stored whole; the lag page shows a
partition stalling when its consumer stops; the token check refuses an action. Each test saves a
screenshot of its page: into the folder named by KCOLLECT_TEST_SCREENSHOTS when set (docs/console/ for
docs/console.md), else into the session's temporary folder, so a test run leaves the tree alone.

Without chromium and chromedriver the tests skip, except in CI (CI=true), where they fail.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka import Producer

from kcollect.localstack.ports import free_port
from producers.scheduler.lock import publish_spec
from schemas.codec import encode
from schemas.models import CollectionRequest, RunManifest
from schemas.topics import REQUESTS, RUNS
from tests.integration.pipeline import Pipeline, make_pipeline

pytestmark = pytest.mark.integration
SCREENSHOTS_VARIABLE = "KCOLLECT_TEST_SCREENSHOTS"
T = TypeVar("T")


def browser_tools() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        reason = (
            "chromium and chromedriver are needed (apt-get install chromium chromium-driver; make browser)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return chromium, driver


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    chromium, driver = browser_tools()
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--lang=en"):  # fmt: skip
        options.add_argument(argument)
    chrome = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    chrome.set_page_load_timeout(60)
    try:
        yield chrome
    finally:
        chrome.quit()


@pytest.fixture(scope="module")
def pipe(
    kafka_bootstrap: str, clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    name = f"console{os.getpid()}"
    workdir = tmp_path_factory.mktemp("console")
    pipeline = make_pipeline(kafka_bootstrap, clickhouse_url, name, workdir, KCOLLECT_SIM_LATENCY_MS="300")
    try:
        pipeline.start("processor")
        pipeline.start("sink")
        pipeline.wait_ready("processor", "sink")
        yield pipeline
    finally:
        pipeline.kill_all()


def start_console(pipe: Pipeline, name: str, token: str | None = None) -> str:
    port = free_port()
    env = {"KCOLLECT_CONSOLE_TOKEN": token} if token else {}
    pipe.launch(name, ["console", "--port", str(port), "--lag-interval", "0.5"], ready=False, env=env)
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: get_json(f"{base}/api/schedules") is not None, 60, f"{name} answers")
    return base


@pytest.fixture(scope="module")
def console(pipe: Pipeline) -> str:
    return start_console(pipe, "console")


def get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=30) as answer:
            return json.loads(answer.read())
    except (OSError, urllib.error.URLError):
        return None


def post(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for(check: Callable[[], T], timeout: float, what: str) -> T:
    """``check()`` once it is truthy; an element replaced by the page's live refresh counts as not yet."""
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except StaleElementReferenceException:
            value = None  # type: ignore[assignment]
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


_shots: list[Path] = []


@pytest.fixture(scope="module", autouse=True)
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> None:
    given = os.environ.get(SCREENSHOTS_VARIABLE)
    _shots[:] = [Path(given) if given else tmp_path_factory.mktemp("screenshots")]


def shot(browser: Any, name: str) -> None:
    folder = _shots[0]
    folder.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(folder / f"{name}.png"))


def run_row(browser: Any, run_id: str) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        row = browser.find_element("css selector", f'tr[data-run="{run_id}"]')
        return {
            "stored": int(row.get_attribute("data-stored")),
            "complete": row.get_attribute("data-complete"),
        }
    except (NoSuchElementException, StaleElementReferenceException):
        return None


def test_runs_page_shows_progress_moving_while_a_run_drains(
    pipe: Pipeline, console: str, browser: Any
) -> None:
    clients = 30000
    done = pipe.cli("enqueue", "--run-id", "drain-1", "--clients", str(clients), "--no-progress")
    assert done.returncode == 0, done.stderr
    browser.get(f"{console}/runs")
    seen: list[int] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        row = run_row(browser, "drain-1")
        if row is not None:
            if not seen or row["stored"] != seen[-1]:
                seen.append(row["stored"])
            if 0 < row["stored"] < clients and len(seen) == 2:
                shot(browser, "runs")
            if row["complete"] == "true":
                break
        time.sleep(0.3)  # the page refreshes itself every 2 s (live): no reload here
    assert seen and seen[-1] == clients, seen
    assert seen == sorted(seen), seen
    assert any(0 < value < clients for value in seen), f"no intermediate progress shown: {seen}"
    run = next(r for r in get_json(f"{console}/api/runs")["runs"] if r["run_id"] == "drain-1")
    assert run["complete"] and run["stored"] == clients and run["finished"] and run["duration_s"] > 0
    assert set(run["shares"]) == {"ok", "partial", "dead_lettered", "pending"}
    listed = pipe.cli("runs", "list", "--json")  # the CLI reports the same row, times and ok/partial split
    assert listed.returncode == 0, listed.stderr
    cli_row = next(r for r in map(json.loads, listed.stdout.splitlines()) if r["run_id"] == "drain-1")
    same = ("stored", "ok", "partial", "started", "finished", "duration_s", "complete")
    assert {k: cli_row[k] for k in same} == {k: run[k] for k in same}
    assert cli_row["ok"] + cli_row["partial"] == clients
    text = pipe.cli("runs", "list").stdout
    assert f"stored {clients:,} (ok {cli_row['ok']:,}, partial {cli_row['partial']:,})" in text
    assert f"started {run['started']}, finished {run['finished']}" in text


def produce_run_with_expired_requests(pipe: Pipeline, run_id: str, clients: int, expired: int) -> None:
    """A run's manifest and requests, the first ``expired`` of them past their deadline already."""
    settings = pipe.settings
    now = int(time.time() * 1000)
    producer = Producer({"bootstrap.servers": settings.kafka_bootstrap()})
    manifest = RunManifest(run_id=run_id, source="test", status="enqueued", total=clients,
                           requested_at_ms=now, created_at_ms=now, finished_at_ms=now)  # fmt: skip
    producer.produce(RUNS.name(settings.topic_prefix), encode(manifest), run_id.encode())
    for i in range(clients):
        deadline = now - 60_000 if i < expired else None
        request = CollectionRequest(
            run_id=run_id, client_id=f"c{i}", requested_at_ms=now, deadline_ms=deadline
        )
        producer.produce(REQUESTS.name(settings.topic_prefix), encode(request), f"c{i}".encode())
    assert producer.flush(30) == 0


def test_dead_letters_shown_and_replayed_from_the_page(pipe: Pipeline, console: str, browser: Any) -> None:
    from selenium.webdriver.support.ui import Select

    produce_run_with_expired_requests(pipe, "dlq-1", 200, 20)
    browser.get(f"{console}/runs/dlq-1")

    def expired_group() -> Any:
        groups = browser.find_elements("css selector", 'div.dlq[data-stage="deadline"]')
        return groups[0].get_attribute("data-open") == "20" and groups[0].text

    text = wait_for(expired_group, 120, "20 expired dead letters on the run page")
    assert "DeadlineExpired" in text and "not stored since" in text
    wait_for(lambda: browser.find_element("id", "stored").text == "180", 120, "the other 180 stored")
    shot(browser, "run")
    form = browser.find_element("id", "replay")
    Select(form.find_element("name", "stage")).select_by_visible_text("deadline")
    form.find_element("css selector", "button").click()
    alert = wait_for(lambda: _alert(browser), 30, "the replay confirmation")
    assert "Replay 20 dead-lettered request(s) of dlq-1" in alert.text
    alert.accept()
    wait_for(
        lambda: "replayed 20 request(s), 0 failed" in browser.find_element("id", "message").text, 60, "replay"
    )
    wait_for(lambda: browser.find_element("id", "stored").text == "200", 120, "the replayed requests stored")
    rates = browser.find_element("id", "rates").text  # per-stage rates over the last minute
    assert float(re.search(r"\bstored ([\d.,]+)/s", rates).group(1).replace(",", "")) > 0, rates  # type: ignore[union-attr]
    run = get_json(f"{console}/api/runs/dlq-1")
    assert run["run"]["stored"] == 200 and run["run"]["complete"] and run["run"]["dead_lettered"] == 0
    assert [g["open"] for g in run["dead_letters"]] == [0]  # the dead letters stay, none is open any more
    browser.find_element("id", "verify").click()  # the run checker's report, on the page
    report = wait_for(
        lambda: (t := browser.find_element("id", "message").text).startswith(("OK", "FAILED")) and t,
        120,
        "report",
    )
    expected = "OK: stored 200 of 200, dead-lettered 0, lost 0, duplicated under FINAL 0"
    assert report.startswith(expected), report
    assert "console action verify dlq-1" in pipe.log("console")
    assert "console action replay dlq-1" in pipe.log("console")


def _alert(browser: Any) -> Any:
    from selenium.common.exceptions import NoAlertPresentException

    try:
        return browser.switch_to.alert
    except NoAlertPresentException:
        return None


def test_actions_refuse_a_missing_token_and_cross_site_requests(
    pipe: Pipeline, console: str, browser: Any
) -> None:
    publish_spec(pipe.settings, "nightly", "1h", None, "every 1h")
    guarded = start_console(pipe, "console-token", token="s3cret-token")
    browser.get(f"{guarded}/schedules")
    row = wait_for(
        lambda: browser.find_elements("css selector", 'tr[data-schedule="nightly"]'), 30, "the schedule"
    )
    assert "every 1h" in row[0].text and "active" in row[0].text
    row[0].find_element("css selector", "button").click()  # no token typed in
    wait_for(
        lambda: "refused: a valid token is needed" in browser.find_element("id", "message").text,
        30,
        "refusal",
    )
    assert "s3cret-token" not in browser.page_source
    browser.find_element("id", "token").send_keys("s3cret-token\t")
    browser.find_element("css selector", 'tr[data-schedule="nightly"] button').click()
    wait_for(lambda: "schedule nightly paused" in browser.find_element("id", "message").text, 30, "pause")
    wait_for(
        lambda: browser.find_elements("css selector", 'tr[data-schedule="nightly"][data-paused="true"]'),
        30,
        "paused",
    )
    assert "s3cret-token" not in browser.page_source
    assert "console action pause nightly" in pipe.log("console-token")
    host = guarded.removeprefix("http://")
    json_type = {"Content-Type": "application/json", "X-Kcollect-Token": "s3cret-token"}
    status, _ = post(
        f"{guarded}/api/schedules/nightly/resume", {}, json_type | {"Origin": "http://evil.example"}
    )
    assert status == 403
    status, _ = post(
        f"{guarded}/api/schedules/nightly/resume", {}, json_type | {"Sec-Fetch-Site": "cross-site"}
    )
    assert status == 403
    status, _ = post(
        f"{guarded}/api/schedules/nightly/resume",
        {},
        {"Content-Type": "text/plain", "X-Kcollect-Token": "s3cret-token"},
    )
    assert status == 415
    status, body = post(
        f"{guarded}/api/schedules/nightly/resume", {}, json_type | {"Origin": f"http://{host}"}
    )
    assert (status, body) == (200, {"schedule": "nightly", "paused": False})
    assert "refused" in pipe.log("console-token")


def test_schedules_page_shows_a_running_schedulers_leader_and_slots(
    pipe: Pipeline, console: str, browser: Any
) -> None:
    argv = ["scheduler", "run", "--name", "live", "--every", "2s", "--clients", "0-9", "--tick", "0.2"]
    pipe.launch("scheduler", argv, ready=False)
    try:

        def shown() -> list[str] | None:
            browser.get(f"{console}/schedules")  # the schedules page does not refresh itself
            rows = browser.find_elements("css selector", 'tr[data-schedule="live"]')
            cells = [c.text for c in rows[0].find_elements("css selector", "td")] if rows else []
            return cells if len(cells) > 6 and cells[2] != "-" and cells[4] != "-" else None

        cells = wait_for(shown, 60, "the scheduler's leader and last slot")
        period, last, upcoming, leader, state = cells[1:6]
        assert period == "every 2s" and state == "active"
        assert last < upcoming, cells  # ISO times of the same zone sort as times
        assert "@" in leader, leader  # client id @ host of the lock group's member
        shot(browser, "schedules")
        [row] = [s for s in get_json(f"{console}/api/schedules")["schedules"] if s["schedule"] == "live"]
        assert row["runs"] >= 1 and row["last_slot"] and row["leader"] == leader
    finally:
        pipe.stop("scheduler")


def test_lag_page_shows_a_partition_stalling_when_its_consumer_stops(
    pipe: Pipeline, console: str, browser: Any
) -> None:
    group, topic = pipe.settings.processor_group, REQUESTS.name(pipe.settings.topic_prefix)
    pipe.procs["processor"].send_signal(signal.SIGSTOP)  # a member that freezes: no commits, no leaving
    try:
        done = pipe.cli("enqueue", "--run-id", "stall-1", "--clients", "2000", "--no-progress")
        assert done.returncode == 0, done.stderr
        browser.get(f"{console}/lag")
        selector = f'tr[data-group="{group}"][data-topic="{topic}"]'

        def stalled() -> list[int]:
            rows = browser.find_elements("css selector", selector)
            return [
                int(r.find_element("css selector", "td.lag").text.replace(",", ""))
                for r in rows
                if r.get_attribute("data-status") in ("STALLED", "STOPPED")
            ]

        lags = wait_for(stalled, 90, "a stalled partition of the processors on the lag page")
        assert max(lags) > 0
        shot(browser, "lag")
        lag = get_json(f"{console}/api/lag")
        assert lag["partitions"][0]["status"] in ("STALLED", "STOPPED")  # worst first
        assert any(g["group"] == group and g["status"] in ("STALLED", "STOPPED") for g in lag["groups"])
    finally:
        pipe.procs["processor"].send_signal(signal.SIGCONT)
    wait_for(
        lambda: pipe.stored("stall-1", final=True) == 2000, 180, "the run stored once the processor thaws"
    )
