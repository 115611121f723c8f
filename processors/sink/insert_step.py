"""The insert step: closed windows (groups of them, ``processors.sink.windowing.WindowGroup``) are written
to ClickHouse by a few worker threads, committed in order.

Each worker has its own connection; while one waits for the server to write its insert, another
serializes the next one, so the server's work overlaps the sink's (measured: one worker was the
bottleneck). At most ``max_pending`` windows wait, are being written or wait to be handed on; beyond
that ``submit`` raises ``MessageRejected``, so while ClickHouse is down, slow or refusing the stream
processor pauses the partitions and keeps polling (the workers retry their windows with backoff
meanwhile). ``poll`` (on the consumer's thread) hands written windows on to the commit step strictly
in submission order, after dead-lettering the rows ClickHouse refused on their own: offsets are
committed only after ClickHouse acknowledged the insert that holds them, and never past a window
still being written. ``join`` waits for the windows in hand (shutdown, revoke); the workers stop when
the chain is joined or terminated, leaving anything unwritten uncommitted.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from processors.sink.insert import Bad, ClickHouseHealth, WindowWriter, write_with_retry
from processors.sink.windowing import WindowRows
from streams.kafka.producer import DeliveryTracker
from streams.steps.strategy import Batch, ForwardingStep, MessageRejected, ProcessingStep

log = logging.getLogger(__name__)
DeadLetterRows = Callable[[WindowRows, Bad], DeliveryTracker]


class InsertWorkerError(RuntimeError):
    """An insert worker thread died of an unexpected error."""


@dataclass
class _Entry:
    batch: Batch[WindowRows]
    taken: bool = False
    bad: Bad | None = None  # set once written


class InsertStep(ForwardingStep[None]):
    """Submit closed windows; worker threads write them; ``poll`` moves the written ones on, in order."""

    def __init__(
        self,
        writers: list[WindowWriter],
        health: ClickHouseHealth,
        dead_letter_rows: DeadLetterRows,
        next_step: ProcessingStep[Any],
        max_pending: int | None = None,
    ) -> None:
        super().__init__(next_step)
        self._health = health
        self._dead_letter_rows = dead_letter_rows
        self._max_pending = max_pending or len(writers) + 1
        self._cond = threading.Condition()
        self._pending: deque[_Entry] = deque()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._threads = [
            threading.Thread(target=self._work, args=(w,), name=f"sink-insert-{i}", daemon=True)
            for i, w in enumerate(writers)
        ]
        for thread in self._threads:
            thread.start()

    def _take(self) -> _Entry | None:
        with self._cond:
            entry = next((e for e in self._pending if not e.taken), None)
            if entry is None:
                self._cond.wait(0.2)
            else:
                entry.taken = True
            return entry

    def _work(self, writer: WindowWriter) -> None:
        try:
            while not self._stop.is_set():
                entry = self._take()
                if entry is None:
                    continue
                bad = write_with_retry(writer, entry.batch.payload, self._health, self._stop)
                if bad is None:
                    return
                with self._cond:
                    entry.bad = bad
                    self._cond.notify_all()
        except BaseException as exc:  # surfaced on the consumer thread by the next poll/submit
            self._error = exc
        finally:
            writer.reset()

    def _check(self) -> None:
        if self._error is not None:
            raise InsertWorkerError(f"insert worker failed: {self._error!r}") from self._error

    def submit(self, batch: Batch[WindowRows]) -> None:
        self._check()
        with self._cond:
            if len(self._pending) + len(self._held) >= self._max_pending:
                raise MessageRejected
            self._pending.append(_Entry(batch))
            self._cond.notify_all()

    def _advance(self) -> None:
        """Written windows, in submission order, to the held queue (with the dead letters of their
        refused rows), then on to the next step."""
        while True:
            with self._cond:
                if not self._pending or self._pending[0].bad is None:
                    break
                entry = self._pending.popleft()
            batch, bad = entry.batch, entry.bad
            trackers = list(batch.trackers)
            if bad:
                trackers.append(self._dead_letter_rows(batch.payload, bad))
            self._held.append(Batch(None, batch.offsets, trackers))
        self.hand_on()

    def poll(self) -> None:
        self._check()
        super().poll()

    @property
    def in_hand(self) -> int:
        with self._cond:
            return len(self._pending) + len(self._held)

    def _finished(self) -> bool:
        return not self.in_hand or self._error is not None

    def _wait(self, seconds: float) -> None:
        with self._cond:
            if self._pending and self._pending[0].bad is None:
                self._cond.wait(min(0.05, seconds))

    def _give_up(self) -> None:
        self._advance()
        if self._pending:
            log.warning("%d window(s) not written at join: left uncommitted", len(self._pending))
        self._halt()

    def _halt(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def terminate(self) -> None:
        self._halt()
        with self._cond:
            self._pending.clear()
        super().terminate()
