"""Invoke's `LogType: Tail`: the log lines of one invocation, collected while it runs."""

from __future__ import annotations

import logging
import time

from pipelined.observe.logs import current_invocation

# Lambda returns the last 4 KB of the invocation's log.
TAIL_BYTES = 4096
# START, END, REPORT, printed lines and the function error are written bare, as Lambda writes them; logging
# records as Lambda's Python runtime does.
_PLATFORM_LOGGER = "pipelined.lambda"


class LogTail(logging.Handler):
    """A root-logger handler that keeps the lines of the request ids being watched."""

    # setup_logging() leaves handlers with this flag in place when it replaces the others.
    keep_on_reconfigure = True

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self._lines: dict[str, list[str]] = {}

    def watch(self, request_id: str) -> None:
        """Start collecting the lines of `request_id`."""
        self._lines[request_id] = []

    def collect(self, request_id: str) -> str:
        """Stop watching `request_id`; its last TAIL_BYTES of log, whole lines where they fit."""
        text = "".join(self._lines.pop(request_id, ()))
        data = text.encode()
        if len(data) <= TAIL_BYTES:
            return text
        return data[-TAIL_BYTES:].decode(errors="ignore")

    def emit(self, record: logging.LogRecord) -> None:
        if not self._lines:
            return
        request_id = getattr(record, "request_id", None)
        if request_id is None:
            scope = current_invocation.get()
            request_id = scope.request_id if scope is not None else None
        lines = self._lines.get(request_id) if request_id is not None else None
        if lines is None:
            return
        message = record.getMessage()
        bare = getattr(record, "handler_line", False) or getattr(record, "lambda_error", None) is not None
        if bare or (record.name == _PLATFORM_LOGGER and message.startswith(("START ", "END ", "REPORT "))):
            # Printed lines and awslambdaric's `[ERROR] Type: message` block are bare in Lambda's tail.
            lines.append(message + "\n")
        else:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            stamp += f".{int(record.created % 1 * 1000):03d}Z"
            lines.append(f"{stamp}\t{request_id}\t{record.levelname}\t{message}\n")

    def install(self) -> None:
        """Attach to the root logger (once)."""
        root = logging.getLogger()
        if self not in root.handlers:
            root.addHandler(self)
