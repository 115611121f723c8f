"""`kcollect topics create`."""

from __future__ import annotations

import typer

from kcollect.cli.errors import exit_on_known_errors
from streams.settings.model import load_settings

topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)


@topics_app.command("create")
@exit_on_known_errors
def topics_create() -> None:
    """Create every declared topic that does not exist yet (idempotent)."""
    from streams.kafka.admin import create_topics

    created = create_topics(load_settings())
    typer.echo(f"created {len(created)} topic(s){': ' + ', '.join(created) if created else ''}")
