"""What a worker is told right after its fork, on its own channel: its function, limits and environment."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pipelined.config import FunctionConfig

# A Lambda function gets its execution role's credentials in these variables. A function without `role`
# gets the daemon's own credentials (and endpoint), deliberately and only these, so handlers can call
# AWS the way the daemon does; with `role`, the role's credentials replace them when a worker starts
# (functions/credentials.py). Everything else in the daemon's environment stays out.
PASSTHROUGH = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")
ENDPOINT_PREFIX = "AWS_ENDPOINT_URL_"  # service-specific endpoints, e.g. AWS_ENDPOINT_URL_SQS


def worker_environment(lambda_environment: Mapping[str, str], daemon: Mapping[str, str]) -> dict[str, str]:
    """The full environment of a worker: minimal base, passed-through credentials, Lambda's variables."""
    python_bin = str(Path(sys.executable).parent)
    environment = {"PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin"}
    for name, value in daemon.items():
        if name in PASSTHROUGH or name.startswith(ENDPOINT_PREFIX):
            environment[name] = value
    # Lambda's variables, then the function's own `environment` (last, so it wins, as inline).
    environment.update(lambda_environment)
    return environment


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """One function as its workers see it; `message()` is the spec the daemon sends a new worker."""

    name: str
    handler: str
    code: str
    layers: tuple[str, ...]
    memory_mb: int
    timeout: float
    arn: str
    log_stream: str
    environment: Mapping[str, str]
    provisioned: int
    idle_timeout: float

    @classmethod
    def of(
        cls,
        name: str,
        config: FunctionConfig,
        arn: str,
        log_stream: str,
        lambda_environment: Mapping[str, str],
    ) -> WorkerSpec:
        """The spec of a configured function; the environment is built from the daemon's now."""
        return cls(
            name=name,
            handler=config.handler,
            code=str(config.code),
            layers=tuple(str(path) for path in config.layers),
            memory_mb=config.memory_mb,
            timeout=config.timeout,
            arn=arn,
            log_stream=log_stream,
            environment=worker_environment(lambda_environment, os.environ),
            provisioned=config.provisioned_concurrency,
            idle_timeout=config.idle_timeout,
        )

    @property
    def init_timeout(self) -> float:
        """Lambda gives init 10 s on its own; pipelined never gives it less than the function timeout."""
        return max(10.0, self.timeout)

    def message(self, provisioned: bool, log_level: int) -> dict[str, Any]:
        """The SETUP frame's `spec`: everything the worker needs before importing the handler."""
        environment = dict(self.environment)
        environment["AWS_LAMBDA_INITIALIZATION_TYPE"] = (
            "provisioned-concurrency" if provisioned else "on-demand"
        )
        return {
            "name": self.name,
            "handler": self.handler,
            "code": self.code,
            "layers": list(self.layers),
            "memory_mb": self.memory_mb,
            "arn": self.arn,
            "log_group": f"/aws/lambda/{self.name}",
            "log_stream": self.log_stream,
            "environment": environment,
            "log_level": log_level,
        }
