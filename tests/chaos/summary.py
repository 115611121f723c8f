"""Summarize a campaign's results file (one JSON line per seed, ``CHAOS_RESULTS``):
``python -m tests.chaos.summary FILE``: seeds passed, the longest run of passes in a row, the time per
seed and the faults injected, by kind."""

from __future__ import annotations

import json
import statistics
import sys
from collections import Counter
from pathlib import Path


def summarize(lines: list[dict[str, object]]) -> str:
    passed = [line for line in lines if not line.get("problems")]
    streak = best = 0
    for line in lines:
        streak = 0 if line.get("problems") else streak + 1
        best = max(best, streak)
    walls = [float(str(line.get("wall_seconds", 0))) for line in lines]
    kinds: Counter[str] = Counter()
    for line in lines:
        faults = line.get("faults")
        for fault in faults if isinstance(faults, list) else []:
            kinds[str(fault).split(":", 1)[0]] += 1
    failed = [f"{line['seed']}: {line['problems']}" for line in lines if line.get("problems")]
    out = [
        f"seeds: {len(lines)}, passed: {len(passed)}, longest run of passes in a row: {best}",
        f"seconds per seed: median {statistics.median(walls or [0]):.1f}, max {max(walls or [0]):.1f}, "
        f"total {sum(walls) / 60:.1f} min",
        "faults fired: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())),
    ]
    return "\n".join(out + [f"failed {f}"[:2000] for f in failed])


def main() -> None:
    path = Path(sys.argv[1])
    lines = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    print(summarize(lines))


if __name__ == "__main__":
    main()
