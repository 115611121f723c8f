"""`kcollect db migrate`."""

from __future__ import annotations

import json

import typer

from kcollect.cli.errors import exit_on_known_errors
from kcollect.cli.options import JsonOut
from streams.settings.model import load_settings

db_app = typer.Typer(help="ClickHouse schema.", no_args_is_help=True)


@db_app.command("migrate")
@exit_on_known_errors
def db_migrate(json_out: JsonOut = False) -> None:
    """Create the ClickHouse database and tables (idempotent)."""
    from streams.clickhouse.client import migrate

    address = load_settings().clickhouse()
    migrate(address)
    where = f" on cluster {address.cluster}" if address.cluster else ""
    if json_out:
        facts = {"ready": True, "clickhouse": address.url(), "database": address.database}
        typer.echo(json.dumps(facts | {"cluster": address.cluster}))
    else:
        typer.echo(f"schema ready in {address.url()}{where}")
