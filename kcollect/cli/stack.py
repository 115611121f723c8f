"""``kcollect stack up|down|status``: the embedded local stack (Apache Kafka or Tansu + clickhouse-server)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from kcollect.cli.errors import ExitCode
from kcollect.cli.options import JsonOut
from kcollect.localstack import stack

T = TypeVar("T")

stack_app = typer.Typer(
    help=(
        "Run a local broker (Apache Kafka from its Maven jars, or Tansu without Java; "
        "KCOLLECT_LOCAL_BROKER=kafka|tansu chooses) and ClickHouse as background processes."
    ),
    no_args_is_help=True,
)

StateDir = Annotated[
    Path | None,
    typer.Option(
        "--state-dir", help="State folder (default: $KCOLLECT_STATE_DIR or ~/.local/state/kcollect)."
    ),
]


def _run(command: str, action: Callable[[], T]) -> T:
    """Run ``action``; on a stack error print one line to stderr and exit 1 (no traceback)."""
    try:
        return action()
    except (stack.StackError, OSError, ValueError) as exc:
        message = " ".join(str(exc).split()) or type(exc).__name__
        typer.echo(f"kcollect stack {command}: {message}", err=True)
        raise typer.Exit(ExitCode.FAILED) from None


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2))


def _print_addresses(info: dict[str, Any]) -> None:
    typer.echo(f"broker:            {info['broker']}")
    typer.echo(f"bootstrap servers: {info['bootstrap_servers']}")
    typer.echo(f"clickhouse url:    {info['clickhouse_url']}")
    if info.get("clickhouse_cluster"):
        typer.echo(f"clickhouse cluster: {info['clickhouse_cluster']}")
    for process in info["processes"]:
        state = "running" if process["alive"] else "dead"
        where = f"pid {process['pid']} port {process['port']}"
        typer.echo(f"{process['name']:<11} {where} {state}, log {process['log_path']}")


@stack_app.command()
def up(
    json_output: JsonOut = False,
    state_dir: StateDir = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for each service to answer.")] = 60.0,
    clickhouse_cluster: Annotated[
        bool,
        typer.Option(
            "--clickhouse-cluster",
            help="ZooKeeper and a ClickHouse cluster of 2 shards x 2 replicas (cluster 'kcollect') "
            "instead of one server (needs Debian's zookeeper package and Java); a running single-server "
            "stack is replaced. Without it a running stack of either kind is reused.",
        ),
    ] = False,
) -> None:
    """Start the broker and ClickHouse (or reuse the running ones) and print their addresses.

    The broker is Apache Kafka where java and mvn are on PATH (its jars are resolved from Maven once,
    then cached in the state folder), else Tansu; KCOLLECT_LOCAL_BROKER=kafka|tansu chooses.
    """
    cluster = True if clickhouse_cluster else None
    _run("up", lambda: stack.up(state_dir, timeout=timeout, clickhouse_cluster=cluster))
    info = stack.status(state_dir)
    if info["broker_note"]:
        typer.echo(f"note: {info['broker_note']}", err=True)
    if json_output:
        _print_json(info)
    else:
        _print_addresses(info)


@stack_app.command()
def down(json_output: JsonOut = False, state_dir: StateDir = None) -> None:
    """Stop the processes recorded in stack.json (SIGTERM, then SIGKILL) and forget them."""
    stopped = _run("down", lambda: stack.down(state_dir))
    if json_output:
        _print_json({"stopped": stopped})
    else:
        typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")


@stack_app.command()
def status(json_output: JsonOut = False, state_dir: StateDir = None) -> None:
    """Show whether the local stack runs and where.

    Exits 0 whether or not the stack runs: read "running" (true or false) from the output.

    With --json: "running", "broker" ("kafka" or "tansu"), "broker_note" (why the broker is not the
    default, or null), "bootstrap_servers", "clickhouse_url" (both null unless running), "state_dir",
    "stack_file" and "processes".
    """
    info = _run("status", lambda: stack.status(state_dir))
    if json_output:
        _print_json(info)
    elif info["running"]:
        _print_addresses(info)
    else:
        typer.echo(f"not running (state folder {info['state_dir']})")
