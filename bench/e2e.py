"""bench/e2e: the whole pipeline at 700k clients (11 metrics each), with CPU, RSS, lag and a faust peer.

``python -m bench.e2e [--clients 700000] [--faust-clients N] [--chart docs/e2e-700k.png]``. One local
stack of its own (a broker, clickhouse-server), then one case after another, each on its
own topics, groups and database (8 partitions; ``--broker kafka``, the default, is Apache Kafka as
one KRaft node, ``--broker tansu`` Tansu on memory storage):

- ``in-process``: 1 processor, 1 sink, built-in simulated subsystems (alpha 1 metric + beta 10), no
  latency; ``in-process x2``: the same with 2 processors;
- ``simulator 20 ms``: the same metrics from ``kcollect simulate`` over HTTP, 20 ms per batch call;
- ``faust``: ``bench.faust_peer`` in place of the processor (kcollect's sink stores its results);
- ``plain loop``: ``bench.plain_peer`` in place of the processor and the sink (plain confluent-kafka
  loops doing the same work, no retries, no dead letters): the ceiling kcollect is compared with.

Seconds run from the first request produced to the moment every client is stored (polled every
50 ms); CPU seconds (/proc/PID/stat, the process's threads included) and peak RSS (VmHWM, reset at
the start) over the same span (``bench.procstat.PhaseMeter``) are per service process, the broker's
and ClickHouse's too (total CPU / 2 = the wall time if both cores were busy all along). Every
kcollect case is then checked with ``streams.runs.checker``. The in-process case's stored rows and
lag, sampled every 0.5 s, are drawn to the chart.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.deployment import make_deployment
from bench.e2e_kit import Sampler, wait_stored
from bench.machine import machine_line
from bench.procstat import PhaseMeter
from processors.processor.subsystems.simulated import simulated_check
from producers.enqueue.enqueue import enqueue_run
from producers.enqueue.sources import RangeSource
from streams.runs.checker import verify_run

SIM_LATENCY_MS = 20.0


def simulator_config(workdir: Path, port: int) -> Path:
    """A processor config with alpha and beta served by ``kcollect simulate`` on ``port``."""
    from processors.processor.subsystems.simulated import DEFAULT_METRICS

    config = {
        "subsystems": [
            {
                "name": name,
                "kind": "http",
                "url": f"http://127.0.0.1:{port}/{name}",
                "metrics": list(metrics),
                "batch_size": 500,
                "max_concurrency": 16,
            }
            for name, metrics in DEFAULT_METRICS.items()
        ]
    }
    path = workdir / "simulator.json"
    path.write_text(json.dumps(config))
    return path


def run_case(
    bootstrap: str,
    clickhouse_url: str,
    case: str,
    clients: int,
    *,
    processors: int = 1,
    simulator: bool = False,
    faust: bool = False,
    plain: bool = False,
    timeout: float = 300,
    sample: bool = False,
    infra: dict[str, int] | None = None,
) -> dict[str, Any]:
    name = f"e2e{case.replace(' ', '').replace('-', '')[:10]}{int(time.time()) % 100000}".lower()
    workdir = Path(tempfile.mkdtemp(prefix=f"kcollect-{name}-"))
    extra: dict[str, str] = {}
    d = make_deployment(bootstrap, clickhouse_url, name, workdir, **extra)
    services: list[str] = []
    try:
        if simulator:
            port_file = workdir / "sim.port"
            d.launch(
                "simulate",
                [
                    "simulate",
                    "--port",
                    "0",
                    "--latency-ms",
                    str(SIM_LATENCY_MS),
                    "--ready-file",
                    str(port_file),
                ],
                ready=False,
            )
            while not port_file.exists():
                time.sleep(0.05)
            d.env["KCOLLECT_PROCESSOR_CONFIG"] = str(simulator_config(workdir, int(port_file.read_text())))
        if faust:
            settings = d.settings
            argv = [sys.executable, "-m", "bench.faust_peer", "worker", "--without-web", "-l", "warn"]
            d.launch(
                "faust",
                argv,
                ready=False,
                env={
                    "FAUST_PEER_BROKER": settings.kafka_bootstrap(),
                    "FAUST_PEER_REQUESTS": f"{name}.requests",
                    "FAUST_PEER_RESULTS": f"{name}.results",
                    "FAUST_PEER_APP": f"{name}-faust",
                    "FAUST_PEER_PARTITIONS": str(settings.partitions),
                    "FAUST_PEER_DATADIR": str(workdir / "faust-data"),
                },
            )
            services.append("faust")
        elif plain:
            settings = d.settings
            for role in ("processor", "sink"):
                plain_env = {
                    "PLAIN_BROKER": settings.kafka_bootstrap(),
                    "PLAIN_REQUESTS": f"{name}.requests",
                    "PLAIN_RESULTS": f"{name}.results",
                    "PLAIN_GROUP": f"{name}-plain-{role}",
                    "PLAIN_CLICKHOUSE_URL": settings.clickhouse().url_with_credentials(),
                    "PLAIN_READY": str(workdir / f"plain-{role}.ready"),
                }
                argv = [sys.executable, "-m", "bench.plain_peer", role]
                d.launch(f"plain-{role}", argv, ready=False, env=plain_env)
                services.append(f"plain-{role}")
        else:
            for i in range(processors):
                d.launch(f"processor{i}", ["processor"])
                services.append(f"processor{i}")
        if not plain:
            d.launch("sink", ["sink"])
            services.append("sink")
        d.wait_ready(*[s for s in services if s != "faust" and not s.startswith("plain-")])
        if faust:
            time.sleep(8)  # faust has no ready file: let it join its group first
        while plain and not all((workdir / f"{s}.ready").exists() for s in services):
            time.sleep(0.05)  # the plain loops write their ready file once assigned
        run_id = f"{name}-run"
        infra = infra or {}
        meter = PhaseMeter({s: d.procs[s].pid for s in services} | infra).start()
        sampler = Sampler(d, run_id) if sample else None
        if sampler is not None:
            sampler.start()
        summary = enqueue_run(d.settings, run_id, RangeSource(0, clients - 1))
        seen = wait_stored(d, run_id, clients, timeout)
        usage = meter.stop()
        cpu = {s: u.cpu_s for s, u in usage.items()}
        if sampler is not None:
            time.sleep(1.0)
            sampler.stop()
        stored = d.stored(run_id, final=True)
        seconds = (seen or time.time()) - summary.first_produced_at
        report = verify_run(d.settings, run_id, value_check=simulated_check)
        total_cpu = sum(cpu.values())
        return {
            "case": case,
            "clients": clients,
            "processors": processors,
            "stored": stored,
            "complete": seen is not None,
            "seconds": round(seconds, 2),
            "clients_per_s": round((stored if seen is None else clients) / seconds),
            "enqueue_seconds": round(summary.seconds, 2),
            "cpu_s": cpu,
            "cpu_s_per_100k": {s: round(c * 100_000 / clients, 2) for s, c in cpu.items()},
            "cpu_s_total": round(total_cpu, 2),
            "cpu_bound_seconds": round(total_cpu / 2, 2),  # the wall time if both cores were always busy
            "peak_rss_mb": {s: usage[s].peak_rss_mb for s in services},
            "infra_peak_rss_mb": {s: usage[s].peak_rss_mb for s in infra},
            "verify": {
                k: report.as_dict()[k] for k in ("lost", "duplicated_final", "unexpected", "wrong", "ok")
            },
            "samples": [
                s.__dict__ | {"t": round(s.t - summary.first_produced_at, 2)} for s in sampler.samples
            ]
            if sampler is not None
            else [],
        }
    finally:
        d.stop_all()


# --cases keys: the case's label and run_case's options
CASES: dict[str, tuple[str, dict[str, Any]]] = {
    "plain": ("plain loop", {"plain": True}),
    "inproc": ("in-process", {}),
    "inproc2": ("in-process x2", {"processors": 2}),
    "sim": ("simulator 20 ms", {"simulator": True}),
    "faust": ("faust", {"faust": True}),
}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| case | clients | stored | seconds | CPU s total / 2 | clients/s | CPU s per 100k (per process) "
        "| peak RSS MB | checker |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cpu = ", ".join(f"{k} {v:.1f}" for k, v in r["cpu_s_per_100k"].items())
        rss = ", ".join(f"{k} {v}" for k, v in r["peak_rss_mb"].items())
        check = "ok" if r["verify"]["ok"] else "FAILED " + json.dumps(r["verify"])
        done = "" if r["complete"] else " (timed out)"
        lines.append(
            f"| {r['case']} | {r['clients']:,} | {r['stored']:,}{done} | {r['seconds']:.2f} | "
            f"{r['cpu_bound_seconds']:.2f} | {r['clients_per_s']:,} | {cpu} | {rss} | {check} |"
        )
    return "\n".join(lines)


def chart(row: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = row["samples"]
    t = [s["t"] for s in samples]
    stored = [s["stored"] for s in samples]
    rate = [0.0] + [(stored[i] - stored[i - 1]) / max(t[i] - t[i - 1], 1e-6) for i in range(1, len(samples))]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    top.plot(t, [r / 1000 for r in rate], label="stored clients/s (thousands)")
    top.plot(t, [s / 1000 for s in stored], label="stored clients (thousands)")
    top.set_title(f"kcollect e2e, {row['clients']:,} clients, {row['case']}: {row['seconds']:.1f} s")
    top.legend(loc="upper left")
    bottom.plot(t, [(s["processor_lag"] or 0) / 1000 for s in samples], label="processor lag (k requests)")
    bottom.set_xlabel("seconds since the first request")
    bottom.legend(loc="upper left")
    right = bottom.twinx()  # the results topic holds result batches: its lag is in records, not clients
    sink_lag = [s["sink_lag"] or 0 for s in samples]
    right.plot(t, sink_lag, color="tab:orange", label="sink lag (result batches)")
    right.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=700_000)
    parser.add_argument("--faust-clients", type=int, default=None, help="default: --clients")
    parser.add_argument("--faust-timeout", type=float, default=300)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated: " + ", ".join(CASES))
    parser.add_argument("--chart", type=Path, default=Path("docs/e2e-700k.png"))
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--broker", choices=("kafka", "tansu"), default="kafka", help="the local broker")
    args = parser.parse_args()

    from kcollect.localstack.brokers import start_local_broker
    from kcollect.localstack.clickhouse import clickhouse_url, start_clickhouse
    from kcollect.localstack.process import stop_process

    folder = Path(tempfile.mkdtemp(prefix="kcollect-e2e-stack-"))
    broker = start_local_broker(args.broker, folder)
    ch = start_clickhouse(folder)
    bootstrap, ch_url = broker.bootstrap_servers, clickhouse_url(ch.port)
    rows: list[dict[str, Any]] = []
    infra = {"broker": broker.records[0].pid, "clickhouse": ch.pid}
    try:
        for key in args.cases.split(","):
            label, options = CASES[key]
            if key == "faust":
                n, options = args.faust_clients or args.clients, options | {"timeout": args.faust_timeout}
            else:
                n = args.clients
            sample = key == "inproc"
            rows.append(run_case(bootstrap, ch_url, label, n, sample=sample, infra=infra, **options))
            if sample:
                chart(rows[-1], args.chart)
    finally:
        broker.stop()
        stop_process(ch)
        if args.json is not None:
            args.json.write_text(json.dumps(rows, indent=1))
    print(f"machine: {machine_line()}\n")
    print(table(rows))
    print("\n".join(targets(rows)))
    for row in rows:
        if row["samples"]:
            print(
                f"\ntimeline of {row['case']} (s since the first request: processor lag in requests, "
                "sink lag in result batches, rows stored)"
            )
            for sample in row["samples"]:
                lags = f"{sample['processor_lag']}  {sample['sink_lag']}"
                print(f"  {sample['t']:6.1f}  {lags}  {sample['stored']}")


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """The issue's targets, each with what this run measured."""
    by_case = {row["case"]: row for row in rows}
    lines = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    inproc, sim, faust = by_case.get("in-process"), by_case.get("simulator 20 ms"), by_case.get("faust")
    for row, limit in ((inproc, 12), (sim, 30)):
        if row:
            seconds = row["seconds"]
            lines.append(f"{row['case']}: {seconds:.2f} s (target <= {limit} s), {verdict(seconds <= limit)}")
    plain = by_case.get("plain loop")
    if inproc and plain:
        ratio = inproc["clients_per_s"] / max(plain["clients_per_s"], 1)
        lines.append(f"at least 1.0x the plain loop's end-to-end rate: {ratio:.2f}x, {verdict(ratio >= 1.0)}")
    for row in (plain, inproc):
        if row:
            lines.append(
                f"{row['case']}: wall {row['seconds']:.2f} s against total CPU / 2 = "
                f"{row['cpu_bound_seconds']:.2f} s (every process, broker and ClickHouse included)"
            )
    kcollect = [row for row in rows if row["case"] not in ("faust", "plain loop")]
    peak = max((mb for row in kcollect for mb in row["peak_rss_mb"].values()), default=0)
    lines.append(f"every kcollect process under 500 MB RSS: peak {peak} MB, {verdict(peak < 500)}")
    if inproc and faust:
        ratio = inproc["clients_per_s"] / max(faust["clients_per_s"], 1)
        lines.append(f"at least 20x faust-streaming's rate: {ratio:.1f}x, {verdict(ratio >= 20)}")
    return lines


if __name__ == "__main__":
    main()
