"""`kcollect scheduler run | backfill | pause | resume` (docs/operations.md)."""

from __future__ import annotations

import json
import logging
import signal
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated

import typer

from kcollect.cli.choices import CatchUp, Overlap
from kcollect.cli.errors import exit_on_known_errors
from kcollect.cli.options import Clients, Column, FromClickHouse, JsonOut

if TYPE_CHECKING:
    from producers.enqueue.sources import ClientSource
    from producers.scheduler.schedule import Schedule

scheduler_app = typer.Typer(
    help="Enqueue runs on a schedule (one leader among instances).", no_args_is_help=True
)

Name = Annotated[str, typer.Option(help="Schedule name: run ids are NAME-YYYYMMDDTHHMMSSZ.")]
Every = Annotated[str | None, typer.Option(help="Period: 30s, 5m, 1h (slots aligned to the epoch).")]
CronOpt = Annotated[
    str | None,
    typer.Option("--cron", help='Five-field cron in UTC, e.g. "*/5 * * * *" or "0 6 * * MON-FRI".'),
]
FromFile = Annotated[str | None, typer.Option(help="One id per line (or CSV), read again for every run.")]


def _schedule(every: str | None, cron: str | None) -> Schedule:
    from producers.scheduler.schedule import parse_schedule

    try:
        return parse_schedule(every, cron)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _check_name(name: str) -> None:
    from producers.scheduler.schedule import EPOCH, run_id

    try:
        run_id(name, EPOCH)
    except ValueError:
        raise typer.BadParameter(
            "must be letters, digits and . _ : @ + - (a run id prefix)", param_hint="--name"
        ) from None


def _source_factory(
    clients: str | None, from_file: str | None, column: str | None, query: str | None
) -> Callable[[], ClientSource]:
    from kcollect.cli.enqueue import _source

    _source(clients, from_file, column, query)  # check the options now, before any schedule runs
    return lambda: _source(clients, from_file, column, query)


def _setup_logging() -> None:
    from streams.observability.logs import setup_logging
    from streams.settings.model import load_settings

    setup_logging(logging.getLogger().level or "INFO", load_settings().log_format)


@scheduler_app.command("run")
@exit_on_known_errors
def scheduler_run(
    name: Name = "scheduled",
    every: Every = None,
    cron: CronOpt = None,
    clients: Clients = None,
    from_file: FromFile = None,
    column: Column = None,
    from_clickhouse: FromClickHouse = None,
    catch_up: Annotated[
        CatchUp, typer.Option(help="Missed slots: latest (the newest once) or skip.")
    ] = CatchUp.latest,
    overlap: Annotated[
        Overlap, typer.Option(help="Previous run incomplete: skip the slot, queue one, or allow.")
    ] = Overlap.skip,
    jitter: Annotated[str, typer.Option(help="Delay each slot by up to this (e.g. 30s).")] = "0",
    tick: Annotated[float, typer.Option(min=0.05, help="Seconds between turns.")] = 1.0,
    deadline: Annotated[
        str,
        typer.Option(
            help="When a run's requests expire: period (at the next slot), a duration after the slot "
            "(e.g. 10m), or none."
        ),
    ] = "period",
    http_port: Annotated[int | None, typer.Option(help="Port of /metrics /healthz /readyz.")] = None,
) -> None:
    """Run the scheduler service until SIGTERM: one enqueue per slot across all instances."""
    from producers.scheduler.schedule import parse_duration
    from producers.scheduler.service import Scheduler, SchedulerConfig
    from streams.observability.health import service_health
    from streams.settings.model import load_settings

    _check_name(name)
    try:
        jitter_s = 0.0 if jitter.strip() in ("0", "") else float(parse_duration(jitter))
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--jitter") from None
    schedule = _schedule(every, cron)
    try:
        config = SchedulerConfig(
            name,
            schedule,
            catch_up.value,
            overlap.value,
            jitter_s,
            tick,
            deadline=deadline.strip().lower(),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--deadline") from None
    settings = load_settings()
    _setup_logging()
    factory = _source_factory(clients, from_file, column, from_clickhouse)
    if http_port is not None:
        settings = settings.model_copy(update={"http_port": http_port})
    from producers.scheduler.lock import PauseNotDeliveredError, publish_spec

    try:  # for the console's next slot; the scheduler runs without it
        publish_spec(settings, name, every, cron, schedule.describe())
    except PauseNotDeliveredError as exc:
        logging.getLogger(__name__).warning("%s", exc)
    probe, server = service_health(settings, require_assignment=False)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        Scheduler(settings, config, factory, probe).run(stop)
    finally:
        if server is not None:
            server.close()


@scheduler_app.command("backfill")
@exit_on_known_errors
def scheduler_backfill(
    start: Annotated[str, typer.Option("--from", help="First slot time (ISO-8601, UTC when no offset).")],
    end: Annotated[str, typer.Option("--to", help="Last slot time (inclusive).")],
    name: Name = "scheduled",
    every: Every = None,
    cron: CronOpt = None,
    clients: Clients = None,
    from_file: FromFile = None,
    column: Column = None,
    from_clickhouse: FromClickHouse = None,
    dry_run: Annotated[bool, typer.Option(help="List the slots only.")] = False,
    json_out: JsonOut = False,
) -> None:
    """Enqueue every slot in [--from, --to] whose run does not exist yet (same run ids as the scheduler)."""
    from producers.scheduler.backfill import backfill
    from producers.scheduler.schedule import parse_time
    from streams.settings.model import load_settings

    _check_name(name)
    try:
        first, last = parse_time(start), parse_time(end)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    schedule = _schedule(every, cron)
    factory = _source_factory(clients, from_file, column, from_clickhouse)
    try:
        outcome = backfill(load_settings(), name, schedule, first, last, factory, dry_run)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    if json_out:
        slots = [{"run_id": rid, "outcome": what} for rid, what in outcome]
        typer.echo(json.dumps({"schedule": name, "dry_run": dry_run, "slots": slots}))
        return
    for rid, what in outcome:
        typer.echo(f"{rid}\t{what}")


def _pause(name: str, paused: bool, json_out: bool) -> None:
    from producers.scheduler.lock import publish_pause
    from streams.settings.model import load_settings

    _check_name(name)
    publish_pause(load_settings(), name, paused)
    if json_out:
        typer.echo(json.dumps({"schedule": name, "paused": paused}))
    else:
        typer.echo(f"schedule {name} {'paused' if paused else 'resumed'}")


ScheduleName = Annotated[str, typer.Argument(help="The schedule name.")]


@scheduler_app.command("pause")
@exit_on_known_errors
def scheduler_pause(name: ScheduleName, json_out: JsonOut = False) -> None:
    """Pause a schedule: its leader skips slots until `resume` (recorded on the lock topic)."""
    _pause(name, True, json_out)


@scheduler_app.command("resume")
@exit_on_known_errors
def scheduler_resume(name: ScheduleName, json_out: JsonOut = False) -> None:
    """Resume a paused schedule from its next slot."""
    _pause(name, False, json_out)
