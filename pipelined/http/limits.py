"""A TCP site that bounds what clients can hold: open connections, and the time to send request headers.

aiohttp serves every connection it accepts for as long as the client keeps it; 1,100 idle connections
exhaust a daemon's file descriptors (systemd's default limit is 1024). A guarded site closes a
connection beyond `max_connections` at once, and one that has not sent a whole request head within
`header_timeout` seconds (a slow or silent client).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

# Requests are small and answered at once: idle keep-alive connections go after a few seconds.
KEEPALIVE_TIMEOUT = 5.0


class _Guarded(asyncio.Protocol):
    """Wraps aiohttp's protocol for one connection: counts it, and enforces the header timeout."""

    def __init__(self, site: GuardedTCPSite, inner: Any) -> None:
        self._site = site
        self._inner = inner
        self._tail = b""
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._site.open_connections += 1
        self._timer = asyncio.get_running_loop().call_later(self._site.header_timeout, self._too_slow)
        self._inner.connection_made(transport)

    def _too_slow(self) -> None:
        self._site.timed_out += 1
        if self._transport is not None:
            self._transport.close()

    def data_received(self, data: bytes) -> None:
        if self._timer is not None:
            # The first request's head ends with an empty line; keep-alive idleness is aiohttp's job.
            seen = self._tail + data
            if b"\r\n\r\n" in seen:
                self._timer.cancel()
                self._timer = None
            else:
                self._tail = seen[-3:]
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        result: bool | None = self._inner.eof_received()
        return result

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._site.open_connections -= 1
        if self._timer is not None:
            self._timer.cancel()
        self._inner.connection_lost(exc)


class _Refused(asyncio.Protocol):
    """A connection over the limit: closed as soon as it is accepted."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.close()


class GuardedTCPSite(web.TCPSite):
    """web.TCPSite with a connection limit and a request-head timeout."""

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        max_connections: int = 256,
        header_timeout: float = 10.0,
    ) -> None:
        super().__init__(runner, host, port)
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.open_connections = 0
        self.refused = 0
        self.timed_out = 0

    def _protocol(self) -> asyncio.Protocol:
        if self.open_connections >= self.max_connections:
            self.refused += 1
            return _Refused()
        server = self._runner.server
        assert server is not None
        return _Guarded(self, server())

    async def start(self) -> None:
        # As web.TCPSite.start, with the guarded protocol factory.
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            self._protocol,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port

    @property
    def bound_port(self) -> int:
        """The port listened on (the real one when 0 was asked for)."""
        assert self._bound_port is not None, "start() first"
        return self._bound_port
