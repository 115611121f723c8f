"""`kcollect runs verify R`: the end-to-end check of one run (``streams.runs.checker``); exit 1 on any loss,
duplicate under FINAL, unexpected row or wrong value."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from kcollect.cli.errors import exit_on_known_errors
from streams.settings.model import Settings, load_settings

if TYPE_CHECKING:
    from streams.runs.checker import ValueCheck


def value_check_for(settings: Settings) -> ValueCheck | None:
    """``simulated_check`` when every subsystem of the deployment is the built-in simulated one;
    otherwise None (values cannot be predicted; ``--values simulated`` for ``kcollect simulate``)."""
    from pathlib import Path

    from processors.processor.config import load_config
    from processors.processor.subsystems.simulated import simulated_check

    path = Path(settings.processor_config) if settings.processor_config else None
    config = load_config(path)
    return simulated_check if all(s.kind == "simulated" for s in config.subsystems) else None


@exit_on_known_errors
def verify(
    run_id: Annotated[str, typer.Argument(help="The run id.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    clients: Annotated[
        str | None, typer.Option(help="Also expect these client ids (N or FIRST-LAST), as enqueued.")
    ] = None,
    values: Annotated[
        str, typer.Option(help="Value check: auto (simulated subsystems only), simulated or none.")
    ] = "auto",
    watch: Annotated[
        float, typer.Option(help="First wait up to this many seconds for the lag to reach zero.")
    ] = 0.0,
) -> None:
    """Compare every acknowledged request of a run with ClickHouse and the dead-letter topics."""
    from processors.processor.subsystems.simulated import simulated_check
    from producers.enqueue.sources import RangeSource
    from streams.runs.checker import pipeline_groups, verify_run, watch_recovery

    settings = load_settings()
    recovery = watch_recovery(settings, pipeline_groups(settings), watch) if watch > 0 else None
    if values not in ("auto", "simulated", "none"):
        raise typer.BadParameter("--values takes auto, simulated or none")
    check: ValueCheck | None = simulated_check if values == "simulated" else None
    if values == "auto":
        check = value_check_for(settings)
    expected = list(RangeSource.parse(clients)) if clients else None
    report = verify_run(settings, run_id, expected=expected, value_check=check)
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
            + ("" if recovery is None else f"  recovered in {recovery:.1f} s")
        )
        for name, sample in report.samples.items():
            if sample:
                typer.echo(f"  {name}: {', '.join(sample)}")
        typer.echo("OK" if report.ok else "FAILED: " + "; ".join(report.problems))
    if not report.ok:
        raise SystemExit(1)
