"""CORS as an HTTP API applies it: preflight requests answered by the gateway, headers added to responses."""

from __future__ import annotations

from pipelined.config import CorsConfig


def allowed_origin(cors: CorsConfig, origin: str | None) -> str | None:
    """The Access-Control-Allow-Origin value for `origin`, or None when it is not allowed."""
    if not origin:
        return None
    if origin in cors.allow_origins:
        return origin
    if "*" in cors.allow_origins:
        # With credentials the browser refuses "*": name the origin instead.
        return origin if cors.allow_credentials else "*"
    return None


def is_preflight(method: str, origin: str | None, requested_method: str | None) -> bool:
    """An OPTIONS request a browser sends before a cross-origin request."""
    return method == "OPTIONS" and bool(origin) and bool(requested_method)


def preflight_headers(
    cors: CorsConfig, origin: str | None, requested_headers: str | None
) -> list[tuple[str, str]]:
    """The headers of the gateway's answer to a preflight request (none when the origin is refused)."""
    allow = allowed_origin(cors, origin)
    if allow is None:
        return []
    headers = [("Access-Control-Allow-Origin", allow)]
    headers.append(("Access-Control-Allow-Methods", ",".join(m.upper() for m in cors.allow_methods)))
    if "*" in cors.allow_headers and requested_headers:
        headers.append(("Access-Control-Allow-Headers", requested_headers))
    elif cors.allow_headers:
        headers.append(("Access-Control-Allow-Headers", ",".join(cors.allow_headers)))
    if cors.max_age is not None:
        headers.append(("Access-Control-Max-Age", str(int(cors.max_age))))
    if cors.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    if allow != "*":
        headers.append(("Vary", "Origin"))
    return headers


def response_headers(cors: CorsConfig, origin: str | None) -> list[tuple[str, str]]:
    """The CORS headers added to an ordinary response."""
    allow = allowed_origin(cors, origin)
    if allow is None:
        return []
    headers = [("Access-Control-Allow-Origin", allow)]
    if cors.expose_headers:
        headers.append(("Access-Control-Expose-Headers", ",".join(cors.expose_headers)))
    if cors.allow_credentials:
        headers.append(("Access-Control-Allow-Credentials", "true"))
    if allow != "*":
        headers.append(("Vary", "Origin"))
    return headers
