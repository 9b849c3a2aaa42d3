"""Lambda-compatible event filtering: compile FilterCriteria patterns once, match records fast."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeGuard

from pipelined.errors import PipelinedError

__all__ = ["EventFilter", "FilterPatternError", "compile_patterns", "validate_patterns"]

_MAX_PATTERNS: Final = 5
_MISSING: Final = object()
# Python has True == 1 and hash(True) == hash(1); distinct keys keep `[1]` from matching `true`.
_TRUE: Final = object()
_FALSE: Final = object()
_OPERATORS: Final = ("anything-but", "equals-ignore-case", "exists", "numeric", "prefix", "suffix")
_NUMERIC_OPS: Final = ("=", "<", "<=", ">", ">=")
_NUMERIC_USAGE: Final = "'numeric' needs [op, number] or [op, number, op, number], op one of = < <= > >="

_SCALARS: Final = frozenset({str, int, float, bool, type(None)})

_Pred = Callable[[object], bool]


class FilterPatternError(PipelinedError, ValueError):
    """An invalid filter pattern; the message says which pattern and why."""


def _key(value: object) -> object:
    if value is True:
        return _TRUE
    if value is False:
        return _FALSE
    return value


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _show(value: object) -> str:
    try:
        text = json.dumps(value, default=repr)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _err(path: str, message: str) -> FilterPatternError:
    return FilterPatternError(f"{path}: {message}" if path else message)


def _leaves(items: list[Any] | tuple[Any, ...], out: list[object]) -> list[object]:
    for item in items:
        if isinstance(item, list | tuple):
            _leaves(item, out)
        elif not isinstance(item, Mapping):
            out.append(item)
    return out


class _Node:
    __slots__ = ()

    def match(self, value: object) -> bool:
        raise NotImplementedError


class _Leaf(_Node):
    """The conditions listed for one field; any condition holding for any of its values is a match."""

    __slots__ = ("_absent", "_exact", "_exists", "_preds")

    def __init__(
        self, exact: frozenset[object], preds: tuple[_Pred, ...], exists: bool, absent: bool
    ) -> None:
        self._exact = exact
        self._preds = preds
        self._exists = exists
        self._absent = absent

    def match(self, value: object) -> bool:
        # Exact-type test first: this runs per field per record, and ABC isinstance checks are slow.
        if value.__class__ in _SCALARS:
            return self._exists or self._one(value)
        # AWS only sees leaf values: an object, or an array with no scalars, counts as absent here.
        if value is _MISSING or isinstance(value, Mapping):
            return self._absent
        leaves = _leaves(value, []) if isinstance(value, list | tuple) else [value]
        if not leaves:
            return self._absent
        return self._exists or any(self._one(leaf) for leaf in leaves)

    def _one(self, value: object) -> bool:
        if _key(value) in self._exact:
            return True
        for pred in self._preds:  # noqa: SIM110 - a plain loop skips any()'s generator on the hot path
            if pred(value):
                return True
        return False


class _Object(_Node):
    """Fields that must all match (AND), plus `$or` groups of which one alternative must match."""

    __slots__ = ("_absent", "_fields", "_groups")

    def __init__(
        self, fields: tuple[tuple[str, _Node], ...], groups: tuple[tuple[_Object, ...], ...]
    ) -> None:
        self._fields = fields
        self._groups = groups
        self._absent = self.match_mapping({})

    def match_mapping(self, obj: Mapping[str, Any]) -> bool:
        get = obj.get
        for name, node in self._fields:
            if not node.match(get(name, _MISSING)):
                return False
        if not self._groups:
            return True
        return all(any(alt.match_mapping(obj) for alt in group) for group in self._groups)

    def match(self, value: object) -> bool:
        if isinstance(value, dict | Mapping):
            return self.match_mapping(value)
        if value is _MISSING:
            return self._absent
        if isinstance(value, list | tuple):
            # Each element on its own, so sibling fields must match inside the same array element.
            return any(self.match(item) for item in value) if value else self._absent
        # A scalar where the pattern expects an object (e.g. a non-JSON SQS body) never matches.
        return False


@dataclass(frozen=True, slots=True)
class EventFilter:
    """Compiled filter patterns; a record passes if any pattern matches, or if there are none."""

    _patterns: tuple[_Object, ...] = ()

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Return True if any pattern matches `data` (always True when there are no patterns)."""
        if not self._patterns:
            return True
        for pattern in self._patterns:  # noqa: SIM110 - a plain loop skips any()'s generator on the hot path
            if pattern.match_mapping(data):
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
    compiled: list[_Object] = []
    for number, raw in enumerate(items, start=1):
        try:
            compiled.append(_compile_object(_load(raw), ""))
        except FilterPatternError as exc:
            raise FilterPatternError(f"pattern {number}: {exc}") from None
    return EventFilter(tuple(compiled))


def _load(raw: object) -> Mapping[Any, Any]:
    if isinstance(raw, Mapping) and len(raw) == 1:
        ((name, value),) = raw.items()
        # A string is never a valid field value, so {"pattern": "<str>"} can only be the API wrapper.
        if name in ("pattern", "Pattern") and isinstance(value, str):
            raw = value
    if isinstance(raw, str | bytes | bytearray):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise FilterPatternError(f"invalid JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise FilterPatternError(f"a pattern must be a JSON object, got {_show(raw)}")
    return raw


def _is_or_group(value: object) -> bool:
    # Like AWS, "$or" is only the OR primitive when it holds objects that are not operators.
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, Mapping) and not set(item) & set(_OPERATORS) for item in value)
    )


def _compile_object(pattern: Mapping[Any, Any], path: str) -> _Object:
    if not pattern:
        raise _err(path, "an empty object is not a valid pattern")
    fields: list[tuple[str, _Node]] = []
    groups: list[tuple[_Object, ...]] = []
    for name, value in pattern.items():
        if not isinstance(name, str):
            raise _err(path, f"field names must be strings, got {name!r}")
        where = f"{path}.{name}" if path else name
        if name == "$or" and _is_or_group(value):
            if len(value) < 2:
                raise _err(where, "'$or' needs at least two patterns")
            groups.append(tuple(_compile_object(alt, f"{where}[{i}]") for i, alt in enumerate(value)))
        elif isinstance(value, Mapping):
            fields.append((name, _compile_object(value, where)))
        elif isinstance(value, list):
            fields.append((name, _compile_leaf(value, where)))
        else:
            shown = _show(value)
            raise _err(where, f"values must be in a list (e.g. [{shown}]) or a nested object, got {shown}")
    return _Object(tuple(fields), tuple(groups))


def _compile_leaf(values: list[Any], path: str) -> _Leaf:
    if not values:
        raise _err(path, "an empty list matches nothing; give at least one value or condition")
    exact: set[object] = set()
    preds: list[_Pred] = []
    exists = absent = False
    for value in values:
        if isinstance(value, Mapping):
            if len(value) != 1:
                raise _err(path, f"an operator object needs exactly one key, got {_show(value)}")
            ((op, arg),) = value.items()
            if op == "exists":
                if not isinstance(arg, bool):
                    raise _err(path, f"'exists' needs true or false, got {_show(arg)}")
                exists, absent = exists or arg, absent or not arg
            else:
                preds.append(_compile_operator(op, arg, path))
        elif value is None or isinstance(value, str | bool) or (_is_number(value) and math.isfinite(value)):
            exact.add(_key(value))
        else:
            raise _err(
                path, f"unsupported value {_show(value)}; use a string, number, bool, null or operator"
            )
    return _Leaf(frozenset(exact), tuple(preds), exists, absent)


def _compile_operator(op: object, arg: object, path: str) -> _Pred:
    if op in ("prefix", "suffix"):
        return _affix(str(op), arg, path)
    if op == "equals-ignore-case":
        target = _need_str(arg, op, path).casefold()
        return lambda v: isinstance(v, str) and v.casefold() == target
    if op == "numeric":
        return _numeric(arg, path)
    if op == "anything-but":
        return _anything_but(arg, path)
    raise _err(path, f"unknown operator {_show(op)}; expected one of {', '.join(_OPERATORS)}")


def _need_str(arg: object, op: str, path: str) -> str:
    if not isinstance(arg, str):
        raise _err(path, f"'{op}' needs a string, got {_show(arg)}")
    return arg


def _affix(op: str, arg: object, path: str) -> _Pred:
    fold = False
    if isinstance(arg, Mapping) and list(arg) == ["equals-ignore-case"]:
        arg, fold = arg["equals-ignore-case"], True
    text = _need_str(arg, op, path)
    if op == "prefix":
        if fold:
            text = text.casefold()
            return lambda v: isinstance(v, str) and v.casefold().startswith(text)
        return lambda v: isinstance(v, str) and v.startswith(text)
    if fold:
        text = text.casefold()
        return lambda v: isinstance(v, str) and v.casefold().endswith(text)
    return lambda v: isinstance(v, str) and v.endswith(text)


def _anything_but(arg: object, path: str) -> _Pred:
    if isinstance(arg, Mapping):
        inner = next(iter(arg), None)
        if len(arg) != 1 or inner not in ("prefix", "suffix", "equals-ignore-case"):
            raise _err(path, "an 'anything-but' object needs one key: prefix, suffix or equals-ignore-case")
        inner_arg = arg[inner]
        if inner == "equals-ignore-case":
            texts = inner_arg if isinstance(inner_arg, list) and inner_arg else [inner_arg]
            folded = frozenset(_need_str(t, "equals-ignore-case", path).casefold() for t in texts)
            return lambda v: not (isinstance(v, str) and v.casefold() in folded)
        positive = _affix(str(inner), inner_arg, path)
        return lambda v: not positive(v)
    items = arg if isinstance(arg, list) else [arg]
    numbers = all(_is_number(item) and math.isfinite(item) for item in items)
    if not items or not (numbers or all(isinstance(item, str) for item in items)):
        raise _err(
            path,
            f"'anything-but' needs a string, a number, a non-empty list of only strings or only numbers, "
            f"or a prefix/suffix/equals-ignore-case object; got {_show(arg)}",
        )
    excluded = frozenset(items)
    return lambda v: _key(v) not in excluded


def _numeric(arg: object, path: str) -> _Pred:
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise _err(path, f"{_NUMERIC_USAGE}; got {_show(arg)}")
    low, low_incl, high, high_incl = -math.inf, False, math.inf, False
    has_low = has_high = False
    for op, bound in zip(arg[::2], arg[1::2], strict=True):
        if not isinstance(op, str) or op not in _NUMERIC_OPS:
            raise _err(path, f"{_NUMERIC_USAGE}; {_show(op)} is not a comparison operator")
        if not _is_number(bound) or not math.isfinite(bound):
            raise _err(path, f"'numeric' needs a finite number after {op!r}, got {_show(bound)}")
        if op == "=":
            if len(arg) != 2:
                raise _err(path, "'numeric' cannot combine '=' with another comparison")
            low, low_incl, high, high_incl = bound, True, bound, True
        elif op.startswith(">"):
            if has_low:
                raise _err(path, f"'numeric' has two lower bounds in {_show(arg)}")
            low, low_incl, has_low = bound, op == ">=", True
        else:
            if has_high:
                raise _err(path, f"'numeric' has two upper bounds in {_show(arg)}")
            high, high_incl, has_high = bound, op == "<=", True
    if low > high or (low == high and not (low_incl and high_incl)):
        raise _err(path, f"'numeric' range {_show(arg)} can never match")
    return _range(low, low_incl, high, high_incl)


def _range(low: float, low_incl: bool, high: float, high_incl: bool) -> _Pred:
    def pred(v: Any) -> bool:
        cls = v.__class__
        if cls is not int and cls is not float:
            return False
        n: float = v
        return (low <= n if low_incl else low < n) and (n <= high if high_incl else n < high)

    return pred
