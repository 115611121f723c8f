"""The Grafana dashboard asks only for metrics that kcollect exports (names from streams.lag.metrics)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from streams.lag import metrics

DASHBOARD = Path(__file__).resolve().parents[3] / "deploy" / "grafana" / "kcollect-lag.json"


def test_dashboard_metrics_exist() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"\b(?:kafka|kcollect)_[a-z_]+", e)}
    names = [v for v in vars(metrics).values() if isinstance(v, str)]
    known = {v for v in names if v.startswith(("kafka_", "kcollect_"))}
    known |= {"kcollect_lag_gate_paused", "kcollect_lag_gate_lag", f"{metrics.EXPORTER_ERRORS}_total"}
    assert used and used <= known, used - known
    assert {p["gridPos"]["w"] + p["gridPos"]["x"] for p in dashboard["panels"]} <= set(range(1, 25))
