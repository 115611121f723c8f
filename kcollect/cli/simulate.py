"""`kcollect simulate`: the HTTP subsystem simulator (a test tool, ``kcollect.testkit``)."""

from __future__ import annotations

import json
import signal
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from kcollect.cli.options import ListenAddress


def _fault_settings(text: str) -> str:
    """``--settings`` must hold a JSON object: else a one-line usage error (exit 2)."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise typer.BadParameter(f"not JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, dict):
        raise typer.BadParameter("must be a JSON object, e.g. '{\"error_rate\": 0.1}'")
    return text


def simulate(
    port: Annotated[int, typer.Option(help="TCP port (0: any free one, printed).")] = 8700,
    host: ListenAddress = "127.0.0.1",
    latency_ms: Annotated[float, typer.Option(help="Latency of every call.")] = 0.0,
    jitter_ms: Annotated[float, typer.Option(help="Extra uniform(0, jitter) latency.")] = 0.0,
    error_rate: Annotated[float, typer.Option(help="Share of calls answered 500.")] = 0.0,
    settings_json: Annotated[
        str, typer.Option("--settings", help="More fault settings, a JSON object.", callback=_fault_settings)
    ] = "{}",
    seed: Annotated[int, typer.Option(help="Seed of the fault dice.")] = 1,
    ready_file: Annotated[Path | None, typer.Option(help="Write the port here once listening.")] = None,
) -> None:
    """Run the HTTP subsystem simulator (faults switchable with POST /control; see docs/processor.md)."""
    from kcollect.testkit.simulator import SimState, serve

    initial: dict[str, Any] = {"latency_ms": latency_ms, "jitter_ms": jitter_ms, "error_rate": error_rate}
    state = SimState(initial | json.loads(settings_json), seed)
    server = serve(host, port, state)
    bound = server.server_address[1]
    typer.echo(f"simulating subsystems on http://{host}:{bound}/fetch", err=True)
    if ready_file is not None:
        ready_file.write_text(f"{bound}\n")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.shutdown()
