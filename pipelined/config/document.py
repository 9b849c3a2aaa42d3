"""The YAML file as a document: plain data for pydantic, the line of every key and value, ``${VAR}``.

Strings get ``${VAR}`` and ``${VAR:-default}`` (also used when VAR is empty) replaced from the
environment; ``$${...}`` stays literal. Top-level ``x-`` keys are dropped (they hold YAML anchors).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from pipelined.config.events import EVENT_SOURCE_CLASSES
from pipelined.config.types import IDENTIFIER, Loc

# `${NAME}`, `${NAME:-default}`, `$${literal}`; the closing brace is optional so that a missing one is
# reported instead of being kept as text.
_VAR = re.compile(r"\$(\$?)\{([^}]*)(\}?)")


@dataclass
class Document:
    """The YAML tree as plain data, plus the node for every path so errors can name a line."""

    file: str
    values: dict[Loc, yaml.Node] = field(default_factory=dict)
    keys: dict[Loc, yaml.Node] = field(default_factory=dict)
    data: dict[Loc, Any] = field(default_factory=dict)
    failed: set[Loc] = field(default_factory=set)
    problems: list[tuple[int, str]] = field(default_factory=list)
    constructor: yaml.constructor.SafeConstructor = field(default_factory=yaml.constructor.SafeConstructor)

    def problem(self, node: yaml.Node | None, path: Loc, message: str) -> None:
        """Record ``FILE:LINE: path: message`` at the line of ``node`` (line 1 without one)."""
        line = node.start_mark.line + 1 if node is not None else 1
        where = f"{_dotted(path)}: " if path else ""
        self.problems.append((line, f"{self.file}:{line}: {where}{' '.join(message.split())}"))

    def build(self, node: yaml.Node, path: Loc = (), active: frozenset[int] = frozenset()) -> Any:
        """The plain data of ``node`` (at ``path``), interpolated, remembering every node on the way."""
        self.values[path] = node
        if id(node) in active:
            self.problem(node, path, "recursive YAML alias")
            self.failed.add(path)
            return None
        inner = active | {id(node)}
        if isinstance(node, yaml.MappingNode):
            own = sum(1 for key, _ in node.value if key.tag != "tag:yaml.org,2002:merge")
            self.constructor.flatten_mapping(node)  # merged (<<) keys come first; own keys override them
            result: Any = {}
            own_keys: set[Any] = set()
            for index, (key_node, value_node) in enumerate(node.value):
                if not isinstance(key_node, yaml.ScalarNode):
                    self.problem(key_node, path, "mapping keys must be plain scalars")
                    continue
                key = self.constructor.construct_object(key_node)
                if index >= len(node.value) - own:
                    if key in own_keys:
                        self.problem(key_node, (*path, key), "duplicate key")
                    own_keys.add(key)
                if not path and isinstance(key, str) and key.startswith("x-"):
                    continue  # extension keys, e.g. to hold YAML anchors
                self.keys[(*path, key)] = key_node
                result[key] = self.build(value_node, (*path, key), inner)
        elif isinstance(node, yaml.SequenceNode):
            result = [self.build(item, (*path, i), inner) for i, item in enumerate(node.value)]
        elif node.tag == "tag:yaml.org,2002:str":
            result = _VAR.sub(lambda m: self._substitute(m, node, path), node.value)
        else:
            result = self.constructor.construct_object(node, deep=True)
        self.data[path] = result
        return result

    def _substitute(self, match: re.Match[str], node: yaml.Node, path: Loc) -> str:
        escaped, body, closed = match.group(1), match.group(2), match.group(3)
        if escaped:
            return "${" + body + closed
        if not closed:
            self.problem(node, path, f"unterminated variable reference {match.group(0)!r} (missing '}}')")
            self.failed.add(path)
            return match.group(0)
        name, has_default, default = body.partition(":-")
        value = os.environ.get(name)
        if not re.fullmatch(IDENTIFIER, name):
            self.problem(node, path, f"invalid variable reference {match.group(0)!r}")
        elif has_default and not value:
            return default
        elif value is not None:
            return value
        else:
            self.problem(node, path, f"environment variable {name!r} is not set (use ${{{name}:-default}})")
        self.failed.add(path)
        return match.group(0)

    def report(self, loc: Loc, message: str, *, unknown_key: bool = False) -> None:
        """Record a validation problem about pydantic's ``loc`` at the line of what it names.

        A problem inside a value that already failed (an unset variable, say) is not reported again.
        """
        path: Loc = ()
        shown: list[str | int] = []
        node: yaml.Node | None = self.values.get(())
        found = True
        for part in loc:
            if part == "[key]":
                node = self.keys.get(path, node)
            elif found and (*path, part) in self.values:
                path = (*path, part)
                shown.append(part)
                node = self.values[path]
                if unknown_key or not isinstance(node, yaml.ScalarNode):
                    node = self.keys.get(path, node)
            elif found and part in EVENT_SOURCE_CLASSES and _get(self.data.get(path), "type") == part:
                continue  # pydantic's discriminator tag, not a key in the file
            else:
                found = False
                shown.append(part)
        if not any(path[: len(bad)] == bad for bad in self.failed):
            self.problem(node, tuple(shown), message)


def _get(data: Any, key: str) -> Any:
    return data.get(key) if isinstance(data, dict) else None


def _dotted(path: Loc) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")
