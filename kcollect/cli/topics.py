"""`kcollect topics create` and `kcollect topics grow`."""

from __future__ import annotations

import json
from typing import Annotated

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


@topics_app.command("grow")
@exit_on_known_errors
def topics_grow(
    partitions: Annotated[int, typer.Option(min=1, max=10000, help="Partitions each topic should have.")],
    json_out: JsonOut = False,
) -> None:
    """Add partitions to the requests, retry and results topics (never removes any; idempotent).

    A client's requests may land in another partition afterwards: see docs/operations.md."""
    from streams.kafka.admin import grow_topics

    grown = grow_topics(load_settings(), partitions)
    if json_out:
        typer.echo(json.dumps({name: {"before": b, "after": a} for name, (b, a) in grown.items()}))
        return
    for name, (before, after) in grown.items():
        typer.echo(
            f"{name}: {before} -> {after} partition(s)" if after != before else f"{name}: {after} already"
        )
