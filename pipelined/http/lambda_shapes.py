"""Functions in the Lambda API's field names: GetFunction, ListFunctions and the Get*Config operations."""

from __future__ import annotations

import base64
import hashlib
import platform
import re
import sys
import time
import uuid
from typing import Any

from pipelined.config import AsyncDestination
from pipelined.core.identity import VERSION, function_arn, role_arn
from pipelined.functions.function import Function

RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
ARCHITECTURE = "arm64" if platform.machine().lower() in ("aarch64", "arm64") else "x86_64"


def last_modified(epoch: float) -> str:
    """Lambda's `LastModified`: `2026-01-01T00:00:00.000+0000`."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}+0000"


def _digest(function: Function) -> bytes:
    # Stands for the deployment package: changes whenever the declared configuration changes.
    return hashlib.sha256(function.config.model_dump_json().encode()).digest()


def configuration(function: Function, loaded_at: float) -> dict[str, Any]:
    """GetFunctionConfiguration's answer: the function as the YAML file declares it."""
    config, identity = function.config, function.identity
    digest = _digest(function)
    shape: dict[str, Any] = {
        "FunctionName": function.name,
        "FunctionArn": function.arn,
        "Runtime": RUNTIME,
        "Role": config.role or role_arn(identity.account, f"{function.name}-role"),
        "Handler": config.handler,
        "CodeSize": 0,
        "Description": "",
        "Timeout": round(config.timeout),
        "MemorySize": config.memory_mb,
        "LastModified": last_modified(loaded_at),
        "CodeSha256": base64.b64encode(digest).decode(),
        "Version": VERSION,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": str(uuid.UUID(bytes=digest[:16], version=4)),
        "Layers": [
            {"Arn": f"{_layer_arn(identity.region, identity.account, path.name)}:1", "CodeSize": 0}
            for path in config.layers
        ],
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "PackageType": "Zip",
        "Architectures": [ARCHITECTURE],
        "EphemeralStorage": {"Size": 512},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": identity.log_group},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
    }
    if config.environment:
        shape["Environment"] = {"Variables": dict(config.environment)}
    return shape


def _layer_arn(region: str, account: str, directory: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "-", directory)[:140] or "layer"
    return f"arn:aws:lambda:{region}:{account}:layer:{name}"


def get_function(function: Function, loaded_at: float) -> dict[str, Any]:
    """GetFunction's answer: configuration, where the code is, reserved concurrency."""
    shape: dict[str, Any] = {
        "Configuration": configuration(function, loaded_at),
        "Code": {"RepositoryType": "Local", "Location": function.config.code.as_uri()},
    }
    reserved = function.config.reserved_concurrency
    if reserved is not None:
        shape["Concurrency"] = {"ReservedConcurrentExecutions": reserved}
    return shape


def concurrency(function: Function) -> dict[str, Any]:
    """GetFunctionConcurrency's answer (empty without reserved concurrency, as Lambda's)."""
    reserved = function.config.reserved_concurrency
    return {} if reserved is None else {"ReservedConcurrentExecutions": reserved}


def provisioned_concurrency(function: Function, loaded_at: float) -> dict[str, Any] | None:
    """GetProvisionedConcurrencyConfig's answer, None when the function has none."""
    count = function.config.provisioned_concurrency
    if not count:
        return None
    return {
        "RequestedProvisionedConcurrentExecutions": count,
        "AvailableProvisionedConcurrentExecutions": count,
        "AllocatedProvisionedConcurrentExecutions": count,
        "Status": "READY",
        "LastModified": last_modified(loaded_at),
    }


def event_invoke_config(function: Function, loaded_at: float) -> dict[str, Any]:
    """GetFunctionEventInvokeConfig's answer: the function's `async` settings (defaults included)."""
    settings = function.config.async_
    destinations: dict[str, Any] = {}
    on_failure = settings.destinations.on_failure
    if on_failure is None and function.config.on_failure is not None:
        on_failure = AsyncDestination(destination=function.config.on_failure.destination)
    for key, target in (("OnSuccess", settings.destinations.on_success), ("OnFailure", on_failure)):
        if target is not None:
            destinations[key] = {"Destination": _destination(function, target)}
    return {
        "LastModified": loaded_at,
        "FunctionArn": f"{function.arn}:{VERSION}",
        "MaximumRetryAttempts": settings.maximum_retry_attempts,
        "MaximumEventAgeInSeconds": round(settings.maximum_event_age),
        "DestinationConfig": destinations,
    }


def _destination(function: Function, target: AsyncDestination) -> str:
    if target.kind == "function" and target.destination.startswith("function:"):
        identity = function.identity
        return function_arn(identity.region, identity.account, target.function_name)
    return target.destination
