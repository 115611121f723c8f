"""Enqueue progress: a rich progress bar on a terminal, plain log lines every ~2 s otherwise (stderr).

Both show lines read, requests enqueued, the rate, an ETA when the total is known, and whether
producing is throttled and why. ``make_reporter`` picks one; ``NullReporter`` shows nothing.
"""

from __future__ import annotations

import sys
import time
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

LOG_INTERVAL = 2.0


class Reporter(Protocol):
    def start(self, run_id: str, total: int | None) -> None: ...

    def advance(self, read: int, enqueued: int) -> None: ...

    def throttled(self, reason: str | None) -> None: ...

    def close(self) -> None: ...


class NullReporter:
    def start(self, run_id: str, total: int | None) -> None:
        pass

    def advance(self, read: int, enqueued: int) -> None:
        pass

    def throttled(self, reason: str | None) -> None:
        pass

    def close(self) -> None:
        pass


class _Counts:
    def __init__(self) -> None:
        self.run_id = ""
        self.total: int | None = None
        self.read = 0
        self.enqueued = 0
        self.reason: str | None = None
        self.started = time.monotonic()

    def rate(self) -> float:
        return self.enqueued / max(time.monotonic() - self.started, 1e-6)

    def eta(self) -> str:
        rate = self.read / max(time.monotonic() - self.started, 1e-6)
        if self.total is None or rate <= 0:
            return "?"
        return f"{max(self.total - self.read, 0) / rate:.0f} s"


class LogReporter(_Counts):
    """One line to ``stream`` every ``interval`` seconds, and at once when throttling starts or ends."""

    def __init__(self, stream: TextIO | None = None, interval: float = LOG_INTERVAL) -> None:
        super().__init__()
        self._stream = stream or sys.stderr
        self._interval = interval
        self._last = 0.0

    def _line(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last < self._interval:
            return
        self._last = now
        of = f"/{self.total:,}" if self.total is not None else ""
        state = f" THROTTLED: {self.reason}" if self.reason else ""
        print(
            f"enqueue {self.run_id}: read {self.read:,}{of}, enqueued {self.enqueued:,}, "
            f"{self.rate():,.0f} requests/s, ETA {self.eta()}{state}",
            file=self._stream,
            flush=True,
        )

    def start(self, run_id: str, total: int | None) -> None:
        self.run_id, self.total, self.started = run_id, total, time.monotonic()
        self._last = self.started

    def advance(self, read: int, enqueued: int) -> None:
        self.read += read
        self.enqueued += enqueued
        self._line()

    def throttled(self, reason: str | None) -> None:
        changed = reason is None and self.reason is not None
        changed = changed or (reason is not None and self.reason is None)
        self.reason = reason
        self._line(force=changed)

    def close(self) -> None:
        self._line(force=True)


class RichReporter(_Counts):
    """A rich progress bar on stderr: count, rate, ETA, and the throttle state in the description."""

    def __init__(self, console: Console | None = None) -> None:
        super().__init__()
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]} req/s"),
            TimeRemainingColumn(),
            console=console or Console(stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task("enqueue", total=None, rate="0", start=False)

    def _show(self) -> None:
        description = f"enqueue {self.run_id}" + (
            f" [yellow]throttled: {self.reason}[/]" if self.reason else ""
        )
        self._progress.update(
            self._task,
            completed=self.read,
            total=self.total,
            description=description,
            rate=f"{self.rate():,.0f}",
        )

    def start(self, run_id: str, total: int | None) -> None:
        self.run_id, self.total, self.started = run_id, total, time.monotonic()
        self._progress.start()
        self._progress.start_task(self._task)
        self._show()

    def advance(self, read: int, enqueued: int) -> None:
        self.read += read
        self.enqueued += enqueued
        self._show()

    def throttled(self, reason: str | None) -> None:
        self.reason = reason
        self._show()

    def close(self) -> None:
        self._show()
        self._progress.stop()


def make_reporter(enabled: bool = True, stream: TextIO | None = None) -> Reporter:
    """A bar when ``stream`` (stderr) is a terminal, log lines when it is not, nothing when disabled."""
    if not enabled:
        return NullReporter()
    stream = stream or sys.stderr
    if stream.isatty():
        return RichReporter(Console(file=stream))
    return LogReporter(stream)
