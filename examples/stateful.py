"""A worked stateful example: a counter subsystem and a stateful compute plug-in that sees the previous run.

Processor config (YAML)::

    subsystems:
      - name: traffic
        kind: plugin
        factory: examples.stateful:make_counters   # counters that grow with the run's slot time
        metrics: [bytes_sent, errors]
        options: {reset_after: 1767225600}          # clients "reset-*" restart from 0 at this epoch second
        latency_ms: 0                               # > 0: each call sleeps that long (in a worker thread)
    state:
      metrics:                                      # built-in: delta, increase (counter), rate (per second)
        bytes_sent: [increase, rate]
        errors: [delta]
      compute: examples.stateful:smoothed_rate      # a plug-in: (this run, previous observation) -> outputs
      keep: []                                      # more metric values to keep for the plug-in
      keep_runs: 3                                  # runs kept per client (>= 2)
      drop_after_runs: 10                           # a client not seen for this many runs is dropped...
      drop_after_seconds: 604800                    # ... or for this long

A stateful plug-in is a pure function ``fn(current, previous) -> {name: value}``: ``current`` and
``previous`` are ``processors.processor.state.history.Observation`` (``run_id``, ``at_ms`` = the run's
slot time, ``seq`` = the run's number in its partition, ``values`` = the kept metrics, ``computed`` =
that run's plug-in outputs); ``previous`` is None at a client's first sight. What it returns goes into
the result's computed values and is kept with this run, so the next run sees it as
``previous.computed``. It must not keep anything itself: the processor may call it twice for one run
(a replay) and must get the same answer.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Sequence
from typing import Any

from processors.processor.config import SubsystemConfig
from processors.processor.state.history import Observation
from streams.runs.identity import schedule_slot


def counter_rate(client_id: str) -> int:
    """A client's bytes per second in the example subsystem: 1 to 1000."""
    return zlib.crc32(client_id.encode()) % 1000 + 1


def counter_seconds(client_id: str, epoch_s: int, reset_after: int | None) -> int:
    """Seconds the example's counters have counted at ``epoch_s``: ``reset-*`` clients restart at
    ``reset_after``."""
    resets = reset_after is not None and client_id.startswith("reset-") and epoch_s >= reset_after
    return epoch_s - (reset_after if resets and reset_after is not None else 0)


def counter_values(client_id: str, epoch_s: int, reset_after: int | None) -> tuple[float, float]:
    """(bytes_sent, errors) at ``epoch_s``: ``counter_rate`` bytes a second, one error a minute."""
    seconds = counter_seconds(client_id, epoch_s, reset_after)
    return float(counter_rate(client_id) * seconds), float(seconds // 60)


class CounterSubsystem:
    """Counters at the run's slot time (a scheduled run id), else at its request time."""

    def __init__(
        self, name: str, metrics: Sequence[str], reset_after: int | None, latency_s: float = 0.0
    ) -> None:
        self.name = name
        self.metrics = tuple(metrics)
        self.reset_after = reset_after
        self.latency_s = latency_s
        self.blocking = latency_s > 0  # a slow call runs in a worker thread

    def fetch(self, requests: Sequence[dict[str, Any]]) -> dict[str, list[float | None]]:
        """The first metric is the bytes counter, the second (if any) the errors counter."""
        if self.latency_s:
            time.sleep(self.latency_s)
        pairs = []
        for request in requests:
            scheduled = schedule_slot(request["run_id"])
            at_ms = scheduled[1] if scheduled is not None else int(request["requested_at_ms"])
            pairs.append(counter_values(request["client_id"], at_ms // 1000, self.reset_after))
        columns: dict[str, list[float | None]] = {}
        for i, metric in enumerate(self.metrics[:2]):
            columns[metric] = [pair[i] for pair in pairs]
        return columns


def make_counters(config: SubsystemConfig) -> CounterSubsystem:
    reset_after = config.options.get("reset_after")
    return CounterSubsystem(
        config.name, config.metrics, int(reset_after) if reset_after is not None else None
    )


def smoothed_rate(current: Observation, previous: Observation | None) -> dict[str, float]:
    """An exponentially smoothed bytes_sent rate (weight 0.5), carried from run to run in its outputs."""
    value = current.values.get("bytes_sent")
    if value is None or previous is None or "bytes_sent" not in previous.values:
        return {}
    seconds = (current.at_ms - previous.at_ms) / 1000
    if seconds <= 0:
        return {}
    before = previous.values["bytes_sent"]
    rate = (value if value < before else value - before) / seconds
    smoothed = previous.computed.get("bytes_sent_smoothed_rate", rate)
    return {"bytes_sent_smoothed_rate": 0.5 * smoothed + 0.5 * rate}
