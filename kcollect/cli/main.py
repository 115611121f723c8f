"""The `kcollect` command line: a thin layer over producers/, processors/ and streams/."""

from __future__ import annotations

import faulthandler
import json
import resource
import sys
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError

from kcollect.cli.choices import LogLevel
from kcollect.cli.console import console
from kcollect.cli.enqueue import enqueue
from kcollect.cli.errors import EXIT_CODES_HELP, exit_on_known_errors
from kcollect.cli.lag import doctor, exporter, lag
from kcollect.cli.processor import dlq_app, processor, simulate
from kcollect.cli.runs import runs_app
from kcollect.cli.scheduler import scheduler_app, settings_app
from kcollect.cli.stack import stack_app
from streams.observability.logs import log_format_from_env, setup_logging
from streams.settings.model import load_settings, warn_unknown_variables

app = typer.Typer(
    help=f"kcollect: fleet-scale metric collection through Kafka into ClickHouse.\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(stack_app, name="stack", help="The embedded local stack (Tansu broker + ClickHouse).")
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
db_app = typer.Typer(help="ClickHouse schema.", no_args_is_help=True)
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
app.command("console")(console)
app.add_typer(scheduler_app, name="scheduler")
app.add_typer(settings_app, name="settings")

ReadyFile = Annotated[Path | None, typer.Option(help="Write this file once partitions are assigned.")]
StatsFile = Annotated[Path | None, typer.Option(help="Write statistics as JSON here at exit.")]


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
    ] = LogLevel.INFO,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    setup_logging(log_level.value, log_format_from_env())
    warn_unknown_variables()


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _write_stats(path: Path | None, stats: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(stats | {"peak_rss_mb": _peak_rss_mb()}))


JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


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


@db_app.command("migrate")
@exit_on_known_errors
def db_migrate(json_out: JsonOut = False) -> None:
    """Create the ClickHouse database and tables (idempotent)."""
    from streams.clickhouse.client import migrate

    address = load_settings().clickhouse()
    migrate(address)
    if json_out:
        typer.echo(json.dumps({"ready": True, "clickhouse": address.url(), "database": address.database}))
    else:
        typer.echo(f"schema ready in {address.url()}")


@app.command()
@exit_on_known_errors
def sink(ready_file: ReadyFile = None, stats_file: StatsFile = None) -> None:
    """Run the sink service: results in, ClickHouse rows out (until SIGTERM)."""
    from processors.sink.service import run_sink

    stats = run_sink(load_settings(), ready_file)
    _write_stats(stats_file, stats)


@app.command()
@exit_on_known_errors
def run(
    clients: Annotated[str, typer.Option(help="N (0..N-1) or FIRST-LAST.")] = "100000",
    run_id: Annotated[str | None, typer.Option(help="The run id (default: run-<UTC time>-<pid>).")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every row.")] = 600.0,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """A full collection run on the configured stack (the local one when none is set), with a summary."""
    from kcollect.localstack.runner import default_run_id, run_collection
    from producers.enqueue.sources import RangeSource

    summary = run_collection(load_settings(), RangeSource.parse(clients), run_id or default_run_id(), timeout)
    if json_out:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        typer.echo(
            f"run {summary.run_id}: {summary.stored}/{summary.clients} clients stored in "
            f"{summary.seconds:.2f} s ({summary.clients / max(summary.seconds, 1e-6):,.0f} clients/s)"
        )
        for stage, numbers in summary.stages.items():
            typer.echo(
                f"  {stage:<9} {numbers.get('clients_per_s', 0):>12,.0f} clients/s"
                + (f"  peak RSS {numbers['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in numbers else "")
            )
    if not summary.complete:
        raise SystemExit(1)


def main() -> None:
    # A crash inside a C extension (librdkafka, the ClickHouse driver's) prints every thread's Python
    # stack to stderr, which the services' logs keep, instead of leaving only an exit code of -11.
    faulthandler.enable()
    sys.exit(run_cli(sys.argv[1:]))


def run_cli(args: list[str]) -> int:
    """Run the command line; a usage error (bad option, bad choice) is one line on stderr and exit 2."""
    command = typer.main.get_command(app)
    try:
        result = command.main(args, prog_name="kcollect", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()
        return 2
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
        return 1
    return result if isinstance(result, int) else 0
