"""A seed's fault schedule (pure): which faults, on what, when, for how long, and the run's enqueues.

``make_schedule(seed)`` always gives the same ``Schedule`` for the same seed (and ``Shape``). A fault
fires once the run has at least ``after_stored`` rows stored (raw rows of the run, the highest count
seen) *and* at least ``at`` seconds have passed since the run began; it is undone ``duration`` seconds
after it fired. Gating on progress rather than the clock makes a replay hit the same state of the run
on a machine that is faster or slower today. ``Schedule.to_json`` / ``from_json`` print and read it
back, so a failing seed can be replayed exactly, or edited by hand to narrow it down.

Kinds (``target`` in brackets):

- ``kill9`` / ``sigterm`` [a processor or sink]: killed, or stopped gracefully; started again after
  ``duration``;
- ``sigstop`` [a processor or sink]: frozen (SIGSTOP) for ``duration``, then thawed (SIGCONT);
- ``crash`` [a processor or sink]: killed and started again with a crash point armed
  (``KCOLLECT_FAULT_AT=params.point:params.hit``, ``streams/steps/faults.py``): it dies there (exit 97,
  no flush, no commit), a deterministic place to die, and is started again without it; not reached
  within ``duration``, it is killed and started again anyway;
- ``join`` [a new processor or sink]: a member joins the group and leaves (SIGTERM) after ``duration``;
- ``broker_pause`` [broker]: the broker process frozen (SIGSTOP) for ``duration``;
- ``clickhouse_stop`` [clickhouse]: ClickHouse stopped (``params.signal``: TERM or KILL), started
  again after ``duration``;
- ``garbage`` [requests or results]: ``params.kinds`` bad records produced to that topic (instant);
- ``subsystem`` [alpha, beta or all]: the simulator's fault ``params.mode`` (error, rate_limit,
  slow, garbage, outage) switched on for ``duration``;
- ``enqueue`` [run]: the run enqueued again with clients ``params.first``..``params.last`` (a
  duplicate of the first enqueue, or a late one that partly overlaps it), instant.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from typing import Any

PROCESS_FAULTS = ("kill9", "sigterm", "sigstop")
GARBAGE_REQUESTS = ("binary", "text", "array", "empty_id", "version")
GARBAGE_RESULTS = ("binary", "text", "array", "empty_id", "version")
SUBSYSTEM_MODES = ("error", "rate_limit", "slow", "garbage", "outage")
# faults that may leave work done but not committed: a dead letter may then be produced twice
UNCLEAN = frozenset({"kill9", "sigstop", "broker_pause", "crash"})
CRASH_POINTS = {
    "processor": ("after_poll", "after_fetch", "after_produce", "before_commit"),
    "sink": ("before_insert", "after_insert", "before_commit"),
}


@dataclass(frozen=True)
class Shape:
    """The size of one seed's run and deployment."""

    clients: int = 10_000  # the run's client set: 0..clients-1, the union of its enqueues
    first_enqueue: int = 8_000  # the first enqueue: 0..first_enqueue-1
    processors: int = 2
    sinks: int = 2


@dataclass(frozen=True)
class Fault:
    kind: str
    target: str
    at: float  # seconds since the run began, at the earliest
    after_stored: int  # rows of the run stored, at the least
    duration: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Schedule:
    seed: int
    shape: Shape
    faults: tuple[Fault, ...]

    def to_json(self) -> str:
        return json.dumps(
            {"seed": self.seed, "shape": asdict(self.shape), "faults": [asdict(f) for f in self.faults]},
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        data = json.loads(text)
        return cls(int(data["seed"]), Shape(**data["shape"]), tuple(Fault(**f) for f in data["faults"]))

    def enqueues(self) -> list[tuple[int, int]]:
        """Every enqueue of the run as (first, last) client ids, the first one included."""
        first = [(0, self.shape.first_enqueue - 1)]
        return first + [(f.params["first"], f.params["last"]) for f in self.faults if f.kind == "enqueue"]

    def clients(self) -> set[str]:
        """The run's client set: the union of its enqueues."""
        return {str(c) for first, last in self.enqueues() for c in range(first, last + 1)}

    def kinds(self) -> set[str]:
        return {f.kind for f in self.faults}

    def garbage(self, topic: str) -> int:
        """How many bad records the schedule produces to ``topic``."""
        return sum(len(f.params["kinds"]) for f in self.faults if f.kind == "garbage" and f.target == topic)


def _members(shape: Shape) -> list[str]:
    return [f"processor{i}" for i in range(shape.processors)] + [f"sink{i}" for i in range(shape.sinks)]


def _progress(rng: random.Random, shape: Shape, low: float = 0.05, high: float = 0.85) -> int:
    return int(shape.first_enqueue * rng.uniform(low, high))


def _process_fault(rng: random.Random, shape: Shape) -> Fault:
    kind = rng.choice(PROCESS_FAULTS)
    duration = round(
        rng.uniform(5.0, 9.0) if kind == "sigstop" and rng.random() < 0.5 else rng.uniform(0.3, 3.0), 2
    )
    return Fault(
        kind, rng.choice(_members(shape)), round(rng.uniform(0, 4), 2), _progress(rng, shape), duration
    )


def _crash(rng: random.Random, shape: Shape) -> Fault:
    target = rng.choice(_members(shape))
    point = rng.choice(CRASH_POINTS["processor" if target.startswith("processor") else "sink"])
    params = {"point": point, "hit": rng.randint(1, 3)}
    return Fault("crash", target, round(rng.uniform(0, 4), 2), _progress(rng, shape, 0.05, 0.7), 10.0, params)


def _join(rng: random.Random, shape: Shape, index: int) -> Fault:
    service = rng.choice(("processor", "sink"))
    count = shape.processors if service == "processor" else shape.sinks
    return Fault(
        "join",
        f"{service}{count + index}",
        round(rng.uniform(0, 4), 2),
        _progress(rng, shape),
        round(rng.uniform(2, 8), 2),
    )


def _broker_pause(rng: random.Random, shape: Shape) -> Fault:
    return Fault(
        "broker_pause",
        "broker",
        round(rng.uniform(0, 4), 2),
        _progress(rng, shape),
        round(rng.uniform(0.5, 4.0), 2),
    )


def _clickhouse_stop(rng: random.Random, shape: Shape) -> Fault:
    signal = rng.choice(("TERM", "KILL"))
    return Fault(
        "clickhouse_stop",
        "clickhouse",
        round(rng.uniform(0, 4), 2),
        _progress(rng, shape),
        round(rng.uniform(1.0, 6.0), 2),
        {"signal": signal},
    )


def _garbage(rng: random.Random, shape: Shape) -> Fault:
    topic = rng.choice(("requests", "results"))
    pool = GARBAGE_REQUESTS if topic == "requests" else GARBAGE_RESULTS
    kinds = sorted(rng.sample(pool, rng.randint(1, len(pool))))
    before_run = rng.random() < 0.3  # alone in its partition's first window, before any request
    after = 0 if before_run else _progress(rng, shape, 0.0, 0.9)
    return Fault(
        "garbage", topic, 0.0 if before_run else round(rng.uniform(0, 6), 2), after, 0.0, {"kinds": kinds}
    )


def _subsystem(rng: random.Random, shape: Shape) -> Fault:
    mode = rng.choice(SUBSYSTEM_MODES)
    target = rng.choice(("alpha", "beta", "beta", "all"))
    return Fault(
        "subsystem",
        target,
        round(rng.uniform(0, 4), 2),
        _progress(rng, shape, 0.0, 0.8),
        round(rng.uniform(1, 6), 2),
        {"mode": mode},
    )


def _enqueue(rng: random.Random, shape: Shape) -> Fault:
    if rng.random() < 0.4:  # the same run enqueued again: the first enqueue's clients, or some of them
        first = rng.choice((0, shape.first_enqueue // 4))
        last = shape.first_enqueue - 1
    else:  # a late enqueue of other clients that partly overlaps the first one
        first = rng.randint(shape.first_enqueue // 2, shape.first_enqueue - 1)
        last = shape.clients - 1
    return Fault(
        "enqueue",
        "run",
        round(rng.uniform(0, 8), 2),
        _progress(rng, shape, 0.0, 0.9),
        0.0,
        {"first": first, "last": last},
    )


def make_schedule(seed: int, shape: Shape | None = None) -> Schedule:
    """The faults of ``seed``: always a process fault, garbage and a late enqueue that completes the
    client set, then 2-5 faults of any kind; sorted by the progress they wait for."""
    shape = shape or Shape()
    rng = random.Random(seed)
    faults = [_process_fault(rng, shape), _garbage(rng, shape)]
    late = _enqueue(rng, shape)
    if late.params["last"] != shape.clients - 1:  # the client set must reach ``shape.clients``
        late = Fault(
            "enqueue",
            "run",
            late.at,
            late.after_stored,
            0.0,
            {"first": shape.first_enqueue // 2, "last": shape.clients - 1},
        )
    faults.append(late)
    makers = [
        _process_fault,
        _crash,
        _broker_pause,
        _clickhouse_stop,
        _garbage,
        _subsystem,
        _subsystem,
        _enqueue,
    ]
    joins = 0
    for _ in range(rng.randint(2, 5)):
        if rng.random() < 0.15:
            faults.append(_join(rng, shape, joins))
            joins += 1
        else:
            faults.append(rng.choice(makers)(rng, shape))
    faults.sort(key=lambda f: (f.after_stored, f.at))
    return Schedule(seed, shape, tuple(faults))
