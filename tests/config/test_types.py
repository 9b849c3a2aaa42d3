"""Tests for the value types: config models are frozen and strict; durations parse and reject."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from pipelined.config import HttpConfig, parse_duration


def test_models_are_frozen_and_strict() -> None:
    config = HttpConfig()
    with pytest.raises(ValidationError):
        config.listen = "0.0.0.0:1"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        HttpConfig.model_validate({"listen": "h:1", "extra": True})


# --- durations -------------------------------------------------------------------------------

FACTORS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


@given(st.integers(min_value=0, max_value=10**9), st.sampled_from(sorted(FACTORS)))
def test_duration_with_unit_round_trips(count: int, unit: str) -> None:
    expected = count / 1000 if unit == "ms" else float(count * FACTORS[unit])
    assert parse_duration(f"{count}{unit}") == expected
    assert parse_duration(f" {count} {unit} ") == expected


@given(st.integers(min_value=0, max_value=10**12), st.floats(min_value=0, max_value=1e12))
def test_plain_numbers_are_seconds(whole: int, seconds: float) -> None:
    assert parse_duration(whole) == parse_duration(str(whole)) == float(whole)
    assert parse_duration(seconds) == seconds
    assert parse_duration(f"{seconds:.3f}") == float(f"{seconds:.3f}")


@given(st.text(max_size=20))
def test_garbage_only_ever_raises_value_error(text: str) -> None:
    try:
        assert parse_duration(text) >= 0
    except ValueError as exc:
        assert str(exc)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("500ms", 0.5),
        ("30", 30.0),
        ("1.5h", 5400.0),
        ("1h30m", 5400.0),
        ("7d", 604800.0),
        (0, 0.0),
        ("0s", 0.0),
    ],
)
def test_duration_examples(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("-5s", "must not be negative"),
        (-1, "must not be negative"),
        ("5 minutes", "expected seconds or a number with a unit"),
        ("", "expected seconds or a number with a unit"),
        ("5S", "expected seconds or a number with a unit"),
        (True, "expected a duration"),
        (None, "expected a duration"),
        ([5], "expected a duration"),
        (math.inf, "must be a finite number"),
        (math.nan, "must be a finite number"),
        (10**400, "must be a finite number"),
    ],
)
def test_bad_durations(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_duration(value)
