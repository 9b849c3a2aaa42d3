"""An in-process source fed by code: for tests, benchmarks and embedding the dispatcher."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipelined.core.records import Batch, Outcome, PartialFailureMode, Record
from pipelined.core.retry import RetryPolicy


@dataclass
class SettledLog:
    """Every outcome the source was handed, in order."""

    outcomes: list[Outcome] = field(default_factory=list)

    def ids(self, kind: str) -> list[str]:
        """Ids of the records settled as `kind` (succeeded, failed, dead_lettered, filtered)."""
        return [r.id for o in self.outcomes for r in getattr(o, kind)]


class MemorySource:
    """Batches of records put with `put()`; failed records are put back at the front (like a queue)."""

    healthy = True

    def __init__(
        self,
        name: str = "memory",
        batch_size: int = 10,
        concurrency: int = 1,
        retry_policy: RetryPolicy | None = None,
        partial_failure_mode: PartialFailureMode | None = None,
        requeue_failed: bool = False,
    ) -> None:
        self.name = name
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.retry_policy = retry_policy
        self.partial_failure_mode = partial_failure_mode
        self.requeue_failed = requeue_failed
        self.settled = SettledLog()
        self._records: asyncio.Queue[Record] = asyncio.Queue()
        self._counter = 0

    def put(self, payload: Mapping[str, Any], filter_data: Mapping[str, Any] | None = None) -> Record:
        """Enqueue one record; its id is a running number."""
        self._counter += 1
        record = Record(str(self._counter), payload, time.time(), filter_data)
        self._records.put_nowait(record)
        return record

    def pending(self) -> int:
        """Records not yet handed to the dispatcher."""
        return self._records.qsize()

    async def start(self) -> None:
        return None

    async def poll(self) -> Batch | None:
        records = [await self._records.get()]
        while len(records) < self.batch_size and not self._records.empty():
            records.append(self._records.get_nowait())
        return Batch(tuple(records), partial_failure_mode=self.partial_failure_mode)

    async def settle(self, batch: Batch, outcome: Outcome) -> None:
        self.settled.outcomes.append(outcome)
        if self.requeue_failed:
            for record in outcome.failed:
                self._records.put_nowait(record)

    def failure_context(self, batch: Batch) -> Mapping[str, Any]:
        return {"requestPayload": batch.event()}

    async def close(self) -> None:
        return None
