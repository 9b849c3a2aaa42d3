"""The worker process: imports one function's handler once, then runs it for invocation after invocation.

`run()` is called in a child freshly forked by the zygote. It reads its spec (the SETUP frame) from its
own channel, confines the process (memory limit, environment, working directory), imports the handler
(module-level init runs once: a Lambda cold start) and answers INVOKE frames until the daemon closes
the socket. Timeouts are not enforced here: the daemon
kills a worker that is still running at the deadline.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import io
import logging
import os
import resource
import socket
import sys
import time
import traceback
from pathlib import Path
from typing import Any, NoReturn

from pipelined.core.context import LambdaContext
from pipelined.core.lambda_errors import exception_fields, handler_error
from pipelined.core.tracing import VARIABLE as TRACE_VARIABLE
from pipelined.core.tracing import new_trace_id
from pipelined.functions.process import exec_worker, protocol
from pipelined.functions.process.environ_slot import EnvironSlot
from pipelined.functions.process.protocol import BlockingChannel

_OWN_FRAMES = (str(Path(__file__).parent), str(Path(asyncio.__file__).parent))

# The request being served, read by the output streams. A plain global, not a ContextVar: threads a
# handler starts do not inherit context variables, and their prints belong to the invocation too.
_current_request: str | None = None


class _Output(io.TextIOBase):
    """sys.stdout/sys.stderr of a worker: every line becomes a LOG frame tagged with the request id."""

    def __init__(self, channel: BlockingChannel, level: int, fd: int) -> None:
        self._channel = channel
        self._level = level
        self._fd = fd
        self._partial = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            _send_line(self._channel, self._level, line)
        return len(text)

    def end_invocation(self) -> None:
        """Emit a last line that had no trailing newline, so it stays with its invocation."""
        if self._partial:
            line, self._partial = self._partial, ""
            _send_line(self._channel, self._level, line)

    def fileno(self) -> int:
        return self._fd

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


class _ChannelLogHandler(logging.Handler):
    """The worker's root log handler: records go to the daemon, which formats them like inline ones."""

    def __init__(self, channel: BlockingChannel) -> None:
        super().__init__()
        self._channel = channel

    def emit(self, record: logging.LogRecord) -> None:
        try:
            # The daemon formats it as an inline record: Lambda's JSON log format needs the logger's
            # name and the exception's parts, not just the text.
            frame: dict[str, Any] = {
                "t": protocol.LOG,
                "id": _current_request,
                "level": record.levelno,
                "msg": record.getMessage(),
                "logger": record.name,
            }
            fields = exception_fields(record)
            if fields and record.exc_info:
                frame["exc"] = fields
                frame["exc_text"] = logging.Formatter().formatException(record.exc_info)
            extra = {
                key: value if isinstance(value, _JSON_SCALARS) else str(value)
                for key, value in record.__dict__.items()
                if key not in _RECORD_FIELDS
            }
            if extra:
                frame["extra"] = extra
            self._channel.send(protocol.encode(frame))
        except Exception:
            self.handleError(record)


# The attributes every LogRecord has: anything else came from the caller's `extra`.
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}
_JSON_SCALARS = (str, int, float, bool, type(None))


def _send_line(channel: BlockingChannel, level: int, line: str) -> None:
    # "line": a line the handler wrote to stdout/stderr, passed through as written.
    frame = {"t": protocol.LOG, "id": _current_request, "level": level, "msg": line, "line": True}
    channel.send(protocol.encode(frame))


def error_object(exc: BaseException, request_id: str = "") -> dict[str, Any]:
    """Lambda's error object for an exception raised by handler code in this worker."""
    return handler_error(exc, _OWN_FRAMES, request_id).payload()


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _max_rss_kb() -> int:
    # Reset by fork(): this is the worker's own peak, not the zygote's.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _limit_memory(memory_mb: int) -> None:
    # RLIMIT_AS caps address space, not resident memory: the limit is what the worker had mapped at
    # fork (interpreter, shared with the zygote) plus memory_mb, so the handler can allocate ~memory_mb.
    limit = (_status_kb("VmSize") + memory_mb * 1024) * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _confine(spec: dict[str, Any], channel: BlockingChannel) -> None:
    _limit_memory(spec["memory_mb"])
    # clear()/update() go through putenv/unsetenv: subprocesses see exactly this environment too.
    os.environ.clear()
    os.environ.update(spec["environment"])
    time.tzset()
    os.chdir(spec["code"])
    sys.path[:0] = [spec["code"], *spec["layers"]]
    sys.stdout = _Output(channel, logging.INFO, 1)
    sys.stderr = _Output(channel, logging.ERROR, 2)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(_ChannelLogHandler(channel))
    root.setLevel(spec["log_level"])


def _load_handler(spec: dict[str, Any]) -> Any:
    """The handler callable, or Lambda's error object for an init failure (as awslambdaric words it)."""
    module_name, _, attribute = spec["handler"].rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        return {
            "errorMessage": f"Unable to import module '{module_name}': {exc}",
            "errorType": "Runtime.ImportModuleError",
            "stackTrace": [],
        }
    except SyntaxError as exc:
        return {
            "errorMessage": f"Syntax error in module '{module_name}': {exc}",
            "errorType": "Runtime.UserCodeSyntaxError",
            "stackTrace": [],
        }
    except BaseException as exc:  # module-level code may raise anything, SystemExit included
        return error_object(exc)
    handler = getattr(module, attribute, None)
    if not callable(handler):
        return {
            "errorMessage": f"Handler '{attribute}' missing on module '{module_name}'",
            "errorType": "Runtime.HandlerNotFound",
            "stackTrace": [],
        }
    return handler


def _serve(spec: dict[str, Any], channel: BlockingChannel) -> int:
    global _current_request  # noqa: PLW0603 - see its definition
    _confine(spec, channel)
    started = time.perf_counter()
    handler = _load_handler(spec)
    if isinstance(handler, dict):
        channel.send(protocol.encode({"t": protocol.INIT_ERROR, "error": handler}))
        return 1
    init_ms = (time.perf_counter() - started) * 1000
    channel.send(protocol.encode({"t": protocol.READY, "init_ms": init_ms, "rss": _max_rss_kb()}))
    is_async = inspect.iscoroutinefunction(handler)
    # One loop for the worker's life: module-level async clients stay bound to a live loop.
    loop = asyncio.new_event_loop() if is_async else None
    # The streams _confine installed: each ends its partial line when an invocation ends.
    outputs = [output for output in (sys.stdout, sys.stderr) if isinstance(output, _Output)]
    arn, environ = spec["arn"], os.environ
    trace_variable = EnvironSlot(TRACE_VARIABLE)
    while (message := channel.receive()) is not None:
        request_id = message["id"]
        # Per invocation, as awslambdaric does: the trace header first, then a context that reads the
        # function's variables from os.environ.
        trace_variable.set(message.get("trace") or new_trace_id())
        context = LambdaContext(environ, request_id, arn, message["deadline"], message.get("client_context"))
        _current_request = request_id
        out_of_memory = False
        reply: dict[str, Any] = {"t": protocol.RESULT, "id": request_id}
        try:
            if loop is not None:
                reply["value"] = loop.run_until_complete(handler(message["event"], context))
            else:
                reply["value"] = handler(message["event"], context)
        except MemoryError:
            # Leaving the except block frees the exception and the frames holding the memory.
            out_of_memory = True
        except BaseException as exc:  # a handler may raise anything, SystemExit included
            reply["error"] = error_object(exc, request_id)
        for output in outputs:
            output.end_invocation()
        _current_request = None
        if out_of_memory:
            # The heap may be in any state: report, then exit like Lambda's OOM-killed runtime.
            channel.send(protocol.encode({"t": protocol.OOM, "id": request_id, "rss": _max_rss_kb()}))
            return protocol.EXIT_OOM
        reply["rss"] = _max_rss_kb()
        if "value" in reply:
            try:
                reply["value"] = protocol.value_json(reply["value"])
            except (TypeError, ValueError) as exc:
                del reply["value"]
                reply["error"] = {
                    "errorMessage": f"Unable to marshal response: {exc}",
                    "errorType": "Runtime.MarshalError",
                    "requestId": request_id,
                    "stackTrace": [],
                }
        channel.send(protocol.encode(reply))
    return 0


def run(sock: socket.socket) -> NoReturn:
    """Entry point of a forked worker: read its spec, serve until the daemon hangs up, exit uncleanly."""
    status = 70
    try:
        channel = BlockingChannel(sock)
        setup = channel.receive()
        # None: the daemon gave up on this worker before sending its spec.
        if setup is not None and "argv" in setup["spec"]:
            # A Runtime API worker: become its program (node, bootstrap), the channel its stdout/stderr.
            exec_worker.run(setup["spec"], sock.fileno())
        status = 0 if setup is None else _serve(setup["spec"], channel)
    except MemoryError:
        status = protocol.EXIT_OOM
    except (BrokenPipeError, ConnectionResetError):
        status = 0  # the daemon hung up mid-invocation (shutdown): nobody is waiting for the reply
    except BaseException:
        # The daemon's channel may be what broke: the raw stderr is the only place left to say why.
        os.write(2, f"pipelined worker {os.getpid()}: {traceback.format_exc()}".encode())
    finally:
        os._exit(status)
