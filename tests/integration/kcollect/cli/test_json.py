"""``--json`` on every command that reports something and needs a broker or ClickHouse: one JSON object
on stdout that says what the text says."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.stack_fixtures import database_url

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[4]


def run_json(env: dict[str, str], *args: str) -> Any:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KCOLLECT_")}
    done = subprocess.run(
        [sys.executable, "-m", "kcollect", *args, "--json"],
        cwd=ROOT,
        env=base | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return orjson.loads(lines[0])


def test_json_outputs(kafka_bootstrap: str, clickhouse_url: str, unique_name: str) -> None:
    env = {
        "KCOLLECT_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "KCOLLECT_CLICKHOUSE_URL": database_url(clickhouse_url, unique_name),
        "KCOLLECT_TOPIC_PREFIX": f"{unique_name}.",
        "KCOLLECT_PARTITIONS": "2",
        "KCOLLECT_LOG_FORMAT": "text",
    }
    created = run_json(env, "topics", "create")
    assert created["created"] and set(created["created"]) <= set(created["declared"])
    assert all(name.startswith(f"{unique_name}.") for name in created["declared"])
    assert run_json(env, "topics", "create")["created"] == []  # idempotent, and says so

    migrated = run_json(env, "db", "migrate")
    assert migrated["ready"] is True and migrated["database"] == unique_name

    window = ["--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T02:00:00Z"]
    schedule = ["--name", "nightly", "--every", "1h", "--clients", "3"]
    slots = run_json(env, "scheduler", "backfill", *schedule, *window, "--dry-run")
    assert slots["schedule"] == "nightly" and slots["dry_run"] is True
    assert [s["run_id"] for s in slots["slots"]] == [
        "nightly-20260101T000000Z",
        "nightly-20260101T010000Z",
        "nightly-20260101T020000Z",
    ]
    assert run_json(env, "scheduler", "pause", "nightly") == {"schedule": "nightly", "paused": True}
    assert run_json(env, "scheduler", "resume", "nightly") == {"schedule": "nightly", "paused": False}
