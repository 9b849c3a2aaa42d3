"""One shard of a stream: its iterator, read-ahead buffer, lanes of ordered batches and checkpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

from pipelined.core.records import Batch, Outcome, Record
from pipelined.core.retry import backoff
from pipelined.sources.call_watch import CallWatch
from pipelined.sources.streams.lanes import Entry, Lane, ReaderHooks, ReaderSettings
from pipelined.sources.streams.model import (
    LATEST_MARGIN,
    SHARD_END,
    DataTrimmedError,
    IteratorExpiredError,
    Page,
    Position,
    ShardGoneError,
    ShardInfo,
    StreamAdapter,
    StreamRecord,
    is_sequence_number,
    parse_checkpoint,
)
from pipelined.state import Checkpoint
from pipelined.state.interfaces import Checkpointer, Leases

log = logging.getLogger("pipelined.sources.streams")

# Lambda's synchronous invocation payload limit is 6 MB; leave room for the event's envelope.
MAX_BATCH_BYTES = 6_000_000
# Reading pauses while the records held in memory add up to this many bytes (Kinesis records reach 1 MB).
MAX_BUFFER_BYTES = 64_000_000
# Backoff after a failed API call or a batch left unfinished doubles up to this many seconds.
MAX_BACKOFF = 30.0


@dataclass(frozen=True, slots=True)
class BatchToken:
    """Batch.settle_token of stream batches: where the batch came from."""

    reader: ShardReader
    lane: int
    entries: tuple[Entry, ...]


class ShardReader:
    """Reads one shard in order, batches it by lane and checkpoints the settled prefix."""

    def __init__(
        self,
        shard: ShardInfo,
        start: Position,
        adapter: StreamAdapter,
        checkpointer: Checkpointer,
        leases: Leases,
        settings: ReaderSettings,
        hooks: ReaderHooks,
    ) -> None:
        self.shard = shard
        self.shard_id = shard.shard_id
        self._start = start
        self._adapter = adapter
        self._checkpointer = checkpointer
        self._leases = leases
        self._settings = settings
        self._hooks = hooks
        self._lanes = [Lane() for _ in range(max(1, settings.lanes))]
        # Every record read and not yet checkpointed, in shard order; the done prefix is checkpointed.
        self._pending: deque[Entry] = deque()
        self._pending_bytes = 0
        self._serial = 0
        # Serial of the last record a checkpoint on disk covers.
        self._durable = 0
        self._last_read: str | None = None
        # Emulated AT_TIMESTAMP (and the LATEST safety net): records that arrived earlier are skipped.
        self._skip_before = start.timestamp if start.kind == "AT_TIMESTAMP" else None
        self._reading_done = False
        self._stopped = False
        self._wake = asyncio.Event()
        self._next_fetch = 0.0
        self._errors = 0
        self._calls = CallWatch()
        # The last checkpoint handed to the state store (for logs and tests).
        self.checkpoint: str | None = None
        # Set when another member took the shard's lease: the engine starts a new reader for it.
        self.lost_lease = False

    def update(self, shard: ShardInfo) -> None:
        """Take in what discovery learned; the shard may have closed meanwhile."""
        self.shard = shard
        self._wake.set()

    def stop(self) -> None:
        """Stop reading and dispatching; batches in flight may still be settled."""
        self._stopped = True
        self._wake.set()

    async def run(self) -> None:
        """Read until the shard is finished or the reader is stopped, holding the shard's lease."""
        key = self._settings.source_key
        while not await self._leases.owns_shard(key, self.shard_id):
            if self._stopped:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._leases.retry_interval)
            self._wake.clear()
        try:
            if self._leases.shared and not await self._resume_shared():
                return
            await self._read()
        finally:
            await self._leases.release_shard(key, self.shard_id)

    async def _resume_shared(self) -> bool:
        """Start where the lease's last holder left off; False if it finished the shard."""
        s = self._settings
        stored = (await self._checkpointer.load(s.source_key, s.stream_arn)).get(self.shard_id)
        if stored is not None and (position := parse_checkpoint(stored)) is None:
            self._hooks.shard_finished(self.shard_id)
            return False
        if stored is not None and position is not None:
            self._start = position
            self._skip_before = position.timestamp if position.kind == "AT_TIMESTAMP" else None
        return True

    def _lease_gone(self) -> bool:
        if self._leases.holds_shard(self._settings.source_key, self.shard_id):
            return False
        self.lost_lease = self._stopped = True
        log.warning(
            "%s: shard %s: stopped reading, its lease is gone", self._settings.source_key, self.shard_id
        )
        return True

    async def _read(self) -> None:
        log.info("%s: reading shard %s from %s", self._settings.source_key, self.shard_id, self._start)
        iterator: str | None = None
        while not self._stopped and not self._lease_gone():
            if self._wants_records() and time.monotonic() >= self._next_fetch:
                iterator = await self._fetch(iterator)
            self._dispatch()
            if self._reading_done and not self._pending:
                await self._finish()
                return
            await self._sleep()

    # --- reading ---------------------------------------------------------------------------------

    def _wants_records(self) -> bool:
        room = len(self._pending) < self._settings.buffer_limit and self._pending_bytes < MAX_BUFFER_BYTES
        return room and not self._stopped and not self._reading_done

    def _resume_at(self) -> Position:
        # Renewing an iterator continues after the last record read: everything between the
        # checkpoint and that record is held here, so starting earlier would only duplicate it.
        if self._last_read is not None:
            return Position("AFTER_SEQUENCE_NUMBER", self._last_read)
        if self._start.kind == "AT_TIMESTAMP" and not self._adapter.supports_at_timestamp:
            return Position("TRIM_HORIZON")
        return self._start

    def stalled(self, now: float) -> bool:
        """True while a call to the stream has been waiting for an answer longer than STALL_AFTER."""
        return self._calls.stalled(now)

    async def _fetch(self, iterator: str | None) -> str | None:
        with self._calls.watching():
            return await self._fetch_page(iterator)

    async def _fetch_page(self, iterator: str | None) -> str | None:
        key = self._settings.source_key
        try:
            if iterator is None:
                opened_at = time.time()
                iterator = await self._adapter.shard_iterator(self.shard_id, self._resume_at())
                if self._start.kind == "LATEST":
                    # Opening LATEST again later would skip what arrived meanwhile.
                    self._start = Position("AT_TIMESTAMP", timestamp=opened_at - LATEST_MARGIN)
                    self._skip_before = self._start.timestamp
            limit = max(1, min(self._adapter.max_fetch, self._settings.buffer_limit - len(self._pending)))
            page = await self._adapter.get_records(self.shard_id, iterator, limit)
        except IteratorExpiredError:
            log.info("%s: shard %s: iterator expired; renewing it", key, self.shard_id)
            return None
        except DataTrimmedError as exc:
            log.warning(
                "%s: shard %s: records after %s expired before they were read (%s); "
                "continuing from the oldest record still in the shard",
                key,
                self.shard_id,
                self._resume_at(),
                exc,
            )
            self._start, self._last_read, self._skip_before = Position("TRIM_HORIZON"), None, None
            return None
        except ShardGoneError as exc:
            if self._hooks.shard_listed(self.shard_id):
                # Listed a moment ago: a transient error or a stream being recreated; look again.
                self._failed(exc)
                self._hooks.rediscover()
                return None
            log.warning(
                "%s: shard %s no longer exists; its unread records expired with it", key, self.shard_id
            )
            self._reading_done = True
            return None
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc)
            # The iterator may be what failed; the next call opens a fresh one at the same place.
            return None
        self._errors = 0
        self._hooks.report(self.shard_id, True)
        self._accept(page.records)
        if page.next_iterator is None or self._at_end(page):
            self._reading_done = True
        adapter = self._adapter
        behind = page.behind or len(page.records) >= limit
        interval = adapter.busy_poll_interval if behind else adapter.idle_poll_interval
        self._next_fetch = time.monotonic() + interval
        return page.next_iterator

    def _failed(self, exc: Exception) -> None:
        self._errors += 1
        self._hooks.report(self.shard_id, False)
        delay = backoff(self._errors, 0.5, MAX_BACKOFF)
        self._next_fetch = time.monotonic() + delay
        log.warning(
            "%s: shard %s: reading failed (%s); retrying in %.1fs",
            self._settings.source_key,
            self.shard_id,
            exc,
            delay,
        )

    def _at_end(self, page: Page) -> bool:
        """True when a closed shard has nothing left, even if the service still returned an iterator."""
        ending = self.shard.ending_sequence
        if page.records or ending is None or not is_sequence_number(ending):
            return False
        # AWS ends a closed shard with a null NextShardIterator; emulators may not, so also stop
        # once the position has reached the shard's EndingSequenceNumber.
        position = self._last_read
        if position is None and self._start.kind == "AFTER_SEQUENCE_NUMBER":
            position = self._start.sequence
        if position is not None and is_sequence_number(position):
            return int(position) >= int(ending)
        starting = self.shard.starting_sequence
        return starting is None or (is_sequence_number(starting) and int(starting) >= int(ending))

    def _accept(self, items: Sequence[StreamRecord]) -> None:
        now = time.monotonic()
        lanes = self._lanes
        for item in items:
            self._serial += 1
            entry = Entry(item, self._serial)
            self._pending.append(entry)
            self._pending_bytes += item.size
            record = item.record
            self._last_read = record.id
            if self._skip_before is not None:
                if record.arrived_at < self._skip_before:
                    entry.done = True
                    continue
                # Arrival times grow along a shard: nothing after this record is older.
                self._skip_before = None
            lane = lanes[zlib.crc32(item.ordering_key.encode()) % len(lanes)] if len(lanes) > 1 else lanes[0]
            if not lane.queue:
                lane.since = now
            lane.queue.append(entry)
        self._advance()

    # --- batching ----------------------------------------------------------------------------------

    def _ready_at(self, lane: Lane) -> float:
        """Monotonic time the lane's next batch may go (inf: nothing to send)."""
        if lane.busy or not lane.queue or lane.durable_after > self._durable:
            # Busy, empty, or its last batch's checkpoint is not on disk yet: a crash now must
            # redeliver no more than the one batch per lane in flight.
            return float("inf")
        window = self._settings.batching_window
        if window <= 0 or self._reading_done or len(lane.queue) >= self._settings.batch_size:
            return lane.not_before
        return max(lane.not_before, lane.since + window)

    def _dispatch(self) -> None:
        if self._stopped or self._lease_gone():
            return
        now = time.monotonic()
        for index, lane in enumerate(self._lanes):
            if self._ready_at(lane) <= now:
                self._hooks.submit(self._take(index, lane))

    def _take(self, index: int, lane: Lane) -> Batch:
        taken: list[Entry] = []
        size = 0
        while lane.queue and len(taken) < self._settings.batch_size:
            entry = lane.queue[0]
            if taken and size + entry.item.size > MAX_BATCH_BYTES:
                break
            taken.append(lane.queue.popleft())
            size += entry.item.size
        lane.busy = True
        lane.since = time.monotonic()
        records: tuple[Record, ...] = tuple(e.item.record for e in taken)
        return Batch(
            records,
            partial_failure_mode=self._settings.partial_failure_mode,
            settle_token=BatchToken(self, index, tuple(taken)),
        )

    async def _sleep(self) -> None:
        deadlines = [self._ready_at(lane) for lane in self._lanes]
        if self._wants_records():
            deadlines.append(self._next_fetch)
        deadline = min(deadlines, default=float("inf"))
        timeout = None if deadline == float("inf") else max(0.0, deadline - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
        self._wake.clear()

    # --- settling and checkpoints --------------------------------------------------------------------

    def settle(self, batch: Batch, outcome: Outcome) -> None:
        """Mark a finished batch's records; put back those left unfinished; advance the checkpoint."""
        token = batch.settle_token
        assert isinstance(token, BatchToken) and token.reader is self
        groups = (outcome.succeeded, outcome.dead_lettered, outcome.filtered)
        settled = {r.id for group in groups for r in group}
        # Anything not reported settled comes back: a stream never skips a record.
        unfinished = [e for e in token.entries if e.item.record.id not in settled]
        for entry in token.entries:
            entry.done = entry.item.record.id in settled
        lane = self._lanes[token.lane]
        lane.busy = False
        # Records done before the first unfinished one: the next batch waits until they are durable
        # (later done ones cannot be checkpointed before the unfinished ones are redelivered).
        first_unfinished = unfinished[0].serial if unfinished else None
        done_before = [
            e.serial
            for e in token.entries
            if e.done and (first_unfinished is None or e.serial < first_unfinished)
        ]
        if done_before:
            lane.durable_after = max(lane.durable_after, done_before[-1])
        if unfinished:
            # They go back to the front of their lane so that later records of the same keys wait.
            lane.queue.extendleft(reversed(unfinished))
            lane.failures += 1
            delay = backoff(lane.failures, 0.5, MAX_BACKOFF)
            lane.not_before = time.monotonic() + delay
            lane.since = time.monotonic()
            log.warning(
                "%s: shard %s: %d record(s) from %s left unfinished; %s",
                self._settings.source_key,
                self.shard_id,
                len(unfinished),
                unfinished[0].item.record.id,
                "they are redelivered after a restart"
                if self._stopped
                else f"redelivering them in {delay:.1f}s",
            )
        else:
            lane.failures = 0
        self._advance()
        # The lane's next batch goes at once, without waiting for the reader task to wake.
        self._dispatch()
        self._wake.set()

    def _advance(self) -> None:
        last: Entry | None = None
        pending = self._pending
        while pending and pending[0].done:
            last = pending.popleft()
            self._pending_bytes -= last.item.size
        if last is not None:
            self._save(last.item.record.id, last.serial)

    def _save(self, value: str, serial: int) -> None:
        self.checkpoint = value
        s = self._settings
        written = self._checkpointer.save_soon(Checkpoint(s.source_key, s.stream_arn, self.shard_id, value))
        asyncio.ensure_future(written).add_done_callback(
            lambda done: None if done.cancelled() or done.exception() else self._durable_up_to(serial)
        )

    def _durable_up_to(self, serial: int) -> None:
        if serial > self._durable:
            self._durable = serial
            self._dispatch()
            self._wake.set()

    async def _finish(self) -> None:
        self.checkpoint = SHARD_END
        s = self._settings
        # Children start only once this is on disk, so a crash can never run a child before its parent.
        await self._checkpointer.save_durably(
            Checkpoint(s.source_key, s.stream_arn, self.shard_id, SHARD_END)
        )
        if self._lease_gone():
            return  # refused: the lease's new holder finishes the shard
        log.info("%s: shard %s finished", self._settings.source_key, self.shard_id)
        self._hooks.shard_finished(self.shard_id)
