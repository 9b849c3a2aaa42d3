"""The EventBridge event pattern language, compiled once and matched fast (no I/O).

Lambda's event filtering (core/filtering.py) is the same language without `wildcard`, `cidr` and the
`anything-but` wildcard form; `compile_pattern(..., extended=False)` refuses those as Lambda does.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeGuard

from pipelined.errors import PipelinedError

__all__ = ["EventPattern", "FilterPatternError", "compile_pattern", "load_pattern"]

_MISSING: Final = object()
# Python has True == 1 and hash(True) == hash(1); distinct keys keep `[1]` from matching `true`.
_TRUE: Final = object()
_FALSE: Final = object()
_LAMBDA_OPERATORS: Final = ("anything-but", "equals-ignore-case", "exists", "numeric", "prefix", "suffix")
_EVENTBRIDGE_OPERATORS: Final = (*_LAMBDA_OPERATORS, "cidr", "wildcard")
_OPERATORS: Final = _EVENTBRIDGE_OPERATORS
_NUMERIC_OPS: Final = ("=", "<", "<=", ">", ">=")
_NUMERIC_USAGE: Final = "'numeric' needs [op, number] or [op, number, op, number], op one of = < <= > >="

_SCALARS: Final = frozenset({str, int, float, bool, type(None)})

_Pred = Callable[[object], bool]


class FilterPatternError(PipelinedError, ValueError):
    """An invalid event pattern; the message says where in the pattern and why."""


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
        # Exact-type tests first: this runs per field per record, and ABC isinstance checks are slow.
        if value.__class__ is str:
            # A string is its own key (only booleans need _key), so skip the call for the common case.
            if value in self._exact or self._exists:
                return True
            for pred in self._preds:  # noqa: SIM110 - a plain loop skips any()'s generator on the hot path
                if pred(value):
                    return True
            return False
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


def _is_or_group(value: object) -> bool:
    # Like AWS, "$or" is only the OR primitive when it holds objects that are not operators.
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, Mapping) and not set(item) & set(_OPERATORS) for item in value)
    )


def _compile_object(pattern: Mapping[Any, Any], path: str, ops: tuple[str, ...]) -> _Object:
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
            groups.append(tuple(_compile_object(alt, f"{where}[{i}]", ops) for i, alt in enumerate(value)))
        elif isinstance(value, Mapping):
            fields.append((name, _compile_object(value, where, ops)))
        elif isinstance(value, list):
            fields.append((name, _compile_leaf(value, where, ops)))
        else:
            shown = _show(value)
            raise _err(where, f"values must be in a list (e.g. [{shown}]) or a nested object, got {shown}")
    return _Object(tuple(fields), tuple(groups))


def _compile_leaf(values: list[Any], path: str, ops: tuple[str, ...]) -> _Leaf:
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
                preds.append(_compile_operator(op, arg, path, ops))
        elif value is None or isinstance(value, str | bool) or (_is_number(value) and math.isfinite(value)):
            exact.add(_key(value))
        else:
            raise _err(
                path, f"unsupported value {_show(value)}; use a string, number, bool, null or operator"
            )
    return _Leaf(frozenset(exact), tuple(preds), exists, absent)


def _compile_operator(op: object, arg: object, path: str, ops: tuple[str, ...]) -> _Pred:
    if op not in ops:
        raise _err(path, f"unknown operator {_show(op)}; expected one of {', '.join(ops)}")
    if op in ("prefix", "suffix"):
        return _affix(str(op), arg, path)
    if op == "equals-ignore-case":
        target = _need_str(arg, op, path).casefold()
        return lambda v: isinstance(v, str) and v.casefold() == target
    if op == "numeric":
        return _numeric(arg, path)
    if op == "anything-but":
        return _anything_but(arg, path, ops)
    if op == "wildcard":
        return _wildcard(_need_str(arg, op, path), path)
    return _cidr(arg, path)


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


def _anything_but(arg: object, path: str, ops: tuple[str, ...]) -> _Pred:
    if isinstance(arg, Mapping):
        inner = next(iter(arg), None)
        forms = ("prefix", "suffix", "equals-ignore-case", *(("wildcard",) if "wildcard" in ops else ()))
        if len(arg) != 1 or inner not in forms:
            listed = f"{', '.join(forms[:-1])} or {forms[-1]}"
            raise _err(path, f"an 'anything-but' object needs one key: {listed}")
        inner_arg = arg[inner]
        if inner == "wildcard":
            texts = inner_arg if isinstance(inner_arg, list) and inner_arg else [inner_arg]
            patterns = [_wildcard(_need_str(t, "wildcard", path), path) for t in texts]
            return lambda v: isinstance(v, str) and not any(p(v) for p in patterns)
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
            f"or an object of one of its forms (prefix, suffix, ...); got {_show(arg)}",
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


def _wildcard(text: str, path: str) -> _Pred:
    # `*` is any run of characters; a backslash makes the next `*` or backslash literal.
    pieces: list[str] = []
    literal: list[str] = []
    chars = iter(text)
    previous_star = False
    for char in chars:
        if char == "\\":
            escaped = next(chars, None)
            if escaped not in ("*", "\\"):
                raise _err(path, f"'wildcard' {_show(text)}: only '*' and '\\' may follow a backslash")
            literal.append(escaped)
            previous_star = False
        elif char == "*":
            if previous_star:
                raise _err(path, f"'wildcard' {_show(text)}: consecutive '*' are not allowed")
            pieces.append(re.escape("".join(literal)))
            literal.clear()
            previous_star = True
        else:
            literal.append(char)
            previous_star = False
    pieces.append(re.escape("".join(literal)))
    regex = re.compile(".*".join(pieces), re.DOTALL)
    full = regex.fullmatch
    return lambda v: isinstance(v, str) and full(v) is not None


def _cidr(arg: object, path: str) -> _Pred:
    text = _need_str(arg, "cidr", path)
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise _err(
            path, f"'cidr' needs an IPv4 or IPv6 network such as 10.0.0.0/24, got {_show(text)}"
        ) from None

    def pred(v: object) -> bool:
        if not isinstance(v, str):
            return False
        try:
            address = ipaddress.ip_address(v)
        except ValueError:
            return False
        return address.version == network.version and address in network

    return pred


class EventPattern:
    """One compiled event pattern; `matches(event)` says whether the event matches it."""

    __slots__ = ("matches", "source")

    def __init__(self, root: _Object, source: Mapping[str, Any]) -> None:
        # `matches(event)`: True if the event (a decoded JSON object) matches. The root's own method,
        # bound once, so a match costs no extra call.
        self.matches: Callable[[Mapping[str, Any]], bool] = root.match_mapping
        self.source = source


def load_pattern(raw: object) -> Mapping[Any, Any]:
    """A pattern given as a mapping or as JSON text, decoded; FilterPatternError if it is not an object."""
    if isinstance(raw, str | bytes | bytearray):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise FilterPatternError(f"invalid JSON: {exc}") from None
    if not isinstance(raw, Mapping):
        raise FilterPatternError(f"a pattern must be a JSON object, got {_show(raw)}")
    return raw


def compile_pattern(raw: object, *, extended: bool = True) -> EventPattern:
    """Validate and compile a pattern (a mapping or JSON text): EventBridge's language, or Lambda's."""
    pattern = load_pattern(raw)
    ops = _EVENTBRIDGE_OPERATORS if extended else _LAMBDA_OPERATORS
    return EventPattern(_compile_object(pattern, "", ops), pattern)
