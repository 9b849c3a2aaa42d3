"""The state file: opening it (WAL), its versioned migrations and the schema version check."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any, Protocol

import aiosqlite
import psycopg

from pipelined.errors import StateError

STATE_FILE = "state.db"

# What a failed statement raises, on SQLite or on PostgreSQL.
DATABASE_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)


class Cursor(Protocol):
    """A finished statement's rows (aiosqlite's or psycopg's cursor)."""

    @property
    def rowcount(self) -> int: ...

    async def fetchone(self) -> Any: ...

    async def fetchall(self) -> Iterable[Any]: ...


class Statement(Protocol):
    """A running statement: awaited or entered, its cursor."""

    def __await__(self) -> Generator[Any, None, Cursor]: ...

    async def __aenter__(self) -> Cursor: ...

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any, /) -> Any: ...


class Connection(Protocol):
    """What the stores use of a connection: SQLite's (aiosqlite) or PostgreSQL's (postgres.Database)."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Statement: ...

    async def close(self) -> None: ...


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
    # Markers used to live in `checkpoints` as fake shards: the MQTT session's topic filter (stream
    # 'mqtt-subscription', shard = client id) and a pending `checkpoints reset` (stream and shard '*').
    # They move, unchanged, to a table of their own, so that `checkpoints` holds only stream positions.
    """
    CREATE TABLE markers (
        source TEXT NOT NULL,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at REAL NOT NULL,
        PRIMARY KEY (source, kind, key)
    );
    INSERT INTO markers (source, kind, key, value, updated_at)
        SELECT source, stream, shard, sequence, updated_at FROM checkpoints
        WHERE stream = 'mqtt-subscription' OR (stream = '*' AND shard = '*');
    DELETE FROM checkpoints WHERE stream = 'mqtt-subscription' OR (stream = '*' AND shard = '*');
    """,
    # Asynchronous invocations (the Lambda API's `Event` type), from the 202 until they are settled.
    """
    CREATE TABLE async_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        request_id TEXT NOT NULL UNIQUE,
        function TEXT NOT NULL,
        payload TEXT NOT NULL,
        client_context TEXT,
        received_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error TEXT
    );
    """,
    # An invocation queued by an EventBridge rule carries the rule's retry policy and dead letter (JSON).
    """
    ALTER TABLE async_events ADD COLUMN policy TEXT;
    """,
    # The archives of event buses (`event_buses.NAME.archive`), for `pipelined events replay`.
    """
    CREATE TABLE archived_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        bus TEXT NOT NULL,
        event_id TEXT NOT NULL,
        event_time REAL NOT NULL,
        archived_at REAL NOT NULL,
        event TEXT NOT NULL
    );
    CREATE INDEX archived_events_time ON archived_events (bus, event_time);
    """,
    # The trace header an asynchronous invocation arrived with (Invoke's X-Amzn-Trace-Id, PutEvents'
    # TraceHeader): the handler's _X_AMZN_TRACE_ID continues that trace.
    """
    ALTER TABLE async_events ADD COLUMN trace TEXT;
    """,
)


# Written beside a new state file: a state directory that has one but no state file lost its state.
CREATED_MARKER = "state.created"


def reset_state(state_dir: Path) -> None:
    """Forget every checkpoint, schedule time and dead letter: delete the state file (--reset-state)."""
    for name in (STATE_FILE, f"{STATE_FILE}-wal", f"{STATE_FILE}-shm", CREATED_MARKER):
        (Path(state_dir) / name).unlink(missing_ok=True)


def _refuse_lost_state(path: Path, marker: Path) -> None:
    """Never begin afresh (every stream at its starting_position) over state that was lost by accident."""
    if path.exists() and path.stat().st_size == 0:
        raise StateError(
            f"state file {path} is empty (0 bytes): the checkpoints it held are gone. Restore it from a "
            "backup, or start afresh with `pipelined run --reset-state` (stream sources then begin at "
            "their starting_position)"
        )
    if not path.exists() and marker.exists():
        raise StateError(
            f"state file {path} is missing, but {path.parent} held one "
            f"(created {marker.read_text().strip()}). "
            "Restore it from a backup, or start afresh with `pipelined run --reset-state` (stream sources "
            "then begin at their starting_position)"
        )


async def open_database(state_dir: Path) -> tuple[aiosqlite.Connection, Path]:
    """Open (creating if needed) `state_dir/state.db` and bring its schema up to date."""
    path = Path(state_dir) / STATE_FILE
    marker = Path(state_dir) / CREATED_MARKER
    _refuse_lost_state(path, marker)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(path, isolation_level=None)
    except (OSError, sqlite3.Error) as exc:
        raise StateError(f"cannot open state file {path}: {exc}") from exc
    db.row_factory = sqlite3.Row
    try:
        await _prepare(db, path)
    except sqlite3.Error as exc:
        await db.close()
        raise StateError(f"cannot use state file {path}: {exc}") from exc
    except StateError:
        await db.close()
        raise
    if not marker.exists():
        try:
            marker.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) + "\n")
        except OSError as exc:
            raise StateError(f"cannot write {marker}: {exc.strerror or exc}") from exc
    return db, path


async def _prepare(db: aiosqlite.Connection, path: Path) -> None:
    await db.execute("PRAGMA journal_mode=WAL")
    # NORMAL is durable across a daemon crash in WAL mode; only an OS crash may lose the last commit.
    await db.execute("PRAGMA synchronous=NORMAL")
    # The CLI (dlq, checkpoints) may touch the file while the daemon runs.
    await db.execute("PRAGMA busy_timeout=5000")
    version = await schema_version(db)
    if version > len(MIGRATIONS):
        raise StateError(
            f"{path} has schema version {version}, newer than this pipelined "
            f"understands ({len(MIGRATIONS)}); upgrade pipelined"
        )
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        # executescript commits on its own; the version bump rides in the same script.
        await db.executescript(f"BEGIN;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;")


async def schema_version(db: aiosqlite.Connection) -> int:
    """The schema version of an open file."""
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
