"""The step contract (streams/steps/strategy.py), checked on every step of both chains, as Arroyo's
tests/processing/strategies/test_all.py does: submit, poll, join with and without a timeout, close,
terminate and backpressure (``MessageRejected`` while the next step is full, nothing lost or reordered
once it takes again). ``CommitOffsets``, the last step, has its own cases at the end. The step classes are
found by walking the source packages, so a step added without a case here fails
``test_every_step_class_of_the_source_has_a_case``."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from processors.processor.dead_letters import FailureGuard, RequestDeadLetters
from processors.processor.fetcher import Outcome
from processors.processor.steps import ProduceOutcome, Topics
from processors.sink.columns import empty_columns
from processors.sink.insert import Bad, ClickHouseHealth, SinkStats
from processors.sink.insert_step import InsertStep
from processors.sink.steps import WindowStep
from processors.sink.windowing import PartitionWindow, Segment, WindowLimits
from streams.kafka.producer import DeliveryTracker
from streams.steps.commit import CommitOffsets, DeliveryFailed
from streams.steps.strategy import (
    Batch,
    LoopThread,
    MessageRejected,
    ProcessingStep,
    RunTaskInLoop,
    TransformStep,
)

P = ("t", 0)


class NextStep:
    """The next step: records what it takes (in order); refuses while ``full``."""

    def __init__(self) -> None:
        self.full = False
        self.taken: list[int] = []  # the end offset of each batch taken
        self.polls = 0
        self.joins: list[float | None] = []
        self.closed = False
        self.terminated = False

    def submit(self, batch: Batch[Any]) -> None:
        if self.full:
            raise MessageRejected
        self.taken.append(batch.offsets[P])

    def poll(self) -> None:
        self.polls += 1

    def join(self, timeout: float | None = None) -> None:
        self.joins.append(timeout)

    def close(self) -> None:
        self.closed = True

    def terminate(self) -> None:
        self.terminated = True


class Producer:
    """What ProduceOutcome needs of a BatchProducer; every record is delivered at once."""

    def partition_count(self, topic: str) -> int:
        return 1

    def produce_to_partitions(self, topic: str, records: Any) -> DeliveryTracker:
        return DeliveryTracker()

    def produce_batch(self, topic: str, records: Any, tracker: DeliveryTracker, headers: Any = None) -> None:
        pass


class Writer:
    """What the insert workers need of a WindowWriter: every window is written, no row refused."""

    def write(self, window: PartitionWindow, progress: object = None) -> Bad:
        return []

    def reset(self) -> None:
        pass


def segment(i: int) -> list[Segment]:
    columns = empty_columns()
    for column in columns:
        column.append(None)
    return [Segment(P, i, i + 1, columns, [i], [None], 10)]


def window(i: int) -> PartitionWindow:
    return PartitionWindow(P, i, i + 1, WindowLimits(1, 1 << 20, 3600.0), 0.0)


@dataclass
class Case:
    step: Any
    next_step: NextStep
    item: Callable[[int], Any]  # the payload of the i-th batch (its end offset is i + 1)
    in_flight: bool  # work finishes in the background (a poll may not hand it on at once)


async def _echo(payload: Any) -> Any:
    await asyncio.sleep(0)
    return payload


def _transform(nxt: NextStep, cleanup: list[Callable[[], None]]) -> Case:
    return Case(TransformStep(lambda b: b.replace(b.payload), nxt), nxt, lambda i: [i], False)


def _run_task(nxt: NextStep, cleanup: list[Callable[[], None]]) -> Case:
    loop = LoopThread("test-steps")
    cleanup.append(loop.stop)
    return Case(RunTaskInLoop(_echo, nxt, loop, max_in_flight=2), nxt, lambda i: [i], True)


def _produce(nxt: NextStep, cleanup: list[Callable[[], None]]) -> Case:
    producer: Any = Producer()
    guard = FailureGuard()
    step = ProduceOutcome(
        producer, Topics("r", "rr", "d"), RequestDeadLetters(producer, "d"), guard, None, nxt
    )
    return Case(step, nxt, lambda i: Outcome([]), False)


def _window(nxt: NextStep, cleanup: list[Callable[[], None]]) -> Case:
    step = WindowStep(WindowLimits(1, 1 << 20, 3600.0), nxt, SinkStats(), clock=lambda: 0.0)
    return Case(step, nxt, segment, False)


def _insert(nxt: NextStep, cleanup: list[Callable[[], None]]) -> Case:
    stats = SinkStats()
    writers: Any = [Writer()]
    step = InsertStep(writers, ClickHouseHealth(stats), lambda w, bad: DeliveryTracker(), nxt, max_pending=2)
    cleanup.append(step.terminate)
    return Case(step, nxt, window, True)


STEPS = {
    "TransformStep": _transform,
    "RunTaskInLoop": _run_task,
    "ProduceOutcome": _produce,
    "WindowStep": _window,
    "InsertStep": _insert,
}


CONTRACT = ("submit", "poll", "join", "close", "terminate")
SOURCE_PACKAGES = ("schemas", "streams", "producers", "processors", "kcollect")


def step_classes() -> set[type]:
    """Every class of the source that has the five methods of the step contract (``ProcessingStep``
    itself aside), whatever it is named or derives from."""
    found: set[type] = set()
    for package in SOURCE_PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, package + "."):
            if info.name.rsplit(".", 1)[-1] == "__main__":
                continue  # runs the CLI when imported
            module = importlib.import_module(info.name)
            for obj in vars(module).values():
                if (
                    inspect.isclass(obj)
                    and obj.__module__ == info.name
                    and obj is not ProcessingStep
                    and all(callable(getattr(obj, method, None)) for method in CONTRACT)
                ):
                    found.add(obj)
    return found


def test_every_step_class_of_the_source_has_a_case() -> None:
    covered: set[type] = {CommitOffsets}  # the last step: its own cases at the end of this module
    for make in STEPS.values():
        cleanup: list[Callable[[], None]] = []
        covered.add(type(make(NextStep(), cleanup).step))
        for undo in cleanup:
            undo()
    found = step_classes()
    assert len(found) >= 6  # the walk reaches both chains' steps
    assert sorted(c.__qualname__ for c in found - covered) == []


@pytest.fixture(params=sorted(STEPS))
def case(request: pytest.FixtureRequest) -> Iterator[Case]:
    cleanup: list[Callable[[], None]] = []
    yield STEPS[request.param](NextStep(), cleanup)
    for undo in cleanup:
        undo()


def batch(case: Case, i: int) -> Batch[Any]:
    return Batch(case.item(i), {P: i + 1})


def poll_until(case: Case, done: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not done():
        assert time.monotonic() < deadline, f"not handed on: {case.next_step.taken}"
        case.step.poll()
        time.sleep(0.005)


def submit_when_taken(case: Case, i: int, seconds: float = 5.0) -> None:
    """Submit batch ``i``, polling while the step is busy (work in flight may fill it for a while)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            case.step.submit(batch(case, i))
            return
        except MessageRejected:
            assert time.monotonic() < deadline, "the step never took the batch"
            case.step.poll()
            time.sleep(0.005)


def submit_until_rejected(case: Case, first: int, limit: int = 50) -> int:
    """Submit batches first, first + 1, ... until the step refuses one; returns how many it took."""
    for n in range(limit):
        try:
            case.step.submit(batch(case, first + n))
        except MessageRejected:
            return n
        if case.in_flight:
            time.sleep(0.02)  # let background work finish: the step must still refuse in the end
            case.step.poll()
    raise AssertionError(f"{limit} batches taken while the next step refused every one")


def test_submit_and_poll_hand_every_batch_on_in_order(case: Case) -> None:
    for i in range(3):
        submit_when_taken(case, i)
        case.step.poll()
    poll_until(case, lambda: len(case.next_step.taken) == 3)
    assert case.next_step.taken == [1, 2, 3]
    assert case.next_step.polls > 0


def test_backpressure_refuses_then_hands_on_everything_it_took(case: Case) -> None:
    case.next_step.full = True
    taken = submit_until_rejected(case, 0)
    assert taken >= 1  # a step takes work before it is full
    assert case.next_step.taken == []
    case.next_step.full = False
    poll_until(case, lambda: len(case.next_step.taken) == taken)
    submit_when_taken(case, taken)  # free again: the refused batch is taken now
    poll_until(case, lambda: len(case.next_step.taken) == taken + 1)
    assert case.next_step.taken == list(range(1, taken + 2))


def test_join_without_timeout_hands_everything_on_then_joins_the_next_step(case: Case) -> None:
    for i in range(2):
        submit_when_taken(case, i)
    case.step.join()
    assert case.next_step.taken == [1, 2]
    assert case.next_step.joins == [None]


def test_join_with_a_timeout_returns_while_the_next_step_refuses(case: Case) -> None:
    case.next_step.full = True
    submit_until_rejected(case, 0)
    started = time.monotonic()
    case.step.join(0.2)
    assert time.monotonic() - started < 2.0
    assert case.next_step.taken == []
    [left] = case.next_step.joins
    assert left is not None and 0.0 <= left <= 0.2


def test_join_with_a_timeout_hands_on_what_is_ready(case: Case) -> None:
    case.step.submit(batch(case, 0))
    case.step.join(5.0)
    assert case.next_step.taken == [1]
    [left] = case.next_step.joins
    assert left is not None and 0.0 < left <= 5.0


def test_close_passes_down_the_chain(case: Case) -> None:
    case.step.close()
    assert case.next_step.closed and not case.next_step.terminated


def test_terminate_drops_what_is_held_and_passes_down(case: Case) -> None:
    case.next_step.full = True
    submit_until_rejected(case, 0)
    case.step.terminate()
    assert case.next_step.terminated
    case.next_step.full = False
    case.step.poll()
    time.sleep(0.05)
    case.step.poll()
    assert case.next_step.taken == []


# --- CommitOffsets: the last step; it commits through the callback the stream processor gives it ---


class Commits:
    def __init__(self) -> None:
        self.calls: list[dict[tuple[str, int], int]] = []

    def __call__(self, offsets: dict[tuple[str, int], int]) -> None:
        self.calls.append(dict(offsets))


def delivered(i: int, tracker: DeliveryTracker | None = None) -> Batch[None]:
    return Batch(None, {P: i + 1}, [tracker or DeliveryTracker()])


def pending() -> DeliveryTracker:
    tracker = DeliveryTracker()
    tracker.pending = 1
    return tracker


def test_commit_submit_and_poll_commit_in_order() -> None:
    commits = Commits()
    step = CommitOffsets(commits, interval=0.0)
    step.submit(delivered(0))
    step.submit(delivered(1))
    step.poll()
    assert commits.calls == [{P: 2}]
    assert step.committed == {P: 2}


def test_commit_backpressure_and_join_with_and_without_timeout() -> None:
    commits = Commits()
    step = CommitOffsets(commits, interval=3600.0, max_waiting=2)
    waiting = pending()
    step.submit(delivered(0, waiting))
    step.submit(delivered(1))
    with pytest.raises(MessageRejected):
        step.submit(delivered(2))
    started = time.monotonic()
    step.join(0.1)  # the first batch is not delivered: nothing may be committed
    assert time.monotonic() - started < 2.0 and commits.calls == []
    waiting.pending = 0
    step.submit(delivered(2))
    step.join()
    assert commits.calls == [{P: 3}]


def test_commit_refuses_to_pass_a_failed_delivery() -> None:
    commits = Commits()
    step = CommitOffsets(commits, interval=0.0)
    failed = DeliveryTracker()
    failed.failed = 1
    failed.first_errors.append("broker said no")
    step.submit(delivered(0, failed))
    with pytest.raises(DeliveryFailed):
        step.poll()
    assert commits.calls == []


def test_commit_terminate_drops_and_close_keeps() -> None:
    commits = Commits()
    step = CommitOffsets(commits, interval=3600.0)
    step.submit(delivered(0))
    step.close()
    step.terminate()
    step.join()
    assert commits.calls == []
