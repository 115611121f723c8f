"""`kcollect topics create`."""

from __future__ import annotations

import json

import typer

from kcollect.cli.errors import exit_on_known_errors
from kcollect.cli.options import JsonOut
from streams.settings.model import load_settings

topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)


@topics_app.command("create")
@exit_on_known_errors
def topics_create(json_out: JsonOut = False) -> None:
    """Create every declared topic that does not exist yet (idempotent)."""
    from schemas.topics import ALL_TOPICS
    from streams.kafka.admin import create_topics

    settings = load_settings()
    created = create_topics(settings)
    if json_out:
        declared = [spec.name(settings.topic_prefix) for spec in ALL_TOPICS]
        typer.echo(json.dumps({"created": created, "declared": declared}))
    else:
        typer.echo(f"created {len(created)} topic(s){': ' + ', '.join(created) if created else ''}")
