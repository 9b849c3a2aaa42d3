"""The gateway's route table: `{name}` and greedy `{name+}` paths, most specific match first, as API Gateway.

API Gateway prefers, segment by segment, a literal over a `{parameter}` over a greedy `{proxy+}`, and a
named method over `ANY`. Two routes that no request can tell apart (the same method and the same path
shape, whatever their parameters are called) are a configuration error naming both.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote

# rest: an API Gateway REST API (payload 1.0); http: an HTTP API (1.0 or 2.0); url: a function URL.
ApiKind = Literal["rest", "http", "url"]
PayloadVersion = Literal["1.0", "2.0"]
METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

_PARAM = re.compile(r"\{([A-Za-z0-9_.-]+)(\+?)\}")
_LITERAL = re.compile(r"[A-Za-z0-9._~!$&'()*,;=:@%+-]+")


class RoutePathError(ValueError):
    """A route path that API Gateway would refuse; the message says why."""


class RouteConflictError(ValueError):
    """Two routes no request can tell apart."""

    def __init__(self, first: Route, second: Route) -> None:
        super().__init__(f"route {second.key} is ambiguous with {first.key} ({first.owner})")
        self.first = first
        self.second = second


@dataclass(frozen=True, slots=True)
class Segment:
    """One path segment: a literal, a `{name}` parameter or a greedy `{name+}` (the last one only)."""

    text: str
    param: str | None = None
    greedy: bool = False

    @property
    def shape(self) -> str:
        """The segment as far as matching goes: parameter names do not matter."""
        return "{+}" if self.greedy else "{}" if self.param is not None else self.text


def parse_path(path: str) -> tuple[Segment, ...]:
    """The segments of a route path such as `/pets/{id}` or `/files/{proxy+}`; RoutePathError if invalid."""
    if not path.startswith("/"):
        raise RoutePathError(f"must start with '/', got {path!r}")
    if path == "/":
        return ()
    parts = path[1:].removesuffix("/").split("/")
    segments: list[Segment] = []
    names: set[str] = set()
    for index, part in enumerate(parts):
        match = _PARAM.fullmatch(part)
        if match:
            name, greedy = match.group(1), bool(match.group(2))
            if greedy and index != len(parts) - 1:
                raise RoutePathError(f"the greedy parameter {part} must be the last segment of {path!r}")
            if name in names:
                raise RoutePathError(f"parameter {{{name}}} appears twice in {path!r}")
            names.add(name)
            segments.append(Segment(part, name, greedy))
        elif part and _LITERAL.fullmatch(part) and "{" not in part:
            segments.append(Segment(part))
        else:
            raise RoutePathError(
                f"invalid segment {part!r} in {path!r} (use literals, {{name}} or {{name+}})"
            )
    return tuple(segments)


@dataclass(frozen=True, slots=True)
class Route:
    """One route: which API answers, on what method and path, and which function it invokes."""

    api: ApiKind
    method: str  # upper case, or "ANY"
    path: str
    function: str
    source: str  # the function's event name, e.g. "api-0"
    payload: PayloadVersion = "2.0"
    # A function URL's own Host (served on every path of that host), instead of a path prefix.
    host: str | None = None
    segments: tuple[Segment, ...] = field(default=(), compare=False)

    @classmethod
    def of(
        cls,
        api: ApiKind,
        method: str,
        path: str,
        function: str,
        source: str,
        payload: PayloadVersion = "2.0",
        host: str | None = None,
    ) -> Route:
        """A route with its path parsed (RoutePathError if the path is invalid)."""
        return cls(api, method.upper(), path, function, source, payload, host, parse_path(path))

    @property
    def key(self) -> str:
        """API Gateway's route key, e.g. `GET /pets/{id}` (with the host for a host-bound function URL)."""
        return f"{self.method} {self.host or ''}{self.path}"

    @property
    def owner(self) -> str:
        """`function/event` for messages."""
        return f"{self.function}/{self.source}"

    @property
    def shape(self) -> tuple[str, str | None, tuple[str, ...]]:
        """What decides whether two routes collide."""
        return self.method, self.host, tuple(s.shape for s in self.segments)


@dataclass(frozen=True, slots=True)
class RouteMatch:
    """The route a request matched and its path parameters (URL-decoded)."""

    route: Route
    path_parameters: dict[str, str]


class _Node:
    __slots__ = ("greedy", "literals", "methods", "param")

    def __init__(self) -> None:
        self.literals: dict[str, _Node] = {}
        self.param: _Node | None = None
        # Routes ending here, by method ("ANY" included).
        self.methods: dict[str, Route] = {}
        # Routes whose greedy parameter starts here, by method.
        self.greedy: dict[str, Route] = {}


def _pick(methods: dict[str, Route], method: str) -> Route | None:
    return methods.get(method) or methods.get("ANY")


class RouteTable:
    """Routes by host and path; `match()` returns the most specific one, as API Gateway chooses."""

    def __init__(self, routes: Iterable[Route] = ()) -> None:
        self.routes: tuple[Route, ...] = ()
        self._roots: dict[str | None, _Node] = {}
        seen: dict[tuple[str, str | None, tuple[str, ...]], Route] = {}
        for route in routes:
            other = seen.get(route.shape)
            if other is not None:
                raise RouteConflictError(other, route)
            seen[route.shape] = route
            self._add(route)
        self.routes = tuple(seen.values())

    def _add(self, route: Route) -> None:
        node = self._roots.setdefault(route.host, _Node())
        for segment in route.segments:
            if segment.greedy:
                node.greedy[route.method] = route
                return
            if segment.param is not None:
                node.param = node.param or _Node()
                node = node.param
            else:
                node = node.literals.setdefault(segment.text, _Node())
        node.methods[route.method] = route

    @property
    def kinds(self) -> frozenset[ApiKind]:
        """The kinds of API that have routes."""
        return frozenset(r.api for r in self.routes)

    def match(self, method: str, path: str, host: str | None = None) -> RouteMatch | None:
        """The route for `method` and the raw (percent-encoded) `path`; None when nothing matches."""
        parts = [p for p in path.split("/") if p] if path not in ("", "/") else []
        if host is not None and host in self._roots:
            found = self._walk(self._roots[host], parts, 0, method.upper(), [])
            if found is not None:
                return found
        root = self._roots.get(None)
        return self._walk(root, parts, 0, method.upper(), []) if root is not None else None

    def _walk(
        self, node: _Node, parts: list[str], index: int, method: str, values: list[str]
    ) -> RouteMatch | None:
        if index == len(parts):
            route = _pick(node.methods, method)
            if route is not None:
                return _bind(route, values, None)
        else:
            child = node.literals.get(parts[index])
            if child is not None:
                found = self._walk(child, parts, index + 1, method, values)
                if found is not None:
                    return found
            if node.param is not None:
                found = self._walk(node.param, parts, index + 1, method, [*values, parts[index]])
                if found is not None:
                    return found
            # A greedy parameter needs at least one segment, as `/{proxy+}` does not match `/`.
            route = _pick(node.greedy, method)
            if route is not None:
                return _bind(route, values, "/".join(parts[index:]))
        return None


def _bind(route: Route, values: list[str], rest: str | None) -> RouteMatch:
    names = [s.param for s in route.segments if s.param is not None and not s.greedy]
    params = {name: unquote(value) for name, value in zip(names, values, strict=True)}
    if rest is not None:
        greedy = route.segments[-1].param
        assert greedy is not None
        params[greedy] = unquote(rest)
    return RouteMatch(route, params)
