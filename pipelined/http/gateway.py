"""The gateway: one aiohttp listener on `gateway.listen` serving every api, http_api and function_url route.

Each request is matched against the route table (core/routes.py), turned into the event its kind of API
sends (core/apigw_events.py), invoked synchronously through the invoke service, and the return value
mapped back to HTTP (core/apigw_responses.py). A reload swaps the whole route state at once: a request
in flight finishes on the route it matched.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from pipelined.config import GatewayConfig
from pipelined.core.apigw_events import ApiContext, HttpRequest, api_id, http_event, rest_event
from pipelined.core.apigw_responses import (
    GatewayErrorKind,
    HttpReply,
    MalformedResponseError,
    gateway_error,
    http_reply,
    rest_reply,
)
from pipelined.core.identity import new_request_id
from pipelined.core.routes import ApiKind, Route, RouteMatch, RouteTable
from pipelined.core.tracing import http_trace_id
from pipelined.errors import PipelinedError
from pipelined.http import cors
from pipelined.http.limits import GuardedTCPSite
from pipelined.invoke.service import Caller, InvocationKind, InvokeService, ThrottledError
from pipelined.observe.metrics import Metrics

GATEWAY_CONNECTIONS = 4096

log = logging.getLogger("pipelined.gateway")

_REQUEST_ID_HEADER: dict[ApiKind, str] = {
    "rest": "x-amzn-RequestId",
    "http": "apigw-requestid",
    "url": "x-amzn-RequestId",
}


@dataclass(frozen=True, slots=True)
class _RouteState:
    """Everything a request needs, replaced as one object on reload."""

    config: GatewayConfig
    table: RouteTable
    callers: Mapping[Route, Caller]
    apis: Mapping[Route, ApiContext]
    # Who answers a request no route matches: a REST-only gateway says 403, the others 404.
    missing: ApiKind


class Gateway:
    """The HTTP listener for the functions' HTTP triggers."""

    def __init__(self, service: InvokeService, metrics: Metrics | None = None) -> None:
        self.service = service
        self.metrics = metrics
        self._state: _RouteState | None = None
        self._runner: web.AppRunner | None = None
        self._listen: str | None = None
        self.port = 0
        # Invocations the gateway stopped waiting for (integration timeout) run to their end, as in Lambda.
        self._orphans: set[asyncio.Future[Any]] = set()

    @property
    def running(self) -> bool:
        """True while the listener is bound."""
        return self._runner is not None

    async def apply(self, config: GatewayConfig, table: RouteTable) -> None:
        """Serve `table` from now on; binds the listener (anew if `listen` changed) when there are routes."""
        self._state = self._build(config, table)
        if self._runner is not None and self._listen != config.listen:
            await self.stop(config.timeout_of("rest") or 0)
        if self._runner is None and table.routes:
            await self._start(config)

    def _build(self, config: GatewayConfig, table: RouteTable) -> _RouteState:
        callers: dict[Route, Caller] = {}
        apis: dict[Route, ApiContext] = {}
        binary = tuple(config.binary_media_types)
        for route in table.routes:
            caller = self.service.caller(route.function, route.source, InvocationKind.REQUEST_RESPONSE)
            callers[route] = caller
            seed = f"url:{route.function}" if route.api == "url" else route.api
            apis[route] = ApiContext(
                api_id=api_id(seed, 32 if route.api == "url" else 10),
                account_id=caller.function.identity.account,
                stage="$default" if route.api == "url" else config.stage_of(route.api),
                stage_variables={} if route.api == "url" else dict(config.stage_variables),
                binary_media_types=binary,
            )
        missing: ApiKind = "rest" if table.kinds == {"rest"} else "http"
        return _RouteState(config, table, callers, apis, missing)

    async def _start(self, config: GatewayConfig) -> None:
        app = web.Application(client_max_size=config.max_body_size + 1)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=5.0)
        await runner.setup()
        # The public front door: many clients, but none may hold a connection without sending a request.
        site = GuardedTCPSite(runner, config.host, config.port, max_connections=GATEWAY_CONNECTIONS)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            raise PipelinedError(f"cannot listen on {config.listen}: {exc}") from exc
        sockets = getattr(site._server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else config.port
        self._runner, self._listen = runner, config.listen
        log.info(
            "gateway listening on http://%s:%d (%d routes)",
            config.host,
            self.port,
            len(self._state.table.routes) if self._state else 0,
        )

    async def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting requests; those in flight get up to `timeout` seconds to finish."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner._shutdown_timeout = timeout  # aiohttp reads it at cleanup; the drain budget is ours
            await runner.cleanup()

    # --- one request ---------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        state = self._state
        assert state is not None
        config = state.config
        request_id = new_request_id()
        path, _, query = request.raw_path.partition("?")
        origin = request.headers.get("Origin")
        api: ApiKind = state.missing
        label = "-"
        error: GatewayErrorKind | None = None
        if config.cors is not None and cors.is_preflight(
            request.method, origin, request.headers.get("Access-Control-Request-Method")
        ):
            # An HTTP API with CORS answers preflight itself, whatever the routes.
            preflight = cors.preflight_headers(
                config.cors, origin, request.headers.get("Access-Control-Request-Headers")
            )
            reply, api, label = HttpReply(204, tuple(preflight), b""), "http", "preflight"
        else:
            match = state.table.match(request.method, path, request.host.rpartition(":")[0] or request.host)
            if match is None:
                error = "not_found"
                reply = gateway_error(api, error)
            else:
                api, label = match.route.api, match.route.key
                reply, error = await self._invoke(request, match, state, request_id, path, query)
        headers = CIMultiDict(reply.headers)
        headers[_REQUEST_ID_HEADER[api]] = request_id
        if config.cors is not None and label != "preflight":
            headers.extend(cors.response_headers(config.cors, origin))
        response = web.Response(status=reply.status, body=reply.body, headers=headers)
        if self.metrics is not None:
            m = self.metrics
            m.http_requests.labels(api, label, f"{reply.status // 100}xx").inc()
            m.http_duration.labels(api, label).observe(time.perf_counter() - started)
            if error is not None:
                m.http_errors.labels(api, label, error).inc()
        return response

    async def _invoke(
        self,
        request: web.Request,
        match: RouteMatch,
        state: _RouteState,
        request_id: str,
        path: str,
        query: str,
    ) -> tuple[HttpReply, GatewayErrorKind | None]:
        route, config = match.route, state.config
        header_bytes = len(request.raw_path) + sum(len(k) + len(v) + 4 for k, v in request.raw_headers)
        if header_bytes > config.max_header_size:
            return gateway_error(route.api, "too_large"), "too_large"
        body = await _read_body(request, config.max_body_size)
        if body is None:
            return gateway_error(route.api, "too_large"), "too_large"
        http_request = HttpRequest(
            method=request.method,
            raw_path=path,
            query_string=query,
            headers=_forwarded(request),
            body=body,
            source_ip=request.remote or "",
            request_id=request_id,
            protocol=f"HTTP/{request.version.major}.{request.version.minor}",
        )
        api = state.apis[route]
        if route.payload == "1.0":
            event = rest_event(http_request, match, api)
        elif route.api == "url":
            prefix = "" if route.host else route.path.removesuffix("/{proxy+}").rstrip("/")
            event = http_event(http_request, match, api, raw_path=path[len(prefix) :] or "/")
        else:
            event = http_event(http_request, match, api)
        caller = state.callers[route]
        timeout = config.timeout_of(route.api)
        # The request's X-Amzn-Trace-Id or traceparent continues its trace in the handler (and span).
        trace = http_trace_id(request.headers)
        try:
            if timeout is None:
                result = await caller.invoke(event, request_id, trace_id=trace)
            else:
                task = asyncio.ensure_future(caller.invoke(event, request_id, trace_id=trace))
                try:
                    result = await asyncio.wait_for(asyncio.shield(task), timeout)
                except TimeoutError:
                    self._orphans.add(task)
                    task.add_done_callback(self._orphans.discard)
                    return gateway_error(route.api, "timeout"), "timeout"
        except ThrottledError:
            return gateway_error(route.api, "throttled"), "throttled"
        if result.error is not None:
            return gateway_error(route.api, "function_error"), "function_error"
        try:
            if route.payload == "1.0":
                return rest_reply(
                    result.value, request.headers.get("Accept"), config.binary_media_types
                ), None
            return http_reply(result.value), None
        except MalformedResponseError as exc:
            log.error(
                "%s: malformed Lambda proxy response: %s",
                route.owner,
                exc,
                extra={"function": route.function, "request_id": request_id},
            )
            return gateway_error(route.api, "malformed"), "malformed"


async def _read_body(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None when it is over `limit` bytes (checked before reading when declared)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _forwarded(request: web.Request) -> tuple[tuple[str, str], ...]:
    """The request's headers plus the X-Forwarded-* ones API Gateway adds."""
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers]
    names = {k.lower() for k, _ in headers}
    remote = request.remote or ""
    if "x-forwarded-for" in names:
        headers = [(k, f"{v}, {remote}" if k.lower() == "x-forwarded-for" else v) for k, v in headers]
    else:
        headers.append(("X-Forwarded-For", remote))
    if "x-forwarded-port" not in names:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        headers.append(("X-Forwarded-Port", str(sockname[1]) if sockname else ""))
    if "x-forwarded-proto" not in names:
        headers.append(("X-Forwarded-Proto", request.scheme))
    return tuple(headers)
