"""The events API Gateway and function URLs send a handler: payload format 1.0 (REST) and 2.0 (HTTP API).

Shapes follow AWS's documented samples (API Gateway developer guide, "set-up-lambda-proxy-integrations"
and "http-api-develop-integrations-lambda"; Lambda guide, "urls-invocation"). No I/O here: the gateway
hands in an :class:`HttpRequest` and gets a JSON-ready dict back.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from pipelined.core.routes import RouteMatch

# Content types sent as text; every other body is base64 with isBase64Encoded: true.
_TEXT_TYPES = (
    "application/json",
    "application/javascript",
    "application/xml",
    "application/x-www-form-urlencoded",
    "application/graphql",
    "application/yaml",
    "application/x-yaml",
)


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request as the gateway received it."""

    method: str
    raw_path: str  # percent-encoded, without the query
    query_string: str  # without the '?'
    headers: tuple[tuple[str, str], ...]  # in the order and case received
    body: bytes
    source_ip: str
    request_id: str
    protocol: str = "HTTP/1.1"
    time: float = field(default_factory=time.time)

    def header(self, name: str) -> str | None:
        """The last value of a header (case-insensitive), or None."""
        lower = name.lower()
        found = None
        for key, value in self.headers:
            if key.lower() == lower:
                found = value
        return found


@dataclass(frozen=True, slots=True)
class ApiContext:
    """What the API itself contributes to an event: ids, stage, stage variables, binary media types."""

    api_id: str
    account_id: str
    stage: str
    stage_variables: dict[str, str] = field(default_factory=dict)
    binary_media_types: tuple[str, ...] = ()


def api_id(seed: str, length: int = 10) -> str:
    """A stable API id of lower-case letters and digits, as API Gateway's (function URLs use 32)."""
    digest = hashlib.sha256(seed.encode()).digest()
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(alphabet[b % 36] for b in digest[:length])


def media_type_matches(content_type: str | None, patterns: Sequence[str]) -> bool:
    """Whether a Content-Type (parameters ignored) matches one of `patterns` ('*/*', 'image/*', exact)."""
    if not content_type:
        return False
    kind = content_type.split(";", 1)[0].strip().lower()
    major = kind.split("/", 1)[0]
    for pattern in patterns:
        p = pattern.strip().lower()
        if p in ("*/*", kind) or (p.endswith("/*") and p[:-2] == major):
            return True
    return False


def _is_text(content_type: str | None) -> bool:
    if not content_type:
        return True
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind.startswith("text/") or kind in _TEXT_TYPES or kind.endswith(("+json", "+xml"))


def encode_body(
    body: bytes, content_type: str | None, binary_media_types: Sequence[str]
) -> tuple[str | None, bool]:
    """The event's `body` and `isBase64Encoded`: text types as text, the rest (and binary types) base64."""
    if not body:
        return None, False
    if _is_text(content_type) and not media_type_matches(content_type, binary_media_types):
        try:
            return body.decode("utf-8"), False
        except UnicodeDecodeError:
            pass  # undeclared binary: it cannot travel as JSON text
    return base64.b64encode(body).decode("ascii"), True


def _clf_time(epoch: float) -> str:
    # API Gateway's requestTime: 04/Mar/2020:19:15:17 +0000
    return time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch))


def _domain(request: HttpRequest) -> tuple[str, str]:
    host = request.header("host") or "localhost"
    return host, host.split(".", 1)[0].split(":", 1)[0]


def rest_event(request: HttpRequest, match: RouteMatch, api: ApiContext) -> dict[str, Any]:
    """Payload format 1.0: what a REST API (or an HTTP API with payload 1.0) sends."""
    route = match.route
    multi_headers: dict[str, list[str]] = {}
    names: dict[str, str] = {}
    for key, value in request.headers:
        name = names.setdefault(key.lower(), key)  # the first spelling of a repeated header wins
        multi_headers.setdefault(name, []).append(value)
    pairs = parse_qsl(request.query_string, keep_blank_values=True)
    multi_query: dict[str, list[str]] = {}
    for key, value in pairs:
        multi_query.setdefault(key, []).append(value)
    domain, prefix = _domain(request)
    body, is_base64 = encode_body(request.body, request.header("content-type"), api.binary_media_types)
    user_agent = request.header("user-agent")
    resource = route.path
    is_rest = route.api == "rest"
    context: dict[str, Any] = {
        "accountId": api.account_id,
        "apiId": api.api_id,
        "domainName": domain,
        "domainPrefix": prefix,
        "extendedRequestId": request.request_id,
        "httpMethod": request.method,
        "identity": {
            "accessKey": None,
            "accountId": None,
            "caller": None,
            "cognitoAuthenticationProvider": None,
            "cognitoAuthenticationType": None,
            "cognitoIdentityId": None,
            "cognitoIdentityPoolId": None,
            "principalOrgId": None,
            "sourceIp": request.source_ip,
            "user": None,
            "userAgent": user_agent,
            "userArn": None,
        },
        # A REST API's URL carries the stage (/prod/pets); pipelined's does not, the context still does.
        "path": f"/{api.stage}{request.raw_path}" if is_rest else request.raw_path,
        "protocol": request.protocol,
        "requestId": request.request_id,
        "requestTime": _clf_time(request.time),
        "requestTimeEpoch": int(request.time * 1000),
        "resourceId": api_id(f"{api.api_id}{resource}", 6) if is_rest else None,
        "resourcePath": resource,
        "stage": api.stage,
    }
    event: dict[str, Any] = {} if is_rest else {"version": "1.0"}
    event |= {
        "resource": resource,
        "path": request.raw_path,
        "httpMethod": request.method,
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        # AWS sends null, not {}, when there are none.
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "requestContext": context,
        "pathParameters": match.path_parameters or None,
        "stageVariables": dict(api.stage_variables) or None,
        "body": body,
        "isBase64Encoded": is_base64,
    }
    return event


def http_event(
    request: HttpRequest, match: RouteMatch, api: ApiContext, raw_path: str | None = None
) -> dict[str, Any]:
    """Payload format 2.0: what an HTTP API (and a function URL, with `raw_path` below its prefix) sends."""
    route = match.route
    is_url = route.api == "url"
    path = raw_path if raw_path is not None else request.raw_path
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for key, value in request.headers:
        name = key.lower()
        if name == "cookie":
            # 2.0 moves the Cookie header into `cookies`, one entry per cookie.
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(request.query_string, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    domain, prefix = _domain(request)
    route_key = "$default" if is_url else route.key
    body, is_base64 = encode_body(request.body, headers.get("content-type"), api.binary_media_types)
    context: dict[str, Any] = {
        "accountId": api.account_id,
        "apiId": api.api_id,
        "domainName": domain,
        "domainPrefix": prefix,
        "http": {
            "method": request.method,
            "path": path,
            "protocol": request.protocol,
            "sourceIp": request.source_ip,
            "userAgent": headers.get("user-agent", ""),
        },
        "requestId": request.request_id,
        "routeKey": route_key,
        "stage": api.stage,
        "time": _clf_time(request.time),
        "timeEpoch": int(request.time * 1000),
    }
    if is_url:
        context["authentication"] = None
    # Keys without a value are left out of a 2.0 event, as AWS does.
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": request.query_string,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = headers
    if query:
        event["queryStringParameters"] = query
    event["requestContext"] = context
    if body is not None:
        event["body"] = body
    if match.path_parameters and not is_url:
        event["pathParameters"] = match.path_parameters
    event["isBase64Encoded"] = is_base64
    if api.stage_variables and not is_url:
        event["stageVariables"] = dict(api.stage_variables)
    return event
