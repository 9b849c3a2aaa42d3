"""The local log store: every invocation's lines, kept per function, for `pipelined logs` (`aws logs tail`).

A logging handler on the root logger keeps each line that belongs to a function — START/END/REPORT and
what the handler printed or logged — as one JSON line in `STATE_DIR/logs/FUNCTION.jsonl`: the time, the
request id, the level, the line as text, and the same line in Lambda's JSON log format. A file that
outgrows `max_size` becomes `FUNCTION.jsonl.1` (the previous one is dropped), and entries older than
`retention` are skipped when read, so the store stays bounded by about twice `max_size` per function.

Lines are buffered and written at most `FLUSH_INTERVAL` after they were logged (and at close), so the
hot path costs a list append; a `kill -9` loses at most that much of the store, never an event.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelined.observe.logs import JsonFormatter, current_invocation

FLUSH_INTERVAL = 0.5
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One stored line of one function."""

    time: float
    function: str
    request_id: str | None
    level: str
    text: str
    # The line in Lambda's JSON log format (what `--format json` prints).
    json: str

    def payload(self) -> dict[str, Any]:
        """The entry as stored and as the ops listener's /logs stream sends it."""
        return {
            "t": self.time,
            "rid": self.request_id,
            "level": self.level,
            "text": self.text,
            "json": self.json,
        }

    @classmethod
    def from_line(cls, function: str, line: str) -> LogEntry | None:
        """A stored or streamed line read back (None for a torn last line)."""
        try:
            value = json.loads(line)
            return cls(value["t"], function, value["rid"], value["level"], value["text"], value["json"])
        except (ValueError, KeyError, TypeError):
            return None

    def short(self) -> str:
        """`aws logs tail --format short`: the time, then the line (request id before handler lines)."""
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.time)) + f".{int(self.time % 1 * 1000):03d}Z"
        )
        platform = self.text.startswith(("START RequestId:", "END RequestId:", "REPORT RequestId:"))
        if self.request_id and not platform:
            return f"{stamp} {self.request_id} {self.text}"
        return f"{stamp} {self.text}"


def log_path(directory: Path, function: str) -> Path:
    """The current file of one function's lines."""
    return directory / f"{function}.jsonl"


class LogStore(logging.Handler):
    """Keeps function lines on disk and hands them to live followers (`pipelined logs --follow`)."""

    # setup_logging() leaves this handler in place when the daemon reconfigures logging on reload.
    keep_on_reconfigure = True

    def __init__(self, directory: Path, max_size: int, retention: float) -> None:
        super().__init__(logging.DEBUG)
        self.directory = directory
        self.max_size = max_size
        self.retention = retention
        self._json = JsonFormatter()
        self._pending: list[LogEntry] = []
        self._buffer_lock = threading.Lock()
        self._followers: list[tuple[asyncio.AbstractEventLoop, Callable[[LogEntry], None]]] = []
        self._flusher: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        directory.mkdir(parents=True, exist_ok=True)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Flush on `loop` every FLUSH_INTERVAL."""
        self._loop = loop
        self._flusher = loop.call_later(FLUSH_INTERVAL, self._tick)

    def _tick(self) -> None:
        self.flush()
        if self._loop is not None:
            self._flusher = self._loop.call_later(FLUSH_INTERVAL, self._tick)

    def emit(self, record: logging.LogRecord) -> None:
        function = getattr(record, "function", None)
        request_id = getattr(record, "request_id", None)
        if function is None:
            scope = current_invocation.get()
            if scope is None:
                return  # the daemon's own lines: the journal has them
            function, request_id = scope.function, request_id or scope.request_id
        if not _SAFE_NAME.fullmatch(str(function)):
            return
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + logging.Formatter().formatException(record.exc_info)
            record.function, record.request_id = function, request_id
            entry = LogEntry(
                record.created, str(function), request_id, record.levelname, text, self._json.format(record)
            )
        except Exception:
            self.handleError(record)
            return
        with self._buffer_lock:
            self._pending.append(entry)
        for loop, deliver in list(self._followers):
            loop.call_soon_threadsafe(deliver, entry)

    def flush(self) -> None:
        """Append buffered lines to their files, rotating a file that outgrew max_size."""
        with self._buffer_lock:
            pending, self._pending = self._pending, []
        by_function: dict[str, list[str]] = {}
        for entry in pending:
            by_function.setdefault(entry.function, []).append(json.dumps(entry.payload()) + "\n")
        for function, lines in by_function.items():
            path = log_path(self.directory, function)
            try:
                if path.exists() and path.stat().st_size >= self.max_size:
                    path.replace(path.with_name(path.name + ".1"))
                with path.open("a", encoding="utf-8") as file:
                    file.writelines(lines)
            except OSError:
                # A full or broken disk costs the store lines, never the daemon its work.
                continue

    def close(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        self.flush()
        super().close()

    def follow(
        self, loop: asyncio.AbstractEventLoop, deliver: Callable[[LogEntry], None]
    ) -> Callable[[], None]:
        """Call `deliver(entry)` on `loop` for every new line; returns the function that stops it."""
        follower = (loop, deliver)
        self._followers.append(follower)
        return lambda: self._followers.remove(follower) if follower in self._followers else None


def read_entries(
    directory: Path, function: str, since: float = 0.0, retention: float | None = None
) -> Iterator[LogEntry]:
    """Stored lines of one function, oldest first, from `since` (epoch seconds) and within `retention`."""
    if retention is not None:
        since = max(since, time.time() - retention)
    current = log_path(directory, function)
    for path in (current.with_name(current.name + ".1"), current):
        try:
            with path.open(encoding="utf-8") as file:
                for line in file:
                    entry = LogEntry.from_line(function, line)
                    if entry is not None and entry.time >= since:
                        yield entry
        except FileNotFoundError:
            continue


def matches(entry: LogEntry, text_filter: str | None) -> bool:
    """`--filter TEXT`: the line contains TEXT (case-sensitive, as CloudWatch's plain-term filter)."""
    return text_filter is None or text_filter in entry.text


def render(entry: LogEntry, fmt: str) -> str:
    """One entry as `pipelined logs` prints it: `short` or `json`."""
    return entry.json if fmt == "json" else entry.short()
