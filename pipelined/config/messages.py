"""One readable line for each pydantic error: what is wrong, in the file's terms, and which field."""

from __future__ import annotations

import difflib
from types import NoneType, UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from pipelined.config.events import EVENT_SOURCE_CLASSES
from pipelined.config.settings import Config
from pipelined.config.types import Loc, format_duration, parse_duration


def explain(error: ErrorDetails) -> tuple[Loc, str]:
    """The loc an error is about (extended to the field it names) and a one-line message for it."""
    try:
        return _message(error)
    except Exception:  # a bug in making the message nicer must not hide the problem itself
        return tuple(error["loc"]), error["msg"]


def _describe(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, dict | list):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value) if isinstance(value, str | int | float) else repr(str(value))
    return text if len(text) <= 60 else text[:57] + "..."


_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "a boolean (true or false)",
    "string": "a string",
    "dict": "a mapping",
    "model": "a mapping",
    "list": "a list",
    "datetime": "an ISO 8601 timestamp",
    "path": "a path",
}


def _message(error: ErrorDetails) -> tuple[Loc, str]:
    """A readable message for one pydantic error, and its loc (extended to the field it is about)."""
    kind, loc, value, ctx = error["type"], tuple(error["loc"]), error["input"], error.get("ctx", {})
    allowed = ", ".join(EVENT_SOURCE_CLASSES)
    if kind == "missing":
        return loc, "required key is missing"
    if kind == "extra_forbidden":
        names = [n for n in _model_fields(loc[:-1]) if n != "source_path"]
        close = difflib.get_close_matches(str(loc[-1]), names, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(names)
        return loc, f"unknown key ({hint})" if names else "unknown key"
    if kind == "union_tag_invalid":
        return (*loc, "type"), f"unknown event source type {ctx['tag']!r}; expected one of: {allowed}"
    if kind == "union_tag_not_found":
        return (*loc, "type"), f"required key is missing (one of: {allowed})"
    if kind == "value_error":
        exc = ctx["error"]
        return (*loc, *getattr(exc, "field", ())), str(exc)
    if kind == "literal_error":
        return loc, f"must be one of {ctx['expected']}, got {_describe(value)}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return loc, _range_message(loc, value, ctx)
    expected = _EXPECTED.get(kind.split("_")[0])
    if expected and kind != "string_too_long":
        hint = " (quote it)" if kind == "string_type" and isinstance(value, int | float) else ""
        return loc, f"expected {expected}, got {_describe(value)}{hint}"
    return loc, error["msg"]


def _range_message(loc: Loc, value: Any, ctx: dict[str, Any]) -> str:
    metadata = _walk(loc)[1]
    bounds = {k: getattr(m, k) for m in metadata for k in ("ge", "le") if hasattr(m, k)}
    duration = any(getattr(m, "func", None) is parse_duration for m in metadata)
    show = format_duration if duration else (lambda v: f"{v:g}" if isinstance(v, float) else str(v))
    if "ge" in bounds and "le" in bounds:
        rule = f"must be between {show(bounds['ge'])} and {show(bounds['le'])}"
    else:
        (op, bound), *_ = ctx.items()
        rule = (
            f"must be {dict(ge='at least', le='at most', gt='more than', lt='less than')[op]} {show(bound)}"
        )
    return f"{rule}, got {value if isinstance(value, str) else show(value)}"


def _unwrap(tp: Any, metadata: list[Any]) -> tuple[Any, list[Any]]:
    """Strip Annotated (collecting its metadata) and Optional from an annotation."""
    while True:
        args = get_args(tp)
        if get_origin(tp) is Annotated:
            tp = args[0]
            for extra in args[1:]:
                metadata += extra.metadata if isinstance(extra, FieldInfo) else [extra]
        elif get_origin(tp) in (Union, UnionType) and len(args) == 2 and NoneType in args:
            tp = args[0] if args[1] is NoneType else args[1]
        else:
            return tp, metadata


def _walk(loc: Loc) -> tuple[Any, list[Any]]:
    """The annotation pydantic validated at ``loc`` (following the models), and its metadata."""
    tp, metadata = _unwrap(Config, [])
    for part in loc:
        if get_origin(tp) in (Union, UnionType):  # the event source union: part is its tag
            tp, metadata = EVENT_SOURCE_CLASSES.get(str(part)), []
            continue
        if isinstance(tp, type) and issubclass(tp, BaseModel) and part in tp.model_fields:
            info = tp.model_fields[str(part)]
            tp, metadata = _unwrap(info.annotation, list(info.metadata))
        elif get_origin(tp) in (list, dict):
            tp, metadata = _unwrap(get_args(tp)[-1], [])
        else:
            return None, []
    return tp, metadata


def _model_fields(loc: Loc) -> list[str]:
    tp = _walk(loc)[0]
    return list(tp.model_fields) if isinstance(tp, type) and issubclass(tp, BaseModel) else []
