"""``kcollect console``: the web console (kcollect/console/, docs/console.md), until SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Annotated

import typer

from kcollect.cli.errors import exit_on_known_errors
from streams.settings.model import load_settings

TOKEN_VARIABLE = "KCOLLECT_CONSOLE_TOKEN"


@exit_on_known_errors
def console(
    port: Annotated[int, typer.Option(min=0, max=65535, help="HTTP port (0: any free one, printed).")] = 8088,
    addr: Annotated[
        str, typer.Option(help="Address to listen on. Beyond loopback, actions need KCOLLECT_CONSOLE_TOKEN.")
    ] = "127.0.0.1",
    lag_interval: Annotated[float, typer.Option(min=0.2, help="Seconds between lag samples.")] = 2.0,
) -> None:
    """Serve the web console: runs with progress, run detail (dead letters, replay, verify), lag, schedules.

    Every page is also JSON under /api/ (the same data as the CLI's --json). Actions are POSTs; they need
    the token of KCOLLECT_CONSOLE_TOKEN when it is set, and are refused when the console listens beyond
    loopback without one.
    """
    from kcollect.console.data import ConsoleData
    from kcollect.console.server import is_loopback, serve

    settings = load_settings()
    token = os.environ.get(TOKEN_VARIABLE) or None
    log = logging.getLogger("kcollect.console")
    data = ConsoleData(settings, lag_interval)
    server = serve(data, addr, port, token)
    data.start()
    bound = server.server_address[1]
    actions = "token required" if token else ("open (loopback)" if is_loopback(addr) else "refused: no token")
    typer.echo(f"console on http://{addr}:{bound}/ (actions: {actions})", err=True)
    log.info("console listening on %s:%d, actions %s", addr, bound, actions)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, name="console-http", daemon=True)
    thread.start()
    stop.wait()
    server.shutdown()
    data.close()
