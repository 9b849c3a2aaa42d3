"""What a rule's target receives instead of the whole event: `input`, `input_path` or `input_transformer`.

Paths are EventBridge's JSONPath subset (`$`, `$.a.b`, `$.a[0]`, `$['a b']`). A template's `<name>`
placeholders are filled from the paths map (and the reserved `aws.events.*` names): inside a JSON string a
value goes in as text, elsewhere as JSON; a template that is not JSON yields a string.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pipelined.errors import PipelinedError

MAX_PATHS: Final = 100
_RESERVED: Final = frozenset(
    {
        "aws.events.rule-arn",
        "aws.events.rule-name",
        "aws.events.event.ingestion-time",
        "aws.events.event",
        "aws.events.event.json",
    }
)
_PLACEHOLDER: Final = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_STEP: Final = re.compile(r"\.([A-Za-z0-9_\-$@]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_MISSING: Final = object()

Path = tuple[str | int, ...]


class InputError(PipelinedError, ValueError):
    """An invalid input path or transformer; the message says which part and why."""


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What the reserved placeholders stand for when a rule matches an event."""

    rule_name: str
    rule_arn: str
    ingestion_time: str


def compile_path(text: str) -> Path:
    """The steps of a JSONPath such as `$.detail.items[0]`; InputError if it is not one."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise InputError(f"{text!r} is not a JSONPath (it must start with '$')")
    steps: list[str | int] = []
    position = 1
    while position < len(text):
        found = _STEP.match(text, position)
        if found is None:
            raise InputError(f"{text!r} is not a JSONPath: cannot read {text[position:]!r}")
        name, index, single, double = found.groups()
        steps.append(int(index) if index is not None else (name or single or double or ""))
        position = found.end()
    return tuple(steps)


def resolve(event: Any, path: Path) -> Any:
    """The value at `path` in `event`, or None where there is none (as EventBridge sends null)."""
    value = event
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or step >= len(value):
                return None
            value = value[step]
        else:
            if not isinstance(value, Mapping) or step not in value:
                return None
            value = value[step]
    return value


class Transformer:
    """A compiled `input_transformer`: `apply(event, rule)` is what the target receives."""

    __slots__ = ("_paths", "_template")

    def __init__(self, paths: Mapping[str, Path], template: str) -> None:
        self._paths = paths
        self._template = template

    def apply(self, event: Mapping[str, Any], rule: RuleContext) -> Any:
        """Fill the template from `event`; a JSON result is decoded, anything else is a string."""
        values = {name: resolve(event, path) for name, path in self._paths.items()}
        values["aws.events.rule-name"] = rule.rule_name
        values["aws.events.rule-arn"] = rule.rule_arn
        values["aws.events.event.ingestion-time"] = rule.ingestion_time
        values["aws.events.event"] = event
        values["aws.events.event.json"] = event
        if not _is_json_template(self._template):
            return _fill(self._template, values, as_text=True)
        text = _fill(self._template, values)
        try:
            return json.loads(text)
        except ValueError:
            return text


def _is_json_template(template: str) -> bool:
    return template.lstrip()[:1] in ("{", "[", '"')


def _fill(template: str, values: Mapping[str, Any], as_text: bool = False) -> str:
    out: list[str] = []
    # A plain-text template takes every value as text, as if the whole of it were one JSON string.
    in_string = as_text
    position = 0
    while position < len(template):
        char = template[position]
        if char == "<":
            found = _PLACEHOLDER.match(template, position)
            if found is not None and found.group(1) in values:
                value = values[found.group(1)]
                if in_string:
                    text = value if isinstance(value, str) else json.dumps(value)
                    out.append(text if as_text else json.dumps(text)[1:-1])
                else:
                    out.append(json.dumps(value))
                position = found.end()
                continue
        elif char == "\\" and in_string and not as_text:
            out.append(template[position : position + 2])
            position += 2
            continue
        elif char == '"' and not as_text:
            in_string = not in_string
        out.append(char)
        position += 1
    return "".join(out)


def compile_transformer(paths_map: Mapping[str, str], template: str) -> Transformer:
    """Check an `input_transformer` (paths, placeholders, JSON shape) and compile it."""
    if len(paths_map) > MAX_PATHS:
        raise InputError(f"input_paths_map: at most {MAX_PATHS} paths, got {len(paths_map)}")
    paths: dict[str, Path] = {}
    for name, text in paths_map.items():
        if name.startswith("aws.events."):
            raise InputError(f"input_paths_map: {name!r} is a reserved name")
        if not _PLACEHOLDER.fullmatch(f"<{name}>"):
            raise InputError(f"input_paths_map: {name!r} is not a valid name (letters, digits, _ . -)")
        try:
            paths[name] = compile_path(text)
        except InputError as exc:
            raise InputError(f"input_paths_map.{name}: {exc}") from None
    for found in _PLACEHOLDER.finditer(template):
        name = found.group(1)
        if name not in paths and name not in _RESERVED:
            raise InputError(f"input_template: <{name}> is neither in input_paths_map nor a reserved name")
    transformer = Transformer(paths, template)
    if template.lstrip()[:1] in ("{", "["):
        sample = _fill(template, dict.fromkeys([*paths, *_RESERVED], None))
        try:
            json.loads(sample)
        except ValueError as exc:
            raise InputError(
                f"input_template: not valid JSON once its placeholders are filled: {exc}"
            ) from None
    return transformer
