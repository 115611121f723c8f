"""One validated settings object for every kcollect command and service, read from ``KCOLLECT_*``.

A bad value fails at start with one line per problem naming the variable. When neither
``KCOLLECT_BOOTSTRAP_SERVERS`` nor ``KCOLLECT_CLICKHOUSE_URL`` is set, the addresses come from the
running local stack (``kcollect stack up``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from streams.stackfile import read_stack_file

ENV_PREFIX = "KCOLLECT_"


class SettingsError(ValueError):
    """Settings that cannot be used; the message names the variable(s)."""


@dataclass(frozen=True)
class ClickHouseAddress:
    """A parsed ``clickhouse://[user[:password]@]host[:port]/database`` URL."""

    host: str
    port: int
    database: str
    user: str = "default"
    password: str = ""
    secure: bool = False

    def url(self) -> str:
        return f"clickhouse://{self.host}:{self.port}/{self.database}"


def parse_clickhouse_url(url: str) -> ClickHouseAddress:
    """Parse a ClickHouse URL; raise ValueError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("clickhouse", "clickhouses"):
        raise ValueError(f"must look like clickhouse://host:port/database (got {url!r})")
    database = parts.path.lstrip("/")
    if not parts.hostname or not database or not database.replace("_", "").isalnum():
        raise ValueError(f"needs a host and a database name of letters, digits and _ (got {url!r})")
    try:
        port = parts.port or 9000
    except ValueError:
        raise ValueError(f"has a bad port (got {url!r})") from None
    return ClickHouseAddress(
        parts.hostname,
        port,
        database,
        unquote(parts.username or "default"),
        unquote(parts.password or ""),
        parts.scheme == "clickhouses",
    )


class Settings(BaseSettings):
    """Every setting, with its default; the variable is ``KCOLLECT_`` + the field name in capitals."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    bootstrap_servers: str | None = None
    clickhouse_url: str | None = None
    broker_flavor: Literal["auto", "kafka", "tansu"] = "auto"
    topic_prefix: str = Field("kcollect.", pattern=r"^[A-Za-z0-9._-]{0,100}$")
    partitions: int = Field(8, ge=1, le=1024)
    processor_group: str = "kcollect-processor"
    sink_group: str = "kcollect-sink"
    session_timeout_ms: int | None = Field(None, ge=1000, le=300000)
    kafka_config: dict[str, str] = Field(default_factory=dict)
    consume_batch: int = Field(5000, ge=1, le=100000)
    subsystem_batch: int = Field(500, ge=1, le=100000)
    sim_latency_ms: float = Field(0.0, ge=0, le=60000)
    max_in_flight_batches: int = Field(4, ge=1, le=1000)
    sink_batch_rows: int = Field(100000, ge=1, le=10_000_000)
    sink_batch_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    sink_batch_seconds: float = Field(1.0, gt=0, le=3600)
    commit_interval_seconds: float = Field(1.0, gt=0, le=60)
    shutdown_deadline_seconds: float = Field(20.0, gt=0, le=600)
    broker_timeout_seconds: float = Field(30.0, gt=0, le=600)

    @field_validator("clickhouse_url")
    @classmethod
    def _check_clickhouse_url(cls, value: str | None) -> str | None:
        if value is not None:
            parse_clickhouse_url(value)
        return value

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_bootstrap(cls, value: str | None) -> str | None:
        if value is not None:
            for server in value.split(","):
                host, _, port = server.strip().rpartition(":")
                if not host or not port.isdigit() or not 0 < int(port) < 65536:
                    raise ValueError(f"must be host:port[,host:port...] (got {value!r})")
        return value

    def _from_stack(self) -> tuple[str | None, str | None]:
        if self.bootstrap_servers is None and self.clickhouse_url is None:
            stack = read_stack_file()
            if stack is not None:
                return stack.bootstrap_servers, stack.clickhouse_url
        return self.bootstrap_servers, self.clickhouse_url

    def kafka_bootstrap(self) -> str:
        """The bootstrap servers, from the variable or the local stack; SettingsError when neither."""
        servers = self._from_stack()[0]
        if servers is None:
            raise SettingsError(
                f"{ENV_PREFIX}BOOTSTRAP_SERVERS is not set and no local stack is running "
                "(start one with `kcollect stack up`)"
            )
        return servers

    def clickhouse(self) -> ClickHouseAddress:
        """The ClickHouse address, from the variable or the local stack; SettingsError when neither."""
        url = self._from_stack()[1]
        if url is None:
            raise SettingsError(
                f"{ENV_PREFIX}CLICKHOUSE_URL is not set and no local stack is running "
                "(start one with `kcollect stack up`)"
            )
        return parse_clickhouse_url(url)

    def topic(self, spec_suffix: str) -> str:
        return f"{self.topic_prefix}{spec_suffix}"


def describe_errors(exc: ValidationError) -> str:
    """One line per problem, naming the environment variable."""
    lines = []
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        message = error["msg"].removeprefix("Value error, ")
        lines.append(
            f"{ENV_PREFIX}{field.upper()}: {message} (got {error.get('input')!r})"
            if "got" not in message
            else f"{ENV_PREFIX}{field.upper()}: {message}"
        )
    return "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings; raise SettingsError with one line per bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc)) from None
