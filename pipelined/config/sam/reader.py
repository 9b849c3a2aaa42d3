"""Reading a SAM template (CloudFormation YAML with short-form tags, or JSON) into plain data with lines.

The tags (`!Ref`, `!GetAtt A.B`, `!Sub`, ...) are read by cfn-lint's decoder (`cfnlint.decode`), the
loader AWS's own template linter uses: it turns each into its long form (`{"Fn::GetAtt": ["A", "B"]}`)
and keeps the line of every key, so errors can point at the template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelined.config.types import Loc, read_config_text
from pipelined.errors import ConfigError


@dataclass(frozen=True)
class Template:
    """A template's plain data and the line of every key (and list item) in it, by path."""

    file: str
    path: Path
    data: dict[str, Any]
    lines: dict[Loc, int]

    def line(self, path: Loc) -> int:
        """The line of ``path``, or of the nearest enclosing key the template has."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1

    def where(self, path: Loc, message: str) -> str:
        """``FILE:LINE: dotted.path: message`` for a problem at ``path``."""
        dotted = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
        return f"{self.file}:{self.line(path)}: {dotted + ': ' if dotted else ''}{' '.join(message.split())}"


def _line(node: Any) -> int | None:
    mark = getattr(node, "start_mark", None)
    return mark.line + 1 if mark is not None else None


def _plain(node: Any, path: Loc, lines: dict[Loc, int]) -> Any:
    """The decoder's nodes as plain dicts, lists and scalars, remembering lines on the way."""
    if isinstance(node, dict):
        result: dict[str, Any] = {}
        for key, value in node.items():
            child = (*path, str(key))
            line = _line(key) or _line(value)
            if line is not None:
                lines[child] = line
            result[str(key)] = _plain(value, child, lines)
        return result
    if isinstance(node, list):
        items = []
        for index, value in enumerate(node):
            line = _line(value)
            if line is not None:
                lines[(*path, index)] = line
            items.append(_plain(value, (*path, index), lines))
        return items
    if isinstance(node, str):
        return str(node)
    return node


def _decode(text: str, file: str) -> Any:
    from cfnlint.decode import cfn_json, cfn_yaml  # its import is slow: only for SAM templates

    if text.lstrip().startswith("{"):
        try:
            return cfn_json.loads(text)
        except cfn_json.JSONDecodeError as exc:
            raise ConfigError(
                [f"{file}:{m.linenumber}: invalid JSON: {m.message}" for m in exc.matches]
            ) from None
        except json.JSONDecodeError as exc:
            raise ConfigError([f"{file}:{exc.lineno}: invalid JSON: {exc.msg}"]) from None
    try:
        return cfn_yaml.loads(text, file)
    except cfn_yaml.CfnParseError as exc:
        raise ConfigError(
            [f"{file}:{max(1, m.linenumber)}: invalid template: {m.message}" for m in exc.matches]
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        detail = exc.problem or exc.context or "syntax error"
        raise ConfigError([f"{file}:{mark.line + 1 if mark else 1}: invalid YAML: {detail}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{file}:1: invalid YAML: {' '.join(str(exc).split())}"]) from None


def read_template(path: str | Path) -> Template:
    """Read and decode the template at ``path``; ConfigError (``FILE:LINE: ...``) when it cannot be."""
    file = str(path)
    text = read_config_text(path)
    tree = _decode(text, file)
    if not isinstance(tree, dict) or not tree:
        raise ConfigError([f"{file}:1: a SAM template is a mapping with a 'Resources' section"])
    lines: dict[Loc, int] = {}
    data = _plain(tree, (), lines)
    template = Template(file, Path(path).absolute(), data, lines)
    if not isinstance(data.get("Resources"), dict):
        raise ConfigError([template.where(("Resources",), "a SAM template needs a 'Resources' mapping")])
    return template
