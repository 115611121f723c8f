"""kcollect doctor on a real pipeline with nothing consuming: it measures the backlog, the run and the
dead-letter topics, and says to start the processors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.integration.pipeline import make_pipeline

pytestmark = pytest.mark.integration


def test_doctor_json_on_a_waiting_run(
    kafka_bootstrap: str, clickhouse_url: str, unique_name: str, tmp_path: Path
) -> None:
    pipe = make_pipeline(kafka_bootstrap, clickhouse_url, unique_name, tmp_path)
    done = pipe.cli("enqueue", "--run-id", "run-doctor", "--clients", "30", "--no-progress")
    assert done.returncode == 0, done.stderr
    done = pipe.cli("doctor", "--interval", "1", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    stages = {s["stage"]: s for s in report["facts"]["stages"]}
    assert stages["processor"]["lag_after"] == 30 and stages["processor"]["partitions"] == 4
    assert stages["processor"]["oldest_age_seconds"] is not None
    assert stages["sink"]["lag_after"] == 0
    assert report["facts"]["run"] == {"run_id": "run-doctor", "total": 30, "done": 0, "per_s": 0.0}
    assert [d["records"] for d in report["facts"]["dead_letters"]] == [0, 0]
    levels = {f["title"]: f["level"] for f in report["findings"]}
    assert levels[f"processor: group {unique_name}-processor has no active member"] == "warn"
    assert levels["run run-doctor: 30 pending and no progress in the interval"] == "warn"
    assert any(
        level == "act" and title.startswith("processor: 30 records behind") for title, level in levels.items()
    )
    text = pipe.cli("doctor", "--interval", "0.5")
    assert text.returncode == 0 and "[ ACT] processor: 30 records behind" in text.stdout
