"""`kcollect sink`: the sink service."""

from __future__ import annotations

from kcollect.cli.errors import exit_on_known_errors
from kcollect.cli.options import ReadyFile, StatsFile, write_stats
from streams.settings.model import load_settings


@exit_on_known_errors
def sink(ready_file: ReadyFile = None, stats_file: StatsFile = None) -> None:
    """Run the sink service: results in, ClickHouse rows out (until SIGTERM)."""
    from processors.sink.service import run_sink

    stats = run_sink(load_settings(), ready_file)
    write_stats(stats_file, stats)
