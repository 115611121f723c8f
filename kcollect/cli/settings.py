"""`kcollect settings show`: the effective settings, secrets masked."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from kcollect.cli.errors import exit_on_known_errors

if TYPE_CHECKING:
    pass


settings_app = typer.Typer(help="The effective settings.", no_args_is_help=True)


@settings_app.command("show")
@exit_on_known_errors
def settings_show(json_out: Annotated[bool, typer.Option("--json", help="One JSON object.")] = False) -> None:
    """Print every setting with its effective value; secrets are masked (***)."""
    from streams.settings.dump import settings_dump
    from streams.settings.model import load_settings

    dump = settings_dump(load_settings())
    if json_out:
        typer.echo(json.dumps(dump, default=str))
    else:
        for key, value in dump.items():
            typer.echo(f"{key}={'' if value is None else value}")
