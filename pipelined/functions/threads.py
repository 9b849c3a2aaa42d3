"""Daemon threads for sync inline handlers: a handler stuck past its timeout never blocks shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class _Job:
    """One sync handler call waiting for a thread."""

    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    fn: Callable[..., Any]
    args: tuple[Any, ...]


class HandlerThreads:
    """A pool of daemon threads that grows on demand and hands results straight to the event loop."""

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
        # In Lambda the handler runs on the runtime's main thread, where asyncio.get_event_loop() works;
        # handlers that rely on it (Mangum's ASGI adapter) need a loop of their own on this thread too.
        asyncio.set_event_loop(asyncio.new_event_loop())
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


def _resolve(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    # The future is already cancelled when the invocation timed out and its thread was abandoned.
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


handler_threads = HandlerThreads()
