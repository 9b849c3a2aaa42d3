"""Naming the Lambda operations pipelined does not serve, from botocore's own service model."""

from __future__ import annotations

import functools
import re
from pathlib import Path

from botocore.loaders import Loader

from pipelined.http.aws_errors import ApiError


@functools.cache
def _operations() -> list[tuple[str, re.Pattern[str], str]]:
    """(method, path pattern, operation name) for every operation of the Lambda model, most specific first."""
    model = Loader().load_service_model("lambda", "service-2")
    routes = []
    for name, operation in model["operations"].items():
        uri = operation["http"]["requestUri"].split("?")[0]
        literal = len(re.sub(r"\{[^}]+\}", "", uri))
        pattern = re.sub(r"\\\{[^}]+\\\+\\\}", ".+", re.escape(uri))
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", pattern)
        routes.append((literal, operation["http"]["method"], re.compile(pattern.rstrip("/") + "/?"), name))
    routes.sort(key=lambda r: -r[0])
    return [(method, pattern, name) for _, method, pattern, name in routes]


def operation_name(method: str, path: str) -> str | None:
    """The Lambda operation a request is for, None if it is none of them."""
    for op_method, pattern, name in _operations():
        if op_method == method and pattern.fullmatch(path):
            return name
    return None


def unsupported_operation(method: str, path: str, config_file: Path) -> ApiError:
    """The error for an operation pipelined does not serve: writes point at the YAML file and reload."""
    name = operation_name(method, path)
    if name is None:
        return ApiError(404, "UnknownOperationException", f"no Lambda operation is {method} {path}")
    if method == "GET":
        return ApiError(400, "InvalidParameterValueException", f"pipelined does not support {name}")
    return ApiError(
        400,
        "InvalidParameterValueException",
        f"pipelined does not support {name}: functions are declared in {config_file}, the source of truth; "
        "edit that file and reload the daemon (`systemctl reload pipelined` or `kill -HUP <pid>`)",
    )
