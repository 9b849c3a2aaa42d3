"""Lambda's error object: what a failed invocation returns, written once for inline and worker invocations.

Only the standard library is imported: worker processes import this module in the zygote.
"""

from __future__ import annotations

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

    def payload(self) -> dict[str, Any]:
        """The JSON object Lambda returns (and pipelined stores, prints and sends to destinations)."""
        if self.raw is not None:
            return dict(self.raw)
        out: dict[str, Any] = {"errorMessage": self.error_message, "errorType": self.error_type}
        if self.stack_trace is not None:
            out["stackTrace"] = list(self.stack_trace)
        return out

    def get(self, key: str, default: Any = None) -> Any:
        """Read a field by its JSON name, as from the payload."""
        return self.payload().get(key, default)

    @classmethod
    def from_payload(cls, value: Any) -> LambdaError:
        """An error object received from a process running arbitrary code, checked field by field."""
        if isinstance(value, Mapping) and isinstance(value.get("errorType"), str):
            trace = value.get("stackTrace")
            return cls(
                value["errorType"],
                str(value.get("errorMessage", "")),
                tuple(str(line) for line in trace) if isinstance(trace, list) else (),
            )
        return cls("Runtime.InvalidResponse", "worker sent a malformed error")


def handler_error(exc: BaseException, own_frames: tuple[str, ...]) -> LambdaError:
    """Lambda's error object for an exception raised by handler code, with the handler's frames only.

    `own_frames` are path prefixes of the caller's frames (thread hand-off, asyncio, the worker loop)
    that stand in front of the handler's and are dropped.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    while frames and frames[0].filename.startswith(own_frames):
        frames.pop(0)
    return LambdaError(type(exc).__name__, str(exc), tuple(traceback.format_list(frames)))


def timed_out(timeout: float) -> LambdaError:
    """The handler ran past the function timeout."""
    return LambdaError("Sandbox.Timedout", f"Task timed out after {timeout:.2f} seconds")
