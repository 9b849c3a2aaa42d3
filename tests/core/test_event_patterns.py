"""The EventBridge pattern language: each operator, its errors, and a property test against a reference."""

from __future__ import annotations

import functools
import ipaddress
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelined.core.event_patterns import FilterPatternError, compile_pattern
from pipelined.core.filtering import compile_patterns


def matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return compile_pattern(pattern).matches(event)


@pytest.mark.parametrize(
    ("condition", "yes", "no"),
    [
        ({"wildcard": "dir/*.png"}, ["dir/a.png", "dir/.png", "dir/x/y.png"], ["dir/a.jpg", "xdir/a.png", 5]),
        ({"wildcard": "*"}, ["", "anything"], [1, None, True]),
        ({"wildcard": r"a\*b*"}, ["a*b", "a*bcd"], ["axb", "ab"]),
        ({"wildcard": r"c:\\*"}, ["c:\\x"], ["c:x"]),
        ({"cidr": "10.0.0.0/24"}, ["10.0.0.1", "10.0.0.255"], ["10.0.1.1", "not an ip", 10, "::1"]),
        ({"cidr": "2001:db8::/32"}, ["2001:db8::1", "2001:DB8:0:1::"], ["2001:db9::1", "10.0.0.1"]),
        ({"anything-but": {"wildcard": "*.txt"}}, ["a.pdf", ""], ["a.txt", 3]),
        ({"anything-but": {"wildcard": ["*.txt", "tmp/*"]}}, ["a.pdf"], ["a.txt", "tmp/a.pdf"]),
        ({"anything-but": {"prefix": "init"}}, ["done"], ["initial"]),
        ({"anything-but": {"suffix": ".tmp"}}, ["a.txt"], ["a.tmp"]),
        ({"anything-but": {"equals-ignore-case": ["X", "y"]}}, ["z"], ["x", "Y"]),
        ({"anything-but": ["a", "b"]}, ["c", 1], ["a"]),
        ({"anything-but": [1, 2]}, [3, "1"], [1, 2.0]),
        ({"equals-ignore-case": "PaId"}, ["paid", "PAID"], ["unpaid", 1]),
        ({"prefix": {"equals-ignore-case": "EU-"}}, ["eu-west", "Eu-north"], ["us-east"]),
        ({"suffix": {"equals-ignore-case": ".PNG"}}, ["a.png"], ["a.jpg"]),
        ({"numeric": [">", 0, "<=", 5]}, [1, 5, 0.5], [0, 6, "3", True]),
        ({"numeric": ["=", 3.0]}, [3, 3.0], [3.1]),
    ],
)
def test_each_operator_matches_what_eventbridge_documents(
    condition: dict[str, Any], yes: list[Any], no: list[Any]
) -> None:
    pattern = {"detail": {"value": [condition]}}
    for value in yes:
        assert matches(pattern, {"detail": {"value": value}}), value
    for value in no:
        assert not matches(pattern, {"detail": {"value": value}}), value


def test_exists_or_nested_keys_and_arrays() -> None:
    pattern = {
        "source": ["shop"],
        "detail": {"items": {"sku": [{"prefix": "A-"}]}, "coupon": [{"exists": False}]},
        "$or": [{"detail-type": ["Order"]}, {"detail": {"priority": [{"numeric": [">", 5]}]}}],
    }
    event = {"source": "shop", "detail-type": "Order", "detail": {"items": [{"sku": "B-1"}, {"sku": "A-2"}]}}
    assert matches(pattern, event)
    assert not matches(pattern, {**event, "detail": {**event["detail"], "coupon": "X"}})
    assert not matches(pattern, {**event, "detail-type": "Refund"})
    assert matches(pattern, {**event, "detail-type": "Refund", "detail": {**event["detail"], "priority": 9}})
    assert matches({"tags": ["b"]}, {"tags": ["a", "b"]}) and not matches({"tags": ["c"]}, {"tags": ["a"]})
    assert matches({"a": [{"exists": True}]}, {"a": [1]}) and not matches(
        {"a": [{"exists": True}]}, {"a": []}
    )


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ({"a": [{"wildcard": "a**b"}]}, "consecutive '*' are not allowed"),
        ({"a": [{"wildcard": "a\\b"}]}, "only '*' and '\\' may follow a backslash"),
        ({"a": [{"wildcard": 5}]}, "'wildcard' needs a string"),
        ({"a": [{"cidr": "10.0.0.0/33"}]}, "'cidr' needs an IPv4 or IPv6 network"),
        (
            {"a": [{"anything-but": {"numeric": [">", 1]}}]},
            "needs one key: prefix, suffix, equals-ignore-case or wildcard",
        ),
        ({"a": [{"nope": 1}]}, 'unknown operator "nope"'),
        ({"a": "x"}, "values must be in a list"),
        ("[1]", "a pattern must be a JSON object"),
        ("{", "invalid JSON"),
    ],
)
def test_invalid_patterns_say_where_and_why(pattern: object, message: str) -> None:
    with pytest.raises(FilterPatternError, match=None) as info:
        compile_pattern(pattern)
    assert message in str(info.value)


def test_lambda_filtering_still_refuses_eventbridge_only_operators() -> None:
    for condition in ({"wildcard": "a*"}, {"cidr": "10.0.0.0/8"}, {"anything-but": {"wildcard": "a*"}}):
        with pytest.raises(FilterPatternError):
            compile_patterns([{"a": [condition]}])
        compile_pattern({"a": [condition]})


# --- a property test against a plain reference implementation -------------------------------------

_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _wildcard(pattern: str, text: str) -> bool:
    @functools.cache
    def match(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(text)
        if pattern[i] == "*":
            return match(i + 1, j) or (j < len(text) and match(i, j + 1))
        return j < len(text) and pattern[i] == text[j] and match(i + 1, j + 1)

    return match(0, 0)


def _condition(condition: Any, value: Any) -> bool:
    if not isinstance(condition, dict):
        return _same(condition, value)
    ((op, arg),) = condition.items()
    text = value if isinstance(value, str) else None
    if op == "prefix":
        return text is not None and text.startswith(arg)
    if op == "suffix":
        return text is not None and text.endswith(arg)
    if op == "equals-ignore-case":
        return text is not None and text.casefold() == arg.casefold()
    if op == "wildcard":
        return text is not None and _wildcard(arg, text)
    if op == "anything-but":
        return not any(_same(excluded, value) for excluded in arg)
    if op == "numeric":
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and arg[1] < value <= arg[3]
    if op == "cidr":
        try:
            return text is not None and ipaddress.ip_address(text) in ipaddress.ip_network(arg)
        except ValueError:
            return False
    raise AssertionError(op)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list):
        return [leaf for item in value for leaf in _flatten(item)]
    return [] if isinstance(value, dict) else [value]


def _object(condition: dict[str, Any], value: Any) -> bool:
    if isinstance(value, dict):
        return reference(condition, value)
    if value is _MISSING:
        return reference(condition, {})
    if isinstance(value, list):
        return any(_object(condition, v) for v in value) if value else reference(condition, {})
    return False


def reference(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    """EventBridge's rules written as plainly as possible."""
    for key, condition in pattern.items():
        value = event.get(key, _MISSING)
        if isinstance(condition, dict):
            ok = _object(condition, value)
        else:
            leaves = [] if value is _MISSING else _flatten(value)
            exists = [c["exists"] for c in condition if isinstance(c, dict) and "exists" in c]
            others = [c for c in condition if not (isinstance(c, dict) and "exists" in c)]
            if not leaves:
                ok = False in exists
            else:
                ok = True in exists or any(_condition(c, v) for c in others for v in leaves)
        if not ok:
            return False
    return True


_WORDS = st.sampled_from(["", "a", "ab", "ba", "abc", "A", "10.0.0.1", "10.1.0.1", "::1"])
_SCALARS = st.one_of(_WORDS, st.integers(-3, 3), st.booleans(), st.none())
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("xy"), inner, max_size=2),
    max_leaves=6,
)
_CONDITIONS = st.one_of(
    _SCALARS,
    st.builds(lambda w: {"prefix": w}, _WORDS),
    st.builds(lambda w: {"suffix": w}, _WORDS),
    st.builds(lambda w: {"equals-ignore-case": w}, _WORDS),
    st.builds(lambda w: {"wildcard": w}, st.sampled_from(["*", "a*", "*b", "a*c", "*b*", "", "ab"])),
    st.builds(lambda ws: {"anything-but": ws}, st.lists(_WORDS, min_size=1, max_size=2)),
    st.builds(lambda n: {"numeric": [">", n, "<=", n + 2]}, st.integers(-3, 2)),
    st.builds(lambda b: {"exists": b}, st.booleans()),
    st.builds(lambda c: {"cidr": c}, st.sampled_from(["10.0.0.0/16", "::/0"])),
)
_PATTERNS = st.recursive(
    st.dictionaries(
        st.sampled_from("xy"), st.lists(_CONDITIONS, min_size=1, max_size=3), min_size=1, max_size=2
    ),
    lambda inner: st.dictionaries(st.sampled_from("xy"), inner, min_size=1, max_size=2),
    max_leaves=4,
)


@settings(max_examples=400, deadline=None)
@given(pattern=_PATTERNS, event=st.dictionaries(st.sampled_from("xy"), _VALUES, min_size=1, max_size=2))
def test_compiled_patterns_agree_with_the_reference(pattern: dict[str, Any], event: dict[str, Any]) -> None:
    assert compile_pattern(json.dumps(pattern)).matches(event) == reference(pattern, event)
