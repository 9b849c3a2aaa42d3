"""Schedule state: the last settled firing of each schedule, for catch-up after downtime."""

from __future__ import annotations

from pipelined.state.db import Connection


class ScheduleStore:
    """The `schedule_state` table; each method is one transaction."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

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
            " DO UPDATE SET last_fire = CASE WHEN excluded.last_fire > schedule_state.last_fire"
            " THEN excluded.last_fire ELSE schedule_state.last_fire END",
            (source, fire_time),
        )
