"""docker-compose.yml, Dockerfile, deploy/kubernetes and deploy/prometheus checked without Docker.

- docker-compose.yml validates against the Compose Specification schema (tests/data/compose_spec.json,
  see tests/data/README.md); every image tag is pinned;
- every command a kcollect container runs parses as a real `kcollect` command (typer's click group,
  options and values checked, nothing invoked);
- every port a health check, Prometheus target or probe names is one the service serves; every named
  volume is declared; every bind-mounted file and config file exists and loads.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import typer
import yaml

from kcollect.cli.main import app
from processors.processor.config import load_config

try:  # typer >= 0.26 carries its own click as typer._click; older typer uses click itself
    from typer._click.exceptions import ClickException  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover
    from click.exceptions import ClickException

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
KUBE = [doc for path in sorted((ROOT / "deploy/kubernetes").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text()) if doc]  # fmt: skip
PROMETHEUS = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())


def parse_kcollect(args: list[str]) -> Any:
    """Resolve and parse ``kcollect ARGS`` down to the leaf command (click raises on any mistake)."""
    command: Any = typer.main.get_command(app)
    ctx = command.make_context("kcollect", list(args), resilient_parsing=False)
    while hasattr(command, "resolve_command"):  # a group
        protected = getattr(ctx, "_protected_args", None)  # click >= 8.2; older: protected_args
        remaining = (protected if protected is not None else ctx.protected_args) + ctx.args
        name, sub, rest = command.resolve_command(ctx, list(remaining))
        assert sub is not None, f"kcollect {' '.join(args)}: no command {name}"
        command, ctx = sub, sub.make_context(str(name), rest, parent=ctx, resilient_parsing=False)
    return command


def kcollect_commands(entrypoint: list[str] | None, command: list[str] | str | None) -> list[list[str]]:
    """The kcollect argument lists a container runs (``sh -c "kcollect a && kcollect b"`` gives two)."""
    if entrypoint in (None, ["kcollect"]):
        return [list(command) if isinstance(command, list) else shlex.split(command or "--help")]
    assert entrypoint[:2] == ["/bin/sh", "-c"], entrypoint
    script = command[0] if isinstance(command, list) else str(command)
    parts = [shlex.split(part) for part in script.split("&&")]
    assert all(p[0] == "kcollect" for p in parts), script
    return [p[1:] for p in parts]


def kcollect_services() -> dict[str, dict[str, Any]]:
    return {name: s for name, s in COMPOSE["services"].items() if s.get("image") == "kcollect:local"}


def option(args: list[str], name: str) -> str | None:
    return args[args.index(name) + 1] if name in args else None


def served_port(service: dict[str, Any]) -> int:
    """The HTTP port a kcollect service listens on: --port of its command, else KCOLLECT_HTTP_PORT."""
    args = kcollect_commands(service.get("entrypoint"), service.get("command"))[0]
    return int(option(args, "--port") or service["environment"]["KCOLLECT_HTTP_PORT"])


def test_compose_matches_the_compose_specification() -> None:
    schema = json.loads((ROOT / "tests/data/compose_spec.json").read_text())
    errors = [
        f"{list(e.path)}: {e.message}" for e in jsonschema.Draft201909Validator(schema).iter_errors(COMPOSE)
    ]
    assert errors == []


def test_the_schema_check_has_teeth() -> None:
    schema = json.loads((ROOT / "tests/data/compose_spec.json").read_text())
    broken = json.loads(json.dumps(COMPOSE))
    broken["services"]["sink"]["restart_policy"] = "always"
    broken["services"]["kafka"]["healthcheck"]["retries"] = "many"
    assert len(list(jsonschema.Draft201909Validator(schema).iter_errors(broken))) == 2


def test_images_are_pinned_and_the_services_are_all_there() -> None:
    for name, service in COMPOSE["services"].items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), (name, image)
        assert "healthcheck" in service, name
    wanted = {"kafka", "clickhouse", "init", "processor", "sink", "scheduler", "exporter", "simulator",
              "prometheus", "grafana"}  # fmt: skip
    assert wanted <= set(COMPOSE["services"])
    assert COMPOSE["services"]["processor"]["deploy"]["replicas"] == 2
    scheduler = kcollect_commands(None, COMPOSE["services"]["scheduler"]["command"])[0]
    assert scheduler[:2] == ["scheduler", "run"] and option(scheduler, "--every") == "5m"


@pytest.mark.parametrize("name", sorted(kcollect_services()))
def test_compose_commands_are_real_kcollect_commands(name: str) -> None:
    service = kcollect_services()[name]
    for args in kcollect_commands(service.get("entrypoint"), service.get("command")):
        parse_kcollect(args)


def test_a_wrong_command_is_caught() -> None:
    for bad in (["scheduler", "run", "--evry", "5m"], ["schedule"], ["exporter", "--port", "x"]):
        with pytest.raises(ClickException):
            parse_kcollect(bad)


def test_ports_named_by_health_checks_and_prometheus_are_served() -> None:
    services = kcollect_services()
    for name, service in services.items():
        check = " ".join(service["healthcheck"].get("test", []))
        ports = {int(p) for p in re.findall(r"127\.0\.0\.1['\"]?[:,] ?(\d+)", check)}
        if name == "simulator":
            assert ports == {int(option(service["command"], "--port") or 0)}
        elif ports:
            assert ports == {served_port(service)}, (name, check)
    for job in PROMETHEUS["scrape_configs"]:
        targets = [t for c in job.get("static_configs", []) for t in c["targets"]]
        targets += [f"{n}:{c['port']}" for c in job.get("dns_sd_configs", []) for n in c["names"]]
        for target in targets:
            host, port = target.rsplit(":", 1)
            if host == "localhost":
                continue
            assert host in services, (job["job_name"], target)
            assert int(port) == served_port(services[host]), (job["job_name"], target)
    published = [p for s in COMPOSE["services"].values() for p in s.get("ports", [])]
    assert all(p.startswith("127.0.0.1:") for p in published)


def test_every_kcollect_service_is_scraped() -> None:
    """The service-down alert (docs/alerts.md) needs every long-running kcollect service in a job of
    its own; the init job and the test simulator serve no /metrics."""
    scraped: dict[str, str] = {}
    for job in PROMETHEUS["scrape_configs"]:
        hosts = [t.rsplit(":", 1)[0] for c in job.get("static_configs", []) for t in c["targets"]]
        hosts += [n for c in job.get("dns_sd_configs", []) for n in c["names"]]
        scraped |= dict.fromkeys(hosts, job["job_name"])
    services = set(kcollect_services()) - {"init", "simulator"}
    assert services >= {"processor", "sink", "scheduler", "exporter", "console"}
    assert {name: scraped.get(name) for name in services} == {name: f"kcollect-{name}" for name in services}


def test_volumes_and_config_files_exist() -> None:
    declared = set(COMPOSE["volumes"])
    mounts: dict[str, Path] = {}
    for name, service in COMPOSE["services"].items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith("."):
                assert (ROOT / source).exists(), (name, source)
                mounts[target] = ROOT / source
            else:
                assert source in declared, (name, source)
    used = {v.split(":")[0] for s in COMPOSE["services"].values() for v in s.get("volumes", [])}
    assert declared <= used
    processor_env = COMPOSE["services"]["processor"]["environment"]
    load_config(mounts[processor_env["KCOLLECT_PROCESSOR_CONFIG"]])
    home = COMPOSE["services"]["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    folder, file = home.rsplit("/", 1)
    assert (mounts[folder] / file).exists()
    provider = yaml.safe_load((ROOT / "deploy/grafana-provisioning/dashboards/kcollect.yml").read_text())
    assert provider["providers"][0]["options"]["path"] in mounts
    assert COMPOSE["services"]["prometheus"]["command"][0].split("=")[1] in mounts


def test_dockerfile_is_multi_stage_non_root_and_copies_every_package() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 2
    user = re.findall(r"^USER (\S+)", text, re.M)[-1]
    assert not user.startswith(("root", "0")), user
    copied = set(re.findall(r"^COPY (\w+) \./\1$", text, re.M))
    assert copied == {"kcollect", "streams", "producers", "processors", "schemas"}
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not copied & set(ignored)


def test_kubernetes_services_have_probes_and_real_commands() -> None:
    deployments = [d for d in KUBE if d["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} >= {
        "kcollect-processor",
        "kcollect-sink",
        "kcollect-scheduler",
    }
    config = next(
        d for d in KUBE if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "kcollect-settings"
    )
    for deployment in deployments:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        parse_kcollect(container["args"])
        port = container["ports"][0]
        if container["args"][0] == "exporter":
            assert port["containerPort"] == int(option(container["args"], "--port") or 0)
        else:
            own_port = option(container["args"], "--port")  # the console: its own --port
            assert port["containerPort"] == int(own_port or config["data"]["KCOLLECT_HTTP_PORT"])
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["port"] == port["name"]
        grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert grace > 2 * float(config["data"]["KCOLLECT_SHUTDOWN_DEADLINE_SECONDS"])
    job = next(d for d in KUBE if d["kind"] == "Job")
    for args in kcollect_commands(job["spec"]["template"]["spec"]["containers"][0]["command"],
                                  job["spec"]["template"]["spec"]["containers"][0]["args"]):  # fmt: skip
        parse_kcollect(args)


def test_keda_scales_processors_on_lag_capped_at_the_partitions() -> None:
    scaled = next(d for d in KUBE if d["kind"] == "ScaledObject")
    config = next(
        d for d in KUBE if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "kcollect-settings"
    )
    assert scaled["spec"]["scaleTargetRef"]["name"] == "kcollect-processor"
    assert scaled["spec"]["maxReplicaCount"] == int(config["data"]["KCOLLECT_PARTITIONS"])
    trigger = scaled["spec"]["triggers"][0]
    assert trigger["type"] == "kafka" and trigger["metadata"]["allowIdleConsumers"] == "false"
    assert trigger["metadata"]["consumerGroup"] == "kcollect-processor"
    assert trigger["metadata"]["topic"] == "kcollect.requests"
    kustomization = next(d for d in KUBE if d["kind"] == "Kustomization")
    files = {p.name for p in (ROOT / "deploy/kubernetes").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
