"""Logging: text or JSON lines, with every line a handler writes attributed to its request id."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO


@dataclass(frozen=True, slots=True)
class InvocationScope:
    """The function and request a piece of handler code is running for."""

    function: str
    request_id: str


current_invocation: ContextVar[InvocationScope | None] = ContextVar("current_invocation", default=None)

FUNCTION_LOGGER = "pipelined.function"


class _ScopeFilter(logging.Filter):
    """Stamps every log record with the function and request id of the invocation that emitted it."""

    def filter(self, record: logging.LogRecord) -> bool:
        scope = current_invocation.get()
        if not hasattr(record, "request_id"):
            record.request_id = scope.request_id if scope else None
        if not hasattr(record, "function"):
            record.function = scope.function if scope else None
        return True


def _utc_timestamp(created: float) -> str:
    # Not core.timestamps.iso_millis: this runs for every log line, and time.strftime is several times
    # faster than building a datetime (the same text, truncated rather than rounded to the millisecond).
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """`2026-01-01T00:00:00.000Z INFO [function] [request id] message`, close to CloudWatch's look."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [_utc_timestamp(record.created), record.levelname]
        function = getattr(record, "function", None)
        request_id = getattr(record, "request_id", None)
        if function:
            parts.append(f"[{function}]")
        if request_id and record.name != "pipelined.lambda":
            # START/END/REPORT lines already carry the request id in Lambda's own format.
            parts.append(request_id)
        parts.append(record.getMessage())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, function, requestId, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _utc_timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        function = getattr(record, "function", None)
        request_id = getattr(record, "request_id", None)
        if function:
            entry["function"] = function
        if request_id:
            entry["requestId"] = request_id
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class _HandlerOutput(io.TextIOBase):
    """Replaces sys.stdout/stderr: handler prints become log lines tagged with their request id."""

    def __init__(self, original: TextIO, level: int) -> None:
        self._original = original
        self._level = level
        self._partial: dict[str, str] = {}
        self._logger = logging.getLogger(FUNCTION_LOGGER)

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        scope = current_invocation.get()
        if scope is None:
            return self._original.write(text)
        pending = self._partial.pop(scope.request_id, "") + text
        *lines, rest = pending.split("\n")
        if rest:
            self._partial[scope.request_id] = rest
        for line in lines:
            self._logger.log(self._level, line)
        return len(text)

    def flush_scope(self, scope: InvocationScope) -> None:
        """Emit a handler's last line that had no trailing newline."""
        rest = self._partial.pop(scope.request_id, "")
        if rest:
            self._logger.log(self._level, rest)

    def flush(self) -> None:
        self._original.flush()

    def fileno(self) -> int:
        return self._original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")


_captures: list[_HandlerOutput] = []


def end_invocation_output(scope: InvocationScope) -> None:
    """Flush what a finished invocation printed without a final newline."""
    for capture in _captures:
        capture.flush_scope(scope)


def setup_logging(level: str = "INFO", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Configure the root logger and capture handler prints; safe to call again on reload."""
    out = stream or sys.__stderr__ or sys.stderr
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_ScopeFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        if not getattr(old, "keep_on_reconfigure", False):  # e.g. the Lambda API's log tail
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Noisy libraries log every retry at INFO; our own lines say what matters.
    for name in ("botocore", "aiobotocore", "aiohttp.access", "urllib3"):
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    if not _captures:
        _captures.append(_HandlerOutput(sys.stdout, logging.INFO))
        _captures.append(_HandlerOutput(sys.stderr, logging.ERROR))
        sys.stdout = _captures[0]
        sys.stderr = _captures[1]
