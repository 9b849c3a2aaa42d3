"""Queued asynchronous invocations: each event is on disk from its 202 until it is settled."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelined.state.db import Connection


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """One accepted `Event` invocation and how far it has come."""

    id: int
    request_id: str
    function: str
    received_at: float
    # Invocations that finished with an error (a run cut short by a crash is not counted: it runs again).
    attempts: int
    next_attempt_at: float
    last_error: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class EventBody:
    """The payload (as received, JSON text) and the client context of a queued event."""

    payload: str
    client_context: str | None


def _queued(row: Any) -> QueuedEvent:
    return QueuedEvent(
        id=row["id"],
        request_id=row["request_id"],
        function=row["function"],
        received_at=row["received_at"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=json.loads(row["last_error"]) if row["last_error"] else None,
    )


class AsyncEventStore:
    """The `async_events` table; each method is one transaction."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def add(
        self, request_id: str, function: str, payload: str, client_context: str | None = None
    ) -> QueuedEvent:
        """Persist a new event, due at once."""
        now = time.time()
        async with self._db.execute(
            "INSERT INTO async_events (request_id, function, payload, client_context, received_at,"
            " next_attempt_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
            (request_id, function, payload, client_context, now, now),
        ) as cursor:
            row = await cursor.fetchone()
        return QueuedEvent(int(row[0]), request_id, function, now, 0, now)

    async def pending(self) -> list[QueuedEvent]:
        """Every event not yet settled, oldest first (without their bodies)."""
        async with self._db.execute(
            "SELECT id, request_id, function, received_at, attempts, next_attempt_at, last_error"
            " FROM async_events ORDER BY id"
        ) as cursor:
            rows = await cursor.fetchall()
        return [_queued(r) for r in rows]

    async def body(self, event_id: int) -> EventBody | None:
        """The payload and client context of one event (None once it is settled)."""
        async with self._db.execute(
            "SELECT payload, client_context FROM async_events WHERE id = ?", (event_id,)
        ) as cursor:
            row = await cursor.fetchone()
        return EventBody(row[0], row[1]) if row else None

    async def failed_attempt(
        self, event_id: int, next_attempt_at: float, error: Mapping[str, Any] | None
    ) -> None:
        """Count one failed invocation and set when the next one is due."""
        await self._db.execute(
            "UPDATE async_events SET attempts = attempts + 1, next_attempt_at = ?, last_error = ?"
            " WHERE id = ?",
            (next_attempt_at, json.dumps(error) if error is not None else None, event_id),
        )

    async def postpone(self, event_id: int, next_attempt_at: float) -> None:
        """Try again later without counting an attempt (no such function, or nowhere to park it)."""
        await self._db.execute(
            "UPDATE async_events SET next_attempt_at = ? WHERE id = ?", (next_attempt_at, event_id)
        )

    async def delete(self, event_id: int) -> None:
        """Forget a settled event."""
        await self._db.execute("DELETE FROM async_events WHERE id = ?", (event_id,))

    async def count(self) -> int:
        """How many events are queued."""
        async with self._db.execute("SELECT COUNT(*) FROM async_events") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row else 0
