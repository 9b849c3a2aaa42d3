"""The checkpointer of a cluster member: every write is fenced by the lease it was read under.

A checkpoint lands only if, in the same statement, the shard's lease row still names this member with
the counter the member took it with and has not expired (by the database's clock); the lease row is
locked for share meanwhile, so a takeover waits for the write or the write sees the takeover. A refused
write is counted, logged, and makes this member forget the lease (its reader stops).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable

from pipelined.observe.cluster_metrics import ClusterMetrics
from pipelined.state.checkpoints import HURRIED_LINGER, Checkpoint, CheckpointStore
from pipelined.state.cluster import ClusterLeases
from pipelined.state.db import DATABASE_ERRORS
from pipelined.state.markers import STREAM_RESET, MarkerStore
from pipelined.state.postgres import Database

log = logging.getLogger("pipelined.cluster")


class FencedCheckpointer:
    """Checkpoints in the shared database, group-committed, each one only under a valid lease."""

    def __init__(
        self,
        db: Database,
        leases: ClusterLeases,
        checkpoints: CheckpointStore,
        markers: MarkerStore,
        metrics: ClusterMetrics | None = None,
    ) -> None:
        self._db = db
        self._leases = leases
        self._checkpoints = checkpoints
        self._markers = markers
        self._metrics = metrics
        self._pending: dict[tuple[str, str, str], tuple[Checkpoint, int]] = {}
        self._waiters: list[asyncio.Future[None]] = []
        self._flusher: asyncio.Task[None] | None = None
        self.fenced = 0

    async def load(self, source: str, stream: str) -> dict[str, str]:
        """shard -> stored position, as every member sees it now."""
        return {c.shard: c.sequence for c in await self._checkpoints.list(source) if c.stream == stream}

    async def reset_to(self, source: str) -> str | None:
        """Where every shard starts after `checkpoints reset --to`, while the source has no checkpoints."""
        return await self._markers.get(source, STREAM_RESET, STREAM_RESET)

    async def pin(self, checkpoints: Iterable[Checkpoint]) -> None:
        """Store first-start positions where no member stored one yet (the first member to start wins)."""
        now = time.time()
        for c in checkpoints:
            await self._db.execute(
                "INSERT INTO checkpoints (source, stream, shard, sequence, updated_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (source, stream, shard) DO NOTHING",
                (c.source, c.stream, c.shard, c.sequence, now),
            )

    def save_soon(self, checkpoint: Checkpoint) -> asyncio.Future[None]:
        """Queue a shard's position; the future resolves once written or refused (the lease is gone)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        counter = self._leases.counter(checkpoint.source, checkpoint.shard)
        if counter is None:
            self._refuse([checkpoint])
            future.set_result(None)
            return future
        self._pending[(checkpoint.source, checkpoint.stream, checkpoint.shard)] = (checkpoint, counter)
        self._waiters.append(future)
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush_pending())
        return future

    async def _flush_pending(self) -> None:
        while self._pending:
            # Before every write, not only the first: what queued while one was written shares the next.
            await asyncio.sleep(HURRIED_LINGER)
            batch, waiters = list(self._pending.values()), self._waiters
            self._pending, self._waiters = {}, []
            try:
                written = await self._write(batch)
            except DATABASE_ERRORS as exc:
                if self._checkpoints.writable:
                    log.error("cannot write %d checkpoint(s): %s; retrying every second", len(batch), exc)
                self._checkpoints.writable = False
                for c, counter in batch:
                    self._pending.setdefault((c.source, c.stream, c.shard), (c, counter))
                self._waiters = waiters + self._waiters
                await asyncio.sleep(1)
                continue
            self._checkpoints.writable = True
            self._refuse([c for c, _ in batch if (c.source, c.shard) not in written])
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    async def _write(self, batch: list[tuple[Checkpoint, int]]) -> set[tuple[str, str]]:
        values = ",".join(["(?, ?, ?, ?, ?::bigint)"] * len(batch))
        params: list[object] = [self._leases.member_id]
        for c, counter in batch:
            params.extend((c.source, c.stream, c.shard, c.sequence, counter))
        params.append(time.time())
        async with self._db.execute(
            "WITH v (source, stream, shard, sequence, counter) AS (SELECT * FROM (VALUES "
            + values
            + ") AS t), ok AS (SELECT v.* FROM v JOIN leases l ON l.source = v.source AND l.shard = v.shard"
            " AND l.owner = ? AND l.counter = v.counter AND l.expires_at > clock_timestamp() FOR SHARE OF l)"
            " INSERT INTO checkpoints (source, stream, shard, sequence, updated_at)"
            " SELECT source, stream, shard, sequence, ? FROM ok ON CONFLICT (source, stream, shard)"
            " DO UPDATE SET sequence = excluded.sequence, updated_at = excluded.updated_at"
            " RETURNING source, shard",
            [*params[1:-1], params[0], params[-1]],
        ) as cursor:
            return {(r[0], r[1]) for r in await cursor.fetchall()}

    def _refuse(self, refused: list[Checkpoint]) -> None:
        for c in refused:
            self.fenced += 1
            if self._metrics is not None:
                self._metrics.fenced.inc()
            log.warning(
                "%s: checkpoint %s of shard %s refused: this member no longer holds the shard's lease",
                c.source,
                c.sequence,
                c.shard,
            )
            self._leases.lost(c.source, c.shard, "a checkpoint was fenced")

    async def flush(self) -> None:
        """Wait until every queued position is written or refused."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def save_durably(self, checkpoint: Checkpoint) -> None:
        """Store a shard's position (SHARD_END) and wait until it is written or refused."""
        await self.save_soon(checkpoint)
        await self.flush()

    def abandon(self) -> None:
        """Stop retrying (the store is closing)."""
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(Exception):
                self._flusher.exception()
