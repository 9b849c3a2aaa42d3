"""The stream engine behind `kinesis` and `dynamodb_stream`: shard discovery, lineage, start positions.

An adapter (kinesis.py, dynamodb.py) supplies the API calls and record shapes; a ShardReader
(shard_reader.py) reads each shard. This module decides which shards are read, from where, and when.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Mapping
from typing import Any

from pipelined.config import DynamoDBStreamSource, EventSourceConfig, FunctionConfig, KinesisSource
from pipelined.core.records import Batch, Outcome, PartialFailureMode
from pipelined.core.retry import RetryPolicy
from pipelined.errors import PipelinedError, SourceError, UsageError
from pipelined.sources.push import PushSourceBase
from pipelined.sources.resources import DevResources
from pipelined.sources.streams.lanes import ReaderSettings
from pipelined.sources.streams.model import (
    AT_SEQUENCE,
    AT_TIMESTAMP,
    LATEST_MARGIN,
    SHARD_END,
    TRIM_HORIZON,
    Position,
    ShardInfo,
    StreamAdapter,
    is_sequence_number,
    parse_checkpoint,
)
from pipelined.sources.streams.shard_reader import BatchToken, ShardReader
from pipelined.state import Checkpoint, StateStore
from pipelined.state.interfaces import LOCAL_LEASES, Checkpointer, Leases
from pipelined.state.markers import STREAM_RESET

log = logging.getLogger("pipelined.sources.streams")

StreamConfig = KinesisSource | DynamoDBStreamSource

# Seconds between shard discoveries; a shard that finishes triggers one at once (its children).
DISCOVERY_INTERVAL = 10.0
# How long closing waits for the last checkpoints (a reload; at shutdown the daemon waits for the rest).
CLOSE_FLUSH_TIMEOUT = 2.0


class StreamSource(PushSourceBase):
    """A push source over every shard of one stream, each read by a ShardReader, parents before children."""

    def __init__(
        self,
        function: str,
        config: StreamConfig,
        adapter: StreamAdapter,
        checkpointer: Checkpointer,
        leases: Leases = LOCAL_LEASES,
        discovery_interval: float = DISCOVERY_INTERVAL,
    ) -> None:
        assert config.name is not None
        super().__init__(config.name, f"{function}/{config.name}")
        self.config = config
        self.adapter = adapter
        self.checkpointer = checkpointer
        self.leases = leases
        self.discovery_interval = discovery_interval
        self.retry_policy = RetryPolicy(
            maximum_retry_attempts=config.maximum_retry_attempts,
            maximum_record_age=config.maximum_record_age,
            bisect_on_error=config.bisect_batch_on_function_error,
            attempts_condition="RetryAttemptsExhausted",
            age_condition="RecordAgeExceeded",
        )
        self.stream_arn = ""
        self._shards: dict[str, ShardInfo] = {}
        self._readers: dict[str, ShardReader] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        # Checkpoints of this stream as loaded at start, then as readers finish or crash.
        self._stored: dict[str, str] = {}
        self._finished: set[str] = set()
        # Shards opened at LATEST by this start (their stored value is only the restart safety net).
        self._first_open: dict[str, Position] = {}
        self._failing: set[str] = set()
        self._warned: set[str] = set()
        self._discover_now = asyncio.Event()
        self._discovery: asyncio.Task[None] | None = None
        self._closed = False

    @property
    def healthy(self) -> bool:
        """False while the last call of discovery or of a shard reader failed, or one is unanswered."""
        now = time.monotonic()
        return not self._failing and not any(r.stalled(now) for r in self._readers.values())

    # --- lifecycle -----------------------------------------------------------------------------------

    async def _start(self) -> None:
        """Resolve the stream, load checkpoints, list shards and start the readers that may run."""
        try:
            self.stream_arn = await self.adapter.resolve()
            shards = await self.adapter.list_shards()
            self._stored = await self.checkpointer.load(self.key, self.stream_arn)
            reset_to = await self.checkpointer.reset_to(self.key)
        except PipelinedError:
            raise
        except Exception as exc:
            raise SourceError(f"{self.key}: cannot read the stream: {exc}") from exc
        if not self._stored:
            await self._pin_start(shards, reset_to or self.config.starting_position)
        self._finished = {shard for shard, value in self._stored.items() if value == SHARD_END}
        self._shards = {s.shard_id: s for s in shards}
        open_shards = sum(1 for s in shards if not s.closed)
        self._reconcile()
        self._discovery = asyncio.create_task(self._discover_loop(), name=f"{self.key}:discovery")
        log.info("%s: %s has %d shard(s), %d open", self.key, self.stream_arn, len(shards), open_shards)

    async def _pin_start(self, shards: list[ShardInfo], position: str) -> None:
        """On a first start, store where each shard begins, so that a restart begins at the same place."""
        if position == "LATEST":
            since = f"{AT_TIMESTAMP}{time.time() - LATEST_MARGIN}"
            # History before the first start is not wanted: closed shards count as read.
            pinned = {s.shard_id: SHARD_END if s.closed else since for s in shards}
            self._first_open = {s.shard_id: Position("LATEST") for s in shards if not s.closed}
        elif position == "AT_TIMESTAMP":
            stamp = getattr(self.config, "starting_position_timestamp", None)
            assert stamp is not None
            pinned = {s.shard_id: f"{AT_TIMESTAMP}{stamp.timestamp()}" for s in shards}
        else:
            return  # TRIM_HORIZON is what a shard without a checkpoint gets anyway
        await self.checkpointer.pin(
            Checkpoint(self.key, self.stream_arn, shard, value) for shard, value in pinned.items()
        )
        self._stored.update(pinned)

    async def settle(self, batch: Batch, outcome: Outcome) -> None:
        """Hand the outcome to the batch's shard reader, which advances its checkpoint."""
        token = batch.settle_token
        assert isinstance(token, BatchToken)
        token.reader.settle(batch, outcome)

    def failure_context(self, batch: Batch) -> Mapping[str, Any]:
        """Lambda's KinesisBatchInfo / DDBStreamBatchInfo for a batch that failed for good."""
        token = batch.settle_token
        assert isinstance(token, BatchToken)
        first, last = batch.records[0], batch.records[-1]
        return {
            self.adapter.batch_info_key: {
                "shardId": token.reader.shard_id,
                "startSequenceNumber": first.id,
                "endSequenceNumber": last.id,
                "approximateArrivalOfFirstRecord": self.adapter.arrival_text(first.arrived_at),
                "approximateArrivalOfLastRecord": self.adapter.arrival_text(last.arrived_at),
                "batchSize": len(batch.records),
                "streamArn": self.stream_arn,
            }
        }

    def _stop_producing(self) -> None:
        self._stopping = True
        for reader in self._readers.values():
            reader.stop()
        for task in (*self._tasks.values(), self._discovery):
            if task is not None:
                task.cancel()

    async def close(self) -> None:
        """Stop reading and write the final checkpoints of the batches that settled."""
        if self._closed:
            return
        self._closed = True
        self._stop_producing()
        tasks = [t for t in (*self._tasks.values(), self._discovery) if t is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            # Bounded: on a full or broken disk the daemon's own final flush reports what was not written.
            await asyncio.wait_for(asyncio.shield(self.checkpointer.flush()), CLOSE_FLUSH_TIMEOUT)
        except TimeoutError:
            log.warning("%s: the last checkpoints are not written yet; the daemon keeps trying", self.key)

    # --- shards and lineage --------------------------------------------------------------------------

    async def _discover_loop(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._discover_now.wait(), self.discovery_interval)
            self._discover_now.clear()
            try:
                shards = await self.adapter.list_shards()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failing.add("discovery")
                log.warning("%s: shard discovery failed (%s); retrying", self.key, exc)
                continue
            self._failing.discard("discovery")
            if self.leases.shared:
                await self._learn_finished()
            for shard in shards:
                if shard.shard_id not in self._shards:
                    log.info(
                        "%s: new shard %s (parents %s)", self.key, shard.shard_id, shard.parents or "none"
                    )
            self._shards = {s.shard_id: s for s in shards}
            self._reconcile()

    async def _learn_finished(self) -> None:
        """Shards other members finished (their children may start here)."""
        try:
            stored = await self.checkpointer.load(self.key, self.stream_arn)
        except Exception as exc:  # the database away: try again at the next discovery
            log.debug("%s: cannot read the shared checkpoints (%s)", self.key, exc)
            return
        self._stored.update(stored)
        self._finished |= {shard for shard, value in stored.items() if value == SHARD_END}

    def _reconcile(self) -> None:
        """Start a reader for every shard whose parents are finished; tell running readers the news."""
        if self._stopping:
            return
        for shard_id in sorted(self._shards):
            shard = self._shards[shard_id]
            reader = self._readers.get(shard_id)
            if reader is not None:
                reader.update(shard)
                continue
            if shard_id in self._finished:
                continue
            # A parent no longer listed was trimmed away: nothing of it is left to wait for.
            if any(self._unfinished(parent) for parent in shard.parents):
                continue
            self._start_reader(shard)

    def _unfinished(self, shard_id: str) -> bool:
        return shard_id not in self._finished and (shard_id in self._shards or shard_id in self._readers)

    def _start_reader(self, shard: ShardInfo) -> None:
        for parent in shard.parents:
            stored = self._stored.get(parent)
            if parent not in self._finished and stored is not None and parent not in self._warned:
                self._warned.add(parent)
                log.warning(
                    "%s: shard %s expired before it was read to its end (checkpoint %s); "
                    "its remaining records are gone",
                    self.key,
                    parent,
                    stored,
                )
        stored = self._stored.get(shard.shard_id)
        start = (
            self._first_open.pop(shard.shard_id, None)
            or (parse_checkpoint(stored) if stored is not None else None)
            # A shard that appeared after the first start (a child, usually) is read from its start.
            or Position("TRIM_HORIZON")
        )
        c = self.config
        settings = ReaderSettings(
            source_key=self.key,
            stream_arn=self.stream_arn,
            batch_size=c.batch_size,
            batching_window=c.maximum_batching_window,
            lanes=c.parallelization_factor,
            partial_failure_mode=PartialFailureMode.FROM_LOWEST if c.report_batch_item_failures else None,
            # Room for a whole GetRecords page while the previous one is still being processed.
            buffer_limit=2 * max(self.adapter.max_fetch, c.batch_size * c.parallelization_factor),
        )
        reader = ShardReader(shard, start, self.adapter, self.checkpointer, self.leases, settings, self)
        self._readers[shard.shard_id] = reader
        task = asyncio.create_task(reader.run(), name=f"{self.key}:{shard.shard_id}")
        self._tasks[shard.shard_id] = task
        task.add_done_callback(functools.partial(self._reader_done, shard.shard_id))

    def _reader_done(self, shard_id: str, task: asyncio.Task[None]) -> None:
        if self._tasks.get(shard_id) is task:
            del self._tasks[shard_id]
        if task.cancelled() or task.exception() is None:
            reader = self._readers.get(shard_id)
            if reader is not None and reader.lost_lease:
                # Another member reads it now; a new reader waits to take the lease back if it frees.
                del self._readers[shard_id]
                self._discover_now.set()
            return
        reader = self._readers.pop(shard_id, None)
        if reader is not None and reader.checkpoint is not None:
            self._stored[shard_id] = reader.checkpoint
        log.error(
            "%s: reader of shard %s crashed (%r); restarting it from its checkpoint",
            self.key,
            shard_id,
            task.exception(),
        )
        self._discover_now.set()

    # --- ReaderHooks ---------------------------------------------------------------------------------

    def submit(self, batch: Batch) -> None:
        """Deliver a lane's batch now (each lane has at most one batch in flight)."""
        self.push(batch)

    def shard_finished(self, shard_id: str) -> None:
        """Record a finished shard and start its children (discovering them if they are new)."""
        self._finished.add(shard_id)
        self._stored[shard_id] = SHARD_END
        self._readers.pop(shard_id, None)
        self._failing.discard(shard_id)
        self._reconcile()
        self._discover_now.set()

    def shard_listed(self, shard_id: str) -> bool:
        """True while the latest discovery lists the shard."""
        return shard_id in self._shards

    def rediscover(self) -> None:
        """Run a discovery now."""
        self._discover_now.set()

    def report(self, shard_id: str, ok: bool) -> None:
        """Track which readers' last call failed, for `healthy`."""
        if ok:
            self._failing.discard(shard_id)
        else:
            self._failing.add(shard_id)


# --- `pipelined checkpoints reset` ---------------------------------------------------------------------


async def reset_checkpoints(state: StateStore, source: str, to: str | None, shard: str | None) -> str:
    """Rewind a stream source's checkpoints (daemon stopped); returns what was done, for the user."""
    rows = await state.checkpoints.list(source)
    if to is None or to in (TRIM_HORIZON, "LATEST"):
        # A pending reset it replaces counts as removed, as when it was a row of the checkpoints table.
        removed = await state.checkpoints.delete(source) + await state.markers.delete(source, STREAM_RESET)
        if to is None:
            return f"{source}: removed {removed} checkpoint(s); the next start uses its starting_position"
        await state.markers.put(source, STREAM_RESET, STREAM_RESET, to)
        return f"{source}: removed {removed} checkpoint(s); the next start reads every shard from {to}"
    if not is_sequence_number(to):
        raise UsageError(f"--to must be TRIM_HORIZON, LATEST or a sequence number, got {to!r}")
    shards = sorted({c.shard for c in rows})
    if shard is None:
        if len(shards) != 1:
            known = ", ".join(shards) or "none"
            raise UsageError(
                f"{source} has checkpoints for {len(shards)} shards ({known}); pick one with --shard"
            )
        shard = shards[0]
    matching = [c for c in rows if c.shard == shard]
    if not matching:
        raise UsageError(
            f"{source} has no checkpoint for shard {shard} (known: {', '.join(shards) or 'none'})"
        )
    await state.checkpoints.save(
        [Checkpoint(source, c.stream, shard, f"{AT_SEQUENCE}{to}") for c in matching]
    )
    return f"{source}: shard {shard} restarts at sequence number {to} (that record is delivered again)"


def dev_resources(config: EventSourceConfig, function: FunctionConfig, found: DevResources) -> None:
    """Dev mode creates the table (with a stream) or the Kinesis stream, and the on-failure target."""
    if isinstance(config, DynamoDBStreamSource):
        table = config.table or (config.stream_arn or "").split(":table/", 1)[-1].split("/", 1)[0]
        found.tables.add(table)
    elif isinstance(config, KinesisSource):
        found.streams.add(config.stream.rsplit("/", 1)[-1])
    else:
        return
    found.add_destination(config.on_failure)
