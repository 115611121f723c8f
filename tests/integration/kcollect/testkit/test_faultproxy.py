"""The fault proxy against a local echo server (loopback sockets only): every mode, switched at run time."""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from kcollect.testkit.faultproxy import FaultProxy


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with FaultProxy(server.server_address[1]) as p:
        yield p
    server.shutdown()
    server.server_close()


def _connect(p: FaultProxy) -> socket.socket:
    return socket.create_connection(("127.0.0.1", p.port), timeout=2)


def _echo(sock: socket.socket, data: bytes = b"ping") -> bytes:
    sock.sendall(data)
    return sock.recv(100)


def test_pass_and_delay(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        assert _echo(sock) == b"ping"
        proxy.set_mode("delay", delay_ms=150)
        start = time.monotonic()
        assert _echo(sock) == b"ping"
        assert time.monotonic() - start >= 0.3  # both directions wait


def test_drop_closes_new_connections_only(proxy: FaultProxy) -> None:
    with _connect(proxy) as old:
        assert _echo(old) == b"ping"
        proxy.set_mode("drop")
        with _connect(proxy) as new:
            new.sendall(b"x")
            # closed by the proxy: an orderly close, or a reset when our byte reached a closed socket
            with contextlib.suppress(ConnectionResetError):
                assert new.recv(100) == b""
        assert _echo(old) == b"ping"


def test_reset_aborts_open_connections(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        assert _echo(sock) == b"ping"
        proxy.set_mode("reset")
        with pytest.raises((ConnectionResetError, BrokenPipeError)):
            for _ in range(3):
                if _echo(sock) == b"":
                    raise ConnectionResetError
                time.sleep(0.05)
        proxy.set_mode("pass")
        with _connect(proxy) as fresh:
            assert _echo(fresh) == b"ping"


def test_blackhole_holds_bytes_until_pass(proxy: FaultProxy) -> None:
    with _connect(proxy) as sock:
        assert _echo(sock) == b"ping"
        proxy.set_mode("blackhole")
        sock.sendall(b"held")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(100)
        proxy.set_mode("pass")
        sock.settimeout(2)
        assert sock.recv(100) == b"held"
        with _connect(proxy) as fresh:
            assert _echo(fresh) == b"ping"


def test_unknown_mode_is_refused(proxy: FaultProxy) -> None:
    with pytest.raises(ValueError):
        proxy.set_mode("flaky")  # type: ignore[arg-type]
