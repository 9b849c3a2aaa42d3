"""A SAM template as pipelined's :class:`Config`: read, resolve, map, validate; errors at template lines."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pipelined.config.events import EVENT_SOURCE_CLASSES
from pipelined.config.messages import explain
from pipelined.config.sam.conversion import Conversion
from pipelined.config.sam.functions import check_globals, map_function
from pipelined.config.sam.intrinsics import Resolver
from pipelined.config.sam.reader import Template, read_template
from pipelined.config.sam.resources import FUNCTION, KNOWN_TYPES, Declared, Resources
from pipelined.config.settings import Config
from pipelined.config.types import Loc
from pipelined.errors import ConfigError

# The template's own sections; anything else at the top is listed as unsupported.
_SECTIONS = {
    "AWSTemplateFormatVersion",
    "Transform",
    "Description",
    "Parameters",
    "Conditions",
    "Mappings",
    "Globals",
    "Resources",
    "Metadata",
}
_RESOURCE_REASONS = {
    "AWS::IAM::Role": "IAM: pipelined does not enforce permissions",
    "AWS::IAM::Policy": "IAM: pipelined does not enforce permissions",
    "AWS::Lambda::Permission": "IAM: pipelined does not enforce permissions",
    "AWS::Lambda::Function": "only AWS::Serverless::Function resources become functions",
    "AWS::Lambda::EventSourceMapping": "give the function an event under Events instead",
}
# pipelined's names for the SAM properties, for a required key the template leaves out.
_SAM_NAMES = {"handler": "Handler", "code": "CodeUri", "runtime": "Runtime"}
SETTINGS = "pipelined"  # Metadata.pipelined: the daemon's settings (state_dir, http, api, aws, ...)


@dataclass(frozen=True)
class SamConfig:
    """A template loaded: the Config it describes, how it was converted, what it creates."""

    config: Config
    conversion: Conversion
    declared: Declared

    def unsupported(self) -> list[str]:
        """One ``FILE:LINE: path: left out: reason`` line per thing the template has and pipelined not."""
        template = self.conversion.template
        found = sorted(self.conversion.unsupported, key=lambda u: template.line(u.path))
        return [template.where(u.path, f"not supported (left out): {u.reason}") for u in found]


def convert_template(path: str | Path, overrides: Mapping[str, str] | None = None) -> Conversion:
    """The pipelined data for the template at ``path`` (not validated yet); ConfigError on a bad template."""
    template = read_template(path)
    metadata = template.data.get("Metadata")
    settings = metadata.get(SETTINGS) if isinstance(metadata, dict) else None
    region = "us-east-1"
    if isinstance(settings, dict) and isinstance(settings.get("aws"), dict):
        region = str(settings["aws"].get("region", region))
    resolver = Resolver(template, overrides or {}, region)
    conv = Conversion(template, resolver, Resources(template, resolver))
    if isinstance(settings, dict):
        resolved = conv.resolve(settings, ("Metadata", SETTINGS))
        for key, value in resolved.items():
            if key == "functions":
                conv.problem(("Metadata", SETTINGS, key), "functions come from the template's resources")
                continue
            conv.data[key] = value
            _origins(conv, (key,), ("Metadata", SETTINGS, key), value)
    for key in template.data:
        if key not in _SECTIONS:
            reason = (
                "a deployment's outputs; pipelined deploys nothing" if key == "Outputs" else "no equivalent"
            )
            conv.skip((key,), reason)
    for key in metadata if isinstance(metadata, dict) else {}:
        if key != SETTINGS:
            conv.skip(("Metadata", key), "only Metadata.pipelined is read (pipelined's settings)")
    check_globals(conv)
    functions: dict[str, Any] = {}
    for logical_id in conv.resources.all:
        kind = conv.resources.type(logical_id)
        if kind == FUNCTION:
            name, fn = map_function(conv, logical_id)
            if name in functions:
                taken: Loc = ("Resources", logical_id, "Properties", "FunctionName")
                conv.problem(taken, f"function name {name!r} is also another function's")
            functions[name] = fn
        elif kind not in KNOWN_TYPES:
            reason = _RESOURCE_REASONS.get(kind, f"pipelined does not create {kind} resources")
            conv.skip(("Resources", logical_id, "Type"), reason)
    if not functions:
        conv.problem(("Resources",), "no AWS::Serverless::Function resource: nothing to run")
    conv.declared, unused = conv.resources.declared()
    for where, reason in unused:
        conv.skip(where, reason)
    conv.data["functions"] = functions
    conv.origins[("functions",)] = ("Resources",)
    if resolver.problems:
        raise ConfigError(_ordered(resolver.problems))
    return conv


def load_sam(path: str | Path, overrides: Mapping[str, str] | None = None) -> SamConfig:
    """Read the SAM template at ``path`` as a Config; ConfigError lists every problem at its template line."""
    conv = convert_template(path, overrides)
    template = conv.template
    data = {**conv.data, "source_path": template.path}
    try:
        config = Config.model_validate(data, context={"base_dir": template.path.parent, "check_files": True})
    except ValidationError as exc:
        problems = [_where(conv, error) for error in exc.errors(include_url=False)]
        raise ConfigError(_ordered(problems)) from None
    return SamConfig(config, conv, conv.declared)


def _where(conv: Conversion, error: Any) -> str:
    """A pydantic error on the converted data, at the line of the template value it came from."""
    loc, message = explain(error)
    plain: list[str | int] = []
    data: Any = conv.data
    for part in loc:
        if isinstance(data, dict) and data.get("type") == part and part in EVENT_SOURCE_CLASSES:
            continue  # pydantic's discriminator tag, not a key
        plain.append(part)
        data = (
            data.get(part)
            if isinstance(data, dict)
            else data[part]
            if isinstance(data, list) and isinstance(part, int) and part < len(data)
            else None
        )
    path = tuple(plain)
    for end in range(len(path), -1, -1):
        if path[:end] in conv.origins:
            rest = path[end:]
            shown = ".".join(str(_SAM_NAMES.get(str(p), p)) for p in rest)
            return conv.template.where(conv.origins[path[:end]], f"{shown}: {message}" if rest else message)
    return conv.template.where((), message)


def _origins(conv: Conversion, loc: Loc, origin: Loc, value: Any) -> None:
    conv.origins[loc] = origin
    if isinstance(value, dict):
        for key, inner in value.items():
            _origins(conv, (*loc, key), (*origin, key), inner)
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            _origins(conv, (*loc, index), (*origin, index), inner)


def _ordered(problems: list[str]) -> list[str]:
    def line(problem: str) -> int:
        parts = problem.split(":")
        return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0

    return sorted(dict.fromkeys(problems), key=line)


__all__ = ["SamConfig", "Template", "convert_template", "load_sam"]
