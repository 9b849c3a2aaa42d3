"""Schedule state."""

from __future__ import annotations

from pathlib import Path

from pipelined.state import StateStore


async def test_schedule_fire_time_never_moves_backwards(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    await store.schedules.record_fire("fn/tick", 200.0)
    await store.schedules.record_fire("fn/tick", 100.0)
    assert await store.schedules.last_fire("fn/tick") == 200.0
    assert await store.schedules.last_fire("fn/other") is None
    await store.close()
