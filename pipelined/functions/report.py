"""The lines Lambda logs around every invocation: START, the function error, END and REPORT.

In `logging.format: json` START/END/REPORT are Lambda's platform records (`platform.start`,
`platform.runtimeDone`, `platform.report`) and the function error is awslambdaric's JSON error line.
"""

from __future__ import annotations

import logging
import math
import resource
from typing import Any

from pipelined.core.identity import FunctionIdentity
from pipelined.core.lambda_errors import LambdaError

log = logging.getLogger("pipelined.lambda")


def max_memory_used_mb() -> int:
    """Peak resident memory of this process (the whole daemon, for inline functions)."""
    # ru_maxrss is in KiB on Linux.
    return math.ceil(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def log_start(function: FunctionIdentity, request_id: str) -> None:
    """`START RequestId: ... Version: $LATEST`."""
    log.info(
        "START RequestId: %s Version: $LATEST",
        request_id,
        extra={
            "function": function.name,
            "request_id": request_id,
            "platform": {"type": "platform.start", "record": {"requestId": request_id, "version": "$LATEST"}},
        },
    )


def log_error(function: FunctionIdentity, request_id: str, error: LambdaError) -> None:
    """The function error: awslambdaric's `[ERROR] Type: message` and traceback, or the platform's line."""
    extra: dict[str, Any] = {"function": function.name, "request_id": request_id}
    if error.request_id is None:
        # Reported by the platform (timeout, crashed runtime, a Runtime API client's own error).
        log.error("%s: %s", error.error_type, error.error_message, extra=extra)
        return
    extra["lambda_error"] = error.payload()
    log.error("%s", "\n".join(error.log_lines()), extra=extra)


def _status(error: LambdaError | None) -> str:
    # The Telemetry API's statuses: the handler failed, timed out, or the runtime itself broke.
    if error is None:
        return "success"
    if error.error_type == "Sandbox.Timedout":
        return "timeout"
    if error.error_type.startswith("Runtime.") and error.request_id is None:
        return "error"
    return "failure"


def log_end(
    function: FunctionIdentity,
    request_id: str,
    duration_ms: float,
    init_duration_ms: float | None,
    max_memory_mb: int | None,
    error: LambdaError | None = None,
) -> None:
    """`END RequestId: ...` and `REPORT RequestId: ... Duration ... Max Memory Used ...`."""
    used = max_memory_used_mb() if max_memory_mb is None else max_memory_mb
    billed = max(1, math.ceil(duration_ms))
    status = _status(error)
    done: dict[str, Any] = {"requestId": request_id, "status": status}
    if error is not None:
        done["errorType"] = error.error_type
    done["metrics"] = {"durationMs": round(duration_ms, 3)}
    extra = {
        "function": function.name,
        "request_id": request_id,
        "platform": {"type": "platform.runtimeDone", "record": done},
    }
    log.info("END RequestId: %s", request_id, extra=extra)
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {billed} ms\t"
        f"Memory Size: {function.memory_mb} MB\tMax Memory Used: {used} MB"
    )
    metrics: dict[str, Any] = {
        "durationMs": round(duration_ms, 3),
        "billedDurationMs": billed,
        "memorySizeMB": function.memory_mb,
        "maxMemoryUsedMB": used,
    }
    if init_duration_ms is not None:
        report += f"\tInit Duration: {init_duration_ms:.2f} ms"
        metrics["initDurationMs"] = round(init_duration_ms, 3)
    record: dict[str, Any] = {"requestId": request_id, "metrics": metrics, "status": status}
    if error is not None:
        record["errorType"] = error.error_type
    extra = {**extra, "platform": {"type": "platform.report", "record": record}}
    log.info("%s", report, extra=extra)


def logging_enabled() -> bool:
    """START/END/REPORT are INFO lines: skip building them when INFO is off (the hot path)."""
    return log.isEnabledFor(logging.INFO)
