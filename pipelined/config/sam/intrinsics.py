"""CloudFormation's intrinsic functions and parameters, resolved the way a stack deployment would.

`Ref` (parameters, pseudo parameters, resources), `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::If` and
the condition functions, `Fn::Select`, `Fn::Split`, `Fn::FindInMap`, `Fn::Base64`, `Fn::ToJsonString`.
Parameters take their `Default`, or a value from `--parameter-overrides K=V`.
"""

from __future__ import annotations

import base64
import json
import re
import shlex
from collections.abc import Mapping
from typing import Any, Protocol

from pipelined.config.sam.reader import Template
from pipelined.config.types import Loc


class ResourceRefs(Protocol):
    """What `!Ref` and `!GetAtt` of the template's resources give (resources.Resources)."""

    def has(self, logical_id: str) -> bool: ...

    def ref(self, logical_id: str, path: Loc) -> Any: ...

    def attribute(self, logical_id: str, attribute: str, path: Loc) -> Any: ...


ACCOUNT_ID = "123456789012"  # the account local AWS-protocol servers (moto) use


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Any = _NoValue()  # `!Ref AWS::NoValue`: the property is left out
_SUB = re.compile(r"\$\{(!?)([^}]*)\}")
_CONDITION_FUNCTIONS = ("Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not", "Condition")
_UNSUPPORTED = ("Fn::ImportValue", "Fn::GetAZs", "Fn::Cidr", "Fn::Transform", "Fn::Length", "Fn::ForEach")


def parse_overrides(values: list[str]) -> dict[str, str]:
    """``K=V`` pairs (space-separated, as sam deploy takes them, or ``ParameterKey=K,ParameterValue=V``)."""
    found: dict[str, str] = {}
    for text in values:
        for token in shlex.split(text):
            if token.startswith("ParameterKey="):
                key, _, value = token.partition(",ParameterValue=")
                found[key.removeprefix("ParameterKey=")] = value
                continue
            key, sep, value = token.partition("=")
            if not sep or not key:
                raise ValueError(f"--parameter-overrides: expected KEY=VALUE, got {token!r}")
            found[key] = value
    return found


class Resolver:
    """Resolves intrinsic functions in template values; problems are collected as ``FILE:LINE`` lines."""

    def __init__(self, template: Template, overrides: Mapping[str, str], region: str) -> None:
        self.template = template
        self.region = region
        self.problems: list[str] = []
        self.resources: ResourceRefs | None = None  # set by Resources, which needs the resolver too
        self.parameters: dict[str, Any] = {}
        self._conditions: dict[str, bool] = {}
        declared = template.data.get("Parameters") or {}
        for key in overrides:
            if key not in declared:
                self.problem((), f"--parameter-overrides: the template has no parameter {key!r}")
        for name, declaration in declared.items():
            spec = declaration if isinstance(declaration, dict) else {}
            if name in overrides:
                value: Any = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                self.problem(
                    ("Parameters", name), f"no value: give a Default or --parameter-overrides {name}=VALUE"
                )
                continue
            allowed = spec.get("AllowedValues")
            if isinstance(allowed, list) and str(value) not in [str(a) for a in allowed]:
                self.problem(("Parameters", name), f"{value!r} is not one of AllowedValues {allowed}")
            self.parameters[name] = _typed(str(spec.get("Type", "String")), value)
        stack = template.path.parent.name or "sam-app"  # `sam init` names the directory after the stack
        self.pseudo: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::StackName": stack,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack}/0",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }

    def problem(self, path: Loc, message: str) -> None:
        self.problems.append(self.template.where(path, message))

    # --- conditions ------------------------------------------------------------------------------

    def condition(self, name: str, path: Loc) -> bool:
        """The value of the template's condition ``name``."""
        if name not in self._conditions:
            conditions = self.template.data.get("Conditions") or {}
            if name not in conditions:
                self.problem(path, f"no condition named {name!r} in Conditions")
                return False
            self._conditions[name] = False  # a condition that refers to itself is false, not endless
            self._conditions[name] = bool(self.resolve(conditions[name], ("Conditions", name)))
        return self._conditions[name]

    # --- values --------------------------------------------------------------------------------------

    def resolve(self, value: Any, path: Loc) -> Any:
        """``value`` with every intrinsic function in it replaced by its result."""
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, argument),) = value.items()
                condition = key == "Condition" and isinstance(argument, str)
                if key == "Ref" or key.startswith("Fn::") or condition:
                    return self._function(key, argument, (*path, key))
            resolved = {k: self.resolve(v, (*path, k)) for k, v in value.items()}
            return {k: v for k, v in resolved.items() if v is not NO_VALUE}
        if isinstance(value, list):
            items = [self.resolve(v, (*path, i)) for i, v in enumerate(value)]
            return [v for v in items if v is not NO_VALUE]
        return value

    def _function(self, key: str, argument: Any, path: Loc) -> Any:
        if key == "Ref":
            return self.ref(self.resolve(argument, path), path)
        if key == "Fn::GetAtt":
            target = self.resolve(argument, path)
            parts = target.split(".", 1) if isinstance(target, str) else target
            if not (isinstance(parts, list) and len(parts) == 2 and all(isinstance(p, str) for p in parts)):
                self.problem(path, "expected [LogicalId, Attribute] or 'LogicalId.Attribute'")
                return None
            return self.attribute(parts[0], parts[1], path)
        if key == "Fn::Sub":
            return self._sub(argument, path)
        if key == "Fn::If":
            if not (isinstance(argument, list) and len(argument) == 3):
                self.problem(path, "expected [Condition, value if true, value if false]")
                return None
            chosen = 1 if self.condition(str(argument[0]), path) else 2
            return self.resolve(argument[chosen], (*path, chosen))
        if key in _CONDITION_FUNCTIONS:
            return self._condition_function(key, argument, path)
        args = self.resolve(argument, path)
        try:
            if key == "Fn::Join":
                delimiter, items = args
                return str(delimiter).join(_text(item) for item in items)
            if key == "Fn::Select":
                index, items = args
                return items[int(index)]
            if key == "Fn::Split":
                delimiter, text = args
                return str(text).split(str(delimiter))
            if key == "Fn::FindInMap":
                mapping, first, second = args[:3]
                return (self.template.data.get("Mappings") or {})[mapping][first][second]
            if key == "Fn::Base64":
                return base64.b64encode(str(args).encode()).decode()
            if key == "Fn::ToJsonString":
                return json.dumps(args, separators=(",", ":"))
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            self.problem(path, f"cannot evaluate {key}: {type(exc).__name__} {exc}".strip())
            return None
        reason = "it needs a deployed AWS account" if key in _UNSUPPORTED else "unknown intrinsic function"
        self.problem(path, f"{key} is not supported ({reason})")
        return None

    def _condition_function(self, key: str, argument: Any, path: Loc) -> bool:
        if key == "Condition":
            return self.condition(str(argument), path)
        values = self.resolve(argument, path)
        if key == "Fn::Equals":
            if not (isinstance(values, list) and len(values) == 2):
                self.problem(path, "expected [value, value]")
                return False
            return _text(values[0]) == _text(values[1])
        items = values if isinstance(values, list) else [values]
        if key == "Fn::Not":
            return not bool(items[0]) if items else True
        return all(map(bool, items)) if key == "Fn::And" else any(map(bool, items))

    def ref(self, name: Any, path: Loc) -> Any:
        """What ``!Ref name`` gives: a parameter's value, a pseudo parameter, a resource's Ref value."""
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if self.resources is not None and isinstance(name, str) and self.resources.has(name):
            return self.resources.ref(name, path)
        self.problem(path, f"!Ref {name}: no parameter or resource of that name in the template")
        return None

    def attribute(self, logical_id: str, attribute: str, path: Loc) -> Any:
        """What ``!GetAtt logical_id.attribute`` gives."""
        if self.resources is None or not self.resources.has(logical_id):
            self.problem(
                path, f"!GetAtt {logical_id}.{attribute}: no resource {logical_id!r} in the template"
            )
            return None
        return self.resources.attribute(logical_id, attribute, path)

    def _sub(self, argument: Any, path: Loc) -> Any:
        if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[1], dict):
            text, variables = argument[0], self.resolve(argument[1], (*path, 1))
        else:
            text, variables = argument, {}
        if not isinstance(text, str):
            self.problem(path, "expected a string, or [string, {variables}]")
            return None

        def replace(match: re.Match[str]) -> str:
            literal, name = match.group(1), match.group(2).strip()
            if literal:
                return "${" + match.group(2) + "}"
            if name in variables:
                return _text(variables[name])
            if "." in name and name.split(".", 1)[0] not in self.parameters:
                logical_id, attribute = name.split(".", 1)
                return _text(self.attribute(logical_id, attribute, path))
            return _text(self.ref(name, path))

        return _SUB.sub(replace, text)


def _typed(kind: str, value: Any) -> Any:
    if kind == "Number" and isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            try:
                return float(value)
            except ValueError:
                return value
    if (kind == "CommaDelimitedList" or kind.startswith("List<")) and isinstance(value, str):
        return [item.strip() for item in value.split(",")]
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(v) for v in value)
    return "" if value is None else str(value)
