"""The lines Lambda logs around every invocation: START, the function error, END and REPORT."""

from __future__ import annotations

import logging
import math
import resource

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
        extra={"function": function.name, "request_id": request_id},
    )


def log_error(function: FunctionIdentity, request_id: str, error: LambdaError) -> None:
    """The function error, one line: `ErrorType: message`."""
    log.error(
        "%s: %s",
        error.error_type,
        error.error_message,
        extra={"function": function.name, "request_id": request_id},
    )


def log_end(
    function: FunctionIdentity,
    request_id: str,
    duration_ms: float,
    init_duration_ms: float | None,
    max_memory_mb: int | None,
) -> None:
    """`END RequestId: ...` and `REPORT RequestId: ... Duration ... Max Memory Used ...`."""
    extra = {"function": function.name, "request_id": request_id}
    log.info("END RequestId: %s", request_id, extra=extra)
    used = max_memory_used_mb() if max_memory_mb is None else max_memory_mb
    report = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\t"
        f"Memory Size: {function.memory_mb} MB\tMax Memory Used: {used} MB"
    )
    if init_duration_ms is not None:
        report += f"\tInit Duration: {init_duration_ms:.2f} ms"
    log.info("%s", report, extra=extra)


def logging_enabled() -> bool:
    """START/END/REPORT are INFO lines: skip building them when INFO is off (the hot path)."""
    return log.isEnabledFor(logging.INFO)
