"""`kcollect exporter`: the Prometheus exporter (``kcollect.ops.exporter``)."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from kcollect.cli.errors import exit_on_known_errors
from kcollect.cli.options import AllTopics, Groups, ListenAddress, Topics
from streams.kafka.admin import require_topics
from streams.settings.model import load_settings


@exit_on_known_errors
def exporter(
    port: Annotated[int, typer.Option(help="HTTP port of /metrics.")] = 9308,
    addr: ListenAddress = "0.0.0.0",
    interval: Annotated[float, typer.Option(help="Seconds between collections.")] = 5.0,
    group: Groups = None,
    topic: Topics = None,
    all_topics: AllTopics = False,
    runs: Annotated[bool, typer.Option(help="Also export run progress.")] = True,
) -> None:
    """Prometheus exporter of consumer lag, time lag, offsets, statuses and run progress (until SIGTERM).

    Collections run in the background every --interval seconds; scrapes are served from the last one.
    """
    from kcollect.ops.exporter import LagExporter, serve

    settings = load_settings()
    require_topics(settings, [])  # no broker at start: one line, exit 3 (later outages: up 0)
    lag_exporter = LagExporter(
        settings, interval, runs=runs, groups=group, topics=topic, all_topics=all_topics
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    lag_exporter.refresh()
    server = serve(lag_exporter, port, addr)
    lag_exporter.start()
    typer.echo(f"serving http://{addr}:{port}/metrics (collecting every {interval:g} s)", err=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        lag_exporter.close()
