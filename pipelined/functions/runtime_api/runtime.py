"""The Runtime API runtime (Node.js, `provided`): invocations run in programs speaking the Runtime API."""

from __future__ import annotations

import dataclasses

from pipelined.functions.process.pool import WorkerPool
from pipelined.functions.process.runtime import ProcessRuntime
from pipelined.functions.process.spec import WorkerSpec
from pipelined.functions.runtime_api.launch import launch_for
from pipelined.functions.runtime_api.pool import ApiPool


class RuntimeApiRuntime(ProcessRuntime):
    """Leases a worker per invocation; each worker is the function's runtime program, started once."""

    def _new_pool(self, spec: WorkerSpec) -> WorkerPool:
        # The launch captures the daemon's environment now (credentials passed through to workers).
        launch = launch_for(self.config, self.environment)
        return ApiPool(dataclasses.replace(spec, environment=launch.environment), launch, self.metrics)
