"""Run a consumer-group service: build the consumer, handle SIGTERM/SIGINT, run the loop, report.

``consumer_extra`` adds librdkafka keys (the processor's assignment strategy and static membership);
``gate`` holds records that must wait (retry records).

SIGTERM or Ctrl-C asks the loop to stop; in-flight work is joined and committed within the
shutdown deadline, then the consumer leaves its group. A second signal exits at once (nothing
uncommitted is lost: it is consumed again on restart).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from streams.kafka.clients import make_consumer
from streams.observability.health import client_hooks, service_health
from streams.settings.model import Settings
from streams.steps.stream_processor import ChainFactory, Gate, LoopStats, StreamProcessor

log = logging.getLogger(__name__)


def _install_signals(loop: StreamProcessor) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        if not getattr(handle, "seen", False):
            handle.seen = True  # type: ignore[attr-defined]
            log.info("signal %d: draining and stopping", signum)
            loop.stop()
        else:
            os._exit(130)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def mark_ready(path: Path | None) -> Callable[[list[tuple[str, int]]], None]:
    """An on-assigned hook that writes ``path`` once (used by `kcollect run` to know a service is in)."""

    def on_assigned(partitions: list[tuple[str, int]]) -> None:
        if path is not None and not path.exists():
            path.write_text(f"{len(partitions)}\n")

    return on_assigned


def run_consumer_service(
    settings: Settings,
    group: str,
    topics: list[str],
    chain_factory: ChainFactory,
    ready_file: Path | None = None,
    gate: Gate | None = None,
    hold: Callable[[], bool] | None = None,
    batch_size: int | None = None,
    **consumer_extra: Any,
) -> LoopStats:
    """Run until a signal; returns the loop's statistics. With ``KCOLLECT_HTTP_PORT`` set it serves
    ``/metrics``, ``/healthz`` and ``/readyz`` (streams/observability/health.py) while it runs.
    ``batch_size``: records per consume (default ``settings.consume_batch``)."""
    probe, server = service_health(settings)
    consumer = make_consumer(settings, group, group_member=True, **client_hooks(probe), **consumer_extra)
    loop = StreamProcessor(
        consumer,
        topics,
        chain_factory,
        batch_size=batch_size or settings.consume_batch,
        shutdown_deadline=settings.shutdown_deadline_seconds,
        on_assigned=mark_ready(ready_file),
        gate=gate,
        name=group,
        probe=probe,
        hold=hold,
    )
    _install_signals(loop)
    log.info("service started: group %s on %s", group, ", ".join(topics))
    try:
        stats = loop.run()
    finally:
        if server is not None:
            server.close()
    log.info("service stopped: consumed %d record(s) in %d batch(es)", stats.consumed, stats.batches)
    return stats
