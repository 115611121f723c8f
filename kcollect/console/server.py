"""The console's HTTP server (stdlib ``ThreadingHTTPServer``): pages, their JSON twins, and actions.

Routes: ``/healthz``, ``/readyz`` (the lag sampler measured), ``/metrics``; ``/runs``
(``?schedule=&state=``), ``/runs/<id>``, ``/lag``, ``/schedules``; the same under ``/api/...`` as JSON.
Actions are JSON POSTs: ``/api/runs/<id>/replay`` (``stage``, ``error_class``, ``include_stored``,
``dry_run``), ``/api/runs/<id>/verify``, ``/api/schedules/<name>/pause|resume``.

Safe by default:
- an action needs the token of ``KCOLLECT_CONSOLE_TOKEN`` (header ``X-Kcollect-Token``) whenever one is
  set, and one must be set when the console listens beyond loopback: without it actions are refused;
- cross-site requests are refused: an action needs ``Content-Type: application/json`` (no HTML form
  can send it cross-site without a preflight), ``Sec-Fetch-Site`` same-origin or none when the browser
  sends it, and an ``Origin`` equal to the ``Host`` when present;
- pages render no settings and no secret; text from the cluster is escaped (``pages.esc``) and messages
  pass ``streams.observability.logs.redact``; every action is logged (who, what, outcome).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from kcollect.console import pages
from kcollect.console.data import ConsoleData
from streams.observability.logs import redact
from streams.runs.status import RunState

log = logging.getLogger("kcollect.console")
MAX_BODY = 64 * 1024
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
RUN = re.compile(r"^/(api/)?runs/(?P<run>[^/]+)$")
RUN_ACTION = re.compile(r"^/api/runs/(?P<run>[^/]+)/(?P<action>replay|verify)$")
SCHEDULE_ACTION = re.compile(r"^/api/schedules/(?P<name>[^/]+)/(?P<action>pause|resume)$")


class Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status


def is_loopback(addr: str) -> bool:
    if addr == "localhost":
        return True
    try:
        return ipaddress.ip_address(addr).is_loopback
    except ValueError:
        return False


class ActionGuard:
    """Who may act: the token rule and the cross-site checks (pure, unit-tested)."""

    def __init__(self, token: str | None, listen_addr: str) -> None:
        self.token = token or None
        self.loopback = is_loopback(listen_addr)
        self.listen_addr = listen_addr

    def check(self, headers: Any) -> None:
        """Raise ``Refused`` unless the request may run an action."""
        content_type = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/json":
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "actions take Content-Type: application/json")
        site = headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise Refused(HTTPStatus.FORBIDDEN, f"cross-site request refused (Sec-Fetch-Site: {site})")
        origin = headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != (headers.get("Host") or ""):
            raise Refused(HTTPStatus.FORBIDDEN, "cross-site request refused (Origin is not this console)")
        if self.token is None:
            if not self.loopback:
                raise Refused(
                    HTTPStatus.FORBIDDEN,
                    f"actions are off: the console listens on {self.listen_addr} "
                    "and KCOLLECT_CONSOLE_TOKEN is not set",
                )
            return
        given = headers.get("X-Kcollect-Token") or ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            raise Refused(HTTPStatus.UNAUTHORIZED, "a valid token is needed (X-Kcollect-Token)")


def make_handler(data: ConsoleData, guard: ActionGuard) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "kcollect-console"

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            path, query = parts.path.rstrip("/") or "/", parse_qs(parts.query)
            if path == "/":
                return self._send(HTTPStatus.FOUND, b"", "text/plain", {"Location": "/runs"})
            if path in ("/healthz", "/readyz", "/metrics"):
                return self._probe(path)
            wants_json = path.startswith("/api/")
            try:
                view = self._view(path.removeprefix("/api"), query)
            except Refused as exc:
                return self._error(exc.status, str(exc), wants_json)
            except Exception as exc:
                log.warning("console page %s failed: %s", path, exc)
                return self._error(HTTPStatus.SERVICE_UNAVAILABLE, _message(exc), wants_json)
            content, current, title, render, live = view
            if wants_json:
                return self._json(HTTPStatus.OK, content)
            main = render(content)
            if self.headers.get("X-Kcollect-Partial"):
                return self._send(HTTPStatus.OK, main.encode(), "text/html; charset=utf-8")
            self._send(
                HTTPStatus.OK, pages.page(current, title, main, live).encode(), "text/html; charset=utf-8"
            )

        def _view(
            self, path: str, query: dict[str, list[str]]
        ) -> tuple[dict[str, Any], str, str, Callable[[dict[str, Any]], str], bool]:
            first = {k: v[0] for k, v in query.items() if v and v[0]}
            if path == "/runs":
                runs = data.runs(first.get("schedule"), _run_state(first.get("state")))
                return runs, "runs", "Runs", pages.runs_main, True
            if path == "/lag":
                return data.lag.view(), "lag", "Lag", pages.lag_main, True
            if path == "/schedules":
                return data.schedules(), "schedules", "Schedules", pages.schedules_main, False
            match = RUN.match(path)
            if match:
                run_id = unquote(match.group("run"))
                return data.run(run_id), "runs", f"Run {run_id}", pages.run_main, True
            raise Refused(HTTPStatus.NOT_FOUND, f"no page {path}")

        def do_POST(self) -> None:
            path = urlsplit(self.path).path
            who = self.client_address[0]
            try:
                guard.check(self.headers)
                body = self._body()
                action, result = self._act(path, body)
            except Refused as exc:
                log.warning("console action %s by %s refused: %s", path, who, exc)
                return self._json(exc.status, {"error": str(exc)})
            except Exception as exc:
                log.warning("console action %s by %s failed: %s", path, who, _message(exc))
                return self._json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": _message(exc)})
            log.info("console action %s by %s: %s", action, who, json.dumps(result, default=str)[:500])
            self._json(HTTPStatus.OK, result)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request body too large")
            raw = self.rfile.read(length) if length else b"{}"
            try:
                body = json.loads(raw or b"{}")
            except json.JSONDecodeError:
                raise Refused(HTTPStatus.BAD_REQUEST, "the body is not JSON") from None
            if not isinstance(body, dict):
                raise Refused(HTTPStatus.BAD_REQUEST, "the body must be a JSON object")
            return body

        def _act(self, path: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
            match = RUN_ACTION.match(path)
            if match:
                run_id = unquote(match.group("run"))
                if match.group("action") == "verify":
                    return f"verify {run_id}", data.verify(run_id)
                options = {k: _text(body.get(k)) for k in ("stage", "error_class")}
                dry_run = body.get("dry_run", True) is not False
                include_stored = body.get("include_stored") is True
                what = f"replay {run_id} {options} dry_run={dry_run} include_stored={include_stored}"
                return what, data.replay(
                    run_id, options["stage"], options["error_class"], dry_run, include_stored
                )
            match = SCHEDULE_ACTION.match(path)
            if match:
                name, paused = unquote(match.group("name")), match.group("action") == "pause"
                return f"{match.group('action')} {name}", data.pause(name, paused)
            raise Refused(HTTPStatus.NOT_FOUND, f"no action {path}")

        def _probe(self, path: str) -> None:
            """/healthz: the server answers; /readyz: the lag sampler measured; /metrics: the registry."""
            if path == "/metrics":
                return self._send(HTTPStatus.OK, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            if path == "/healthz":
                return self._json(HTTPStatus.OK, {"alive": True})
            view = data.lag.view()
            ready = not view.get("error")
            self._json(
                HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE,
                {"ready": ready, "error": view.get("error")},
            )

        def _error(self, status: HTTPStatus, message: str, wants_json: bool) -> None:
            if wants_json:
                return self._json(status, {"error": message})
            main = f'<div class="msg err">{pages.esc(message)}</div>'
            self._send(status, pages.page("", "error", main).encode(), "text/html; charset=utf-8")

        def _json(self, status: HTTPStatus, value: Any) -> None:
            self._send(status, json.dumps(value, default=str).encode(), "application/json")

        def _send(
            self, status: HTTPStatus, body: bytes, content_type: str, extra: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            for name, value in {**SECURITY_HEADERS, **(extra or {}), "Content-Type": content_type}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", self.address_string(), format % args)

    return Handler


def _run_state(value: str | None) -> RunState | None:
    try:
        return None if value is None else RunState(value)
    except ValueError:
        known = ", ".join(state.value for state in RunState)
        raise Refused(HTTPStatus.BAD_REQUEST, f"no run state {value!r} (one of {known})") from None


def _text(value: Any) -> str | None:
    return str(value) if isinstance(value, str) and value else None


def _message(exc: BaseException) -> str:
    return redact(" ".join(str(exc).split()) or type(exc).__name__)


def serve(data: ConsoleData, addr: str, port: int, token: str | None) -> ThreadingHTTPServer:
    """Listen on ``addr:port`` (0: any free port); call ``serve_forever`` on the result."""
    server = ThreadingHTTPServer((addr, port), make_handler(data, ActionGuard(token, addr)))
    server.daemon_threads = True
    return server
