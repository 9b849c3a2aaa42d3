"""Logging: text or JSON lines, with every line a handler writes attributed to its request id."""

from __future__ import annotations

import io
import json
import logging
import sys
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TextIO

from pipelined.core.lambda_errors import exception_fields


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


# Attributes pipelined itself puts on records (through `extra`): never copied into a JSON line as extras.
_OWN_ATTRIBUTES = frozenset(
    {
        "function",
        "request_id",
        "handler_line",
        "handler_json",
        "handler_logger",
        "handler_exc",
        "handler_exc_text",
        "handler_extra",
        "platform",
        "lambda_error",
    }
)
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


def json_object(line: str) -> dict[str, Any] | None:
    """The line as a JSON object if it is exactly one (what log collectors and EMF extractors read)."""
    text = line.strip()
    if not (text.startswith("{") and text.endswith("}")):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _is_bare(record: logging.LogRecord) -> bool:
    # A JSON object the handler printed is passed through as printed, as Lambda does.
    return getattr(record, "handler_json", None) is not None


class TextFormatter(logging.Formatter):
    """`2026-01-01T00:00:00.000Z INFO [function] [request id] message`, close to CloudWatch's look.

    A JSON object the handler printed is written as it is (a bare line, as Lambda writes it).
    """

    def format(self, record: logging.LogRecord) -> str:
        if _is_bare(record):
            return str(record.msg)
        parts = [_utc_timestamp(record.created), record.levelname]
        function = getattr(record, "function", None)
        request_id = getattr(record, "request_id", None)
        if function:
            parts.append(f"[{function}]")
        if request_id and getattr(record, "platform", None) is None:
            # START/END/REPORT lines already carry the request id in Lambda's own format.
            parts.append(request_id)
        parts.append(record.getMessage())
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        elif (exc_text := getattr(record, "handler_exc_text", None)) is not None:
            line += "\n" + exc_text
        return line


class JsonFormatter(logging.Formatter):
    """Lambda's JSON log format (`LogFormat: JSON`): application records and platform records.

    Application records: timestamp, level, message, logger, requestId and, with an exception,
    errorType, errorMessage, stackTrace and location (awslambdaric's fields), plus `function` (the daemon
    logs many functions). START/END/REPORT: `{"time", "type": "platform.*", "record"}`.
    """

    def format(self, record: logging.LogRecord) -> str:
        function = getattr(record, "function", None)
        request_id = getattr(record, "request_id", None)
        handler_json = getattr(record, "handler_json", None)
        if handler_json is not None:
            return _with_request_id(str(record.msg), handler_json, request_id)
        platform = getattr(record, "platform", None)
        if platform is not None:
            entry: dict[str, Any] = {"time": _utc_timestamp(record.created), **platform}
        else:
            entry = {"timestamp": _utc_timestamp(record.created), "level": record.levelname}
            lambda_error = getattr(record, "lambda_error", None)
            if lambda_error is not None:
                # The function error, as awslambdaric logs it: the error object with timestamp and level.
                entry.update(lambda_error)
            elif getattr(record, "handler_line", False):
                entry["message"] = record.getMessage()
            else:
                self._application(record, entry, request_id)
        if request_id and "requestId" not in entry and platform is None:
            entry["requestId"] = request_id
        if function:
            entry["function"] = function
        return json.dumps(entry, default=str, ensure_ascii=False)

    def _application(self, record: logging.LogRecord, entry: dict[str, Any], request_id: str | None) -> None:
        msg = record.msg
        entry["message"] = msg if isinstance(msg, dict) and not record.args else record.getMessage()
        entry["logger"] = getattr(record, "handler_logger", record.name)
        exc = getattr(record, "handler_exc", None) or exception_fields(record)
        if exc:
            entry["stackTrace"] = exc.get("stackTrace")
            entry["errorType"] = exc.get("errorType")
            entry["errorMessage"] = exc.get("errorMessage")
        if request_id:
            entry["requestId"] = request_id
        if exc:
            entry["location"] = exc.get("location")
        extra = getattr(record, "handler_extra", None)
        if extra is None:
            extra = {
                key: value
                for key, value in record.__dict__.items()
                if key not in _RECORD_ATTRIBUTES and key not in _OWN_ATTRIBUTES
            }
        for key, value in extra.items():
            entry.setdefault(key, value)


def _with_request_id(line: str, value: dict[str, Any], request_id: str | None) -> str:
    """The printed JSON object, unchanged but for a `requestId` key added at its end when it has none."""
    if not request_id or "requestId" in value:
        return line
    body = line.rstrip()[:-1]
    return f'{body}{"," if value else ""}"requestId":{json.dumps(request_id)}}}'


LineObserver = Callable[[str | None, dict[str, Any]], None]
_observers: list[LineObserver] = []


def observe_handler_lines(observer: LineObserver | None) -> None:
    """Give every JSON object a handler prints to `observer(function, object)` (EMF metrics), or stop."""
    _observers.clear()
    if observer is not None:
        _observers.append(observer)


_function_log = logging.getLogger(FUNCTION_LOGGER)


def log_handler_line(level: int, line: str, function: str | None, request_id: str | None) -> None:
    """One line a handler wrote to stdout/stderr (inline, a worker, a Runtime API program)."""
    parsed = json_object(line)
    if parsed is not None:
        for observer in _observers:
            try:
                observer(function, parsed)
            except Exception:
                # Whatever a handler prints must never fail the handler's print() or the daemon.
                logging.getLogger("pipelined.emf").exception("%s: cannot read a printed JSON line", function)
    if _function_log.isEnabledFor(level):
        extra = {"function": function, "request_id": request_id, "handler_line": True, "handler_json": parsed}
        _function_log.log(level, line, extra=extra)


class _HandlerOutput(io.TextIOBase):
    """Replaces sys.stdout/stderr: handler prints become log lines tagged with their request id."""

    def __init__(self, original: TextIO, level: int) -> None:
        self._original = original
        self._level = level
        self._partial: dict[str, str] = {}

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
            log_handler_line(self._level, line, scope.function, scope.request_id)
        return len(text)

    def flush_scope(self, scope: InvocationScope) -> None:
        """Emit a handler's last line that had no trailing newline."""
        rest = self._partial.pop(scope.request_id, "")
        if rest:
            log_handler_line(self._level, rest, scope.function, scope.request_id)

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
