"""The randomized fault campaign (Jepsen-style): one test per seed, each a run of 10,000 clients on 4
partitions under the seed's schedule of faults (``tests/chaos/schedule.py``), judged at the end by the
run checker and the dead-letter topics (``tests/chaos/runner.py``).

A failing seed prints its schedule as JSON and the command that replays it. ``CHAOS_RESULTS``
names a file each seed appends its one-line JSON summary to (``make chaos`` sets it).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from tests.chaos.runner import Campaign, ChaosStack
from tests.chaos.schedule import Schedule, make_schedule
from tests.drills.kit import Broker, ClickHouse


def schedule_for(seed: int) -> Schedule:
    path = os.environ.get("CHAOS_SCHEDULE")
    return Schedule.from_json(Path(path).read_text()) if path else make_schedule(seed)


def record(summary: dict[str, object]) -> None:
    path = os.environ.get("CHAOS_RESULTS")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps(summary, default=str) + "\n")


@pytest.mark.chaos
@pytest.mark.timeout(900)  # a stuck seed waits out its settle timeouts and prints its schedule
def test_seed(seed: int, tmp_path: Path, chaos_clickhouse: ClickHouse, chaos_broker: Broker) -> None:
    schedule = schedule_for(seed)
    replay = f"pytest tests/chaos --seed {schedule.seed}  (or CHAOS_SCHEDULE=FILE with the JSON)"
    print(f"seed {schedule.seed} schedule:\n{schedule.to_json()}")
    campaign = Campaign(ChaosStack(chaos_broker, chaos_clickhouse), schedule, tmp_path / "deployment")
    started = time.monotonic()
    summary: dict[str, object] = {"seed": schedule.seed, "problems": ["interrupted"]}
    try:
        campaign.play()
        summary = campaign.verdict()
    except Exception as exc:  # an interrupt (Ctrl-C, SIGTERM) goes on up: pytest stops, teardown runs
        summary = {"seed": schedule.seed, "problems": [f"{type(exc).__name__}: {exc}"]}
        raise AssertionError(
            f"seed {schedule.seed} failed: {exc}\nreplay: {replay}\nschedule:\n{schedule.to_json()}\n"
            "timeline:\n" + "\n".join(campaign.timeline)
        ) from exc
    finally:
        summary["wall_seconds"] = round(time.monotonic() - started, 1)
        summary["broker"] = chaos_broker.kind
        record(summary)
        campaign.stop_everything()
    print("timeline:\n" + "\n".join(campaign.timeline))
    print(json.dumps(summary, default=str))
    assert not summary["problems"], (
        f"seed {schedule.seed} failed: {summary['problems']}\nreplay: {replay}\n"
        f"schedule:\n{schedule.to_json()}\ntimeline:\n"
        + "\n".join(campaign.timeline)
        + f"\nsummary: {json.dumps(summary, default=str)[:6000]}"
    )
