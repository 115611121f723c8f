"""`kcollect run`: a full collection run on the configured (or local) stack, with a summary."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from kcollect.cli.errors import ExitCode, exit_on_known_errors
from streams.settings.model import load_settings


@exit_on_known_errors
def run(
    clients: Annotated[str, typer.Option(help="N (0..N-1) or FIRST-LAST.")] = "100000",
    run_id: Annotated[str | None, typer.Option(help="The run id (default: run-<UTC time>-<pid>).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every row.")] = 600.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """A full collection run on the configured stack (the local one when none is set), with a summary."""
    from kcollect.localstack.runner import default_run_id, run_collection
    from producers.enqueue.sources import RangeSource

    summary = run_collection(load_settings(), RangeSource.parse(clients), run_id or default_run_id(), timeout)
    if json_out:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        typer.echo(
            f"run {summary.run_id}: {summary.stored}/{summary.clients} clients stored in "
            f"{summary.seconds:.2f} s ({summary.clients / max(summary.seconds, 1e-6):,.0f} clients/s)"
        )
        for stage, numbers in summary.stages.items():
            typer.echo(
                f"  {stage:<9} {numbers.get('clients_per_s', 0):>12,.0f} clients/s"
                + (f"  peak RSS {numbers['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in numbers else "")
            )
    if not summary.complete:
        raise SystemExit(ExitCode.FAILED)
