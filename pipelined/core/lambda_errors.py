"""Lambda's error object: what a failed invocation returns, written once for inline and worker invocations.

Only the standard library is imported: worker processes import this module in the zygote.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class LambdaError:
    """Lambda's error object: `errorType`, `errorMessage` and, for function errors, `stackTrace`."""

    error_type: str
    error_message: str
    # None for errors pipelined reports about a response or a record (no stack to show).
    stack_trace: tuple[str, ...] | None = ()
    # The object exactly as a Runtime API client posted it (Node.js sends `trace`, not `stackTrace`):
    # Lambda returns it unchanged, so pipelined does too.
    raw: Mapping[str, Any] | None = field(default=None, compare=False)
    # Set on the errors the Python runtime client itself reports (the handler raised, its response could
    # not be serialised): awslambdaric puts the invocation's request id into those, and logs them as
    # `[ERROR] Type: message` with the stack. Errors the platform reports (timeouts, a crashed runtime)
    # name the request in their message instead.
    request_id: str | None = None

    def payload(self) -> dict[str, Any]:
        """The JSON object Lambda returns (and pipelined stores, prints and sends to destinations)."""
        if self.raw is not None:
            return dict(self.raw)
        out: dict[str, Any] = {"errorMessage": self.error_message, "errorType": self.error_type}
        if self.request_id is not None:
            # awslambdaric's key order: errorMessage, errorType, requestId, stackTrace.
            out["requestId"] = self.request_id
        if self.stack_trace is not None:
            out["stackTrace"] = list(self.stack_trace)
        return out

    def log_lines(self) -> list[str]:
        """The function error as awslambdaric logs it: `[ERROR] Type: message`, then the traceback."""
        head = "[ERROR]"
        if self.error_type:
            head += f" {self.error_type}"
        if self.error_message:
            head += (":" if self.error_type else "") + f" {self.error_message}"
        lines = [head]
        if self.stack_trace is not None:
            lines.append("Traceback (most recent call last):")
            for frame in self.stack_trace:
                lines.extend(frame.splitlines() or [""])
        return lines

    def get(self, key: str, default: Any = None) -> Any:
        """Read a field by its JSON name, as from the payload."""
        return self.payload().get(key, default)

    @classmethod
    def from_payload(cls, value: Any) -> LambdaError:
        """An error object received from a process running arbitrary code, checked field by field."""
        if isinstance(value, Mapping) and isinstance(value.get("errorType"), str):
            trace = value.get("stackTrace")
            request_id = value.get("requestId")
            return cls(
                value["errorType"],
                str(value.get("errorMessage", "")),
                tuple(str(line) for line in trace) if isinstance(trace, list) else (),
                request_id=request_id if isinstance(request_id, str) else None,
            )
        return cls("Runtime.InvalidResponse", "worker sent a malformed error")


def handler_error(exc: BaseException, own_frames: tuple[str, ...], request_id: str = "") -> LambdaError:
    """Lambda's error object for an exception raised by handler code, with the handler's frames only.

    `own_frames` are path prefixes of the caller's frames (thread hand-off, asyncio, the worker loop)
    that stand in front of the handler's and are dropped. `request_id` is "" for an error at init, as
    awslambdaric reports it.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    while frames and frames[0].filename.startswith(own_frames):
        frames.pop(0)
    return LambdaError(
        type(exc).__name__, str(exc), tuple(traceback.format_list(frames)), request_id=request_id
    )


def exception_fields(record: logging.LogRecord) -> dict[str, Any]:
    """What Lambda's JSON log format adds to a record logged with an exception (awslambdaric's fields)."""
    kind, value, tb = record.exc_info or (None, None, None)
    if kind is None:
        return {}
    return {
        "errorType": kind.__name__,
        "errorMessage": str(value),
        "stackTrace": traceback.format_tb(tb),
        "location": f"{record.pathname}:{record.funcName}:{record.lineno}",
    }


def timed_out(timeout: float) -> LambdaError:
    """The handler ran past the function timeout."""
    return LambdaError("Sandbox.Timedout", f"Task timed out after {timeout:.2f} seconds")
