"""Runs the stateful example's own test (examples/test_stateful.py) with the unit tests."""

from examples.test_stateful import test_counters_become_increases_rates_and_a_smoothed_rate  # noqa: F401
