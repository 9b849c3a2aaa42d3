"""The `gateway:` section (the front door of the api, http_api and function_url events) and its routes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator, Field

from pipelined.config.functions import FunctionConfig
from pipelined.config.http_events import ApiSource, FunctionUrlSource, HttpApiSource
from pipelined.config.types import ConfigModel, Duration, FieldValueError, listen_address, listen_host
from pipelined.core.routes import Route, RouteConflictError, RouteTable

# API Gateway's hard limits: a 10 MB payload and 10240 bytes of request line and headers (REST).
MAX_BODY = 10 * 1024 * 1024
MAX_HEADERS = 10240


class CorsConfig(ConfigModel):
    """CORS as an HTTP API configures it: the gateway answers preflight requests and adds the headers."""

    allow_origins: list[str] = Field(default_factory=lambda: ["*"])
    allow_methods: list[str] = Field(default_factory=lambda: ["*"])
    allow_headers: list[str] = Field(default_factory=lambda: ["*"])
    expose_headers: list[str] = Field(default_factory=list)
    allow_credentials: bool = False
    max_age: Annotated[Duration, Field(ge=0, le=86400)] | None = None


class GatewayConfig(ConfigModel):
    """Where the gateway listens, its stage and stage variables, CORS, binary types and request limits."""

    # A non-loopback address is allowed: this is the public front door.
    listen: Annotated[str, AfterValidator(listen_address)] = "127.0.0.1:8080"
    # None: "prod" for REST routes, "$default" for HTTP API routes (the stages SAM and the console create).
    stage: Annotated[str, Field(pattern=r"^(\$default|[A-Za-z0-9_-]{1,128})$")] | None = None
    stage_variables: dict[str, str] = Field(default_factory=dict)
    cors: CorsConfig | None = None
    binary_media_types: list[str] = Field(default_factory=list)
    max_body_size: int = Field(default=MAX_BODY, ge=0)
    max_header_size: int = Field(default=MAX_HEADERS, ge=1024)
    # None: API Gateway's integration timeouts, 29s for REST and 30s for HTTP APIs (function URLs have none).
    timeout: Annotated[Duration, Field(gt=0, le=900)] | None = None

    @property
    def host(self) -> str:
        """The address to bind."""
        return listen_host(self.listen)

    @property
    def port(self) -> int:
        """The port to bind (0: any free port)."""
        return int(self.listen.rpartition(":")[2])

    def stage_of(self, api: str) -> str:
        """The stage name a route of `api` reports."""
        return self.stage or ("prod" if api == "rest" else "$default")

    def timeout_of(self, api: str) -> float | None:
        """How long the gateway waits for a function of `api` before it answers with a timeout."""
        if api == "url":
            return None
        return self.timeout or (29.0 if api == "rest" else 30.0)


def routes_of(functions: Mapping[str, FunctionConfig]) -> list[Route]:
    """Every enabled HTTP trigger of every function, as routes (paths already validated)."""
    routes: list[Route] = []
    for name, function in functions.items():
        for event in function.events:
            if not event.enabled or event.name is None:
                continue
            if isinstance(event, ApiSource):
                routes.append(Route.of("rest", _any(event.method), event.path, name, event.name, "1.0"))
            elif isinstance(event, HttpApiSource):
                routes.append(
                    Route.of(
                        "http", _any(event.method), event.path, name, event.name, event.payload_format_version
                    )
                )
            elif isinstance(event, FunctionUrlSource):
                prefix = "/" if event.host else (event.prefix or f"/{name}").rstrip("/") or "/"
                rest = "/{proxy+}" if prefix == "/" else f"{prefix}/{{proxy+}}"
                for path in (prefix, rest):
                    routes.append(Route.of("url", "ANY", path, name, event.name, "2.0", event.host))
    return routes


def _any(method: str) -> str:
    return method.upper()


def check_routes(functions: Mapping[str, FunctionConfig]) -> RouteTable:
    """The route table of these functions; FieldValueError naming both routes when two collide."""
    try:
        return RouteTable(routes_of(functions))
    except RouteConflictError as exc:
        route = exc.second
        index = next(i for i, e in enumerate(functions[route.function].events) if e.name == route.source)
        raise FieldValueError((route.function, "events", index), str(exc)) from None
