"""The API listener (`api.listen`): one aiohttp server for the AWS-compatible APIs, verifying signatures.

Every request gets a request id and, before its handler runs, its caller: the name of the credential
whose SigV4 signature it carries, or None for an unsigned caller (accepted only when no credentials are
configured, which the config allows only on a loopback address).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web

from pipelined.config import ApiCredential
from pipelined.config.api import is_loopback
from pipelined.core.identity import new_request_id
from pipelined.http.aws_errors import ApiError
from pipelined.http.limits import GuardedTCPSite
from pipelined.http.sigv4 import SignatureError, SigV4Verifier
from pipelined.observe.metrics import Metrics

log = logging.getLogger("pipelined.api")

# The largest request body read at all (Lambda's synchronous payload quota); bigger ones get 413.
MAX_BODY = 6 * 1024 * 1024
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiServer:
    """Serves routes behind SigV4 verification; `port` is the bound port after start()."""

    def __init__(
        self,
        host: str,
        port: int,
        credentials: Sequence[ApiCredential],
        metrics: Metrics,
        routes: Sequence[web.RouteDef],
        services: frozenset[str] = frozenset({"lambda"}),
        shutdown_timeout: float = 30.0,
    ) -> None:
        self._shutdown_timeout = shutdown_timeout
        self._host = host
        self.port = port
        self._metrics = metrics
        self._routes = routes
        self._services = services
        self._runner: web.AppRunner | None = None
        self.set_credentials(credentials)

    def set_credentials(self, credentials: Sequence[ApiCredential]) -> None:
        """Verify against these credentials from now on (a reload); none: accept unsigned loopback callers."""
        self._verifier = SigV4Verifier(credentials, self._services) if credentials else None

    async def start(self) -> None:
        """Bind and serve."""
        # The body limit is checked by the middleware (Lambda's error); aiohttp's only guards chunked bodies.
        app = web.Application(middlewares=[self._middleware], client_max_size=MAX_BODY + 1)
        app.add_routes(self._routes)
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=self._shutdown_timeout
        )
        await self._runner.setup()
        site = GuardedTCPSite(self._runner, self._host, self.port, max_connections=1024)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop serving (requests in flight are cut off: stop the API before the functions)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        request_id = new_request_id()
        request["request_id"] = request_id
        json_protocol = "X-Amz-Target" in request.headers
        try:
            await self._authenticate(request)
            return await handler(request)
        except ApiError as exc:
            return exc.response(request_id, json_protocol)
        except web.HTTPRequestEntityTooLarge:
            return _too_large().response(request_id, json_protocol)
        except Exception:
            log.exception("%s %s failed", request.method, request.path)
            return ApiError(500, "ServiceException", "internal error; see the daemon's log").response(
                request_id, json_protocol
            )

    async def _authenticate(self, request: web.Request) -> None:
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise _too_large()
        verifier = self._verifier
        if verifier is None:
            if not is_loopback(request.remote or ""):
                self._denied(request, "unsigned")
                raise ApiError(
                    403, "AccessDeniedException", "unsigned requests are accepted only from loopback"
                )
            request["principal"] = None
            return
        body = await request.read()
        try:
            request["principal"] = verifier.verify(
                request.method, request.host, request.raw_path, request.headers, body
            )
        except SignatureError as exc:
            self._denied(request, "signature")
            raise ApiError(403, exc.code, exc.message) from None

    def _denied(self, request: web.Request, reason: str) -> None:
        route = request.match_info.route.name or "unknown"
        self._metrics.api_requests_denied.labels(route, reason).inc()


def _too_large() -> ApiError:
    return ApiError(
        413,
        "RequestEntityTooLargeException",
        f"Request must be smaller than {MAX_BODY} bytes for the InvokeFunction operation",
    )
