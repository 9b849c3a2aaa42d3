"""Runs a handler on one event, as Lambda would: context object, environment, timeout, logs."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import importlib
import inspect
import logging
import math
import os
import queue
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextvars import ContextVar, copy_context
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelined.config import FunctionConfig
from pipelined.core.lambda_errors import handler_error, timed_out
from pipelined.errors import HandlerLoadError
from pipelined.functions.process.pool import Reply, WorkerPool
from pipelined.functions.process.spec import WorkerSpec
from pipelined.observe.logs import InvocationScope, current_invocation, end_invocation_output
from pipelined.observe.metrics import FunctionMetrics

log = logging.getLogger("pipelined.lambda")

ACCOUNT_ID = "000000000000"


@dataclass(frozen=True, slots=True)
class InvocationResult:
    """What one invocation returned or raised, and what it cost."""

    request_id: str
    value: Any
    # Lambda's error object {"errorMessage", "errorType", "stackTrace"}; None on success.
    error: Mapping[str, Any] | None
    duration_ms: float
    init_duration_ms: float | None = None

    @property
    def ok(self) -> bool:
        """True when the handler returned normally."""
        return self.error is None


class LambdaContext:
    """The `context` argument, with every attribute of Lambda's Python context object."""

    def __init__(self, function: FunctionRuntime, request_id: str, deadline: float) -> None:
        self.function_name = function.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.config.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = function.log_stream_name
        self.identity: Any = None
        self.client_context: Any = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the function times out."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# --- environment -------------------------------------------------------------------------------------
# os.environ is process-wide, but two functions may set the same variable differently while running
# concurrently. The overlay makes os.environ/os.getenv answer from the running function's environment.

_function_environment: ContextVar[Mapping[str, str] | None] = ContextVar("function_environment", default=None)


class _EnvironOverlay(MutableMapping[str, str]):
    """os.environ replacement whose reads see the current function's variables first."""

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self._base = base

    def __getitem__(self, key: str) -> str:
        overlay = _function_environment.get()
        if overlay is not None and key in overlay:
            return overlay[key]
        return self._base[key]

    def __setitem__(self, key: str, value: str) -> None:
        self._base[key] = value

    def __delitem__(self, key: str) -> None:
        del self._base[key]

    def _merged(self) -> dict[str, str]:
        merged = dict(self._base)
        merged.update(_function_environment.get() or {})
        return merged

    def __iter__(self) -> Iterator[str]:
        return iter(self._merged())

    def __len__(self) -> int:
        return len(self._merged())

    def copy(self) -> dict[str, str]:
        """A plain dict of what the running function sees, like os.environ.copy()."""
        return self._merged()

    def __repr__(self) -> str:
        return f"environ({self._merged()!r})"

    def __getattr__(self, name: str) -> Any:
        # os._Environ extras (encodekey, decodevalue, ...) still work on the real mapping.
        return getattr(self._base, name)


def _install_environ_overlay() -> None:
    if not isinstance(os.environ, _EnvironOverlay):
        os.environ = _EnvironOverlay(os.environ)  # type: ignore[assignment]  # noqa: B003


# --- threads -----------------------------------------------------------------------------------------


class _HandlerThreads:
    """Daemon threads for sync handlers: a handler stuck past its timeout never blocks shutdown."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()

    def submit(
        self, loop: asyncio.AbstractEventLoop, fn: Callable[..., Any], *args: Any
    ) -> asyncio.Future[Any]:
        """Run fn(*args) on a handler thread; the returned future resolves on `loop`."""
        future: asyncio.Future[Any] = loop.create_future()
        with self._lock:
            if self._idle == 0:
                threading.Thread(target=self._work, name="pipelined-handler", daemon=True).start()
            else:
                self._idle -= 1
        self._jobs.put(_Job(loop, future, fn, args))
        return future

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                result, error = job.fn(*job.args), None
            except BaseException as exc:
                result, error = None, exc
            # Count this thread idle *before* waking the loop, or the loop's next submit would not
            # see it and start a needless new thread.
            with self._lock:
                self._idle += 1
            # RuntimeError: the loop closed while the handler ran (the daemon exited).
            with contextlib.suppress(RuntimeError):
                job.loop.call_soon_threadsafe(_resolve, job.future, result, error)


@dataclass(frozen=True, slots=True)
class _Job:
    """One sync handler call waiting for a thread."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    # The future is already cancelled when the invocation timed out and its thread was abandoned.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


_threads = _HandlerThreads()


# --- the function ------------------------------------------------------------------------------------


_OWN_FRAMES = (
    str(Path(__file__).parent),
    str(Path(asyncio.__file__).parent),
    str(Path(threading.__file__)),
    str(Path(concurrent.futures.__file__).parent),
)


def error_object(exc: BaseException) -> dict[str, Any]:
    """Lambda's error object for an exception raised by an inline handler."""
    return handler_error(exc, _OWN_FRAMES)


def new_request_id() -> str:
    """A random (version 4) UUID string, like Lambda's request ids, without uuid.UUID's overhead."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


def _max_memory_used_mb() -> int:
    # ru_maxrss is in KiB on Linux: the peak of the whole daemon inline, of one worker with isolation.
    return math.ceil(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


class FunctionRuntime:
    """A loaded function: its imported handler, its environment and its concurrency limit."""

    def __init__(
        self, name: str, config: FunctionConfig, region: str, metrics: FunctionMetrics | None = None
    ) -> None:
        self.name = name
        self.config = config
        self.region = region
        self.arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{name}"
        self.log_stream_name = time.strftime("%Y/%m/%d/[$LATEST]") + os.urandom(16).hex()
        self.environment: dict[str, str] = {
            "AWS_LAMBDA_FUNCTION_NAME": name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(config.timeout)),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": self.log_stream_name,
            "AWS_REGION": region,
            "AWS_DEFAULT_REGION": region,
            "_HANDLER": config.handler,
            "LAMBDA_TASK_ROOT": str(config.code),
            **config.environment,
        }
        self.handler: Callable[..., Any] | None = None
        self.metrics = metrics
        # Set by load() with `isolation: process`: the handler then runs in worker processes, never here.
        self.pool: WorkerPool | None = None
        self.is_async = False
        self._init_duration_ms: float | None = None
        self._cold = True
        limit = config.reserved_concurrency
        self._slots = asyncio.Semaphore(limit) if limit is not None else None
        self.in_flight = 0

    def load(self) -> None:
        """Import the handler once (module-level init runs here, like a Lambda cold start)."""
        if self.config.isolation == "process":
            # Workers import the handler (each one, once); start() proves it imports.
            if self.pool is None:
                spec = WorkerSpec.of(self.name, self.config, self.arn, self.log_stream_name, self.environment)
                self.pool = WorkerPool(spec, self.metrics)
            return
        _install_environ_overlay()
        module_name, _, attribute = self.config.handler.rpartition(".")
        paths = [str(self.config.code), *(str(p) for p in self.config.layers)]
        for path in reversed(paths):
            if path not in sys.path:
                sys.path.insert(0, path)
        existing = sys.modules.get(module_name)
        if existing is not None:
            origin = getattr(existing, "__file__", None) or ""
            if not any(origin.startswith(p + os.sep) for p in paths):
                raise HandlerLoadError(
                    f"function {self.name}: module '{module_name}' is already loaded from {origin}; "
                    "two inline functions cannot share a module name from different code directories"
                )
            # A reload with changed code must see the new module, like a new Lambda version.
            del sys.modules[module_name]
        started = time.perf_counter()
        token = _function_environment.set(self.environment)
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            raise HandlerLoadError(
                f"function {self.name}: cannot import '{module_name}': {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            _function_environment.reset(token)
        handler = getattr(module, attribute, None)
        if not callable(handler):
            raise HandlerLoadError(f"function {self.name}: '{module_name}' has no callable '{attribute}'")
        self.handler = handler
        self.is_async = inspect.iscoroutinefunction(handler)
        self._init_duration_ms = (time.perf_counter() - started) * 1000

    async def start(self) -> None:
        """Start what must run before the first event: with process isolation, the first workers."""
        if self.pool is not None:
            await self.pool.start()

    async def close(self, timeout: float = 10.0) -> None:
        """Stop the function's workers once their in-flight invocations are done (inline: nothing)."""
        if self.pool is not None:
            await self.pool.close(timeout)

    async def acquire(self, on_throttle: Callable[[], None] | None = None) -> None:
        """Take one unit of reserved concurrency, calling on_throttle if the function is at its limit."""
        if self._slots is None:
            return
        if self._slots.locked() and on_throttle is not None:
            on_throttle()
        await self._slots.acquire()

    def release(self) -> None:
        """Give back the unit taken by acquire()."""
        if self._slots is not None:
            self._slots.release()

    async def invoke(self, event: Any, request_id: str | None = None) -> InvocationResult:
        """Run the handler once on `event`; never raises for handler errors or timeouts."""
        if self.handler is None:
            if self.pool is None:
                self.load()
            if self.pool is not None:
                return await self._invoke_isolated(self.pool, event, request_id)
        assert self.handler is not None
        request_id = request_id or new_request_id()
        timeout = self.config.timeout
        started = time.monotonic()
        context = LambdaContext(self, request_id, started + timeout)
        scope = InvocationScope(self.name, request_id)
        scope_token = current_invocation.set(scope)
        env_token = _function_environment.set(self.environment)
        init_duration = self._init_duration_ms if self._cold else None
        self._cold = False
        logging_on = log.isEnabledFor(logging.INFO)
        if logging_on:
            log.info(
                "START RequestId: %s Version: $LATEST",
                request_id,
                extra={"function": self.name, "request_id": request_id},
            )
        self.in_flight += 1
        try:
            value, error = await self._run(event, context, timeout)
        finally:
            self.in_flight -= 1
            current_invocation.reset(scope_token)
            _function_environment.reset(env_token)
        end_invocation_output(scope)
        duration_ms = (time.monotonic() - started) * 1000
        if error is not None:
            log.error(
                "%s: %s",
                error.get("errorType"),
                error.get("errorMessage"),
                extra={"function": self.name, "request_id": request_id},
            )
        if logging_on:
            self._report(request_id, duration_ms, init_duration)
        return InvocationResult(request_id, value, error, duration_ms, init_duration)

    async def _run(
        self, event: Any, context: LambdaContext, timeout: float
    ) -> tuple[Any, Mapping[str, Any] | None]:
        handler = self.handler
        assert handler is not None
        loop = asyncio.get_running_loop()
        if self.is_async:
            future: asyncio.Future[Any] = loop.create_task(handler(event, context))
        else:
            # copy_context carries the request id and environment overlay into the thread. On timeout
            # the thread is abandoned, not killed (Python cannot): it is a daemon thread, so it never
            # blocks shutdown; process isolation is what really stops it.
            future = _threads.submit(loop, copy_context().run, handler, event, context)
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            future.cancel()

        # One timer handle instead of asyncio.timeout(): this is the hot path of every invocation.
        timer = loop.call_later(timeout, expire)
        try:
            value = await future
        except asyncio.CancelledError:
            if not expired:
                raise  # cancelled from outside (shutdown), not by the timeout
            return None, timed_out(timeout)
        except BaseException as exc:  # a handler may raise anything, SystemExit included
            return None, error_object(exc)
        finally:
            timer.cancel()
        return value, None

    async def _invoke_isolated(
        self, pool: WorkerPool, event: Any, request_id: str | None
    ) -> InvocationResult:
        request_id = request_id or new_request_id()
        extra = {"function": self.name, "request_id": request_id}
        self.in_flight += 1
        try:
            # A cold start happens here, before START, as Lambda's init phase does.
            lease = await pool.lease(request_id)
            log.info("START RequestId: %s Version: $LATEST", request_id, extra=extra)
            started = time.monotonic()
            if lease.worker is None:
                reply = Reply(None, lease.error, None)
            else:
                reply = await pool.run(lease.worker, event, request_id, self.config.timeout)
        finally:
            self.in_flight -= 1
        duration_ms = (time.monotonic() - started) * 1000
        error = reply.error
        if error is not None:
            log.error("%s: %s", error.get("errorType"), error.get("errorMessage"), extra=extra)
        if log.isEnabledFor(logging.INFO):
            self._report(request_id, duration_ms, lease.init_duration_ms, reply.max_memory_mb)
        return InvocationResult(request_id, reply.value, error, duration_ms, lease.init_duration_ms)

    def _report(
        self,
        request_id: str,
        duration_ms: float,
        init_duration_ms: float | None,
        max_memory_mb: int | None = None,
    ) -> None:
        extra = {"function": self.name, "request_id": request_id}
        log.info("END RequestId: %s", request_id, extra=extra)
        used = _max_memory_used_mb() if max_memory_mb is None else max_memory_mb
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, math.ceil(duration_ms))} ms\t"
            f"Memory Size: {self.config.memory_mb} MB\tMax Memory Used: {used} MB"
        )
        if init_duration_ms is not None:
            report += f"\tInit Duration: {init_duration_ms:.2f} ms"
        log.info("%s", report, extra=extra)


def load_functions(functions: Mapping[str, FunctionConfig], region: str) -> dict[str, FunctionRuntime]:
    """Load every function's handler; raises HandlerLoadError naming the first that fails."""
    runtimes = {name: FunctionRuntime(name, cfg, region) for name, cfg in functions.items()}
    for runtime in runtimes.values():
        runtime.load()
    return runtimes


def code_root(config: FunctionConfig) -> Path:
    """The directory Lambda would call LAMBDA_TASK_ROOT."""
    return Path(config.code)
