"""Driving a push source from a test: a sink that hands each pushed batch to the test to settle."""

from __future__ import annotations

import asyncio

from pipelined.core.records import Batch, Outcome
from pipelined.sources.base import PushSource


class QueueSink:
    """A BatchSink that queues what a source pushes; the test settles each batch itself."""

    def __init__(self) -> None:
        self.batches: asyncio.Queue[Batch] = asyncio.Queue()
        self.errors: list[Exception] = []

    async def deliver(self, batch: Batch) -> Outcome:
        self.batches.put_nowait(batch)
        return Outcome()

    def source_failed(self, error: Exception) -> None:
        self.errors.append(error)

    def health_changed(self) -> None:
        return None


_SINKS: dict[int, QueueSink] = {}


async def start_pushing(source: PushSource) -> QueueSink:
    """Start `source` with a queueing sink."""
    sink = QueueSink()
    _SINKS[id(source)] = sink
    await source.start(sink)
    return sink


async def next_pushed(source: PushSource, timeout: float = 5.0) -> Batch:
    """The next batch `source` pushed (started with start_pushing)."""
    return await asyncio.wait_for(_SINKS[id(source)].batches.get(), timeout)
