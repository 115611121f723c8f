"""Runs the worked plugin example's own test (examples/test_plugin.py) with the unit tests."""

from examples.test_plugin import (  # noqa: F401
    test_plugin_failures_are_retried_with_retry_after,
    test_plugin_loaded_from_config_fetches_and_computes,
)
