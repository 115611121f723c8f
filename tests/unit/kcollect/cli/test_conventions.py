"""The command line's conventions: --version, completion, choices with a one-line error and exit 2,
KCOLLECT_LOG_LEVEL, a warning for unknown KCOLLECT_* variables, empty variables as unset, and
``settings show --format env`` read back through KCOLLECT_SETTINGS_FILE."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import orjson
import pytest

from streams.settings.model import known_variables, load_settings, unknown_variables

ROOT = Path(__file__).resolve().parents[4]


def kcollect(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("KCOLLECT_")}
    base |= {"KCOLLECT_LOG_FORMAT": "text", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "kcollect", *args],
        cwd=ROOT,
        env=base | (env or {}),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version() -> None:
    done = kcollect("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"kcollect {version('kcollect')}"


def test_completion_is_offered_and_completes_commands() -> None:
    assert "--install-completion" in kcollect("--help").stdout
    done = subprocess.run(
        [sys.executable, "-m", "kcollect"],
        cwd=ROOT,
        env=os.environ
        | {"_KCOLLECT_COMPLETE": "complete_bash", "COMP_WORDS": "kcollect sched", "COMP_CWORD": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "scheduler" in done.stdout.split()


BAD_CHOICES = [
    (["--log-level", "loud", "settings", "show"], "--log-level", "debug"),
    (["scheduler", "run", "--every", "1m", "--clients", "3", "--catch-up", "all"], "--catch-up", "latest"),
    (["scheduler", "run", "--every", "1m", "--clients", "3", "--overlap", "wait"], "--overlap", "queue"),
    (["runs", "verify", "r1", "--values", "exact"], "--values", "simulated"),
    (["dlq", "replay", "--stage", "sink", "--dry-run"], "--stage", "deadline"),
    (["settings", "show", "--format", "yaml"], "--format", "env"),
    (["runs", "list", "--state", "done"], "--state", "incomplete"),
]


@pytest.mark.parametrize(("args", "option", "a_choice"), BAD_CHOICES, ids=[c[1] for c in BAD_CHOICES])
def test_a_bad_choice_is_one_line_and_exit_2(args: list[str], option: str, a_choice: str) -> None:
    done = kcollect(*args)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert option in lines[0] and a_choice in lines[0] and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("command", "option", "choices"),
    [
        ([], "--log-level", "debug|info|warning|error"),
        (["scheduler", "run"], "--catch-up", "latest|skip"),
        (["scheduler", "run"], "--overlap", "skip|queue|allow"),
        (["runs", "verify"], "--values", "auto|simulated|none"),
        (["dlq", "replay"], "--stage", "decode|deadline|fetch|compute|produce"),
        (["settings", "show"], "--format", "text|json|env"),
        (["runs", "list"], "--state", "complete|incomplete|enqueueing|enqueued|failed|no-manifest"),
    ],
)
def test_help_lists_the_choices(command: list[str], option: str, choices: str) -> None:
    text = kcollect(*command, "--help").stdout
    line = next(line for line in text.splitlines() if line.lstrip("│ ").startswith(option))
    assert choices in line, line
    default = re.search(r"\[default: ([^\]]+)\]", line)
    assert default is None or default.group(1) in choices.split("|"), line


def test_log_level_from_the_environment() -> None:
    assert kcollect("settings", "show", env={"KCOLLECT_LOG_LEVEL": "debug"}).returncode == 0
    done = kcollect("settings", "show", env={"KCOLLECT_LOG_LEVEL": "chatty"})
    assert done.returncode == 2
    assert "KCOLLECT_LOG_LEVEL" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_an_unknown_variable_is_named_with_the_closest_known_one() -> None:
    done = kcollect("settings", "show", "--json", env={"KCOLLECT_PARTITONS": "3"})
    assert done.returncode == 0, done.stderr
    assert "KCOLLECT_PARTITONS is not a kcollect setting" in done.stderr
    assert "did you mean KCOLLECT_PARTITIONS?" in done.stderr
    assert orjson.loads(done.stdout)["KCOLLECT_PARTITIONS"] == 8


def test_unknown_variables_pure() -> None:
    environ = {
        "KCOLLECT_SINK_GRUOP": "x",
        "KCOLLECT_SINK_GROUP": "y",
        "KCOLLECT_CLICKHOUSE_PASSWORD_FILE": "/run/secret",
        "KCOLLECT_TEST_BOOTSTRAP_SERVERS": "h:1",
        "KCOLLECT_STATE_DIR": "/tmp",
        "KCOLLECT_ZZZZZZZZZZZZZZZZZZZZ": "1",
        "PATH": "/bin",
    }
    assert unknown_variables(environ) == [
        "KCOLLECT_SINK_GRUOP is not a kcollect setting and is ignored (did you mean KCOLLECT_SINK_GROUP?)",
        "KCOLLECT_ZZZZZZZZZZZZZZZZZZZZ is not a kcollect setting and is ignored",
    ]
    assert "KCOLLECT_LOG_LEVEL" in known_variables() and "KCOLLECT_CONSOLE_TOKEN" in known_variables()


def test_an_empty_variable_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("KCOLLECT_PARTITIONS", "KCOLLECT_BROKER_FLAVOR", "KCOLLECT_SESSION_TIMEOUT_MS"):
        monkeypatch.setenv(name, "")
    settings = load_settings()
    assert (settings.partitions, settings.broker_flavor, settings.session_timeout_ms) == (8, "auto", None)
    done = kcollect("settings", "show", "--json", env={"KCOLLECT_PARTITIONS": ""})
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["KCOLLECT_PARTITIONS"] == 8


def test_settings_env_format_reads_back(tmp_path: Path) -> None:
    given = {
        "KCOLLECT_PARTITIONS": "3",
        "KCOLLECT_TOPIC_PREFIX": "",
        "KCOLLECT_BOOTSTRAP_SERVERS": "a:9092,b:9092",
        "KCOLLECT_CLICKHOUSE_URL": "clickhouse://u:pw@h:9000/db",
        "KCOLLECT_KAFKA_CONFIG": '{"linger.ms": "5", "sasl.password": "s3cret", "client.id": "a \\"b\\""}',
        "KCOLLECT_CLICKHOUSE_VERIFY": "false",
        "KCOLLECT_CLICKHOUSE_PASSWORD": "hunter2",
        "KCOLLECT_SINK_BATCH_SECONDS": "0.25",
    }
    first = kcollect("settings", "show", "--format", "env", env=given)
    assert first.returncode == 0, first.stderr
    assert "hunter2" not in first.stdout and "s3cret" not in first.stdout and ":pw@" not in first.stdout
    path = tmp_path / "kcollect.env"
    path.write_text(first.stdout)
    again = kcollect("settings", "show", "--json", env={"KCOLLECT_SETTINGS_FILE": str(path)})
    assert again.returncode == 0, again.stderr
    before = orjson.loads(kcollect("settings", "show", "--json", env=given).stdout)
    after = orjson.loads(again.stdout)
    # What the file cannot carry: the secrets (left out on purpose) and the name of the file itself.
    before["KCOLLECT_CLICKHOUSE_URL"] = "clickhouse://u@h:9000/db"
    before["KCOLLECT_CLICKHOUSE_PASSWORD"] = None
    before["KCOLLECT_KAFKA_CONFIG"].pop("sasl.password")
    before["KCOLLECT_SETTINGS_FILE"] = str(path)
    assert after == before
    assert after["KCOLLECT_KAFKA_CONFIG"]["client.id"] == 'a "b"'


# Services run until SIGTERM and log; they report nothing to print as JSON.
SERVICES = {"processor", "sink", "exporter", "console", "simulate", "scheduler run"}


def command_paths() -> dict[str, list[list[str]]]:
    """Every leaf command of the app (``"runs list"``) with its options' names."""
    import typer

    from kcollect.cli.main import app

    found: dict[str, list[list[str]]] = {}

    def walk(command: Any, path: list[str]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])
        if not hasattr(command, "commands"):
            found[" ".join(path)] = [list(param.opts) for param in command.params]

    walk(typer.main.get_command(app), [])
    return found


def test_every_reporting_command_takes_json() -> None:
    commands = command_paths()
    assert set(commands) >= SERVICES and len(commands) > len(SERVICES) + 20
    missing = [name for name, opts in commands.items() if name not in SERVICES and ["--json"] not in opts]
    assert missing == []


def test_state_reset_reports_in_words_without_json() -> None:
    from kcollect.cli.state import _reset_line

    dry = {"clients": 3, "clocks": 1, "deleted": 0, "dry_run": True}
    assert (
        _reset_line("nightly", dry)
        == "schedule nightly: would delete 3 client(s) and 1 run clock(s) (dry run)"
    )
    done = {"clients": 3, "clocks": 1, "deleted": 3, "failed": 1, "dry_run": False}
    assert (
        _reset_line("nightly", done)
        == "schedule nightly: 3 client(s) and 1 run clock(s), 3 deleted, 1 not confirmed"
    )


def test_dlq_replay_offers_every_stage_the_processor_dead_letters_at() -> None:
    from kcollect.cli.choices import DeadLetterStage
    from processors.processor.dead_letters import _ADJECTIVE

    assert {stage.value for stage in DeadLetterStage} == set(_ADJECTIVE)


@pytest.mark.parametrize("given", ["{bad", "[1]"])
def test_simulate_refuses_fault_settings_that_are_no_json_object(given: str) -> None:
    done = kcollect("simulate", "--port", "0", "--settings", given)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "--settings" in done.stderr, done.stderr
