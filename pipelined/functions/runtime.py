"""The interface every way of running a handler implements: inline, worker processes, the Runtime API."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipelined.core.lambda_errors import LambdaError


@dataclass(frozen=True, slots=True)
class Invocation:
    """One event for one execution environment, with its deadline."""

    request_id: str
    event: Any
    timeout: float
    # time.monotonic() at which the invocation times out.
    deadline: float
    # Invoke's ClientContext, decoded (a JSON object), for `context.client_context`.
    client_context: Any = None


@dataclass(frozen=True, slots=True)
class Execution:
    """An execution environment leased for one invocation, or the init error that left none."""

    # Runtime-private: the worker process, or None inline.
    environment: Any = None
    # Set when this invocation pays for a cold start (REPORT's Init Duration).
    init_duration_ms: float | None = None
    error: LambdaError | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """What the handler returned or raised, and the memory it used."""

    value: Any
    error: LambdaError | None
    # Peak memory of the execution environment; None: the runtime cannot tell (the daemon's is used).
    max_memory_mb: int | None = None


class Runtime(Protocol):
    """Runs one function's handler; the invoke service drives it (slots, logs and metrics are its own)."""

    def load(self) -> None:
        """Prepare what can be checked at once (import the handler inline); raise HandlerLoadError."""

    async def start(self) -> None:
        """Start what must run before the first event (provisioned workers)."""

    async def acquire(self, request_id: str) -> Execution:
        """An execution environment for one invocation; a cold start happens here, before START."""

    async def run(self, execution: Execution, invocation: Invocation) -> Reply:
        """Run the handler once; never raises for handler errors, timeouts or crashes."""

    async def refresh(self, changed: Collection[Path]) -> LambdaError | None:
        """Hot reload: serve the code as it is on disk now (`changed`: the files saved since).

        Invocations in flight finish on the old code. The new code is proven to initialise before it
        replaces the old; if it cannot, the old code keeps serving and the init error is returned.
        """

    async def close(self, timeout: float) -> None:
        """Stop once invocations in flight are done (killing them after `timeout`)."""
