"""`kcollect settings show`: the effective settings, secrets masked."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from kcollect.cli.choices import SettingsFormat
from kcollect.cli.errors import exit_on_known_errors

settings_app = typer.Typer(help="The effective settings.", no_args_is_help=True)


@settings_app.command("show")
@exit_on_known_errors
def settings_show(
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object (same as --format json).")
    ] = False,
    output_format: Annotated[
        SettingsFormat,
        typer.Option("--format", help="text; json; env: a file KCOLLECT_SETTINGS_FILE reads back."),
    ] = SettingsFormat.text,
) -> None:
    """Print every setting with its effective value; secrets masked (***), or left out with --format env."""
    from streams.settings.dump import settings_dump
    from streams.settings.model import load_settings
    from streams.settings.sources import settings_env_file

    settings = load_settings()
    if json_out or output_format is SettingsFormat.json:
        typer.echo(json.dumps(settings_dump(settings), default=str))
    elif output_format is SettingsFormat.env:
        typer.echo(settings_env_file(settings), nl=False)
    else:
        for key, value in settings_dump(settings).items():
            typer.echo(f"{key}={'' if value is None else value}")
