"""Processor commands: `kcollect processor`, `kcollect simulate`, `kcollect dlq inspect | replay`."""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from kcollect.cli.errors import exit_on_known_errors
from streams.settings.model import load_settings

dlq_app = typer.Typer(help="The requests dead-letter topic.", no_args_is_help=True)

ReadyFile = Annotated[Path | None, typer.Option(help="Write this file once partitions are assigned.")]
StatsFile = Annotated[Path | None, typer.Option(help="Write statistics as JSON here at exit.")]


@exit_on_known_errors
def processor(ready_file: ReadyFile = None, stats_file: StatsFile = None) -> None:
    """Run the processor service: requests in, fetched and computed results out (until SIGTERM).

    Exits 2 when the processor config (KCOLLECT_PROCESSOR_CONFIG) is invalid, 1 when the DLQ guard
    stops it because almost every request is being dead-lettered.
    """
    import resource

    from processors.processor.config import ConfigError
    from processors.processor.dead_letters import ProcessorFailing
    from processors.processor.service import run_processor

    try:
        stats = run_processor(load_settings(), ready_file)
    except ConfigError as exc:
        print(f"kcollect: processor config: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    except ProcessorFailing as exc:
        print(f"kcollect: processor stopped: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    if stats_file is not None:
        rss = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        stats_file.write_text(json.dumps(stats | {"peak_rss_mb": rss}))


def simulate(
    port: Annotated[int, typer.Option(help="TCP port (0: any free one, printed).")] = 8700,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    latency_ms: Annotated[float, typer.Option(help="Latency of every call.")] = 0.0,
    jitter_ms: Annotated[float, typer.Option(help="Extra uniform(0, jitter) latency.")] = 0.0,
    error_rate: Annotated[float, typer.Option(help="Share of calls answered 500.")] = 0.0,
    settings_json: Annotated[str, typer.Option("--settings", help="More fault settings as JSON.")] = "{}",
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


@dlq_app.command("inspect")
@exit_on_known_errors
def dlq_inspect(
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    samples: Annotated[int, typer.Option(help="Samples per stage and error class.")] = 3,
    idle_seconds: Annotated[float, typer.Option(help="Stop reading after this long without records.")] = 2.0,
) -> None:
    """Counts of dead-lettered requests by stage, error class and reason, with samples."""
    from kcollect.ops.dlq import read_dlq, summarize
    from schemas.topics import REQUESTS_DLQ

    settings = load_settings()
    report = summarize(read_dlq(settings, REQUESTS_DLQ.name(settings.topic_prefix), idle_seconds), samples)
    if json_out:
        typer.echo(json.dumps(report))
        return
    typer.echo(f"{report['total']} dead-lettered request(s)")
    for title in ("by_stage", "by_error_class", "by_reason"):
        typer.echo(f"  {title.removeprefix('by_')}:")
        for name, count in report[title].items():
            typer.echo(f"    {name:<28} {count:>10,}")
    for sample in report["samples"]:
        h = sample["headers"]
        typer.echo(
            f"  sample {sample['partition']}@{sample['offset']} {h.get('stage')}/{h.get('error_class')}: "
            f"{h.get('error_message', '')[:120]}"
        )


@dlq_app.command("replay")
@exit_on_known_errors
def dlq_replay(
    stage: Annotated[str | None, typer.Option(help="Only this stage (decode, deadline, fetch).")] = None,
    error_class: Annotated[str | None, typer.Option(help="Only this error class.")] = None,
    reason: Annotated[str | None, typer.Option(help="Only this reason (e.g. expired).")] = None,
    run_id: Annotated[str | None, typer.Option(help="Only this run.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many records.")] = 1_000_000,
    clear_deadline: Annotated[bool, typer.Option(help="Drop deadline_ms from replayed requests.")] = True,
    dry_run: Annotated[bool, typer.Option(help="Only count what would be replayed.")] = False,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Re-enqueue chosen dead-lettered requests onto the requests topic (attempt reset to 0)."""
    from kcollect.ops.dlq import read_dlq, replay
    from schemas.topics import REQUESTS, REQUESTS_DLQ

    settings = load_settings()
    records = [
        r
        for r in read_dlq(settings, REQUESTS_DLQ.name(settings.topic_prefix))
        if r.matches(stage, error_class, reason, run_id)
    ][:limit]
    result = {"matched": len(records)}
    if not dry_run:
        result |= replay(settings, records, REQUESTS.name(settings.topic_prefix), clear_deadline)
    typer.echo(json.dumps(result) if json_out else ", ".join(f"{k} {v}" for k, v in result.items()))
    if result.get("failed"):
        raise SystemExit(6)
