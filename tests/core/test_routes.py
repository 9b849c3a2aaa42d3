"""The route table: API Gateway's most-specific-first matching and ambiguous routes refused."""

from __future__ import annotations

import pytest

from pipelined.core.routes import Route, RouteConflictError, RoutePathError, RouteTable, parse_path


def table(*specs: str) -> RouteTable:
    routes = []
    for i, spec in enumerate(specs):
        method, path = spec.split(" ", 1)
        routes.append(Route.of("http", method, path, f"f{i}", "e"))
    return RouteTable(routes)


def matched(t: RouteTable, method: str, path: str) -> tuple[str, dict[str, str]] | None:
    found = t.match(method, path)
    return (found.route.key, found.path_parameters) if found else None


def test_literal_beats_parameter_beats_greedy() -> None:
    t = table("ANY /{proxy+}", "GET /pets/{id}", "GET /pets/dog", "ANY /pets/{id}/toys")
    assert matched(t, "GET", "/pets/dog") == ("GET /pets/dog", {})
    assert matched(t, "GET", "/pets/cat") == ("GET /pets/{id}", {"id": "cat"})
    assert matched(t, "POST", "/pets/cat/toys") == ("ANY /pets/{id}/toys", {"id": "cat"})
    assert matched(t, "GET", "/pets/cat/food") == ("ANY /{proxy+}", {"proxy": "pets/cat/food"})
    assert matched(t, "GET", "/") is None  # a greedy parameter needs a segment


def test_named_method_beats_any() -> None:
    t = table("ANY /orders", "POST /orders")
    assert matched(t, "POST", "/orders") == ("POST /orders", {})
    assert matched(t, "DELETE", "/orders") == ("ANY /orders", {})


def test_backtracks_when_the_literal_branch_has_no_method() -> None:
    t = table("GET /pets/dog", "POST /pets/{id}")
    assert matched(t, "POST", "/pets/dog") == ("POST /pets/{id}", {"id": "dog"})


def test_path_parameters_are_decoded() -> None:
    t = table("GET /files/{name}", "GET /raw/{proxy+}")
    assert matched(t, "GET", "/files/a%20b") == ("GET /files/{name}", {"name": "a b"})
    assert matched(t, "GET", "/raw/a/b%2Fc") == ("GET /raw/{proxy+}", {"proxy": "a/b/c"})


def test_same_shape_is_ambiguous_and_names_both() -> None:
    with pytest.raises(RouteConflictError) as info:
        table("GET /pets/{id}", "GET /pets/{petId}")
    assert str(info.value) == "route GET /pets/{petId} is ambiguous with GET /pets/{id} (f0/e)"
    table("GET /pets/{id}", "ANY /pets/{petId}", "GET /pets/dog")  # different methods/shapes are fine


def test_host_routes_come_first() -> None:
    routes = [
        Route.of("url", "ANY", "/{proxy+}", "site", "u", host="site.local"),
        Route.of("http", "GET", "/{proxy+}", "other", "h"),
    ]
    t = RouteTable(routes)
    assert t.match("GET", "/a", host="site.local").route.function == "site"  # type: ignore[union-attr]
    assert t.match("GET", "/a", host="elsewhere").route.function == "other"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("pets", "must start with '/'"),
        ("/{proxy+}/more", "must be the last segment"),
        ("/a/{id}/{id}", "appears twice"),
        ("/a/x{id}", "invalid segment"),
        ("/a//b", "invalid segment"),
    ],
)
def test_invalid_paths(path: str, message: str) -> None:
    with pytest.raises(RoutePathError, match=message):
        parse_path(path)
