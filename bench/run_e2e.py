"""bench/run_e2e: `kcollect run` on the local stack at 100k and 700k clients.

Each size runs `kcollect run --clients N --json` as its own process (processor and sink are its
child processes) and reports wall seconds from the first request produced to the last row stored,
clients/s per stage and each service's peak RSS. Usage: python -m bench.run_e2e [N ...]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from bench.machine import machine_line


def run_once(clients: int) -> dict[str, Any]:
    run_id = f"bench-{clients}-{int(time.time())}"
    command = [
        sys.executable,
        "-m",
        "kcollect",
        "--log-level",
        "WARNING",
        "run",
        "--clients",
        str(clients),
        "--run-id",
        run_id,
        "--json",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"kcollect run failed ({done.returncode}): {done.stderr[-2000:]}")
    summary: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return summary


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| clients | stored | seconds | clients/s | enqueue/s | processor/s | sink/s | processor RSS MB "
        "| sink RSS MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        stages = row["stages"]
        seconds = float(row["seconds"])
        lines.append(
            f"| {row['clients']:,} | {row['stored']:,} | {seconds:.2f} | {row['clients'] / seconds:,.0f} "
            f"| {stages['enqueue']['clients_per_s']:,.0f} | {stages['processor']['clients_per_s']:,.0f} "
            f"| {stages['sink']['clients_per_s']:,.0f} | {stages['processor']['peak_rss_mb']:.0f} "
            f"| {stages['sink']['peak_rss_mb']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    sizes = [int(arg) for arg in sys.argv[1:]] or [100_000, 700_000]
    rows = [run_once(size) for size in sizes]
    print(f"machine: {machine_line()}\n")
    print(table(rows))


if __name__ == "__main__":
    main()
