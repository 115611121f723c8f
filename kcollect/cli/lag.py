"""`kcollect lag`: consumer lag, time lag and Burrow-style statuses (once, or live with --watch)."""

from __future__ import annotations

import json
import signal
import threading
import time
from typing import Annotated

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from kcollect.cli.errors import exit_on_known_errors
from kcollect.cli.options import AllTopics, Groups, Topics
from streams.kafka.admin import require_topics
from streams.lag.collector import LagCollector, LagMonitor, Snapshot, group_statuses, sort_worst_first
from streams.settings.model import load_settings

STYLES = {
    "OK": "green",
    "WARNING": "yellow",
    "STALLED": "red",
    "STOPPED": "bold red",
    "REWIND": "bold yellow",
    "UNMEASURED": "bold magenta",
}


def _num(value: int | float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(snapshot: Snapshot, limit: int | None = None) -> Group:
    """The group summary and the partition table, worst first (fits 120 columns)."""
    rows = sort_worst_first(snapshot.rows)
    summary = Text()
    for group, status in sorted(group_statuses(rows).items(), key=lambda x: (-x[1], x[0])):
        lag = sum(r.lag for r in rows if r.group == group)
        summary.append(f"{status.name:<8}", style=STYLES[status.name])
        summary.append(f" {group}  lag {lag:,}  state {snapshot.groups[group].state}\n")
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("STATUS", no_wrap=True)
    table.add_column("GROUP", overflow="ellipsis", max_width=24, no_wrap=True)
    table.add_column("TOPIC", overflow="ellipsis", max_width=24, no_wrap=True)
    for name in ("P", "COMMITTED", "END", "LAG", "AGE s"):
        table.add_column(name, justify="right", no_wrap=True)
    table.add_column("CLIENT ID", overflow="ellipsis", max_width=20, no_wrap=True)
    table.add_column("HOST", overflow="ellipsis", max_width=15, no_wrap=True)
    table.add_column("MEMBER", overflow="ellipsis", max_width=14, no_wrap=True)
    for row in rows[:limit]:
        table.add_row(
            Text(row.status, style=STYLES[row.status]),
            row.group,
            row.topic,
            str(row.partition),
            _num(row.committed),
            _num(row.end),
            _num(row.lag),
            _num(row.lag_seconds, 1),
            row.client_id or row.owner,
            row.host,
            row.owner,
        )
    shown = len(rows) if limit is None else min(limit, len(rows))
    footer = Text(
        f"{shown} of {len(rows)} partition(s), collected in {snapshot.seconds:.2f} s"
        + "".join(f"\nerror: {e}" for e in snapshot.errors),
        style="dim",
    )
    return Group(summary, table, footer)


@exit_on_known_errors
def lag(
    seconds: Annotated[float | None, typer.Argument(help="With --watch: seconds between samples.")] = None,
    group: Groups = None,
    topic: Topics = None,
    watch: Annotated[bool, typer.Option("--watch", help="Redraw every SECONDS (default 2).")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print a JSON list of partitions.")] = False,
    samples: Annotated[int, typer.Option(min=1, help="Samples of a one-shot run, ~1 s apart.")] = 3,
    window: Annotated[int, typer.Option(min=2, help="Samples kept per partition with --watch.")] = 30,
    all_topics: AllTopics = False,
) -> None:
    """Consumer-group lag per partition: offsets, lag, time lag, owner and a Burrow-style status.

    A status needs several samples: a one-shot run takes --samples (3) about a second apart and shows the
    last; --watch keeps a window of --window samples. Statuses: OK; WARNING (lag grows while commits move);
    STALLED (lag > 0, committed offset not moving); STOPPED (lag > 0 and no member, or no commit for 5
    minutes); REWIND (a committed offset moved backwards); UNMEASURED (could not measure).
    With --json --watch, one JSON list per line per sample.

    Exit codes: 2 bad settings, 3 broker unreachable, 4 a --topic does not exist.
    """
    settings = load_settings()
    require_topics(settings, topic or [])  # no broker: one line, exit 3; a named topic missing: exit 4
    collector = LagCollector(settings, group, topic, all_topics=all_topics)
    monitor = LagMonitor(collector, window=window if watch else samples)
    try:
        if not watch:
            snapshot = monitor.sample()
            for _ in range(samples - 1):
                time.sleep(max(0.0, 1.0 - snapshot.seconds))
                snapshot = monitor.sample()
            _show(snapshot, json_out)
            return
        _watch(monitor, seconds or 2.0, json_out)
    finally:
        monitor.close()


def _show(snapshot: Snapshot, json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps([row.as_dict() for row in sort_worst_first(snapshot.rows)]))
    else:
        Console(width=max(Console().width, 120)).print(render(snapshot))


def _watch(monitor: LagMonitor, interval: float, json_out: bool) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if json_out:
            while not stop.is_set():
                _show(monitor.sample(), True)
                stop.wait(interval)
            return
        console = Console()
        with Live(console=console, auto_refresh=False, screen=False) as live:
            while not stop.is_set():
                limit = max(console.height - 12, 5)
                live.update(render(monitor.sample(), limit), refresh=True)
                stop.wait(interval)
    except KeyboardInterrupt:
        pass
