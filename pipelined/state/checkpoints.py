"""Stream checkpoints: the last position fully processed per shard, written by group commit."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pipelined.state.db import DATABASE_ERRORS, Connection

log = logging.getLogger("pipelined.state")

# How long queued checkpoints wait for company before they are committed.
CHECKPOINT_LINGER = 0.02
# The same when a caller waits for the commit (a shard reader holds its next batch until its checkpoint
# is durable): long enough for the other shards finishing at the same moment to share the commit.
HURRIED_LINGER = 0.001


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The last sequence number fully processed in one shard of one source."""

    source: str
    stream: str
    shard: str
    sequence: str
    updated_at: float = 0.0


class CheckpointStore:
    """The `checkpoints` table; each method is one transaction, `save_soon` shares one among callers."""

    def __init__(self, connection: Connection, path: Path | str) -> None:
        self._db = connection
        self._path = path
        self._pending: dict[tuple[str, str, str], Checkpoint] = {}
        # Resolved when the commit holding their checkpoints is on disk.
        # Resolved by the commit that writes what is queued now: one future per commit, not per call.
        self._commit: asyncio.Future[None] | None = None
        self._hurry = asyncio.Event()
        self._flusher: asyncio.Task[None] | None = None
        # False from a failed commit until the next one succeeds (readiness: the store is writable).
        self.writable = True

    async def save(self, checkpoints: Iterable[Checkpoint]) -> None:
        """Write many checkpoints atomically (one statement, so one transaction and one thread hop)."""
        now = time.time()
        rows = [(c.source, c.stream, c.shard, c.sequence, now) for c in checkpoints]
        # 5 parameters a row; stay far below SQLite's 32766-variable limit per statement.
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            await self._db.execute(
                "INSERT INTO checkpoints (source, stream, shard, sequence, updated_at) VALUES "
                + ",".join(["(?, ?, ?, ?, ?)"] * len(chunk))
                + " ON CONFLICT (source, stream, shard) DO UPDATE SET sequence = excluded.sequence,"
                " updated_at = excluded.updated_at",
                [value for row in chunk for value in row],
            )

    def save_soon(self, checkpoints: Iterable[Checkpoint], hurry: bool = False) -> asyncio.Future[None]:
        """Queue checkpoints for the next group commit; the future resolves once they are on disk.

        Batches that finish within CHECKPOINT_LINGER of each other share one commit, so a busy source
        pays one SQLite transaction per commit instead of one per batch. A shard reader waits for the
        future before it starts its next batch, so a crash redelivers at most the batch in flight; it
        passes `hurry`, which shortens the linger to HURRIED_LINGER.
        """
        loop = asyncio.get_running_loop()
        for c in checkpoints:
            self._pending[(c.source, c.stream, c.shard)] = c
        if self._commit is None:
            self._commit = loop.create_future()
        commit = self._commit
        if hurry:
            self._hurry.set()
        if self._flusher is None or self._flusher.done():
            self._flusher = loop.create_task(self._flush_pending())
        return commit

    async def _flush_pending(self) -> None:
        while self._pending:
            # Linger before every commit, not only the first: checkpoints queued while one commit was
            # being written would otherwise go out at once in the next, and a busy source would pay a
            # commit (and a thread hop) per batch again.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), CHECKPOINT_LINGER)
            if self._hurry.is_set():
                await asyncio.sleep(HURRIED_LINGER)
                self._hurry.clear()
            batch = list(self._pending.values())
            commit, self._commit = self._commit, None
            self._pending.clear()
            try:
                await self.save(batch)
            except DATABASE_ERRORS as exc:
                if self.writable:
                    log.error(
                        "cannot write %d checkpoint(s) to %s: %s; stream sources wait until they are "
                        "written, retrying every second",
                        len(batch),
                        self._path,
                        exc,
                    )
                self.writable = False
                for c in batch:
                    self._pending.setdefault((c.source, c.stream, c.shard), c)
                self._requeue(commit)
                await asyncio.sleep(1)
                continue
            if not self.writable:
                log.info("checkpoints are written to %s again", self._path)
            self.writable = True
            _resolve(commit)

    async def flush(self) -> None:
        """Wait until every queued checkpoint is on disk."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._pending:
            await self.save(list(self._pending.values()))
            self._pending.clear()
            commit, self._commit = self._commit, None
            _resolve(commit)

    def _requeue(self, commit: asyncio.Future[None] | None) -> None:
        """A failed commit's waiters wait for the next one."""
        if commit is None:
            return
        if self._commit is None:
            self._commit = commit
        else:
            self._commit.add_done_callback(lambda _: _resolve(commit))

    def abandon(self) -> None:
        """Stop retrying queued checkpoints (the store is closing without them)."""
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()

    @property
    def unwritten(self) -> int:
        """Checkpoints queued and not yet on disk."""
        return len(self._pending)

    async def list(self, source: str | None = None) -> list[Checkpoint]:
        """All checkpoints, or those of one source, ordered by source, stream and shard."""
        query = "SELECT source, stream, shard, sequence, updated_at FROM checkpoints"
        params: tuple[str, ...] = ()
        if source is not None:
            query += " WHERE source = ?"
            params = (source,)
        async with self._db.execute(query + " ORDER BY source, stream, shard", params) as cursor:
            rows = await cursor.fetchall()
        return [Checkpoint(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def delete(self, source: str) -> int:
        """Forget every checkpoint of a source; returns how many there were."""
        cursor = await self._db.execute("DELETE FROM checkpoints WHERE source = ?", (source,))
        return cursor.rowcount


def _resolve(commit: asyncio.Future[None] | None) -> None:
    if commit is not None and not commit.done():
        commit.set_result(None)
