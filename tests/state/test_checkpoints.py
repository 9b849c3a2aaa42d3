"""The checkpoints table and its group commit."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from pipelined.state import Checkpoint, StateStore


async def test_checkpoints_survive_reopen_and_upsert(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    await store.checkpoints.save(
        [
            Checkpoint("fn/s", "arn:stream", "shard-1", "100"),
            Checkpoint("fn/s", "arn:stream", "shard-2", "200"),
        ]
    )
    await store.checkpoints.save([Checkpoint("fn/s", "arn:stream", "shard-1", "150")])
    await store.close()
    store = await StateStore.open(tmp_path)
    assert [(c.shard, c.sequence) for c in await store.checkpoints.list("fn/s")] == [
        ("shard-1", "150"),
        ("shard-2", "200"),
    ]
    assert await store.checkpoints.delete("fn/s") == 2
    assert await store.checkpoints.list() == []
    await store.close()


async def test_queued_checkpoints_are_on_disk_after_flush_and_the_latest_per_shard_wins(
    tmp_path: Path,
) -> None:
    store = await StateStore.open(tmp_path)
    try:
        store.checkpoints.save_soon([Checkpoint("fn/s", "arn", "shard-1", "1")])
        store.checkpoints.save_soon(
            [Checkpoint("fn/s", "arn", "shard-1", "2"), Checkpoint("fn/s", "arn", "shard-2", "7")]
        )
        await store.checkpoints.flush()
        with sqlite3.connect(tmp_path / "state.db") as db:
            rows = db.execute("SELECT shard, sequence FROM checkpoints ORDER BY shard").fetchall()
        db.close()
        assert rows == [("shard-1", "2"), ("shard-2", "7")]
    finally:
        await store.close()


async def test_close_writes_what_is_still_queued(tmp_path: Path) -> None:
    store = await StateStore.open(tmp_path)
    store.checkpoints.save_soon([Checkpoint("fn/s", "arn", "shard-1", "9")])
    await store.close()
    store = await StateStore.open(tmp_path)
    assert [c.sequence for c in await store.checkpoints.list("fn/s")] == ["9"]
    await store.close()
