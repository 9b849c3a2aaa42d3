"""The inline runtime: the handler is imported into the daemon and runs on its event loop or a thread."""

from __future__ import annotations

import asyncio
import concurrent.futures
import importlib
import inspect
import os
import site
import sys
import threading
import time
from collections.abc import Callable, Collection, Mapping
from contextvars import copy_context
from pathlib import Path
from typing import Any, NoReturn

from pipelined.config import FunctionConfig
from pipelined.core.context import LambdaContext, client_context
from pipelined.core.identity import FunctionIdentity
from pipelined.core.lambda_errors import LambdaError, handler_error, timed_out
from pipelined.errors import HandlerLoadError
from pipelined.functions.environ import function_environment, install_environ_overlay
from pipelined.functions.runtime import Execution, Invocation, Reply
from pipelined.functions.threads import handler_threads
from pipelined.observe.logs import InvocationScope, current_invocation, end_invocation_output

# Frames of the hand-off to the handler (this package, asyncio, threads), dropped from stack traces.
_OWN_FRAMES = (
    str(Path(__file__).parent),
    str(Path(asyncio.__file__).parent),
    str(Path(threading.__file__)),
    str(Path(concurrent.futures.__file__).parent),
)
# Never re-imported by a hot reload, even under a function's code directory (`code: .` in a project with
# its virtualenv inside): pipelined itself and installed packages, which the daemon shares.
_NEVER_RELOADED = tuple(
    dict.fromkeys(
        os.path.join(path, "")
        for path in (
            str(Path(__file__).resolve().parents[1]),
            sys.prefix,
            sys.base_prefix,
            sys.exec_prefix,
            *site.getsitepackages(),
            site.getusersitepackages(),
        )
    )
)


class ExitAtImportError(Exception):
    """An inline handler module called os._exit() while it was imported."""


def _exit_refused(status: int) -> NoReturn:
    raise ExitAtImportError(f"os._exit({status}) called while importing the handler module")


def error_object(exc: BaseException) -> LambdaError:
    """Lambda's error object for an exception raised by an inline handler."""
    return handler_error(exc, _OWN_FRAMES)


class InlineRuntime:
    """Imports the handler once (a cold start at load) and runs every invocation in the daemon."""

    def __init__(
        self, identity: FunctionIdentity, config: FunctionConfig, environment: Mapping[str, str]
    ) -> None:
        self.identity = identity
        self.config = config
        self.environment = environment
        self.handler: Callable[..., Any] | None = None
        self.is_async = False
        self._init_duration_ms: float | None = None
        self._cold = True

    def load(self) -> None:
        """Import the handler (module-level init runs here, like a Lambda cold start)."""
        module_name = self.config.handler.rpartition(".")[0]
        paths = self._paths()
        existing = sys.modules.get(module_name)
        if existing is not None:
            origin = getattr(existing, "__file__", None) or ""
            if not any(origin.startswith(p + os.sep) for p in paths):
                raise HandlerLoadError(
                    f"function {self.identity.name}: module '{module_name}' is already loaded from {origin}; "
                    "two inline functions cannot share a module name from different code directories"
                )
            # A reload with changed code must see the new module, like a new Lambda version.
            del sys.modules[module_name]
        self.handler, self._init_duration_ms = self._import()
        self.is_async = inspect.iscoroutinefunction(self.handler)

    async def refresh(self, changed: Collection[Path]) -> LambdaError | None:
        """Hot reload: import the code directory's modules (and changed layer files) anew, then swap."""
        code = str(self.config.code) + os.sep
        changed_files = {str(path) for path in changed}
        stale = {
            name: module
            for name, module in sys.modules.items()
            if (origin := getattr(module, "__file__", None))
            and (origin.startswith(code) or origin in changed_files)
            and not origin.startswith(_NEVER_RELOADED)
        }
        for name in stale:
            del sys.modules[name]
        importlib.invalidate_caches()
        try:
            handler, init_ms = self._import()
        except HandlerLoadError as exc:
            # The old handler keeps serving, with the modules it was imported with.
            sys.modules.update(stale)
            if exc.__cause__ is None:  # imported, but the handler is not there
                return LambdaError("Runtime.HandlerNotFound", str(exc))
            return error_object(exc.__cause__)
        self.handler, self._init_duration_ms = handler, init_ms
        self.is_async = inspect.iscoroutinefunction(handler)
        self._cold = True  # the next invocation reports the init, as a new Lambda version's first does
        return None

    def _paths(self) -> list[str]:
        install_environ_overlay()
        paths = [str(self.config.code), *(str(p) for p in self.config.layers)]
        for path in reversed(paths):
            if path not in sys.path:
                sys.path.insert(0, path)
        return paths

    def _import(self) -> tuple[Callable[..., Any], float]:
        """Import the handler's module; the handler and the init duration (ms), or HandlerLoadError."""
        name = self.identity.name
        module_name, _, attribute = self.config.handler.rpartition(".")
        self._paths()
        started = time.perf_counter()
        token = function_environment.set(self.environment)
        real_exit = os._exit
        # Module-level code runs inside the daemon: sys.exit(), os._exit() or KeyboardInterrupt there
        # must fail this function's load with a message, not end the daemon without a word.
        os._exit = _exit_refused
        try:
            module = importlib.import_module(module_name)
        except BaseException as exc:
            raise HandlerLoadError(
                f"function {name}: cannot import '{module_name}': {type(exc).__name__}: {exc}"
            ) from exc
        finally:
            os._exit = real_exit
            function_environment.reset(token)
        handler = getattr(module, attribute, None)
        if not callable(handler):
            raise HandlerLoadError(f"function {name}: '{module_name}' has no callable '{attribute}'")
        return handler, (time.perf_counter() - started) * 1000

    async def start(self) -> None:
        if self.handler is None:
            self.load()

    async def acquire(self, request_id: str) -> Execution:
        if self.handler is None:
            self.load()
        if self._cold:
            self._cold = False
            return Execution(init_duration_ms=self._init_duration_ms)
        return _WARM

    async def run(self, execution: Execution, invocation: Invocation) -> Reply:
        identity = self.identity
        context = LambdaContext(
            identity.name,
            identity.arn,
            identity.memory_mb,
            invocation.request_id,
            identity.log_group,
            identity.log_stream,
            invocation.deadline,
        )
        if invocation.client_context is not None:
            context.client_context = client_context(invocation.client_context)
        scope = InvocationScope(identity.name, invocation.request_id)
        scope_token = current_invocation.set(scope)
        env_token = function_environment.set(self.environment)
        try:
            value, error = await self._run(invocation.event, context, invocation.timeout)
        finally:
            current_invocation.reset(scope_token)
            function_environment.reset(env_token)
        end_invocation_output(scope)
        return Reply(value, error)

    async def _run(
        self, event: Any, context: LambdaContext, timeout: float
    ) -> tuple[Any, LambdaError | None]:
        handler = self.handler
        assert handler is not None
        loop = asyncio.get_running_loop()
        if self.is_async:
            future: asyncio.Future[Any] = loop.create_task(handler(event, context))
        else:
            # copy_context carries the request id and environment overlay into the thread. On timeout
            # the thread is abandoned, not killed (Python cannot): it is a daemon thread, so it never
            # blocks shutdown; process isolation is what really stops it.
            future = handler_threads.submit(loop, copy_context().run, handler, event, context)
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

    async def close(self, timeout: float) -> None:
        return None


_WARM = Execution()
