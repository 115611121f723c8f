"""``apply_wave`` (the state step's columnar path) answers exactly what ``apply_run`` answers client by
client, over random histories: first sights, resets, gaps, replays, late runs, missing values, a plug-in;
and the compact history encoding round-trips (with its writer partition) and still reads version 1."""

from __future__ import annotations

import random

import orjson
import pytest

from processors.processor.state.history import (
    History,
    Observation,
    StateSpec,
    apply_run,
    apply_wave,
    decode_history,
    encode_history,
    load_runs,
    owner_of,
)

MINUTE = 60_000


def smoothed(current: Observation, previous: Observation | None) -> dict[str, float]:
    if previous is None or "a" not in current.values:
        return {"a_smooth": current.values.get("a", 0.0)}
    return {"a_smooth": (current.values["a"] + previous.computed.get("a_smooth", 0.0)) / 2}


SPECS = [
    StateSpec({"a": ("delta", "increase", "rate"), "b": ("delta",)}, keep_runs=3),
    StateSpec({"a": ("rate",)}, keep=("c",), keep_runs=2),
    StateSpec({"a": ("increase",)}, keep_runs=4, plugin=smoothed),
]


def random_history(rng: random.Random, spec: StateSpec) -> History:
    history: History = ()
    slot = rng.randint(0, 3)
    for _ in range(rng.randint(0, spec.keep_runs)):
        step = apply_run(history, f"s-{slot}", slot * MINUTE, slot, random_values(rng), spec)
        history = step.history if step.history is not None else history
        slot += rng.randint(1, 2)
    return history


def random_values(rng: random.Random) -> dict[str, float | None]:
    return {m: None if rng.random() < 0.15 else float(rng.randint(0, 50)) for m in ("a", "b", "c")}


@pytest.mark.parametrize("seed", range(40))
def test_a_wave_answers_what_each_client_alone_answers(seed: int) -> None:
    rng = random.Random(seed)
    spec = SPECS[seed % len(SPECS)]
    n = 60
    histories = [random_history(rng, spec) for _ in range(n)]
    slots = [rng.randint(0, 9) for _ in range(n)]
    seqs = [0 if rng.random() < 0.1 else s for s in slots]
    values = [random_values(rng) for _ in range(n)]
    stored = [encode_history(h) if h or rng.random() < 0.5 else None for h in histories]
    owners = [rng.randint(0, 7) for _ in range(n)]
    wave = apply_wave(
        spec,
        stored,
        [f"s-{s}" for s in slots],
        [s * MINUTE for s in slots],
        seqs,
        {m: [v[m] for v in values] for m in ("a", "b", "c")},
        owners,
    )
    assert wave.hits == sum(1 for h in histories if h) and wave.undecodable == []
    for i in range(n):
        alone = apply_run(histories[i], f"s-{slots[i]}", slots[i] * MINUTE, seqs[i], values[i], spec)
        got = {name: column[i] for name, column in wave.outputs.items() if column[i] is not None}
        assert got == {k: v for k, v in alone.outputs.items() if v is not None}, i
        new = wave.stored[i]
        if alone.history is None:
            assert new is None or decode_history(new[0]) == histories[i], i
        else:
            assert new is not None and decode_history(new[0]) == alone.history, i
            assert (new[1], new[2]) == (alone.history[-1].seq, alone.history[-1].at_ms)
        if new is not None:
            assert owner_of(new[0], default=-1) == owners[i], i


def test_an_undecodable_history_is_a_first_sight() -> None:
    spec = SPECS[0]
    wave = apply_wave(
        spec,
        [b"{not json", b'[2, ["a"], [[1, 1, "r", [1.0, 2.0], {}]]]'],
        ["s-1"] * 2,
        [MINUTE] * 2,
        [1, 1],
        {"a": [1.0, 1.0]},
    )
    assert wave.undecodable == [0, 1] and wave.hits == 0
    assert wave.outputs["a_reason"] == [1.0, 1.0]


def test_the_compact_encoding_round_trips_and_reads_version_1() -> None:
    history = (
        Observation("s-1", MINUTE, 1, {"a": 1.5, "b": 2.0}),
        Observation("s-2", 2 * MINUTE, 2, {"a": 3.0}, {"a_smooth": 2.0}),
    )
    value = encode_history(history)
    assert decode_history(value) == history
    assert orjson.loads(value)[1] == ["a", "b"]  # the names once
    v1 = orjson.dumps({"v": 1, "runs": [[o.at_ms, o.seq, o.run_id, o.values, o.computed] for o in history]})
    assert decode_history(v1) == history
    with pytest.raises(ValueError):
        load_runs(
            orjson.dumps([2, ["a"], [[2, 2, "s-2", [1.0], {}], [1, 1, "s-1", [1.0], {}]]])
        )  # out of order
    with pytest.raises(TypeError):
        load_runs(orjson.dumps([2, ["a"], [[1, 1, "s-1", ["x"], {}]]]))


def test_a_history_keeps_its_owner_in_either_version() -> None:
    history = (Observation("s-1", MINUTE, 1, {"a": 1.5}), Observation("s-2", 2 * MINUTE, 2, {"a": 3.0}))
    value = encode_history(history, 5)
    assert orjson.loads(value)[3] == 5 and decode_history(value) == history
    assert owner_of(value, default=1) == 5
    assert owner_of(encode_history(history), default=1) == 1  # written without an owner
    assert owner_of(encode_history((), 0), default=1) == 0
    v1 = orjson.dumps(
        {"v": 1, "runs": [[o.at_ms, o.seq, o.run_id, o.values, o.computed] for o in history], "p": 3}
    )
    assert owner_of(v1, default=1) == 3 and decode_history(v1) == history
    assert owner_of(orjson.dumps({"v": 1, "runs": []}), default=1) == 1
    for owner in ("5", True, None, 1.0):
        with pytest.raises(TypeError):
            load_runs(orjson.dumps([2, ["a"], [[1, 1, "s-1", [1.0], {}]], owner]))
        assert owner_of(orjson.dumps([2, ["a"], [], owner]), default=1) == 1
    with pytest.raises(ValueError):
        load_runs(orjson.dumps([2, ["a"], [], 5, "more"]))


def test_a_wave_writes_each_client_with_its_writer() -> None:
    spec = SPECS[0]
    before = (Observation("s-1", MINUTE, 1, {"a": 1.0, "b": 1.0}),)
    replayed = (Observation("s-2", 2 * MINUTE, 2, {"a": 2.0, "b": 2.0}),)
    stored = [
        None,  # first sight
        encode_history(before, 1),  # a newer run, written before by another partition
        encode_history(replayed, 6),  # a replay by its own writer: nothing to write
        encode_history(replayed, 2),  # the same replay where the client moved: the writer changes
        encode_history(before),  # written without an owner
    ]
    wave = apply_wave(
        spec,
        stored,
        ["s-2"] * 5,
        [2 * MINUTE] * 5,
        [2] * 5,
        {"a": [2.0] * 5, "b": [2.0] * 5},
        [4, 5, 6, 7, 0],
    )
    assert wave.hits == 4 and wave.undecodable == []
    assert wave.stored[2] is None
    written = {i: new[0] for i, new in enumerate(wave.stored) if new is not None}
    assert {i: owner_of(value, default=-1) for i, value in written.items()} == {0: 4, 1: 5, 3: 7, 4: 0}
    assert decode_history(written[1]) == (*before, *replayed) and decode_history(written[3]) == replayed
    assert wave.outputs["a_delta"] == [None, 1.0, None, None, 1.0]  # a replay of its only run: none before
