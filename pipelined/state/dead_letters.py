"""The local dead-letter store: failed events parked with their failure record, for `pipelined dlq`."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pipelined.state.db import Connection


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


def _dead_letter(row: Any) -> DeadLetter:
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


class DeadLetterStore:
    """The `dead_letters` table; each method is one transaction."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def add(self, entries: Iterable[NewDeadLetter]) -> list[int]:
        """Park failed events in one statement (so all or none); returns their ids."""
        # One multi-row INSERT rather than BEGIN ... COMMIT: the connection is shared by every store, and
        # a second add (or any other write) awaited in between would fail, or join and share a ROLLBACK.
        now = time.time()
        values: list[object] = []
        for e in entries:
            values += [
                e.function,
                e.source,
                json.dumps(e.event, default=str),
                json.dumps(e.error) if e.error is not None else None,
                json.dumps(e.failure_record, default=str),
                e.condition,
                e.attempts,
                e.first_failed_at,
                now,
            ]
        if not values:
            return []
        rows = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?, ?)" for _ in range(len(values) // 9))
        async with self._db.execute(
            "INSERT INTO dead_letters (function, source, event, error, failure_record, condition,"
            f" attempts, first_failed_at, last_failed_at) VALUES {rows} RETURNING id",
            values,
        ) as cursor:
            found = await cursor.fetchall()
        return sorted(int(row[0]) for row in found)

    async def list(self, function: str | None = None) -> list[DeadLetter]:
        """Parked events, oldest first."""
        query = "SELECT * FROM dead_letters"
        params: tuple[str, ...] = ()
        if function is not None:
            query += " WHERE function = ?"
            params = (function,)
        async with self._db.execute(query + " ORDER BY id", params) as cursor:
            rows = await cursor.fetchall()
        return [_dead_letter(r) for r in rows]

    async def counts(self) -> dict[str, int]:
        """Parked events per function (functions with none are absent)."""
        query = "SELECT function, COUNT(*) FROM dead_letters GROUP BY function"
        async with self._db.execute(query) as cursor:
            rows = await cursor.fetchall()
        return {str(row[0]): int(row[1]) for row in rows}

    async def get(self, entry_id: int) -> DeadLetter | None:
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

    async def delete(self, ids: Iterable[int] | None = None) -> int:
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
