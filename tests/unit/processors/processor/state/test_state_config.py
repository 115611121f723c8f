"""The processor config's state section: validated with the rest, every problem named."""

from __future__ import annotations

from typing import Any

import pytest

from processors.processor.config import ConfigError, parse_config

BASE: dict[str, Any] = {"subsystems": [{"name": "a", "metrics": ["bytes", "errors"]}]}


def test_a_state_section_is_read() -> None:
    config = parse_config(BASE | {"state": {"metrics": {"bytes": ["increase", "rate"]}, "keep_runs": 4}})
    assert config.state is not None
    assert config.state.metrics == {"bytes": ("increase", "rate")} and config.state.keep_runs == 4


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({"metrics": {"nope": ["delta"]}}, "no subsystem gives: nope"),
        ({"metrics": {"bytes": ["sum"]}}, "state.metrics.bytes.0"),
        ({"metrics": {"bytes": []}}, "name at least one"),
        ({}, "needs metrics"),
        ({"metrics": {"bytes": ["delta"]}, "keep_runs": 1}, "state.keep_runs"),
        ({"compute": "examples.stateful:nothing_here"}, "cannot import"),
        ({"compute": "smoothed"}, "module:attr"),
    ],
)
def test_bad_state_sections_are_named(state: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(BASE | {"state": state})


def test_the_example_plugin_resolves() -> None:
    config = parse_config(BASE | {"state": {"compute": "examples.stateful:smoothed_rate", "keep": ["bytes"]}})
    assert config.state is not None and config.state.compute == "examples.stateful:smoothed_rate"
