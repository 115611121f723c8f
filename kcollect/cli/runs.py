"""`kcollect runs list | status`: how far each run got (enqueued, processed, stored, dead-lettered,
pending) and whether it is complete; see ``streams.runs.status`` for the definitions."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from kcollect.cli.errors import exit_on_known_errors
from streams.runs.status import RunProgress, list_runs, run_status, wait_complete
from streams.settings.model import load_settings

runs_app = typer.Typer(help="Collection runs: progress and completion.", no_args_is_help=True)

STAGES = ("enqueued", "processed", "stored", "dead-lettered")


def _line(p: RunProgress) -> str:
    total = "?" if p.total is None else f"{p.total:,}"
    pending = "?" if p.pending is None else f"{p.pending:,}"
    return (
        f"{p.run_id}: {p.state}, enqueued {total}, processed {p.processed:,}, stored {p.stored:,}, "
        f"dead-lettered {p.dead_lettered:,}, pending {pending}, "
        + ("complete" if p.complete else "not complete")
    )


@runs_app.command("list")
@exit_on_known_errors
def runs_list(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
) -> None:
    """Every run seen in manifests, ClickHouse or dead letters, with its counts."""
    for progress in list_runs(load_settings()):
        typer.echo(json.dumps(progress.as_dict()) if json_out else _line(progress))


class RateColumn(ProgressColumn):
    """Items per second of a task (rich's own estimate over its recent updates)."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text("      -/s" if speed is None else f"{speed:>9,.0f}/s")


def _stage_values(p: RunProgress) -> dict[str, int]:
    return {
        "enqueued": p.total or 0,
        "processed": p.processed,
        "stored": p.stored,
        "dead-lettered": p.dead_lettered,
    }


def _watch(run_id: str, timeout: float, interval: float) -> RunProgress:
    console = Console(stderr=True)
    columns = (
        TextColumn("{task.description:<14}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, refresh_per_second=4) as bars:
        tasks: dict[str, TaskID] = {stage: bars.add_task(stage, total=None) for stage in STAGES}

        def show(p: RunProgress) -> None:
            for stage, value in _stage_values(p).items():
                bars.update(tasks[stage], completed=value, total=p.total)

        return wait_complete(load_settings(), run_id, timeout, interval, on_progress=show)


@runs_app.command("status")
@exit_on_known_errors
def runs_status(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    wait: Annotated[bool, typer.Option("--wait", help="Wait until the run is complete.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait/--watch.")] = 600.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the status as one JSON object.")] = False,
    watch: Annotated[bool, typer.Option("--watch", help="Live progress bars per stage.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 0.5,
) -> None:
    """A run's counts. With --wait or --watch: exit 0 once complete, 1 if the timeout passes first."""
    if watch:
        progress = _watch(run_id, timeout, interval)
    elif wait:
        progress = wait_complete(load_settings(), run_id, timeout, interval)
    else:
        progress = run_status(load_settings(), run_id)
    typer.echo(json.dumps(progress.as_dict()) if json_out else _line(progress))
    if (wait or watch) and not progress.complete:
        print(f"kcollect: run {run_id} not complete after {timeout:g} s", file=sys.stderr)
        raise SystemExit(1)


from kcollect.cli.verify import verify  # noqa: E402  (issue #9: `kcollect runs verify R`)

runs_app.command("verify")(verify)
