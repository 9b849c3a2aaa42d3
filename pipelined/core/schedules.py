"""AWS EventBridge schedule expressions: ``rate(...)``, ``cron(...)`` and ``at(...)``.

The dialect is AWS's:

* ``rate(N unit)``: N a positive integer, unit ``minute``/``hour``/``day``, singular exactly
  when N is 1.  pipelined extension: ``second``/``seconds`` are accepted too (AWS's minimum
  is one minute).
* ``cron(Minutes Hours Day-of-month Month Day-of-week Year)``: exactly six fields, exactly one
  of day-of-month and day-of-week is ``?``.  Day-of-week numbers run 1-7 = SUN-SAT.  Lists,
  ranges and ``/`` steps work in every field; day-of-month also takes ``L``, ``LW`` and ``NW``
  (the weekday nearest day N, never leaving the month; a month without day N is skipped);
  day-of-week also takes ``L`` (Saturday), ``xL`` (last x of the month) and ``x#n`` (n-th x).
  Month and day names are case-insensitive; years run 1970-2199.
* ``at(yyyy-mm-ddThh:mm:ss)``: one time.

``cron`` and ``at`` are read as wall-clock time in the schedule's IANA time zone.  A local
time that doesn't exist (DST gap) is skipped, so an ``at`` time in a gap never fires; a local
time that happens twice runs once, the first time.
"""

from __future__ import annotations

import calendar
import re
from bisect import bisect_left
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from pipelined.errors import PipelinedError

__all__ = [
    "AtExpression",
    "CronExpression",
    "RateExpression",
    "ScheduleExpression",
    "ScheduleExpressionError",
    "parse_schedule",
    "validate_timezone",
]

_SECOND = timedelta(seconds=1)
_MONTH_NAMES = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAY_NAMES = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# Longest each month can be (February in leap years), to reject days that never happen.
_MAX_MONTH_DAYS = (31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_AT_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})")
_DIGITS_RE = re.compile(r"[0-9]+")


class ScheduleExpressionError(PipelinedError, ValueError):
    """An invalid schedule expression; the message says what is wrong."""


def _number(token: str) -> int | None:
    """Return the value of a string of ASCII digits (huge ones capped), or None if it isn't one."""
    if not _DIGITS_RE.fullmatch(token):
        return None
    digits = token.lstrip("0")
    # Capping keeps int() cheap on absurd inputs; the cap is out of every range anyway.
    return int(digits or "0") if len(digits) <= 18 else 10**18


def _error(text: str, message: str) -> ScheduleExpressionError:
    return ScheduleExpressionError(f"{text}: {message}")


def _check_aware(after: datetime) -> None:
    # A naive datetime would silently be read as the host's local time by astimezone().
    if after.tzinfo is None or after.utcoffset() is None:
        raise ValueError(f"expected a timezone-aware datetime, got {after!r}")


def _resolve_wall_time(wall: datetime, tz: ZoneInfo) -> datetime | None:
    """Return the UTC instant of a naive wall-clock time in tz, or None if it doesn't exist."""
    aware = wall.replace(tzinfo=tz, fold=0)  # fold=0 is the first of two repeated times
    try:
        instant = aware.astimezone(UTC)
        round_trip = instant.astimezone(tz).replace(tzinfo=None)
    except OverflowError:
        return None
    # A time inside a DST gap comes back shifted by the gap's length.
    return instant if round_trip == wall else None


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()

    def value(self, text: str, token: str, term: str) -> int:
        """Return one number or name of this field."""
        if token.upper() in self.names:
            return self.low + self.names.index(token.upper())
        number = _number(token)
        if number is None:
            raise _error(text, f"invalid {self.name} '{term}'")
        if not self.low <= number <= self.high:
            raise _error(text, f"{self.name} value {token} is out of range {self.low}-{self.high}")
        return number

    def values(self, text: str, spec: str) -> frozenset[int]:
        """Return the set a list of values, ranges and steps selects."""
        result: set[int] = set()
        for term in spec.split(","):
            base, slash, step_text = term.partition("/")
            if base == "*":
                start, end = self.low, self.high
            elif "-" in base:
                first, _, last = base.partition("-")
                start, end = self.value(text, first, term), self.value(text, last, term)
                if end < start:
                    raise _error(text, f"{self.name} range '{term}' runs backwards")
            else:
                start = self.value(text, base, term)
                end = self.high if slash else start
            step = 1
            if slash:
                span = self.high - self.low + 1
                number = _number(step_text)
                if number is None or not 1 <= number <= span:
                    raise _error(text, f"step in {self.name} '{term}' must be 1-{span}")
                step = number
            result.update(range(start, end + 1, step))
        return frozenset(result)


_MINUTES = _Field("minutes", 0, 59)
_HOURS = _Field("hours", 0, 23)
_DAYS_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTHS = _Field("month", 1, 12, _MONTH_NAMES)
_DAYS_OF_WEEK = _Field("day-of-week", 1, 7, _DAY_NAMES)
_YEARS = _Field("year", 1970, 2199)


def _cronsim_list(values: frozenset[int], kind: _Field, shift: int = 0) -> str:
    if len(values) == kind.high - kind.low + 1:
        return "*"
    return ",".join(str(value + shift) for value in sorted(values))


def _nearest_weekday(year: int, month: int, day: int) -> int | None:
    """Return the weekday (Mon-Fri) of the month nearest to `day`, or None if the month is shorter."""
    first_weekday, length = calendar.monthrange(year, month)
    if day > length:
        return None
    weekday = (first_weekday + day - 1) % 7  # Monday = 0
    if weekday == 5:  # Saturday: the Friday before, unless that is in the previous month
        return day - 1 if day > 1 else day + 2
    if weekday == 6:  # Sunday: the Monday after, unless that is in the next month
        return day + 1 if day < length else day - 2
    return day


@dataclass(frozen=True, slots=True)
class RateExpression:
    """A ``rate(N unit)`` schedule: fire every `interval`."""

    interval: timedelta
    text: str

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """Return `after` plus the interval, in UTC (None if that overflows)."""
        _check_aware(after)
        try:
            return (after + self.interval).astimezone(UTC)
        except OverflowError:
            return None


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A ``cron(...)`` schedule, translated onto a cronsim expression plus what cronsim lacks."""

    text: str
    # Five-field cronsim form of minutes, hours, day-of-month, month and (0-based) day-of-week.
    cronsim_expression: str = field(repr=False)
    years: tuple[int, ...] = field(repr=False)
    # N for a day-of-month of ``NW``; cronsim then sees ``*`` and the W filter applies here.
    nearest_weekday: int | None = field(default=None, repr=False)

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """Return the first fire time strictly after `after` (UTC), or None if there is none."""
        _check_aware(after)
        try:
            local = after.astimezone(tz).replace(tzinfo=None)
        except OverflowError:
            return None
        if local.year > self.years[-1]:
            return None
        for wall in self._wall_times(local):
            instant = _resolve_wall_time(wall, tz)
            # Within a repeated hour, `after` may be past the first occurrence of later wall times.
            if instant is not None and instant > after:
                return instant
        return None

    def _wall_times(self, start: datetime) -> Iterator[datetime]:
        """Yield matching naive wall-clock times strictly after `start`, in order."""
        # Naive datetimes keep cronsim out of time zones: its own DST handling differs from ours.
        while True:
            restart: datetime | None = None
            for fire in CronSim(self.cronsim_expression, start):
                index = bisect_left(self.years, fire.year)
                if index == len(self.years):
                    return
                if self.years[index] != fire.year:
                    restart = datetime(self.years[index], 1, 1)
                elif self.nearest_weekday is not None:
                    day = _nearest_weekday(fire.year, fire.month, self.nearest_weekday)
                    if day == fire.day:
                        yield fire
                        continue
                    if day is not None and fire.day < day:
                        restart = datetime(fire.year, fire.month, day)
                    else:
                        restart = datetime(fire.year, fire.month, 1) + timedelta(days=32)
                        restart = restart.replace(day=1)
                else:
                    yield fire
                    continue
                break
            # cronsim gives up after 50 years without a match; every pattern that parses
            # recurs well within that, so giving up means there is nothing left.
            if restart is None:
                return
            start = restart - _SECOND  # cronsim's first result is strictly after its start


@dataclass(frozen=True, slots=True)
class AtExpression:
    """An ``at(...)`` schedule: fire once at `when`, a naive wall-clock time."""

    when: datetime
    text: str

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """Return the one fire time (UTC) if it is strictly after `after`, else None."""
        _check_aware(after)
        instant = _resolve_wall_time(self.when, tz)
        return instant if instant is not None and instant > after else None


ScheduleExpression = RateExpression | CronExpression | AtExpression


def _parse_rate(text: str, body: str) -> RateExpression:
    parts = body.split()
    if len(parts) != 2:
        raise _error(text, "expected rate(value unit), e.g. rate(5 minutes)")
    value_text, unit = parts
    value = _number(value_text)
    if value is None or value == 0:
        raise _error(text, f"rate value '{value_text}' is not a positive integer")
    singular = unit.removesuffix("s")
    if singular not in _RATE_UNITS:
        raise _error(text, f"unknown rate unit '{unit}' (expected minute(s), hour(s), day(s) or second(s))")
    if value == 1 and unit != singular:
        raise _error(text, f"use the singular '{singular}' when the value is 1")
    if value != 1 and unit == singular:
        raise _error(text, f"use the plural '{singular}s' when the value is not 1")
    try:
        interval = timedelta(seconds=value * _RATE_UNITS[singular])
    except OverflowError:
        raise _error(text, f"rate value {value_text} is too large") from None
    return RateExpression(interval=interval, text=text)


def _translate_day_of_month(text: str, spec: str, months: frozenset[int]) -> tuple[str, int | None]:
    """Return the cronsim day-of-month field and the N of an ``NW`` field."""
    if spec == "?":
        return "*", None
    if spec.upper() in ("L", "LW"):
        return spec.upper(), None
    longest = max(_MAX_MONTH_DAYS[month - 1] for month in months)
    if spec.upper().endswith("W") and spec[:-1].isdigit():
        nearest = _DAYS_OF_MONTH.value(text, spec[:-1], spec)
        if nearest > longest:
            raise _error(text, f"day-of-month {nearest} never occurs in the selected months")
        return "*", nearest
    if any(letter in spec.upper() for letter in "LW"):
        raise _error(text, f"day-of-month '{spec}': L and W must stand alone, as in L, LW or 15W")
    days = _DAYS_OF_MONTH.values(text, spec)
    if min(days) > longest:
        raise _error(text, f"day-of-month {min(days)} never occurs in the selected months")
    return _cronsim_list(days, _DAYS_OF_MONTH), None


def _translate_day_of_week(text: str, spec: str) -> str:
    """Return the cronsim day-of-week field: cronsim counts 0-6 from Sunday, AWS 1-7."""
    if spec == "?":
        return "*"
    if spec.upper() == "L":  # alone, L is the last day of the week
        return str(len(_DAY_NAMES) - 1)
    if ("#" in spec or spec.upper().endswith("L")) and any(char in spec for char in ",-/*"):
        raise _error(text, f"day-of-week '{spec}': L and # must stand alone, as in L, 6L or 3#2")
    if "#" in spec:
        day_text, _, nth = spec.partition("#")
        day = _DAYS_OF_WEEK.value(text, day_text, spec)
        if nth not in ("1", "2", "3", "4", "5"):
            raise _error(text, f"day-of-week '{spec}': the number after # must be 1-5")
        return f"{day - 1}#{nth}"
    if spec.upper().endswith("L"):
        return f"{_DAYS_OF_WEEK.value(text, spec[:-1], spec) - 1}L"
    return _cronsim_list(_DAYS_OF_WEEK.values(text, spec), _DAYS_OF_WEEK, shift=-1)


def _parse_cron(text: str, body: str) -> CronExpression:
    fields = body.split()  # names are upper-cased where they are looked up, to quote them as written
    if len(fields) != 6:
        raise _error(
            text,
            "expected 6 fields (minutes hours day-of-month month day-of-week year), got " + str(len(fields)),
        )
    minute_field, hour_field, dom_field, month_field, dow_field, year_field = fields
    if dom_field == "?" and dow_field == "?":
        raise _error(text, "day-of-month and day-of-week cannot both be '?'")
    if dom_field != "?" and dow_field != "?":
        raise _error(text, "one of day-of-month and day-of-week must be '?'")
    minutes = _MINUTES.values(text, minute_field)
    hours = _HOURS.values(text, hour_field)
    months = _MONTHS.values(text, month_field)
    years = tuple(sorted(_YEARS.values(text, year_field)))
    dom, nearest = _translate_day_of_month(text, dom_field, months)
    dow = _translate_day_of_week(text, dow_field)
    simulated = " ".join(
        (
            _cronsim_list(minutes, _MINUTES),
            _cronsim_list(hours, _HOURS),
            dom,
            _cronsim_list(months, _MONTHS),
            dow,
        )
    )
    try:
        CronSim(simulated, datetime(2000, 1, 1))
    except CronSimError as exc:  # a translation cronsim rejects: say so rather than fail later
        raise _error(text, f"unsupported expression ({exc})") from None
    return CronExpression(text=text, cronsim_expression=simulated, years=years, nearest_weekday=nearest)


def _parse_at(text: str, body: str) -> AtExpression:
    match = _AT_RE.fullmatch(body)
    if match is None:
        raise _error(text, "expected at(yyyy-mm-ddThh:mm:ss)")
    try:
        year, month, day, hour, minute, second = (int(part) for part in match.groups())
        when = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise _error(text, f"invalid date or time ({exc})") from None
    return AtExpression(when=when, text=text)


def parse_schedule(expression: str) -> ScheduleExpression:
    """Parse a ``rate(...)``, ``cron(...)`` or ``at(...)`` expression."""
    text = expression.strip()
    for keyword, parse in (("rate", _parse_rate), ("cron", _parse_cron), ("at", _parse_at)):
        if text.startswith(keyword + "(") and text.endswith(")"):
            result: ScheduleExpression = parse(text, text[len(keyword) + 1 : -1])
            return result
    raise ScheduleExpressionError(
        f"'{expression}' is not a schedule expression: expected rate(...), cron(...) or at(...)"
    )


def validate_timezone(name: str) -> ZoneInfo:
    """Return the IANA time zone `name`, or raise ScheduleExpressionError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleExpressionError(f"unknown time zone '{name}'") from None
