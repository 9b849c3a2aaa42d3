"""The local log store: every invocation's lines, kept per function, for `pipelined logs` (`aws logs tail`).

A logging handler on the root logger keeps each line that belongs to a function — START/END/REPORT and
what the handler printed or logged — as one JSON line in `STATE_DIR/logs/FUNCTION.jsonl`: the time, the
request id, the level and the line as text (`--format json` renders it in Lambda's JSON log format).
A file that outgrows `max_size` becomes `FUNCTION.jsonl.1` (the previous one is dropped), and entries
older than `retention` are skipped when read, so the store stays bounded by about twice `max_size` per
function.

Records are buffered, then formatted and written at most `FLUSH_INTERVAL` after they were logged (and
at close), so the hot path costs a list append; a `kill -9` loses at most that much of the store, never
an event.
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

from pipelined.observe.logs import current_invocation

FLUSH_INTERVAL = 0.5
_SAFE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_formatter = logging.Formatter()


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One stored line of one function."""

    time: float
    function: str
    request_id: str | None
    level: str
    text: str

    def payload(self) -> dict[str, Any]:
        """The entry as stored and as the ops listener's /logs stream sends it."""
        return {"t": self.time, "rid": self.request_id, "level": self.level, "text": self.text}

    @classmethod
    def from_line(cls, function: str, line: str) -> LogEntry | None:
        """A stored or streamed line read back (None for a torn last line)."""
        try:
            value = json.loads(line)
            return cls(float(value["t"]), function, value["rid"], str(value["level"]), str(value["text"]))
        except (ValueError, KeyError, TypeError):
            return None

    def short(self) -> str:
        """`aws logs tail --format short`: the time, then the line (request id before handler lines)."""
        stamp = _stamp(self.time)
        if self.request_id and not self.text.startswith(_PLATFORM):
            return f"{stamp} {self.request_id} {self.text}"
        return f"{stamp} {self.text}"

    def lambda_json(self) -> str:
        """The line in Lambda's JSON log format: START/END/REPORT as platform records, others as app logs."""
        if self.text.startswith(_PLATFORM):
            kind = self.text.split(" ", 1)[0].lower()
            record: dict[str, Any] = {"requestId": self.request_id}
            if kind == "start":
                record["version"] = "$LATEST"
            elif kind == "report":
                record["metrics"] = _report_metrics(self.text)
            return json.dumps({"time": _stamp(self.time), "type": f"platform.{kind}", "record": record})
        entry = {
            "timestamp": _stamp(self.time),
            "level": self.level,
            "message": self.text,
            "requestId": self.request_id,
        }
        return json.dumps(entry, ensure_ascii=False)


_PLATFORM = ("START RequestId:", "END RequestId:", "REPORT RequestId:")
# REPORT's fields and the names Lambda's platform.report record gives them.
_REPORT_FIELDS = {
    "Duration": "durationMs",
    "Billed Duration": "billedDurationMs",
    "Memory Size": "memorySizeMB",
    "Max Memory Used": "maxMemoryUsedMB",
    "Init Duration": "initDurationMs",
}


def _stamp(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}Z"


def _report_metrics(text: str) -> dict[str, float]:
    metrics: dict[str, float] = {}
    for part in text.split("\t")[1:]:
        name, _, value = part.partition(": ")
        if name in _REPORT_FIELDS:
            try:
                metrics[_REPORT_FIELDS[name]] = float(value.split(" ", 1)[0])
            except ValueError:
                continue
    return metrics


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
        self._pending: list[tuple[str, str | None, logging.LogRecord]] = []
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
        # The hot path (three lines an invocation): find the function, keep the record; text at flush.
        function = getattr(record, "function", None)
        request_id = getattr(record, "request_id", None)
        if function is None:
            scope = current_invocation.get()
            if scope is None:
                return  # the daemon's own lines: the journal has them
            function, request_id = scope.function, request_id or scope.request_id
        with self._buffer_lock:
            self._pending.append((function, request_id, record))
        if self._followers:
            entry = self._entry(function, request_id, record)
            if entry is not None:
                for loop, deliver in list(self._followers):
                    loop.call_soon_threadsafe(deliver, entry)

    def _entry(self, function: str, request_id: str | None, record: logging.LogRecord) -> LogEntry | None:
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + _formatter.formatException(record.exc_info)
        except Exception:
            self.handleError(record)
            return None
        return LogEntry(record.created, function, request_id, record.levelname, text)

    def flush(self) -> None:
        """Append buffered lines to their files, rotating a file that outgrew max_size."""
        with self._buffer_lock:
            pending, self._pending = self._pending, []
        by_function: dict[str, list[str]] = {}
        for function, request_id, record in pending:
            if not _SAFE_NAME.fullmatch(function):
                continue
            entry = self._entry(function, request_id, record)
            if entry is not None:
                by_function.setdefault(function, []).append(json.dumps(entry.payload()) + "\n")
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
    return entry.lambda_json() if fmt == "json" else entry.short()
