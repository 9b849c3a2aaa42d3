"""A template being converted: the pipelined data built so far, where each value came from, what was not.

Every pipelined value remembers the template path it came from (``origins``), so a validation
error is reported at the template's line, and `pipelined sam convert` can say what was mapped.
Whatever the conversion cannot honour is listed once in ``unsupported``, with its template path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipelined.config.sam.intrinsics import Resolver
from pipelined.config.sam.reader import Template
from pipelined.config.sam.resources import Declared, Resources
from pipelined.config.types import Loc

# SAM property -> pipelined key, optionally with a converter of the resolved value.
Rule = str | tuple[str, Callable[[Any], Any]]


@dataclass(frozen=True)
class Unsupported:
    """Something in the template pipelined does not do: where it is and why it is left out."""

    path: Loc
    reason: str


@dataclass
class Conversion:
    """The pipelined data for a template, with the template path of every value and what was left out."""

    template: Template
    resolver: Resolver
    resources: Resources
    data: dict[str, Any] = field(default_factory=dict)
    origins: dict[Loc, Loc] = field(default_factory=dict)
    notes: dict[Loc, str] = field(default_factory=dict)
    unsupported: list[Unsupported] = field(default_factory=list)
    declared: Declared = field(default_factory=Declared)  # what `pipelined dev` creates

    def resolve(self, value: Any, path: Loc) -> Any:
        return self.resolver.resolve(value, path)

    def problem(self, path: Loc, message: str) -> None:
        """An error: the template cannot run as written."""
        self.resolver.problem(path, message)

    def skip(self, path: Loc, reason: str) -> None:
        """Something left out: listed once (by `validate`, at start-up and in `sam convert`)."""
        if all(u.path != path for u in self.unsupported):
            self.unsupported.append(Unsupported(path, reason))

    def put(
        self, target: dict[str, Any], loc: Loc, key: str, value: Any, origin: Loc, note: str = ""
    ) -> None:
        """Set ``target[key]`` (the mapping at ``loc``), remembering the template path it came from."""
        target[key] = value
        self.origins[(*loc, key)] = origin
        if note:
            self.notes[(*loc, key)] = note

    def take(
        self,
        properties: dict[str, Any],
        path: Loc,
        target: dict[str, Any],
        loc: Loc,
        rules: dict[str, Rule],
    ) -> set[str]:
        """Map the ``properties`` (at template ``path``) that ``rules`` name; returns the keys it used."""
        used: set[str] = set()
        for prop, rule in rules.items():
            if prop not in properties:
                continue
            used.add(prop)
            value = self.resolve(properties[prop], (*path, prop))
            key, convert = (rule, None) if isinstance(rule, str) else rule
            if convert is not None:
                try:
                    value = convert(value)
                except (ValueError, TypeError, AttributeError) as exc:
                    self.problem((*path, prop), str(exc))
                    continue
            if value is not None:
                self.put(target, loc, key, value, (*path, prop), note=prop)
        return used

    def rest(self, properties: dict[str, Any], path: Loc, used: set[str], reasons: dict[str, str]) -> None:
        """List every property not in ``used`` as unsupported."""
        for prop in properties:
            if prop not in used:
                self.skip((*path, prop), reasons.get(prop, "pipelined has no equivalent"))


def truthy(value: Any) -> bool:
    """A CloudFormation boolean: true/false, or the strings 'true'/'false'."""
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value
