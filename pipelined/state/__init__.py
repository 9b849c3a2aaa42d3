"""The state store: source checkpoints, schedule state, markers, the dead-letter store, the
asynchronous invocation queue and the event buses' archives.

One SQLite file (a daemon alone) or one PostgreSQL database (several daemons sharing the work), opened
once, with one store per table: `state.checkpoints`, `state.schedules`, `state.dead_letters`,
`state.markers`, `state.async_events`, `state.archive`. What several daemons share beyond the tables
(the fenced stream checkpointer, shard and schedule leases) is in `interfaces` and `cluster`.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

import aiosqlite

from pipelined.errors import StateError
from pipelined.observe.cluster_metrics import ClusterMetrics
from pipelined.state.archive import ArchivedEvent, ArchiveStore
from pipelined.state.async_events import AsyncEventStore, EventBody, NewEvent, QueuedEvent
from pipelined.state.checkpoints import CHECKPOINT_LINGER, Checkpoint, CheckpointStore
from pipelined.state.cluster import ClusterLeases
from pipelined.state.db import MIGRATIONS, STATE_FILE, Connection, open_database, reset_state, schema_version
from pipelined.state.dead_letters import DeadLetter, DeadLetterStore, NewDeadLetter
from pipelined.state.fenced import FencedCheckpointer
from pipelined.state.markers import Marker, MarkerStore
from pipelined.state.postgres import Database, open_postgres, pg_schema_version, redact
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
    """One SQLite file in WAL mode, or one PostgreSQL database, and its stores (one transaction a method)."""

    def __init__(self, connection: Connection, path: Path | str) -> None:
        self._db = connection
        # The file, or the database's URL without its password.
        self.path = path
        # Several daemons may share this state (PostgreSQL): leases decide who reads and fires what.
        self.shared = isinstance(connection, Database)
        # The file the connection has open, to notice it being deleted or replaced underneath.
        self._identity = _identity(Path(path)) if not self.shared else None
        # Why the store cannot be trusted right now (None: it can); readiness reports it.
        self.problem: str | None = None
        self.checkpoints = CheckpointStore(connection, path)
        self.schedules = ScheduleStore(connection)
        self.dead_letters = DeadLetterStore(connection)
        self.markers = MarkerStore(connection)
        self.async_events = AsyncEventStore(connection)
        self.archive = ArchiveStore(connection)
        # Set by `join_cluster` on a shared database: this member's leases and fenced checkpointer.
        self.cluster: ClusterLeases | None = None
        self.fenced: FencedCheckpointer | None = None

    async def join_cluster(
        self, member_id: str, lease_duration: float, renew_every: float, metrics: ClusterMetrics | None
    ) -> ClusterLeases:
        """Become a member of the cluster sharing this database: heartbeat, leases, fenced checkpoints."""
        assert isinstance(self._db, Database)
        self.cluster = ClusterLeases(self._db, member_id, lease_duration, renew_every, metrics)
        self.fenced = FencedCheckpointer(self._db, self.cluster, self.checkpoints, self.markers, metrics)
        self.async_events.claim_as(member_id, lease_duration)
        self.cluster.heartbeat_hooks.append(self.async_events.renew_claims)
        self.cluster.leaving_hooks.append(self.async_events.release_claims)
        await self.cluster.start()
        return self.cluster

    async def leave_cluster(self) -> None:
        """Write the last fenced checkpoints, then give every lease up at once (SIGTERM)."""
        if self.fenced is not None:
            await self.fenced.flush()
        if self.cluster is not None:
            await self.cluster.stop()

    @classmethod
    async def open(cls, state_dir: Path, reset: bool = False, url: str | None = None) -> StateStore:
        """Open (creating if needed) `state_dir/state.db`, or the database at `url`, and migrate it.

        An empty state file, or a missing one in a directory that had one, is refused (StateError)
        unless `reset` deletes the state first (never a shared database's: that is the operator's).
        """
        if url is not None:
            if reset:
                raise StateError(
                    "--reset-state does not apply to a shared state database (state.url): other members use "
                    "it; reset a stream with `pipelined checkpoints reset` instead"
                )
            return cls(await open_postgres(url), redact(url))
        if reset:
            reset_state(state_dir)
        return cls(*await open_database(state_dir))

    @property
    def healthy(self) -> bool:
        """The file is the one open (the database is reachable) and the last checkpoint write succeeded."""
        if isinstance(self._db, Database) and self._db.problem is not None:
            return False
        return self.problem is None and self.checkpoints.writable

    @property
    def database(self) -> Database | None:
        """The shared PostgreSQL database, if the state is one."""
        return self._db if isinstance(self._db, Database) else None

    async def check(self) -> None:
        """Notice the file being deleted (restore it from the open connection) or replaced."""
        if not isinstance(self._db, aiosqlite.Connection) or isinstance(self.path, str):
            return
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
                await self.leave_cluster()
                await self.checkpoints.flush()
        finally:
            self.checkpoints.abandon()
            if self.fenced is not None:
                self.fenced.abandon()
            await self._db.close()

    async def schema_version(self) -> int:
        """The schema version of the open file or database."""
        if isinstance(self._db, Database):
            return await pg_schema_version(self._db)
        assert isinstance(self._db, aiosqlite.Connection)
        return await schema_version(self._db)
