"""Lambda's error objects for invocations that failed outside the handler's own code."""

from __future__ import annotations

from typing import Any

from pipelined.core.lambda_errors import timed_out
from pipelined.functions.process.channel import describe_status

__all__ = ["timed_out"]


def init_timed_out(request_id: str, timeout: float) -> dict[str, Any]:
    """Module-level init ran past its limit."""
    return {
        "errorMessage": f"RequestId: {request_id} Error: Init timed out after {timeout:.2f} seconds",
        "errorType": "Sandbox.Timedout",
        "stackTrace": [],
    }


def exited(request_id: str, status: int | None) -> dict[str, Any]:
    """The worker exited or was killed by a signal mid-invocation (Lambda's Runtime.ExitError)."""
    # Lambda's wording when it cannot tell how the runtime ended (here: the zygote died with it).
    reason = "Runtime exited without providing a reason"
    if status is not None:
        reason = f"Runtime exited with error: {describe_status(status)}"
    return {
        "errorMessage": f"RequestId: {request_id} Error: {reason}",
        "errorType": "Runtime.ExitError",
        "stackTrace": [],
    }


def out_of_memory(request_id: str, memory_mb: int) -> dict[str, Any]:
    """The handler hit the memory limit (Lambda's Runtime.OutOfMemory)."""
    return {
        "errorMessage": (
            f"RequestId: {request_id} Error: Runtime exited with error: out of memory "
            f"(memory_mb {memory_mb} exceeded)"
        ),
        "errorType": "Runtime.OutOfMemory",
        "stackTrace": [],
    }


def unserializable_event(exc: Exception) -> dict[str, Any]:
    """The event cannot cross to the worker: Lambda only ever passes JSON."""
    return {
        "errorMessage": f"Could not serialize the event as JSON: {exc}",
        "errorType": "InvalidRequestContentException",
        "stackTrace": [],
    }


def unavailable(request_id: str, reason: str) -> dict[str, Any]:
    """No worker could be started (fork failed, the zygote is gone)."""
    return {
        "errorMessage": f"RequestId: {request_id} Error: could not start a worker: {reason}",
        "errorType": "Runtime.Unavailable",
        "stackTrace": [],
    }
