"""One validated settings object for every kcollect command and service, read from ``KCOLLECT_*``.

A bad value fails at start with one line per problem naming the variable. When neither
``KCOLLECT_BOOTSTRAP_SERVERS`` nor ``KCOLLECT_CLICKHOUSE_URL`` is set, the addresses come from the
running local stack (``kcollect stack up``).
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote, unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from streams.settings.dump import settings_dump
from streams.settings.names import ENV_PREFIX, SettingsError, variable
from streams.settings.sources import extra_sources
from streams.settings.stackfile import read_stack_file

# Variables read outside the Settings model (the CLI, the local stack, the console, fault drills) and the
# prefix of the test suite's own variables; every other KCOLLECT_* name is a field of Settings.
# read outside Settings: logging, the local stack (kcollect/localstack/), crash points, the console, drills
OTHER_VARIABLES = frozenset(
    f"{ENV_PREFIX}{name}"
    for name in (
        "LOG_LEVEL",
        "STATE_DIR",
        "CONSOLE_TOKEN",
        "FAULT_AT",
        "STACK_PROCESS",
        "DRILLS",
        "LOCAL_BROKER",
        "KAFKA_CACHE_DIR",
        "KAFKA_VERSION",
        "KAFKA_JVM_OPTIONS",
    )
)
TEST_VARIABLE_PREFIX = f"{ENV_PREFIX}TEST_"
log = logging.getLogger(__name__)
__all__ = [
    "ClickHouseAddress",
    "Settings",
    "SettingsError",
    "known_variables",
    "load_settings",
    "parse_clickhouse_url",
    "unknown_variables",
    "warn_unknown_variables",
]

SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"]  # issue #8
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
PASSWORD_MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")


@dataclass(frozen=True)
class ClickHouseAddress:
    """A parsed ``clickhouse://[user[:password]@]host[:port]/database`` URL."""

    host: str
    port: int
    database: str
    user: str = "default"
    password: str = ""
    secure: bool = False
    ca_certs: str | None = None  # a CA bundle to verify the server with (None: the system's)
    verify: bool = True  # False: TLS without checking the server's certificate
    cluster: str | None = None  # KCOLLECT_CLICKHOUSE_CLUSTER: replicated tables on this cluster

    def url(self) -> str:
        """The URL without credentials, for messages and logs."""
        return f"{self._scheme()}://{self._netloc()}/{self.database}"

    def url_with_credentials(self) -> str:
        """The full URL, credentials included, for handing to child processes (never log it)."""
        auth = (
            quote(self.user, safe="") + (":" + quote(self.password, safe="") if self.password else "") + "@"
        )
        return f"{self._scheme()}://{auth}{self._netloc()}/{self.database}"

    def _scheme(self) -> str:
        return "clickhouses" if self.secure else "clickhouse"

    def _netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def check_sasl_mechanism(mechanism: str | None, protocol: str | None) -> str | None:
    """A SASL protocol needs a mechanism; a mechanism needs a SASL protocol."""
    if protocol in SASL_PROTOCOLS and mechanism is None:
        raise ValueError(f"required when {variable('kafka_security_protocol')} is {protocol}")
    if mechanism is not None and protocol not in SASL_PROTOCOLS:
        raise ValueError(
            f"{mechanism} needs {variable('kafka_security_protocol')}=SASL_SSL or SASL_PLAINTEXT "
            f"(got {protocol})"
        )
    return mechanism


def check_sasl_credentials(mechanism: str | None, username: str | None, password: SecretStr | None) -> None:
    """PLAIN and SCRAM need both a user name and a password (never echoes the password)."""
    if mechanism in PASSWORD_MECHANISMS and (not username or password is None):
        user, password_variable = variable("kafka_sasl_username"), variable("kafka_sasl_password")
        missing = user if not username else "the password"
        raise ValueError(
            f"SASL {mechanism} needs {user} and {password_variable} "
            f"(or {password_variable}_FILE); {missing} is missing"
        )


def parse_clickhouse_url(url: str) -> ClickHouseAddress:
    """Parse a ClickHouse URL; raise ValueError saying what is wrong."""
    parts = urlsplit(url)
    if parts.scheme not in ("clickhouse", "clickhouses"):
        raise ValueError(f"must look like clickhouse://host:port/database (got {url!r})")
    database = parts.path.lstrip("/")
    if not parts.hostname or not database or not database.replace("_", "").isalnum():
        raise ValueError(f"needs a host and a database name of letters, digits and _ (got {url!r})")
    try:
        port = parts.port if parts.port is not None else 9000
    except ValueError:
        raise ValueError(f"has a bad port (got {url!r})") from None
    if port == 0:
        raise ValueError(f"has a bad port (got {url!r})")
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

    # An empty variable is unset (a compose file's ``KCOLLECT_X=`` or ``${X:-}``), not an empty value.
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="ignore", env_ignore_empty=True
    )

    bootstrap_servers: str | None = None
    clickhouse_url: str | None = None
    # A cluster of the servers' remote_servers: `db migrate` creates replicated tables ON CLUSTER with
    # Distributed tables over them, and the sink writes each shard's rows to that shard's replicas.
    clickhouse_cluster: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,100}$")
    broker_flavor: Literal["auto", "kafka", "tansu"] = "auto"
    topic_prefix: str = Field("kcollect.", pattern=r"^[A-Za-z0-9._-]{0,100}$")
    partitions: int = Field(8, ge=1, le=1024)
    # Replication of the topics `kcollect topics create` makes (docs/kafka.md, "A 3-broker cluster"):
    # None leaves each to the broker's default.replication.factor / min.insync.replicas. A 3-broker
    # cluster: 3 and 2, so acks=all survives one broker down and a write is on two before it counts.
    topic_replication_factor: int | None = Field(None, ge=1, le=32)
    topic_min_insync_replicas: int | None = Field(None, ge=1, le=32)
    processor_group: str = "kcollect-processor"
    sink_group: str = "kcollect-sink"
    session_timeout_ms: int | None = Field(None, ge=1000, le=300000)
    # classic, or KIP-848's consumer protocol (Apache Kafka 4+; refused on Tansu, which never assigns)
    group_protocol: Literal["classic", "consumer"] = "classic"
    # librdkafka's client.id: how `kcollect lag`, the exporter and doctor name a partition's owner
    client_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._@:-]{1,200}$")  # None: kcollect-<host>-<pid>
    kafka_config: dict[str, str] = Field(default_factory=dict)
    consume_batch: int = Field(5000, ge=1, le=100000)
    subsystem_batch: int = Field(500, ge=1, le=100000)  # clients per call of the built-in subsystems
    sim_latency_ms: float = Field(0.0, ge=0, le=60000)
    max_in_flight_batches: int = Field(4, ge=1, le=1000)
    # records per consume in the sink: result batches hold up to 1,000 rows each (~600 by default)
    sink_consume_batch: int = Field(32, ge=1, le=100000)
    sink_batch_rows: int = Field(100000, ge=1, le=10_000_000)
    sink_batch_bytes: int = Field(64 * 1024 * 1024, ge=1024)
    sink_batch_seconds: float = Field(1.0, gt=0, le=3600)
    # a window of at least sink_idle_rows rows also closes once its partition was quiet this long (0: off)
    sink_idle_seconds: float = Field(0.1, ge=0, le=3600)
    sink_idle_rows: int = Field(10000, ge=1, le=10_000_000)
    commit_interval_seconds: float = Field(1.0, gt=0, le=60)
    shutdown_deadline_seconds: float = Field(20.0, gt=0, le=600)
    broker_timeout_seconds: float = Field(30.0, gt=0, le=600)
    # memory for the ids enqueue has seen; past it they are deduplicated through hash partitions on disk
    enqueue_memory_mb: int = Field(128, ge=1, le=1_000_000)

    # enqueue: a throttled wait (--max-lag) longer than this stops the enqueue (exit 1; run it again)
    enqueue_throttle_max_wait_seconds: float = Field(3600.0, gt=0, le=7 * 86400)

    # the largest record kcollect produces; a topic's max.message.bytes lowers it (streams/topic_limits.py)
    max_message_bytes: int = Field(1_000_000, ge=4096, le=100 * 1024 * 1024)

    # --- processor (processors/processor/service.py; docs/processor.md) ---------------------------
    processor_config: str | None = None  # YAML/JSON file of subsystems, metrics and compute (None: built-in)
    processor_group_instance_id: str | None = None  # static membership (group.instance.id); off by default
    # range: every member gets its share of each topic (requests and requests.retry alike);
    # cooperative-sticky balances the count only and can leave one processor all the retry partitions
    processor_assignment_strategy: Literal["cooperative-sticky", "range", "roundrobin"] = "range"
    processor_dlq_guard_window: int = Field(1000, ge=10, le=10_000_000)
    processor_dlq_guard_ratio: float = Field(0.9, gt=0, le=1)
    # the per-client state's local stores (processors/processor/state/); None: <STATE_DIR>/processor-store
    processor_store_dir: str | None = None

    # Lag-based backpressure (streams/lag/gate.py, docs/lag.md): processors pause while the sink
    # group's lag on the results topic is above results_lag_high and resume once it is at or below
    # results_lag_low; 0 turns the gate off. The lag counts records: the processor's result batches hold
    # up to 1,000 clients each (one consumed batch's share of a partition; ~600 with the defaults).
    results_lag_high: int = Field(1_000, ge=0)
    results_lag_low: int = Field(200, ge=0)
    results_lag_interval_seconds: float = Field(1.0, gt=0, le=60)

    # --- deployment (issue #8: streams/settings/sources.py, dump.py, docs/operations.md) ---
    # A settings file (KCOLLECT_SETTINGS_FILE: TOML, JSON or env lines) is read below the variables;
    # secrets may come from files (KCOLLECT_CLICKHOUSE_PASSWORD_FILE, KCOLLECT_KAFKA_SASL_PASSWORD_FILE,
    # KCOLLECT_KAFKA_SSL_KEY_PASSWORD_FILE). Secrets are SecretStr: never printed, masked in dumps.
    settings_file: str | None = None
    http_port: int = Field(
        0, ge=0, le=65535
    )  # /metrics, /healthz, /readyz (streams/observability/health.py); 0 = off
    http_addr: str = "0.0.0.0"
    healthz_max_age_seconds: float = Field(30.0, gt=0, le=3600)  # /healthz fails when the loop is older
    log_format: Literal["auto", "json", "text"] = "auto"  # auto: JSON unless stderr is a terminal
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] | None = None
    kafka_sasl_mechanism: SaslMechanism | None = Field(None, validate_default=True)
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = Field(None, validate_default=True)
    kafka_ssl_ca_location: str | None = None
    kafka_ssl_certificate_location: str | None = None
    kafka_ssl_key_location: str | None = None
    kafka_ssl_key_password: SecretStr | None = None
    kafka_ssl_endpoint_identification: Literal["https", "none"] | None = None
    clickhouse_user: str | None = None  # overrides the URL's user
    clickhouse_password: SecretStr | None = None  # overrides the URL's password
    clickhouse_secure: bool | None = None  # TLS to ClickHouse (None: as the URL's scheme says)
    clickhouse_ca_certs: str | None = None
    clickhouse_verify: bool = True

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, *extra_sources(settings_cls))

    @field_validator("kafka_sasl_mechanism")
    @classmethod
    def _check_sasl_mechanism(cls, value: str | None, info: ValidationInfo) -> str | None:
        return check_sasl_mechanism(value, info.data.get("kafka_security_protocol"))

    @field_validator("kafka_sasl_password")
    @classmethod
    def _check_sasl_credentials(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        data = info.data
        check_sasl_credentials(data.get("kafka_sasl_mechanism"), data.get("kafka_sasl_username"), value)
        return value

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """repr() and str() with secrets masked, as in ``streams.settings.dump.settings_dump``."""
        masked = settings_dump(self)
        for name, value in super().__repr_args__():
            yield name, masked.get(variable(str(name)), value)

    # --- end of the deployment block ----------------------------------------------------------------------

    @model_validator(mode="after")
    def _check_results_lag_marks(self) -> Settings:
        if self.results_lag_high and self.results_lag_low >= self.results_lag_high:
            raise ValueError(
                f"{variable('results_lag_low')} ({self.results_lag_low}) must be below "
                f"{variable('results_lag_high')} ({self.results_lag_high})"
            )
        return self

    @model_validator(mode="after")
    def _check_min_insync(self) -> Settings:
        rf, min_isr = self.topic_replication_factor, self.topic_min_insync_replicas
        if rf is not None and min_isr is not None and min_isr > rf:
            raise ValueError(
                f"{variable('topic_min_insync_replicas')} ({min_isr}) must not exceed "
                f"{variable('topic_replication_factor')} ({rf}): every acks=all write would be refused"
            )
        return self

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

    def _from_stack(self) -> tuple[str | None, str | None, str | None]:
        """Bootstrap servers, ClickHouse URL and cluster: the variables', else the local stack's."""
        if self.bootstrap_servers is None and self.clickhouse_url is None:
            stack = read_stack_file()
            if stack is not None:
                cluster = self.clickhouse_cluster or stack.clickhouse_cluster
                return stack.bootstrap_servers, stack.clickhouse_url, cluster
        return self.bootstrap_servers, self.clickhouse_url, self.clickhouse_cluster

    def kafka_bootstrap(self) -> str:
        """The bootstrap servers, from the variable or the local stack; SettingsError when neither."""
        servers = self._from_stack()[0]
        if servers is None:
            raise SettingsError(
                f"{variable('bootstrap_servers')} is not set and no local stack is running "
                "(start one with `kcollect stack up`)"
            )
        return servers

    def clickhouse(self) -> ClickHouseAddress:
        """The ClickHouse address, from the variable or the local stack; SettingsError when neither."""
        _, url, cluster = self._from_stack()
        if url is None:
            raise SettingsError(
                f"{variable('clickhouse_url')} is not set and no local stack is running "
                "(start one with `kcollect stack up`)"
            )
        address = self._with_overrides(parse_clickhouse_url(url))
        return dataclasses.replace(address, cluster=cluster) if cluster else address

    def _with_overrides(self, address: ClickHouseAddress) -> ClickHouseAddress:
        """``address`` with ``KCOLLECT_CLICKHOUSE_USER`` / ``_PASSWORD`` / ``_SECURE`` / ``_CA_CERTS`` /
        ``_VERIFY`` applied over the URL's."""
        changes: dict[str, Any] = {}
        if self.clickhouse_user is not None:
            changes["user"] = self.clickhouse_user
        if self.clickhouse_password is not None:
            changes["password"] = self.clickhouse_password.get_secret_value()
        if self.clickhouse_secure is not None:
            changes["secure"] = self.clickhouse_secure
        if self.clickhouse_ca_certs:
            changes["ca_certs"] = self.clickhouse_ca_certs
        if not self.clickhouse_verify:
            changes["verify"] = False
        return dataclasses.replace(address, **changes) if changes else address


def describe_errors(exc: ValidationError) -> str:
    """One line per problem, naming the environment variable."""
    lines = []
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if not error["loc"]:  # a check across fields: its message names the variables
            lines.append(message)
            continue
        name = variable(str(error["loc"][0]))
        lines.append(
            f"{name}: {message} (got {error.get('input')!r})"
            if "got" not in message
            else f"{name}: {message}"
        )
    return "\n".join(lines)


def known_variables() -> frozenset[str]:
    """Every ``KCOLLECT_*`` variable kcollect reads (fields, their secret ``_FILE`` twins, the others)."""
    from streams.settings.sources import SECRET_FIELDS

    fields = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    secret_files = {f"{ENV_PREFIX}{name.upper()}_FILE" for name in SECRET_FIELDS}
    return frozenset(fields | secret_files | OTHER_VARIABLES)


def unknown_variables(environ: Mapping[str, str]) -> list[str]:
    """One message per ``KCOLLECT_*`` variable that kcollect does not read, with the closest known name."""
    known = known_variables()
    messages = []
    for name in sorted(environ):
        if not name.startswith(ENV_PREFIX) or name in known or name.startswith(TEST_VARIABLE_PREFIX):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        messages.append(f"{name} is not a kcollect setting and is ignored{hint}")
    return messages


_warned: set[str] = set()


def warn_unknown_variables(environ: Mapping[str, str] | None = None) -> list[str]:
    """Log each unknown ``KCOLLECT_*`` variable once per process (WARNING); returns the messages."""
    messages = unknown_variables(os.environ if environ is None else environ)
    for message in messages:
        if message not in _warned:
            _warned.add(message)
            log.warning("%s", message)
    return messages


def load_settings(**overrides: object) -> Settings:
    """Read and validate settings; raise SettingsError with one line per bad variable."""
    warn_unknown_variables()
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_errors(exc)) from None
