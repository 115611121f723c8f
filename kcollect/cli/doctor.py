"""`kcollect doctor`: concrete advice from lag, membership, partitions and rates."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from kcollect.cli.errors import exit_on_known_errors
from streams.kafka.admin import require_topics
from streams.settings.model import load_settings


@exit_on_known_errors
def doctor(
    interval: Annotated[float, typer.Option(help="Seconds between the two samples.")] = 5.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Read lag, membership, partition counts and rates (two samples) and print concrete advice."""
    from kcollect.ops.doctor import advise
    from kcollect.ops.doctor_facts import gather_facts

    settings = load_settings()
    require_topics(settings, [])  # no broker: one line, exit 3
    facts = gather_facts(settings, interval)
    findings = advise(facts)
    if json_out:
        typer.echo(json.dumps({"facts": facts.as_dict(), "findings": [f.as_dict() for f in findings]}))
        return
    console = Console(width=max(Console().width, 100))
    for finding in findings:
        style = {"ok": "green", "info": "cyan", "warn": "yellow", "act": "bold red"}[finding.level]
        console.print(Text(f"[{finding.level.upper():>4}] ", style=style) + Text(finding.title, style="bold"))
        for line in finding.detail:
            console.print(Padding(line, (0, 0, 0, 7)))
