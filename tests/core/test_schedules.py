"""Tests for pipelined.core.schedules: parsing, fire times, DST and a brute-force oracle."""

from __future__ import annotations

import calendar
import time as time_module
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pipelined.core.schedules import (
    AtExpression,
    CronExpression,
    RateExpression,
    ScheduleExpressionError,
    parse_schedule,
    validate_timezone,
)
from pipelined.errors import PipelinedError

UTC_ZONE = ZoneInfo("UTC")
NEW_YORK = ZoneInfo("America/New_York")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def cron(expression: str) -> CronExpression:
    parsed = parse_schedule(expression)
    assert isinstance(parsed, CronExpression)
    return parsed


def fire_times(expression: str, after: datetime, count: int, tz: ZoneInfo = UTC_ZONE) -> list[datetime]:
    parsed = parse_schedule(expression)
    result = []
    for _ in range(count):
        following = parsed.next_after(after, tz)
        assert following is not None
        result.append(following)
        after = following
    return result


# --- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("", "is not a schedule expression"),
        ("every 5 minutes", "is not a schedule expression"),
        ("RATE(5 minutes)", "is not a schedule expression"),
        ("cron 0 10 * * ? *", "is not a schedule expression"),
        ("cron(0 10 * * ?", "is not a schedule expression"),
        ("cron()", "expected 6 fields"),
        ("cron(0 10 * * ?)", "expected 6 fields (minutes hours day-of-month month day-of-week year), got 5"),
        ("cron(0 0 10 * * ? *)", "got 7"),
        ("cron(0 10 * * * *)", "one of day-of-month and day-of-week must be '?'"),
        ("cron(0 10 1 * MON *)", "one of day-of-month and day-of-week must be '?'"),
        ("cron(0 10 ? * ? *)", "day-of-month and day-of-week cannot both be '?'"),
        ("cron(60 10 * * ? *)", "minutes value 60 is out of range 0-59"),
        ("cron(0 24 * * ? *)", "hours value 24 is out of range 0-23"),
        ("cron(0 0 0 * ? *)", "day-of-month value 0 is out of range 1-31"),
        ("cron(0 0 32 * ? *)", "day-of-month value 32 is out of range 1-31"),
        ("cron(0 0 * 0 ? *)", "month value 0 is out of range 1-12"),
        ("cron(0 0 * 13 ? *)", "month value 13 is out of range 1-12"),
        ("cron(0 0 ? * 0 *)", "day-of-week value 0 is out of range 1-7"),
        ("cron(0 0 ? * 8 *)", "day-of-week value 8 is out of range 1-7"),
        ("cron(0 0 * * ? 1969)", "year value 1969 is out of range 1970-2199"),
        ("cron(0 0 * * ? 2200)", "year value 2200 is out of range 1970-2199"),
        ("cron(99999999999999999999 0 * * ? *)", "out of range"),
        ("cron(a 0 * * ? *)", "invalid minutes 'a'"),
        ("cron(-1 0 * * ? *)", "invalid minutes '-1'"),
        ("cron(1,,2 0 * * ? *)", "invalid minutes ''"),
        ("cron(? 0 * * ? *)", "invalid minutes '?'"),
        ("cron(0 0 * FOO ? *)", "invalid month 'FOO'"),
        ("cron(0 0 * L ? *)", "invalid month 'L'"),
        ("cron(0 0 ? * Fun *)", "invalid day-of-week 'Fun'"),
        ("cron(0 0 ? * MON *)", None),
        ("cron(30-10 0 * * ? *)", "minutes range '30-10' runs backwards"),
        ("cron(0 0 ? * FRI-MON *)", "day-of-week range 'FRI-MON' runs backwards"),
        ("cron(*/0 0 * * ? *)", "step in minutes '*/0' must be 1-60"),
        ("cron(0/61 0 * * ? *)", "step in minutes '0/61' must be 1-60"),
        ("cron(0/x 0 * * ? *)", "step in minutes '0/x' must be 1-60"),
        ("cron(0 0 30 2 ? *)", "day-of-month 30 never occurs in the selected months"),
        ("cron(0 0 31 APR,JUN ? *)", "day-of-month 31 never occurs"),
        ("cron(0 0 30W FEB ? *)", "day-of-month 30 never occurs"),
        ("cron(0 0 0W * ? *)", "day-of-month value 0 is out of range 1-31"),
        ("cron(0 0 32W * ? *)", "day-of-month value 32 is out of range 1-31"),
        ("cron(0 0 1,L * ? *)", "L and W must stand alone"),
        ("cron(0 0 1,l * ? *)", "day-of-month '1,l': L and W must stand alone"),
        ("cron(0 0 1-15W * ? *)", "L and W must stand alone"),
        ("cron(0 0 L-2 * ? *)", "L and W must stand alone"),
        ("cron(0 0 W * ? *)", "L and W must stand alone"),
        ("cron(0 0 ? * 3#0 *)", "the number after # must be 1-5"),
        ("cron(0 0 ? * 3#6 *)", "the number after # must be 1-5"),
        ("cron(0 0 ? * 8#1 *)", "day-of-week value 8 is out of range 1-7"),
        ("cron(0 0 ? * 0L *)", "day-of-week value 0 is out of range 1-7"),
        ("cron(0 0 ? * 1,6L *)", "day-of-week '1,6L': L and # must stand alone"),
        ("cron(0 0 ? * 1-3#2 *)", "L and # must stand alone"),
        ("cron(0 0 ? * 6L,7 *)", "invalid day-of-week '6L'"),
        ("cron(0 0 ? * 6LL *)", "invalid day-of-week '6LL'"),
        ("cron(0 0 ? * 3#2#1 *)", "the number after # must be 1-5"),
        ("rate(5)", "expected rate(value unit)"),
        ("rate(5 minutes please)", "expected rate(value unit)"),
        ("rate(0 minutes)", "rate value '0' is not a positive integer"),
        ("rate(-1 minutes)", "rate value '-1' is not a positive integer"),
        ("rate(1.5 hours)", "rate value '1.5' is not a positive integer"),
        ("rate(five minutes)", "rate value 'five' is not a positive integer"),
        ("rate(1 minutes)", "use the singular 'minute' when the value is 1"),
        ("rate(5 minute)", "use the plural 'minutes' when the value is not 1"),
        ("rate(1 hours)", "use the singular 'hour'"),
        ("rate(2 day)", "use the plural 'days'"),
        ("rate(1 seconds)", "use the singular 'second'"),
        ("rate(5 second)", "use the plural 'seconds'"),
        ("rate(5 weeks)", "unknown rate unit 'weeks'"),
        ("rate(5 Minutes)", "unknown rate unit 'Minutes'"),
        ("rate(99999999999999 days)", "rate value 99999999999999 is too large"),
        ("at(2026-02-30T10:00:00)", "invalid date or time"),
        ("at(2026-01-01T25:00:00)", "invalid date or time"),
        ("at(2026-01-01 10:00:00)", "expected at(yyyy-mm-ddThh:mm:ss)"),
        ("at(2026-1-1T10:00:00)", "expected at(yyyy-mm-ddThh:mm:ss)"),
        ("at(2026-01-01T10:00)", "expected at(yyyy-mm-ddThh:mm:ss)"),
        ("at(2026-01-01T10:00:00Z)", "expected at(yyyy-mm-ddThh:mm:ss)"),
    ],
)
def test_parse_errors(expression: str, message: str | None) -> None:
    if message is None:  # a control: the near-miss forms above differ from this valid one
        parse_schedule(expression)
        return
    with pytest.raises(ScheduleExpressionError) as caught:
        parse_schedule(expression)
    assert message in str(caught.value)
    if expression.startswith(("rate(", "cron(", "at(")) and expression.endswith(")"):
        assert str(caught.value).startswith(f"{expression}: ")


def test_error_is_a_value_error_and_a_pipelined_error() -> None:
    with pytest.raises(ValueError, match="must be '\\?'"):
        parse_schedule("cron(0 10 * * * *)")
    assert issubclass(ScheduleExpressionError, PipelinedError)


@pytest.mark.parametrize(
    ("expression", "interval"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(5 minutes)", timedelta(minutes=5)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(12 hours)", timedelta(hours=12)),
        ("rate(1 day)", timedelta(days=1)),
        ("rate(7 days)", timedelta(days=7)),
        ("rate(1 second)", timedelta(seconds=1)),
        ("rate(30 seconds)", timedelta(seconds=30)),
        ("  rate(10 minutes)  ", timedelta(minutes=10)),
    ],
)
def test_parse_rate(expression: str, interval: timedelta) -> None:
    assert parse_schedule(expression) == RateExpression(interval=interval, text=expression.strip())


def test_parse_at() -> None:
    assert parse_schedule("at(2026-03-08T02:30:00)") == AtExpression(
        when=datetime(2026, 3, 8, 2, 30), text="at(2026-03-08T02:30:00)"
    )


def test_cron_keeps_its_text_and_names_are_case_insensitive() -> None:
    parsed = cron("cron(0 9 ? jan-Mar mon-fri *)")
    assert parsed.text == "cron(0 9 ? jan-Mar mon-fri *)"
    assert repr(parsed) == "CronExpression(text='cron(0 9 ? jan-Mar mon-fri *)')"
    assert parsed.next_after(utc(2026, 1, 3), UTC_ZONE) == utc(2026, 1, 5, 9)  # Saturday -> Monday


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        ("cron(0 10 l * ? *)", "cron(0 10 L * ? *)"),
        ("cron(0 10 lw * ? *)", "cron(0 10 LW * ? *)"),
        ("cron(0 10 15w * ? *)", "cron(0 10 15W * ? *)"),
        ("cron(0 10 ? * l *)", "cron(0 10 ? * L *)"),
        ("cron(0 10 ? * fril *)", "cron(0 10 ? * FRIL *)"),
        ("cron(0 10 ? * 6l *)", "cron(0 10 ? * 6L *)"),
        ("cron(0 10 ? * tue#2 *)", "cron(0 10 ? * TUE#2 *)"),
        ("cron(0 10 ? jan-mar/2 sun,Sat *)", "cron(0 10 ? JAN-MAR/2 SUN,SAT *)"),
    ],
)
def test_letters_are_case_insensitive(lower: str, upper: str) -> None:
    assert fire_times(lower, utc(2026, 1, 1), 6) == fire_times(upper, utc(2026, 1, 1), 6)


def test_validate_timezone() -> None:
    assert validate_timezone("America/New_York") == NEW_YORK
    assert validate_timezone("UTC") == UTC_ZONE
    for bad in ("Not/AZone", "", "America", "../etc/passwd", "/etc/passwd", "utc "):
        with pytest.raises(ScheduleExpressionError, match=f"^unknown time zone '{bad}'$"):
            validate_timezone(bad)


# --- fire times ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # L: the last day of the month, leap years included.
        ("cron(0 10 L * ? *)", utc(2024, 2, 1), [utc(2024, 2, 29, 10), utc(2024, 3, 31, 10)]),
        ("cron(0 10 L * ? *)", utc(2026, 2, 1), [utc(2026, 2, 28, 10), utc(2026, 3, 31, 10)]),
        # LW: the last weekday; Jan 31 2026 is a Saturday, Feb 28 a Saturday, May 31 a Sunday.
        (
            "cron(0 10 LW * ? *)",
            utc(2026, 1, 1),
            [utc(2026, 1, 30, 10), utc(2026, 2, 27, 10), utc(2026, 3, 31, 10), utc(2026, 4, 30, 10)],
        ),
        ("cron(0 10 LW * ? *)", utc(2026, 5, 1), [utc(2026, 5, 29, 10)]),
        # 15W: Nov 15 2025 is a Saturday (-> Fri 14), Feb 15 2026 a Sunday (-> Mon 16).
        ("cron(0 10 15W * ? *)", utc(2025, 11, 1), [utc(2025, 11, 14, 10), utc(2025, 12, 15, 10)]),
        ("cron(0 10 15W * ? *)", utc(2026, 2, 1), [utc(2026, 2, 16, 10), utc(2026, 3, 16, 10)]),
        # 1W never leaves the month: Nov 1 2025 is a Saturday -> Monday 3rd, not Friday Oct 31.
        ("cron(0 0 1W * ? *)", utc(2025, 10, 15), [utc(2025, 11, 3), utc(2025, 12, 1)]),
        ("cron(0 0 1W * ? *)", utc(2026, 2, 1, 12), [utc(2026, 2, 2), utc(2026, 3, 2), utc(2026, 4, 1)]),
        # 31W: Aug 31 2025 is a Sunday -> Fri 29; 30-day months are skipped.
        ("cron(0 0 31W * ? *)", utc(2025, 8, 1), [utc(2025, 8, 29), utc(2025, 10, 31)]),
        ("cron(0 0 31W * ? *)", utc(2026, 4, 1), [utc(2026, 5, 29), utc(2026, 7, 31)]),
        ("cron(0 0 30W * ? *)", utc(2025, 8, 1), [utc(2025, 8, 29), utc(2025, 9, 30)]),
        # The W day itself is already past: move on to the next month.
        ("cron(0 10 15W * ? *)", utc(2025, 11, 14, 10), [utc(2025, 12, 15, 10)]),
        # Day-of-week counts 1 = SUN ... 7 = SAT.
        ("cron(0 0 ? * 1 *)", utc(2026, 1, 1), [utc(2026, 1, 4), utc(2026, 1, 11)]),
        ("cron(0 0 ? * SUN *)", utc(2026, 1, 1), [utc(2026, 1, 4)]),
        ("cron(0 0 ? * 7 *)", utc(2026, 1, 1), [utc(2026, 1, 3)]),
        ("cron(0 0 ? * L *)", utc(2026, 1, 1), [utc(2026, 1, 3), utc(2026, 1, 10)]),
        # 6L = last Friday, 7L = last Saturday, FRIL is the same as 6L.
        ("cron(0 0 ? * 6L *)", utc(2026, 1, 1), [utc(2026, 1, 30), utc(2026, 2, 27), utc(2026, 3, 27)]),
        ("cron(0 0 ? * FRIL *)", utc(2026, 1, 1), [utc(2026, 1, 30)]),
        ("cron(0 0 ? * 7L *)", utc(2026, 1, 1), [utc(2026, 1, 31), utc(2026, 2, 28)]),
        # 3#2 = second Tuesday; 2#5 = fifth Monday (the first in 2026 is March 30).
        ("cron(0 0 ? * 3#2 *)", utc(2026, 1, 1), [utc(2026, 1, 13), utc(2026, 2, 10), utc(2026, 3, 10)]),
        ("cron(0 0 ? * TUE#2 *)", utc(2026, 1, 1), [utc(2026, 1, 13)]),
        ("cron(0 0 ? * 2#5 *)", utc(2026, 1, 1), [utc(2026, 3, 30), utc(2026, 6, 29)]),
        # Ranges, lists and steps with names.
        (
            "cron(0 9 ? * MON-FRI *)",
            utc(2026, 1, 1, 9),
            [utc(2026, 1, 2, 9), utc(2026, 1, 5, 9), utc(2026, 1, 6, 9)],
        ),
        ("cron(0 0 1 JAN,JUL ? *)", utc(2026, 1, 1), [utc(2026, 7, 1), utc(2027, 1, 1)]),
        ("cron(0 0 1 FEB-APR/2 ? *)", utc(2026, 1, 1), [utc(2026, 2, 1), utc(2026, 4, 1), utc(2027, 2, 1)]),
        (
            "cron(0/15 10 * * ? *)",
            utc(2026, 1, 1, 10, 20),
            [utc(2026, 1, 1, 10, 30), utc(2026, 1, 1, 10, 45), utc(2026, 1, 2, 10)],
        ),
        ("cron(*/20 8-9 * * ? *)", utc(2026, 1, 1, 9, 40), [utc(2026, 1, 2, 8), utc(2026, 1, 2, 8, 20)]),
        ("cron(5,10 0 1-2,5 * ? *)", utc(2026, 1, 2, 0, 10), [utc(2026, 1, 5, 0, 5)]),
        ("cron(0 0 ? * 2/3 *)", utc(2026, 1, 1), [utc(2026, 1, 5), utc(2026, 1, 8), utc(2026, 1, 12)]),
        # Years: lists, ranges, steps.
        ("cron(0 0 1 1 ? 2030-2032)", utc(2026, 5, 1), [utc(2030, 1, 1), utc(2031, 1, 1), utc(2032, 1, 1)]),
        ("cron(0 0 1 1 ? 2030/5)", utc(2026, 5, 1), [utc(2030, 1, 1), utc(2035, 1, 1)]),
        ("cron(0 0 1 1 ? 2027,2029)", utc(2027, 1, 1), [utc(2029, 1, 1)]),
        ("cron(0 10 15W * ? 2199)", utc(2026, 1, 1), [utc(2199, 1, 15, 10), utc(2199, 2, 15, 10)]),
        ("cron(0 0 29 2 ? *)", utc(2097, 1, 1), [utc(2104, 2, 29)]),  # 2100 is not a leap year
        # A fifth Thursday in February needs Feb 29 to be a Thursday: 2052, then 2080, then
        # 2120 (2100 is not a leap year) -- 40 years, close to cronsim's 50-year search limit.
        ("cron(0 0 ? 2 5#5 *)", utc(2026, 1, 1), [utc(2052, 2, 29), utc(2080, 2, 29), utc(2120, 2, 29)]),
        # Strictly after: a fire time equal to `after` is not returned; seconds are dropped.
        ("cron(0 10 * * ? *)", utc(2026, 1, 1, 10), [utc(2026, 1, 2, 10)]),
        ("cron(0 10 * * ? *)", utc(2026, 1, 1, 9, 59, 59), [utc(2026, 1, 1, 10)]),
        ("cron(* * * * ? *)", datetime(2026, 1, 1, 10, 0, 0, 500, tzinfo=UTC), [utc(2026, 1, 1, 10, 1)]),
    ],
)
def test_known_fire_times(expression: str, after: datetime, expected: list[datetime]) -> None:
    assert fire_times(expression, after, len(expected)) == expected


def test_cron_runs_out_after_its_last_year() -> None:
    parsed = cron("cron(0 0 1 1 ? 2030-2032)")
    assert parsed.next_after(utc(2032, 1, 1), UTC_ZONE) is None
    assert parsed.next_after(utc(2199, 12, 31, 23, 59), UTC_ZONE) is None
    assert cron("cron(0 0 * * ? *)").next_after(utc(2199, 12, 31), UTC_ZONE) is None
    assert cron("cron(0 0 * * ? *)").next_after(datetime.max.replace(tzinfo=UTC), UTC_ZONE) is None
    assert cron("cron(0 0 29 2 ? 2101-2103)").next_after(utc(2026, 1, 1), UTC_ZONE) is None


def test_cron_before_1970_starts_in_1970() -> None:
    assert cron("cron(0 0 1 1 ? *)").next_after(utc(1900, 6, 1), UTC_ZONE) == utc(1970, 1, 1)


def test_cron_in_a_time_zone() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    parsed = cron("cron(0 9 ? * MON-FRI *)")
    assert parsed.next_after(utc(2026, 1, 5), berlin) == utc(2026, 1, 5, 8)  # CET = UTC+1
    assert parsed.next_after(utc(2026, 7, 6), berlin) == utc(2026, 7, 6, 7)  # CEST = UTC+2
    # Day boundaries are local: 23:30 UTC Sunday is already Monday in Tokyo.
    assert parsed.next_after(utc(2026, 1, 4, 23, 30), ZoneInfo("Asia/Tokyo")) == utc(2026, 1, 5, 0)


def test_results_are_utc_and_need_aware_input() -> None:
    result = cron("cron(0 9 * * ? *)").next_after(
        datetime(2026, 1, 1, tzinfo=ZoneInfo("Asia/Tokyo")), NEW_YORK
    )
    assert result == utc(2026, 1, 1, 14)
    assert result is not None and result.tzinfo is UTC
    for parsed in (
        cron("cron(0 9 * * ? *)"),
        parse_schedule("rate(1 minute)"),
        parse_schedule("at(2030-01-01T00:00:00)"),
    ):
        with pytest.raises(ValueError, match="timezone-aware"):
            parsed.next_after(datetime(2026, 1, 1), UTC_ZONE)


@pytest.mark.parametrize(
    "expression",
    [
        "cron(0 10 15W * ? 2199)",
        "cron(0 10 LW * ? 2199)",
        "cron(0 0 ? 2 5#5 2190-2199)",
        "cron(59 23 31 DEC ? 2199)",
        "cron(0 0 29 2 ? 2101-2103)",
        "cron(* * 31W * ? *)",
        "cron(* 2 * * ? *)",
    ],
)
def test_next_after_is_fast(expression: str) -> None:
    parsed = cron(expression)
    started = time_module.perf_counter()
    for tz in (UTC_ZONE, NEW_YORK):
        for after in (utc(1970, 1, 1), utc(2026, 3, 8, 6, 59), utc(2026, 11, 1, 5, 59)):
            parsed.next_after(after, tz)
    assert (time_module.perf_counter() - started) / 12 < 0.02


# --- daylight saving time --------------------------------------------------------------------


def test_spring_forward_skips_the_missing_time() -> None:
    # 2026-03-08: New York jumps from 02:00 EST to 03:00 EDT, so 02:30 never happens.
    fires = fire_times("cron(30 2 * * ? *)", utc(2026, 3, 7), 3, NEW_YORK)
    assert fires == [utc(2026, 3, 7, 7, 30), utc(2026, 3, 9, 6, 30), utc(2026, 3, 10, 6, 30)]


def test_spring_forward_every_minute_jumps_the_gap() -> None:
    fires = fire_times("cron(* * * * ? *)", utc(2026, 3, 8, 6, 58), 3, NEW_YORK)  # 01:58 EST
    assert fires == [utc(2026, 3, 8, 6, 59), utc(2026, 3, 8, 7, 0), utc(2026, 3, 8, 7, 1)]
    assert [fire.astimezone(NEW_YORK).hour for fire in fires] == [1, 3, 3]


def test_fall_back_runs_a_repeated_time_once() -> None:
    # 2026-11-01: New York goes from 02:00 EDT back to 01:00 EST; 01:30 happens twice.
    fires = fire_times("cron(30 1 * * ? *)", utc(2026, 10, 31), 3, NEW_YORK)
    assert fires == [utc(2026, 10, 31, 5, 30), utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30)]
    # 02:30 happens once anyway, now in EST.
    fires = fire_times("cron(30 2 * * ? *)", utc(2026, 10, 31), 2, NEW_YORK)
    assert fires == [utc(2026, 10, 31, 6, 30), utc(2026, 11, 1, 7, 30)]


def test_fall_back_from_inside_the_second_pass() -> None:
    parsed = cron("cron(45 1 * * ? *)")
    # 01:35 EST is the second 01:35; the first 01:45 (EDT) is already behind it.
    assert parsed.next_after(utc(2026, 11, 1, 6, 35), NEW_YORK) == utc(2026, 11, 2, 6, 45)
    # From 01:35 EDT, the first 01:45 is still ahead.
    assert parsed.next_after(utc(2026, 11, 1, 5, 35), NEW_YORK) == utc(2026, 11, 1, 5, 45)
    every_minute = fire_times("cron(* * * * ? *)", utc(2026, 11, 1, 5, 58), 3, NEW_YORK)
    assert every_minute == [utc(2026, 11, 1, 5, 59), utc(2026, 11, 1, 7, 0), utc(2026, 11, 1, 7, 1)]


def test_midnight_that_does_not_exist() -> None:
    # Santiago springs forward at 24:00 -> 01:00, so 2026-09-06 00:00 never happens.
    santiago = ZoneInfo("America/Santiago")
    fires = fire_times("cron(0 0 * * ? *)", utc(2026, 9, 4, 12), 2, santiago)
    assert [fire.astimezone(santiago).date() for fire in fires] == [date(2026, 9, 5), date(2026, 9, 7)]


# --- rate and at -----------------------------------------------------------------------------


def test_rate_adds_its_interval() -> None:
    after = datetime(2026, 3, 8, 1, 59, 30, tzinfo=NEW_YORK)
    result = parse_schedule("rate(5 minutes)").next_after(after, NEW_YORK)
    assert result == utc(2026, 3, 8, 7, 4, 30)
    assert result is not None and result.tzinfo is UTC
    assert parse_schedule("rate(30 seconds)").next_after(utc(2026, 1, 1), UTC_ZONE) == utc(
        2026, 1, 1, 0, 0, 30
    )
    assert parse_schedule("rate(1 day)").next_after(datetime.max.replace(tzinfo=UTC), UTC_ZONE) is None


def test_at_fires_once() -> None:
    parsed = parse_schedule("at(2026-06-01T09:30:00)")
    assert parsed.next_after(utc(2026, 1, 1), UTC_ZONE) == utc(2026, 6, 1, 9, 30)
    assert parsed.next_after(utc(2026, 6, 1, 9, 29, 59), UTC_ZONE) == utc(2026, 6, 1, 9, 30)
    assert parsed.next_after(utc(2026, 6, 1, 9, 30), UTC_ZONE) is None
    assert parsed.next_after(utc(2027, 1, 1), UTC_ZONE) is None
    assert parsed.next_after(utc(2026, 1, 1), NEW_YORK) == utc(2026, 6, 1, 13, 30)


def test_at_and_dst() -> None:
    assert parse_schedule("at(2026-03-08T02:30:00)").next_after(utc(2026, 1, 1), NEW_YORK) is None
    repeated = parse_schedule("at(2026-11-01T01:30:00)")
    assert repeated.next_after(utc(2026, 1, 1), NEW_YORK) == utc(2026, 11, 1, 5, 30)
    assert repeated.next_after(utc(2026, 11, 1, 5, 30), NEW_YORK) is None
    assert (
        parse_schedule("at(0001-01-01T00:00:00)").next_after(utc(2026, 1, 1), ZoneInfo("Asia/Tokyo")) is None
    )


# --- property tests against a brute-force oracle ---------------------------------------------

MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
MAX_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
HORIZON = timedelta(days=5 * 366)
ZONES = [
    ZoneInfo(name)
    for name in (
        "UTC",
        "America/New_York",
        "Europe/London",
        "Australia/Lord_Howe",  # 30-minute DST shift
        "Asia/Kolkata",
        "America/Santiago",  # DST changes at midnight
        "Pacific/Apia",  # skipped 2011-12-30 entirely
    )
]


def transitions(tz: ZoneInfo, year: int) -> list[datetime]:
    """Roughly when tz's UTC offset changes during `year` (to the hour)."""
    found = []
    instant = utc(year, 1, 1)
    offset = instant.astimezone(tz).utcoffset()
    while instant.year == year:
        instant += timedelta(hours=1)
        if (current := instant.astimezone(tz).utcoffset()) != offset:
            found.append(instant)
            offset = current
    return found


TRANSITIONS = [(tz, moment) for tz in ZONES[1:] for moment in transitions(tz, 2026)] + [
    (ZONES[-1], moment) for moment in transitions(ZONES[-1], 2011)
]


@dataclass(frozen=True)
class Spec:
    """A generated cron expression and the sets and day rules it means, written from AWS's rules."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    months: frozenset[int]
    years: frozenset[int]
    day_matches: Callable[[date], bool]


def aws_weekday(day: date) -> int:
    return day.isoweekday() % 7 + 1  # 1 = Sunday ... 7 = Saturday


def month_length(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def is_weekday(day: date) -> bool:
    return day.weekday() < 5


def weekdays_of_month(day: date) -> list[date]:
    return [d for n in range(1, month_length(day) + 1) if is_weekday(d := day.replace(day=n))]


def dom_matcher(kind: str, values: frozenset[int]) -> Callable[[date], bool]:
    if kind == "set":
        return lambda day: day.day in values
    if kind == "L":
        return lambda day: day.day == month_length(day)
    if kind == "LW":
        return lambda day: day == weekdays_of_month(day)[-1]
    (target,) = values

    def nearest(day: date) -> bool:
        if target > month_length(day):
            return False
        return day == min(weekdays_of_month(day), key=lambda d: abs(d.day - target))

    return nearest


def dow_matcher(kind: str, values: frozenset[int], nth: int = 0) -> Callable[[date], bool]:
    if kind == "set":
        return lambda day: aws_weekday(day) in values
    if kind == "last":
        return lambda day: aws_weekday(day) in values and day.day + 7 > month_length(day)
    return lambda day: aws_weekday(day) in values and (day.day - 1) // 7 + 1 == nth


@st.composite
def list_field(
    draw: st.DrawFn,
    low: int,
    high: int,
    names: tuple[str, ...] = (),
    values: st.SearchStrategy[int] | None = None,
) -> tuple[str, frozenset[int]]:
    """A list of values, ranges and steps, as text and as the set it selects."""
    values = values if values is not None else st.integers(low, high)

    def token(number: int) -> str:
        if len(names) > 0 and draw(st.booleans()):
            name = names[number - low]
            return draw(st.sampled_from([name, name.lower(), name.title()]))
        return str(number)

    terms: list[str] = []
    selected: set[int] = set()
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3]))):
        kind = draw(st.sampled_from(["*", "value", "value", "range", "start/step", "*/step", "range/step"]))
        start, end = sorted((draw(values), draw(values)))
        step = draw(st.integers(1, high - low + 1))
        if kind == "*":
            terms.append("*")
            selected.update(range(low, high + 1))
        elif kind == "value":
            terms.append(token(start))
            selected.add(start)
        elif kind == "range":
            terms.append(f"{token(start)}-{token(end)}")
            selected.update(range(start, end + 1))
        elif kind == "start/step":
            terms.append(f"{token(start)}/{step}")
            selected.update(range(start, high + 1, step))
        elif kind == "*/step":
            terms.append(f"*/{step}")
            selected.update(range(low, high + 1, step))
        else:
            terms.append(f"{token(start)}-{token(end)}/{step}")
            selected.update(range(start, end + 1, step))
    return ",".join(terms), frozenset(selected)


@st.composite
def cron_specs(draw: st.DrawFn, start_year: int, hour_values: st.SearchStrategy[int] | None = None) -> Spec:
    """A random valid AWS cron expression whose years lie around `start_year`."""
    minute_text, minutes = draw(list_field(0, 59))
    if hour_values is None:
        hour_values = st.one_of(st.integers(0, 3), st.integers(0, 23))
    hour_text, hours = draw(list_field(0, 23, values=hour_values))
    month_text, months = draw(
        st.one_of(st.just(("*", frozenset(range(1, 13)))), list_field(1, 12, MONTH_NAMES))
    )
    near = st.integers(max(1970, start_year - 1), min(2199, start_year + 6))
    year_text, years = draw(
        st.one_of(st.just(("*", frozenset(range(1970, 2200)))), list_field(1970, 2199, values=near))
    )
    if draw(st.booleans()):
        dom_kind = draw(st.sampled_from(["set", "set", "L", "LW", "W"]))
        if dom_kind == "set":
            dom_text, dom_values = draw(list_field(1, 31))
        elif dom_kind == "W":
            target = draw(st.one_of(st.integers(1, 3), st.integers(27, 31), st.integers(1, 31)))
            dom_text, dom_values = f"{target}W", frozenset({target})
        else:
            dom_text, dom_values = draw(st.sampled_from([dom_kind, dom_kind.lower()])), frozenset()
        longest = max(MAX_MONTH_DAYS[month - 1] for month in months)
        assume(dom_kind in ("L", "LW") or min(dom_values) <= longest)
        return Spec(
            f"cron({minute_text} {hour_text} {dom_text} {month_text} ? {year_text})",
            minutes, hours, months, years, dom_matcher(dom_kind, dom_values),
        )  # fmt: skip
    dow_kind = draw(st.sampled_from(["set", "set", "last", "nth", "L"]))
    day = draw(st.integers(1, 7))
    name = draw(st.sampled_from([str(day), DAY_NAMES[day - 1], DAY_NAMES[day - 1].lower()]))
    nth = draw(st.integers(1, 5))
    if dow_kind == "set":
        dow_text, dow_values = draw(list_field(1, 7, DAY_NAMES))
    elif dow_kind == "last":
        dow_text, dow_values = f"{name}L", frozenset({day})
    elif dow_kind == "nth":
        dow_text, dow_values = f"{name}#{nth}", frozenset({day})
    else:
        dow_text, dow_values, dow_kind = "L", frozenset({7}), "set"
    return Spec(
        f"cron({minute_text} {hour_text} ? {month_text} {dow_text} {year_text})",
        minutes, hours, months, years, dow_matcher(dow_kind, dow_values, nth),
    )  # fmt: skip


def reference_next(spec: Spec, after: datetime, tz: ZoneInfo) -> datetime | str | None:
    """The first fire time after `after`, by checking every minute of every matching day.

    Returns "beyond" if nothing fires within HORIZON of `after`.
    """
    day = after.astimezone(tz).date() - timedelta(days=1)
    end = day + HORIZON
    while day <= end:
        if day.year > max(spec.years):
            return None
        if day.year in spec.years and day.month in spec.months and spec.day_matches(day):
            for minute_of_day in range(24 * 60):
                hour, minute = divmod(minute_of_day, 60)
                if hour not in spec.hours or minute not in spec.minutes:
                    continue
                wall = datetime.combine(day, time(hour, minute))
                first, second = wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1)
                offset_before, offset_after = first.utcoffset(), second.utcoffset()
                assert offset_before is not None and offset_after is not None
                if offset_before < offset_after:  # PEP 495: this wall time falls in a gap
                    continue
                if (instant := first.astimezone(UTC)) > after:
                    return instant
        day += timedelta(days=1)
    return "beyond"


def check_against_reference(spec: Spec, after: datetime, tz: ZoneInfo, steps: int) -> None:
    """Iterate next_after from `after` and compare every step with the brute-force oracle."""
    parsed = cron(spec.text)
    for _ in range(steps):
        expected = reference_next(spec, after, tz)
        got = parsed.next_after(after, tz)
        if expected == "beyond":
            assert got is None or got - after > HORIZON - timedelta(days=2), spec.text
            return
        assert got == expected, (spec.text, after, tz)
        if got is None:
            return
        assert got > after and got.tzinfo is UTC and got.second == 0
        after = got


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.data(),
    after=st.datetimes(
        min_value=datetime(1995, 1, 1), max_value=datetime(2120, 1, 1), timezones=st.just(UTC)
    ),
    tz=st.sampled_from(ZONES),
)
def test_next_after_matches_brute_force(data: st.DataObject, after: datetime, tz: ZoneInfo) -> None:
    check_against_reference(data.draw(cron_specs(after.year)), after, tz, steps=6)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), transition=st.sampled_from(TRANSITIONS), minutes=st.integers(-36 * 60, 12 * 60))
def test_next_after_matches_brute_force_around_dst(
    data: st.DataObject, transition: tuple[ZoneInfo, datetime], minutes: int
) -> None:
    tz, moment = transition
    # Favour the wall-clock hours on either side of the change, where gaps and repeats are.
    near = {(moment.astimezone(tz).hour + shift) % 24 for shift in range(-3, 2)}
    spec = data.draw(cron_specs(moment.year, hour_values=st.sampled_from(sorted(near))))
    check_against_reference(spec, moment + timedelta(minutes=minutes), tz, steps=6)


@settings(max_examples=300, deadline=None)
@given(
    body=st.text(alphabet=st.sampled_from(list("0123456789 */-,?#LWlwJANMONTUFRISAT\t")), max_size=30),
    keyword=st.sampled_from(["cron", "rate", "at"]),
)
def test_parse_accepts_or_rejects_cleanly(body: str, keyword: str) -> None:
    try:
        parsed = parse_schedule(f"{keyword}({body})")
    except ScheduleExpressionError as exc:
        assert str(exc)
        return
    parsed.next_after(utc(2026, 1, 1), NEW_YORK)


@settings(max_examples=100, deadline=None)
@given(
    value=st.integers(1, 10_000),
    unit=st.sampled_from(["second", "minute", "hour", "day"]),
    after=st.datetimes(timezones=st.just(UTC), max_value=datetime(9000, 1, 1)),
)
def test_rate_property(value: int, unit: str, after: datetime) -> None:
    parsed = parse_schedule(f"rate({value} {unit}{'s' if value != 1 else ''})")
    assert isinstance(parsed, RateExpression)
    assert parsed.interval == timedelta(**{f"{unit}s": value})
    assert parsed.next_after(after, UTC_ZONE) == after + parsed.interval
