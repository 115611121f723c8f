"""Per-client state across runs, as pure functions: what a client's history is, how a run moves it on,
and what the built-in stateful computes (``delta``, ``increase``, ``rate``) answer.

A client's state under one schedule is its ``history``: the last ``keep_runs`` runs it was seen in
(oldest first), each an ``Observation`` (run id, the run's slot time, the run's number in its
partition's clock, the kept metric values and the run's stateful outputs). A run is computed against
the newest observation *older* than it, never against itself, so handling a run twice (a replay, a
crash before the commit, a rebalance) gives the same answer and the same history: state and result are
a pure function of (history, this run's values).

A partition's ``Clock`` numbers the runs of a schedule in the order the partition first saw them; a
client whose previous observation is more than one number behind missed a run (a gap).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

FIRST_SIGHT = 1
RESET = 2
GAP = 4
LATE = 8
UNSCHEDULED = 16
REASONS = {FIRST_SIGHT: "first_sight", RESET: "reset", GAP: "gap", LATE: "late", UNSCHEDULED: "unscheduled"}
"""Bits of ``<metric>_reason`` (0: an ordinary run against the run before it)."""

CLOCK_SLOTS = 32
"""Slots a partition's clock remembers: a replay of one of them keeps its run number."""


def gap_bit(seq: int, previous_seq: int) -> int:
    """``GAP`` when the client missed at least one run between its previous run and this one (a run
    number of 0 is unknown: no gap)."""
    return GAP if seq and previous_seq and seq - previous_seq > 1 else 0


def reason_code(value: float, before: float | None, base: int = 0) -> int:
    """A stateful metric's reason bits for ``value`` against the run before's ``before`` (None: the
    metric had no value then), on top of the run's own ``base`` bits (late, gap)."""
    return base | (FIRST_SIGHT if before is None else RESET if value < before else 0)


def reason_names(code: float) -> list[str]:
    """``6.0`` -> ``["reset", "gap"]``; ``0`` -> ``["ok"]``."""
    bits = int(code)
    return [name for bit, name in REASONS.items() if bits & bit] or ["ok"]


@dataclass(frozen=True)
class Observation:
    """One run of one client, as kept in its history (and as a stateful plug-in sees it)."""

    run_id: str
    at_ms: int  # the run's slot time (from its run id): the same for every attempt and replay
    seq: int  # the run's number in its partition's clock of the schedule; 0 when unknown (a late run)
    values: dict[str, float]
    computed: dict[str, float] = field(default_factory=dict)  # this run's stateful outputs

    @classmethod
    def from_json(cls, item: list[Any]) -> Observation:
        at_ms, seq, run_id, values, computed = item
        return cls(str(run_id), int(at_ms), int(seq), dict(values), dict(computed))


History = tuple[Observation, ...]
StatefulFn = Callable[[Observation, Observation | None], dict[str, float]]
"""A stateful plug-in: (this run, the previous observation or None) -> outputs (kept for the next run)."""


HISTORY_VERSION = 2
RawRun = list[Any]
"""A kept run as stored: ``[at_ms, seq, run_id, values, computed]``, ``values`` aligned with the
history's metric names (``None``: not fetched in that run)."""


def encode_history(history: History, owner: int | None = None) -> bytes:
    """``[2, names, runs, owner]`` (JSON): the metric names once, each run's values as a list aligned
    with them (``RawRun``), and ``owner``, the request partition that wrote it (``owner_of``; left out
    when None). Version 1 (``{"v": 1, "runs": [...], "p": owner}``, names in every run) still decodes."""
    names = list(dict.fromkeys(name for obs in history for name in obs.values))
    runs = [[o.at_ms, o.seq, o.run_id, [o.values.get(n) for n in names], o.computed] for o in history]
    return orjson.dumps(_compact(names, runs, owner))


def _compact(names: list[str], runs: list[RawRun], owner: int | None) -> list[Any]:
    return [HISTORY_VERSION, names, runs] if owner is None else [HISTORY_VERSION, names, runs, owner]


def owner_of(value: bytes, default: int) -> int:
    """The request partition that wrote a history, either version (``default``: one written before
    owners were kept). ``ValueError`` when the value is not JSON."""
    data = orjson.loads(value)
    if type(data) is dict:
        owner = data.get("p")
    elif type(data) is list and len(data) == 4:
        owner = data[3]
    else:
        owner = None
    return owner if type(owner) is int else default


def _number(value: object) -> bool:
    return value is None or (type(value) in (int, float))


def load_runs(value: bytes) -> tuple[list[str], list[RawRun]]:
    """(metric names, runs) of a stored history, either version, checked (types, one value per name,
    runs in slot order): ``ValueError``, ``TypeError`` or ``KeyError`` when it is not a history."""
    data = orjson.loads(value)
    if type(data) is dict:  # version 1
        if data.get("v") != 1:
            raise ValueError("not a history")
        observations = [Observation.from_json(item) for item in data["runs"]]
        names = list(dict.fromkeys(name for obs in observations for name in obs.values))
        runs = [
            [o.at_ms, o.seq, o.run_id, [o.values.get(n) for n in names], o.computed] for o in observations
        ]
        return names, runs
    if type(data) is not list or len(data) not in (3, 4) or data[0] != HISTORY_VERSION:
        raise ValueError("not a history")
    if len(data) == 4 and type(data[3]) is not int:
        raise TypeError("not a history's owner")
    names, runs = data[1], data[2]
    if type(names) is not list or not all(type(name) is str for name in names) or type(runs) is not list:
        raise TypeError("not a history")
    after = None
    for run in runs:
        if type(run) is not list or len(run) != 5:
            raise TypeError("not a kept run")
        at_ms, seq, run_id, values, computed = run
        if (
            type(at_ms) is not int
            or type(seq) is not int
            or type(run_id) is not str
            or type(computed) is not dict
        ):
            raise TypeError("not a kept run")
        if after is not None and at_ms <= after:
            raise ValueError("kept runs out of order")  # a history only ever grows by newer runs
        after = at_ms
        if type(values) is not list or len(values) != len(names) or not all(map(_number, values)):
            raise TypeError("not a kept run's values")
        if not all(type(k) is str and _number(v) for k, v in computed.items()):
            raise TypeError("not a kept run's outputs")
    return names, runs


def observation_of(run: RawRun, names: Sequence[str]) -> Observation:
    at_ms, seq, run_id, values, computed = run
    return Observation(
        run_id,
        at_ms,
        seq,
        {n: float(v) for n, v in zip(names, values, strict=True) if v is not None},
        computed,
    )


def decode_history(value: bytes) -> History:
    names, runs = load_runs(value)
    return tuple(observation_of(run, names) for run in runs)


def aligned_runs(value: bytes, names: list[str]) -> list[RawRun]:
    """The runs of a stored history with their values aligned with ``names`` (the hot path: a history
    written under the same names is only parsed, not checked: the store holds checked rows only)."""
    data = orjson.loads(value)
    if type(data) is list and len(data) in (3, 4) and data[0] == HISTORY_VERSION and data[1] == names:
        runs: list[RawRun] = data[2]
        return runs
    stored, runs = load_runs(value)
    where = {name: i for i, name in enumerate(stored)}
    return [
        [at_ms, seq, run_id, [values[where[n]] if n in where else None for n in names], computed]
        for at_ms, seq, run_id, values, computed in runs
    ]


def newest_of(value: bytes) -> tuple[int, int]:
    """(run number, slot ms) of the newest run of a stored (checked) history; (0, 0) when it has none."""
    runs = load_runs(value)[1]
    return (runs[-1][1], runs[-1][0]) if runs else (0, 0)


@dataclass(frozen=True)
class Clock:
    """A partition's run numbers for one schedule: ``count`` runs seen, the latest slots with their number."""

    count: int = 0
    recent: tuple[tuple[int, int], ...] = ()  # (slot ms, seq), oldest first

    def seq_of(self, at_ms: int) -> int | None:
        for slot, seq in self.recent:
            if slot == at_ms:
                return seq
        return None

    def advance(self, at_ms: int) -> tuple[Clock, int, bool]:
        """(clock, the run's number, whether this slot is new). A slot older than every slot remembered
        and not among them gets number 0 (unknown) and leaves the clock as it is."""
        known = self.seq_of(at_ms)
        if known is not None:
            return self, known, False
        if self.recent and at_ms < self.recent[-1][0]:
            return self, 0, False
        seq = self.count + 1
        return Clock(seq, (*self.recent, (at_ms, seq))[-CLOCK_SLOTS:]), seq, True

    def to_bytes(self) -> bytes:
        return orjson.dumps({"v": 1, "clock": [self.count, [list(item) for item in self.recent]]})

    @classmethod
    def from_bytes(cls, value: bytes) -> Clock:
        count, recent = orjson.loads(value)["clock"]
        return cls(int(count), tuple((int(slot), int(seq)) for slot, seq in recent))


Plan = tuple[str, str, tuple[tuple[str, str], ...]]
"""(metric, its reason output, ((compute, output name), ...))."""


@dataclass(frozen=True)
class StateSpec:
    """What the state keeps and computes (from the processor config's ``state`` section)."""

    metrics: Mapping[str, tuple[str, ...]]  # metric -> built-in computes
    keep: tuple[str, ...] = ()  # further metrics kept for a plug-in
    keep_runs: int = 3
    plugin: StatefulFn | None = None

    kept: tuple[str, ...] = field(init=False, repr=False, compare=False)  # metric values an observation keeps
    plan: tuple[Plan, ...] = field(init=False, repr=False, compare=False)  # per stateful metric

    def __post_init__(self) -> None:
        plan = tuple(
            (metric, f"{metric}_reason", tuple((kind, f"{metric}_{kind}") for kind in computes))
            for metric, computes in self.metrics.items()
        )
        object.__setattr__(self, "plan", plan)
        object.__setattr__(self, "kept", tuple(dict.fromkeys([*self.metrics, *self.keep])))


@dataclass(frozen=True)
class Step:
    """What one run does to a client's state: its outputs, and the new history (None: unchanged)."""

    outputs: dict[str, float]
    history: History | None


def _previous(history: History, at_ms: int) -> tuple[Observation | None, int | None, bool]:
    """(the observation to compare with, the index of this run's own observation or None, late)."""
    for i, obs in enumerate(history):
        if obs.at_ms == at_ms:
            return (history[i - 1] if i > 0 else None), i, False
    if not history or at_ms > history[-1].at_ms:
        return (history[-1] if history else None), None, False
    older = [obs for obs in history if obs.at_ms < at_ms]
    return (older[-1] if older else None), None, True


def builtin_outputs(
    current: Observation, previous: Observation | None, spec: StateSpec, late: bool
) -> dict[str, float]:
    """``<metric>_<compute>`` and ``<metric>_reason`` for every stateful metric this run has a value of."""
    out: dict[str, float] = {}
    base = LATE if late else 0
    values = current.values
    if previous is None:
        first = float(base | FIRST_SIGHT)
        for metric, reason_name, _ in spec.plan:
            if metric in values:
                out[reason_name] = first
        return out
    before_values = previous.values
    base |= gap_bit(current.seq, previous.seq)
    seconds = (current.at_ms - previous.at_ms) / 1000
    for metric, reason_name, computes in spec.plan:
        value = values.get(metric)
        if value is None:
            continue  # named in the result's ``missing``
        before = before_values.get(metric)
        if before is not None:
            increase = value if value < before else value - before
            for kind, name in computes:
                if kind == "delta":
                    out[name] = value - before
                elif kind == "increase":
                    out[name] = increase
                elif seconds > 0:  # rate
                    out[name] = increase / seconds
        out[reason_name] = float(reason_code(value, before, base))
    return out


def apply_run(
    history: History, run_id: str, at_ms: int, seq: int, values: Mapping[str, float | None], spec: StateSpec
) -> Step:
    """The outputs of this run and the client's new history. Pure.

    - A run newer than every kept one is computed against the newest and appended (at most
      ``keep_runs`` kept).
    - A run already kept (handled before) is computed against the observation before it, as the
      first time; if it is the newest its observation is replaced by this one, otherwise nothing changes.
    - A run older than the newest and not kept (a late run) is computed against the newest older
      observation (``late`` bit set) and leaves the history as it is: results already computed for
      newer runs stay right.
    """
    kept = {m: float(v) for m in spec.kept if (v := values.get(m)) is not None}
    previous, own, late = _previous(history, at_ms)
    current = Observation(run_id, at_ms, seq, kept)
    outputs = builtin_outputs(current, previous, spec, late)
    plugin_out = spec.plugin(current, previous) if spec.plugin is not None else {}
    outputs.update(plugin_out)
    observation = Observation(run_id, at_ms, seq, kept, dict(plugin_out))
    if late:
        return Step(outputs, None)
    if own is None:
        return Step(outputs, (*history, observation)[-spec.keep_runs :])
    if own == len(history) - 1:
        new = (*history[:own], observation)
        return Step(outputs, None if new == history else new)
    return Step(outputs, None)


def unscheduled_outputs(values: Mapping[str, float | None], spec: StateSpec) -> dict[str, float]:
    """An ad-hoc run (its id names no schedule) reads and writes no state: only the reason is given."""
    return {f"{m}_reason": float(UNSCHEDULED) for m in spec.metrics if values.get(m) is not None}


def is_stale(obs: Observation, seq: int, at_ms: int, drop_after_runs: int, drop_after_ms: int) -> bool:
    """A client whose newest observation is more than ``drop_after_runs`` runs or ``drop_after_ms``
    behind the schedule's newest run (number ``seq``, slot ``at_ms``) is dropped from the state."""
    behind_runs = obs.seq > 0 and seq - obs.seq > drop_after_runs
    return behind_runs or at_ms - obs.at_ms > drop_after_ms


@dataclass
class Wave:
    """What ``apply_wave`` answers for a run of clients (``n`` of them, in order)."""

    outputs: dict[str, list[float | None]]  # output columns (a column only when some client has a value)
    stored: list[tuple[bytes, int, int] | None]  # per client: (new history, its newest seq, slot) or None
    hits: int  # clients with a history
    undecodable: list[int]  # clients whose stored history did not decode (counted as first sight)


def _raw_previous(runs: list[RawRun], at_ms: int) -> tuple[RawRun | None, int | None, bool]:
    """``_previous`` over stored runs."""
    for i, run in enumerate(runs):
        if run[0] == at_ms:
            return (runs[i - 1] if i > 0 else None), i, False
    if not runs or at_ms > runs[-1][0]:
        return (runs[-1] if runs else None), None, False
    older = [run for run in runs if run[0] < at_ms]
    return (older[-1] if older else None), None, True


def apply_wave(
    spec: StateSpec,
    stored: Sequence[bytes | None],
    run_ids: Sequence[str],
    at_ms: Sequence[int],
    seqs: Sequence[int],
    values: Mapping[str, Sequence[Any]],
    owners: Sequence[int] | None = None,
) -> Wave:
    """``apply_run`` for many clients at once, none of them twice: client ``i`` has the stored history
    ``stored[i]``, this run's id, slot and run number, and metric values ``values[metric][i]``; its new
    history is written by request partition ``owners[i]`` (``encode_history``'s owner). Pure.

    The same outputs and histories as ``apply_run`` client by client (tested against it), computed
    per metric over whole columns: the per-client work is finding the previous run and encoding the
    new history.
    """
    n = len(stored)
    names = list(spec.kept)
    width = len(names)
    kept_columns: list[list[float | None]] = [
        [None if v is None else float(v) for v in values[m]] if m in values else [None] * n for m in names
    ]
    rows: list[tuple[float | None, ...]] = list(zip(*kept_columns, strict=True)) if width else [()] * n
    previous: list[RawRun | None] = [None] * n
    bases = [0] * n
    seconds = [0.0] * n
    new: list[tuple[bytes, int, int] | None] = [None] * n
    plugin = spec.plugin
    plugin_outputs: list[dict[str, float]] = []
    hits = 0
    undecodable: list[int] = []
    keep_runs = spec.keep_runs
    dumps, loads = orjson.dumps, orjson.loads
    no_outputs: dict[str, float] = {}  # shared by every kept run without plug-in outputs (never changed)
    for i in range(n):
        value = stored[i]
        runs: list[RawRun] = []
        if value is not None:
            try:  # ``aligned_runs`` inlined for a history written under these names
                data = loads(value)
                if (
                    type(data) is list
                    and len(data) in (3, 4)
                    and data[0] == HISTORY_VERSION
                    and data[1] == names
                ):
                    runs = data[2]
                else:
                    runs = aligned_runs(value, names)
            except (ValueError, TypeError, KeyError, IndexError):
                undecodable.append(i)
        at, seq = at_ms[i], seqs[i]
        if runs:
            hits += 1
            newest = runs[-1]
            before: RawRun | None
            if at > newest[0]:  # the usual case: a run newer than every kept one
                before, own, late = newest, None, False
            else:
                before, own, late = _raw_previous(runs, at)
        else:
            before, own, late = None, None, False
        base = LATE if late else 0
        if before is not None:
            if seq and before[1] and seq - before[1] > 1:
                base |= GAP
            seconds[i] = (at - before[0]) / 1000
        previous[i] = before
        bases[i] = base
        computed = no_outputs
        if plugin is not None:
            current = Observation(
                run_ids[i], at, seq, {m: v for m, v in zip(names, rows[i], strict=True) if v is not None}
            )
            computed = dict(plugin(current, None if before is None else observation_of(before, names)))
            plugin_outputs.append(computed)
        if late:
            continue
        observation = [at, seq, run_ids[i], rows[i], computed]
        if own is None:
            kept = [*runs, observation][-keep_runs:]
        elif own == len(runs) - 1:
            kept = [*runs[:own], observation]
        else:
            continue
        owner = None if owners is None else owners[i]
        encoded = dumps(
            [HISTORY_VERSION, names, kept] if owner is None else [HISTORY_VERSION, names, kept, owner]
        )
        if encoded != value:
            # a copy: orjson's bytes keep a 4 KiB allocation each, and the store holds them in memory
            new[i] = (bytes(memoryview(encoded)), seq, at)
    outputs = _builtin_columns(spec, names, kept_columns, previous, bases, seconds)
    if plugin is not None:
        _merge_plugin(outputs, plugin_outputs)
    return Wave(outputs, new, hits, undecodable)


def _builtin_columns(
    spec: StateSpec,
    names: list[str],
    kept_columns: list[list[float | None]],
    previous: list[RawRun | None],
    bases: list[int],
    seconds: list[float],
) -> dict[str, list[float | None]]:
    """``builtin_outputs`` as columns: per stateful metric its computes, then its reason."""
    n = len(bases)
    out: dict[str, list[float | None]] = {}
    where = {name: j for j, name in enumerate(names)}
    nothing = (None,) * len(names)
    # the previous runs' values as columns, one pass for every metric
    before_columns: list[tuple[float | None, ...]] = list(
        zip(*[nothing if p is None else p[3] for p in previous], strict=True)
    )
    for metric, reason_name, computes in spec.plan:
        j = where[metric]
        now = kept_columns[j]
        before: tuple[float | None, ...] = before_columns[j] if n else ()
        complete = None not in now and None not in before  # then no per-value test for a missing one
        for kind, name in computes:
            column: list[float | None]
            if kind == "delta":
                if complete:
                    column = [v - b for v, b in zip(now, before, strict=True)]  # type: ignore[operator]
                else:
                    column = [
                        None if v is None or b is None else v - b for v, b in zip(now, before, strict=True)
                    ]
            elif kind == "increase":
                if complete:
                    column = [v if v < b else v - b for v, b in zip(now, before, strict=True)]  # type: ignore[operator]
                else:
                    column = [
                        None if v is None or b is None else (v if v < b else v - b)
                        for v, b in zip(now, before, strict=True)
                    ]
            else:  # rate
                column = [
                    None if v is None or b is None or s <= 0 else (v if v < b else v - b) / s
                    for v, b, s in zip(now, before, seconds, strict=True)
                ]
            if complete or column.count(None) != n:
                out[name] = column
        reasons = [
            None
            if v is None
            else float(k | FIRST_SIGHT)
            if b is None
            else float(k | RESET)
            if v < b
            else float(k)
            for v, b, k in zip(now, before, bases, strict=True)
        ]
        if reasons.count(None) != n:
            out[reason_name] = reasons
    return out


def _merge_plugin(out: dict[str, list[float | None]], per_client: list[dict[str, float]]) -> None:
    """The plug-in's outputs as columns in ``out`` (a plug-in value replaces a built-in one of its name)."""
    names: dict[str, None] = {}
    for outputs in per_client:
        names.update(dict.fromkeys(outputs))
    for name in names:
        builtin = out.get(name)
        if builtin is None:
            out[name] = [outputs.get(name) for outputs in per_client]
        else:
            out[name] = [outputs.get(name, b) for outputs, b in zip(per_client, builtin, strict=True)]


def merge_histories(held: History, read: History, keep_runs: int) -> History:
    """The runs of both histories of one client (``read``'s observation wins for a run in both), oldest
    first, the newest ``keep_runs`` kept. Two request partitions may each have handled a run of a client
    that moved between them (``kcollect topics grow``): the merge keeps both runs."""
    by_slot = {obs.at_ms: obs for obs in held}
    by_slot.update((obs.at_ms, obs) for obs in read)
    return tuple(by_slot[at] for at in sorted(by_slot))[-keep_runs:]
