"""Event archives: the events a bus with `archive:` accepted, kept for `retention` so they can be replayed."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipelined.state.db import Connection


@dataclass(frozen=True, slots=True)
class ArchivedEvent:
    """One archived event: its envelope and its time (the entry's `Time`, or when it was accepted)."""

    event_id: str
    event_time: float
    event: Mapping[str, Any]


class ArchiveStore:
    """The `archived_events` table; each method is one transaction."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def add(self, bus: str, events: Sequence[tuple[str, float, Mapping[str, Any]]]) -> None:
        """Archive (event id, event time, envelope) triples of one bus, all in one statement."""
        if not events:
            return
        now = time.time()
        rows = ", ".join("(?, ?, ?, ?, ?)" for _ in events)
        values: list[object] = []
        for event_id, event_time, event in events:
            values += [bus, event_id, event_time, now, json.dumps(event)]
        await self._db.execute(
            f"INSERT INTO archived_events (bus, event_id, event_time, archived_at, event) VALUES {rows}",
            values,
        )

    async def between(self, bus: str, start: float, end: float) -> list[ArchivedEvent]:
        """The events of `bus` whose time is in [start, end), oldest first."""
        async with self._db.execute(
            "SELECT event_id, event_time, event FROM archived_events"
            " WHERE bus = ? AND event_time >= ? AND event_time < ? ORDER BY event_time, id",
            (bus, start, end),
        ) as cursor:
            rows = await cursor.fetchall()
        return [ArchivedEvent(row[0], row[1], json.loads(row[2])) for row in rows]

    async def stats(self, bus: str) -> tuple[int, int]:
        """(events, bytes) archived for `bus`."""
        async with self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(event)), 0) FROM archived_events WHERE bus = ?", (bus,)
        ) as cursor:
            row = await cursor.fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    async def expire(self, bus: str, before: float) -> None:
        """Forget the events of `bus` archived before `before` (past the retention)."""
        await self._db.execute("DELETE FROM archived_events WHERE bus = ? AND archived_at < ?", (bus, before))
