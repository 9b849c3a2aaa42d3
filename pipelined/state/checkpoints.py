"""Stream checkpoints: the last position fully processed per shard, written by group commit."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

log = logging.getLogger("pipelined.state")

# How long queued checkpoints wait for company before they are committed.
CHECKPOINT_LINGER = 0.02


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

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._db = connection
        self._path = path
        self._pending: dict[tuple[str, str, str], Checkpoint] = {}
        self._flusher: asyncio.Task[None] | None = None

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

    def save_soon(self, checkpoints: Iterable[Checkpoint]) -> None:
        """Queue checkpoints for the next group commit and return at once.

        Batches that finish within CHECKPOINT_LINGER of each other share one commit, so a busy source
        pays one SQLite transaction per commit instead of one per batch; a crash loses at most the
        checkpoints of that window, whose records are then redelivered (at-least-once).
        """
        for c in checkpoints:
            self._pending[(c.source, c.stream, c.shard)] = c
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush_pending())

    async def _flush_pending(self) -> None:
        # Linger briefly so that the batches finishing meanwhile share one commit.
        await asyncio.sleep(CHECKPOINT_LINGER)
        while self._pending:
            batch = list(self._pending.values())
            self._pending.clear()
            try:
                await self.save(batch)
            except sqlite3.Error as exc:
                log.error("cannot write %d checkpoint(s) to %s: %s; will retry", len(batch), self._path, exc)
                for c in batch:
                    self._pending.setdefault((c.source, c.stream, c.shard), c)
                await asyncio.sleep(1)

    async def flush(self) -> None:
        """Wait until every queued checkpoint is on disk."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._pending:
            await self.save(list(self._pending.values()))
            self._pending.clear()

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
