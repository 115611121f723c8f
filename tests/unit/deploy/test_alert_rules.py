"""The alert rules (deploy/prometheus/kcollect-rules.yml): promtool loads them and its unit tests make
every alert fire and clear (deploy/prometheus/tests/); the PrometheusRule for Kubernetes holds the same
groups; every metric the rules read is one kcollect exports, with the labels they name."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import producers.scheduler.service  # noqa: F401  (registers the scheduler's metrics)
import streams.lag.metrics as lag_metrics
import streams.observability.metrics  # noqa: F401
from kcollect.ops.exporter import run_families, snapshot_families
from streams.lag.collector import PartitionRow, Snapshot
from streams.lag.discovery import GroupInfo
from streams.runs.status import RunProgress

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy/prometheus/kcollect-rules.yml"
RULE_TESTS = ROOT / "deploy/prometheus/tests/kcollect-rules.test.yml"
KUBE = [doc for doc in yaml.safe_load_all((ROOT / "deploy/kubernetes/monitoring.yaml").read_text()) if doc]
HEALTH = {f"kcollect_service_{n}" for n in ("alive", "ready", "assigned_partitions", "kafka_connected")}
EXPECTED_ALERTS = {
    "KcollectServiceDown",
    "KcollectServiceNotReady",
    "KcollectLagExporterFailing",
    "KcollectConsumerGroupStalled",
    "KcollectConsumerGroupRewound",
    "KcollectRunNotCompleteByNextSlot",
    "KcollectDeadLettersGrowing",
    "KcollectSinkPausedForClickHouse",
    "KcollectResultsLagGateHolding",
}


def promtool() -> str:
    found = os.environ.get("PROMTOOL") or shutil.which("promtool") or str(ROOT / ".venv/bin/promtool")
    if not Path(found).is_file():
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI (make tools installs it from Debian's prometheus package)")
        pytest.skip("promtool not found (make tools; or set PROMTOOL)")
    return found


def rules() -> list[dict[str, object]]:
    return [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules())} rules found" in done.stdout


def test_promtool_unit_tests_fire_every_alert() -> None:
    done = subprocess.run(
        [promtool(), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    tested = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tested for case in test["alert_rule_test"] if case["exp_alerts"]}
    assert {r["alert"] for r in rules()} == EXPECTED_ALERTS == fired


def test_kubernetes_prometheus_rule_holds_the_same_groups() -> None:
    rule = next(d for d in KUBE if d["kind"] == "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    monitor = next(d for d in KUBE if d["kind"] == "PodMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": "kcollect"}
    relabel = monitor["spec"]["podMetricsEndpoints"][0]["relabelings"][0]
    assert relabel["targetLabel"] == "job" and relabel["replacement"] == "kcollect-$1"
    deployments = [
        doc
        for path in (ROOT / "deploy/kubernetes").glob("*.yaml")
        for doc in yaml.safe_load_all(path.read_text())
        if doc and doc["kind"] == "Deployment"
    ]
    jobs = {
        f"kcollect-{d['spec']['template']['metadata']['labels']['app.kubernetes.io/component']}"
        for d in deployments
    }
    compose_jobs = {
        j["job_name"]
        for j in yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())["scrape_configs"]
    }
    assert compose_jobs - {"prometheus"} <= jobs  # the same job names on Kubernetes as in compose
    for d in deployments:
        assert d["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"] == "http"


def exported() -> dict[str, set[str]]:
    """Metric name -> its labels: the services' registry (prometheus-client's default one), the health
    gauges, and the exporter's families built from a small snapshot (kcollect.exporter, pure)."""
    names: dict[str, set[str]] = {"up": {"job", "instance"}} | {name: set() for name in HEALTH}
    for collector, collector_names in list(REGISTRY._collector_to_names.items()):
        for name in collector_names:
            names.setdefault(name, set()).update(getattr(collector, "_labelnames", ()))
    row = PartitionRow("g", "t", 0, 1, 5, 4, 2.0, "o", "h", "Stable", "STALLED")
    snapshot = Snapshot(0.0, 0, [row], {("t", 0): 5}, {"g": GroupInfo("g", "Stable", members=1)})
    families = [
        *snapshot_families(snapshot),
        *run_families([RunProgress("r", "enqueued", 1, 0, 0, 0, 0, 0, 1, False)]),
    ]
    for family in families:
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    own = (lag_metrics.EXPORTER_UP, lag_metrics.EXPORTER_COLLECT_SECONDS, lag_metrics.EXPORTER_LAST_COLLECT)
    names |= {name: set() for name in (*own, f"{lag_metrics.EXPORTER_ERRORS}_total")}
    return names


def test_rules_read_only_exported_metrics_and_labels() -> None:
    known = exported()
    for rule in rules():
        expr = str(rule["expr"])
        for name in re.findall(r"\b(?:kafka|kcollect)_[a-z_]+\b|\bup\b", expr):
            assert name in known, f"{rule['alert']}: {name} is not exported"
        for labels in re.findall(r"by \(([^)]*)\)|on \(([^)]*)\)", expr):
            for label in ",".join(labels).split(","):
                label = label.strip()
                if label and label not in {"instance", "job"}:
                    assert any(
                        label in known[n] for n in re.findall(r"\b(?:kafka|kcollect)_[a-z_]+\b", expr)
                    ), f"{rule['alert']}: no metric of the rule has the label {label}"
