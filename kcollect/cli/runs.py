"""`kcollect runs list | status | verify`: how far each run got (enqueued, processed, stored, dead-lettered,
pending) and whether it is complete; see ``streams.runs.status`` for the definitions."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

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

from kcollect.cli.choices import ValueCheck as ValueCheckMode
from kcollect.cli.errors import ExitCode, exit_on_known_errors
from streams.runs.status import RunProgress, RunState, RunWatcher, wait_complete
from streams.settings.model import load_settings

if TYPE_CHECKING:
    from streams.runs.checker import ValueCheck

runs_app = typer.Typer(help="Collection runs: progress and completion.", no_args_is_help=True)

STAGES = ("enqueued", "processed", "stored", "dead-lettered")


def _line(row: dict[str, Any]) -> str:
    """``runs status``: the counts, the dead letters by reason, the times."""
    reasons = row.get("dead_letter_reasons") or {}
    why = "".join(f", {r} {n:,}" for r, n in reasons.items())
    took = "-" if row["duration_s"] is None else f"{row['duration_s']:.1f} s"
    return (
        f"{row['run_id']}: {row['state']}, enqueued {_count(row['total'])}, processed {row['processed']:,}, "
        f"stored {row['stored']:,} (ok {row['ok']:,}, partial {row['partial']:,}), "
        f"dead-lettered {row['dead_lettered']:,} (expired {row['expired']:,}{why}), "
        f"pending {_count(row['pending'])}, started {row['started'] or '-'}, "
        f"finished {row['finished'] or '-'}, took {took}, "
        + ("complete" if row["complete"] else "not complete")
        + (
            f"; {row['unmatched']:,} dead letter(s) name the run but are none of its clients"
            if row["unmatched"]
            else ""
        )
    )


def _list_line(row: dict[str, Any]) -> str:
    took = "-" if row["duration_s"] is None else f"{row['duration_s']:.1f} s"
    eta = "" if row["eta_s"] is None else f", ETA {row['eta_s']:.0f} s"
    reasons = row.get("dead_letter_reasons") or {}
    why = f" ({', '.join(f'{r} {n:,}' for r, n in reasons.items())})" if reasons else ""
    return (
        f"{row['run_id']}: {row['state']}, total {_count(row['total'])}, stored {row['stored']:,} "
        f"(ok {row['ok']:,}, partial {row['partial']:,}), dead-lettered {row['dead_lettered']:,}{why}, "
        f"pending {_count(row['pending'])}, started {row['started'] or '-'}, "
        f"finished {row['finished'] or '-'}, took {took}{eta}, "
        + ("complete" if row["complete"] else "not complete")
    )


def _rows(watcher: RunWatcher, progress: list[RunProgress]) -> list[dict[str, Any]]:
    from kcollect.console.data import run_row

    summaries = watcher.summaries()
    now_ms = int(time.time() * 1000)
    return [
        run_row(p, summaries.get(p.run_id, {}), watcher.manifests.get(p.run_id), now_ms) for p in progress
    ]


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


@runs_app.command("list")
@exit_on_known_errors
def runs_list(
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object per run.")] = False,
    schedule: Annotated[str | None, typer.Option(help="Only the runs of this schedule.")] = None,
    state: Annotated[
        RunState | None, typer.Option(help="Only the runs complete, incomplete, or in this manifest state.")
    ] = None,
) -> None:
    """Every run seen in manifests, ClickHouse or dead letters: counts (stored ok / partial, dead letters
    by reason), started, finished, duration, ETA."""
    watcher = RunWatcher(load_settings())
    try:
        watcher.refresh()
        rows = _rows(watcher, watcher.all_runs())
    finally:
        watcher.close()
    from kcollect.console.data import run_matches

    for row in rows:
        if run_matches(row, schedule, state):
            typer.echo(json.dumps(row) if json_out else _list_line(row))


def _status_row(run_id: str) -> dict[str, Any]:
    watcher = RunWatcher(load_settings())
    try:
        watcher.refresh()
        return _rows(watcher, [watcher.progress(run_id)])[0]
    finally:
        watcher.close()


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
    """A run's counts (stored ok / partial, dead letters by reason), when it started and finished and
    how long it took. With --wait or --watch: exit 0 once complete, 1 if the timeout passes first."""
    if watch:
        progress = _watch(run_id, timeout, interval)
    elif wait:
        progress = wait_complete(load_settings(), run_id, timeout, interval)
    row = _status_row(run_id)
    if wait or watch:
        row["complete"] = row["complete"] or progress.complete  # what the wait saw
    typer.echo(json.dumps(row) if json_out else _line(row))
    if (wait or watch) and not row["complete"]:
        print(f"kcollect: run {run_id} not complete after {timeout:g} s", file=sys.stderr)
        raise SystemExit(ExitCode.FAILED)


@runs_app.command("verify")
@exit_on_known_errors
def verify(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    clients: Annotated[
        str | None, typer.Option(help="Also expect these client ids (N or FIRST-LAST), as enqueued.")
    ] = None,
    values: Annotated[
        ValueCheckMode, typer.Option(help="Value check: auto (simulated subsystems only), simulated or none.")
    ] = ValueCheckMode.auto,
    watch: Annotated[
        float, typer.Option(help="First wait up to this many seconds for the lag to reach zero.")
    ] = 0.0,
) -> None:
    """Compare every acknowledged request of a run with ClickHouse and the dead-letter topics."""
    from kcollect.ops.value_check import compute_for, value_check_for
    from processors.processor.subsystems.simulated import simulated_check
    from producers.enqueue.sources import RangeSource
    from streams.runs.checker import pipeline_groups, verify_run, watch_recovery

    settings = load_settings()
    recovery = watch_recovery(settings, pipeline_groups(settings), watch) if watch > 0 else None
    check: ValueCheck | None = simulated_check if values is ValueCheckMode.simulated else None
    if values is ValueCheckMode.auto:
        check = value_check_for(settings)
    expected = list(RangeSource.parse(clients)) if clients else None
    compute, metric_names = compute_for(settings)
    report = verify_run(
        settings, run_id, expected=expected, value_check=check, compute=compute, metric_names=metric_names
    )
    report.recovery_seconds = recovery
    if watch > 0 and recovery is None:
        report.problems.append(f"lag not back to zero within {watch:g} s")
    if json_out:
        typer.echo(json.dumps(report.as_dict()))
    else:
        typer.echo(
            f"{run_id}: manifest {report.manifest_state} total {report.manifest_total}, "
            f"requests {report.enqueued:,}, stored {report.stored:,} ({report.stored_raw_rows:,} raw rows), "
            f"dead-lettered {report.dead_lettered:,}"
        )
        typer.echo(
            f"  lost {report.lost:,}  duplicated raw {report.duplicated_raw:,}  duplicated FINAL "
            f"{report.duplicated_final:,}  unexpected {report.unexpected:,}  wrong {report.wrong:,}"
            + ("" if report.values_checked else "  (values not checked)")
            + f"  stored and dead-lettered {report.stored_and_dead_lettered:,}  incomplete ok "
            f"{report.incomplete_ok:,}  status contradicts missing {report.status_contradicts_missing:,}  "
            f"wrong computed {report.wrong_computed:,}"
            + ("" if recovery is None else f"  recovered in {recovery:.1f} s")
        )
        for name, sample in report.samples.items():
            if sample:
                typer.echo(f"  {name}: {', '.join(sample)}")
        typer.echo("OK" if report.ok else "FAILED: " + "; ".join(report.problems))
    if not report.ok:
        raise SystemExit(ExitCode.FAILED)
