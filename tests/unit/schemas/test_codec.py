"""The orjson codec: round trips, the exact bytes of the fast encoder, error reasons, batch decoding,
and the fast structural path agreeing with the pydantic models."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest
from pydantic import BaseModel, ValidationError

from schemas.codec import (
    CodecError,
    decode,
    decode_requests,
    encode,
    encode_record,
    parse_object,
    request_encoder,
    request_record,
    validate,
)
from schemas.fast_checks import is_plain_request, is_plain_result, plain_requests
from schemas.models import ClientResult, CollectionRequest
from tests.oracles import decode_results

NOW = 1_700_000_000_000
TRICKY_IDS = [
    "plain",
    'with "quotes"',
    "back\\slash\\",
    "\\u0041 literal escape",
    "ünïcödé 客户 🙂",
    "'single' and \"double\"",
    "</script>",
    "x" * 128,
    "a\x00b",  # invalid as a client id, but the encoder must still agree byte for byte
    "\u2028\u2029",
]


def req_dict(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "run_id": "run-1",
        "client_id": "c1",
        "requested_at_ms": NOW,
        "attempt": 0,
        "deadline_ms": None,
    }
    base.update(fields)
    return base


def res_dict(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "v": 1,
        "run_id": "run-1",
        "client_id": "c1",
        "requested_at_ms": NOW,
        "attempt": 0,
        "collected_at_ms": NOW + 5,
        "status": "ok",
        "metrics": {"m": 1.5, "n": 2.0},
        "missing": [],
        "computed": {"count": 2.0},
    }
    base.update(fields)
    return base


def dumps(d: dict[str, Any]) -> bytes:
    return orjson.dumps(d)


# --- round trips ------------------------------------------------------------------------------------


@pytest.mark.parametrize("client_id", [c for c in TRICKY_IDS if c.isprintable()])
def test_request_round_trip(client_id: str) -> None:
    req = CollectionRequest(
        run_id="run:1@x", client_id=client_id, requested_at_ms=NOW, attempt=3, deadline_ms=NOW + 60_000
    )
    data = encode(req)
    assert decode(CollectionRequest, data) == req
    good, bad = decode_requests([data])
    assert bad == []
    assert good == [req.model_dump()]


def test_result_round_trip() -> None:
    res = ClientResult(
        run_id="run-1",
        client_id='c "1" \\ ü',
        requested_at_ms=NOW,
        attempt=2,
        collected_at_ms=NOW + 10,
        status="partial",
        metrics={"a": 0.1, "b": 999.99},
        missing=["c"],
        computed={"count": 2.0, "mean": 500.045},
    )
    data = encode(res)
    assert decode(ClientResult, data) == res
    good, bad = decode_results([data])
    assert bad == []
    assert good == [res.model_dump()]


def test_request_record_is_model_dump() -> None:
    record = request_record("run-1", "c1", NOW, attempt=2, deadline_ms=NOW + 1)
    model = CollectionRequest(
        run_id="run-1", client_id="c1", requested_at_ms=NOW, attempt=2, deadline_ms=NOW + 1
    )
    assert record == model.model_dump()
    assert list(record) == list(CollectionRequest.model_fields)
    assert encode_record(record) == encode(model)


@pytest.mark.parametrize("client_id", TRICKY_IDS)
@pytest.mark.parametrize(("run_id", "attempt"), [("run-1", 0), ("r.2_x:y@z+w", 7), ("R" * 128, 1000)])
def test_request_encoder_matches_encode_record(client_id: str, run_id: str, attempt: int) -> None:
    encode_one = request_encoder(run_id, NOW, attempt)
    expected = encode_record(request_record(run_id, client_id, NOW, attempt))
    assert encode_one(client_id) == expected
    assert orjson.loads(encode_one(client_id))["client_id"] == client_id


def test_request_encoder_is_reusable_and_decodes() -> None:
    encode_one = request_encoder("run-1", NOW, 4)
    values = [encode_one(c) for c in ("a", 'b"', "c\\")]
    good, bad = decode_requests(values)
    assert bad == []
    assert [g["client_id"] for g in good] == ["a", 'b"', "c\\"]
    assert all(g["attempt"] == 4 and g["requested_at_ms"] == NOW for g in good)


# --- error reasons ----------------------------------------------------------------------------------


def test_reasons_are_declared() -> None:
    assert set(CodecError.REASONS) == {
        "empty",
        "invalid_utf8",
        "not_json",
        "not_object",
        "unknown_version",
        "wrong_schema",
    }


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b"\xff\xfe", "invalid_utf8"),
        (b'{"v": 1, "client_id": "\xc3\x28"}', "invalid_utf8"),
        (b"not json", "not_json"),
        (b"   ", "not_json"),
        (b'{"v": 1', "not_json"),
        (b"{'v': 1}", "not_json"),
        (b"[1, 2]", "not_object"),
        (b"[]", "not_object"),
        (b'"a string"', "not_object"),
        (b"42", "not_object"),
        (b"null", "not_object"),
    ],
)
def test_parse_errors(data: bytes | None, reason: str) -> None:
    with pytest.raises(CodecError) as info:
        parse_object(data)
    assert info.value.reason == reason
    assert info.value.detail
    assert str(info.value).startswith(f"{reason}: ")
    for decoder in (decode_requests, decode_results):
        good, bad = decoder([data])
        assert good == []
        assert [(i, e.reason) for i, e in bad] == [(0, reason)]


def test_codec_error_is_value_error() -> None:
    assert issubclass(CodecError, ValueError)


@pytest.mark.parametrize("v", [2, 0, "1", None, False, [1]])
def test_unknown_version(v: Any) -> None:
    data = dumps(req_dict(v=v))
    with pytest.raises(CodecError) as info:
        decode(CollectionRequest, data)
    assert info.value.reason == "unknown_version"
    good, bad = decode_requests([data])
    assert good == [] and [e.reason for _, e in bad] == ["unknown_version"]


def test_missing_version_is_unknown_version() -> None:
    for model, fields, decoder in (
        (CollectionRequest, req_dict(), decode_requests),
        (ClientResult, res_dict(), decode_results),
    ):
        del fields["v"]
        data = dumps(fields)
        with pytest.raises(CodecError) as info:
            decode(model, data)
        assert info.value.reason == "unknown_version"
        assert decoder([data])[1][0][1].reason == "unknown_version"


REQUEST_SCHEMA_ERRORS = [
    ({"client_id": None}, "client_id"),
    ({"run_id": None}, "run_id"),
    ({"requested_at_ms": "123"}, "requested_at_ms"),
    ({"requested_at_ms": 1.5}, "requested_at_ms"),
    ({"requested_at_ms": -1}, "requested_at_ms"),
    ({"requested_at_ms": 253402300799999 + 1}, "requested_at_ms"),
    ({"deadline_ms": -1}, "deadline_ms"),
    ({"attempt": -1}, "attempt"),
    ({"attempt": 1001}, "attempt"),
    ({"attempt": True}, "attempt"),
    ({"client_id": 7}, "client_id"),
    ({"client_id": ""}, "client_id"),
    ({"client_id": "x" * 129}, "client_id"),
    ({"client_id": "bad\nid"}, "client_id"),
    ({"client_id": "bad\x00id"}, "client_id"),
    ({"client_id": "bad\x1bid"}, "client_id"),
    ({"run_id": "-starts-with-sign"}, "run_id"),
    ({"run_id": "has space"}, "run_id"),
    ({"run_id": "R" * 129}, "run_id"),
    ({"run_id": 12}, "run_id"),
    ({"extra": 1}, "extra"),
]


@pytest.mark.parametrize(("fields", "where"), REQUEST_SCHEMA_ERRORS)
def test_request_wrong_schema(fields: dict[str, Any], where: str) -> None:
    data = dumps(req_dict(**fields))
    with pytest.raises(CodecError) as info:
        decode(CollectionRequest, data)
    assert info.value.reason == "wrong_schema"
    assert f"CollectionRequest.{where}" in info.value.detail
    good, bad = decode_requests([data])
    assert good == []
    assert [(i, e.reason) for i, e in bad] == [(0, "wrong_schema")]


@pytest.mark.parametrize("name", ["run_id", "client_id", "requested_at_ms"])
def test_request_missing_required_field(name: str) -> None:
    fields = req_dict()
    del fields[name]
    with pytest.raises(CodecError) as info:
        decode(CollectionRequest, dumps(fields))
    assert info.value.reason == "wrong_schema"
    assert name in info.value.detail


RESULT_SCHEMA_ERRORS = [
    {"status": "OK"},
    {"status": None},
    {"metrics": {"m": "1"}},
    {"metrics": {"m": None}},
    {"metrics": {"m": True}},
    {"metrics": [1.0]},
    {"computed": None},
    {"missing": "m"},
    {"missing": [1]},
    {"missing": None},
    {"collected_at_ms": -1},
    {"collected_at_ms": 1.0},
    {"client_id": "x" * 129},
    {"client_id": "a\tb"},
    {"run_id": "a b"},
    {"attempt": 1001},
    {"other": 0},
]


@pytest.mark.parametrize("fields", RESULT_SCHEMA_ERRORS)
def test_result_wrong_schema(fields: dict[str, Any]) -> None:
    data = dumps(res_dict(**fields))
    with pytest.raises(CodecError) as info:
        decode(ClientResult, data)
    assert info.value.reason == "wrong_schema"
    assert info.value.detail.startswith("ClientResult.")
    good, bad = decode_results([data])
    assert good == []
    assert [(i, e.reason) for i, e in bad] == [(0, "wrong_schema")]


def test_validate_takes_parsed_objects() -> None:
    assert validate(CollectionRequest, req_dict()) == CollectionRequest(
        run_id="run-1", client_id="c1", requested_at_ms=NOW
    )
    with pytest.raises(CodecError) as info:
        validate(CollectionRequest, {"v": 1})
    assert info.value.reason == "wrong_schema"


# --- batches ----------------------------------------------------------------------------------------


def test_decode_requests_keeps_order_and_reports_bad_by_index() -> None:
    values: list[bytes | None] = [
        dumps(req_dict(client_id="a")),
        b"",
        dumps(req_dict(client_id="b", attempt=2)),
        b"[1]",
        dumps(req_dict(client_id="c", v=2)),
        b"\x80",
        dumps(req_dict(client_id="d", extra=True)),
        dumps(req_dict(client_id="e", run_id="other-run")),
        None,
        b"{",
    ]
    good, bad = decode_requests(values)
    assert [g["client_id"] for g in good] == ["a", "b", "e"]
    assert good[1]["attempt"] == 2
    assert good[2]["run_id"] == "other-run"
    assert [(i, e.reason) for i, e in bad] == [
        (1, "empty"),
        (3, "not_object"),
        (4, "unknown_version"),
        (5, "invalid_utf8"),
        (6, "wrong_schema"),
        (8, "empty"),
        (9, "not_json"),
    ]
    assert all(isinstance(e, CodecError) for _, e in bad)


def test_decode_results_keeps_order_and_reports_bad_by_index() -> None:
    values: list[bytes | None] = [
        b"null",
        dumps(res_dict(client_id="a")),
        dumps(res_dict(client_id="b", status="nope")),
        dumps(res_dict(client_id="c", status="partial", missing=["x"])),
        dumps(res_dict(client_id="d", run_id="-bad")),
    ]
    good, bad = decode_results(values)
    assert [g["client_id"] for g in good] == ["a", "c"]
    assert good[1]["missing"] == ["x"]
    assert [(i, e.reason) for i, e in bad] == [(0, "not_object"), (2, "wrong_schema"), (4, "wrong_schema")]


def test_decode_empty_batch() -> None:
    assert decode_requests([]) == ([], [])
    assert decode_results([]) == ([], [])


def test_optional_fields_may_be_absent() -> None:
    good, bad = decode_requests([dumps({"v": 1, "run_id": "r", "client_id": "c", "requested_at_ms": 1})])
    assert bad == []
    assert len(good) == 1
    assert good[0]["client_id"] == "c"
    assert CollectionRequest.model_validate(good[0]).attempt == 0


def test_run_id_cache_does_not_leak_invalid_ids() -> None:
    good, bad = decode_requests(
        [dumps(req_dict(run_id="ok-run")), dumps(req_dict(run_id=" bad")), dumps(req_dict(run_id="ok-run"))]
    )
    assert len(good) == 2
    assert [(i, e.reason) for i, e in bad] == [(1, "wrong_schema")]


def test_fast_checks_accept_only_valid_records() -> None:
    run_ids: set[str] = set()
    assert is_plain_request(req_dict(), run_ids)
    assert "run-1" in run_ids
    assert not is_plain_request(req_dict(client_id="x" * 129), set())
    assert not is_plain_request(req_dict(extra=1), set())
    assert not is_plain_request(req_dict(run_id="-x"), set())
    assert is_plain_result(res_dict(), set())
    assert not is_plain_result(res_dict(metrics={"m": True}), set())
    assert not is_plain_result(res_dict(missing=[1]), set())


# --- unhashable values: the fast path crashes instead of reporting wrong_schema ---------------------


@pytest.mark.parametrize("run_id", [["run-1"], {"a": 1}])
def test_request_unhashable_run_id_is_wrong_schema(run_id: Any) -> None:
    good, bad = decode_requests([dumps(req_dict(run_id=run_id))])
    assert good == []
    assert [(i, e.reason) for i, e in bad] == [(0, "wrong_schema")]


@pytest.mark.parametrize("fields", [{"status": ["ok"]}, {"status": {"ok": 1}}, {"run_id": ["run-1"]}])
def test_result_unhashable_field_is_wrong_schema(fields: dict[str, Any]) -> None:
    good, bad = decode_results([dumps(res_dict(**fields))])
    assert good == []
    assert [(i, e.reason) for i, e in bad] == [(0, "wrong_schema")]


# --- property: the fast path agrees with the models -------------------------------------------------

_SCALARS: list[Any] = [
    None,
    True,
    False,
    0,
    1,
    -1,
    2,
    999,
    1000,
    1001,
    NOW,
    253402300799999,
    253402300799999 + 1,
    2**63,
    2**64 - 1,
    0.0,
    1.0,
    1.5,
    -0.0,
    -2.5,
    1e300,
    "",
    "1",
    "x",
    "ok",
    "partial",
    "OK",
    "run-1",
    "-run",
    "a b",
    "x" * 128,
    "x" * 129,
    "R" * 128,
    "R" * 129,
    "tab\t",
    "nul\x00",
    "é",
    "客户",
    'q"\\',
    "\x7f",
]
_CONTAINERS: list[Any] = [
    [],
    ["m"],
    ["m", 1],
    [1.0],
    [None],
    {},
    {"m": 1.0},
    {"m": 1},
    {"m": True},
    {"m": None},
    {"m": "1"},
    {"m": 1.0, "n": -3},
    {"m": [1.0]},
    {"": 0.5},
]
# run_id and status only get hashable values here: unhashable ones crash the fast path (the xfail
# tests above), which would mask every other disagreement.
_HASHABLE_ONLY = {"run_id", "status"}
_EXTRA_KEYS = ["extra", "V", "clientId", "metric", ""]


def _mutate(rng: random.Random, base: dict[str, Any]) -> dict[str, Any]:
    d = dict(base)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        if op < 0.12 and d:
            del d[rng.choice(list(d))]
        elif op < 0.18:
            d[rng.choice(_EXTRA_KEYS)] = rng.choice(_SCALARS)
        elif op < 0.25:
            pass  # keep some records valid (or only invalid through an earlier mutation)
        else:
            key = rng.choice([*base, "v"])
            pool = _SCALARS if key in _HASHABLE_ONLY else _SCALARS + _CONTAINERS
            d[key] = rng.choice(pool)
    return d


def _model_accepts(model: type[BaseModel], data: bytes) -> bool:
    try:
        model.model_validate_json(data)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize(
    ("model", "base", "decoder", "fast_check"),
    [
        (CollectionRequest, req_dict(), decode_requests, is_plain_request),
        (ClientResult, res_dict(), decode_results, is_plain_result),
    ],
    ids=["request", "result"],
)
def test_fast_path_agrees_with_model(
    model: type[BaseModel], base: dict[str, Any], decoder: Any, fast_check: Any
) -> None:
    rng = random.Random(20240611)
    dicts = [_mutate(rng, base) for _ in range(3000)]
    values = [orjson.dumps(d) for d in dicts]
    # Every record on its own (so the run-id cache starts empty) and in one batch (shared cache).
    expected = [("v" in d) and _model_accepts(model, data) for d, data in zip(dicts, values, strict=True)]
    assert 200 < sum(expected) < len(expected) - 200  # the generator exercises both outcomes
    for d, data, ok in zip(dicts, values, expected, strict=True):
        good, bad = decoder([data])
        assert bool(good) == ok, d
        assert bool(bad) != ok, d
        if fast_check(dict(d), set()):
            assert ok, d  # the fast path accepts only what the model accepts
        if ok:
            assert model.model_validate(good[0]) == model.model_validate_json(data), d
    if decoder is decode_requests:  # the column-by-column check of whole batches, one and two at a time
        for i, d in enumerate(dicts):
            pair = [dict(d), dict(dicts[(i * 7) % len(dicts)])]
            if plain_requests(pair[:1], set()):
                assert expected[i], d
            if plain_requests(pair, set()):
                assert expected[i] and expected[(i * 7) % len(dicts)], pair
    good, bad = decoder(values)
    assert len(good) == sum(expected)
    assert [i for i, _ in bad] == [i for i, ok in enumerate(expected) if not ok]
    assert all(e.reason in ("unknown_version", "wrong_schema") for _, e in bad)
