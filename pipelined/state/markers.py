"""Source markers: small values a source keeps across restarts that are not stream positions."""

from __future__ import annotations

import time
from dataclasses import dataclass

from pipelined.state.db import Connection

# The kinds in use. They are spelled as `pipelined checkpoints list` has always shown them (markers
# used to be rows of the checkpoints table, kind as the stream, key as the shard): keep them so.

# The topic filter an MQTT session last subscribed to (key: the client id), to drop it once it changes.
MQTT_SUBSCRIPTION = "mqtt-subscription"
# Left by `checkpoints reset --to TRIM_HORIZON|LATEST` (key: "*" as well): where a stream source's
# shards start while it has no checkpoints.
STREAM_RESET = "*"


@dataclass(frozen=True, slots=True)
class Marker:
    """One value a source remembers, named by its kind and a key within that kind."""

    source: str
    kind: str
    key: str
    value: str
    updated_at: float = 0.0


class MarkerStore:
    """The `markers` table; each method is one transaction."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def get(self, source: str, kind: str, key: str) -> str | None:
        """The value of one marker, if it is set."""
        async with self._db.execute(
            "SELECT value FROM markers WHERE source = ? AND kind = ? AND key = ?", (source, kind, key)
        ) as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row else None

    async def put(self, source: str, kind: str, key: str, value: str) -> None:
        """Set one marker, replacing its previous value."""
        await self._db.execute(
            "INSERT INTO markers (source, kind, key, value, updated_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (source, kind, key) DO UPDATE SET value = excluded.value,"
            " updated_at = excluded.updated_at",
            (source, kind, key, value, time.time()),
        )

    async def list(self, source: str | None = None) -> list[Marker]:
        """All markers, or those of one source, ordered by source, kind and key."""
        query = "SELECT source, kind, key, value, updated_at FROM markers"
        params: tuple[str, ...] = ()
        if source is not None:
            query += " WHERE source = ?"
            params = (source,)
        async with self._db.execute(query + " ORDER BY source, kind, key", params) as cursor:
            rows = await cursor.fetchall()
        return [Marker(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    async def delete(self, source: str, kind: str) -> int:
        """Forget every marker of one kind of a source; returns how many there were."""
        cursor = await self._db.execute("DELETE FROM markers WHERE source = ? AND kind = ?", (source, kind))
        return cursor.rowcount
