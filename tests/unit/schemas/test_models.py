"""The message models: id rules, bounds, strictness and defaults."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from schemas.models import (
    MAX_ID_LENGTH,
    ClientResult,
    CollectionRequest,
    RunManifest,
    check_client_id,
    check_run_id,
    is_valid_client_id,
    is_valid_run_id,
)

MAX_MS = 253402300799999


def request(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"run_id": "run-1", "client_id": "c1", "requested_at_ms": 1_700_000_000_000}
    base.update(fields)
    return base


def result(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "run_id": "run-1",
        "client_id": "c1",
        "requested_at_ms": 1_700_000_000_000,
        "collected_at_ms": 1_700_000_000_500,
        "status": "ok",
        "metrics": {"m": 1.5},
        "computed": {"count": 1.0},
    }
    base.update(fields)
    return base


@pytest.mark.parametrize(
    "client_id",
    ["a", "x" * MAX_ID_LENGTH, "host name with spaces", 'quote"and\\backslash', "ünïcödé-客户", "🙂"],
)
def test_valid_client_ids(client_id: str) -> None:
    assert is_valid_client_id(client_id)
    assert check_client_id(client_id) == client_id


@pytest.mark.parametrize(
    "client_id",
    ["", "x" * (MAX_ID_LENGTH + 1), "tab\there", "new\nline", "nul\x00", "del\x7f", "nbsp\u00a0", "\u2028"],
)
def test_invalid_client_ids(client_id: str) -> None:
    assert not is_valid_client_id(client_id)
    with pytest.raises(ValueError, match="client id"):
        check_client_id(client_id)


@pytest.mark.parametrize("run_id", ["a", "0", "run-1", "r.2_x:y@z+w-v", "A" * 128, "2024-01-01T00:00"])
def test_valid_run_ids(run_id: str) -> None:
    assert is_valid_run_id(run_id)
    assert check_run_id(run_id) == run_id


@pytest.mark.parametrize(
    "run_id", ["", "-run", "+run", ".run", "_run", "a b", "a/b", "a\n", "é", "A" * 129, "run#1", "run\x00"]
)
def test_invalid_run_ids(run_id: str) -> None:
    assert not is_valid_run_id(run_id)
    with pytest.raises(ValueError, match="run id"):
        check_run_id(run_id)


def test_request_defaults() -> None:
    req = CollectionRequest.model_validate(request())
    assert req.v == 1
    assert req.attempt == 0
    assert req.deadline_ms is None
    assert list(CollectionRequest.model_fields) == [
        "v",
        "run_id",
        "client_id",
        "requested_at_ms",
        "attempt",
        "deadline_ms",
    ]


def test_result_defaults() -> None:
    res = ClientResult.model_validate(result())
    assert res.missing == []
    assert res.attempt == 0
    assert res.v == 1


@pytest.mark.parametrize(
    "fields",
    [
        {"v": 2},
        {"requested_at_ms": -1},
        {"requested_at_ms": MAX_MS + 1},
        {"requested_at_ms": "1700000000000"},
        {"requested_at_ms": 1.0},
        {"attempt": -1},
        {"attempt": 1001},
        {"attempt": True},
        {"deadline_ms": -5},
        {"client_id": "a" * 129},
        {"client_id": 123},
        {"run_id": "-x"},
        {"unknown": 1},
    ],
)
def test_request_rejects(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CollectionRequest.model_validate(request(**fields))


@pytest.mark.parametrize(
    "fields",
    [{"requested_at_ms": 0}, {"requested_at_ms": MAX_MS}, {"attempt": 1000}, {"deadline_ms": MAX_MS}],
)
def test_request_accepts_bounds(fields: dict[str, object]) -> None:
    req = CollectionRequest.model_validate(request(**fields))
    for name, value in fields.items():
        assert getattr(req, name) == value


@pytest.mark.parametrize(
    "fields",
    [
        {"status": "OK"},
        {"status": "failed"},
        {"metrics": {"m": "1"}},
        {"metrics": {"m": None}},
        {"metrics": {"m": True}},
        {"computed": [1.0]},
        {"missing": "m"},
        {"missing": [1]},
        {"collected_at_ms": -1},
    ],
)
def test_result_rejects(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ClientResult.model_validate(result(**fields))


def test_result_requires_fields() -> None:
    for name in (
        "run_id",
        "client_id",
        "requested_at_ms",
        "collected_at_ms",
        "status",
        "metrics",
        "computed",
    ):
        fields = result()
        del fields[name]
        with pytest.raises(ValidationError):
            ClientResult.model_validate(fields)


def test_result_accepts_int_metric_values_as_float() -> None:
    res = ClientResult.model_validate(result(metrics={"m": 3}, status="partial", missing=["n"]))
    assert res.metrics == {"m": 3.0}
    assert type(res.metrics["m"]) is float
    assert res.status == "partial"
    assert res.missing == ["n"]


def test_models_are_frozen() -> None:
    req = CollectionRequest.model_validate(request())
    with pytest.raises(ValidationError):
        req.attempt = 3  # type: ignore[misc]


def test_run_manifest() -> None:
    manifest = RunManifest(
        run_id="run-1", source="range 0-9", status="enqueued", total=10, requested_at_ms=1, created_at_ms=2
    )
    assert manifest.total == 10
    with pytest.raises(ValidationError):
        RunManifest(
            run_id="run-1",
            source="s",
            status="done",
            requested_at_ms=1,
            created_at_ms=2,  # type: ignore[arg-type]
        )
    with pytest.raises(ValidationError):
        RunManifest(
            run_id="run-1", source="s", status="enqueued", total=-1, requested_at_ms=1, created_at_ms=2
        )
