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

from collections.abc import Callable, Mapping
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

BUILTINS = ("delta", "increase", "rate")
CLOCK_SLOTS = 32
"""Slots a partition's clock remembers: a replay of one of them keeps its run number."""


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

    def to_json(self) -> list[Any]:
        return [self.at_ms, self.seq, self.run_id, self.values, self.computed]

    @classmethod
    def from_json(cls, item: list[Any]) -> Observation:
        at_ms, seq, run_id, values, computed = item
        return cls(str(run_id), int(at_ms), int(seq), dict(values), dict(computed))


History = tuple[Observation, ...]
StatefulFn = Callable[[Observation, Observation | None], dict[str, float]]
"""A stateful plug-in: (this run, the previous observation or None) -> outputs (kept for the next run)."""


def encode_history(history: History, owner: int | None = None) -> bytes:
    """The changelog value of a history; ``owner``: the request partition that wrote it (``owner_of``)."""
    data: dict[str, Any] = {"v": 1, "runs": [o.to_json() for o in history]}
    if owner is not None:
        data["p"] = owner
    return orjson.dumps(data)


def owner_of(value: bytes, default: int) -> int:
    """The request partition that wrote a history (``default``: one written before owners were kept)."""
    owner = orjson.loads(value).get("p")
    return int(owner) if isinstance(owner, int) else default


def decode_history(value: bytes) -> History:
    data = orjson.loads(value)
    return tuple(Observation.from_json(item) for item in data["runs"])


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
    if current.seq and previous.seq and current.seq - previous.seq > 1:
        base |= GAP
    seconds = (current.at_ms - previous.at_ms) / 1000
    for metric, reason_name, computes in spec.plan:
        value = values.get(metric)
        if value is None:
            continue  # named in the result's ``missing``
        before = before_values.get(metric)
        if before is None:
            out[reason_name] = float(base | FIRST_SIGHT)
            continue
        reset = value < before
        increase = value if reset else value - before
        for kind, name in computes:
            if kind == "delta":
                out[name] = value - before
            elif kind == "increase":
                out[name] = increase
            elif seconds > 0:  # rate
                out[name] = increase / seconds
        out[reason_name] = float(base | RESET) if reset else float(base)
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


def merge_histories(held: History, read: History, keep_runs: int) -> History:
    """The runs of both histories of one client (``read``'s observation wins for a run in both), oldest
    first, the newest ``keep_runs`` kept. Two request partitions may each have handled a run of a client
    that moved between them (``kcollect topics grow``): the merge keeps both runs."""
    by_slot = {obs.at_ms: obs for obs in held}
    by_slot.update((obs.at_ms, obs) for obs in read)
    return tuple(by_slot[at] for at in sorted(by_slot))[-keep_runs:]
