"""The SQLite state store: source checkpoints, schedule state, markers, the local dead-letter store, the
asynchronous invocation queue and the event buses' archives.

One file, opened once, with one store per table: `state.checkpoints`, `state.schedules`,
`state.dead_letters`, `state.markers`, `state.async_events`, `state.archive`. What several daemons
will later share (the stream checkpointer, shard and schedule leases) is in `interfaces`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import aiosqlite

from pipelined.errors import StateError
from pipelined.state.archive import ArchivedEvent, ArchiveStore
from pipelined.state.async_events import AsyncEventStore, EventBody, NewEvent, QueuedEvent
from pipelined.state.checkpoints import CHECKPOINT_LINGER, Checkpoint, CheckpointStore
from pipelined.state.db import MIGRATIONS, STATE_FILE, open_database, reset_state, schema_version
from pipelined.state.dead_letters import DeadLetter, DeadLetterStore, NewDeadLetter
from pipelined.state.markers import Marker, MarkerStore
from pipelined.state.schedules import ScheduleStore

__all__ = [
    "CHECKPOINT_LINGER",
    "MIGRATIONS",
    "STATE_FILE",
    "ArchiveStore",
    "ArchivedEvent",
    "AsyncEventStore",
    "Checkpoint",
    "CheckpointStore",
    "DeadLetter",
    "DeadLetterStore",
    "EventBody",
    "Marker",
    "MarkerStore",
    "NewDeadLetter",
    "NewEvent",
    "QueuedEvent",
    "ScheduleStore",
    "StateError",
    "StateStore",
]

log = logging.getLogger("pipelined.state")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


class StateStore:
    """One SQLite file in WAL mode and its stores; each store method is one transaction."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        # The file the connection has open, to notice it being deleted or replaced underneath.
        self._identity = _identity(path)
        # Why the store cannot be trusted right now (None: it can); readiness reports it.
        self.problem: str | None = None
        self.checkpoints = CheckpointStore(connection, path)
        self.schedules = ScheduleStore(connection)
        self.dead_letters = DeadLetterStore(connection)
        self.markers = MarkerStore(connection)
        self.async_events = AsyncEventStore(connection)
        self.archive = ArchiveStore(connection)

    @classmethod
    async def open(cls, state_dir: Path, reset: bool = False) -> StateStore:
        """Open (creating if needed) `state_dir/state.db` and bring its schema up to date.

        An empty state file, or a missing one in a directory that had one, is refused (StateError)
        unless `reset` deletes the state first.
        """
        if reset:
            reset_state(state_dir)
        return cls(*await open_database(state_dir))

    @property
    def healthy(self) -> bool:
        """The file is the one open and its last write succeeded."""
        return self.problem is None and self.checkpoints.writable

    async def check(self) -> None:
        """Notice the file being deleted (restore it from the open connection) or replaced."""
        current = _identity(self.path)
        if current == self._identity:
            return
        if current is not None:
            if self.problem is None:
                log.error(
                    "state file %s was replaced by another file while the daemon runs; its writes go to "
                    "the old one: restart the daemon",
                    self.path,
                )
            self.problem = f"{self.path} was replaced"
            return
        log.error(
            "state file %s was deleted while the daemon runs; restoring it from the open database", self.path
        )
        try:
            # The deleted file is still open: copy it back to its path, then continue on the copy.
            await self._db.execute("VACUUM INTO ?", (str(self.path),))
            restored = await aiosqlite.connect(self.path, isolation_level=None)
            await restored.execute("PRAGMA journal_mode=WAL")
            await restored.execute("PRAGMA synchronous=NORMAL")
            await restored.execute("PRAGMA busy_timeout=5000")
        except (OSError, sqlite3.Error) as exc:
            self.problem = f"{self.path} was deleted and could not be restored: {exc}"
            log.error("state file %s could not be restored (%s); restart the daemon", self.path, exc)
            return
        old, self._db = self._db, restored
        for store in (
            self.checkpoints,
            self.schedules,
            self.dead_letters,
            self.markers,
            self.async_events,
            self.archive,
        ):
            store._db = restored  # every store of the facade shares its one connection
        self._identity = _identity(self.path)
        self.problem = None
        await old.close()
        log.info("state file %s restored; checkpoints are written to it again", self.path)

    async def close(self, flush: bool = True) -> None:
        """Write queued checkpoints (unless `flush` is False) and close the connection."""
        try:
            if flush:
                await self.checkpoints.flush()
        finally:
            self.checkpoints.abandon()
            await self._db.close()

    async def schema_version(self) -> int:
        """The schema version of the open file."""
        return await schema_version(self._db)
