"""A loopback TCP proxy whose faults are switched at run time: the network part of the fault drills.

``FaultProxy(target_port).start()`` listens on 127.0.0.1 (a free port unless given) and forwards every
connection to the target. ``set_mode`` changes what happens next, from any thread:

- ``pass``: forward both ways;
- ``delay``: forward each chunk after ``delay_ms`` (both ways);
- ``drop``: accept new connections and close them at once (open ones keep working);
- ``reset``: abort every open connection with a TCP RST (``SO_LINGER`` 0), and new ones the same way;
- ``blackhole``: accept, never forward, never answer (open connections stop forwarding too).

For Kafka the broker must advertise the proxy's address, or clients reconnect to the broker directly
after the bootstrap (``kcollect.localstack.persistent.start_broker(advertised_port=proxy.port)``).
The proxy runs its own asyncio loop in a daemon thread; ``stop`` closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from concurrent.futures import Future
from typing import Literal

from kcollect.localstack.ports import LOOPBACK, free_port

Mode = Literal["pass", "delay", "drop", "reset", "blackhole"]
MODES: tuple[Mode, ...] = ("pass", "delay", "drop", "reset", "blackhole")
CHUNK = 65536


def _abort(writer: asyncio.StreamWriter) -> None:
    """Close with RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    """One listening port forwarding to ``target_host:target_port``, with switchable faults."""

    def __init__(self, target_port: int, target_host: str = LOOPBACK, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or free_port()
        self.mode: Mode = "pass"
        self.delay_ms = 0.0
        self.accepted = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._server: asyncio.AbstractServer | None = None
        self._open: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter | None]] = set()

    @property
    def address(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    def start(self) -> FaultProxy:
        self._thread.start()
        self._call(self._listen()).result(10)
        return self

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._close_all()).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def set_mode(self, mode: Mode, delay_ms: float = 0.0) -> None:
        """Switch the fault; ``reset`` also aborts every open connection before returning."""
        if mode not in MODES:
            raise ValueError(f"unknown proxy mode {mode!r} (known: {', '.join(MODES)})")
        self.delay_ms = delay_ms
        self.mode = mode
        if mode == "reset":
            self._call(self._reset_open()).result(10)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _call(self, coro: object) -> Future[None]:
        return asyncio.run_coroutine_threadsafe(coro, self._loop)  # type: ignore[arg-type]

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._handle, LOOPBACK, self.port, reuse_address=True)

    async def _close_all(self) -> None:
        if self._server is not None:
            self._server.close()
        await self._reset_open()

    async def _reset_open(self) -> None:
        for client, upstream in list(self._open):
            _abort(client)
            if upstream is not None:
                _abort(upstream)
        self._open.clear()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        mode = self.mode
        if mode == "drop":
            client_w.close()
            return
        if mode == "reset":
            _abort(client_w)
            return
        if mode == "blackhole":
            pair: tuple[asyncio.StreamWriter, asyncio.StreamWriter | None] = (client_w, None)
            self._open.add(pair)
            with contextlib.suppress(Exception):
                while await client_r.read(CHUNK):
                    pass
            self._open.discard(pair)
            client_w.close()
            return
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self.target)
        except OSError:
            _abort(client_w)
            return
        pair = (client_w, upstream_w)
        self._open.add(pair)
        try:
            await asyncio.gather(self._pump(client_r, upstream_w), self._pump(upstream_r, client_w))
        finally:
            self._open.discard(pair)
            for writer in pair:
                if writer is not None:
                    writer.close()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(CHUNK):
                while self.mode == "blackhole":
                    await asyncio.sleep(0.05)  # hold the bytes: nothing passes while blackholed
                if self.mode == "delay" and self.delay_ms > 0:
                    await asyncio.sleep(self.delay_ms / 1000)
                writer.write(data)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                if writer.can_write_eof():
                    writer.write_eof()
