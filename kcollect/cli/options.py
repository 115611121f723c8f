"""Options and helpers shared by several commands (the exit codes are in ``errors``)."""

from __future__ import annotations

import json
import resource
from pathlib import Path
from typing import Annotated, Any

import typer

ReadyFile = Annotated[Path | None, typer.Option(help="Write this file once partitions are assigned.")]
StatsFile = Annotated[Path | None, typer.Option(help="Write statistics as JSON here at exit.")]
Groups = Annotated[list[str] | None, typer.Option("--group", "-g", help="Only this group (repeatable).")]
Topics = Annotated[list[str] | None, typer.Option("--topic", "-t", help="Only this topic (repeatable).")]
AllTopics = Annotated[bool, typer.Option(help="Every topic, not only those under KCOLLECT_TOPIC_PREFIX.")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
ListenAddress = Annotated[str, typer.Option(help="Address to listen on.")]
# where a run's client ids come from (enqueue, scheduler); --from-file differs: the scheduler reads no stdin
Clients = Annotated[str | None, typer.Option(help="N (0..N-1) or FIRST-LAST, decimal ids.")]
Column = Annotated[str | None, typer.Option(help="CSV: the header of the id column.")]
FromClickHouse = Annotated[str | None, typer.Option(help="A query whose first column is the client id.")]


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def write_stats(path: Path | None, stats: dict[str, Any]) -> None:
    """The service's statistics and its peak RSS as JSON, when ``path`` is given (``--stats-file``)."""
    if path is not None:
        path.write_text(json.dumps(stats | {"peak_rss_mb": peak_rss_mb()}))
