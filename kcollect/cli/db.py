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
    """Create the ClickHouse database, tables and views, and move a table of an earlier layout over (the
    JSON-text values to typed columns, in place; older version numbers): idempotent."""
    from streams.clickhouse.client import migrate

    address = load_settings().clickhouse()
    statements = migrate(address)
    # what moved data or columns (the DDL itself is idempotent and runs every time)
    changes = [
        s.split("\n", 1)[0]
        for s in statements
        if s.startswith(("ALTER", "INSERT")) and "MODIFY SETTING" not in s
    ]
    where = f" on cluster {address.cluster}" if address.cluster else ""
    if json_out:
        facts = {"ready": True, "clickhouse": address.url(), "database": address.database}
        typer.echo(json.dumps(facts | {"cluster": address.cluster, "changes": changes}))
    else:
        for change in changes:
            typer.echo(f"  {change[:160]}")
        typer.echo(f"schema ready in {address.url()}{where}")
