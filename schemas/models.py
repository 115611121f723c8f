"""Versioned message models: what travels on the kcollect topics.

The wire format is JSON (see ``schemas.codec``); times are integer epoch milliseconds so that
encoding stays cheap and exact. Every message carries ``v``, its schema version.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

MAX_ID_LENGTH = 128
Record = dict[str, Any]  # a message as decoded JSON, before or after its model checked it
MAX_ATTEMPT = 1000  # retries of one client's request in one run, at most
MAX_EPOCH_MS = 253402300799999  # 9999-12-31T23:59:59.999Z: the last epoch millisecond a message may hold
_RUN_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}")


def is_valid_client_id(value: str) -> bool:
    """Client ids are 1 to 128 printable characters."""
    return 0 < len(value) <= MAX_ID_LENGTH and value.isprintable()


def is_valid_run_id(value: str) -> bool:
    """Run ids: 1 to 128 of letters, digits and ``. _ : @ + -``, starting with a letter or digit."""
    return _RUN_ID_PATTERN.fullmatch(value) is not None


def check_client_id(value: str) -> str:
    if not is_valid_client_id(value):
        raise ValueError("client id must be 1 to 128 printable characters")
    return value


def check_run_id(value: str) -> str:
    if not is_valid_run_id(value):
        raise ValueError(
            "run id must be 1 to 128 characters of A-Z a-z 0-9 . _ : @ + - (not starting with a sign)"
        )
    return value


ClientId = Annotated[str, AfterValidator(check_client_id)]
RunId = Annotated[str, AfterValidator(check_run_id)]
EpochMs = Annotated[int, Field(ge=0, le=MAX_EPOCH_MS)]
Digest = Annotated[str, Field(pattern=r"^[0-9a-f]{16}$")]  # schemas.client_set.to_hex


Scalar = bool | float | str | None
MetricValue = bool | float | str | list[Scalar] | dict[str, Scalar]
"""A metric is a number (stored as Float64), or else a string, a boolean, or a flat list or object of
those (a counter set, a version tuple...): stored as its JSON text (``schemas.ddl``: ``text_values``)."""

ResultStatus = Literal["ok", "partial"]
"""``ok``: every configured metric was fetched; ``partial``: some were not (named in ``missing``)."""


class ClientMessage(BaseModel):
    """The fields every message about one client in one run starts with, in this order."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    v: Literal[1] = 1
    run_id: RunId
    client_id: ClientId
    requested_at_ms: EpochMs
    attempt: Annotated[int, Field(ge=0, le=MAX_ATTEMPT)] = 0


class CollectionRequest(ClientMessage):
    """Collect metrics for one client in one run (topic: requests)."""

    deadline_ms: EpochMs | None = None


class ClientResult(ClientMessage):
    """The fetched metrics and computed values of one client in one run (topic: results)."""

    collected_at_ms: EpochMs
    status: ResultStatus
    metrics: dict[str, MetricValue]
    missing: list[str] = Field(default_factory=list)
    computed: dict[str, float]


SCHEMA_VERSIONS: dict[str, int] = {"request": 1, "result": 1}


RunStatus = Literal["enqueueing", "enqueued", "failed"]


class EnqueueTotal(BaseModel):
    """One confirmed enqueue of a run: its own distinct clients, and the run's client set after it (the
    union with every earlier enqueue's), each as a size and a digest (``schemas.client_set``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    source: str
    clients: Annotated[int, Field(ge=0)]
    digest: Digest
    union_clients: Annotated[int, Field(ge=0)]
    union_digest: Digest
    finished_at_ms: EpochMs


MAX_ENQUEUES = 100  # entries a manifest keeps (the latest: the run's client set is in the last one)


class RunManifest(BaseModel):
    """What a run is (topic: runs, keyed by run id; the last record per run id wins).

    ``total`` is the number of distinct valid clients of the run (the union of every confirmed enqueue's
    clients), known once ``status`` is ``enqueued``; ``enqueues`` lists the confirmed enqueues, the last
    one holding the run's client set (size and digest) that ``runs status`` checks completion against
    (absent in manifests written before it: completion is then by count);
    ``requested_at_ms`` is the run's request time, the same in every request of the run (a re-run of
    the same enqueue reuses it, so requests stay byte-identical).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    v: Literal[1] = 1
    run_id: RunId
    source: str
    status: RunStatus
    total: Annotated[int, Field(ge=0)] | None = None
    requested_at_ms: EpochMs
    created_at_ms: EpochMs
    finished_at_ms: EpochMs | None = None
    deadline_ms: EpochMs | None = None
    enqueues: tuple[EnqueueTotal, ...] = ()

    @property
    def client_set(self) -> EnqueueTotal | None:
        """The last confirmed enqueue (the run's client set), if the manifest records one."""
        return self.enqueues[-1] if self.enqueues else None
