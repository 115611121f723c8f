"""Plays one seed's schedule against a real deployment, then judges the run.

``Campaign(stack, schedule, folder).play()`` starts a deployment on the seed's broker and ClickHouse
(``Shape.processors`` processors and ``Shape.sinks`` sinks as real ``kcollect`` processes, the
subsystems behind ``kcollect simulate``), enqueues the run, fires each fault once its progress gate
and time are reached (``tests/chaos/schedule.py``), undoes it after its duration, and ``verdict`` then
asserts, through the run checker and the dead-letter topics:

- the run complete (``runs status``), the lag of both groups (and of the retry topic) back to zero;
- nothing lost, nothing duplicated under FINAL, nothing unexpected, every value, status and computed
  value right, no client both stored and dead-lettered (``kcollect runs verify``);
- every client of the run stored, none dead-lettered: the processor config retries a request for far
  longer than any subsystem fault lasts (``RETRY``), so no request of the run is lost to an outage;
- every bad record produced dead-lettered, once per (topic, partition, offset) of the bad record, and
  nothing else on the dead-letter topics; the same bad record twice only when an unclean fault
  (kill -9, SIGSTOP, broker paused) could have left its dead letter produced but not committed;
- committed offsets never moved backwards; every service still running.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from bench.deployment import Deployment, make_deployment
from kcollect.localstack.process import exited
from kcollect.ops.value_check import compute_for
from processors.processor.subsystems.simulated import DEFAULT_METRICS, simulated_check
from producers.enqueue.enqueue import enqueue_run
from producers.enqueue.sources import RangeSource
from schemas.topics import REQUESTS_RETRY
from streams.kafka.clients import make_producer
from streams.runs.checker import RunDeadLetter, dead_letters, pipeline_groups, verify_run, watch_recovery
from streams.runs.status import run_status, wait_complete
from streams.steps import faults
from tests.chaos.schedule import UNCLEAN, Fault, Schedule
from tests.drills.kit import Broker, ClickHouse, OffsetWatch

log = logging.getLogger("chaos")

LATENCY_MS = 100.0  # every simulated call: a run of 10k clients lasts several seconds
RETRY = {"max_attempts": 100, "delay_ms": 300, "max_delay_ms": 2000}  # ~190 s of retries per request
SETTLE_TIMEOUT = 180.0
EXIT_TIMEOUT = 60.0  # a SIGTERMed service must be gone by then (its shutdown deadline is 20 s)
ENV = {
    "KCOLLECT_PARTITIONS": "4",
    "KCOLLECT_SESSION_TIMEOUT_MS": "3000",
    "KCOLLECT_CONSUME_BATCH": "100",
    "KCOLLECT_MAX_IN_FLIGHT_BATCHES": "1",
    "KCOLLECT_SINK_BATCH_SECONDS": "0.3",
    "KCOLLECT_COMMIT_INTERVAL_SECONDS": "0.2",
    "KCOLLECT_RESULTS_LAG_INTERVAL_SECONDS": "0.5",
}
# the simulator's settings each subsystem mode changes, and the values that undo it
MODES: dict[str, dict[str, Any]] = {
    "error": {"error_rate": 0.5},
    "rate_limit": {"rate_limit_rate": 0.5, "retry_after_s": 0.2},
    "slow": {"latency_ms": 400.0, "slow_rate": 0.3, "slow_ms": 1500.0},
    "garbage": {"garbage_rate": 0.3},
}
UNDO: dict[str, Any] = {
    "error_rate": 0.0,
    "rate_limit_rate": 0.0,
    "retry_after_s": 1.0,
    "latency_ms": LATENCY_MS,
    "slow_rate": 0.0,
    "slow_ms": 0.0,
    "garbage_rate": 0.0,
}


@dataclass
class ChaosStack:
    """What a seed runs on: a broker and a ClickHouse the campaign may pause, stop and restart."""

    broker: Broker
    clickhouse: ClickHouse


def processor_config(folder: Path, port: int) -> Path:
    """alpha and beta behind the simulator on ``port``, small calls, retries that outlast any fault."""
    config = {
        "subsystems": [
            {
                "name": name,
                "kind": "http",
                "url": f"http://127.0.0.1:{port}/{name}",
                "metrics": list(metrics),
                "batch_size": 50,
                "max_concurrency": 8,
                "timeout_seconds": 3,
                "breaker": {"failure_threshold": 5, "reset_seconds": 1.0},
            }
            for name, metrics in DEFAULT_METRICS.items()
        ],
        "retry": RETRY,
    }
    path = folder / "processor.json"
    path.write_text(json.dumps(config))
    return path


def bad_request(kind: str, key: str, run_id: str) -> bytes:
    good = {"v": 1, "run_id": run_id, "requested_at_ms": 1, "attempt": 0, "deadline_ms": None}
    return {
        "binary": b"\x00\xff\xfe garbage \x81",
        "text": b"not json at all",
        "array": b"[1, 2, 3]",
        "empty_id": orjson.dumps(good | {"client_id": ""}),
        "version": orjson.dumps(good | {"v": 2, "client_id": key}),
    }[kind]


def bad_result(kind: str, key: str, run_id: str) -> bytes:
    now = int(time.time() * 1000)
    good = {
        "v": 1, "run_id": run_id, "requested_at_ms": now, "attempt": 0, "collected_at_ms": now,
        "status": "ok", "metrics": {}, "missing": [], "computed": {},
    }  # fmt: skip
    return {
        "binary": b"\x00\xff\xfe garbage \x81",
        "text": b"not json",
        "array": b"[1, 2, 3]",
        "empty_id": orjson.dumps(good | {"client_id": ""}),
        "version": orjson.dumps(good | {"v": 2, "client_id": key}),
    }[kind]


@dataclass
class Planted:
    """One bad record the campaign produced, and where it landed."""

    topic: str
    key: str
    names_run: bool
    partition: int = -1
    offset: int = -1


@dataclass
class Fired:
    fault: Fault
    fired_at: float
    undo_at: float
    undone: bool = False
    note: str = ""


@dataclass
class Campaign:
    stack: ChaosStack
    schedule: Schedule
    folder: Path
    name: str = ""
    d: Deployment | None = None
    run_id: str = ""
    sim_port: int = 0
    t0: float = 0.0
    stored_max: int = 0
    pending: list[Fault] = field(default_factory=list)
    fired: list[Fired] = field(default_factory=list)
    planted: list[Planted] = field(default_factory=list)
    enqueues: list[threading.Thread] = field(default_factory=list)
    enqueue_errors: list[str] = field(default_factory=list)
    busy: set[str] = field(default_factory=set)  # targets under a fault not yet undone
    stopping: dict[str, Any] = field(default_factory=dict)  # member -> Popen sent SIGTERM
    armed: dict[str, Fired] = field(default_factory=dict)  # member -> its crash fault, not yet reached
    problems: list[str] = field(default_factory=list)
    watch: OffsetWatch | None = None
    timeline: list[str] = field(default_factory=list)
    dead_letters_twice: int = 0  # dead letters of a bad record beyond its first (a replay)

    # ---- the deployment ---------------------------------------------------------------------------

    @property
    def deployment(self) -> Deployment:
        assert self.d is not None
        return self.d

    def start(self) -> None:
        self.name = self.name or f"ch{self.schedule.seed % 1_000_000}x{int(time.time()) % 10000}"
        self.run_id = f"{self.name}-run"
        d = make_deployment(
            self.stack.broker.bootstrap, self.stack.clickhouse.url, self.name, self.folder, **ENV
        )
        self.d = d
        port_file = d.workdir / "sim.port"
        settings = json.dumps({"latency_ms": LATENCY_MS, "jitter_ms": 20.0})
        d.launch(
            "simulate",
            [
                "simulate",
                "--port",
                "0",
                "--seed",
                str(self.schedule.seed),
                "--settings",
                settings,
                "--ready-file",
                str(port_file),
            ],
            False,
        )
        deadline = time.monotonic() + 30
        while not port_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.sim_port = int(port_file.read_text())
        d.env["KCOLLECT_PROCESSOR_CONFIG"] = str(processor_config(d.workdir, self.sim_port))
        members = [f"processor{i}" for i in range(self.schedule.shape.processors)]
        members += [f"sink{i}" for i in range(self.schedule.shape.sinks)]
        for member in members:
            self.launch(member)
        d.wait_ready(*members)
        self.watch = OffsetWatch(d)
        self.watch.start()

    def launch(self, member: str, env: dict[str, str] | None = None) -> None:
        service = "processor" if member.startswith("processor") else "sink"
        self.deployment.launch(member, [service], env=env)

    def stop_everything(self) -> None:
        """Thaw whatever is frozen, then stop every process this seed started (by PID)."""
        broker = self.stack.broker.record
        if broker is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(broker.pid, signal.SIGCONT)
        if self.d is not None:
            for proc in self.d.procs.values():
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(signal.SIGCONT)
            self.d.kill_all()
        for proc in self.stopping.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if self.watch is not None:
            self.watch.stop()
        ch = self.stack.clickhouse
        if exited(ch.record.pid):
            ch.start()

    # ---- the clock and the progress ---------------------------------------------------------------

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def note(self, text: str) -> None:
        line = f"{self.elapsed():7.2f}s stored>={self.stored_max:6d} {text}"
        self.timeline.append(line)
        log.info(line)

    def follow_progress(self, halt: threading.Event) -> None:
        """Keep ``stored_max`` up to date (its own thread: a query may hang while ClickHouse stops)."""
        while not halt.is_set():
            with contextlib.suppress(Exception):
                self.stored_max = max(self.stored_max, self.deployment.stored(self.run_id))
            halt.wait(0.1)

    def in_background(self, name: str, work: Any) -> None:
        """Run ``work`` in a thread of its own (it may block while the broker is paused); ``play``
        waits for every such thread before the verdict."""
        thread = threading.Thread(target=work, daemon=True, name=name)
        thread.start()
        self.enqueues.append(thread)

    # ---- the schedule -----------------------------------------------------------------------------

    def play(self) -> None:
        self.start()
        self.pending = list(self.schedule.faults)
        self.t0 = time.monotonic()
        self.tick()  # garbage due before the run lands alone in its partitions' first windows
        for thread in self.enqueues:  # ... before the first request is produced
            thread.join(SETTLE_TIMEOUT)
        first, last = self.schedule.enqueues()[0]
        self.enqueue(first, last)
        halt = threading.Event()
        progress = threading.Thread(target=self.follow_progress, args=(halt,), daemon=True)
        progress.start()
        gate_deadline = time.monotonic() + SETTLE_TIMEOUT
        try:
            while self.pending or any(not f.undone for f in self.fired):
                self.tick()
                self.check_members()
                if time.monotonic() > gate_deadline:
                    waiting = [f"{f.kind}:{f.target}@{f.after_stored}" for f in self.pending]
                    raise AssertionError(f"stalled at {self.stored_max} rows stored: waiting for {waiting}")
                time.sleep(0.02)
        finally:
            halt.set()
        for thread in self.enqueues:
            thread.join(SETTLE_TIMEOUT)
            if thread.is_alive():
                self.problems.append(f"{thread.name} still running after {SETTLE_TIMEOUT:g} s")
        self.note("schedule done")

    def tick(self) -> None:
        now = self.elapsed()
        for fired in self.fired:
            if not fired.undone and now >= fired.undo_at:
                fired.undone = self.undo(fired)
                if fired.undone:
                    self.busy.discard(fired.fault.target)
                    self.note(f"undone {fired.fault.kind} {fired.fault.target}")
        for fault in list(self.pending):
            if now < fault.at or self.stored_max < fault.after_stored or not self.available(fault):
                continue
            self.pending.remove(fault)
            note = self.fire(fault)
            self.note(f"fired {fault.kind} {fault.target} {fault.duration}s {fault.params or ''} {note}")
            fired = Fired(fault, now, now + fault.duration, note=note)
            if fault.kind == "crash" and not note:
                self.armed[fault.target] = fired
            if fault.duration > 0:
                self.busy.add(fault.target)
            else:
                fired.undone = True
            self.fired.append(fired)

    def available(self, fault: Fault) -> bool:
        """A fault's target is free: no other fault of it under way; a member to stop is up and ready
        (its signal handlers installed: a SIGTERM before that kills it by the default action)."""
        if fault.target in self.busy:
            return False
        if fault.kind not in ("kill9", "sigterm", "sigstop", "crash"):
            return True
        proc = self.deployment.procs.get(fault.target)
        ready = self.deployment.workdir / f"{fault.target}.ready"
        return proc is not None and proc.poll() is None and ready.exists()

    def check_members(self) -> None:
        """A service that exits on its own (not one the schedule stopped) is a failure."""
        d = self.deployment
        for member, proc in list(d.procs.items()):
            if member == "simulate" or member in self.stopping:
                continue
            if proc.poll() is None:
                continue
            d.procs.pop(member)
            self.launch(member)
            crash = self.armed.pop(member, None)
            if crash is not None and proc.returncode == faults.EXIT_CODE:
                self.note(f"{member} died at its crash point {crash.fault.params}: started again")
                crash.note = "reached"  # nothing left to undo
                crash.undo_at = self.elapsed()
                continue
            self.problems.append(
                f"{member} exited by itself with {proc.returncode} at {self.elapsed():.1f} s"
            )
            self.note(f"{member} EXITED {proc.returncode}: {d.log(member)[-1500:]}")

    # ---- faults -----------------------------------------------------------------------------------

    def fire(self, fault: Fault) -> str:
        d = self.deployment
        kind, target = fault.kind, fault.target
        if kind in ("kill9", "sigterm", "sigstop"):
            proc = d.procs.get(target)
            if proc is None or proc.poll() is not None:
                return "(target not running)"
            if kind == "kill9":
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
                d.procs.pop(target)
            elif kind == "sigterm":
                proc.send_signal(signal.SIGTERM)
                self.stopping[target] = d.procs.pop(target)
            else:
                proc.send_signal(signal.SIGSTOP)
            return ""
        if kind == "join":
            self.launch(target)
            return ""
        if kind == "crash":
            proc = d.procs.get(target)
            if proc is None or proc.poll() is not None:
                return "(target not running)"
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            d.procs.pop(target)
            spec = f"{fault.params['point']}:{fault.params['hit']}"
            self.launch(target, {faults.ENV_VARIABLE: spec})
            return ""
        if kind == "broker_pause":
            assert self.stack.broker.record is not None
            os.kill(self.stack.broker.record.pid, signal.SIGSTOP)
            return ""
        if kind == "clickhouse_stop":
            sig = signal.SIGKILL if fault.params.get("signal") == "KILL" else signal.SIGTERM
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.stack.clickhouse.record.pid, sig)
            return ""
        if kind == "garbage":
            tag = len(self.fired)
            self.in_background(f"garbage-{tag}", lambda: self.plant(fault, tag))
            return ""
        if kind == "subsystem":
            mode = fault.params["mode"]
            change = {"outage_seconds": fault.duration} if mode == "outage" else MODES[mode]
            self.control(target, change)
            return ""
        if kind == "enqueue":
            self.enqueue(fault.params["first"], fault.params["last"])
            return ""
        raise AssertionError(f"unknown fault kind {kind!r}")

    def undo(self, fired: Fired) -> bool:
        """Undo ``fired``; False when it cannot be undone yet (a process still on its way out)."""
        d = self.deployment
        fault = fired.fault
        kind, target = fault.kind, fault.target
        if fired.note:  # nothing was done, or nothing is left to undo
            return True
        if kind == "crash":  # the crash point was not reached in time: die here instead
            self.armed.pop(target, None)
            proc = d.procs.pop(target, None)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
            self.launch(target)
            fired.note = "not reached: killed"
        elif kind == "kill9":
            self.launch(target)
        elif kind == "sigterm":
            if not self.gone(target, fired):
                return False
            self.launch(target)
        elif kind == "sigstop":
            proc = d.procs.get(target)
            if proc is not None:
                proc.send_signal(signal.SIGCONT)
        elif kind == "join":
            if target not in self.stopping:
                proc = d.procs.get(target)
                if proc is None:
                    return True
                if proc.poll() is None and not (d.workdir / f"{target}.ready").exists():
                    return False  # leave once it is ready: a SIGTERM before that kills by default
                proc.send_signal(signal.SIGTERM)
                self.stopping[target] = d.procs.pop(target)
            return self.gone(target, fired)
        elif kind == "broker_pause":
            assert self.stack.broker.record is not None
            os.kill(self.stack.broker.record.pid, signal.SIGCONT)
        elif kind == "clickhouse_stop":
            ch = self.stack.clickhouse
            if not exited(ch.record.pid):
                return False
            ch.start()
        elif kind == "subsystem":
            mode = fault.params["mode"]
            self.control(target, {"outage": False} if mode == "outage" else {k: UNDO[k] for k in MODES[mode]})
        return True

    def gone(self, member: str, fired: Fired) -> bool:
        """True once a member sent SIGTERM has exited (cleanly: exit code 0)."""
        proc = self.stopping[member]
        if proc.poll() is None:
            if self.elapsed() - fired.fired_at > EXIT_TIMEOUT:
                self.problems.append(f"{member} still running {EXIT_TIMEOUT:g} s after SIGTERM")
                proc.kill()
                proc.wait(10)
            return False
        if proc.returncode != 0:
            self.problems.append(f"{member} exited with {proc.returncode} after SIGTERM")
            self.note(f"{member} EXITED {proc.returncode}: {self.deployment.log(member)[-3000:]}")
        self.stopping.pop(member)
        return True

    def control(self, target: str, change: dict[str, Any]) -> None:
        body = change if target == "all" else {"subsystem": target, **change}
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.sim_port}/control", data=json.dumps(body).encode(), method="POST"
        )
        urllib.request.urlopen(request, timeout=5).read()

    def enqueue(self, first: int, last: int) -> None:
        """Enqueue clients ``first``..``last`` of the run in the background; a failed enqueue is run
        again, as its user would (``kcollect enqueue`` is idempotent)."""
        d = self.deployment

        def run() -> None:
            for attempt in range(5):
                try:
                    enqueue_run(d.settings, self.run_id, RangeSource(first, last))
                    self.note(f"enqueued {first}-{last}")
                    return
                except Exception as exc:
                    self.note(f"enqueue {first}-{last} failed ({exc!r}), attempt {attempt + 1}")
                    time.sleep(1)
            self.enqueue_errors.append(f"enqueue {first}-{last} never succeeded")

        self.in_background(f"enqueue-{first}-{last}", run)

    def plant(self, fault: Fault, tag: int) -> None:
        """Produce the fault's bad records to its topic: on partitions 0 and 3 when due before the run
        (each alone in its partition's first window), else by key among the run's records."""
        d = self.deployment
        topic = f"{d.settings.topic_prefix}{fault.target}"
        before_run = fault.after_stored == 0 and fault.at == 0
        make = bad_request if fault.target == "requests" else bad_result
        # long enough to ride out a paused broker: a bad record that may or may not be on the topic
        # would make the dead-letter accounting guess
        producer = make_producer(d.settings, **{"message.timeout.ms": 300_000})
        batch: list[Planted] = []
        for i, kind in enumerate(fault.params["kinds"]):
            key = f"chaos-bad-{fault.target}-{tag}-{i}-{kind}"
            value = make(kind, key, self.run_id)
            planted = Planted(topic, key, value.startswith(b"{") and b'"run_id"' in value)
            batch.append(planted)

            def report(err: Any, msg: Any, planted: Planted = planted) -> None:
                if err is None:
                    planted.partition, planted.offset = msg.partition(), msg.offset()

            if before_run:
                producer.produce(topic, value, key.encode(), (0, 3)[i % 2], on_delivery=report)
            else:
                producer.produce(topic, value, key.encode(), on_delivery=report)
        left = producer.flush(310)
        self.planted.extend(batch)
        if left or any(p.offset < 0 for p in batch):
            self.problems.append(f"garbage to {topic} not all delivered: {batch}")
        self.note(f"planted {[(p.key, p.partition, p.offset) for p in batch]}")

    # ---- the verdict ------------------------------------------------------------------------------

    def verdict(self) -> dict[str, Any]:
        d = self.deployment
        settings = d.settings
        clients = self.schedule.clients()
        problems = list(self.problems) + self.enqueue_errors
        progress = wait_complete(settings, self.run_id, SETTLE_TIMEOUT, interval=0.25)
        self.note(f"run complete: {progress.complete}")
        if not progress.complete:
            problems.append(f"run not complete after {SETTLE_TIMEOUT:g} s: {progress.as_dict()}")
        groups = pipeline_groups(settings)
        recovery = watch_recovery(settings, groups, SETTLE_TIMEOUT)
        retry_recovery = watch_recovery(
            settings, {settings.processor_group: REQUESTS_RETRY.name(settings.topic_prefix)}, SETTLE_TIMEOUT
        )
        if recovery is None or retry_recovery is None:
            problems.append(f"lag not back to zero in {SETTLE_TIMEOUT:g} s (retry topic: {retry_recovery})")
        self.note(f"lag zero after {recovery} s (retry topic {retry_recovery} s)")
        compute, metric_names = compute_for(settings)
        report = verify_run(
            settings,
            self.run_id,
            expected=sorted(clients),
            value_check=simulated_check,
            compute=compute,
            metric_names=metric_names,
        )
        if not report.ok:
            problems.append(f"checker: {report.problems}")
        if report.dead_lettered != 0 or report.stored != len(clients):
            problems.append(
                f"expected {len(clients)} stored, 0 dead-lettered: {report.stored}, {report.dead_lettered}"
            )
        self.note("checked")
        problems += self.dead_letter_problems(report.dead_letters_of_others)
        self.note("dead letters checked")
        backwards = self.watch.stop() if self.watch is not None else []
        if self.watch is not None:
            for move, at in zip(backwards, self.watch.moved_at, strict=True):
                self.timeline.append(f"{at - self.t0:7.2f}s committed offset moved backwards: {move}")
        self.watch = None
        if backwards:
            problems.append(f"committed offsets moved backwards: {backwards}")
        for member, proc in d.procs.items():
            if proc.poll() is not None:
                problems.append(f"{member} not running at the end ({proc.returncode})")
        status = run_status(settings, self.run_id)
        summary = {
            "seed": self.schedule.seed,
            "seconds": round(self.elapsed(), 1),
            "stored": report.stored,
            "raw_rows": report.stored_raw_rows,
            "duplicated_raw": report.duplicated_raw,
            "garbage": len(self.planted),
            "dead_letters_twice": self.dead_letters_twice,
            "recovery_seconds": recovery,
            "status": status.as_dict(),
            "faults": [f"{f.fault.kind}:{f.fault.target}{f.note and ' ' + f.note}" for f in self.fired],
            "problems": problems,
        }
        if problems:
            summary["report"] = report.as_dict()
        return summary

    def dead_letter_problems(self, of_others: int) -> list[str]:
        """Wait (up to 60 s) until every planted record has a dead letter, then account for them."""
        planted = {(p.topic, p.partition, p.offset) for p in self.planted}
        deadline = time.monotonic() + 60
        while True:
            letters = dead_letters(self.deployment.settings, None)
            if planted <= {x.original for x in letters} or time.monotonic() > deadline:
                break
            time.sleep(1)
        unclean = any(f.fault.kind in UNCLEAN and not f.note.startswith("(") for f in self.fired)
        problems, self.dead_letters_twice = dead_letter_accounting(self.planted, letters, unclean, of_others)
        return problems


def dead_letter_accounting(
    planted: list[Planted], letters: list[RunDeadLetter], unclean: bool, of_others: int
) -> tuple[list[str], int]:
    """What is wrong with the dead letters (pure), and how many a replay produced twice: every
    planted record dead-lettered, once per its (topic, partition, offset) unless ``unclean`` (a fault
    that may leave a dead letter produced but not committed fired), with its headers; no dead letter
    of anything else; ``of_others`` (the checker's dead letters naming the run that are none of its
    clients) equal to the planted records that name the run."""
    problems: list[str] = []
    by_place = {(p.topic, p.partition, p.offset): p for p in planted}
    seen = Counter(x.original for x in letters)
    missing = [p.key for place, p in by_place.items() if place not in seen]
    others = [place for place in seen if place not in by_place]
    twice = {by_place[place].key: n for place, n in seen.items() if place in by_place and n > 1}
    if missing:
        problems.append(f"bad records never dead-lettered: {missing}")
    if others:
        sample = [x for x in letters if x.original in others][:5]
        problems.append(f"{len(others)} dead letters of records that were not bad: {sample}")
    if twice and not unclean:
        problems.append(f"bad records dead-lettered more than once without an unclean fault: {twice}")
    for letter in letters:
        for header in ("error_class", "stage", "original_offset"):
            if not letter.headers.get(header):
                problems.append(f"dead letter of {letter.original} without {header}: {letter.headers}")
    naming = sum(1 for p in planted if p.names_run)
    if of_others != naming:
        problems.append(f"{of_others} dead letters of others naming the run, {naming} planted")
    return problems, sum(n - 1 for n in twice.values())
