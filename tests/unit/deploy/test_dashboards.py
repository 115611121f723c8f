"""Every Grafana dashboard (deploy/grafana/*.json) asks only for metrics kcollect exports, by the labels
they carry, and lays its panels out on Grafana's 24-column grid."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.unit.deploy.test_alert_rules import exported

DASHBOARDS = sorted((Path(__file__).resolve().parents[3] / "deploy" / "grafana").glob("*.json"))
NAME = re.compile(r"\b(?:kafka|kcollect)_[a-z_]+")


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_dashboard_reads_exported_metrics_and_labels(path: Path) -> None:
    known = exported()
    dashboard = json.loads(path.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"] if "definition" in v]
    for expr in exprs:
        names = NAME.findall(expr)
        assert names, expr
        for name in names:
            assert name in known, f"{path.name}: {name} is not exported"
        labels = {m for group in re.findall(r"by \(([^)]*)\)", expr) for m in group.split(",")}
        labels |= set(re.findall(r"([a-z_]+)=~", expr)) | set(re.findall(r", ([a-z_]+)\)$", expr))
        for label in {label.strip() for label in labels} - {"le", "instance", "job", ""}:
            assert any(label in known[n] for n in names), f"{path.name}: {expr} groups by unknown {label}"
    assert {p["gridPos"]["w"] + p["gridPos"]["x"] for p in dashboard["panels"]} <= set(range(1, 25))


def test_both_dashboards_are_there() -> None:
    assert {p.stem for p in DASHBOARDS} >= {"kcollect-lag", "kcollect-services"}
