"""`kcollect simulate`: an HTTP subsystem simulator with deterministic values and injectable faults.

POST any path with the HTTP subsystem's request body (docs/processor.md) answers every metric with
``processors.processor.subsystems.protocol.simulated_value``. Faults, per call, switchable at run time with
``POST /control`` (JSON; ``"subsystem": NAME`` scopes the change to one subsystem, otherwise all):

- ``latency_ms`` / ``jitter_ms``: each call sleeps ``latency_ms`` plus uniform(0, ``jitter_ms``);
  ``slow_rate`` / ``slow_ms``: that share of calls sleeps ``slow_ms`` instead (a long tail);
- ``error_rate``: 500; ``rate_limit_rate``: 429 with ``Retry-After: retry_after_s``;
- ``hang_rate``: no answer for ``hang_seconds`` (then the connection is closed);
- ``garbage_rate``: a 200 with a bad body, one of ``garbage_kinds``: ``invalid_json``, ``html``,
  ``wrong_types``, ``wrong_client``;
- ``outage_seconds``: 503 for every call during the next N seconds (``outage: false`` ends it); a
  subsystem is down while either its own or the global outage lasts.

``GET /control`` shows the settings, ``GET /stats`` the calls by subsystem and outcome,
``POST /reset`` restores the start settings and clears the counts.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from processors.processor.subsystems.simulated import SimulatedSubsystem

DEFAULTS: dict[str, Any] = {
    "latency_ms": 0.0,
    "jitter_ms": 0.0,
    "slow_rate": 0.0,
    "slow_ms": 0.0,
    "error_rate": 0.0,
    "rate_limit_rate": 0.0,
    "retry_after_s": 1.0,
    "hang_rate": 0.0,
    "hang_seconds": 30.0,
    "garbage_rate": 0.0,
    "garbage_kinds": ["invalid_json", "html", "wrong_types", "wrong_client"],
    "outage_until": 0.0,
}


class SimState:
    """The fault settings (global and per subsystem) and the call counts, under one lock."""

    def __init__(self, initial: dict[str, Any] | None = None, seed: int = 1) -> None:
        self._lock = threading.Lock()
        self._initial = {**DEFAULTS, **(initial or {})}
        self.rng = random.Random(seed)
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.common: dict[str, Any] = dict(self._initial)
            self.scoped: dict[str, dict[str, Any]] = {}
            self.stats: Counter[str] = Counter()

    def control(self, change: dict[str, Any]) -> dict[str, Any]:
        change = dict(change)
        scope = change.pop("subsystem", None)
        if "outage_seconds" in change:
            change["outage_until"] = time.time() + float(change.pop("outage_seconds"))
        if change.pop("outage", True) is False:
            change["outage_until"] = 0.0
        unknown = set(change) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
        with self._lock:
            target = self.common if scope is None else self.scoped.setdefault(scope, {})
            target.update(change)
        return self.settings(scope)

    def settings(self, subsystem: str | None) -> dict[str, Any]:
        with self._lock:
            scoped = self.scoped.get(subsystem or "", {})
            outage = max(self.common["outage_until"], scoped.get("outage_until", 0.0))
            return {**self.common, **scoped, "outage_until": outage}

    def count(self, subsystem: str, outcome: str, clients: int) -> None:
        with self._lock:
            self.stats[f"{subsystem}:{outcome}"] += 1
            self.stats[f"{subsystem}:clients"] += clients

    def roll(self, rate: float) -> bool:
        with self._lock:
            return rate > 0 and self.rng.random() < rate

    def choice(self, items: list[str]) -> str:
        with self._lock:
            return self.rng.choice(items)


def answer(body: dict[str, Any]) -> dict[str, Any]:
    """The correct response to a fetch request (values: ``simulated_value``, computed column-wise)."""
    clients = body["clients"]
    requests = [{"run_id": r, "client_id": c} for r, c in clients]
    return {
        "clients": [c for _, c in clients],
        "values": SimulatedSubsystem("sim", body["metrics"]).fetch(requests),
    }


def garbage(kind: str, good: dict[str, Any]) -> bytes:
    if kind == "invalid_json":
        return b'{"clients": [1, 2'
    if kind == "html":
        return b"<html><body><h1>Service Temporarily Unavailable</h1></body></html>"
    if kind == "wrong_types":
        return orjson.dumps({**good, "values": {m: ["x"] * len(v) for m, v in good["values"].items()}})
    return orjson.dumps({**good, "clients": [*good["clients"][1:], "someone-else"]})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SimServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json", **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key.replace("_", "-"), value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        state = self.server.state
        if self.path.startswith("/stats"):
            self._send(200, orjson.dumps(dict(state.stats)))
        else:
            self._send(200, orjson.dumps({"common": state.common, "scoped": state.scoped}))

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        state = self.server.state
        try:
            body = orjson.loads(raw or b"{}")
            if self.path.startswith("/control"):
                self._send(200, orjson.dumps(state.control(body)))
            elif self.path.startswith("/reset"):
                state.reset()
                self._send(200, b"{}")
            else:
                self._fetch(body)
        except (ValueError, KeyError, TypeError) as exc:
            self._send(400, orjson.dumps({"error": str(exc)}))

    def _fetch(self, body: dict[str, Any]) -> None:
        state = self.server.state
        name = str(body.get("subsystem", ""))
        conf = state.settings(name)
        clients = len(body["clients"])
        if conf["outage_until"] > time.time():
            state.count(name, "outage", clients)
            return self._send(503, b'{"error":"outage"}', Retry_After="1")
        delay = conf["slow_ms"] if state.roll(conf["slow_rate"]) else conf["latency_ms"]
        delay += state.rng.uniform(0, conf["jitter_ms"]) if conf["jitter_ms"] else 0.0
        if delay:
            time.sleep(delay / 1000)
        if state.roll(conf["hang_rate"]):
            state.count(name, "hang", clients)
            time.sleep(conf["hang_seconds"])
            self.close_connection = True
            return None
        if state.roll(conf["error_rate"]):
            state.count(name, "error", clients)
            return self._send(500, b'{"error":"injected"}')
        if state.roll(conf["rate_limit_rate"]):
            state.count(name, "rate_limited", clients)
            return self._send(429, b'{"error":"slow down"}', Retry_After=str(conf["retry_after_s"]))
        good = answer(body)
        if state.roll(conf["garbage_rate"]):
            kind = state.choice(list(conf["garbage_kinds"]))
            state.count(name, f"garbage_{kind}", clients)
            ctype = "text/html" if kind == "html" else "application/json"
            return self._send(200, garbage(kind, good), ctype)
        state.count(name, "ok", clients)
        return self._send(200, orjson.dumps(good))


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], state: SimState) -> None:
        super().__init__(address, Handler)
        self.state = state


def serve(host: str, port: int, state: SimState) -> SimServer:
    """A started server (its own thread); ``shutdown()`` stops it."""
    server = SimServer((host, port), state)
    threading.Thread(target=server.serve_forever, name="kcollect-simulate", daemon=True).start()
    return server
