"""The daemon's side of one Runtime API worker: its log stream, its invocation state and its memory.

The pool (functions/process/pool.py) drives it exactly like a Python worker: `ready` resolves when the
runtime first asks for an invocation (or posts an init error), `invoke()` hands it one event and the
returned future resolves with the runtime's response or error, or with Exited/TimedOut.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelined.core.lambda_errors import LambdaError
from pipelined.functions.process.channel import Answer, WorkerProcess, peak_rss_kb
from pipelined.observe.logs import log_handler_line

log = logging.getLogger("pipelined.isolation")

# Lambda's text log line, as its Node.js runtime (and ours) writes it: time, request id, level, message,
# tab-separated, with the message's newlines turned into carriage returns.
_LAMBDA_LINE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z\t([^\t]*)\t([A-Z]+)\t(.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Pending:
    """An invocation handed to the worker: its id, the event's JSON, Lambda's deadline and trace headers."""

    request_id: str
    event: bytes
    deadline_ms: int
    trace_id: str = ""


_LEVELS = {
    "TRACE": logging.DEBUG,
    "DEBUG": logging.DEBUG,
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
}
# How often the memory of a worker's process tree is sampled while it runs an invocation, and idle.
SAMPLE_BUSY = 0.02
SAMPLE_IDLE = 1.0
# How long after the zygote reported the exit the log stream may stay open (a detached child holds it).
LINGER = 0.5
MAX_LINE = 256 * 1024


def tree_rss_kb(pid: int) -> int:
    """Resident memory of a process and all its descendants (what a cgroup would count)."""
    total, pending, seen = 0, [pid], set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        try:
            with open(f"/proc/{current}/statm") as statm:
                total += int(statm.read().split()[1]) * PAGE_KB
            for task in os.scandir(f"/proc/{current}/task"):
                children = Path(task.path, "children").read_text().split()
                pending.extend(int(child) for child in children)
        except (OSError, ValueError, IndexError):
            continue
    return total


PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class ApiWorker(WorkerProcess):
    """A worker that is a program speaking the Runtime API; its stdout/stderr arrive on the channel."""

    # A program's exit status means nothing to pipelined: memory is watched from outside instead.
    oom_exit_status = None

    def __init__(
        self,
        function: str,
        pid: int,
        exit_status: asyncio.Future[int | None],
        provisioned: bool,
        on_lost: Callable[[WorkerProcess], None],
        *,
        listener: socket.socket,
        memory_mb: int,
        timeout: float,
        kill: Callable[[int], None],
    ) -> None:
        super().__init__(function, pid, exit_status, provisioned, on_lost)
        self.listener = listener
        self.timeout = timeout
        # The runtime's state, named as Lambda names it in InvalidStateTransition errors.
        self.state = "Started"
        self.memory_kb = memory_mb * 1024
        self._kill = kill
        self._partial = b""
        # The invocation the runtime is working on, once it has fetched it; None between invocations.
        self.pending: Pending | None = None
        self.delivered = False
        # Set when the runtime is waiting in GET /next: resolves with the invocation, or None (stopping).
        self.waiter: asyncio.Future[Pending | None] | None = None
        # Untagged output between two invocations belongs to the one that just ended.
        self.last_request_id: str | None = None
        self.server: asyncio.AbstractServer | None = None
        self._closing = False
        loop = asyncio.get_running_loop()
        self._sampler = loop.call_later(SAMPLE_BUSY, self._sample)
        exit_status.add_done_callback(lambda _: loop.call_later(LINGER, self.abort))

    # --- the log stream (the program's stdout and stderr) ----------------------------------------------

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._buffer[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        *lines, self._partial = (self._partial + data).split(b"\n")
        if len(self._partial) > MAX_LINE:
            lines.append(self._partial)
            self._partial = b""
        for line in lines:
            self._log_line(line.decode("utf-8", "replace"))

    def _log_line(self, line: str) -> None:
        request_id = self.request_id or self.last_request_id
        level = logging.INFO
        match = _LAMBDA_LINE.fullmatch(line)
        if match is not None:
            tagged, name, line = match.groups()
            request_id = None if tagged in ("undefined", "") else tagged
            level = _LEVELS.get(name, logging.INFO)
            line = line.replace("\r", "\n")
        log_handler_line(level, line.rstrip("\r"), self.function, request_id)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._partial:
            self._log_line(self._partial.decode("utf-8", "replace"))
            self._partial = b""
        self.stop_serving()
        super().connection_lost(exc)

    # --- invocations -----------------------------------------------------------------------------------

    def invoke(self, request_id: str, frame: bytes, trace_id: str = "") -> asyncio.Future[Answer]:
        """Queue one event (`frame` is its JSON) for GET /next; resolves with the runtime's answer."""
        self.request_id = request_id
        self.last_request_id = request_id
        self.reply = asyncio.get_running_loop().create_future()
        self.pending = Pending(request_id, frame, int((time.time() + self.timeout) * 1000), trace_id)
        self.delivered = False
        if self.waiter is not None and not self.waiter.done():
            self.delivered = True
            self.waiter.set_result(self.pending)
        self._resample(SAMPLE_BUSY)
        return self.reply

    def take_next(self) -> Pending | None:
        """The queued event if GET /next may have it now (it is not already being worked on)."""
        if self.pending is not None and not self.delivered:
            self.delivered = True
            return self.pending
        return None

    def answer(self, value: Any = None, error: LambdaError | None = None) -> None:
        """The runtime's response or error for the current invocation."""
        self.rss_kb = max(self.rss_kb, peak_rss_kb(self.pid) or 0)
        self.pending = None
        reply = self.reply
        if reply is not None and not reply.done():
            result: dict[str, Any] = {"t": "result", "id": self.request_id}
            if error is None:
                result["value"] = value
            else:
                result["error"] = error
            reply.set_result(result)
        self._resample(SAMPLE_IDLE)

    def init_done(self, error: LambdaError | None = None) -> None:
        """The runtime asked for its first invocation, or posted an init error."""
        if not self.ready.done():
            self.rss_kb = max(self.rss_kb, peak_rss_kb(self.pid) or 0)
            answer: dict[str, Any] = {"t": "ready"} if error is None else {"t": "init_error", "error": error}
            self.ready.set_result(answer)
            if error is None:
                self._resample(SAMPLE_IDLE)

    def settle(self, answer: Answer) -> None:
        super().settle(answer)
        self.pending = None

    # --- memory ----------------------------------------------------------------------------------------

    def _resample(self, delay: float) -> None:
        self._sampler.cancel()
        if not self.lost.done():
            self._sampler = asyncio.get_running_loop().call_later(delay, self._sample)

    def _sample(self) -> None:
        if self.lost.done() or self.exit_status.done():
            return
        rss = tree_rss_kb(self.pid)
        self.rss_kb = max(self.rss_kb, rss)
        if rss > self.memory_kb and not self.out_of_memory:
            # What Lambda's cgroup does: the whole environment goes (Runtime.OutOfMemory).
            self.out_of_memory = True
            self.rss_kb = self.memory_kb
            log.warning("%s: worker %d exceeded memory_mb (%d KiB)", self.function, self.pid, rss)
            self._kill(self.pid)
            return
        busy = self.pending is not None or not self.ready.done()
        self._resample(SAMPLE_BUSY if busy else SAMPLE_IDLE)

    # --- ending ----------------------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the worker: a runtime does not exit on EOF, so it is killed (Lambda gives no notice)."""
        if not self.exit_status.done():
            self._kill(self.pid)
        self.stop_serving()

    def stop_serving(self) -> None:
        """Close the worker's Runtime API endpoint and wake a GET /next still waiting."""
        if self._closing:
            return
        self._closing = True
        self._sampler.cancel()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)
        if self.server is not None:
            self.server.close()
        with contextlib.suppress(OSError):
            self.listener.close()

    @property
    def closing(self) -> bool:
        """True once the endpoint is closed."""
        return self._closing
