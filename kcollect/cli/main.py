"""The `kcollect` command line: a thin layer over producers/, processors/ and streams/.

This module assembles the app; each command group is a module of this folder (the group's name),
shared options are in ``options``, exit codes in ``errors``.
"""

from __future__ import annotations

import faulthandler
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from typing import Annotated

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from kcollect.cli.choices import LogLevel
from kcollect.cli.console import console
from kcollect.cli.db import db_app
from kcollect.cli.dlq import dlq_app
from kcollect.cli.doctor import doctor
from kcollect.cli.enqueue import enqueue
from kcollect.cli.errors import EXIT_CODES_HELP, ExitCode
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
from streams.settings.model import warn_unknown_variables

app = typer.Typer(
    help=f"kcollect: fleet-scale metric collection through Kafka into ClickHouse.\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack_app, name="stack", help="The embedded local stack (Apache Kafka or Tansu + ClickHouse).")
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
app.command("console")(console)


def kcollect_version() -> str:
    try:
        return package_version("kcollect")
    except PackageNotFoundError:  # a source tree that is not installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"kcollect {kcollect_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    log_level: Annotated[
        LogLevel, typer.Option(envvar="KCOLLECT_LOG_LEVEL", case_sensitive=False, help="Log level.")
    ] = LogLevel.info,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    setup_logging(log_level.value.upper(), log_format_from_env())
    warn_unknown_variables()


def main() -> None:
    # A crash inside a C extension called from Python (confluent-kafka, the ClickHouse driver) prints
    # every thread's Python stack to stderr, the service's log. A crash in one of librdkafka's own
    # threads cannot be traced from here: they block every signal, so the kernel kills the process
    # without running this handler; only a core file has that stack (docs/reliability.md, "Processor
    # crash at start-up (SIGSEGV)").
    faulthandler.enable(file=sys.stderr, all_threads=True)
    sys.exit(run_cli(sys.argv[1:]))


def run_cli(args: list[str]) -> int:
    """Run the command line; a usage error (bad option, bad choice) is one line on stderr and exit 2."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args, prog_name="kcollect", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        return ExitCode.USAGE
    except UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else "kcollect"
        message = " ".join(exc.format_message().replace("Value error, ", "").split())
        print(f"{where}: error: {message} (see {where} --help)", file=sys.stderr)
        return exc.exit_code
    except ClickException as exc:
        print(f"kcollect: {' '.join(exc.format_message().split())}", file=sys.stderr)
        return exc.exit_code
    except typer.Abort:
        print("kcollect: aborted", file=sys.stderr)
        return ExitCode.FAILED
    return result if isinstance(result, int) else 0
