"""The HTTP triggers of a function (SAM's vocabulary): `api` (REST), `http_api` and `function_url`.

They are not polled: the gateway (pipelined/http/gateway.py) serves them as routes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field

from pipelined.config.types import ConfigModel, EventName
from pipelined.core.routes import RoutePathError, parse_path


def _route_path(value: str) -> str:
    try:
        parse_path(value)
    except RoutePathError as exc:
        raise ValueError(str(exc)) from None
    return value


def _method(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _version(value: Any) -> Any:
    # YAML reads an unquoted 1.0 as a number.
    return f"{value:.1f}" if isinstance(value, float) else value


RoutePath = Annotated[str, AfterValidator(_route_path)]
Method = Annotated[
    Literal["get", "post", "put", "patch", "delete", "head", "options", "any"], BeforeValidator(_method)
]


class _HttpSourceBase(ConfigModel):
    name: EventName | None = None
    enabled: bool = True


class ApiSource(_HttpSourceBase):
    """A route of an API Gateway REST API: the event is payload format 1.0."""

    type: Literal["api"]
    path: RoutePath
    method: Method = "any"


class HttpApiSource(_HttpSourceBase):
    """A route of an API Gateway HTTP API: payload format 2.0 unless `payload_format_version: "1.0"`."""

    type: Literal["http_api"]
    path: RoutePath
    method: Method = "any"
    payload_format_version: Annotated[Literal["1.0", "2.0"], BeforeValidator(_version)] = "2.0"


class FunctionUrlSource(_HttpSourceBase):
    """A Lambda function URL: every path under `/<function name>/` (or `prefix`), or every path of `host`."""

    type: Literal["function_url"]
    prefix: Annotated[str, AfterValidator(_route_path), Field(pattern=r"^/[^{}]*$")] | None = None
    host: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+$")] | None = None
