"""bench/scaleout: 1 processor + 1 sink against 2 + 2, on one ClickHouse server and on a cluster.

``python -m bench.scaleout [--clients 700000] [--json PATH]``. One broker (Tansu, memory storage), one
clickhouse-server and one local cluster (ZooKeeper + 2 shards x 2 replicas) of its own, started
together, then the four cases one after another in the same run, each on its own topics, groups and
database (8 partitions), built-in simulated subsystems without latency:

- ``single 1+1`` and ``single 2+2``: one server, 1 processor and 1 sink, then 2 and 2;
- ``cluster 1+1`` and ``cluster 2+2``: the same on the cluster (``KCOLLECT_CLICKHOUSE_CLUSTER``).

Seconds run from the first request produced to every client stored (polled every 50 ms). CPU seconds
are per process (threads included): each service, the enqueue (this process, ``time.process_time``
while it enqueues) and the ClickHouse servers (all of them, summed), the latter also as µs per stored
row. Every case is then checked with ``streams.runs.checker``. Compare figures of one run only, as
ratios: this machine is shared, and 2 + 2 services on 2 cores is a measure of contention as much as of
scaling.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.deployment import make_deployment
from bench.e2e_kit import wait_stored
from bench.machine import machine_line
from bench.procstat import proc_cpu_seconds, proc_peak_rss_mb
from processors.processor.subsystems.simulated import simulated_check
from producers.enqueue.enqueue import enqueue_run
from producers.enqueue.sources import RangeSource
from streams.runs.checker import verify_run


def run_case(
    bootstrap: str,
    clickhouse_url: str,
    server_pids: list[int],
    case: str,
    clients: int,
    workers: int,
    cluster: str | None,
    timeout: float = 600,
) -> dict[str, Any]:
    name = f"so{case.replace(' ', '').replace('+', '')[:10]}{int(time.time()) % 100000}".lower()
    workdir = Path(tempfile.mkdtemp(prefix=f"kcollect-{name}-"))
    extra = {"KCOLLECT_CLICKHOUSE_CLUSTER": cluster} if cluster else {}
    d = make_deployment(bootstrap, clickhouse_url, name, workdir, **extra)
    services = [f"processor{i}" for i in range(workers)] + [f"sink{i}" for i in range(workers)]
    try:
        for service in services:
            d.launch(service, [service.rstrip("0123456789")])
        d.wait_ready(*services)
        run_id = f"{name}-run"
        cpu0 = {s: proc_cpu_seconds(d.procs[s].pid) for s in services}
        ch0 = sum(proc_cpu_seconds(pid) for pid in server_pids)
        enqueue_cpu0 = time.process_time()
        summary = enqueue_run(d.settings, run_id, RangeSource(0, clients - 1))
        enqueue_cpu = time.process_time() - enqueue_cpu0
        seen = wait_stored(d, run_id, clients, timeout)
        cpu = {s: proc_cpu_seconds(d.procs[s].pid) - cpu0[s] for s in services}
        ch_cpu = sum(proc_cpu_seconds(pid) for pid in server_pids) - ch0
        rss = {s: proc_peak_rss_mb(d.procs[s].pid) for s in services}
        seconds = (seen or time.time()) - summary.first_produced_at
        report = verify_run(d.settings, run_id, value_check=simulated_check)
        stored = report.stored
        per_100k = 100_000 / clients
        return {
            "case": case,
            "clients": clients,
            "workers": workers,
            "stored": stored,
            "complete": seen is not None,
            "seconds": round(seconds, 2),
            "clients_per_s": round((stored if seen is None else clients) / seconds),
            "cpu_s_per_100k": {s: round(c * per_100k, 2) for s, c in cpu.items()}
            | {"enqueue": round(enqueue_cpu * per_100k, 2), "clickhouse": round(ch_cpu * per_100k, 2)},
            "clickhouse_us_per_row": round(ch_cpu * 1e6 / max(stored, 1), 2),
            "peak_rss_mb": {s: round(r) for s, r in rss.items()},
            "verify_ok": report.ok,
            "duplicated_raw": report.duplicated_raw,
        }
    finally:
        d.stop_all()


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| case | clients | seconds | clients/s | CPU s per 100k clients | ClickHouse µs/row | peak RSS MB "
        "| checker |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cpu = ", ".join(f"{k} {v:.2f}" for k, v in r["cpu_s_per_100k"].items())
        rss = ", ".join(f"{k} {v}" for k, v in r["peak_rss_mb"].items())
        check = "ok" if r["verify_ok"] else "FAILED"
        done = "" if r["complete"] else " (timed out)"
        lines.append(
            f"| {r['case']} | {r['clients']:,}{done} | {r['seconds']:.2f} | {r['clients_per_s']:,} | {cpu} | "
            f"{r['clickhouse_us_per_row']:.2f} | {rss} | {check}, raw dups {r['duplicated_raw']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=700_000)
    parser.add_argument("--cases", default="single,cluster")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from kcollect.localstack.chcluster import start_cluster
    from kcollect.localstack.clickhouse import clickhouse_url, start_clickhouse
    from kcollect.localstack.persistent import start_broker
    from kcollect.localstack.process import stop_process

    folder = Path(tempfile.mkdtemp(prefix="kcollect-scaleout-"))
    broker = start_broker(folder)
    single = start_clickhouse(folder)
    cluster = start_cluster(folder)
    bootstrap = f"127.0.0.1:{broker.port}"
    rows: list[dict[str, Any]] = []
    try:
        targets = {
            "single": (clickhouse_url(single.port), [single.pid], None),
            "cluster": (cluster.url, [p.pid for p in cluster.processes()[1:]], cluster.name),
        }
        for target in args.cases.split(","):
            url, pids, name = targets[target]
            for workers in (1, 2):
                case = f"{target} {workers}+{workers}"
                rows.append(run_case(bootstrap, url, pids, case, args.clients, workers, name))
                print(table(rows[-1:]), flush=True)
    finally:
        cluster.stop()
        stop_process(single)
        stop_process(broker)
        if args.json is not None:
            args.json.write_text(json.dumps(rows, indent=1))
    print(f"machine: {machine_line()} (shared with other sessions)\n")
    print(table(rows))


if __name__ == "__main__":
    main()
