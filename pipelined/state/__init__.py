"""The SQLite state store: source checkpoints, schedule state, markers, the local dead-letter store and the
asynchronous invocation queue.

One file, opened once, with one store per table: `state.checkpoints`, `state.schedules`,
`state.dead_letters`, `state.markers`, `state.async_events`. What several daemons will later share (the stream
checkpointer, shard and schedule leases) is in `interfaces`.
"""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from pipelined.errors import StateError
from pipelined.state.async_events import AsyncEventStore, EventBody, QueuedEvent
from pipelined.state.checkpoints import CHECKPOINT_LINGER, Checkpoint, CheckpointStore
from pipelined.state.db import MIGRATIONS, STATE_FILE, open_database, schema_version
from pipelined.state.dead_letters import DeadLetter, DeadLetterStore, NewDeadLetter
from pipelined.state.markers import Marker, MarkerStore
from pipelined.state.schedules import ScheduleStore

__all__ = [
    "CHECKPOINT_LINGER",
    "MIGRATIONS",
    "STATE_FILE",
    "AsyncEventStore",
    "Checkpoint",
    "CheckpointStore",
    "DeadLetter",
    "DeadLetterStore",
    "EventBody",
    "Marker",
    "MarkerStore",
    "NewDeadLetter",
    "QueuedEvent",
    "ScheduleStore",
    "StateError",
    "StateStore",
]


class StateStore:
    """One SQLite file in WAL mode and its stores; each store method is one transaction."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._db = connection
        self.path = path
        self.checkpoints = CheckpointStore(connection, path)
        self.schedules = ScheduleStore(connection)
        self.dead_letters = DeadLetterStore(connection)
        self.markers = MarkerStore(connection)
        self.async_events = AsyncEventStore(connection)

    @classmethod
    async def open(cls, state_dir: Path) -> StateStore:
        """Open (creating if needed) `state_dir/state.db` and bring its schema up to date."""
        return cls(*await open_database(state_dir))

    async def close(self) -> None:
        """Write queued checkpoints and close the connection."""
        try:
            await self.checkpoints.flush()
        finally:
            await self._db.close()

    async def schema_version(self) -> int:
        """The schema version of the open file."""
        return await schema_version(self._db)
