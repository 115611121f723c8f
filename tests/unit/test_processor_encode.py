"""The columnar fast path of result encoding gives exactly the JSON of the per-client path."""

from __future__ import annotations

from typing import Any

import orjson

from processors.collect import build_results, encode_results, fetch_all
from processors.compute import COLUMNAR, summary
from processors.subsystems import default_subsystems
from schemas.codec import decode_results


def requests(n: int) -> list[dict[str, Any]]:
    return [
        {
            "v": 1,
            "run_id": f"run-{i % 3}",
            "client_id": f'c"{i},%s\\é, x',  # JSON escapes, commas and a % sign
            "requested_at_ms": 1_700_000_000_000 + i,
            "attempt": i % 4,
            "deadline_ms": None,
        }
        for i in range(n)
    ]


def test_fast_path_matches_the_dict_path() -> None:
    reqs = requests(700)
    columns = fetch_all(default_subsystems(), reqs, 128)
    encoded, partial = encode_results(reqs, columns, summary, 1_700_000_999_999)
    expected = build_results(reqs, columns, summary, 1_700_000_999_999)
    assert partial == 0
    assert [k for k, _ in encoded] == [r["client_id"] for r in reqs]
    assert [orjson.loads(v) for _, v in encoded] == expected
    good, bad = decode_results([v for _, v in encoded])
    assert bad == [] and len(good) == 700


def test_single_run_and_missing_values_fall_back() -> None:
    reqs = [r | {"run_id": "one"} for r in requests(10)]
    columns = fetch_all(default_subsystems(), reqs, 4)
    columns["uptime"][3] = None
    encoded, partial = encode_results(reqs, columns, summary, 5)
    assert partial == 1
    assert [orjson.loads(v) for _, v in encoded] == build_results(reqs, columns, summary, 5)


def test_columnar_summary_is_summary() -> None:
    columns = [[1.5, -2.0, 7.0], [3.25, 0.0, 7.0], [9.0, 1.0, -7.5]]
    twin = COLUMNAR[summary](columns)
    for i in range(3):
        row = {f"m{j}": columns[j][i] for j in range(3)}
        assert {k: v[i] for k, v in twin.items()} == summary(row)


def test_no_requests() -> None:
    assert encode_results([], {"uptime": []}, summary, 1) == ([], 0)
