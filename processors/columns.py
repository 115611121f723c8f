"""Rows (ClientResult dicts) to the columns of ``client_results``, in ``schemas.ddl.RESULT_COLUMNS`` order."""

from __future__ import annotations

from typing import Any

import orjson

Record = dict[str, Any]


def to_columns(rows: list[Record]) -> list[list[Any]]:
    """One list per column; times go as epoch seconds (the DateTime columns' unit)."""
    dumps = orjson.dumps
    return [
        [r["run_id"] for r in rows],
        [r["client_id"] for r in rows],
        [r["requested_at_ms"] // 1000 for r in rows],
        [r["collected_at_ms"] // 1000 for r in rows],
        [r.get("attempt", 0) for r in rows],
        [r["status"] for r in rows],
        [dumps(r["metrics"]).decode() for r in rows],
        [list(r.get("missing", ())) for r in rows],
        [dumps(r["computed"]).decode() for r in rows],
        [r.get("attempt", 0) for r in rows],
    ]
