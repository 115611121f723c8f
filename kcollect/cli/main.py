"""The `kcollect` command line: a thin layer over producers/, processors/ and streams/.

This module assembles the app; each command group is a module of this folder (the group's name),
shared options are in ``options``, exit codes in ``errors``.
"""

from __future__ import annotations

import faulthandler
from typing import Annotated

import typer

from kcollect.cli.db import db_app
from kcollect.cli.dlq import dlq_app
from kcollect.cli.doctor import doctor
from kcollect.cli.enqueue import enqueue
from kcollect.cli.errors import EXIT_CODES_HELP
from kcollect.cli.exporter import exporter
from kcollect.cli.lag import lag
from kcollect.cli.processor import processor
from kcollect.cli.run import run
from kcollect.cli.runs import runs_app
from kcollect.cli.scheduler import scheduler_app
from kcollect.cli.settings import settings_app
from kcollect.cli.simulate import simulate
from kcollect.cli.sink import sink
from kcollect.cli.stack import stack_app
from kcollect.cli.state import state_app
from kcollect.cli.topics import topics_app
from streams.observability.logs import log_format_from_env, setup_logging

app = typer.Typer(
    help=f"kcollect: fleet-scale metric collection through Kafka into ClickHouse.\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(stack_app, name="stack", help="The embedded local stack (Tansu broker + ClickHouse).")
app.add_typer(topics_app, name="topics")
app.add_typer(db_app, name="db")
app.add_typer(runs_app, name="runs")
app.command("enqueue")(enqueue)
app.command("processor")(processor)
app.command("simulate")(simulate)
app.add_typer(dlq_app, name="dlq")
app.command("lag")(lag)
app.command("exporter")(exporter)
app.command("doctor")(doctor)
app.add_typer(scheduler_app, name="scheduler")
app.add_typer(settings_app, name="settings")
app.add_typer(state_app, name="state")
app.command("sink")(sink)
app.command("run")(run)


@app.callback()
def _main(log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO") -> None:
    setup_logging(log_level, log_format_from_env())


def main() -> None:
    # A crash inside a C extension (librdkafka, the ClickHouse driver's) prints every thread's Python
    # stack to stderr, which the services' logs keep, instead of leaving only an exit code of -11.
    faulthandler.enable()
    app()
