"""bench/brokers: bench/e2e, bench/processor and bench/sink on Apache Kafka and on Tansu, in one run.

``python -m bench.brokers [--brokers kafka,tansu] [--rounds 2] [--clients 700000]
[--e2e-cases plain,inproc] [--processor 700000] [--http 200000] [--sink 700000] [--sinks 1,2]
[--json FILE]``

One clickhouse-server serves the whole run. Each round starts every broker in turn (A B A B ...), each
as its own fresh process in its own folder (Apache Kafka: one KRaft node, the java process; Tansu on
memory storage), warms it up with an unmeasured e2e case of 10,000 clients, runs the three benches on
it and stops it before the next one starts, so the brokers never share the machine with each other.
For every measured phase (e2e: first request to last row stored; processor: first assignment to every
offset committed; sink: first assignment to every row stored) the broker's CPU seconds and peak RSS
over that phase are read from /proc (``bench.procstat.PhaseMeter``) next to the rate and the
services' CPU per 100k clients. The load average is recorded before and after every broker's turn.
The summary gives each figure's mean per broker and the ratio of the first broker to the second: only
figures of one run are compared.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean
from typing import Any, cast

from bench.machine import machine_line

BROKERS = ("kafka", "tansu")
WARM_UP_CLIENTS = 10_000


@dataclass
class Figure:
    """One measured phase on one broker: its rate and what the processes used during it."""

    round: int
    broker: str
    bench: str
    case: str
    rate: float  # clients (or rows) per second
    seconds: float
    cpu_s_per_100k: dict[str, float] = field(default_factory=dict)  # per service process
    broker_cpu_s: float = 0.0
    broker_peak_rss_mb: float = 0.0
    ok: bool = True


def alternation(brokers: Iterable[str], rounds: int) -> list[tuple[int, str]]:
    """(round, broker) in the order they run: every broker once per round, in the order given."""
    order = list(brokers)
    return [(r, broker) for r in range(1, rounds + 1) for broker in order]


def per_100k(cpu_s: Mapping[str, float], clients: int) -> dict[str, float]:
    return {name: round(c * 100_000 / clients, 2) for name, c in cpu_s.items()}


def load_line() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- the three benches, each turned into figures -------------------------------------------------


def e2e_figures(
    bootstrap: str, ch_url: str, infra: dict[str, int], cases: list[str], clients: int
) -> list[Figure]:
    from bench.e2e import CASES, run_case

    # not measured: the first clients of a fresh broker pay for its internal topics (Kafka creates
    # __consumer_offsets and answers "coordinator load in progress" to the first idempotent producer)
    run_case(bootstrap, ch_url, "warm-up", WARM_UP_CLIENTS)
    figures = []
    for key in cases:
        label, options = CASES[key]
        row = run_case(bootstrap, ch_url, label, clients, infra=infra, **options)
        services = {k: v for k, v in row["cpu_s"].items() if k not in infra}
        figures.append(
            Figure(
                0,
                "",
                "e2e",
                label,
                row["clients_per_s"],
                row["seconds"],
                per_100k(services, clients),
                row["cpu_s"]["broker"],
                row["infra_peak_rss_mb"]["broker"],
                row["complete"] and row["verify"]["ok"],
            )
        )
    return figures


def processor_figures(settings: Any, infra: dict[str, int], clients: int, http: int) -> list[Figure]:
    from bench.processor import bench_http, bench_inprocess

    runs = [(clients, bench_inprocess(settings, clients, None, infra))] if clients else []
    if http:
        runs.append((http, bench_http(settings, http, 20.0, infra)))
    return [
        Figure(
            0,
            "",
            "processor",
            out["mode"],
            out["clients_per_s"],
            out["seconds"],
            per_100k({"processor": out["cpu_s"]["processor"]}, n),
            out["cpu_s"]["broker"],
            out["peak_rss_mb"]["broker"],
        )
        for n, out in runs
    ]


def sink_figures(
    settings: Any, infra: dict[str, int], server: int, rows: int, sinks: list[int]
) -> list[Figure]:
    from bench.sink import measure

    result = measure(settings, rows, sinks, server=server, infra=infra)
    figures = [
        Figure(
            0,
            "",
            "sink",
            "produce results",
            round(rows / result["produce_seconds"]),
            result["produce_seconds"],
            {},
            result["produce_cpu_s"]["broker"],
            result["produce_peak_rss_mb"]["broker"],
        )
    ]
    for case in result["sinks"]:
        services = {k: v for k, v in case["cpu_s"].items() if k not in infra}
        figures.append(
            Figure(
                0,
                "",
                "sink",
                f"{case['sinks']} sink(s)",
                case["rows_per_s"],
                case["seconds"],
                per_100k({"sinks": sum(services.values())}, rows),
                case["cpu_s"]["broker"],
                case["peak_rss_mb"]["broker"],
            )
        )
    return figures


# --- the summary ---------------------------------------------------------------------------------


def ratio_rows(figures: list[Figure], first: str, second: str) -> list[dict[str, Any]]:
    """Per (bench, case): each broker's mean rate, services' CPU per 100k, broker CPU s and peak RSS,
    and the ratios ``first`` / ``second`` of the means."""
    keys = list(dict.fromkeys((f.bench, f.case) for f in figures))
    rows = []
    for bench, case in keys:
        side = {
            b: [f for f in figures if (f.bench, f.case, f.broker) == (bench, case, b)]
            for b in (first, second)
        }
        if not side[first] or not side[second]:
            continue
        means = {b: _means(fs) for b, fs in side.items()}
        rows.append(
            {
                "bench": bench,
                "case": case,
                first: means[first],
                second: means[second],
                "ratio": {k: _ratio(means[first][k], means[second][k]) for k in means[first]},
                "ok": all(f.ok for fs in side.values() for f in fs),
            }
        )
    return rows


def _means(figures: list[Figure]) -> dict[str, float]:
    return {
        "rate": mean(f.rate for f in figures),
        "seconds": mean(f.seconds for f in figures),
        "services_cpu_per_100k": mean(sum(f.cpu_s_per_100k.values()) for f in figures),
        "broker_cpu_s": mean(f.broker_cpu_s for f in figures),
        "broker_peak_rss_mb": mean(f.broker_peak_rss_mb for f in figures),
    }


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 2) if b else None


def figures_table(figures: list[Figure]) -> str:
    lines = [
        "| round | broker | bench | case | seconds | rate /s | CPU s per 100k (services) | broker CPU s "
        "| broker peak RSS MB | ok |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in figures:
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in f.cpu_s_per_100k.items()) or "-"
        lines.append(
            f"| {f.round} | {f.broker} | {f.bench} | {f.case} | {f.seconds:.2f} | {f.rate:,.0f} | {cpu} "
            f"| {f.broker_cpu_s:.2f} | {f.broker_peak_rss_mb:.0f} | {'ok' if f.ok else 'FAILED'} |"
        )
    return "\n".join(lines)


RATIO_COLUMNS = (
    ("rate /s", "rate", ",.0f"),
    ("services' CPU s per 100k", "services_cpu_per_100k", ".2f"),
    ("broker CPU s", "broker_cpu_s", ".2f"),
    ("broker peak RSS MB", "broker_peak_rss_mb", ".0f"),
)


def ratio_table(rows: list[dict[str, Any]], first: str, second: str) -> str:
    """Means per broker (``first`` / ``second``) and their ratio, one column pair per figure."""
    head = "".join(f" {title} {first} / {second} | ratio |" for title, _, _ in RATIO_COLUMNS)
    lines = ["| bench | case |" + head, "|---|---|" + "---|---|" * len(RATIO_COLUMNS)]
    for row in rows:
        cells = "".join(
            f" {row[first][key]:{spec}} / {row[second][key]:{spec}} | {_fmt(row['ratio'][key])} |"
            for _, key, spec in RATIO_COLUMNS
        )
        lines.append(f"| {row['bench']} | {row['case']} |" + cells + ("" if row["ok"] else " FAILED"))
    return "\n".join(lines)


def _fmt(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio:.2f}"


# --- the run -------------------------------------------------------------------------------------


def broker_turn(kind: str, folder: Path, ch_url: str, ch_pid: int, args: argparse.Namespace) -> list[Figure]:
    """Start broker ``kind`` under ``folder``, run the three benches on it, stop it; their figures."""
    from kcollect.localstack.brokers import BrokerKind, start_local_broker
    from streams.settings.model import load_settings

    broker = start_local_broker(cast("BrokerKind", kind), folder)
    try:
        infra = {"broker": broker.records[0].pid}
        cases = [c for c in args.e2e_cases.split(",") if c]
        figures = e2e_figures(
            broker.bootstrap_servers, ch_url, infra | {"clickhouse": ch_pid}, cases, args.clients
        )
        settings = load_settings(bootstrap_servers=broker.bootstrap_servers, clickhouse_url=ch_url)
        figures += processor_figures(settings, infra, args.processor, args.http)
        if args.sink:
            sinks = [int(k) for k in args.sinks.split(",")]
            figures += sink_figures(settings, infra, ch_pid, args.sink, sinks)
        return figures
    finally:
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--brokers", default=",".join(BROKERS), help="two of: kafka, tansu (A B A B ...)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--clients", type=int, default=700_000, help="bench/e2e clients")
    parser.add_argument("--e2e-cases", default="plain,inproc", help="bench/e2e --cases keys")
    parser.add_argument("--processor", type=int, default=700_000, help="bench/processor in-process clients")
    parser.add_argument("--http", type=int, default=200_000, help="bench/processor HTTP clients (0: skip)")
    parser.add_argument("--sink", type=int, default=700_000, help="bench/sink rows (0: skip)")
    parser.add_argument("--sinks", default="1,2", help="bench/sink process counts")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    brokers = args.brokers.split(",")
    if len(brokers) != 2 or len(set(brokers)) != 2 or not set(brokers) <= set(BROKERS):
        parser.error("--brokers takes two of: kafka, tansu")

    from kcollect.localstack.clickhouse import clickhouse_url, start_clickhouse
    from kcollect.localstack.process import stop_process

    folder = Path(tempfile.mkdtemp(prefix="kcollect-brokers-bench-"))
    ch = start_clickhouse(folder)
    figures: list[Figure] = []
    loads: list[dict[str, Any]] = []
    try:
        for round_, kind in alternation(brokers, args.rounds):
            before = load_line()
            for figure in broker_turn(
                kind, folder / f"{kind}-{round_}", clickhouse_url(ch.port), ch.pid, args
            ):
                figure.round, figure.broker = round_, kind
                figures.append(figure)
                print(json.dumps(asdict(figure)), flush=True)
            loads.append({"round": round_, "broker": kind, "load_before": before, "load_after": load_line()})
            print(json.dumps(loads[-1]), flush=True)
    finally:
        stop_process(ch)
        if args.json is not None:
            args.json.write_text(
                json.dumps({"figures": [asdict(f) for f in figures], "loads": loads}, indent=1)
            )
    first, second = brokers
    print(f"\nmachine: {machine_line()}\n")
    for load in loads:
        print(f"round {load['round']} {load['broker']}: load {load['load_before']} -> {load['load_after']}")
    print("\n" + figures_table(figures) + "\n")
    print(ratio_table(ratio_rows(figures, first, second), first, second))


if __name__ == "__main__":
    main()
