"""`kcollect dlq inspect | replay`: the requests dead-letter topic."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from kcollect.cli.choices import DeadLetterStage
from kcollect.cli.errors import ExitCode, exit_on_known_errors
from kcollect.cli.options import JsonOut
from streams.settings.model import load_settings

dlq_app = typer.Typer(help="The requests dead-letter topic.", no_args_is_help=True)


@dlq_app.command("inspect")
@exit_on_known_errors
def dlq_inspect(
    json_out: JsonOut = False,
    samples: Annotated[int, typer.Option(help="Samples per stage and error class.")] = 3,
    idle_seconds: Annotated[float, typer.Option(help="Stop reading after this long without records.")] = 2.0,
) -> None:
    """Counts of dead-lettered requests by stage, error class and reason, with samples."""
    from kcollect.ops.dlq import read_dlq, summarize
    from schemas.topics import REQUESTS_DLQ

    settings = load_settings()
    report = summarize(read_dlq(settings, REQUESTS_DLQ.name(settings.topic_prefix), idle_seconds), samples)
    if json_out:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"{report['total']} dead-lettered request(s)")
    for title in ("by_stage", "by_error_class", "by_reason"):
        typer.echo(f"  {title.removeprefix('by_')}:")
        for name, count in report[title].items():
            typer.echo(f"    {name:<28} {count:>10,}")
    for sample in report["samples"]:
        h = sample["headers"]
        typer.echo(
            f"  sample {sample['partition']}@{sample['offset']} {h.get('stage')}/{h.get('error_class')}: "
            f"{h.get('error_message', '')[:120]}"
        )


@dlq_app.command("replay")
@exit_on_known_errors
def dlq_replay(
    stage: Annotated[DeadLetterStage | None, typer.Option(help="Only this stage.")] = None,
    error_class: Annotated[str | None, typer.Option(help="Only this error class.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason (e.g. expired).")] = None,
    run_id: Annotated[str | None, typer.Option(help="Only this run.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many records.")] = 1_000_000,
    clear_deadline: Annotated[bool, typer.Option(help="Drop deadline_ms from replayed requests.")] = True,
    dry_run: Annotated[bool, typer.Option(help="Only count what would be replayed.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Re-enqueue chosen dead-lettered requests onto the requests topic (attempt reset to 0)."""
    from kcollect.ops.dlq import read_dlq, replay
    from schemas.topics import REQUESTS, REQUESTS_DLQ

    settings = load_settings()
    records = [
        r
        for r in read_dlq(settings, REQUESTS_DLQ.name(settings.topic_prefix))
        if r.matches(stage.value if stage else None, error_class, reason, run_id)
    ][:limit]
    result = {"matched": len(records)}
    if not dry_run:
        result |= replay(settings, records, REQUESTS.name(settings.topic_prefix), clear_deadline)
    typer.echo(json.dumps(result) if json_out else ", ".join(f"{k} {v}" for k, v in result.items()))
    if result.get("failed"):
        raise SystemExit(ExitCode.NOT_DELIVERED)
