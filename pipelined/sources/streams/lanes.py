"""What a shard reader is made of: its settings, its hooks into the engine, records and lanes."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Protocol

from pipelined.core.records import Batch, PartialFailureMode
from pipelined.sources.streams.model import StreamRecord


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    """What every reader of one source shares."""

    source_key: str
    stream_arn: str
    batch_size: int
    batching_window: float
    # parallelization_factor: batches of one shard in flight at once, one per lane of partition keys.
    lanes: int
    partial_failure_mode: PartialFailureMode | None
    # Records read but not yet checkpointed; reading pauses at this many (or at MAX_BUFFER_BYTES).
    buffer_limit: int


class ReaderHooks(Protocol):
    """What a reader needs from its engine."""

    def submit(self, batch: Batch) -> None:
        """Hand a batch to the dispatcher's pollers."""

    def shard_finished(self, shard_id: str) -> None:
        """The shard was read to its end and SHARD_END is on disk: its children may start."""

    def shard_listed(self, shard_id: str) -> bool:
        """True while the latest successful discovery still lists the shard."""

    def rediscover(self) -> None:
        """Ask for a shard discovery now."""

    def report(self, shard_id: str, ok: bool) -> None:
        """Whether the reader's last API call succeeded (health)."""


class Entry:
    """A record read from the shard, until it is checkpointed; `serial` counts records in shard order."""

    __slots__ = ("done", "item", "serial")

    def __init__(self, item: StreamRecord, serial: int) -> None:
        self.item = item
        self.serial = serial
        self.done = False


class Lane:
    """Records of one slice of partition keys: at most one batch of them is in flight."""

    __slots__ = ("busy", "durable_after", "failures", "not_before", "queue", "since")

    def __init__(self) -> None:
        self.queue: deque[Entry] = deque()
        self.busy = False
        # Monotonic time the batching window of the queued records started.
        self.since = 0.0
        # After a batch came back unfinished, nothing is dispatched before this monotonic time.
        self.not_before = 0.0
        self.failures = 0
        # The lane's next batch waits until the checkpoint covers this record (its last one settled).
        self.durable_after = 0
