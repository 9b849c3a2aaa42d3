"""The daemon's side of one worker process: its socket, its state and the invocation it is running."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pipelined.functions.process import protocol
from pipelined.functions.process.protocol import FrameBuffer, FrameError
from pipelined.observe.logs import FUNCTION_LOGGER, log_handler_line

log = logging.getLogger("pipelined.isolation")

# A deadline timer that fires this close (seconds) to its invocation's deadline expires it.
CLOCK_SLACK = 0.001


@dataclass(frozen=True, slots=True)
class Exited:
    """The worker died instead of answering."""

    # Wait status as os.waitpid returns it; None when the zygote could not tell.
    status: int | None
    out_of_memory: bool


@dataclass(frozen=True, slots=True)
class TimedOut:
    """The invocation's deadline passed; the worker is being killed."""


# What a pending invocation (or start-up) resolves to: a RESULT/READY/INIT_ERROR message, or one of these.
Answer = dict[str, Any] | Exited | TimedOut


def describe_status(status: int) -> str:
    """How Lambda words a runtime's exit: 'signal: segmentation fault', 'exit status 3'."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = (signal.strsignal(number) or signal.Signals(number).name).lower()
        except ValueError:
            name = f"signal {number}"
        return f"signal: {name}" + (" (core dumped)" if os.WCOREDUMP(status) else "")
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def peak_rss_kb(pid: int) -> int | None:
    """A live process's peak resident set (VmHWM), read before killing it."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


class WorkerProcess(asyncio.BufferedProtocol):
    """One worker: a stream connection speaking protocol.py, plus what the pool knows about it."""

    # The exit status a worker uses to say it ran out of memory (None: it has none).
    oom_exit_status: int | None = protocol.EXIT_OOM

    def __init__(
        self,
        function: str,
        pid: int,
        exit_status: asyncio.Future[int | None],
        provisioned: bool,
        on_lost: Callable[[WorkerProcess], None],
    ) -> None:
        loop = asyncio.get_running_loop()
        self.function = function
        self.pid = pid
        self.exit_status = exit_status
        self.provisioned = provisioned
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[Answer] = loop.create_future()
        self.reply: asyncio.Future[Answer] | None = None
        self.request_id: str | None = None
        self.lost: asyncio.Future[None] = loop.create_future()
        self.init_duration_ms: float | None = None
        # On-demand workers report Init Duration on their first invocation; provisioned ones never do.
        self.report_init = not provisioned
        self.rss_kb = 0
        self.out_of_memory = False
        self.idle_since = time.monotonic()
        # The running invocation's deadline (time.monotonic()), and the timer that enforces it (arm()).
        self.deadline = 0.0
        self._watchdog: asyncio.TimerHandle | None = None
        # time.monotonic() at which the role credentials it started with expire (None: no role).
        self.credentials_expire: float | None = None
        # Why the pool stopped this worker (None: it has not, or it was a shutdown); first reason wins.
        self.retired = False
        self.cause: str | None = None
        self._on_lost = on_lost
        self._frames = FrameBuffer()
        self._logger = logging.getLogger(FUNCTION_LOGGER)
        self._buffer = memoryview(bytearray(protocol.READ_SIZE))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    # A BufferedProtocol: the loop reads into one buffer of ours (recv_into). A plain Protocol gets
    # `recv(256 KiB)`, a fresh allocation big enough for malloc to mmap and unmap on every read:
    # ~40 us per frame, most of an invocation's round trip (docs/isolation.md, Cost).
    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        try:
            # Decoded in place: the common read, one whole frame, is never copied out of the buffer.
            messages = self._frames.feed(self._buffer[:nbytes])
        except FrameError as exc:
            # A worker is running arbitrary code: garbage on its channel ends it, never the daemon.
            log.warning("%s: worker %d sent an invalid frame (%s); stopping it", self.function, self.pid, exc)
            self.abort()
            return
        for message in messages:
            self._dispatch(message)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message["t"]
        if kind == protocol.LOG:
            self._log(message)
            return
        rss = message.get("rss")
        if isinstance(rss, int):
            self.rss_kb = max(self.rss_kb, rss)
        if kind == protocol.RESULT:
            if self.reply is not None and not self.reply.done() and message.get("id") == self.request_id:
                self.reply.set_result(message)
        elif kind in (protocol.READY, protocol.INIT_ERROR):
            if not self.ready.done():
                self.ready.set_result(message)
        elif kind == protocol.OOM:
            self.out_of_memory = True

    def _log(self, message: dict[str, Any]) -> None:
        # Everything in a LOG frame comes from handler code: each field is checked before use.
        level, text, request_id = message.get("level"), message.get("msg"), message.get("id")
        level = level if isinstance(level, int) else logging.INFO
        text = text if isinstance(text, str) else repr(text)
        request_id = request_id if isinstance(request_id, str) else None
        if message.get("line"):
            log_handler_line(level, text, self.function, request_id)
            return
        if not self._logger.isEnabledFor(level):
            return
        extra: dict[str, Any] = {"function": self.function, "request_id": request_id}
        logger, exc, exc_text, fields = (message.get(k) for k in ("logger", "exc", "exc_text", "extra"))
        if isinstance(logger, str):
            extra["handler_logger"] = logger
        if isinstance(exc, dict):
            extra["handler_exc"] = exc
        if isinstance(exc_text, str):
            extra["handler_exc_text"] = exc_text
        if isinstance(fields, dict):
            extra["handler_extra"] = fields
        self._logger.log(level, "%s", text, extra=extra)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)
        self._on_lost(self)

    def invoke(self, request_id: str, frame: bytes, trace_id: str = "") -> asyncio.Future[Answer]:
        """Send one INVOKE frame (it carries the trace id); resolves with the RESULT, or Exited/TimedOut."""
        assert self.transport is not None
        self.request_id = request_id
        self.reply = asyncio.get_running_loop().create_future()
        self.transport.write(frame)
        return self.reply

    def arm(self, deadline: float, expire: Callable[[WorkerProcess], None]) -> None:
        """Enforce `deadline` on the invocation just sent: `expire(self)` runs if it is still running then."""
        self.deadline = deadline
        watchdog = self._watchdog
        if watchdog is None or watchdog.when() > deadline:
            if watchdog is not None:
                watchdog.cancel()
            self._watchdog = asyncio.get_running_loop().call_at(deadline, self._watch, expire)

    def _watch(self, expire: Callable[[WorkerProcess], None]) -> None:
        # The timer outlives the invocation that armed it: scheduling and cancelling one per invocation
        # cost ~3 us of the hot path; this one fires at most once per timeout, at an earlier
        # invocation's deadline. The running invocation is then due later (re-arm) or now (expire);
        # an idle or retired worker has nothing to time out.
        self._watchdog = None
        if self.retired or self.reply is None or self.reply.done():
            return
        loop = asyncio.get_running_loop()
        # asyncio runs a timer up to its clock resolution early: that close to the deadline is on time.
        if self.deadline - loop.time() > CLOCK_SLACK:
            self._watchdog = loop.call_at(self.deadline, self._watch, expire)
        else:
            expire(self)

    def disarm(self) -> None:
        """Drop the deadline timer (the worker is being retired)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def send(self, frame: bytes) -> None:
        """Write one frame that expects no reply (the SETUP frame)."""
        assert self.transport is not None
        self.transport.write(frame)

    def settle(self, answer: Answer) -> None:
        """Resolve whatever is waiting on this worker (start-up or an invocation) with `answer`."""
        for future in (self.ready, self.reply):
            if future is not None and not future.done():
                future.set_result(answer)

    def close(self) -> None:
        """Hang up: an idle worker reads EOF and exits on its own."""
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection without flushing."""
        if self.transport is not None:
            with contextlib.suppress(RuntimeError):
                self.transport.abort()
