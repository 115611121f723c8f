"""Loopback ports: pick a free one, wait until one accepts connections."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from kcollect.localstack.errors import StackError

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_free(port: int) -> int:
    """``port`` itself when nothing listens on 127.0.0.1:port; StackError otherwise."""
    if port_open(LOOPBACK, port):
        raise StackError(f"port {port} on {LOOPBACK} is already in use")
    return port


def split_host_port(address: str) -> tuple[str, int]:
    """``"host:port"`` → ``("host", port)``; the first address of a comma-separated list is used."""
    first = address.split(",")[0].strip()
    host, _, port = first.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"not a host:port address: {address!r}")
    return host.strip("[]"), int(port)


def deadline_after(timeout: float) -> float:
    """The monotonic time ``timeout`` seconds from now."""
    return time.monotonic() + timeout


def remaining(deadline: float) -> float:
    """Seconds left until ``deadline`` (never negative)."""
    return max(0.0, deadline - time.monotonic())


def wait_answering(answers: Callable[[float], bool], what: str, timeout: float) -> None:
    """Call ``answers(seconds)`` (at most 2 s each) until it is True; StackError naming ``what`` after
    ``timeout`` seconds."""
    deadline = deadline_after(timeout)
    while not answers(min(remaining(deadline), 2.0)):
        if remaining(deadline) <= 0:
            raise StackError(f"{what} did not answer within {timeout:g} s")
        time.sleep(0.1)
