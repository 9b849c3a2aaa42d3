"""Lambda's error objects for invocations that failed outside the handler's own code."""

from __future__ import annotations

from pipelined.core.lambda_errors import LambdaError, timed_out
from pipelined.functions.process.channel import describe_status

__all__ = ["timed_out"]


def init_timed_out(request_id: str, timeout: float) -> LambdaError:
    """Module-level init ran past its limit."""
    return LambdaError(
        "Sandbox.Timedout", f"RequestId: {request_id} Error: Init timed out after {timeout:.2f} seconds"
    )


def exited(request_id: str, status: int | None) -> LambdaError:
    """The worker exited or was killed by a signal mid-invocation (Lambda's Runtime.ExitError)."""
    # Lambda's wording when it cannot tell how the runtime ended (here: the zygote died with it).
    reason = "Runtime exited without providing a reason"
    if status is not None:
        reason = f"Runtime exited with error: {describe_status(status)}"
    return LambdaError("Runtime.ExitError", f"RequestId: {request_id} Error: {reason}")


def out_of_memory(request_id: str, memory_mb: int) -> LambdaError:
    """The handler hit the memory limit (Lambda's Runtime.OutOfMemory)."""
    return LambdaError(
        "Runtime.OutOfMemory",
        (
            f"RequestId: {request_id} Error: Runtime exited with error: out of memory "
            f"(memory_mb {memory_mb} exceeded)"
        ),
    )


def unserializable_event(exc: Exception) -> LambdaError:
    """The event cannot cross to the worker: Lambda only ever passes JSON."""
    return LambdaError("InvalidRequestContentException", f"Could not serialize the event as JSON: {exc}")


def unavailable(request_id: str, reason: str) -> LambdaError:
    """No worker could be started (fork failed, the zygote is gone)."""
    return LambdaError(
        "Runtime.Unavailable", f"RequestId: {request_id} Error: could not start a worker: {reason}"
    )
