"""`kcollect state inspect | reset`: the processors' per-client state (docs/state.md)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from kcollect.cli.errors import ExitCode, exit_on_known_errors
from kcollect.cli.options import JsonOut
from streams.settings.model import load_settings

state_app = typer.Typer(help="The processors' per-client state (its changelog topic).", no_args_is_help=True)


@state_app.command("inspect")
@exit_on_known_errors
def state_inspect(
    client: Annotated[str, typer.Option(help="The client id.")],
    schedule: Annotated[str | None, typer.Option(help="Only this schedule.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One line of JSON (else indented).")] = False,
) -> None:
    """A client's kept runs (values, stateful outputs, reasons) per schedule, as JSON (a list)."""
    from kcollect.ops.state import inspect_client

    found = inspect_client(load_settings(), client, schedule)
    typer.echo(json.dumps(found) if json_out else json.dumps(found, indent=2))
    if not found:
        typer.echo(f"kcollect: no state for client {client!r}", err=True)
        raise SystemExit(ExitCode.FAILED)


@state_app.command("reset")
@exit_on_known_errors
def state_reset(
    schedule: Annotated[str, typer.Option(help="The schedule whose state starts afresh.")],
    dry_run: Annotated[bool, typer.Option(help="Only count what would be deleted.")] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Really delete (needed unless --dry-run).")] = False,
    force: Annotated[bool, typer.Option(help="Even while the processor group has members.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Delete a schedule's state (every client's history and the run clocks): the next run of the
    schedule is every client's first sight. Refused while processors run (they would keep their
    local copies until their next restore) unless --force."""
    from kcollect.ops.state import processor_members, reset_schedule

    settings = load_settings()
    if not dry_run and not yes:
        typer.echo("kcollect: state reset deletes a schedule's state: add --yes (or --dry-run)", err=True)
        raise SystemExit(ExitCode.USAGE)
    if not dry_run and not force:
        members = processor_members(settings)
        if members is None or members > 0:
            said = "an unknown number of" if members is None else str(members)
            typer.echo(
                f"kcollect: group {settings.processor_group} has {said} member(s): stop the processors "
                "first (or --force)",
                err=True,
            )
            raise SystemExit(ExitCode.USAGE)
    result = reset_schedule(settings, schedule, dry_run) | {"dry_run": dry_run}
    typer.echo(json.dumps(result) if json_out else _reset_line(schedule, result))
    if result.get("failed"):
        raise SystemExit(ExitCode.NOT_DELIVERED)


def _reset_line(schedule: str, result: dict[str, Any]) -> str:
    """``state reset`` without --json: what was (or would be) deleted, in words."""
    found = f"{result['clients']} client(s) and {result['clocks']} run clock(s)"
    if result["dry_run"]:
        return f"schedule {schedule}: would delete {found} (dry run)"
    failed = f", {result['failed']} not confirmed" if result.get("failed") else ""
    return f"schedule {schedule}: {found}, {result['deleted']} deleted{failed}"
