"""The ops endpoint: GET /metrics (Prometheus), /healthz, /readyz (every source healthy), /status, /logs."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from pipelined.http.limits import KEEPALIVE_TIMEOUT, GuardedTCPSite
from pipelined.http.log_stream import stream_logs
from pipelined.observe.log_store import LogStore


class HttpServer:
    """A small aiohttp server; `readiness` returns (start-up finished, source -> healthy, state store ok)."""

    def __init__(
        self,
        host: str,
        port: int,
        registry: CollectorRegistry,
        readiness: Callable[[], tuple[bool, Mapping[str, bool], bool]],
        status: Callable[[], Awaitable[Mapping[str, Any]]] | None = None,
        before_scrape: Callable[[], Awaitable[None]] | None = None,
        log_store: LogStore | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._registry = registry
        self._readiness = readiness
        # The daemon's /status document (app/status.py), and what refreshes gauges read from the state.
        self._status = status
        self._before_scrape = before_scrape
        self._log_store = log_store
        # Set at stop: `pipelined logs --follow` streams end instead of holding the shutdown up.
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = port

    async def start(self) -> None:
        """Bind and serve; `port` holds the real port afterwards (useful with port 0)."""
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        if self._status is not None:
            app.router.add_get("/status", self._status_document)
        if self._log_store is not None:
            app.router.add_get("/logs/{function}", self._logs)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, keepalive_timeout=KEEPALIVE_TIMEOUT
        )
        await self._runner.setup()
        site = GuardedTCPSite(self._runner, self._host, self._port)
        await site.start()
        self.port = site.bound_port

    async def stop(self) -> None:
        """Stop serving."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, _: web.Request) -> web.Response:
        if self._before_scrape is not None:
            await self._before_scrape()
        body = generate_latest(self._registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    async def _readyz(self, _: web.Request) -> web.Response:
        started, health, state_ok = self._readiness()
        sources = dict(health)
        ready = started and state_ok and all(sources.values())
        body = json.dumps({"ready": ready, "sources": sources, "state": state_ok}, sort_keys=True) + "\n"
        return web.Response(text=body, status=200 if ready else 503, content_type="application/json")

    async def _status_document(self, _: web.Request) -> web.Response:
        assert self._status is not None
        document = await self._status()
        return web.Response(text=json.dumps(document, indent=2) + "\n", content_type="application/json")

    async def _logs(self, request: web.Request) -> web.StreamResponse:
        assert self._log_store is not None
        return await stream_logs(request, self._log_store, self._stopping)
