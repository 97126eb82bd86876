"""Shared by the browser tests of the live client (tests/test_live_client*.py):
the app server on Redis, and a TCP proxy that can cut connections."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import typing as t
from pathlib import Path

import redis

from support import free_port, wait_for_port

__all__ = ["Proxy", "Server"]

ROOT = Path(__file__).parent.parent



class Server:
    """uvicorn serving tests/servers/live_client_app.py, on one port across restarts;
    ``config`` is given to the app as environment variables (``BROADCAST_HISTORY``...)."""

    def __init__(self, url: str, namespace: str, **config: str) -> None:
        self.port = free_port()
        self.env = {
            **os.environ, "PYTHONPATH": f"{ROOT / 'tests' / 'servers'}:{ROOT / 'src'}",
            "BROADCAST_URL": url, "BROADCAST_NAMESPACE": namespace, **config,
        }
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "--port", str(self.port), "live_client_app:app"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port, self.proc)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def forget(self) -> None:
        """Delete the keys of the app's namespace."""
        client = redis.Redis.from_url(self.env["BROADCAST_URL"])
        try:
            keys = list(client.scan_iter(f"tether:{self.env['BROADCAST_NAMESPACE']}:*"))
            if keys:
                client.delete(*keys)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.kill()


class Proxy:
    """A TCP forwarder from an ephemeral loopback port to ``target_port``, on a
    loop of its own thread. :meth:`cut` drops every open connection (a reset,
    or a plain close); while :attr:`refusing`, a new connection is reset as
    soon as it is accepted."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.refusing = False
        #: Connections reset because the proxy was refusing, and cut by :meth:`cut`.
        self.refused = 0
        self.cut_count = 0
        self._open: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="test-proxy", daemon=True)
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port: int = self._server.sockets[0].getsockname()[1]

    def _call(self, coro: t.Coroutine[t.Any, t.Any, t.Any]) -> t.Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.refusing:
            self.refused += 1
            _drop(writer, reset=True)
            return
        try:
            upstream_reader, upstream = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            _drop(writer, reset=True)
            return
        pair = (writer, upstream)
        self._open.add(pair)
        try:
            await asyncio.gather(_pipe(reader, upstream), _pipe(upstream_reader, writer))
        finally:
            self._open.discard(pair)

    def cut(self, *, reset: bool) -> int:
        """Drop every open connection, both of its ends: with a reset (RST), or
        closed (FIN); how many it dropped."""

        async def cut_all() -> int:
            pairs = list(self._open)
            self._open.clear()
            for pair in pairs:
                for writer in pair:
                    _drop(writer, reset=reset)
            return len(pairs)

        count = t.cast(int, self._call(cut_all()))
        self.cut_count += count
        return count

    def wait_for_refusal(self, before: int, timeout: float = 30.0) -> None:
        """Wait until a connection was refused since ``before`` refusals."""
        deadline = time.monotonic() + timeout
        while self.refused <= before:
            if time.monotonic() > deadline:
                raise AssertionError("the client did not try to reconnect")
            time.sleep(0.02)

    def stop(self) -> None:
        async def close_all() -> None:
            self._server.close()
            for pair in list(self._open):
                for writer in pair:
                    _drop(writer, reset=True)

        self._call(close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()


def _drop(writer: asyncio.StreamWriter, *, reset: bool) -> None:
    if reset:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            try:  # linger on, for 0 s: close sends a RST, not a FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        writer.transport.abort()
    else:
        writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy ``reader`` to ``writer`` until either end goes; then close ``writer``."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()
