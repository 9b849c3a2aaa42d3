"""From a handler's return value to the HTTP response API Gateway sends, and the gateway's own errors.

Payload 1.0 (REST) must return `{statusCode, headers, multiValueHeaders, body, isBase64Encoded}`;
anything else is a malformed response. Payload 2.0 (HTTP API, function URLs) also takes `cookies`, and a
return value without `statusCode` is a 200 JSON response. The error bodies and status codes are API
Gateway's defaults for each kind of API (docs/http.md lists them with their sources).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pipelined.core.apigw_events import media_type_matches
from pipelined.core.routes import ApiKind

_REST_KEYS = frozenset({"statusCode", "headers", "multiValueHeaders", "body", "isBase64Encoded"})
# Headers the listener computes itself; a handler's values would corrupt the framing.
_HOP_BY_HOP = frozenset({"content-length", "transfer-encoding", "connection"})

GatewayErrorKind = Literal["function_error", "malformed", "throttled", "timeout", "not_found", "too_large"]


class MalformedResponseError(ValueError):
    """The handler's return value is not a valid proxy response; the message says what is wrong."""


@dataclass(frozen=True, slots=True)
class HttpReply:
    """The HTTP response to send: status, headers (repeats allowed) and body bytes."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        lower = name.lower()
        return next((v for k, v in self.headers if k.lower() == lower), None)


def _status(value: Any) -> int:
    if value is None:
        return 200
    try:
        status = int(value)
    except (TypeError, ValueError):
        raise MalformedResponseError(f"statusCode {value!r} is not a number") from None
    if isinstance(value, bool) or not 100 <= status <= 599:
        raise MalformedResponseError(f"statusCode {value!r} is not an HTTP status")
    return status


def _header_value(name: str, value: Any, numbers: bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) or (numbers and isinstance(value, int | float)):
        return str(value)
    raise MalformedResponseError(f"header {name!r} has a {type(value).__name__} value")


def _headers(value: Any, numbers: bool) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict):
        raise MalformedResponseError("headers must be an object")
    return [(str(k), _header_value(str(k), v, numbers)) for k, v in value.items()]


def _multi_headers(value: Any) -> list[tuple[str, str]]:
    if value is None:
        return []
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise MalformedResponseError("multiValueHeaders must be an object of lists")
    return [(str(k), _header_value(str(k), item, False)) for k, items in value.items() for item in items]


def _body(value: Any, is_base64: Any, decode: bool) -> bytes:
    if value is None:
        return b""
    if not isinstance(value, str):
        raise MalformedResponseError(f"body must be a string, got {type(value).__name__}")
    if not isinstance(is_base64, bool) and is_base64 is not None:
        raise MalformedResponseError("isBase64Encoded must be true or false")
    if is_base64 and decode:
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedResponseError("body is not valid base64") from None
    return value.encode("utf-8")


def _finish(status: int, headers: list[tuple[str, str]], body: bytes) -> HttpReply:
    kept = [(k, v) for k, v in headers if k.lower() not in _HOP_BY_HOP]
    if not any(k.lower() == "content-type" for k, _ in kept):
        kept.insert(0, ("Content-Type", "application/json"))
    return HttpReply(status, tuple(kept), body)


def rest_reply(value: Any, accept: str | None, binary_media_types: Sequence[str]) -> HttpReply:
    """The response for a payload 1.0 return value; MalformedResponseError if it is not one."""
    if not isinstance(value, dict):
        raise MalformedResponseError(f"expected an object, got {type(value).__name__}")
    unknown = set(value) - _REST_KEYS
    if unknown:
        raise MalformedResponseError(f"unexpected key(s): {', '.join(sorted(unknown))}")
    status = _status(value.get("statusCode"))
    single = _headers(value.get("headers"), numbers=False)
    multi = _multi_headers(value.get("multiValueHeaders"))
    # Both given: multiValueHeaders wins for a name present in both (AWS merges them so).
    multi_names = {k.lower() for k, _ in multi}
    headers = [*multi, *((k, v) for k, v in single if k.lower() not in multi_names)]
    content_type = next((v for k, v in headers if k.lower() == "content-type"), None)
    # A REST API turns base64 back into bytes only for binary media types (the request's Accept, or the
    # response's own Content-Type as SAM does); otherwise the base64 text is the body.
    decode = media_type_matches(accept, binary_media_types) or media_type_matches(
        content_type, binary_media_types
    )
    return _finish(status, headers, _body(value.get("body"), value.get("isBase64Encoded"), decode))


def http_reply(value: Any) -> HttpReply:
    """The response for a payload 2.0 return value (HTTP API, function URL)."""
    if not isinstance(value, dict) or "statusCode" not in value:
        # A simple response: the value itself is the JSON body.
        try:
            body = json.dumps(value).encode()
        except (TypeError, ValueError) as exc:
            raise MalformedResponseError(f"not JSON: {exc}") from None
        return HttpReply(200, (("Content-Type", "application/json"),), body)
    status = _status(value.get("statusCode"))
    headers = _headers(value.get("headers"), numbers=True)
    cookies = value.get("cookies") or []
    if not isinstance(cookies, list) or not all(isinstance(c, str) for c in cookies):
        raise MalformedResponseError("cookies must be a list of strings")
    headers += [("Set-Cookie", cookie) for cookie in cookies]
    return _finish(status, headers, _body(value.get("body"), value.get("isBase64Encoded"), True))


def _json(status: int, text: str, error_type: str | None = None) -> HttpReply:
    headers = [("Content-Type", "application/json")]
    if error_type:
        headers.append(("x-amzn-ErrorType", error_type))
    return HttpReply(status, tuple(headers), text.encode())


_REST_ERRORS: dict[str, HttpReply] = {
    # Lambda ran the function and it failed, or returned something that is not a proxy response: 502.
    "function_error": _json(502, '{"message": "Internal server error"}', "InternalServerErrorException"),
    "malformed": _json(502, '{"message": "Internal server error"}', "InternalServerErrorException"),
    # Lambda refused the invocation (throttled): 500, not 429 (Lambda guide, "services-apigateway-errors").
    "throttled": _json(500, '{"message": "Internal server error"}', "InternalServerErrorException"),
    "timeout": _json(504, '{"message": "Endpoint request timed out"}'),
    # A REST API answers an unknown resource or method with MISSING_AUTHENTICATION_TOKEN.
    "not_found": _json(
        403, '{"message":"Missing Authentication Token"}', "MissingAuthenticationTokenException"
    ),
    "too_large": _json(413, '{"message":"Request Too Long"}'),
}
_HTTP_ERRORS: dict[str, HttpReply] = {
    "function_error": _json(500, '{"message":"Internal Server Error"}'),
    "malformed": _json(500, '{"message":"Internal Server Error"}'),
    "throttled": _json(500, '{"message":"Internal Server Error"}'),
    "timeout": _json(503, '{"message":"Service Unavailable"}'),
    "not_found": _json(404, '{"message":"Not Found"}'),
    "too_large": _json(413, '{"message":"Request Entity Too Large"}'),
}
_URL_ERRORS: dict[str, HttpReply] = {
    **_HTTP_ERRORS,
    "function_error": _json(502, '{"message":"Internal Server Error"}'),
    "malformed": _json(502, '{"message":"Internal Server Error"}'),
    # A function URL is Lambda itself: its throttle is Lambda's TooManyRequestsException.
    "throttled": _json(
        429,
        '{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded",'
        '"Type":"User","message":"Rate Exceeded."}',
        "TooManyRequestsException",
    ),
}
_ERRORS: dict[ApiKind, dict[str, HttpReply]] = {
    "rest": _REST_ERRORS,
    "http": _HTTP_ERRORS,
    "url": _URL_ERRORS,
}


def gateway_error(api: ApiKind, kind: GatewayErrorKind) -> HttpReply:
    """The response API Gateway (or a function URL) gives for one of its own errors."""
    return _ERRORS[api][kind]
