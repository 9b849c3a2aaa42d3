"""A TCP proxy in front of the AWS-protocol server that can pass, hang (accept and never answer) or refuse."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from typing import Any

from tests.support import free_port


class FaultyProxy:
    """Runs on an event loop of its own thread; the daemon under test is pointed at `url`.

    Not on the test's loop: a daemon fixture's teardown blocks that loop while it waits for the daemon
    to stop, and the daemon's shutdown (settling its last batch) still talks to the endpoint. On the
    test's loop the proxy froze then, and the daemon waited out its whole shutdown budget.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.mode = "pass"
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, name="faulty-proxy", daemon=True).start()

    async def _on_own_loop(self, call: Coroutine[Any, Any, None]) -> None:
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(call, self._loop))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        await self._on_own_loop(self._listen())

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port, reuse_address=True)

    async def set_mode(self, mode: str) -> None:
        """pass | hang (connections accepted, requests read, never answered) | refuse (not listening)."""
        await self._on_own_loop(self._set_mode(mode))

    async def _set_mode(self, mode: str) -> None:
        self.mode = mode
        for writer in list(self._links):
            writer.transport.abort()  # calls in progress see the fault too
        self._links.clear()
        if mode == "refuse" and self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        elif mode != "refuse" and self._server is None:
            await self._listen()

    async def stop(self) -> None:
        await self.set_mode("refuse")

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._links.add(writer)
        if self.mode == "hang":
            with contextlib.suppress(ConnectionError, OSError):
                while await reader.read(65536):
                    pass
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._links.add(up_writer)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
