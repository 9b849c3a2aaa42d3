"""The SQLite state store: source checkpoints, schedule state and the local dead-letter store."""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from pipelined.errors import StateError

log = logging.getLogger("pipelined.state")

STATE_FILE = "state.db"
# How long queued checkpoints wait for company before they are committed.
CHECKPOINT_LINGER = 0.02

# Each entry moves the schema one version up; PRAGMA user_version records how far a file has come.
# Never edit a released migration: append a new one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE checkpoints (
        source TEXT NOT NULL,
        stream TEXT NOT NULL,
        shard TEXT NOT NULL,
        sequence TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (source, stream, shard)
    );
    CREATE TABLE schedule_state (
        source TEXT PRIMARY KEY,
        last_fire REAL NOT NULL
    );
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        function TEXT NOT NULL,
        source TEXT NOT NULL,
        event TEXT NOT NULL,
        error TEXT,
        failure_record TEXT NOT NULL,
        condition TEXT NOT NULL,
        attempts INTEGER NOT NULL,
        first_failed_at REAL NOT NULL,
        last_failed_at REAL NOT NULL
    );
    CREATE INDEX dead_letters_function ON dead_letters (function);
    """,
)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The last sequence number fully processed in one shard of one source."""

    source: str
    stream: str
    shard: str
    sequence: str
    updated_at: float = 0.0


@dataclass(frozen=True, slots=True)
class NewDeadLetter:
    """A failed event about to be parked in the local dead-letter store."""

    function: str
    source: str
    event: Any
    error: Mapping[str, Any] | None
    failure_record: Mapping[str, Any]
    condition: str
    attempts: int
    first_failed_at: float


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A parked event, as `pipelined dlq list|show` shows it."""

    id: int
    function: str
    source: str
    event: Any
    error: Mapping[str, Any] | None
    failure_record: Mapping[str, Any]
    condition: str
    attempts: int
    first_failed_at: float
    last_failed_at: float


def _dead_letter(row: sqlite3.Row) -> DeadLetter:
    return DeadLetter(
        id=row["id"],
        function=row["function"],
        source=row["source"],
        event=json.loads(row["event"]),
        error=json.loads(row["error"]) if row["error"] else None,
        failure_record=json.loads(row["failure_record"]),
        condition=row["condition"],
        attempts=row["attempts"],
        first_failed_at=row["first_failed_at"],
        last_failed_at=row["last_failed_at"],
    )


class StateStore:
    """One SQLite file in WAL mode; each method is one transaction."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self._pending: dict[tuple[str, str, str], Checkpoint] = {}
        self._flusher: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, state_dir: Path) -> StateStore:
        """Open (creating if needed) `state_dir/state.db` and bring its schema up to date."""
        path = Path(state_dir) / STATE_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StateError(f"cannot open state file {path}: {exc}") from exc
        db.row_factory = sqlite3.Row
        store = cls(db, path)
        try:
            await store._prepare()
        except sqlite3.Error as exc:
            await db.close()
            raise StateError(f"cannot use state file {path}: {exc}") from exc
        except StateError:
            await db.close()
            raise
        return store

    async def _prepare(self) -> None:
        await self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across a daemon crash in WAL mode; only an OS crash may lose the last commit.
        await self._db.execute("PRAGMA synchronous=NORMAL")
        # The CLI (dlq, checkpoints) may touch the file while the daemon runs.
        await self._db.execute("PRAGMA busy_timeout=5000")
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        version = int(row[0]) if row else 0
        if version > len(MIGRATIONS):
            raise StateError(
                f"{self.path} has schema version {version}, newer than this pipelined "
                f"understands ({len(MIGRATIONS)}); upgrade pipelined"
            )
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            # executescript commits on its own; the version bump rides in the same script.
            await self._db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")

    async def close(self) -> None:
        """Write queued checkpoints and close the connection."""
        try:
            await self.flush()
        finally:
            await self._db.close()

    async def schema_version(self) -> int:
        """The schema version of the open file."""
        async with self._db.execute("PRAGMA user_version") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0

    # --- checkpoints ---------------------------------------------------------------------------------

    async def save_checkpoints(self, checkpoints: Iterable[Checkpoint]) -> None:
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

    def checkpoint_soon(self, checkpoints: Iterable[Checkpoint]) -> None:
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
                await self.save_checkpoints(batch)
            except sqlite3.Error as exc:
                log.error("cannot write %d checkpoint(s) to %s: %s; will retry", len(batch), self.path, exc)
                for c in batch:
                    self._pending.setdefault((c.source, c.stream, c.shard), c)
                await asyncio.sleep(1)

    async def flush(self) -> None:
        """Wait until every queued checkpoint is on disk."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._pending:
            await self.save_checkpoints(list(self._pending.values()))
            self._pending.clear()

    async def checkpoints(self, source: str | None = None) -> list[Checkpoint]:
        """All checkpoints, or those of one source, ordered by source, stream and shard."""
        query = "SELECT source, stream, shard, sequence, updated_at FROM checkpoints"
        params: tuple[str, ...] = ()
        if source is not None:
            query += " WHERE source = ?"
            params = (source,)
        async with self._db.execute(query + " ORDER BY source, stream, shard", params) as cursor:
            rows = await cursor.fetchall()
        return [Checkpoint(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def delete_checkpoints(self, source: str) -> int:
        """Forget every checkpoint of a source; returns how many there were."""
        cursor = await self._db.execute("DELETE FROM checkpoints WHERE source = ?", (source,))
        return cursor.rowcount

    # --- schedules -----------------------------------------------------------------------------------

    async def last_fire(self, source: str) -> float | None:
        """Epoch seconds of the last settled firing of a schedule, if any."""
        async with self._db.execute(
            "SELECT last_fire FROM schedule_state WHERE source = ?", (source,)
        ) as cur:
            row = await cur.fetchone()
        return float(row[0]) if row else None

    async def record_fire(self, source: str, fire_time: float) -> None:
        """Remember a settled firing; never moves the recorded time backwards."""
        await self._db.execute(
            "INSERT INTO schedule_state (source, last_fire) VALUES (?, ?) ON CONFLICT (source)"
            " DO UPDATE SET last_fire = max(last_fire, excluded.last_fire)",
            (source, fire_time),
        )

    # --- dead letters --------------------------------------------------------------------------------

    async def add_dead_letters(self, entries: Iterable[NewDeadLetter]) -> list[int]:
        """Park failed events in one transaction; returns their ids."""
        now = time.time()
        ids: list[int] = []
        await self._db.execute("BEGIN")
        try:
            for e in entries:
                cursor = await self._db.execute(
                    "INSERT INTO dead_letters (function, source, event, error, failure_record, condition,"
                    " attempts, first_failed_at, last_failed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        e.function,
                        e.source,
                        json.dumps(e.event, default=str),
                        json.dumps(e.error) if e.error is not None else None,
                        json.dumps(e.failure_record, default=str),
                        e.condition,
                        e.attempts,
                        e.first_failed_at,
                        now,
                    ),
                )
                ids.append(int(cursor.lastrowid or 0))
        except BaseException:
            await self._db.execute("ROLLBACK")
            raise
        await self._db.execute("COMMIT")
        return ids

    async def dead_letters(self, function: str | None = None) -> list[DeadLetter]:
        """Parked events, oldest first."""
        query = "SELECT * FROM dead_letters"
        params: tuple[str, ...] = ()
        if function is not None:
            query += " WHERE function = ?"
            params = (function,)
        async with self._db.execute(query + " ORDER BY id", params) as cursor:
            rows = await cursor.fetchall()
        return [_dead_letter(r) for r in rows]

    async def dead_letter(self, entry_id: int) -> DeadLetter | None:
        """One parked event by id."""
        async with self._db.execute("SELECT * FROM dead_letters WHERE id = ?", (entry_id,)) as cursor:
            row = await cursor.fetchone()
        return _dead_letter(row) if row else None

    async def mark_redrive_failed(self, entry_id: int, error: Mapping[str, Any] | None) -> None:
        """Count one more failed attempt on a parked event that was redriven and failed again."""
        await self._db.execute(
            "UPDATE dead_letters SET attempts = attempts + 1, last_failed_at = ?, error = ? WHERE id = ?",
            (time.time(), json.dumps(error) if error is not None else None, entry_id),
        )

    async def delete_dead_letters(self, ids: Iterable[int] | None = None) -> int:
        """Remove parked events (all of them when `ids` is None); returns how many were removed."""
        if ids is None:
            cursor = await self._db.execute("DELETE FROM dead_letters")
        else:
            id_list = list(ids)
            if not id_list:
                return 0
            marks = ",".join("?" * len(id_list))
            cursor = await self._db.execute(f"DELETE FROM dead_letters WHERE id IN ({marks})", id_list)
        return cursor.rowcount
