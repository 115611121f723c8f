"""bench/enqueue: `kcollect enqueue` of 700k clients from a range and from a file, beside a plain
confluent-kafka produce loop of the same records, in the same run, on the same broker.

Each case is its own process; its peak RSS comes from ``os.wait4`` (that child's rusage). Enqueue's
rate is its own ``seconds`` (first request produced to the last delivery confirmed); the plain loop
times the same span: produce every record (same keys, same bytes, same producer settings as enqueue's:
idempotent, acks=all, lz4, reports of failed deliveries only) and flush, with no validation, no
de-duplication, no manifest and no progress.
Each case runs REPEAT times, interleaved; the table shows the median and the range.

``--scale``: CLIENTS (default 7,000,000) distinct ids from a file, 14-character ids and 36-character
UUIDs, each enqueued by this tree's code and by the code at OLD_REF (``git archive``, default ``main``;
its children import from that copy), each once, old first for one kind and new first for the other:
peak RSS and rate side by side, with the ratios new / old from the same run.
Usage: python -m bench.enqueue [CLIENTS [REPEAT]]   (the configured or the local stack; fresh topics)
       python -m bench.enqueue --scale [CLIENTS [OLD_REF]]
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.machine import machine_line

PLAIN_LOOP = """
import sys, time
from confluent_kafka import Producer
from schemas.codec import request_encoder
from streams.settings.librdkafka import producer_config
from streams.settings.model import load_settings
from streams.kafka.clients import make_producer
topic, count, kind = sys.argv[1], int(sys.argv[2]), sys.argv[3]
ids = (f"client-{i:07d}" for i in range(count)) if kind == "file" else map(str, range(count))
failed = []
extra = {"queue.buffering.max.messages": 100000, "delivery.report.only.error": True}
producer = make_producer(load_settings(), on_delivery=lambda e, m: failed.append(e), **extra)
producer.produce(topic, b"warm-up", b"warm-up")  # connected, producer id assigned: as enqueue's is
producer.flush(30)
encode = request_encoder("bench-plain", 1_700_000_000_000)
started = time.monotonic()
for cid in ids:
    while True:
        try:
            producer.produce(topic, encode(cid), cid)
            break
        except BufferError:
            producer.poll(0.05)
left = producer.flush(60) + len(failed)
print(time.monotonic() - started, left)
"""


def run_child(args: list[str], env: dict[str, str], cwd: str | None = None) -> tuple[str, float, float]:
    """Run a child; returns (stdout, wall seconds, peak RSS MB of that child)."""
    started = time.monotonic()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=err, cwd=cwd)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"{args[:5]} failed ({proc.returncode}): {err.read()[-2000:].decode()}")
        return out.read().decode(), time.monotonic() - started, usage.ru_maxrss / 1024


def stack_env(prefix: str) -> dict[str, str]:
    """The environment for the children: the configured addresses, or the local stack's (started if
    needed). The parent imports nothing heavy, so that a child's peak RSS (which counts the forked
    parent until exec) is its own."""
    env = dict(os.environ) | {"KCOLLECT_TOPIC_PREFIX": prefix, "PYTHONPATH": str(Path.cwd())}
    if not env.get("KCOLLECT_BOOTSTRAP_SERVERS"):
        cli = [sys.executable, "-m", "kcollect", "stack", "up", "--json"]
        stack = json.loads(subprocess.run(cli, env=env, capture_output=True, check=True, text=True).stdout)
        env |= {"KCOLLECT_BOOTSTRAP_SERVERS": stack["bootstrap_servers"]}
        env |= {"KCOLLECT_CLICKHOUSE_URL": stack["clickhouse_url"]}
    subprocess.run(
        [sys.executable, "-m", "kcollect", "topics", "create"], env=env, check=True, capture_output=True
    )
    return env


def plain_loop(env: dict[str, str], topic: str, clients: int, kind: str) -> dict[str, float]:
    out, _, rss = run_child([sys.executable, "-c", PLAIN_LOOP, topic, str(clients), kind], env)
    seconds, left = out.split()
    assert int(left) == 0, "the plain loop left records undelivered"
    return {"seconds": float(seconds), "rss": rss}


def enqueue(
    env: dict[str, str], clients: int, kind: str, source: list[str], cwd: str | None = None
) -> dict[str, float]:
    run_id = f"bench-{kind}-{time.time_ns()}"
    command = [sys.executable, "-m", "kcollect", "--log-level", "WARNING", "enqueue", "--run-id", run_id]
    out, wall, rss = run_child([*command, *source, "--json", "--no-progress"], env, cwd)
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["enqueued"] == clients, summary
    return {"seconds": float(summary["seconds"]), "rss": rss, "wall": wall}


def write_ids(path: Path, clients: int, kind: str) -> None:
    """``clients`` distinct ids, one per line: ``client-0000000``... or random UUIDs (seeded)."""
    rng = random.Random(21)
    with path.open("w") as out:
        for start in range(0, clients, 10000):
            stop = min(start + 10000, clients)
            if kind == "uuid":
                out.write("".join(f"{uuid.UUID(int=rng.getrandbits(128))}\n" for _ in range(start, stop)))
            else:
                out.write("".join(f"client-{i:07d}\n" for i in range(start, stop)))


def old_tree(ref: str, into: Path) -> tuple[str, str]:
    """The code at ``ref`` unpacked into ``into``: (its commit, the folder its children run from)."""
    commit = subprocess.run(["git", "rev-parse", ref], capture_output=True, check=True, text=True).stdout
    archive = subprocess.run(["git", "archive", commit.strip()], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return commit.strip(), str(into)


def imported_from(env: dict[str, str], cwd: str) -> str:
    """Where a child run like the enqueue children finds the ``kcollect`` package."""
    check = [sys.executable, "-c", "import kcollect; print(kcollect.__file__)"]
    return subprocess.run(check, env=env, cwd=cwd, capture_output=True, check=True, text=True).stdout.strip()


def scale(clients: int, old_ref: str) -> None:
    prefix = f"bench-enqueue-scale-{int(time.time())}."
    env = stack_env(prefix)
    new_commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        old_dir = Path(tmp) / "old"
        old_dir.mkdir()
        old_commit, old_cwd = old_tree(old_ref, old_dir)
        trees = {"new": (str(Path.cwd()), env), "old": (old_cwd, env | {"PYTHONPATH": old_cwd})}
        for name, (cwd, tree_env) in trees.items():
            found = imported_from(tree_env, cwd)
            assert found.startswith(cwd), f"the {name} code imports {found}, not from {cwd}"
        for kind, order in (("14-character", ("old", "new")), ("uuid", ("new", "old"))):
            id_file = Path(tmp) / f"{kind}.txt"
            write_ids(id_file, clients, kind)
            for name in order:  # the broker's storage grows: each side goes first once
                cwd, tree_env = trees[name]
                results[f"{kind} ids, {name}"] = enqueue(
                    tree_env, clients, kind, ["--from-file", str(id_file)], cwd
                )
            id_file.unlink()
    print(f"machine: {machine_line()}")
    print(f"new: {new_commit} (this tree); old: {old_ref} = {old_commit}\n")
    print(scale_table(results, clients))


def scale_table(results: dict[str, dict[str, float]], clients: int) -> str:
    lines = [
        "| case | requests | seconds | requests/s | wall s | peak RSS MB | new / old: rate, RSS |",
        "|---|---|---|---|---|---|---|",
    ]
    for case, run in sorted(results.items(), key=lambda item: (item[0].split(",")[0], item[0][-3:] == "new")):
        ratio = ""
        if case.endswith(", new"):
            old = results[case.replace(", new", ", old")]
            ratio = f"{old['seconds'] / run['seconds']:.2f}, {run['rss'] / old['rss']:.2f}"
        lines.append(
            f"| {case} | {clients:,} | {run['seconds']:.1f} | {clients / run['seconds']:,.0f} "
            f"| {run['wall']:.1f} | {run['rss']:.0f} | {ratio} |"
        )
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--scale"]:
        scale(
            int(sys.argv[2]) if len(sys.argv) > 2 else 7_000_000, sys.argv[3] if len(sys.argv) > 3 else "main"
        )
        return
    clients = int(sys.argv[1]) if len(sys.argv) > 1 else 700_000
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    prefix = f"bench-enqueue-{int(time.time())}."
    env = stack_env(prefix)
    topic = f"{prefix}requests"
    results: dict[str, list[dict[str, float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        id_file = Path(tmp) / "ids.txt"
        with id_file.open("w") as out:
            for start in range(0, clients, 10000):
                out.write("".join(f"client-{i:07d}\n" for i in range(start, min(start + 10000, clients))))
        for _ in range(repeat):  # interleaved, so that a busy moment hits both sides
            for kind, source in (
                ("range", ["--clients", str(clients)]),
                ("file", ["--from-file", str(id_file)]),
            ):
                results.setdefault(f"plain produce loop ({kind} ids)", []).append(
                    plain_loop(env, topic, clients, kind)
                )
                results.setdefault(f"kcollect enqueue ({kind})", []).append(
                    enqueue(env, clients, kind, source)
                )
    print(f"machine: {machine_line()}\n")
    print(table(results, clients))


def table(results: dict[str, list[dict[str, float]]], clients: int) -> str:
    """Median requests/s per case (min-max beside it), its ratio to the plain loop, the largest RSS."""
    lines = [
        "| case | requests | runs | requests/s (median) | min-max | vs plain loop | peak RSS MB |",
        "|---|---|---|---|---|---|---|",
    ]
    plain_rate = 0.0
    for case, runs in results.items():
        rates = sorted(clients / run["seconds"] for run in runs)
        rate = statistics.median(rates)
        if case.startswith("plain"):
            plain_rate = rate
        lines.append(
            f"| {case} | {clients:,} | {len(runs)} | {rate:,.0f} | {rates[0]:,.0f}-{rates[-1]:,.0f} "
            f"| {rate / plain_rate:.2f} | {max(run['rss'] for run in runs):.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
