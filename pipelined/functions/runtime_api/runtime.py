"""The Runtime API runtime (Node.js, `provided`): invocations run in programs speaking the Runtime API."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from pipelined.config import FunctionConfig
from pipelined.core.identity import FunctionIdentity
from pipelined.functions.process.spec import WorkerSpec
from pipelined.functions.runtime import Execution, Invocation, Reply
from pipelined.functions.runtime_api.launch import launch_for
from pipelined.functions.runtime_api.pool import ApiPool
from pipelined.observe.metrics import FunctionMetrics


class RuntimeApiRuntime:
    """Leases a worker per invocation; each worker is the function's runtime program, started once."""

    def __init__(
        self,
        identity: FunctionIdentity,
        config: FunctionConfig,
        environment: Mapping[str, str],
        metrics: FunctionMetrics | None = None,
    ) -> None:
        self.identity = identity
        self.config = config
        self.environment = environment
        self.metrics = metrics
        self.pool: ApiPool | None = None

    def load(self) -> None:
        # The launch captures the daemon's environment now (credentials passed through to workers).
        if self.pool is None:
            launch = launch_for(self.config, self.environment)
            spec = WorkerSpec.of(
                self.identity.name, self.config, self.identity.arn, self.identity.log_stream, self.environment
            )
            spec = dataclasses.replace(spec, environment=launch.environment)
            self.pool = ApiPool(spec, launch, self.metrics)

    async def start(self) -> None:
        # Provisioned workers start here, and one worker proves the runtime initialises.
        self.load()
        assert self.pool is not None
        await self.pool.start()

    async def acquire(self, request_id: str) -> Execution:
        self.load()
        assert self.pool is not None
        return await self.pool.lease(request_id)

    async def run(self, execution: Execution, invocation: Invocation) -> Reply:
        assert self.pool is not None
        if execution.environment is None:
            return Reply(None, execution.error)
        return await self.pool.run(
            execution.environment, invocation.event, invocation.request_id, invocation.timeout
        )

    async def close(self, timeout: float) -> None:
        if self.pool is not None:
            await self.pool.close(timeout)
