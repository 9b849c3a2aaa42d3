"""The shared base of sources that push batches: their deliveries in flight, and stopping them in order."""

from __future__ import annotations

import asyncio
import logging

from pipelined.core.records import Batch
from pipelined.sources.base import BatchSink

log = logging.getLogger("pipelined.dispatcher")


class PushSourceBase:
    """Runs each pushed batch as a delivery task on the sink; the runner keeps no idle pollers for it.

    Subclasses produce batches (a shard reader, a broker session) and call `push()`; they implement
    `_start()` to begin producing and `_stop_producing()` to end it, and bound their own concurrency
    (one batch per stream lane, a semaphore for a broker).
    """

    def __init__(self, name: str, key: str) -> None:
        self.name = name
        self.key = key
        self._sink: BatchSink | None = None
        self._deliveries: set[asyncio.Task[object]] = set()
        self._stopping = False

    @property
    def sink(self) -> BatchSink:
        """The runner delivering this source's batches (set by start)."""
        assert self._sink is not None, "start() first"
        return self._sink

    async def start(self, sink: BatchSink) -> None:
        """Remember the sink, then begin producing."""
        self._sink = sink
        await self._start()

    async def _start(self) -> None:
        """Begin producing batches (subclasses)."""

    def _stop_producing(self) -> None:
        """Produce no more batches (subclasses)."""

    def push(self, batch: Batch) -> asyncio.Task[object]:
        """Deliver `batch` now, in a task of its own."""
        task: asyncio.Task[object] = asyncio.get_running_loop().create_task(
            self.sink.deliver(batch), name=f"{self.key} delivery"
        )
        self._deliveries.add(task)
        task.add_done_callback(self._delivered)
        return task

    def _delivered(self, task: asyncio.Task[object]) -> None:
        self._deliveries.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: delivering a batch failed: %r", self.key, task.exception())

    async def stop(self, timeout: float) -> None:
        """Push nothing more, let deliveries in flight finish within `timeout`, then cancel them."""
        self._stopping = True
        self._stop_producing()
        if not self._deliveries:
            return
        _, pending = await asyncio.wait(list(self._deliveries), timeout=max(0.0, timeout))
        for task in pending:
            log.warning("%s: delivery still running after the shutdown budget; abandoning it", self.key)
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
