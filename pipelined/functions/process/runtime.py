"""The process runtime (`isolation: process`): each invocation runs in a warm worker process of the pool."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from pipelined.config import FunctionConfig
from pipelined.core.identity import FunctionIdentity
from pipelined.core.lambda_errors import LambdaError
from pipelined.functions.process.pool import WorkerPool
from pipelined.functions.process.spec import WorkerSpec
from pipelined.functions.runtime import Execution, Invocation, Reply
from pipelined.observe.metrics import FunctionMetrics


class ProcessRuntime:
    """Leases a worker per invocation; workers import the handler (each one, once)."""

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
        self.pool: WorkerPool | None = None

    def load(self) -> None:
        # The spec captures the daemon's environment now (credentials passed through to workers).
        if self.pool is None:
            spec = WorkerSpec.of(
                self.identity.name, self.config, self.identity.arn, self.identity.log_stream, self.environment
            )
            self.pool = self._new_pool(spec)

    def _new_pool(self, spec: WorkerSpec) -> WorkerPool:
        """The pool of this runtime's workers (the Runtime API runtime's run a program instead)."""
        return WorkerPool(spec, self.metrics)

    async def start(self) -> None:
        # Provisioned workers start here, and one worker proves the handler imports.
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
            execution.environment,
            invocation.event,
            invocation.request_id,
            invocation.timeout,
            invocation.client_context,
        )

    async def refresh(self, changed: Collection[Path]) -> LambdaError | None:
        # Fresh workers import every module anew; the pool swaps them in once one has started.
        if self.pool is None:
            return None
        return await self.pool.recycle()

    async def close(self, timeout: float) -> None:
        if self.pool is not None:
            await self.pool.close(timeout)
