"""The worker pool of a Runtime API function: the process pool's lifecycle, with programs as workers.

Leasing, growth, idle reaping, provisioned workers, timeouts, crash and exit handling are the process
pool's own (functions/process/pool.py); only what a worker is differs: a program exec'd by the zygote,
with a Runtime API endpoint of its own and its stdout/stderr as the log stream.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import Any

from pipelined.errors import WorkerError
from pipelined.functions.process.channel import WorkerProcess
from pipelined.functions.process.pool import WorkerPool
from pipelined.functions.process.protocol import json_default
from pipelined.functions.process.spec import WorkerSpec
from pipelined.functions.runtime_api.launch import Launch
from pipelined.functions.runtime_api.server import serve
from pipelined.functions.runtime_api.worker import ApiWorker
from pipelined.observe.metrics import FunctionMetrics


class ApiPool(WorkerPool):
    """Workers that run `launch` and talk to pipelined through the Lambda Runtime API."""

    def __init__(self, spec: WorkerSpec, launch: Launch, metrics: FunctionMetrics | None = None) -> None:
        super().__init__(spec, metrics)
        self.launch = launch
        self._serving: set[asyncio.Task[None]] = set()

    def _launch(self, provisioned: bool) -> tuple[dict[str, Any], Any]:
        # Listening before the program starts: its first request waits in the backlog, never refused.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.bind(("127.0.0.1", 0))
            listener.listen(16)
            listener.setblocking(False)
        except OSError as exc:
            listener.close()
            raise WorkerError(f"cannot open a Runtime API port: {exc}") from exc
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        return self.launch.message(address, provisioned), listener

    def _abandon(self, launch: Any) -> None:
        launch.close()

    def _new_worker(
        self, pid: int, exit_status: asyncio.Future[int | None], provisioned: bool, launch: Any
    ) -> WorkerProcess:
        worker = ApiWorker(
            self.spec.name,
            pid,
            exit_status,
            provisioned,
            self._on_lost,
            listener=launch,
            memory_mb=self.spec.memory_mb,
            timeout=self.spec.timeout,
            kill=self._kill,
        )
        task = asyncio.get_running_loop().create_task(serve(worker, self.spec.arn))
        self._serving.add(task)
        task.add_done_callback(self._serving.discard)
        return worker

    def _kill(self, pid: int) -> None:
        if self._fork is not None:
            self._fork.kill(pid)

    def _encode_invocation(
        self, request_id: str, deadline: float, event: Any, client_context: Any, trace_id: str
    ) -> bytes:
        # The trace id reaches the runtime as GET /next's Lambda-Runtime-Trace-Id (ApiWorker.invoke).
        return json.dumps(event, separators=(",", ":"), default=json_default).encode()
