"""A high/low-mark gate on a consumer group's lag, for end-to-end backpressure.

The processors consult ``LagGate(settings, sink_group, results_topic, high, low).paused()`` before
fetching more requests (``processors.processor.service.results_lag_gate``): the gate pauses once the
sink's lag on the results topic is above ``high`` and resumes once it is at or below ``low``
(hysteresis, so it does not flap). The lag is measured by a background thread every ``interval``
seconds (``streams.lag.probe.LagProbe``: committed offsets and exact end offsets), so ``paused()``
is a cached read that never blocks. The state and the lag are gauges (``kcollect_lag_gate_paused`` /
``kcollect_lag_gate_lag``, labels group and topic).

When measuring fails (broker away, topic missing), the gate keeps its last state; after ``stale_after``
seconds without a measurement it opens (fails open: a monitoring outage must not stop the pipeline),
and every failure is counted in ``kcollect_lag_gate_errors``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from streams.lag.metrics import GATE_ERRORS, GATE_LAG, GATE_PAUSED
from streams.lag.probe import LagProbe
from streams.settings.model import Settings

log = logging.getLogger(__name__)


class Probe(Protocol):
    def total(self) -> int: ...

    def close(self) -> None: ...


def next_paused(paused: bool, lag: int, high: int, low: int) -> bool:
    """The gate's next state: pause above ``high``, resume at or below ``low``, else keep the state."""
    if paused:
        return lag > low
    return lag > high


class LagGate:
    """Pauses while ``group``'s lag on ``topic`` is above ``high``, until it is at or below ``low``."""

    def __init__(
        self,
        settings: Settings,
        group: str,
        topic: str,
        high: int,
        low: int,
        *,
        interval: float = 1.0,
        stale_after: float | None = None,
        probe_factory: Callable[[], Probe] | None = None,
    ) -> None:
        if high < 1 or not 0 <= low < high:
            raise ValueError(f"need high >= 1 and 0 <= low < high (got high {high}, low {low})")
        self.group, self.topic, self.high, self.low = group, topic, high, low
        self.interval = interval
        self.stale_after = stale_after if stale_after is not None else max(30.0, 10 * self.interval)
        self._factory: Callable[[], Probe] = probe_factory or (lambda: LagProbe(settings, group, topic))
        self._probe: Probe | None = None
        self._paused = False
        self._lag: int | None = None
        self._measured_at = time.monotonic()
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._paused_gauge = GATE_PAUSED.labels(group, topic)
        self._lag_gauge = GATE_LAG.labels(group, topic)
        self._errors = GATE_ERRORS.labels(group, topic)
        self._paused_gauge.set(0)
        self._thread = threading.Thread(target=self._loop, name=f"lag-gate-{topic}", daemon=True)
        self._thread.start()

    def paused(self) -> bool:
        """Whether consumption should be held back now (cached; never blocks)."""
        return self._paused

    @property
    def lag(self) -> int | None:
        """The last measured lag (None before the first measurement)."""
        return self._lag

    def wait_resumed(self, timeout: float) -> bool:
        """Block until the gate is open or ``timeout`` passes; True when open."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._paused or self._stop.is_set(), timeout)

    def measure_once(self) -> None:
        """Measure and update the state now (the background thread calls this every ``interval``)."""
        try:
            if self._probe is None:
                self._probe = self._factory()
            lag = self._probe.total()
        except Exception as exc:
            self._errors.inc()
            log.warning("lag gate on %s/%s could not measure: %s", self.group, self.topic, exc)
            self._drop_probe()
            if time.monotonic() - self._measured_at > self.stale_after:
                self._set(False)
            return
        self._lag, self._measured_at = lag, time.monotonic()
        self._lag_gauge.set(lag)
        self._set(next_paused(self._paused, lag, self.high, self.low))

    def _set(self, paused: bool) -> None:
        if paused != self._paused:
            log.info(
                "lag gate %s: %s/%s lag %s (high %d, low %d)",
                "PAUSED" if paused else "resumed",
                self.group,
                self.topic,
                self._lag,
                self.high,
                self.low,
            )
        with self._changed:
            self._paused = paused
            self._paused_gauge.set(1 if paused else 0)
            self._changed.notify_all()

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.measure_once()
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def _drop_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            try:
                probe.close()
            except Exception:
                log.debug("closing the lag probe failed", exc_info=True)

    def close(self) -> None:
        """Stop measuring, open the gate and release the Kafka clients."""
        self._stop.set()
        self._thread.join(timeout=max(5.0, 2 * self.interval))
        self._set(False)
        self._drop_probe()
