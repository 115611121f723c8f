"""The cookbook's queries (docs/queries.md) and the database they run against, for 18.16 and chdb alike."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from processors.sink.columns import COLUMN_NAMES
from processors.sink.result_rows import row_of

DOC = Path(__file__).resolve().parents[2] / "docs" / "queries.md"
RUNS = ("nightly-1", "nightly-2")
T0_MS = 1_764_547_200_000  # 2025-12-01 00:00 UTC
CLIENTS = 120


def cookbook_queries(database: str) -> list[str]:
    """Every ```sql block of docs/queries.md, its database renamed to ``database``."""
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S)
    return [block.strip().replace("kcollect.", f"{database}.") for block in blocks]


def records() -> list[dict[str, Any]]:
    """Two runs of results: c0000 … c0119 in nightly-1, c0001 … c0119 and c0120 in nightly-2; every
    seventh client of a run partial (no ``mem``); an ``os`` text metric; and ten re-delivered copies."""
    out: list[dict[str, Any]] = []
    for run_index, run_id in enumerate(RUNS):
        requested = T0_MS + run_index * 86_400_000
        ids = range(CLIENTS) if run_index == 0 else range(1, CLIENTS + 1)
        for i in ids:
            partial = (i + run_index) % 7 == 0
            metrics: dict[str, Any] = {"cpu": float((i * 37 + run_index * 11) % 100), "load_0": i / 10}
            if not partial:
                metrics["mem"] = float(i % 13)
            metrics["os"] = "linux" if i % 3 else "bsd"
            numbers = [v for v in metrics.values() if type(v) is float]
            out.append(
                {
                    "v": 1,
                    "run_id": run_id,
                    "client_id": f"c{i:04}",
                    "requested_at_ms": requested,
                    "attempt": 0,
                    "collected_at_ms": requested + 1000 + i * 10,
                    "status": "partial" if partial else "ok",
                    "metrics": metrics,
                    "missing": ["mem"] if partial else [],
                    "computed": {"mean": sum(numbers) / len(numbers), "count": float(len(numbers))},
                }
            )
    return out + out[:10]


def rows() -> list[dict[str, Any]]:
    """The sink's rows of ``records()``, named by column (what the sink inserts)."""
    return [dict(zip(COLUMN_NAMES, row_of(record), strict=True)) for record in records()]
