"""`pipelined sam convert`: the converted template as a pipelined YAML file, commented with its origins."""

from __future__ import annotations

import json
from typing import Any

import yaml

from pipelined import __version__
from pipelined.config.sam.conversion import Conversion
from pipelined.config.types import Loc

# Values that are data (an event, a filter pattern), written as JSON on one line.
_FLOW = {"filter_patterns", "input", "pattern", "input_paths_map"}


def render_yaml(conv: Conversion) -> str:
    """The pipelined configuration for ``conv`` as YAML text, with a comment on every mapped value."""
    template = conv.template
    out = [
        f"# Converted from {template.file} by `pipelined sam convert` (pipelined {__version__}).",
        "# Relative paths are as in the template: save this file in the template's directory.",
        "# A comment names the SAM property (and template line) each value came from.",
    ]
    if conv.unsupported:
        out += ["#", "# Not converted (pipelined does not support them):"]
        for item in sorted(conv.unsupported, key=lambda u: template.line(u.path)):
            out.append(f"#   {template.where(item.path, item.reason).removeprefix(template.file + ':')}")
    out.append("")
    _mapping(conv, conv.data, (), 0, out)
    return "\n".join(out) + "\n"


def _comment(conv: Conversion, loc: Loc) -> str:
    origin = conv.origins.get(loc)
    if origin is None:
        return ""
    line = conv.template.line(origin)
    note = conv.notes.get(loc)
    if note:
        return f"  # {note} (line {line})"
    if len(loc) == 2 and loc[0] == "functions":
        return f"  # {'.'.join(map(str, origin))} (line {line})"
    return ""


def _mapping(
    conv: Conversion, data: dict[str, Any], loc: Loc, indent: int, out: list[str], first: str = ""
) -> None:
    pad = " " * indent
    for index, (key, value) in enumerate(data.items()):
        lead = first if index == 0 and first else pad
        _entry(conv, f"{lead}{_scalar(key)}:", value, (*loc, key), indent, out, flow=key in _FLOW)


def _entry(
    conv: Conversion, head: str, value: Any, loc: Loc, indent: int, out: list[str], flow: bool
) -> None:
    comment = _comment(conv, loc)
    if flow or not isinstance(value, dict | list) or not value or _scalars(value):
        out.append(f"{head} {_inline(value)}{comment}")
        return
    out.append(f"{head}{comment}")
    if isinstance(value, dict):
        _mapping(conv, value, loc, indent + 2, out)
        return
    for index, item in enumerate(value):
        if isinstance(item, dict) and item:
            _mapping(conv, item, (*loc, index), indent + 4, out, first=" " * (indent + 2) + "- ")
        else:
            out.append(f"{' ' * (indent + 2)}- {_inline(item)}{_comment(conv, (*loc, index))}")


def _scalars(value: dict[str, Any] | list[Any]) -> bool:
    return isinstance(value, list) and all(not isinstance(v, dict | list) for v in value)


def _escape(value: Any) -> Any:
    """Strings with `${` written as `$${`: pipelined's YAML would read them as variable references."""
    if isinstance(value, str):
        return value.replace("${", "$${")
    if isinstance(value, dict):
        return {k: _escape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_escape(v) for v in value]
    return value


def _inline(value: Any) -> str:
    value = _escape(value)
    if isinstance(value, dict | list) and value and not _scalars(value):
        return json.dumps(value)
    return _scalar(value)


def _scalar(value: Any) -> str:
    text = yaml.safe_dump(value, default_flow_style=True, width=1 << 20, allow_unicode=True).strip()
    return text.removesuffix("\n...").removesuffix("...").strip()
