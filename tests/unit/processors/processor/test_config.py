"""The processor config file: defaults, validation with clear messages, plugins by import path."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from processors.processor.compute import summary
from processors.processor.config import (
    ConfigError,
    default_config,
    load_config,
    parse_config,
    resolve_compute,
)


def test_default_is_the_simulated_reference_set() -> None:
    config = default_config()
    assert [(s.name, len(s.metrics), s.kind) for s in config.subsystems] == [
        ("alpha", 1, "simulated"),
        ("beta", 10, "simulated"),
    ]
    assert config.compute == "summary" and len(config.metrics) == 11


def test_yaml_and_json_files(tmp_path: Path) -> None:
    yaml_file = tmp_path / "p.yaml"
    yaml_file.write_text(
        "subsystems:\n"
        "  - {name: a, kind: http, url: 'http://x/fetch', metrics: [m1], retries: 5, max_concurrency: 2}\n"
        "  - {name: b, metrics: [m2, m3], required: true, breaker: {failure_threshold: 2}}\n"
        "retry: {max_attempts: 4}\n"
    )
    config = load_config(yaml_file)
    assert config.subsystems[0].retries == 5 and config.subsystems[1].breaker.failure_threshold == 2
    assert config.retry.max_attempts == 4 and config.metrics == ("m1", "m2", "m3")
    json_file = tmp_path / "p.json"
    json_file.write_bytes(orjson.dumps(config.model_dump()))
    assert load_config(json_file) == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"subsystems": []}, "subsystems"),
        ({"subsystems": [{"name": "a", "kind": "http", "metrics": ["m"]}]}, "needs 'url'"),
        ({"subsystems": [{"name": "a", "kind": "sql", "metrics": ["m"]}]}, "needs 'query'"),
        ({"subsystems": [{"name": "a", "metrics": []}]}, "subsystems.0.metrics"),
        ({"subsystems": [{"name": "a", "metrics": ["m"], "retries": -1}]}, "subsystems.0.retries"),
        ({"subsystems": [{"name": "a", "metrics": ["m"], "colour": 1}]}, "colour"),
        ({"subsystems": [{"name": "a", "metrics": ["m"]}, {"name": "a", "metrics": ["n"]}]}, "unique: a"),
        ({"subsystems": [{"name": "a", "metrics": ["m"]}, {"name": "b", "metrics": ["m"]}]}, "unique: m"),
        ({"subsystems": [{"name": "a", "metrics": ["m"]}], "compute": "nope"}, "unknown compute"),
        ({"subsystems": [{"name": "a", "metrics": ["m"]}], "compute": "os:nothing_here"}, "cannot import"),
        (
            {
                "subsystems": [
                    {"name": "a", "kind": "plugin", "factory": "no.such.module:f", "metrics": ["m"]}
                ]
            },
            "cannot import",
        ),
        (
            {"subsystems": [{"name": "a", "kind": "plugin", "factory": "nocolon", "metrics": ["m"]}]},
            "module:attr",
        ),
    ],
)
def test_invalid_configs_say_where_and_why(data: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ConfigError, match=message):
        parse_config(data)


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.json"
    bad.write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(scalar)


def test_compute_by_name_or_import_path() -> None:
    assert resolve_compute("summary") is summary
    assert resolve_compute("processors.processor.compute:summary") is summary
    plugin = parse_config(
        {
            "subsystems": [
                {"name": "p", "kind": "plugin", "factory": "examples.plugin:make", "metrics": ["x"]}
            ],
            "compute": "examples.plugin:spread",
        }
    )
    assert plugin.subsystems[0].factory == "examples.plugin:make"
