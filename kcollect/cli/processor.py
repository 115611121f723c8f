"""`kcollect processor`: the processor service."""

from __future__ import annotations

from kcollect.cli.errors import exit_on_known_errors
from kcollect.cli.options import ReadyFile, StatsFile, write_stats
from streams.settings.model import load_settings


@exit_on_known_errors
def processor(ready_file: ReadyFile = None, stats_file: StatsFile = None) -> None:
    """Run the processor service: requests in, fetched and computed results out (until SIGTERM).

    Exits 2 when the processor config (KCOLLECT_PROCESSOR_CONFIG) is invalid, 1 when the DLQ guard
    stops it because almost every request is being dead-lettered.
    """
    from processors.processor.service import run_processor

    write_stats(stats_file, run_processor(load_settings(), ready_file))
