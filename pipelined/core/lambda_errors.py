"""Lambda's error objects shared by inline invocations and worker processes (no heavy imports)."""

from __future__ import annotations

import traceback
from typing import Any


def handler_error(exc: BaseException, own_frames: tuple[str, ...]) -> dict[str, Any]:
    """Lambda's error object for an exception raised by handler code, with the handler's frames only.

    `own_frames` are path prefixes of the caller's frames (thread hand-off, asyncio, the worker loop)
    that stand in front of the handler's and are dropped.
    """
    frames = traceback.extract_tb(exc.__traceback__)
    while frames and frames[0].filename.startswith(own_frames):
        frames.pop(0)
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "stackTrace": traceback.format_list(frames),
    }


def timed_out(timeout: float) -> dict[str, Any]:
    """The handler ran past the function timeout."""
    return {
        "errorMessage": f"Task timed out after {timeout:.2f} seconds",
        "errorType": "Sandbox.Timedout",
        "stackTrace": [],
    }
