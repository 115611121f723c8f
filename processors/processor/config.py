"""The deployment's processor config: which subsystems give which metrics, how to call them, what to compute.

Read from ``KCOLLECT_PROCESSOR_CONFIG`` (a YAML or JSON file) and validated at start; without a file
the built-in simulated set is used (alpha: 1 metric, beta: 10). ``kind`` chooses the client:
``simulated``, ``http`` (``url``), ``sql`` (``query``) or ``plugin`` (``factory``: ``module:attr``, a
callable taking the ``SubsystemConfig`` and returning a ``Subsystem``). ``compute`` is a registered
name or ``module:attr``. Every problem is reported at once, with the path of the bad field.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
import yaml  # type: ignore[import-untyped,unused-ignore]
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from processors.processor.compute import ComputeFn, get_compute
from processors.processor.subsystems.simulated import DEFAULT_METRICS


class ConfigError(ValueError):
    """The processor config cannot be used; the message says where and why."""


class BreakerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    failure_threshold: Annotated[int, Field(ge=1)] = 5
    reset_seconds: Annotated[float, Field(gt=0)] = 5.0
    half_open_probes: Annotated[int, Field(ge=1)] = 1


class SubsystemConfig(BaseModel):
    """One subsystem and its call policy."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    kind: Literal["simulated", "http", "sql", "plugin"] = "simulated"
    metrics: tuple[str, ...] = Field(min_length=1)
    url: str | None = None
    query: str | None = None
    factory: str | None = None
    options: dict[str, Any] = Field(default_factory=dict)
    latency_ms: Annotated[float, Field(ge=0)] = 0.0
    max_concurrency: Annotated[int, Field(ge=1, le=256)] = 4
    batch_size: Annotated[int, Field(ge=1, le=100000)] = 500
    timeout_seconds: Annotated[float, Field(gt=0, le=600)] = 5.0
    retries: Annotated[int, Field(ge=0, le=20)] = 2
    backoff_base_seconds: Annotated[float, Field(ge=0)] = 0.05
    backoff_max_seconds: Annotated[float, Field(ge=0)] = 2.0
    max_response_bytes: Annotated[int, Field(ge=1024)] = 16 * 1024 * 1024
    required: bool = False
    breaker: BreakerConfig = BreakerConfig()

    @model_validator(mode="after")
    def _kind_needs(self) -> SubsystemConfig:
        needed = {
            "http": ("url", self.url),
            "sql": ("query", self.query),
            "plugin": ("factory", self.factory),
        }
        if self.kind in needed and not needed[self.kind][1]:
            raise ValueError(f"kind {self.kind!r} needs {needed[self.kind][0]!r}")
        if self.factory is not None and ":" not in self.factory:
            raise ValueError(f"factory must be 'module:attr' (got {self.factory!r})")
        return self


class RetryConfig(BaseModel):
    """The retry topic: attempts in all (the first included) and the wait between them."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_attempts: Annotated[int, Field(ge=1, le=100)] = 3
    delay_ms: Annotated[int, Field(ge=0)] = 1000
    max_delay_ms: Annotated[int, Field(ge=0)] = 60000


StatefulCompute = Literal["delta", "increase", "rate"]


class StateConfig(BaseModel):
    """Per-client state across the runs of a schedule (processors/processor/state/, docs/state.md)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    metrics: dict[str, tuple[StatefulCompute, ...]] = Field(default_factory=dict)
    compute: str | None = None  # a stateful plug-in, module:attr (history.StatefulFn)
    keep: tuple[str, ...] = ()  # further metric values kept for the plug-in
    keep_runs: Annotated[int, Field(ge=2, le=16)] = 3
    drop_after_runs: Annotated[int, Field(ge=1)] = 10
    drop_after_seconds: Annotated[float, Field(gt=0)] = 7 * 24 * 3600.0

    @model_validator(mode="after")
    def _something(self) -> StateConfig:
        if not self.metrics and self.compute is None:
            raise ValueError("state needs metrics (with delta, increase or rate) or a compute plug-in")
        for metric, computes in self.metrics.items():
            if not computes:
                raise ValueError(f"metrics.{metric}: name at least one of delta, increase, rate")
        return self


class ProcessorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    subsystems: tuple[SubsystemConfig, ...] = Field(min_length=1)
    compute: str = "summary"
    retry: RetryConfig = RetryConfig()
    state: StateConfig | None = None

    @model_validator(mode="after")
    def _unique(self) -> ProcessorConfig:
        names = [s.name for s in self.subsystems]
        metrics = [m for s in self.subsystems for m in s.metrics]
        for what, values in (("subsystem", names), ("metric", metrics)):
            dupes = sorted({v for v in values if values.count(v) > 1})
            if dupes:
                raise ValueError(f"{what} names must be unique: {', '.join(dupes)}")
        if self.state is not None:
            unknown = sorted((set(self.state.metrics) | set(self.state.keep)) - set(metrics))
            if unknown:
                raise ValueError(f"state names metrics no subsystem gives: {', '.join(unknown)}")
        return self

    @property
    def metrics(self) -> tuple[str, ...]:
        return tuple(m for s in self.subsystems for m in s.metrics)


def default_config(latency_ms: float = 0.0, batch_size: int = 500) -> ProcessorConfig:
    """The built-in simulated set: alpha (1 metric) and beta (10), ``batch_size`` clients per call."""
    return ProcessorConfig(
        subsystems=tuple(
            SubsystemConfig(name=name, metrics=metrics, latency_ms=latency_ms, batch_size=batch_size)
            for name, metrics in DEFAULT_METRICS.items()
        )
    )


def parse_config(data: dict[str, Any], source: str = "config") -> ProcessorConfig:
    try:
        config = ProcessorConfig.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        lines = [
            f"{source}: {'.'.join(str(p) for p in e['loc']) or '(top)'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in errors
            if not _follows_from(e, errors)
        ]
        raise ConfigError("\n".join(lines)) from None
    check_imports(config, source)
    return config


def _follows_from(error: Any, errors: list[Any]) -> bool:
    """A list's "too short" error caused by its bad items (pydantic reports both): not worth a line."""
    loc = tuple(error["loc"])
    return error["type"] == "too_short" and any(
        tuple(other["loc"])[: len(loc)] == loc and other is not error for other in errors
    )


def load_config(path: Path | None, latency_ms: float = 0.0, batch_size: int = 500) -> ProcessorConfig:
    """The config from ``path`` (YAML or JSON), or the default set when ``path`` is None (with
    ``latency_ms`` and ``batch_size``: ``KCOLLECT_SIM_LATENCY_MS``, ``KCOLLECT_SUBSYSTEM_BATCH``)."""
    if path is None:
        return default_config(latency_ms, batch_size)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    return parse_config(data, str(path))


def import_path(spec: str) -> Any:
    """Resolve ``module:attr`` (attr may be dotted); ConfigError when it does not exist."""
    module_name, _, attr = spec.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import {spec!r}: {exc}") from None
    return obj


def resolve_compute(spec: str) -> ComputeFn:
    """A registered name, or ``module:attr`` naming a plugin compute function."""
    if ":" not in spec:
        return get_compute(spec)
    fn = import_path(spec)
    if not callable(fn):
        raise ValueError(f"{spec!r} is not callable")
    return fn  # type: ignore[no-any-return]


def resolve_stateful(spec: str) -> Any:
    """The stateful plug-in ``module:attr`` (called with this run's and the previous observation)."""
    fn = import_path(spec)
    if not callable(fn):
        raise ConfigError(f"{spec!r} is not callable")
    return fn


def check_imports(config: ProcessorConfig, source: str) -> None:
    if config.state is not None and config.state.compute is not None:
        if ":" not in config.state.compute:
            raise ConfigError(f"{source}: state.compute must be 'module:attr' (got {config.state.compute!r})")
        resolve_stateful(config.state.compute)
    for sub in config.subsystems:
        if sub.factory is not None and not callable(import_path(sub.factory)):
            raise ConfigError(f"{source}: subsystems.{sub.name}.factory: {sub.factory!r} is not callable")
    try:
        resolve_compute(config.compute)
    except ValueError as exc:
        raise ConfigError(f"{source}: compute: {exc}") from None
