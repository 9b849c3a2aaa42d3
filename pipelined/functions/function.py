"""A function: its identity, its Lambda environment, its concurrency slots and the runtime that runs it."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from collections.abc import Callable, Collection, Iterable
from pathlib import Path
from typing import Any

from pipelined.aws import AwsClients
from pipelined.config import FunctionConfig
from pipelined.config.runtimes import family
from pipelined.core.identity import DEFAULT_ACCOUNT_ID, FunctionIdentity, new_log_stream_name
from pipelined.core.lambda_errors import LambdaError
from pipelined.errors import PipelinedError
from pipelined.functions.credentials import RoleCredentials
from pipelined.functions.inline import InlineRuntime
from pipelined.functions.process.runtime import ProcessRuntime
from pipelined.functions.runtime import Runtime
from pipelined.functions.runtime_api.runtime import RuntimeApiRuntime
from pipelined.observe.metrics import FunctionMetrics
from pipelined.observe.tracing import Tracer

# The Python runtime's libraries: pipelined itself (Lambda's /var/runtime holds awslambdaric).
PYTHON_RUNTIME_DIR = str(Path(__file__).resolve().parents[2])


def lambda_environment(identity: FunctionIdentity, config: FunctionConfig) -> dict[str, str]:
    """The variables Lambda sets for a function, then the function's own `environment` (which wins).

    AWS's "Defined runtime environment variables"; per invocation `_X_AMZN_TRACE_ID` is added (and
    AWS_LAMBDA_INITIALIZATION_TYPE per worker), by the runtime that runs it.
    """
    environment = {
        "AWS_LAMBDA_FUNCTION_NAME": identity.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_LOG_GROUP_NAME": identity.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": identity.log_stream,
        "AWS_REGION": identity.region,
        "AWS_DEFAULT_REGION": identity.region,
        "_HANDLER": config.handler,
        "LAMBDA_TASK_ROOT": str(config.code),
        "TZ": ":UTC",
        "LANG": "en_US.UTF-8",
        "AWS_XRAY_CONTEXT_MISSING": "LOG_ERROR",
    }
    if family(config.runtime) == "python":
        # Node.js and `provided` functions get theirs from their launch (functions/runtime_api/launch.py).
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        environment["AWS_EXECUTION_ENV"] = f"AWS_Lambda_python{version}"
        environment["LAMBDA_RUNTIME_DIR"] = PYTHON_RUNTIME_DIR
    # Inline functions load on demand; a provisioned worker says so instead (WorkerSpec.message).
    environment["AWS_LAMBDA_INITIALIZATION_TYPE"] = "on-demand"
    environment.update(config.environment)
    return environment


def forget_bytecode(paths: Iterable[Path]) -> None:
    """Delete the cached bytecode of changed Python files.

    Python trusts a .pyc whose recorded source mtime (whole seconds) and size match: a second save of
    the same length within the same second would otherwise import the previous code.
    """
    for path in paths:
        if path.suffix == ".py":
            with contextlib.suppress(OSError, ValueError):
                Path(importlib.util.cache_from_source(str(path))).unlink(missing_ok=True)


class Function:
    """One configured function: who it is, how many invocations it may run at once, and its runtime."""

    def __init__(
        self,
        name: str,
        config: FunctionConfig,
        region: str,
        metrics: FunctionMetrics | None = None,
        account: str = DEFAULT_ACCOUNT_ID,
        aws: Callable[[], AwsClients] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.identity = FunctionIdentity(
            name=name,
            region=region,
            account=account,
            memory_mb=config.memory_mb,
            timeout=config.timeout,
            log_stream=new_log_stream_name(),
            role=config.role,
        )
        self.environment = lambda_environment(self.identity, config)
        # The execution role's credentials (None: the daemon's own pass through, as they always did).
        self.credentials: RoleCredentials | None = None
        if config.role is not None:
            if aws is None:
                raise PipelinedError(f"function {name}: `role` needs the daemon's AWS clients")
            self.credentials = RoleCredentials(config.role, name, aws)
        credentials = self.credentials
        # A new runtime is one more implementation of the Runtime protocol and one more branch here.
        self.runtime: Runtime
        if family(config.runtime) != "python":
            self.runtime = RuntimeApiRuntime(self.identity, config, self.environment, metrics, credentials)
        elif config.isolation == "inline":  # an explicit opt-in (docs/isolation.md); process is the default
            if credentials is not None:
                # Config refuses it too (FILE:LINE); this guards functions built in code.
                raise PipelinedError(f"function {name}: `role` needs isolation: process")
            self.runtime = InlineRuntime(self.identity, config, self.environment)
        else:
            self.runtime = ProcessRuntime(self.identity, config, self.environment, metrics, credentials)
        limit = config.reserved_concurrency
        self._slots = asyncio.Semaphore(limit) if limit is not None else None
        # Invocations in flight: read by the ConcurrentExecutions gauge at scrape time.
        self.in_flight = 0
        # `tracing: active`: the daemon's tracer, which makes each invocation a span (observe/tracing.py).
        self.tracer: Tracer | None = None

    @property
    def arn(self) -> str:
        """The function's ARN."""
        return self.identity.arn

    @property
    def log_stream_name(self) -> str:
        """The log stream of this function's execution environments."""
        return self.identity.log_stream

    @property
    def handler(self) -> Callable[..., Any] | None:
        """The imported handler of an inline function (None with process isolation)."""
        return self.runtime.handler if isinstance(self.runtime, InlineRuntime) else None

    def load(self) -> None:
        """Import the handler inline (a cold start), or prepare the worker pool; HandlerLoadError if not."""
        self.runtime.load()

    async def start(self) -> None:
        """Start what must run before the first event: with process isolation, the first workers."""
        await self.runtime.start()

    async def refresh(self, changed: Collection[Path] = ()) -> LambdaError | None:
        """Hot reload: run the code as saved now; its init error (old code still serving) if it fails."""
        forget_bytecode(changed)
        return await self.runtime.refresh(changed)

    async def close(self, timeout: float = 10.0) -> None:
        """Stop the function's workers once their in-flight invocations are done (inline: nothing)."""
        await self.runtime.close(timeout)

    @property
    def at_limit(self) -> bool:
        """True when every unit of reserved concurrency is taken."""
        return self._slots is not None and self._slots.locked()

    async def acquire(self, on_throttle: Callable[[], None] | None = None) -> None:
        """Take one unit of reserved concurrency, calling on_throttle if the function is at its limit."""
        if self._slots is None:
            return
        if self._slots.locked() and on_throttle is not None:
            on_throttle()
        await self._slots.acquire()

    def release(self) -> None:
        """Give back the unit taken by acquire()."""
        if self._slots is not None:
            self._slots.release()
