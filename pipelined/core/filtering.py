"""Lambda-compatible event filtering: compile FilterCriteria patterns once, match records fast.

The language is EventBridge's (core/event_patterns.py) as far as Lambda supports it: no `wildcard`,
no `cidr`; at most five patterns, any of which may match.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from pipelined.core.event_patterns import EventPattern, FilterPatternError, compile_pattern

__all__ = ["EventFilter", "FilterPatternError", "compile_patterns", "validate_patterns"]

_MAX_PATTERNS: Final = 5


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Compiled filter patterns; a record passes if any pattern matches, or if there are none."""

    _patterns: tuple[EventPattern, ...] = ()

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Return True if any pattern matches `data` (always True when there are no patterns)."""
        if not self._patterns:
            return True
        for pattern in self._patterns:  # noqa: SIM110 - a plain loop skips any()'s generator on the hot path
            if pattern.matches(data):
                return True
        return False


def validate_patterns(patterns: Sequence[object]) -> None:
    """Raise FilterPatternError unless every pattern is valid and there are at most five."""
    compile_patterns(patterns)


def compile_patterns(patterns: Sequence[object]) -> EventFilter:
    """Validate patterns (dicts, JSON strings or {"pattern": "<json>"}) and compile them."""
    if isinstance(patterns, str | bytes | bytearray) or not isinstance(patterns, Sequence):
        raise FilterPatternError(f"expected a list of patterns, got {type(patterns).__name__}")
    items = list(patterns)
    if len(items) > _MAX_PATTERNS:
        raise FilterPatternError(f"at most {_MAX_PATTERNS} filter patterns are allowed, got {len(items)}")
    compiled: list[EventPattern] = []
    for number, raw in enumerate(items, start=1):
        try:
            compiled.append(compile_pattern(_unwrap(raw), extended=False))
        except FilterPatternError as exc:
            raise FilterPatternError(f"pattern {number}: {exc}") from None
    return EventFilter(tuple(compiled))


def _unwrap(raw: object) -> object:
    if isinstance(raw, Mapping) and len(raw) == 1:
        ((name, value),) = raw.items()
        # A string is never a valid field value, so {"pattern": "<str>"} can only be the API wrapper.
        if name in ("pattern", "Pattern") and isinstance(value, str):
            return value
    return raw
