"""The fetch path without a broker: caller policy (retries, timeouts, breaker), partial results,
failures, and the HTTP subsystem against the in-process simulator with every kind of garbage."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from kcollect.testkit.simulator import SimServer, SimState, serve
from processors.processor.breaker import BreakerOpen
from processors.processor.caller import CallTimeout, SubsystemCaller
from processors.processor.compute import summary
from processors.processor.config import SubsystemConfig
from processors.processor.fetcher import Decoded, Fetcher
from processors.processor.retry import FetchError, PermanentFetchError
from processors.processor.subsystems.http_api import BadResponse, HttpSubsystem, parse_body
from processors.processor.subsystems.simulated import SimulatedSubsystem, simulated_value
from tests.oracles import results_of


def reqs(n: int, run_id: str = "r1") -> list[dict[str, Any]]:
    return [
        {"v": 1, "run_id": run_id, "client_id": f"c{i}", "requested_at_ms": 1, "attempt": 0} for i in range(n)
    ]


def cfg(name: str, metrics: Sequence[str], **kw: Any) -> SubsystemConfig:
    base = {"retries": 2, "backoff_base_seconds": 0.001, "backoff_max_seconds": 0.01, "timeout_seconds": 0.2}
    return SubsystemConfig(name=name, metrics=tuple(metrics), **(base | kw))


class Msg(str):
    """Stands in for a consumed message: the fetcher only asks for its partition."""

    def partition(self) -> int:
        return 0


class Flaky:
    """Fails the first ``failures`` calls (or always), optionally by hanging."""

    def __init__(self, failures: int = 10**9, hang: bool = False, error: Exception | None = None) -> None:
        self.name, self.metrics = "flaky", ("f",)
        self.failures, self.hang, self.calls = failures, hang, 0
        self.error = error or FetchError("boom")

    async def fetch_async(self, requests: Sequence[dict[str, Any]]) -> dict[str, list[float | None]]:
        self.calls += 1
        if self.calls <= self.failures:
            if self.hang:
                await asyncio.sleep(10)
            raise self.error
        return {"f": [1.0] * len(requests)}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_retries_then_succeeds() -> None:
    client = Flaky(failures=2)
    assert run(SubsystemCaller(client, cfg("flaky", ["f"])).call(reqs(3))) == {"f": [1.0, 1.0, 1.0]}
    assert client.calls == 3


def test_gives_up_after_retries_and_times_out_hanging_calls() -> None:
    client = Flaky(hang=True)
    with pytest.raises(CallTimeout):
        run(SubsystemCaller(client, cfg("flaky", ["f"], retries=1)).call(reqs(1)))
    assert client.calls == 2


def test_permanent_errors_are_not_retried() -> None:
    client = Flaky(error=PermanentFetchError("too big"))
    with pytest.raises(PermanentFetchError):
        run(SubsystemCaller(client, cfg("flaky", ["f"], retries=5)).call(reqs(1)))
    assert client.calls == 1


def test_breaker_opens_and_refuses_calls() -> None:
    client = Flaky()
    caller = SubsystemCaller(client, cfg("flaky", ["f"], retries=0, breaker={"failure_threshold": 2}))
    for _ in range(2):
        with pytest.raises(FetchError):
            run(caller.call(reqs(1)))
    with pytest.raises(BreakerOpen):
        run(caller.call(reqs(1)))
    assert client.calls == 2 and caller.breaker.state == "open"


def test_one_failed_subsystem_gives_partial_results() -> None:
    fetcher = Fetcher(
        [
            SubsystemCaller(SimulatedSubsystem("alpha", ["uptime"]), cfg("alpha", ["uptime"])),
            SubsystemCaller(Flaky(), cfg("flaky", ["f"], batch_size=2)),
        ],
        summary,
    )
    outcome = run(fetcher.process(Decoded(reqs(5), [Msg(f"m{i}") for i in range(5)])))  # type: ignore[misc]
    assert outcome.failures == []
    assert [r["status"] for r in results_of(outcome)] == ["partial"] * 5
    assert all(
        r["missing"] == ["f"] and r["metrics"] == {"uptime": simulated_value("r1", r["client_id"], "uptime")}
        for r in results_of(outcome)
    )


def test_all_or_required_subsystems_failed_is_a_failure() -> None:
    flaky_then_ok = Flaky(failures=1)  # first chunk (clients 0-1) fails, the rest succeed
    fetcher = Fetcher(
        [
            SubsystemCaller(SimulatedSubsystem("alpha", ["uptime"]), cfg("alpha", ["uptime"])),
            SubsystemCaller(flaky_then_ok, cfg("flaky", ["f"], batch_size=2, retries=0, required=True)),
        ],
        summary,
    )
    messages = [Msg(f"m{i}") for i in range(5)]
    outcome = run(fetcher.process(Decoded(reqs(5), messages)))  # type: ignore[arg-type]
    assert [f.message for f in outcome.failures] == messages[:2]
    assert outcome.failures[0].error_class == "FetchError"
    assert [r["client_id"] for r in results_of(outcome)] == ["c2", "c3", "c4"]
    assert all(r["status"] == "ok" for r in results_of(outcome))


@pytest.fixture(scope="module")
def sim() -> Iterator[tuple[SimServer, str]]:
    server = serve("127.0.0.1", 0, SimState())
    yield server, f"http://127.0.0.1:{server.server_address[1]}/fetch"
    server.shutdown()


def http_fetch(url: str, n: int = 20, **kw: Any) -> dict[str, list[float | None]]:
    async def go() -> dict[str, list[float | None]]:
        client = HttpSubsystem("beta", ["load_0", "load_1"], url, **kw)
        try:
            return await client.fetch_async(reqs(n))
        finally:
            await client.aclose()

    return run(go())


def test_http_subsystem_gets_the_simulated_values(sim: tuple[SimServer, str]) -> None:
    server, url = sim
    server.state.reset()
    columns = http_fetch(url)
    assert columns["load_1"] == [simulated_value("r1", f"c{i}", "load_1") for i in range(20)]


@pytest.mark.parametrize("kind", ["invalid_json", "html", "wrong_types", "wrong_client"])
def test_http_subsystem_rejects_garbage(sim: tuple[SimServer, str], kind: str) -> None:
    server, url = sim
    server.state.reset()
    server.state.control({"garbage_rate": 1.0, "garbage_kinds": [kind]})
    with pytest.raises(BadResponse):
        http_fetch(url)


def test_http_status_errors_and_retry_after(sim: tuple[SimServer, str]) -> None:
    server, url = sim
    server.state.reset()
    server.state.control({"rate_limit_rate": 1.0, "retry_after_s": 3})
    with pytest.raises(FetchError) as info:
        http_fetch(url)
    assert info.value.retry_after == 3.0 and info.value.retryable
    server.state.reset()
    server.state.control({"subsystem": "beta", "outage_seconds": 30})
    with pytest.raises(FetchError, match="503"):
        http_fetch(url)
    server.state.control({"subsystem": "beta", "outage": False})
    assert http_fetch(url, 1)["load_0"][0] is not None


def test_http_response_size_cap(sim: tuple[SimServer, str]) -> None:
    sim[0].state.reset()
    with pytest.raises(PermanentFetchError, match="cap"):
        http_fetch(sim[1], n=200, max_response_bytes=1024)


def test_parse_body_checks_lengths_and_types() -> None:
    with pytest.raises(BadResponse, match="list of 2"):
        parse_body(b'{"clients":["a","b"],"values":{"m":[1.0]}}', ["a", "b"], ("m",))
    assert parse_body(b'{"clients":["a"],"values":{"m":[3]}}', ["a"], ("m", "n")) == {"m": [3.0]}


def _compute_that_fails_for(bad: dict[str, Any]) -> Any:
    """A plugin compute function: ``summary``, but for the metric value in ``bad`` it raises or returns
    what cannot be encoded."""

    def compute(metrics: dict[str, float]) -> dict[str, Any]:
        action = bad.get(str(metrics.get("uptime")))
        if action == "raise":
            raise ZeroDivisionError("plugin bug")
        if action == "huge":
            return {"x": 2**70}
        if action == "int_key":
            return {1: 2.0}  # type: ignore[dict-item]
        return summary(metrics)

    return compute


@pytest.mark.parametrize(
    ("action", "reason"), [("raise", "compute_failed"), ("huge", "unencodable"), ("int_key", "unencodable")]
)
def test_a_client_whose_compute_raises_or_cannot_be_encoded_is_a_permanent_failure(
    action: str, reason: str
) -> None:
    sim = SimulatedSubsystem("alpha", ["uptime"])
    requests = reqs(5)
    bad_value = simulated_value("r1", "c2", "uptime")
    fetcher = Fetcher(
        [SubsystemCaller(sim, cfg("alpha", ["uptime"]))], _compute_that_fails_for({str(bad_value): action})
    )
    outcome = run(fetcher.process(Decoded(requests, [Msg(f"m{i}") for i in range(5)])))  # type: ignore[arg-type]
    assert sorted(r["client_id"] for r in results_of(outcome)) == ["c0", "c1", "c3", "c4"]
    assert [(f.request["client_id"], f.reason) for f in outcome.failures] == [("c2", reason)]


class SlowBlocking:
    """A blocking client (runs in a thread) that answers after ``seconds``."""

    blocking = True

    def __init__(self, seconds: float) -> None:
        self.name, self.metrics, self.seconds = "slow", ("s",), seconds

    def fetch(self, requests: Sequence[dict[str, Any]]) -> dict[str, list[float | None]]:
        import time

        time.sleep(self.seconds)
        return {"s": [1.0] * len(requests)}


def test_blocking_calls_get_their_own_threads_and_their_timeout_counts_only_the_call() -> None:
    # 40 concurrent 0.1 s calls with a 0.5 s timeout: on asyncio's default executor (a handful of
    # threads on a small machine) the later calls wait their turn past the timeout
    caller = SubsystemCaller(
        SlowBlocking(0.1), cfg("slow", ["s"], retries=0, timeout_seconds=0.5, max_concurrency=40)
    )

    async def many() -> list[Any]:
        return await asyncio.gather(*(caller.call(reqs(1)) for _ in range(40)), return_exceptions=True)

    answers = run(many())
    assert [a for a in answers if isinstance(a, BaseException)] == []
    caller.close()
