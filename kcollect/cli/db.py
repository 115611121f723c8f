"""`kcollect db migrate`."""

from __future__ import annotations

import typer

from kcollect.cli.errors import exit_on_known_errors
from streams.settings.model import load_settings

db_app = typer.Typer(help="ClickHouse schema.", no_args_is_help=True)


@db_app.command("migrate")
@exit_on_known_errors
def db_migrate() -> None:
    """Create the ClickHouse database and tables (idempotent)."""
    from streams.clickhouse.client import migrate

    address = load_settings().clickhouse()
    migrate(address)
    typer.echo(f"schema ready in {address.url()}")
