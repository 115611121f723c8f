"""The `kcollect` command line: a thin layer over producers/, processors/ and streams/."""

from __future__ import annotations

import faulthandler
import json
import resource
from pathlib import Path
from typing import Annotated, Any

import typer

from kcollect.cli.enqueue import enqueue
from kcollect.cli.errors import EXIT_CODES_HELP, exit_on_known_errors
from kcollect.cli.lag import doctor, exporter, lag
from kcollect.cli.processor import dlq_app, processor, simulate
from kcollect.cli.runs import runs_app
from kcollect.cli.scheduler import scheduler_app, settings_app
from kcollect.cli.stack import stack_app
from streams.observability.logs import log_format_from_env, setup_logging
from streams.settings.model import load_settings

app = typer.Typer(
    help=f"kcollect: fleet-scale metric collection through Kafka into ClickHouse.\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(stack_app, name="stack", help="The embedded local stack (Apache Kafka or Tansu + ClickHouse).")
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
app.add_typer(scheduler_app, name="scheduler")
app.add_typer(settings_app, name="settings")

ReadyFile = Annotated[Path | None, typer.Option(help="Write this file once partitions are assigned.")]
StatsFile = Annotated[Path | None, typer.Option(help="Write statistics as JSON here at exit.")]


@app.callback()
def _main(log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO") -> None:
    setup_logging(log_level, log_format_from_env())


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _write_stats(path: Path | None, stats: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(stats | {"peak_rss_mb": _peak_rss_mb()}))


@topics_app.command("create")
@exit_on_known_errors
def topics_create() -> None:
    """Create every declared topic that does not exist yet (idempotent)."""
    from streams.kafka.admin import create_topics

    created = create_topics(load_settings())
    typer.echo(f"created {len(created)} topic(s){': ' + ', '.join(created) if created else ''}")


@db_app.command("migrate")
@exit_on_known_errors
def db_migrate() -> None:
    """Create the ClickHouse database and tables (idempotent)."""
    from streams.clickhouse.client import migrate

    address = load_settings().clickhouse()
    migrate(address)
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
    app()
