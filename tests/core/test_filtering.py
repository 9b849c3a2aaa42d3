"""Tests for Lambda-compatible event filtering (pipelined.core.filtering)."""

from __future__ import annotations

import dataclasses
import json
import operator
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pipelined.core.filtering import EventFilter, FilterPatternError, compile_patterns, validate_patterns
from pipelined.errors import PipelinedError


def match(pattern: object, data: dict[str, Any]) -> bool:
    return compile_patterns([pattern]).matches(data)


# --- operators: each one positive and negative --------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "value", "expected"),
    [
        # exact strings
        (["on"], "on", True),
        (["on"], "off", False),
        (["on"], "ON", False),
        # exact numbers compare by value, never against strings or booleans
        ([5], 5, True),
        ([5], 5.0, True),
        ([5.5], 5.5, True),
        ([5], 6, False),
        ([5], "5", False),
        (["5"], 5, False),
        ([1], True, False),
        ([0], False, False),
        # booleans
        ([True], True, True),
        ([True], False, False),
        ([True], 1, False),
        ([False], 0, False),
        ([True], "true", False),
        # null and empty string are different things
        ([None], None, True),
        ([None], "", False),
        ([None], 0, False),
        ([""], "", True),
        ([""], None, False),
        ([""], " ", False),
        # prefix / suffix only apply to strings
        ([{"prefix": "us-"}], "us-east-1", True),
        ([{"prefix": "us-"}], "eu-west-1", False),
        ([{"prefix": "1"}], 12, False),
        ([{"prefix": {"equals-ignore-case": "US-"}}], "us-east-1", True),
        ([{"prefix": {"equals-ignore-case": "US-"}}], "eu-west-1", False),
        ([{"suffix": ".png"}], "cat.png", True),
        ([{"suffix": ".png"}], "cat.jpg", False),
        ([{"suffix": ".png"}], "cat.PNG", False),
        ([{"suffix": {"equals-ignore-case": ".png"}}], "cat.PNG", True),
        ([{"suffix": {"equals-ignore-case": ".png"}}], "cat.gif", False),
        # equals-ignore-case
        ([{"equals-ignore-case": "alice"}], "ALICE", True),
        ([{"equals-ignore-case": "alice"}], "alicia", False),
        ([{"equals-ignore-case": "1"}], 1, False),
        # anything-but: single value, lists, and the prefix/suffix/ignore-case forms
        ([{"anything-but": "raining"}], "sunny", True),
        ([{"anything-but": "raining"}], "raining", False),
        ([{"anything-but": ["raining", "snowing"]}], "sunny", True),
        ([{"anything-but": ["raining", "snowing"]}], "snowing", False),
        ([{"anything-but": 100}], 200, True),
        ([{"anything-but": 100}], 100, False),
        ([{"anything-but": [100, 200]}], 100.0, False),
        ([{"anything-but": [1]}], True, True),
        ([{"anything-but": ["a"]}], None, True),
        ([{"anything-but": {"prefix": "us-"}}], "eu-west-1", True),
        ([{"anything-but": {"prefix": "us-"}}], "us-east-1", False),
        ([{"anything-but": {"suffix": ".png"}}], "a.jpg", True),
        ([{"anything-but": {"suffix": ".png"}}], "a.png", False),
        ([{"anything-but": {"equals-ignore-case": ["a", "b"]}}], "c", True),
        ([{"anything-but": {"equals-ignore-case": ["a", "b"]}}], "B", False),
        ([{"anything-but": {"equals-ignore-case": "a"}}], "A", False),
        # numeric compares numbers only
        ([{"numeric": [">", 0, "<=", 5]}], 5, True),
        ([{"numeric": [">", 0, "<=", 5]}], 0.5, True),
        ([{"numeric": [">", 0, "<=", 5]}], 0, False),
        ([{"numeric": [">", 0, "<=", 5]}], 5.01, False),
        ([{"numeric": [">=", 0, "<", 5]}], 0, True),
        ([{"numeric": [">=", 0, "<", 5]}], 5, False),
        ([{"numeric": ["<", 10]}], -1e9, True),
        ([{"numeric": ["<", 10]}], 10, False),
        ([{"numeric": [">", 10]}], 11, True),
        ([{"numeric": ["=", 100]}], 100, True),
        ([{"numeric": ["=", 100]}], 100.0, True),
        ([{"numeric": ["=", 100]}], 100.5, False),
        ([{"numeric": ["=", 100]}], "100", False),
        ([{"numeric": [">", 0]}], True, False),
        ([{"numeric": [">", 0]}], None, False),
        # exists on a present leaf
        ([{"exists": True}], "x", True),
        ([{"exists": True}], None, True),
        ([{"exists": False}], "x", False),
    ],
)
def test_operator(rule: list[Any], value: object, expected: bool) -> None:
    assert match({"f": rule}, {"f": value}) is expected


@pytest.mark.parametrize(
    "rule",
    [
        ["x"],
        [None],
        [""],
        [{"prefix": ""}],
        [{"suffix": "x"}],
        [{"equals-ignore-case": "x"}],
        [{"anything-but": "x"}],
        [{"anything-but": {"prefix": "x"}}],
        [{"numeric": [">", 0]}],
        [{"exists": True}],
    ],
)
def test_absent_field_only_matches_exists_false(rule: list[Any]) -> None:
    assert match({"f": rule}, {"other": "x"}) is False
    assert match({"f": [{"exists": False}]}, {"other": "x"}) is True


def test_exists_only_sees_leaves() -> None:
    # As in AWS, an object-valued field or an empty array has no leaf, so it does not "exist".
    assert match({"f": [{"exists": True}]}, {"f": {"a": 1}}) is False
    assert match({"f": [{"exists": False}]}, {"f": {"a": 1}}) is True
    assert match({"f": [{"exists": True}]}, {"f": []}) is False
    assert match({"f": [{"exists": False}]}, {"f": []}) is True
    assert match({"f": [{"exists": True}]}, {"f": ["a"]}) is True


# --- combining: AND across fields, OR within a list, OR across patterns ------------------------


def test_fields_are_anded() -> None:
    pattern = {"city": ["Seattle"], "temp": [{"numeric": [">", 40]}]}
    assert match(pattern, {"city": "Seattle", "temp": 46})
    assert not match(pattern, {"city": "Seattle", "temp": 30})
    assert not match(pattern, {"city": "Boston", "temp": 46})
    assert not match(pattern, {"city": "Seattle"})


def test_list_values_are_ored() -> None:
    pattern = {"kind": ["Credit", "Debit", {"prefix": "gift-"}]}
    for kind in ("Credit", "Debit", "gift-card"):
        assert match(pattern, {"kind": kind})
    assert not match(pattern, {"kind": "Cash"})


def test_patterns_are_ored() -> None:
    event_filter = compile_patterns([{"a": ["1"]}, {"b": ["2"]}])
    assert event_filter.matches({"a": "1"})
    assert event_filter.matches({"b": "2"})
    assert event_filter.matches({"a": "1", "b": "2"})
    assert not event_filter.matches({"a": "2", "b": "1"})


def test_no_patterns_match_everything() -> None:
    assert compile_patterns([]).matches({"anything": 1})
    assert EventFilter().matches({})


def test_dollar_or_combines_fields() -> None:
    pattern = {"source": ["cw"], "$or": [{"metric": ["CPU"]}, {"ns": ["EC2"], "scope": ["svc"]}]}
    assert match(pattern, {"source": "cw", "metric": "CPU"})
    assert match(pattern, {"source": "cw", "ns": "EC2", "scope": "svc"})
    assert not match(pattern, {"source": "cw", "ns": "EC2"})
    assert not match(pattern, {"source": "other", "metric": "CPU"})


def test_dollar_or_holding_operators_is_an_ordinary_field() -> None:
    assert match({"$or": [{"prefix": "a"}]}, {"$or": "abc"})


# --- nesting and arrays ------------------------------------------------------------------------


def test_nested_patterns_descend_into_objects() -> None:
    pattern = {"dynamodb": {"NewImage": {"state": {"S": ["DONE"]}}}, "eventName": ["MODIFY"]}
    assert match(pattern, {"eventName": "MODIFY", "dynamodb": {"NewImage": {"state": {"S": "DONE"}}}})
    assert not match(pattern, {"eventName": "MODIFY", "dynamodb": {"NewImage": {"state": {"S": "RUN"}}}})
    assert not match(pattern, {"eventName": "INSERT", "dynamodb": {"NewImage": {"state": {"S": "DONE"}}}})
    assert not match(pattern, {"eventName": "MODIFY"})
    assert not match(pattern, {"eventName": "MODIFY", "dynamodb": "flat"})


def test_array_field_matches_if_any_element_matches() -> None:
    assert match({"tags": ["b"]}, {"tags": ["a", "b"]})
    assert match({"tags": [{"prefix": "x"}]}, {"tags": ["a", ["xy"]]})
    assert match({"n": [{"numeric": [">", 5]}]}, {"n": [1, 9]})
    assert not match({"tags": ["c"]}, {"tags": ["a", "b"]})
    assert not match({"tags": ["c"]}, {"tags": []})


def test_anything_but_on_array_needs_one_other_element() -> None:
    assert match({"tags": [{"anything-but": "a"}]}, {"tags": ["a", "b"]})
    assert not match({"tags": [{"anything-but": "a"}]}, {"tags": ["a", "a"]})


def test_array_of_objects_matches_within_one_element() -> None:
    event = {"people": [{"first": "John", "last": "Doe"}, {"first": "Anna", "last": "Smith"}]}
    assert match({"people": {"first": ["Anna"]}}, event)
    assert match({"people": {"first": ["Anna"], "last": ["Smith"]}}, event)
    assert not match({"people": {"first": ["Anna"], "last": ["Doe"]}}, event)


# --- non-JSON bodies -----------------------------------------------------------------------------


def test_raw_string_body_matches_plain_string_patterns() -> None:
    assert match({"body": ["hello"]}, {"body": "hello"})
    assert match({"body": [{"prefix": "hel"}]}, {"body": "hello"})
    assert not match({"body": ["bye"]}, {"body": "hello"})


def test_raw_string_body_never_matches_object_patterns() -> None:
    assert not match({"body": {"state": ["hello"]}}, {"body": "hello"})
    assert not match({"body": {"state": [{"exists": False}]}}, {"body": "hello"})
    assert not match({"body": {"state": [{"anything-but": "x"}]}}, {"body": "not json {"})


def test_json_body_does_not_match_plain_string_pattern() -> None:
    assert not match({"body": ['{"a": 1}']}, {"body": {"a": 1}})


# --- input forms and validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    "form",
    [
        {"body": {"state": ["on"]}},
        '{"body": {"state": ["on"]}}',
        b'{"body": {"state": ["on"]}}',
        {"pattern": '{"body": {"state": ["on"]}}'},
        {"Pattern": '{"body": {"state": ["on"]}}'},
    ],
)
def test_accepted_pattern_forms(form: object) -> None:
    event_filter = compile_patterns([form])
    assert event_filter.matches({"body": {"state": "on"}})
    assert not event_filter.matches({"body": {"state": "off"}})


def test_field_named_pattern_is_not_mistaken_for_the_wrapper() -> None:
    assert match({"pattern": ["x"]}, {"pattern": "x"})
    assert match({"pattern": {"a": ["x"]}}, {"pattern": {"a": "x"}})


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ({"body": {"state": "on"}}, 'body.state: values must be in a list (e.g. ["on"])'),
        ({"n": 5}, "n: values must be in a list"),
        ({"a": [{"foo": 1}]}, 'unknown operator "foo"'),
        ({"a": [{"prefix": "a", "suffix": "b"}]}, "exactly one key"),
        ({"a": [{}]}, "exactly one key"),
        ({"a": [{"prefix": 1}]}, "'prefix' needs a string"),
        ({"a": [{"suffix": None}]}, "'suffix' needs a string"),
        ({"a": [{"prefix": {"wildcard": "x"}}]}, "'prefix' needs a string"),
        ({"a": [{"equals-ignore-case": 1}]}, "'equals-ignore-case' needs a string"),
        ({"a": [{"exists": "yes"}]}, "'exists' needs true or false"),
        ({"a": [{"numeric": [">", "0"]}]}, "'numeric' needs a finite number after '>'"),
        ({"a": [{"numeric": [">", True]}]}, "'numeric' needs a finite number"),
        ({"a": [{"numeric": ["!=", 0]}]}, '"!=" is not a comparison operator'),
        ({"a": [{"numeric": [">", 0, "<"]}]}, "'numeric' needs [op, number]"),
        ({"a": [{"numeric": 5}]}, "'numeric' needs [op, number]"),
        ({"a": [{"numeric": [">", 0, ">", 1]}]}, "two lower bounds"),
        ({"a": [{"numeric": ["<", 0, "<=", 1]}]}, "two upper bounds"),
        ({"a": [{"numeric": ["=", 0, "<", 1]}]}, "cannot combine '='"),
        ({"a": [{"numeric": [">", 5, "<", 1]}]}, "can never match"),
        ({"a": [{"numeric": [">", float("inf")]}]}, "finite number"),
        ({"a": [{"anything-but": []}]}, "'anything-but' needs"),
        ({"a": [{"anything-but": ["x", 1]}]}, "only strings or only numbers"),
        ({"a": [{"anything-but": None}]}, "'anything-but' needs"),
        ({"a": [{"anything-but": {"numeric": [">", 1]}}]}, "prefix, suffix or equals-ignore-case"),
        ({"a": [{"anything-but": {"equals-ignore-case": [1]}}]}, "needs a string"),
        ({"a": []}, "an empty list matches nothing"),
        ({"a": [["x"]]}, "unsupported value"),
        ({"a": [float("nan")]}, "unsupported value"),
        ({}, "an empty object is not a valid pattern"),
        ({"a": {}}, "a: an empty object"),
        ({"$or": [{"a": ["x"]}]}, "'$or' needs at least two patterns"),
        ({1: ["x"]}, "field names must be strings"),
        ("{not json", "invalid JSON"),
        ('["a"]', "a pattern must be a JSON object"),
        (42, "a pattern must be a JSON object"),
        ({"pattern": "{oops"}, "invalid JSON"),
    ],
)
def test_invalid_pattern_messages(pattern: object, message: str) -> None:
    with pytest.raises(FilterPatternError) as info:
        validate_patterns([pattern])
    assert str(info.value).startswith("pattern 1: ")
    assert message in str(info.value)
    with pytest.raises(FilterPatternError):
        compile_patterns([pattern])


def test_error_names_the_failing_pattern() -> None:
    with pytest.raises(FilterPatternError, match=r"^pattern 2: x\.y: 'numeric'"):
        validate_patterns([{"a": ["ok"]}, {"x": {"y": [{"numeric": [">", "zero"]}]}}])


def test_at_most_five_patterns() -> None:
    validate_patterns([{"a": [i]} for i in range(5)])
    with pytest.raises(FilterPatternError, match="at most 5 filter patterns are allowed, got 6"):
        validate_patterns([{"a": [i]} for i in range(6)])


@pytest.mark.parametrize("patterns", ['{"a": ["x"]}', {"a": ["x"]}, None])
def test_patterns_must_be_a_list(patterns: Any) -> None:
    with pytest.raises(FilterPatternError, match="expected a list of patterns"):
        compile_patterns(patterns)


def test_error_types_and_immutability() -> None:
    assert issubclass(FilterPatternError, ValueError)
    assert issubclass(FilterPatternError, PipelinedError)
    validate_patterns([{"a": ["x"]}])
    event_filter = compile_patterns([{"a": ["x"]}])
    with pytest.raises(dataclasses.FrozenInstanceError):
        event_filter._patterns = ()  # type: ignore[misc]


# --- properties ----------------------------------------------------------------------------------

keys = st.text(alphabet="abc", min_size=1, max_size=2)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=6),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=12,
)
events = st.dictionaries(keys, json_values, min_size=1, max_size=4)


def leaf_paths(value: object, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], object]]:
    if isinstance(value, dict):
        for key, child in value.items():
            yield from leaf_paths(child, (*path, key))
    elif isinstance(value, list):
        for item in value:
            yield from leaf_paths(item, path)
    elif path:
        yield path, value


def nest(path: tuple[str, ...], leaf: list[Any]) -> dict[str, Any]:
    pattern: Any = leaf
    for key in reversed(path):
        pattern = {key: pattern}
    return dict(pattern)


@settings(max_examples=100, deadline=None)
@given(event=events, data=st.data())
def test_pattern_from_an_events_own_leaf_matches_it(event: dict[str, Any], data: st.DataObject) -> None:
    paths = list(leaf_paths(event))
    assume(paths)
    path, value = data.draw(st.sampled_from(paths))
    assert match(nest(path, [value]), event)
    assert match(json.dumps(nest(path, [value])), event)


strings_or_numbers = st.one_of(st.text(max_size=4), st.integers(-5, 5), st.floats(-5, 5, allow_nan=False))


@settings(max_examples=200, deadline=None)
@given(value=st.one_of(scalars, strings_or_numbers), excluded=strings_or_numbers, as_list=st.booleans())
def test_anything_but_is_the_complement_of_exact(value: object, excluded: object, as_list: bool) -> None:
    rule = [excluded] if as_list else excluded
    event = {"f": value}
    assert match({"f": [{"anything-but": rule}]}, event) is not match({"f": [excluded]}, event)


small_text = st.text(alphabet="ab", max_size=3)
conditions = st.one_of(
    small_text,
    st.integers(0, 3),
    st.booleans(),
    st.none(),
    small_text.map(lambda s: {"prefix": s}),
    small_text.map(lambda s: {"suffix": s}),
    small_text.map(lambda s: {"anything-but": s}),
    st.integers(0, 3).map(lambda n: {"numeric": [">=", n]}),
    st.booleans().map(lambda b: {"exists": b}),
)
fields = st.sampled_from(["a", "b", "c"])
flat_patterns = st.dictionaries(fields, st.lists(conditions, min_size=1, max_size=3), min_size=1, max_size=2)
patterns = st.one_of(flat_patterns, flat_patterns.map(lambda p: {"n": p}))
small_values = st.one_of(small_text, st.integers(0, 3), st.booleans(), st.none())
flat_events = st.dictionaries(fields, small_values | st.lists(small_values, max_size=2), max_size=3)
small_events = st.one_of(
    flat_events, st.builds(lambda top, inner: {**top, "n": inner}, flat_events, flat_events)
)


@settings(max_examples=150, deadline=None)
@given(pattern_list=st.lists(patterns, max_size=5), event=small_events)
def test_pattern_list_is_the_or_of_each_pattern(
    pattern_list: list[dict[str, Any]], event: dict[str, Any]
) -> None:
    expected = any(compile_patterns([p]).matches(event) for p in pattern_list) if pattern_list else True
    assert compile_patterns(pattern_list).matches(event) is expected
    assert compile_patterns([json.dumps(p) for p in pattern_list]).matches(event) is expected


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=8), affix=st.text(max_size=3))
def test_prefix_and_suffix_agree_with_str_methods(text: str, affix: str) -> None:
    assert match({"f": [{"prefix": affix}]}, {"f": text}) is text.startswith(affix)
    assert match({"f": [{"suffix": affix}]}, {"f": text}) is text.endswith(affix)
    assert match({"f": [{"anything-but": {"prefix": affix}}]}, {"f": text}) is not text.startswith(affix)


comparisons: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
    "=": operator.eq,
}
numbers = st.integers(-10, 10) | st.floats(-10, 10, allow_nan=False)


@settings(max_examples=200, deadline=None)
@given(op=st.sampled_from(sorted(comparisons)), bound=numbers, value=numbers)
def test_numeric_agrees_with_python_comparisons(op: str, bound: float, value: float) -> None:
    assert match({"f": [{"numeric": [op, bound]}]}, {"f": value}) is comparisons[op](value, bound)
