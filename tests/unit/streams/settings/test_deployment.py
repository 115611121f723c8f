"""Deployment settings (issue #8): settings file, secrets from files, security pass-through, masked dump,
and one clear line per problem (also through the CLI, exit 2)."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.observability.logs import JsonFormatter, redact, setup_logging
from streams.settings.clickhouse import tls_kwargs
from streams.settings.dump import settings_dump
from streams.settings.librdkafka import kafka_security_config
from streams.settings.model import load_settings
from streams.settings.names import SettingsError

ROOT = Path(__file__).resolve().parents[4]
SECRET = "s3cr3t-Value"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("KCOLLECT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KCOLLECT_STATE_DIR", str(tmp_path / "state"))


def one_error(monkeypatch: pytest.MonkeyPatch, **env: str) -> str:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as info:
        load_settings()
    lines = str(info.value).splitlines()
    assert len(lines) == 1, lines
    assert SECRET not in lines[0]
    return lines[0]


def test_settings_file_in_each_format_sits_below_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    toml = tmp_path / "kcollect.toml"
    toml.write_text('partitions = 12\nKCOLLECT_TOPIC_PREFIX = "prod."\n[kafka_config]\n"linger.ms" = "7"\n')
    monkeypatch.setenv("KCOLLECT_SETTINGS_FILE", str(toml))
    settings = load_settings()
    assert (settings.partitions, settings.topic_prefix) == (12, "prod.")
    assert settings.kafka_config == {"linger.ms": "7"} and settings.settings_file == str(toml)
    monkeypatch.setenv("KCOLLECT_PARTITIONS", "3")
    assert load_settings().partitions == 3  # the variable wins
    for name, text in (("s.json", '{"partitions": 5}'), ("s.env", "# c\nexport KCOLLECT_PARTITIONS='5'\n")):
        (tmp_path / name).write_text(text)
        monkeypatch.setenv("KCOLLECT_SETTINGS_FILE", str(tmp_path / name))
        monkeypatch.delenv("KCOLLECT_PARTITIONS", raising=False)
        assert load_settings().partitions == 5


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("bad.toml", "partitions = = 3", "KCOLLECT_SETTINGS_FILE: .*bad.toml is not valid toml"),
        ("bad.json", "[1, 2]", "must hold a table/object"),
        ("bad.env", "just words", "line 1 is not KEY=VALUE"),
        ("typo.toml", "partitons = 3", "unknown setting 'partitons'"),
        ("value.toml", 'partitions = "many"', "^KCOLLECT_PARTITIONS: "),
    ],
)
def test_bad_settings_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, name: str, text: str, expected: str
) -> None:
    (tmp_path / name).write_text(text)
    import re

    assert re.search(expected, one_error(monkeypatch, KCOLLECT_SETTINGS_FILE=str(tmp_path / name)))


def test_missing_settings_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    line = one_error(monkeypatch, KCOLLECT_SETTINGS_FILE=str(tmp_path / "nope.toml"))
    assert line.startswith("KCOLLECT_SETTINGS_FILE: cannot read") and "No such file" in line


def test_missing_and_malformed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    assert one_error(monkeypatch, KCOLLECT_HTTP_PORT="http").startswith("KCOLLECT_HTTP_PORT: ")
    monkeypatch.delenv("KCOLLECT_HTTP_PORT")
    assert one_error(monkeypatch, KCOLLECT_LOG_FORMAT="xml").startswith("KCOLLECT_LOG_FORMAT: ")
    monkeypatch.delenv("KCOLLECT_LOG_FORMAT")
    line = one_error(monkeypatch, KCOLLECT_KAFKA_SECURITY_PROTOCOL="SASL_SSL")
    assert line.startswith("KCOLLECT_KAFKA_SASL_MECHANISM: required when")
    line = one_error(monkeypatch, KCOLLECT_KAFKA_SASL_MECHANISM="SCRAM-SHA-512")
    assert line.startswith("KCOLLECT_KAFKA_SASL_PASSWORD: SASL SCRAM-SHA-512 needs")
    monkeypatch.delenv("KCOLLECT_KAFKA_SECURITY_PROTOCOL")
    line = one_error(monkeypatch, KCOLLECT_KAFKA_SASL_PASSWORD=SECRET)
    assert line.startswith(
        "KCOLLECT_KAFKA_SASL_MECHANISM: SCRAM-SHA-512 needs KCOLLECT_KAFKA_SECURITY_PROTOCOL"
    )


def test_unreadable_secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    line = one_error(monkeypatch, KCOLLECT_CLICKHOUSE_PASSWORD_FILE=str(tmp_path / "missing"))
    assert line.startswith("KCOLLECT_CLICKHOUSE_PASSWORD_FILE: cannot read the secret file")
    monkeypatch.setenv("KCOLLECT_CLICKHOUSE_PASSWORD_FILE", str(tmp_path))  # a directory
    assert "KCOLLECT_CLICKHOUSE_PASSWORD_FILE" in one_error(monkeypatch)


def secure_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "sasl").write_text(SECRET + "\n")
    (tmp_path / "ch").write_text(SECRET)
    for name, value in {
        "KCOLLECT_BOOTSTRAP_SERVERS": "kafka:9093",
        "KCOLLECT_CLICKHOUSE_URL": f"clickhouses://reader:{SECRET}@ch:9440/kcollect",
        "KCOLLECT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KCOLLECT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KCOLLECT_KAFKA_SASL_USERNAME": "svc",
        "KCOLLECT_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "sasl"),
        "KCOLLECT_KAFKA_SSL_CA_LOCATION": "/etc/ca.pem",
        "KCOLLECT_KAFKA_CONFIG": json.dumps({"sasl.oauthbearer.client.secret": SECRET, "linger.ms": "5"}),
        "KCOLLECT_CLICKHOUSE_USER": "writer",
        "KCOLLECT_CLICKHOUSE_PASSWORD_FILE": str(tmp_path / "ch"),
        "KCOLLECT_CLICKHOUSE_CA_CERTS": "/etc/ch-ca.pem",
    }.items():
        monkeypatch.setenv(name, value)


def test_security_pass_through(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secure_env(monkeypatch, tmp_path)
    settings = load_settings()
    assert kafka_security_config(settings) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "svc",
        "sasl.password": SECRET,  # the file's newline is dropped
        "ssl.ca.location": "/etc/ca.pem",
    }
    address = settings.clickhouse()
    assert (address.user, address.password, address.secure, address.port) == ("writer", SECRET, True, 9440)
    assert tls_kwargs(settings.clickhouse()) == {"secure": True, "verify": True, "ca_certs": "/etc/ch-ca.pem"}
    assert kafka_security_config(load_settings(kafka_security_protocol=None, kafka_sasl_mechanism=None)) == {
        "sasl.username": "svc", "sasl.password": SECRET, "ssl.ca.location": "/etc/ca.pem"
    }  # fmt: skip


def test_dump_and_repr_mask_every_secret(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secure_env(monkeypatch, tmp_path)
    settings = load_settings()
    dump = settings_dump(settings)
    assert SECRET not in json.dumps(dump) and SECRET not in repr(settings) and SECRET not in str(settings)
    assert dump["KCOLLECT_KAFKA_SASL_PASSWORD"] == "***"
    assert dump["KCOLLECT_CLICKHOUSE_URL"] == "clickhouses://reader:***@ch:9440/kcollect"
    assert dump["KCOLLECT_KAFKA_CONFIG"] == {"sasl.oauthbearer.client.secret": "***", "linger.ms": "5"}
    assert dump["KCOLLECT_KAFKA_SASL_USERNAME"] == "svc"


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("KCOLLECT_")} | env
    full["PYTHONPATH"] = str(ROOT)
    return subprocess.run([sys.executable, "-m", "kcollect", *args], env=full, capture_output=True,
                          text=True, timeout=60, cwd=ROOT)  # fmt: skip


def test_cli_settings_show_and_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secure_env(monkeypatch, tmp_path)
    env = {k: v for k, v in os.environ.items() if k.startswith("KCOLLECT_")}
    shown = cli(env, "settings", "show", "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["KCOLLECT_KAFKA_SASL_USERNAME"] == "svc" and SECRET not in shown.stdout
    for bad, name in (
        ({"KCOLLECT_HTTP_PORT": "99999"}, "KCOLLECT_HTTP_PORT"),
        ({"KCOLLECT_SETTINGS_FILE": str(tmp_path / "none.toml")}, "KCOLLECT_SETTINGS_FILE"),
        ({"KCOLLECT_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "none")}, "KCOLLECT_KAFKA_SASL_PASSWORD_FILE"),
    ):
        failed = cli(env | bad, "settings", "show")
        assert failed.returncode == 2
        lines = failed.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"kcollect: {name}: "), failed.stderr
        assert SECRET not in failed.stderr
    missing = {
        k: v for k, v in env.items() if k not in ("KCOLLECT_BOOTSTRAP_SERVERS", "KCOLLECT_CLICKHOUSE_URL")
    }
    failed = cli(missing, "scheduler", "run", "--every", "5m", "--clients", "0-9")
    assert failed.returncode == 2
    assert (
        failed.stderr.strip().splitlines()[-1].startswith("kcollect: KCOLLECT_BOOTSTRAP_SERVERS is not set")
    )


def test_logs_are_json_off_a_terminal_and_redacted() -> None:
    stream = io.StringIO()
    handler = setup_logging("INFO", "auto", stream)
    try:
        log = logging.getLogger("kcollect.test")
        log.info("connect clickhouse://u:%s@h:9000/db password=%s", SECRET, SECRET, extra={"run_id": "r1"})
        record = json.loads(stream.getvalue().splitlines()[-1])
        assert record["level"] == "INFO" and record["logger"] == "kcollect.test" and record["run_id"] == "r1"
        assert SECRET not in stream.getvalue() and "u:***@h" in record["msg"]
    finally:
        logging.getLogger().removeHandler(handler)
    assert redact('{"sasl.password": "x1"} token=abc') == '{"sasl.password": "***"} token=***'
    assert isinstance(setup_logging("INFO", "text", io.StringIO()).formatter, logging.Formatter)
    assert not isinstance(setup_logging("INFO", "text", io.StringIO()).formatter, JsonFormatter)
