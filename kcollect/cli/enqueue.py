"""`kcollect enqueue`: enqueue a collection run from a range, a file (or stdin) or a ClickHouse query."""

from __future__ import annotations

import json
import logging
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kcollect.cli.errors import exit_on_known_errors
from kcollect.cli.options import Clients, Column, FromClickHouse

if TYPE_CHECKING:
    from producers.enqueue.sources import ClientSource


def _source(
    clients: str | None, from_file: str | None, column: str | None, query: str | None
) -> ClientSource:
    from producers.enqueue.source_clickhouse import ClickHouseSource
    from producers.enqueue.sources import FileSource, RangeSource
    from streams.settings.model import load_settings

    given = [name for name, value in (("--clients", clients), ("--from-file", from_file),
                                      ("--from-clickhouse", query)) if value is not None]  # fmt: skip
    if len(given) != 1:
        raise typer.BadParameter(
            "give exactly one of --clients, --from-file, --from-clickhouse"
            + (f" (got {', '.join(given)})" if given else "")
        )
    if column is not None and from_file is None:
        raise typer.BadParameter("--column goes with --from-file", param_hint="--column")
    if clients is not None:
        return RangeSource.parse(clients)
    if from_file is not None:
        return FileSource(from_file, column)
    assert query is not None
    # The driver logs a traceback for a refused connection; our one-line error says it (exit 5).
    logging.getLogger("clickhouse_driver.connection").setLevel(logging.ERROR)
    return ClickHouseSource(load_settings(), query)


def _report_bad_lines(data: dict[str, Any]) -> None:
    if data["skipped_invalid"]:
        lines = ", ".join(f"line {bad['line']} ({bad['reason']})" for bad in data["bad_lines"])
        more = data["skipped_invalid"] - len(data["bad_lines"])
        typer.echo(
            f"skipped {data['skipped_invalid']} invalid line(s): {lines}"
            + (f", and {more} more" if more > 0 else ""),
            err=True,
        )


@exit_on_known_errors
def enqueue(
    run_id: Annotated[str | None, typer.Option(help="The run id.")] = None,
    schedule: Annotated[str | None, typer.Option(help="Schedule name: run id NAME-<scheduled-for>.")] = None,
    scheduled_for: Annotated[
        str | None, typer.Option(help="ISO-8601 time of the scheduled run (UTC when no offset).")
    ] = None,
    clients: Clients = None,
    from_file: Annotated[str | None, typer.Option(help="One id per line (or CSV); - is stdin.")] = None,
    column: Column = None,
    from_clickhouse: FromClickHouse = None,
    strict: Annotated[bool, typer.Option(help="Refuse the whole source if any line is invalid.")] = False,
    dry_run: Annotated[bool, typer.Option(help="Read and validate only; print the counts.")] = False,
    max_lag: Annotated[
        int | None, typer.Option(min=1, help="Pause while the processors' lag is at this many requests.")
    ] = None,
    resume_lag: Annotated[
        int | None, typer.Option(min=0, help="Resume when the lag is down to this (default max-lag/2).")
    ] = None,
    deadline: Annotated[
        str | None,
        typer.Option(
            help="Requests expire (dead-lettered, reason expired) at this ISO-8601 time (UTC when no "
            "offset) or this long after the run's request time (90m, 2h, 1d). Default: none."
        ),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Progress on stderr (bar on a TTY, else log lines).")] = True,
    json_out: Annotated[bool, typer.Option("--json", help="Print the summary as JSON on stdout.")] = False,
) -> None:
    """Enqueue one collection request per distinct valid client for a run.

    Sources (give exactly one): --clients N or FIRST-LAST; --from-file PATH (one id per line, CSV
    with --column NAME, - for stdin); --from-clickhouse QUERY (first column).

    Invalid lines (empty, over 128 characters, unprintable characters, a CSV row without the column)
    are skipped and reported with line numbers; --strict refuses the whole source instead.
    Duplicate ids are enqueued once, exactly, in bounded memory: past KCOLLECT_ENQUEUE_MEMORY_MB
    (default 128) of ids seen, the rest are checked through hash partitions in a temporary directory.

    The run id is --run-id, or NAME-YYYYMMDDTHHMMSSZ from --schedule and --scheduled-for: the same
    command is the same run. After a crash, run it again to complete the run (duplicates are
    removed downstream: read results with FINAL).

    Exit codes: 0 every request confirmed; 1 the duplicate removal could not write its spill files;
    2 bad arguments, CSV without the column, or an invalid line with --strict (nothing enqueued);
    3 broker unreachable (within KCOLLECT_BROKER_TIMEOUT_SECONDS, default 30 s);
    4 topic missing (run `kcollect topics create`); 5 ClickHouse unavailable;
    6 deliveries not confirmed (count printed; run the same command again);
    7 the source could not be read (unreadable file, failing ClickHouse query).
    """
    from producers.enqueue.enqueue import CHUNK, enqueue_run
    from producers.enqueue.progress import make_reporter
    from producers.enqueue.sources import SourceError
    from producers.enqueue.throttle import Hysteresis
    from producers.enqueue.validate import strict_pass, validate_only
    from producers.scheduler.schedule import parse_deadline
    from streams.runs.identity import resolve_run_id
    from streams.settings.model import load_settings

    source = _source(clients, from_file, column, from_clickhouse)
    try:
        run = resolve_run_id(run_id, schedule, scheduled_for) if not dry_run or run_id or schedule else None
        expiry = parse_deadline(deadline) if deadline is not None else None
        if max_lag is not None:
            Hysteresis.of(max_lag, resume_lag)
        elif resume_lag is not None:
            raise ValueError("--resume-lag goes with --max-lag")
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    settings = load_settings()
    memory_mb = settings.enqueue_memory_mb
    if dry_run:
        stats = validate_only(source, CHUNK, memory_mb)
        data: dict[str, Any] = {
            "dry_run": True,
            "run_id": run,
            "source": source.describe(),
            "read": stats.read,
            "total": stats.valid,
            "skipped_invalid": stats.invalid,
            "duplicates": stats.duplicates,
            "bad_lines": [{"line": b.line, "reason": b.reason} for b in stats.bad_lines],
        }
        _report_bad_lines(data)
        if strict and stats.invalid:
            raise SourceError(f"--strict: {source.describe()} would be refused: {stats.bad_lines_text()}")
        _print(data, json_out)
        return
    assert run is not None
    spool = strict_pass(source, CHUNK, memory_mb) if strict else None
    try:
        summary = enqueue_run(
            settings,
            run,
            spool or source,
            reporter=make_reporter(progress),
            max_lag=max_lag,
            resume_lag=resume_lag,
            deadline=expiry,
        )
    finally:
        if spool is not None:
            spool.remove()
    data = summary.as_dict()
    if spool is not None:
        data.update(read=spool.stats.read, duplicates=spool.stats.duplicates)
    _report_bad_lines(data)
    _print(data, json_out)


def _iso_ms(ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def _print(data: dict[str, Any], json_out: bool) -> None:
    if json_out:
        typer.echo(json.dumps(data))
        return
    if data.get("dry_run"):
        typer.echo(
            f"dry run, nothing enqueued: {data['source']}: {data['read']:,} line(s), "
            f"{data['total']:,} distinct valid client(s), {data['skipped_invalid']:,} invalid, "
            f"{data['duplicates']:,} duplicate(s)"
        )
        return
    typer.echo(
        f"run {data['run_id']}: enqueued {data['enqueued']:,} request(s) from {data['source']} in "
        f"{data['seconds']:.2f} s ({data['requests_per_s']:,.0f}/s); {data['skipped_invalid']:,} invalid "
        f"line(s) skipped, {data['duplicates']:,} duplicate(s)"
        + (f"; throttled {data['throttled_seconds']:.1f} s" if data["throttled_seconds"] else "")
        + (f"; deadline {_iso_ms(data['deadline_ms'])}" if data.get("deadline_ms") else "")
    )
    sys.stdout.flush()
