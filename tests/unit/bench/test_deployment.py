"""A deployment's settings are its environment's ``KCOLLECT_*`` settings variables: what is not a field
of ``Settings`` (the state folder, crash points, the log level) stays out."""

from __future__ import annotations

from pathlib import Path

from bench.deployment import Deployment


def test_settings_are_the_environment_settings_variables(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin",
        "KCOLLECT_PARTITIONS": "5",
        "KCOLLECT_TOPIC_PREFIX": "bench-x.",
        "KCOLLECT_SINK_GROUP": "bench-x-sink",
        "KCOLLECT_STATE_DIR": str(tmp_path / "state"),
        "KCOLLECT_FAULT_AT": "before_insert",
        "KCOLLECT_LOG_LEVEL": "debug",
    }
    settings = Deployment("x", env, tmp_path).settings
    assert (settings.partitions, settings.topic_prefix, settings.sink_group) == (
        5,
        "bench-x.",
        "bench-x-sink",
    )
